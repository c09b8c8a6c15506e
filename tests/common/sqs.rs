//! SQS test helpers: an `aws-sdk-sqs` client for the test broker, the error code of an SDK
//! error, and raw HTTP requests for what the SDK will not send (Query protocol, malformed
//! bodies).

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Broker, within};

/// A client as an application configures one for a local endpoint: static keys, us-east-1.
pub fn client(broker: &Broker) -> Client {
    client_with_keys(broker, "test", "test")
}

/// A client that signs with the given access key.
pub fn client_with_keys(broker: &Broker, access_key_id: &str, secret_access_key: &str) -> Client {
    let credentials = Credentials::new(access_key_id, secret_access_key, None, None, "tests");
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(format!("http://{}", broker.server.sqs_addr))
        .build();
    Client::from_conf(config)
}

/// Creates queue `name` and returns its URL.
pub async fn create_queue(client: &Client, name: &str) -> String {
    within(client.create_queue().queue_name(name).send())
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("a queue URL")
}

/// The AWS error code of a failed SDK call (`QueueDoesNotExist`, ...).
#[track_caller]
pub fn error_code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
) -> String {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error
            .code()
            .unwrap_or_else(|| panic!("no error code in {error:?}"))
            .to_owned(),
    }
}

/// A raw HTTP answer.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines as received, lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the whole answer.
pub async fn raw_request(
    broker: &Broker,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let length = body.len().to_string();
    let mut all = vec![("Content-Length", length.as_str())];
    all.extend_from_slice(headers);
    raw_exchange(broker, path, &all, body).await
}

/// Like [`raw_request`] with the caller's own headers only (a `Content-Length` that lies).
pub async fn raw_exchange(
    broker: &Broker,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = within(TcpStream::connect(broker.server.sqs_addr))
        .await
        .expect("connect");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        broker.server.sqs_addr,
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut answer = Vec::new();
    within(stream.read_to_end(&mut answer)).await.expect("read");
    parse_response(&String::from_utf8_lossy(&answer))
}

/// A Query-protocol request (form body) posted to `path`.
pub async fn query(broker: &Broker, path: &str, form: &str) -> RawResponse {
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    raw_request(broker, path, &headers, form.as_bytes()).await
}

fn parse_response(text: &str) -> RawResponse {
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

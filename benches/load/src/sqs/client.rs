//! One keep-alive HTTP/1.1 connection to an SQS endpoint, speaking AWS JSON 1.0 to SQS and
//! the Query protocol (form-encoded requests, XML answers) to SNS on the same endpoint.
//!
//! Each client task owns one [`SqsConnection`] and sends one request at a time on it, as an
//! SDK client does. The connection is opened on first use and opened again when the server
//! closes it: mqbridge keeps connections alive; moto's server (werkzeug's development server)
//! answers every request with `Connection: close`, so against moto every request pays for a
//! TCP connect, and the report counts connects to show it.
//!
//! Requests carry a fixed `Authorization` header shaped like SigV4. Neither endpoint checks
//! it: mqbridge's SQS listener accepts any credentials from loopback (dev mode), and moto
//! accepts anything but reads the credential scope (`.../us-east-1/sqs/aws4_request`) to
//! route the request to its SQS backend. SNS requests name `sns` in the scope, which is also
//! how mqbridge's shared endpoint hands them to its SNS adapter.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::SqsMeter;

/// A SigV4-shaped header with a fake key and signature; see the module comment.
const AUTHORIZATION_VALUE: &str = "AWS4-HMAC-SHA256 \
    Credential=AKIAMQBRIDGEBENCH000/20260101/us-east-1/sqs/aws4_request, \
    SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
    Signature=0000000000000000000000000000000000000000000000000000000000000000";

/// The same for SNS's Query protocol: the scope names `sns`.
const AUTHORIZATION_VALUE_SNS: &str = "AWS4-HMAC-SHA256 \
    Credential=AKIAMQBRIDGEBENCH000/20260101/us-east-1/sns/aws4_request, \
    SignedHeaders=content-type;host;x-amz-date, \
    Signature=0000000000000000000000000000000000000000000000000000000000000000";

/// The date the fake signature claims; SigV4 clients always send one.
const AMZ_DATE_VALUE: &str = "20260101T000000Z";

/// The AWS JSON 1.0 content type, as the SDKs send it.
const CONTENT_TYPE_JSON: &str = "application/x-amz-json-1.0";

/// The Query protocol's content type, as the SDKs send it.
const CONTENT_TYPE_FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Longest a request may take beyond its own long poll before the run is declared hung.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest connect on loopback before the endpoint is declared down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many bytes of an error body are quoted in the error.
const ERROR_BODY_QUOTED_MAX: usize = 300;

/// The SQS actions the scenarios call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateQueue,
    DeleteQueue,
    GetQueueAttributes,
    SendMessage,
    SendMessageBatch,
    ReceiveMessage,
    DeleteMessageBatch,
}

impl Action {
    /// The action's name, for errors.
    fn name(self) -> &'static str {
        let target = self.target();
        target.strip_prefix("AmazonSQS.").unwrap_or(target)
    }

    /// The `X-Amz-Target` header value of the action.
    fn target(self) -> &'static str {
        match self {
            Action::CreateQueue => "AmazonSQS.CreateQueue",
            Action::DeleteQueue => "AmazonSQS.DeleteQueue",
            Action::GetQueueAttributes => "AmazonSQS.GetQueueAttributes",
            Action::SendMessage => "AmazonSQS.SendMessage",
            Action::SendMessageBatch => "AmazonSQS.SendMessageBatch",
            Action::ReceiveMessage => "AmazonSQS.ReceiveMessage",
            Action::DeleteMessageBatch => "AmazonSQS.DeleteMessageBatch",
        }
    }
}

/// Where the endpoint is: the socket address and the `Host` header to send.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub address: SocketAddr,
    host: HeaderValue,
}

impl Endpoint {
    /// Parses `http://IP:PORT` (an optional trailing `/`); only plain HTTP to an IP address,
    /// since the benchmarks run on loopback.
    pub fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let authority = url
            .strip_prefix("http://")
            .context("the endpoint must start with http://")?
            .trim_end_matches('/');
        let address: SocketAddr = authority
            .parse()
            .with_context(|| format!("the endpoint must be http://IP:PORT, not {url}"))?;
        let host = HeaderValue::from_str(authority).context("endpoint host header")?;
        Ok(Endpoint { address, host })
    }
}

/// One HTTP/1.1 connection, reopened when the server closes it. Runs on its client's task.
pub struct SqsConnection {
    endpoint: Endpoint,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl SqsConnection {
    pub fn new(endpoint: Endpoint) -> SqsConnection {
        SqsConnection {
            endpoint,
            sender: None,
        }
    }

    /// Sends one SQS request (AWS JSON 1.0) and returns the body of its 200 answer; any other
    /// status is an error quoting the body. `wait` is the request's own long poll, if any.
    pub async fn call(
        &mut self,
        action: Action,
        body: Bytes,
        wait: Duration,
        meter: &SqsMeter,
    ) -> anyhow::Result<Bytes> {
        let request = Request::post("/")
            .header(HOST, self.endpoint.host.clone())
            .header(CONTENT_TYPE, CONTENT_TYPE_JSON)
            .header("x-amz-target", action.target())
            .header("x-amz-date", AMZ_DATE_VALUE)
            .header(AUTHORIZATION, AUTHORIZATION_VALUE)
            .body(Full::new(body))?;
        self.send(action.name(), request, wait, meter).await
    }

    /// Sends one SNS request in the Query protocol (`body` is the form, `Action=...` included)
    /// and returns the body of its 200 answer (XML); `action` names it in errors.
    pub async fn call_sns(
        &mut self,
        action: &str,
        body: Bytes,
        meter: &SqsMeter,
    ) -> anyhow::Result<Bytes> {
        let request = Request::post("/")
            .header(HOST, self.endpoint.host.clone())
            .header(CONTENT_TYPE, CONTENT_TYPE_FORM)
            .header("x-amz-date", AMZ_DATE_VALUE)
            .header(AUTHORIZATION, AUTHORIZATION_VALUE_SNS)
            .body(Full::new(body))?;
        self.send(action, request, Duration::ZERO, meter).await
    }

    async fn send(
        &mut self,
        label: &str,
        request: Request<Full<Bytes>>,
        wait: Duration,
        meter: &SqsMeter,
    ) -> anyhow::Result<Bytes> {
        let limit = wait + RESPONSE_TIMEOUT;
        let answer = tokio::time::timeout(limit, self.exchange(label, request, meter));
        let (status, body) = answer
            .await
            .with_context(|| format!("{label}: no answer within {limit:?}"))??;
        if status != StatusCode::OK {
            let quoted = &body[..body.len().min(ERROR_BODY_QUOTED_MAX)];
            bail!(
                "{label}: HTTP {status}: {}",
                String::from_utf8_lossy(quoted)
            );
        }
        Ok(body)
    }

    async fn exchange(
        &mut self,
        label: &str,
        request: Request<Full<Bytes>>,
        meter: &SqsMeter,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let sender = self.ready(meter).await?;
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("{label}: request failed"))?;
        meter.requests.add(1);
        let closing = response
            .headers()
            .get(CONNECTION)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if closing {
            // The server closes after this answer: the next request needs a new connection.
            self.sender = None;
        }
        Ok((status, body))
    }

    /// The open connection, or a new one if there is none or the server closed it.
    async fn ready(&mut self, meter: &SqsMeter) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if let Some(sender) = &mut self.sender
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            self.sender = Some(self.connect().await?);
            meter.connects.add(1);
        }
        self.sender.as_mut().context("no connection")
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let address = self.endpoint.address;
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .with_context(|| format!("connect to {address}: timed out"))?
            .with_context(|| format!("connect to {address}"))?;
        // Requests are small and answered one at a time: never wait to fill a segment.
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // The connection's driver; it ends when either side closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_as_ip_and_port() {
        let endpoint = Endpoint::parse("http://127.0.0.1:9324/").expect("valid endpoint");
        assert_eq!(endpoint.address, "127.0.0.1:9324".parse().expect("address"));
        assert_eq!(endpoint.host, "127.0.0.1:9324");
        assert!(Endpoint::parse("https://127.0.0.1:9324").is_err());
        assert!(Endpoint::parse("http://localhost:9324").is_err());
    }
}

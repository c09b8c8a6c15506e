//! SigV4 on the SQS API with access keys configured: the AWS SDK signing with the right key
//! works; a wrong secret, an unknown key, no credentials and a stale date are refused with
//! AWS's codes, in the request's protocol; a signed Query-protocol request works.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::Broker;
use common::sqs::{RawResponse, client_with_keys, create_queue, error_code, raw_request};
use common::within;
use mqbridge::config::AwsAccessKey;
use mqbridge::{Config, Server};
use mqbridge_sqs::sigv4::{self, Credentials};

const KEY_ID: &str = "AKIAMQBRIDGETEST";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// How far back the stale request is dated: past AWS's 15-minute window.
const STALE_SECS: u64 = 20 * 60;

const JSON: (&str, &str) = ("Content-Type", "application/x-amz-json-1.0");
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn key(user: &str) -> AwsAccessKey {
    AwsAccessKey {
        access_key_id: KEY_ID.to_owned(),
        secret_access_key: SECRET.to_owned(),
        user: user.to_owned(),
    }
}

async fn broker_with_keys() -> Broker {
    Broker::start_with(|config| config.aws_access_keys = vec![key("guest")]).await
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Posts `body` to `/` signed with `secret`, dated `signed_at` (Unix seconds), signing the
/// host, the date and `headers`, as an SDK does.
async fn signed_post(
    broker: &Broker,
    headers: &[(&str, &str)],
    body: &[u8],
    secret: &str,
    signed_at: u64,
) -> RawResponse {
    let host = broker.server.sqs_addr.to_string();
    let amz_date = sigv4::format_amz_date(signed_at);
    let mut all = vec![("Host", host.as_str()), ("X-Amz-Date", amz_date.as_str())];
    all.extend_from_slice(headers);
    let request = sigv4::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &all,
    };
    let credentials = Credentials {
        access_key_id: KEY_ID,
        secret_access_key: secret,
        region: "us-east-1",
        service: "sqs",
    };
    let authorization = sigv4::sign(&request, body, &credentials, &amz_date);
    // The raw helper writes its own Host line; ours is the same value.
    let mut sent: Vec<(&str, &str)> = all.into_iter().skip(1).collect();
    sent.push(("Authorization", &authorization));
    raw_request(broker, "/", &sent, body).await
}

#[tokio::test]
async fn the_sdk_signing_with_a_configured_key_creates_sends_and_receives() {
    let broker = broker_with_keys().await;
    let client = client_with_keys(&broker, KEY_ID, SECRET);
    let url = create_queue(&client, "signed").await;
    within(
        client
            .send_message()
            .queue_url(&url)
            .message_body("hello")
            .send(),
    )
    .await
    .expect("SendMessage");
    let received = within(client.receive_message().queue_url(&url).send())
        .await
        .expect("ReceiveMessage");
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body.as_deref(), Some("hello"));
}

#[tokio::test]
async fn a_wrong_secret_or_an_unknown_key_is_refused() {
    let broker = broker_with_keys().await;
    let wrong_secret = client_with_keys(&broker, KEY_ID, "not-the-secret");
    let result = within(wrong_secret.list_queues().send()).await;
    assert_eq!(error_code(result), "SignatureDoesNotMatch");
    let unknown_key = client_with_keys(&broker, "AKIAUNKNOWN", SECRET);
    let result = within(unknown_key.list_queues().send()).await;
    assert_eq!(error_code(result), "InvalidClientTokenId");
}

#[tokio::test]
async fn a_request_without_credentials_is_missing_its_token() {
    let broker = broker_with_keys().await;
    let target = ("X-Amz-Target", "AmazonSQS.ListQueues");
    let answer = raw_request(&broker, "/", &[JSON, target], b"{}").await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(
        answer.header("x-amzn-query-error"),
        Some("MissingAuthenticationToken;Sender")
    );
    assert!(
        answer
            .body
            .contains(r#""__type":"com.amazonaws.sqs#MissingAuthenticationToken""#),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn a_request_signed_20_minutes_ago_is_refused_as_expired() {
    let broker = broker_with_keys().await;
    let target = ("X-Amz-Target", "AmazonSQS.ListQueues");
    let now = now_secs();
    let fresh = signed_post(&broker, &[JSON, target], b"{}", SECRET, now).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let stale = signed_post(&broker, &[JSON, target], b"{}", SECRET, now - STALE_SECS).await;
    assert_eq!(stale.status, 403, "{}", stale.body);
    assert_eq!(
        stale.header("x-amzn-query-error"),
        Some("SignatureDoesNotMatch;Sender")
    );
    let signed = sigv4::format_amz_date(now - STALE_SECS);
    assert!(
        stale
            .body
            .contains(&format!("Signature expired: {signed} is now earlier than")),
        "{}",
        stale.body
    );
}

#[tokio::test]
async fn a_signed_query_protocol_request_works_and_a_changed_one_does_not() {
    let broker = broker_with_keys().await;
    let now = now_secs();
    let form = b"Action=CreateQueue&QueueName=formq&Version=2012-11-05";
    let created = signed_post(&broker, &[FORM], form, SECRET, now).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(
        created.body.contains("<CreateQueueResponse"),
        "{}",
        created.body
    );
    assert!(created.body.contains("/000000000000/formq</QueueUrl>"));

    // Signed for one body, sent with another: the signature covers the form.
    let host = broker.server.sqs_addr.to_string();
    let amz_date = sigv4::format_amz_date(now);
    let headers = [
        ("Host", host.as_str()),
        ("X-Amz-Date", amz_date.as_str()),
        FORM,
    ];
    let request = sigv4::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
    };
    let credentials = Credentials {
        access_key_id: KEY_ID,
        secret_access_key: SECRET,
        region: "us-east-1",
        service: "sqs",
    };
    let authorization = sigv4::sign(&request, form, &credentials, &amz_date);
    let sent = [
        ("X-Amz-Date", amz_date.as_str()),
        FORM,
        ("Authorization", authorization.as_str()),
    ];
    let changed = b"Action=DeleteQueue&QueueUrl=/000000000000/formq&Version=2012-11-05";
    let refused = raw_request(&broker, "/", &sent, changed).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("<ErrorResponse"), "{}", refused.body);
    assert!(refused.body.contains("<Code>SignatureDoesNotMatch</Code>"));
    assert!(refused.body.contains(
        "<Message>The request signature we calculated does not match the signature you \
         provided."
    ));
}

#[tokio::test]
async fn start_up_refuses_a_key_of_a_user_the_broker_does_not_have() {
    let data = common::TempDir::new();
    let config = Config {
        amqp_port: 0,
        mqtt_port: 0,
        stomp_port: 0,
        ws_port: 0,
        sqs_port: 0,
        data_dir: data.0.clone(),
        aws_access_keys: vec![key("nobody")],
        ..Config::default()
    };
    let Err(error) = Server::start(config).await else {
        panic!("a key of an unknown user was accepted");
    };
    assert!(error.to_string().contains("nobody"), "{error}");
}

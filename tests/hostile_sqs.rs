//! Hostile SQS requests, JSON and Query, each on its own raw HTTP connection: every case
//! asserts the HTTP status and AWS's error code (`__type` for JSON, `<Code>` for Query), and
//! after each the AMQP bystander (tests/common/hostile.rs) must still work with its stored
//! messages intact. Its durable queue `bystander-store` is also an SQS queue, so several
//! cases aim at it.
//!
//! Not covered: a request head that trickles in forever (slow loris). The SQS listener sets no
//! header read timeout today, so there is no answer to assert.

mod common;

use common::Broker;
use common::hostile::{Bystander, promptly};
use common::sqs::{RawResponse, raw_exchange, raw_request};

const JSON: (&str, &str) = ("Content-Type", "application/x-amz-json-1.0");
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const STORE_URL: &str = "http://localhost/000000000000/bystander-store";

/// One hostile request and what AWS answers to it.
struct Case {
    name: &'static str,
    /// `X-Amz-Target` action for JSON; `None` for a Query (form) request.
    target: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn json(name: &'static str, target: &'static str, body: impl Into<Vec<u8>>) -> Case {
    Case {
        name,
        target: Some(target),
        body: body.into(),
        status: 400,
        code: "",
    }
}

fn query(name: &'static str, body: impl Into<Vec<u8>>) -> Case {
    Case {
        name,
        target: None,
        body: body.into(),
        status: 400,
        code: "",
    }
}

impl Case {
    fn expect(self, status: u16, code: &'static str) -> Case {
        Case {
            status,
            code,
            ..self
        }
    }
}

/// Runs each case on a fresh connection and checks the bystander after each.
async fn run(cases: Vec<Case>) {
    let broker = Broker::start().await;
    let mut bystander = Bystander::start(&broker).await;
    for case in cases {
        let answer = send(&broker, &case).await;
        assert_eq!(answer.status, case.status, "{}: {}", case.name, answer.body);
        let code = match case.target {
            Some(_) => format!(r#""__type":"com.amazonaws.sqs#{}""#, case.code),
            None => format!("<Code>{}</Code>", case.code),
        };
        assert!(
            answer.body.contains(&code),
            "{}: {}",
            case.name,
            answer.body
        );
        bystander.check().await;
    }
}

async fn send(broker: &Broker, case: &Case) -> RawResponse {
    let target = case.target.map(|action| format!("AmazonSQS.{action}"));
    let headers = match &target {
        Some(target) => vec![JSON, ("X-Amz-Target", target.as_str())],
        None => vec![FORM],
    };
    promptly(case.name, raw_request(broker, "/", &headers, &case.body)).await
}

/// A SendMessage body for the bystander's queue with `extra` JSON members.
fn send_message(extra: &str) -> String {
    format!(r#"{{"QueueUrl":"{STORE_URL}","MessageBody":"x"{extra}}}"#)
}

/// `count` string message attributes as a JSON member.
fn attributes(count: usize) -> String {
    let members: Vec<String> = (0..count)
        .map(|n| format!(r#""a{n}":{{"DataType":"String","StringValue":"v"}}"#))
        .collect();
    format!(r#","MessageAttributes":{{{}}}"#, members.join(","))
}

/// A batch of `count` entries with the given ids (`n` for distinct ones, else `same`).
fn batch(action_entry: &str, ids: impl Iterator<Item = String>) -> String {
    let entries: Vec<String> = ids
        .map(|id| format!(r#"{{"Id":"{id}",{action_entry}}}"#))
        .collect();
    format!(
        r#"{{"QueueUrl":"{STORE_URL}","Entries":[{}]}}"#,
        entries.join(",")
    )
}

#[tokio::test]
async fn malformed_json_bodies() {
    run(vec![
        json("not JSON", "ListQueues", "{not json").expect(400, "MalformedQueryString"),
        json("an array", "ListQueues", "[1,2]").expect(400, "InvalidParameterValue"),
        json("deep nesting", "ListQueues", "[".repeat(100_000)).expect(400, "MalformedQueryString"),
        json(
            "not UTF-8",
            "ListQueues",
            b"{\"QueueNamePrefix\":\"\xff\"}".to_vec(),
        )
        .expect(400, "MalformedQueryString"),
        json("a number for a name", "CreateQueue", r#"{"QueueName":7}"#)
            .expect(400, "InvalidParameterValue"),
        json(
            "an object for a body",
            "SendMessage",
            send_message(r#","MessageBody":{}"#),
        )
        .expect(400, "InvalidParameterValue"),
    ])
    .await;
}

#[tokio::test]
async fn unknown_actions() {
    run(vec![
        json("an unknown action", "Frobnicate", "{}").expect(400, "InvalidAction"),
        query("an unknown Query action", "Action=Frobnicate").expect(400, "InvalidAction"),
        query("no Action", "QueueName=q").expect(400, "MissingParameter"),
    ])
    .await;
}

#[tokio::test]
async fn messages_over_the_limits() {
    let big = "x".repeat(1024 * 1024 + 1);
    run(vec![
        json(
            "a body over 1 MiB",
            "SendMessage",
            send_message(&format!(r#","MessageBody":"{big}""#)),
        )
        .expect(400, "InvalidParameterValue"),
        json(
            "11 message attributes",
            "SendMessage",
            send_message(&attributes(11)),
        )
        .expect(400, "InvalidParameterValue"),
        json(
            "a NUL in the body",
            "SendMessage",
            send_message(r#","MessageBody":"a\u0000b""#),
        )
        .expect(400, "InvalidMessageContents"),
    ])
    .await;
}

#[tokio::test]
async fn bad_receipt_handles_on_the_stored_queue() {
    let delete =
        |handle: &str| format!(r#"{{"QueueUrl":"{STORE_URL}","ReceiptHandle":"{handle}"}}"#);
    let visibility =
        format!(r#"{{"QueueUrl":"{STORE_URL}","ReceiptHandle":"forged","VisibilityTimeout":0}}"#);
    run(vec![
        json("a forged handle", "DeleteMessage", delete("forged"))
            .expect(400, "ReceiptHandleIsInvalid"),
        json("an empty handle", "DeleteMessage", delete("")).expect(400, "ReceiptHandleIsInvalid"),
        json(
            "a 10 KB handle",
            "DeleteMessage",
            delete(&"A".repeat(10_000)),
        )
        .expect(400, "ReceiptHandleIsInvalid"),
        json(
            "a forged handle's visibility",
            "ChangeMessageVisibility",
            visibility,
        )
        .expect(400, "ReceiptHandleIsInvalid"),
    ])
    .await;
}

#[tokio::test]
async fn bad_batches() {
    let entry = r#""ReceiptHandle":"forged""#;
    run(vec![
        json(
            "11 entries",
            "DeleteMessageBatch",
            batch(entry, (0..11).map(|n| n.to_string())),
        )
        .expect(400, "TooManyEntriesInBatchRequest"),
        json(
            "repeated ids",
            "DeleteMessageBatch",
            batch(entry, ["a", "a"].map(String::from).into_iter()),
        )
        .expect(400, "BatchEntryIdsNotDistinct"),
        json(
            "no entries",
            "DeleteMessageBatch",
            batch(entry, std::iter::empty()),
        )
        .expect(400, "EmptyBatchRequest"),
        json(
            "an id with a space",
            "SendMessageBatch",
            batch(r#""MessageBody":"x""#, ["a b".to_owned()].into_iter()),
        )
        .expect(400, "InvalidBatchEntryId"),
    ])
    .await;
}

#[tokio::test]
async fn malformed_query_requests() {
    let deep = format!("Action=ListQueues&{}=x", vec!["a"; 17].join("."));
    run(vec![
        query("17 name parts", deep).expect(400, "MalformedQueryString"),
        query(
            "not UTF-8",
            b"Action=ListQueues&QueueNamePrefix=\xff\xfe".to_vec(),
        )
        .expect(400, "MalformedQueryString"),
        query(
            "a huge name",
            format!("Action=CreateQueue&QueueName={}", "q".repeat(100_000)),
        )
        .expect(400, "InvalidParameterValue"),
    ])
    .await;
}

#[tokio::test]
async fn oversized_and_lying_requests_at_the_http_layer() {
    let broker = Broker::start().await;
    let mut bystander = Bystander::start(&broker).await;
    // Declares 5 MiB and sends none of it: refused on the header, not after a read timeout.
    let huge = (5 * 1024 * 1024).to_string();
    let headers = [
        JSON,
        ("X-Amz-Target", "AmazonSQS.ListQueues"),
        ("Content-Length", &huge),
    ];
    let answer = promptly(
        "a 5 MiB Content-Length",
        raw_exchange(&broker, "/", &headers, b""),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert!(
        answer.body.contains("RequestEntityTooLarge"),
        "{}",
        answer.body
    );
    bystander.check().await;
    // A Content-Length that is no number, and two that disagree (RFC 9112 6.3): 400.
    for lengths in [&["abc"][..], &["2", "3"][..]] {
        let mut headers = vec![FORM];
        headers.extend(lengths.iter().map(|length| ("Content-Length", *length)));
        let answer = promptly(
            "a bad Content-Length",
            raw_exchange(&broker, "/", &headers, b"ab"),
        )
        .await;
        assert_eq!(answer.status, 400, "{lengths:?}");
        bystander.check().await;
    }
    // 200 headers: over what the HTTP server parses (RFC 6585 431).
    let names: Vec<String> = (0..200).map(|n| format!("X-Header-{n}")).collect();
    let mut headers: Vec<(&str, &str)> = names.iter().map(|name| (name.as_str(), "v")).collect();
    headers.push(FORM);
    let answer = promptly(
        "200 headers",
        raw_request(&broker, "/", &headers, b"Action=ListQueues"),
    )
    .await;
    assert_eq!(answer.status, 431);
    bystander.check().await;
}

//! Hostile SNS requests, JSON and Query, each on its own raw HTTP connection: every case
//! asserts the HTTP status and AWS's error code (`__type` for JSON, `<Code>` for Query). The
//! bystander's durable queue is subscribed to the topic the cases publish to, so a refused
//! Publish that still delivered would show up as one message too many in
//! [`Bystander::check`], which runs after every case.

mod common;

use common::Broker;
use common::hostile::{Bystander, promptly};
use common::sqs::{RawResponse, raw_request};
use serde_json::{Value, json};

const TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:hostile";
const STORE_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:bystander-store";

/// A broker, its bystander, and topic `hostile` delivering raw to the bystander's queue.
async fn setup() -> (Broker, Bystander) {
    let broker = Broker::start().await;
    let bystander = Bystander::start(&broker).await;
    let created = call(&broker, "CreateTopic", &json!({"Name": "hostile"})).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let subscribe = json!({
        "TopicArn": TOPIC,
        "Protocol": "sqs",
        "Endpoint": STORE_ARN,
        "Attributes": {"RawMessageDelivery": "true"},
    });
    let subscribed = call(&broker, "Subscribe", &subscribe).await;
    assert_eq!(subscribed.status, 200, "{}", subscribed.body);
    (broker, bystander)
}

/// A JSON-protocol request with a raw body.
async fn call_raw(broker: &Broker, action: &str, body: &[u8]) -> RawResponse {
    let target = format!("SNS_20100331.{action}");
    let headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("X-Amz-Target", target.as_str()),
    ];
    promptly(action, raw_request(broker, "/", &headers, body)).await
}

async fn call(broker: &Broker, action: &str, body: &Value) -> RawResponse {
    call_raw(broker, action, body.to_string().as_bytes()).await
}

#[track_caller]
fn assert_json_error(answer: &RawResponse, status: u16, shape: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let expected = format!(r#""__type":"com.amazonaws.sns#{shape}""#);
    assert!(answer.body.contains(&expected), "{}", answer.body);
}

/// Runs JSON cases (action, body, status, `__type` shape), checking the bystander after each.
async fn run(cases: Vec<(&str, Value, u16, &str)>) {
    let (broker, mut bystander) = setup().await;
    for (action, body, status, shape) in cases {
        let answer = call(&broker, action, &body).await;
        assert_json_error(&answer, status, shape);
        bystander.check().await;
    }
}

fn subscribe_with_policy(policy: &str) -> Value {
    json!({
        "TopicArn": TOPIC,
        "Protocol": "sqs",
        "Endpoint": STORE_ARN,
        "Attributes": {"FilterPolicy": policy},
    })
}

#[tokio::test]
async fn publishes_that_must_not_be_delivered() {
    let big = "x".repeat(256 * 1024 + 1);
    let missing = "arn:aws:sns:us-east-1:000000000000:nope";
    run(vec![
        (
            "Publish",
            json!({"TopicArn": TOPIC, "Message": big}),
            400,
            "InvalidParameterException",
        ),
        (
            "Publish",
            json!({"TopicArn": missing, "Message": "m"}),
            404,
            "NotFoundException",
        ),
        (
            "Publish",
            json!({"TopicArn": TOPIC}),
            400,
            "InvalidParameterException",
        ),
        (
            "Publish",
            json!({"TopicArn": TOPIC, "Message": "m", "Subject": "two\nlines"}),
            400,
            "InvalidParameterException",
        ),
        (
            "Publish",
            json!({"TopicArn": TOPIC, "Message": "{\"sqs\":\"x\"}", "MessageStructure": "json"}),
            400,
            "InvalidParameterException",
        ),
        (
            "Publish",
            json!({"TopicArn": TOPIC, "Message": "m",
                   "MessageAttributes": {"a": {"DataType": "Number", "StringValue": "ten"}}}),
            400,
            "InvalidParameterValueException",
        ),
    ])
    .await;
}

#[tokio::test]
async fn batches_that_must_not_be_delivered() {
    let entry = |id: &str| json!({"Id": id, "Message": "m"});
    let eleven: Vec<Value> = (0..11).map(|n| entry(&n.to_string())).collect();
    run(vec![
        (
            "PublishBatch",
            json!({"TopicArn": TOPIC, "PublishBatchRequestEntries": eleven}),
            400,
            "TooManyEntriesInBatchRequestException",
        ),
        (
            "PublishBatch",
            json!({"TopicArn": TOPIC, "PublishBatchRequestEntries": [entry("a"), entry("a")]}),
            400,
            "BatchEntryIdsNotDistinctException",
        ),
        (
            "PublishBatch",
            json!({"TopicArn": TOPIC, "PublishBatchRequestEntries": []}),
            400,
            "EmptyBatchRequestException",
        ),
    ])
    .await;
}

#[tokio::test]
async fn hostile_filter_policies() {
    let deep = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let many_keys = r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#;
    // 3 keys of 6 values each: 216 combinations, over AWS's 150.
    let values = r#"["1","2","3","4","5","6"]"#;
    let combinations = format!(r#"{{"a":{values},"b":{values},"c":{values}}}"#);
    let invalid = "InvalidParameterException";
    run(vec![
        (
            "Subscribe",
            subscribe_with_policy("{not json"),
            400,
            invalid,
        ),
        ("Subscribe", subscribe_with_policy(&deep), 400, invalid),
        ("Subscribe", subscribe_with_policy(many_keys), 400, invalid),
        (
            "Subscribe",
            subscribe_with_policy(&combinations),
            400,
            invalid,
        ),
        (
            "Subscribe",
            subscribe_with_policy(r#"{"a":[{"nope":1}]}"#),
            400,
            invalid,
        ),
        (
            "Subscribe",
            subscribe_with_policy(r#"{"a":"not a list"}"#),
            400,
            invalid,
        ),
    ])
    .await;
}

#[tokio::test]
async fn hostile_subscriptions_and_topics() {
    let invalid = "InvalidParameterException";
    let subscribe = |protocol: &str, endpoint: &str| json!({"TopicArn": TOPIC, "Protocol": protocol, "Endpoint": endpoint});
    run(vec![
        (
            "Subscribe",
            subscribe("carrier-pigeon", "coop"),
            400,
            invalid,
        ),
        ("Subscribe", subscribe("sqs", "not an arn"), 400, invalid),
        ("CreateTopic", json!({"Name": "bad name!"}), 400, invalid),
        (
            "CreateTopic",
            json!({"Name": "t".repeat(257)}),
            400,
            invalid,
        ),
        ("Frobnicate", json!({}), 400, "InvalidAction"),
    ])
    .await;
}

#[tokio::test]
async fn malformed_bodies_and_query_names() {
    let (broker, mut bystander) = setup().await;
    let invalid = "InvalidParameterException";
    for body in [
        &b"{not json"[..],
        &b"[1,2]"[..],
        &b"{\"Name\":\"\xff\"}"[..],
    ] {
        let answer = call_raw(&broker, "CreateTopic", body).await;
        assert_json_error(&answer, 400, invalid);
        bystander.check().await;
    }
    let deep = "[".repeat(100_000);
    assert_json_error(
        &call_raw(&broker, "ListTopics", deep.as_bytes()).await,
        400,
        invalid,
    );
    bystander.check().await;
    // Query: a parameter name of 17 dot-separated parts, and an unknown action.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let deep_name = format!(
        "Action=Publish&Version=2010-03-31&TopicArn={TOPIC}&Message=m&{}=v",
        vec!["a"; 17].join(".")
    );
    for (body, code) in [
        (deep_name.as_str(), "InvalidParameter"),
        ("Action=Explode&Version=2010-03-31", "InvalidAction"),
    ] {
        let answer = promptly(code, raw_request(&broker, "/", &form, body.as_bytes())).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        let expected = format!("<Code>{code}</Code>");
        assert!(answer.body.contains(&expected), "{}", answer.body);
        bystander.check().await;
    }
}

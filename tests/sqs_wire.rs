//! The SQS wire itself: the Query protocol's XML, error shapes and headers as AWS sends them,
//! and malformed or oversized requests (a 4xx answer, never a 5xx or a dropped connection).

mod common;

use common::Broker;
use common::sqs::{query, raw_exchange, raw_request};

/// A request header: name and value.
type Header = (&'static str, &'static str);

const JSON: Header = ("Content-Type", "application/x-amz-json-1.0");

#[tokio::test]
async fn the_query_protocol_answers_in_xml() {
    let broker = Broker::start().await;
    let created = query(
        &broker,
        "/",
        "Action=CreateQueue&QueueName=xmlq&Version=2012-11-05",
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(
        created
            .body
            .contains("<CreateQueueResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\">")
    );
    let url = format!("http://{}/000000000000/xmlq", broker.server.sqs_addr);
    assert!(
        created
            .body
            .contains(&format!("<QueueUrl>{url}</QueueUrl>"))
    );
    assert!(created.body.contains("<RequestId>"));
    assert!(created.header("x-amzn-requestid").is_some());

    // Posted to the queue URL's path, as older SDKs do.
    let sent = query(
        &broker,
        "/000000000000/xmlq",
        "Action=SendMessage&MessageBody=a%3Cb&MessageAttribute.1.Name=k\
         &MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=v",
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    // MD5 of "a<b".
    assert!(sent.body.contains("<MD5OfMessageBody>"));
    assert!(sent.body.contains("<MD5OfMessageAttributes>"));

    let received = query(
        &broker,
        "/",
        &format!(
            "Action=ReceiveMessage&QueueUrl={url}&MessageAttributeName.1=All&AttributeName.1=All"
        ),
    )
    .await;
    assert_eq!(received.status, 200, "{}", received.body);
    assert!(received.body.contains("<ReceiveMessageResult><Message>"));
    assert!(received.body.contains("<Body>a&lt;b</Body>"));
    assert!(received.body.contains(
        "<MessageAttribute><Name>k</Name><Value><DataType>String</DataType>\
         <StringValue>v</StringValue></Value></MessageAttribute>"
    ));
    assert!(
        received.body.contains(
            "<Attribute><Name>ApproximateReceiveCount</Name><Value>1</Value></Attribute>"
        )
    );
}

#[tokio::test]
async fn query_errors_are_error_responses() {
    let broker = Broker::start().await;
    let missing = query(&broker, "/", "Action=GetQueueUrl&QueueName=nope").await;
    assert_eq!(missing.status, 400);
    assert!(missing.body.contains("<ErrorResponse"));
    assert!(missing.body.contains("<Type>Sender</Type>"));
    assert!(
        missing
            .body
            .contains("<Code>AWS.SimpleQueueService.NonExistentQueue</Code>")
    );
    let unknown = query(&broker, "/", "Action=FlyToTheMoon").await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("<Code>InvalidAction</Code>"));
    let no_action = query(&broker, "/", "QueueName=x").await;
    assert_eq!(no_action.status, 400);
    assert!(no_action.body.contains("<Code>MissingParameter</Code>"));
}

#[tokio::test]
async fn json_errors_carry_the_type_and_the_query_error_header() {
    let broker = Broker::start().await;
    let answer = raw_request(
        &broker,
        "/",
        &[JSON, ("X-Amz-Target", "AmazonSQS.GetQueueUrl")],
        br#"{"QueueName":"nope"}"#,
    )
    .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .body
            .contains(r#""__type":"com.amazonaws.sqs#QueueDoesNotExist""#)
    );
    assert_eq!(
        answer.header("x-amzn-query-error"),
        Some("AWS.SimpleQueueService.NonExistentQueue;Sender")
    );
    assert!(answer.header("x-amzn-requestid").is_some());
    let exists = raw_request(
        &broker,
        "/",
        &[JSON, ("X-Amz-Target", "AmazonSQS.CreateQueue")],
        br#"{"QueueName":"q","Attributes":{"DelaySeconds":"0"}}"#,
    )
    .await;
    assert_eq!(exists.status, 200, "{}", exists.body);
    let conflict = raw_request(
        &broker,
        "/",
        &[JSON, ("X-Amz-Target", "AmazonSQS.CreateQueue")],
        br#"{"QueueName":"q","Attributes":{"VisibilityTimeout":"5"}}"#,
    )
    .await;
    assert_eq!(conflict.status, 400);
    assert!(conflict.body.contains("com.amazonaws.sqs#QueueNameExists"));
    assert_eq!(
        conflict.header("x-amzn-query-error"),
        Some("QueueAlreadyExists;Sender")
    );
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_client_errors() {
    let broker = Broker::start().await;
    let cases: [(&[Header], &[u8]); 4] = [
        (
            &[JSON, ("X-Amz-Target", "AmazonSQS.ListQueues")],
            b"{not json",
        ),
        (&[JSON, ("X-Amz-Target", "AmazonSQS.ListQueues")], b"[1,2]"),
        (
            &[JSON, ("X-Amz-Target", "AmazonSQS.CreateQueue")],
            br#"{"QueueName":7}"#,
        ),
        (
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"Action=ListQueues&\xff\xfe",
        ),
    ];
    for (headers, body) in cases {
        let answer = raw_request(&broker, "/", headers, body).await;
        assert_eq!(
            answer.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            answer.body
        );
    }
    // Refused on the declared length, before any of the body is read.
    let huge = (5 * 1024 * 1024).to_string();
    let headers = [
        JSON,
        ("X-Amz-Target", "AmazonSQS.ListQueues"),
        ("Content-Length", huge.as_str()),
    ];
    let answer = raw_exchange(&broker, "/", &headers, b"").await;
    assert_eq!(answer.status, 413);
    // The broker still answers.
    let ok = query(&broker, "/", "Action=ListQueues").await;
    assert_eq!(ok.status, 200);
}

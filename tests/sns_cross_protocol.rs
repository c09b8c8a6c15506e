//! One SNS topic, every protocol: STOMP clients subscribe to and send to the topic's exchange
//! (`/exchange/<topic>`), meeting SNS publishers and SQS subscribers there. (The AMQP side is
//! in `sns_delivery.rs`.)

mod common;

use aws_sdk_sns::types::MessageAttributeValue;
use common::sns::{client, create_topic, receive_body, subscribe_queue};
use common::stomp::StompClient;
use common::{Broker, within};
use serde_json::Value;

#[tokio::test]
async fn a_stomp_subscriber_of_the_topic_exchange_gets_sns_publishes_with_attributes() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "weather").await;
    let mut stomp = StompClient::open(&broker).await;
    stomp.subscribe("s", "/exchange/weather", "auto").await;
    let attribute = MessageAttributeValue::builder()
        .data_type("String")
        .string_value("oslo")
        .build()
        .expect("attribute");
    within(
        sns.publish()
            .topic_arn(&topic)
            .message("snow")
            .message_attributes("city", attribute)
            .send(),
    )
    .await
    .expect("Publish");
    let message = stomp.expect_message("snow").await;
    assert_eq!(message.header("city"), Some("oslo"));
    assert_eq!(message.header("persistent"), Some("true"));
    assert!(message.header("message-id").is_some());
}

#[tokio::test]
async fn a_stomp_send_to_the_topic_exchange_reaches_sqs_subscribers_as_a_notification() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "tickets").await;
    let (url, _) = subscribe_queue(&broker, &topic, "tickets-q", &[]).await;
    let mut stomp = StompClient::open(&broker).await;
    stomp.publish("/exchange/tickets/any", "from stomp").await;
    let body = receive_body(&broker, &url).await.expect("a notification");
    let envelope: Value = serde_json::from_str(&body).expect("an envelope");
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["Message"], "from stomp");
}

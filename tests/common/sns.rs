//! SNS test helpers: an `aws-sdk-sns` client for the test broker's shared SQS/SNS endpoint, a
//! topic, and an SQS queue subscribed to it.

use aws_sdk_sns::Client;
use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};

use super::{Broker, within};

pub fn client(broker: &Broker) -> Client {
    let credentials = Credentials::new("test", "test", None, None, "tests");
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(format!("http://{}", broker.server.sqs_addr))
        .build();
    Client::from_conf(config)
}

/// Creates topic `name` and returns its ARN.
pub async fn create_topic(client: &Client, name: &str) -> String {
    within(client.create_topic().name(name).send())
        .await
        .expect("CreateTopic")
        .topic_arn
        .expect("a topic ARN")
}

/// The ARN of SQS queue `name`.
pub fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:us-east-1:000000000000:{name}")
}

/// Creates SQS queue `queue`, subscribes it to `topic_arn` with `attributes`, and returns the
/// queue URL and the subscription ARN.
pub async fn subscribe_queue(
    broker: &Broker,
    topic_arn: &str,
    queue: &str,
    attributes: &[(&str, &str)],
) -> (String, String) {
    let sqs = super::sqs::client(broker);
    let url = super::sqs::create_queue(&sqs, queue).await;
    let mut request = client(broker)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn(queue));
    for (name, value) in attributes {
        request = request.attributes(*name, *value);
    }
    let arn = within(request.send())
        .await
        .expect("Subscribe")
        .subscription_arn
        .expect("a subscription ARN");
    (url, arn)
}

/// Receives one message body from an SQS queue, waiting up to 5 s.
pub async fn receive_body(broker: &Broker, url: &str) -> Option<String> {
    let sqs = super::sqs::client(broker);
    let output = within(
        sqs.receive_message()
            .queue_url(url)
            .wait_time_seconds(5)
            .message_attribute_names("All")
            .send(),
    )
    .await
    .expect("ReceiveMessage");
    let message = output.messages?.into_iter().next()?;
    if let Some(handle) = &message.receipt_handle {
        within(
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(handle)
                .send(),
        )
        .await
        .expect("DeleteMessage");
    }
    message.body
}

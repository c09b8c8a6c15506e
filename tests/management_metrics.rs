//! `/metrics` and `/metrics/detailed` on the management port: RabbitMQ's metric names with the
//! values the broker's state gives them, read after real AMQP traffic.

mod common;

use common::management::{Api, sample};
use common::{Broker, eventually, next_delivery, publish_with, within};
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

/// Two durable queues; four persistent messages on `metered`, a consumer with prefetch 2 that
/// acknowledged the first. Returns the consumer, which holds the other two unacknowledged.
async fn traffic(channel: &lapin::Channel) -> lapin::Consumer {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    for queue in ["metered", "idle"] {
        within(channel.queue_declare(queue.into(), durable, FieldTable::default()))
            .await
            .expect("declare");
    }
    let persistent = BasicProperties::default().with_delivery_mode(2);
    for body in [b"1", b"2", b"3", b"4"] {
        publish_with(channel, "", "metered", body, persistent.clone()).await;
    }
    within(channel.basic_qos(2, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut consumer = within(channel.basic_consume(
        "metered".into(),
        "c".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("consume");
    let first = next_delivery(&mut consumer).await;
    within(first.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    consumer
}

#[tokio::test]
async fn metrics_count_connections_queues_messages_and_journal_writes() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    let _consumer = traffic(&channel).await;
    // Prefetch 2: after one ack, two are unacknowledged and one is ready.
    eventually("one ack, two unacknowledged, one ready", || async {
        let text = api.metrics("/metrics").await;
        sample(&text, "rabbitmq_global_messages_acknowledged_total") == Some(1.0)
            && sample(&text, "rabbitmq_queue_messages_unacked") == Some(2.0)
            && sample(&text, "rabbitmq_queue_messages_ready") == Some(1.0)
    })
    .await;
    let text = api.metrics("/metrics").await;
    assert_eq!(sample(&text, "rabbitmq_connections"), Some(1.0));
    let amqp = "mqbridge_connections{listener=\"amqp\",protocol=\"AMQP 0-9-1\"}";
    assert_eq!(sample(&text, amqp), Some(1.0));
    let mqtt = "mqbridge_connections{listener=\"mqtt\",protocol=\"MQTT\"}";
    assert_eq!(sample(&text, mqtt), Some(0.0));
    assert_eq!(sample(&text, "rabbitmq_queues"), Some(2.0));
    assert_eq!(sample(&text, "rabbitmq_consumers"), Some(1.0));
    assert_eq!(sample(&text, "rabbitmq_queue_messages"), Some(3.0));
    assert_eq!(
        sample(&text, "rabbitmq_global_messages_received_total"),
        Some(4.0)
    );
    assert_eq!(
        sample(&text, "rabbitmq_global_messages_delivered_total"),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, "rabbitmq_alarms_memory_used_watermark"),
        Some(0.0)
    );
    assert!(sample(&text, "rabbitmq_process_resident_memory_bytes").is_some_and(|b| b > 0.0));
    // Persistent messages on a durable queue were synced before they were confirmed.
    assert!(sample(&text, "rabbitmq_io_sync_ops_total").is_some_and(|n| n >= 1.0));
    assert!(sample(&text, "rabbitmq_io_write_bytes_total").is_some_and(|n| n > 0.0));
    assert!(text.contains("# TYPE rabbitmq_global_messages_received_total counter"));

    assert!(
        !text.contains("rabbitmq_detailed_"),
        "per-queue samples only on /metrics/detailed"
    );
    assert_detailed(&api).await;
    broker.shutdown().await;
}

async fn assert_detailed(api: &Api) {
    let detailed = api.metrics("/metrics/detailed").await;
    let ready = |queue: &str| {
        let name =
            format!("rabbitmq_detailed_queue_messages_ready{{vhost=\"/\",queue=\"{queue}\"}}");
        sample(&detailed, &name)
    };
    assert_eq!(ready("metered"), Some(1.0));
    assert_eq!(ready("idle"), Some(0.0));
    let unacked = "rabbitmq_detailed_queue_messages_unacked{vhost=\"/\",queue=\"metered\"}";
    assert_eq!(sample(&detailed, unacked), Some(2.0));
    let published =
        "rabbitmq_detailed_queue_messages_published_total{vhost=\"/\",queue=\"metered\"}";
    assert_eq!(sample(&detailed, published), Some(4.0));
}

#[tokio::test]
async fn message_totals_survive_the_deletion_of_their_queue() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    common::declare(&channel, "brief", FieldTable::default()).await;
    common::publish(&channel, "", "brief", b"x").await;
    eventually("the publish is counted", || async {
        let text = api.metrics("/metrics").await;
        sample(&text, "rabbitmq_global_messages_received_total") == Some(1.0)
    })
    .await;
    let (status, _) = api.delete("/api/queues/%2F/brief").await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    let text = api.metrics("/metrics").await;
    assert_eq!(sample(&text, "rabbitmq_queues"), Some(0.0));
    assert_eq!(
        sample(&text, "rabbitmq_global_messages_received_total"),
        Some(1.0),
        "a counter never goes down"
    );
    broker.shutdown().await;
}

//! What `/api/connections` and `/metrics` show of each client connection: the user and vhost
//! it logged in to, its own name for itself, its channels and the messages it moved.

mod common;

use common::management::{Api, connection_path, listed, sample};
use common::mqtt::v5::server_disconnect;
use common::mqtt::{next_publish, subscribed};
use common::stomp::StompClient;
use common::{
    Broker, assert_round_trip, connect_url, declare, eventually, get, next_error, publish,
    reply_code, within,
};
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use rumqttc::QoS;
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;
use serde_json::Value;

/// How long one turn of an MQTT event loop is driven while waiting for something else.
const POLL: std::time::Duration = std::time::Duration::from_millis(50);

#[tokio::test]
async fn an_amqp_connection_shows_its_user_vhost_name_channels_and_messages() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let properties = ConnectionProperties::default().with_connection_name("billing".into());
    let connection = within(Connection::connect(&broker.amqp_url(), properties))
        .await
        .expect("connect");
    let channel = within(connection.create_channel()).await.expect("channel");
    let _second = within(connection.create_channel()).await.expect("channel");
    declare(&channel, "invoices", FieldTable::default()).await;
    for body in [b"a", b"b", b"c"] {
        publish(&channel, "", "invoices", body).await;
    }
    assert!(get(&channel, "invoices").await.is_some());
    let taken = within(channel.basic_get("invoices".into(), BasicGetOptions { no_ack: false }))
        .await
        .expect("basic.get")
        .expect("a message");
    within(taken.delivery.ack(BasicAckOptions::default()))
        .await
        .expect("ack");

    let entry = listed(&api, "connection_name", "billing").await;
    assert_eq!(entry["user"], "guest");
    assert_eq!(entry["vhost"], "/");
    assert_eq!(entry["protocol"], "AMQP 0-9-1");
    assert_eq!(entry["channels"], 2);
    assert_eq!(entry["messages_published"], 3);
    assert_eq!(entry["messages_delivered"], 2);
    let channels = api.get_ok("/api/channels").await;
    let names: Vec<&str> = channels
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let connection_name = entry["name"].as_str().expect("name");
    assert_eq!(
        names,
        [
            format!("{connection_name} (1)"),
            format!("{connection_name} (2)")
        ]
    );
    assert_eq!(channels[0]["user"], "guest");
    let text = api.metrics("/metrics").await;
    assert_eq!(sample(&text, "rabbitmq_channels"), Some(2.0), "{text}");

    within(connection.close(200, "done".into()))
        .await
        .expect("close");
    // Totals outlive the connection.
    eventually("the AMQP totals", || async {
        let text = api.metrics("/metrics").await;
        let published = r#"mqbridge_protocol_messages_published_total{protocol="AMQP 0-9-1"}"#;
        let delivered = r#"mqbridge_protocol_messages_delivered_total{protocol="AMQP 0-9-1"}"#;
        let acknowledged =
            r#"mqbridge_protocol_messages_acknowledged_total{protocol="AMQP 0-9-1"}"#;
        sample(&text, published) == Some(3.0)
            && sample(&text, delivered) == Some(2.0)
            && sample(&text, acknowledged) == Some(1.0)
    })
    .await;
}

#[tokio::test]
async fn an_mqtt_connection_shows_its_client_id_and_counts_by_protocol() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let mut options = broker.mqtt_options("sensor-7");
    options.set_credentials("guest", "guest");
    let mut mqtt = broker.mqtt(options).await;
    mqtt.client
        .subscribe("readings/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut mqtt.events).await;
    for value in ["20.5", "21.0"] {
        mqtt.client
            .publish("readings/kitchen", QoS::AtLeastOnce, false, value)
            .await
            .expect("publish");
    }
    for _ in 0..2 {
        next_publish(&mut mqtt.events).await;
    }

    let entry = listed(&api, "client_id", "sensor-7").await;
    assert_eq!(entry["user"], "guest");
    assert_eq!(entry["vhost"], "/");
    assert_eq!(entry["protocol"], "MQTT");
    assert_eq!(entry["messages_published"], 2);
    assert_eq!(entry["messages_delivered"], 2);
    let text = api.metrics("/metrics").await;
    let published = r#"mqbridge_protocol_messages_published_total{protocol="MQTT"}"#;
    assert_eq!(sample(&text, published), Some(2.0), "{text}");
    // rumqttc sends its PUBACKs as its event loop runs: drive it until both are counted.
    let acknowledged = r#"mqbridge_protocol_messages_acknowledged_total{protocol="MQTT"}"#;
    within(async {
        loop {
            let polled = tokio::time::timeout(POLL, mqtt.events.poll()).await;
            if let Ok(Err(error)) = polled {
                panic!("mqtt connection failed: {error}");
            }
            if sample(&api.metrics("/metrics").await, acknowledged) == Some(2.0) {
                return;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_connection_not_yet_logged_in_has_no_user() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let _idle = tokio::net::TcpStream::connect(broker.server.stomp_addr)
        .await
        .expect("tcp");
    eventually("the idle socket is listed", || async {
        let (_, connections) = api.get("/api/connections").await;
        connections
            .as_array()
            .is_some_and(|list| list.iter().any(|c| c["protocol"] == "STOMP"))
    })
    .await;
    let (_, connections) = api.get("/api/connections").await;
    let entry = connections
        .as_array()
        .and_then(|list| list.iter().find(|c| c["protocol"] == "STOMP"))
        .expect("listed");
    assert_eq!(entry["user"], Value::Null);
    assert_eq!(entry["client_properties"], serde_json::json!({}));
}

#[tokio::test]
async fn closing_connections_through_the_api_uses_each_protocols_words() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let bystander = broker.connect().await;

    let properties = ConnectionProperties::default().with_connection_name("doomed".into());
    let amqp = within(Connection::connect(&broker.amqp_url(), properties))
        .await
        .expect("connect");
    let mut events = amqp.events_listener();
    let entry = listed(&api, "connection_name", "doomed").await;
    let (status, _) = api.delete(&connection_path(&entry)).await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    let error = next_error(&mut events).await;
    assert_eq!(reply_code(&error), Some(320), "{error}");

    let mut mqtt = broker.mqtt5(broker.mqtt5_options("doomed-5")).await;
    let entry = listed(&api, "client_id", "doomed-5").await;
    api.delete(&connection_path(&entry)).await;
    assert_eq!(
        server_disconnect(&mut mqtt.events).await,
        DisconnectReasonCode::AdministrativeAction
    );

    let mut stomp = StompClient::connect(&broker).await;
    let entry = eventually_one(&api, "STOMP").await;
    api.delete(&connection_path(&entry)).await;
    let error = stomp.expect_error().await;
    assert_eq!(error.header("message"), Some("connection closed"));

    assert_eq!(
        api.delete(&connection_path(&entry)).await.0,
        reqwest::StatusCode::NOT_FOUND,
        "gone once closed"
    );
    assert_round_trip(&bystander, "bystander").await;
}

/// The one listed connection of `protocol`, once listed.
async fn eventually_one(api: &Api, protocol: &str) -> Value {
    let find = || async {
        let (_, connections) = api.get("/api/connections").await;
        connections
            .as_array()
            .and_then(|list| list.iter().find(|c| c["protocol"] == protocol).cloned())
    };
    eventually(&format!("a {protocol} connection"), || async {
        find().await.is_some()
    })
    .await;
    find().await.expect("listed")
}

#[tokio::test]
async fn deleting_a_user_closes_their_connections_and_only_theirs() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    api.put(
        "/api/users/temp",
        serde_json::json!({"password": "pw", "tags": "management"}),
    )
    .await;
    let everything = serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"});
    api.put("/api/permissions/%2F/temp", everything).await;
    let url = format!("amqp://temp:pw@{}/%2f", broker.server.amqp_addr);
    let temp = connect_url(&url).await.expect("temp logs in");
    let mut events = temp.events_listener();
    let guest = broker.connect().await;

    // A management user sees only their own connections.
    let as_temp = Api::as_user(&broker, Some(("temp", "pw")));
    let (_, own) = as_temp.get("/api/connections").await;
    let users: Vec<&str> = own
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["user"].as_str())
        .collect();
    assert_eq!(users, ["temp"]);

    api.delete("/api/users/temp").await;
    let error = next_error(&mut events).await;
    assert_eq!(reply_code(&error), Some(320), "{error}");
    assert_round_trip(&guest, "still-here").await;
}

#[tokio::test]
async fn consumers_are_listed_with_their_queue_and_connection() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let properties = ConnectionProperties::default().with_connection_name("worker".into());
    let connection = within(Connection::connect(&broker.amqp_url(), properties))
        .await
        .expect("connect");
    let channel = within(connection.create_channel()).await.expect("channel");
    declare(&channel, "tasks", FieldTable::default()).await;
    within(channel.basic_qos(7, lapin::options::BasicQosOptions::default()))
        .await
        .expect("qos");
    let _consumer = within(channel.basic_consume(
        "tasks".into(),
        "worker-1".into(),
        lapin::options::BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("consume");
    let mut mqtt = broker.mqtt(broker.mqtt_options("listener")).await;
    mqtt.client
        .subscribe("alerts/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut mqtt.events).await;

    let consumers = api.get_ok("/api/consumers/%2F").await;
    let list = consumers.as_array().expect("list");
    let worker = list
        .iter()
        .find(|c| c["consumer_tag"] == "worker-1")
        .expect("the AMQP consumer");
    assert_eq!(worker["queue"]["name"], "tasks");
    assert_eq!(worker["queue"]["vhost"], "/");
    assert_eq!(worker["prefetch_count"], 7);
    assert_eq!(worker["ack_required"], true);
    assert_eq!(worker["channel_details"]["user"], "guest");
    let by_name = listed(&api, "connection_name", "worker").await;
    assert_eq!(
        worker["channel_details"]["connection_name"],
        by_name["name"]
    );
    let mqtt_connection = listed(&api, "client_id", "listener").await;
    assert!(
        list.iter()
            .any(|c| c["channel_details"]["connection_name"] == mqtt_connection["name"]),
        "the MQTT session's consumer: {consumers}"
    );
    assert_eq!(
        api.get_ok("/api/consumers").await.as_array().map(Vec::len),
        Some(list.len())
    );
}

#[tokio::test]
async fn sqs_requests_count_under_their_protocol() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let sqs = common::sqs::client(&broker);
    let url = common::sqs::create_queue(&sqs, "counted").await;
    let batch: Vec<_> = (0..3)
        .map(|i| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(format!("body {i}"))
                .build()
                .expect("entry")
        })
        .collect();
    within(
        sqs.send_message_batch()
            .queue_url(&url)
            .set_entries(Some(batch))
            .send(),
    )
    .await
    .expect("batch");
    let received = within(
        sqs.receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send(),
    )
    .await
    .expect("receive");
    let messages = received.messages.unwrap_or_default();
    assert!(!messages.is_empty());
    let receipt = messages[0].receipt_handle.clone().expect("receipt");
    within(
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(receipt)
            .send(),
    )
    .await
    .expect("delete");

    let text = api.metrics("/metrics").await;
    let metric = |name: &str| sample(&text, &format!(r#"{name}{{protocol="SQS/SNS"}}"#));
    assert_eq!(
        metric("mqbridge_protocol_messages_published_total"),
        Some(3.0)
    );
    assert_eq!(
        metric("mqbridge_protocol_messages_delivered_total"),
        Some(messages.len() as f64)
    );
    assert_eq!(
        metric("mqbridge_protocol_messages_acknowledged_total"),
        Some(1.0)
    );
}

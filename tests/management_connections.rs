//! What `/api/connections` and `/metrics` show of each client connection: the user and vhost
//! it logged in to, its own name for itself, its channels and the messages it moved.

mod common;

use common::management::{Api, sample};
use common::mqtt::{next_publish, subscribed};
use common::{Broker, declare, eventually, get, publish, within};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use rumqttc::QoS;
use serde_json::Value;

/// The listed connection whose `field` is `value`, once it is listed so.
async fn listed(api: &Api, field: &str, value: &str) -> Value {
    let find = || async {
        let (_, connections) = api.get("/api/connections").await;
        connections.as_array().and_then(|list| {
            list.iter()
                .find(|c| c["client_properties"][field] == value)
                .cloned()
        })
    };
    eventually(&format!("a connection with {field} {value}"), || async {
        find().await.is_some()
    })
    .await;
    find().await.expect("listed")
}

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

    let entry = listed(&api, "connection_name", "billing").await;
    assert_eq!(entry["user"], "guest");
    assert_eq!(entry["vhost"], "/");
    assert_eq!(entry["protocol"], "AMQP 0-9-1");
    assert_eq!(entry["channels"], 2);
    assert_eq!(entry["messages_published"], 3);
    assert_eq!(entry["messages_delivered"], 1);

    within(connection.close(200, "done".into()))
        .await
        .expect("close");
    // Totals outlive the connection.
    eventually("the AMQP totals", || async {
        let text = api.metrics("/metrics").await;
        let published = r#"mqbridge_protocol_messages_published_total{protocol="AMQP 0-9-1"}"#;
        let delivered = r#"mqbridge_protocol_messages_delivered_total{protocol="AMQP 0-9-1"}"#;
        sample(&text, published) == Some(3.0) && sample(&text, delivered) == Some(1.0)
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

//! The management HTTP API against the real broker: a real HTTP client (reqwest) for the API,
//! lapin for AMQP on the same queues. Shapes and statuses follow RabbitMQ's API.

mod common;

use common::management::Api;
use common::{Broker, declare, eventually, get, next_delivery, publish, within};
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The messages `queue` (in the default vhost) reports, once they equal `expected`.
async fn await_messages(api: &Api, queue: &str, field: &str, expected: u64) {
    let path = format!("/api/queues/%2F/{queue}");
    eventually(&format!("{queue}.{field} == {expected}"), || async {
        api.get(&path).await.1[field] == json!(expected)
    })
    .await;
}

#[tokio::test]
async fn requests_without_good_credentials_get_401_and_metrics_need_none() {
    let broker = Broker::start().await;
    let cases = [
        Api::as_user(&broker, None),
        Api::as_user(&broker, Some(("guest", "wrong"))),
        Api::as_user(&broker, Some(("nobody", "guest"))),
    ];
    for api in &cases {
        let (status, headers, body) = api.send(Method::GET, "/api/overview", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let challenge = headers.get("www-authenticate").expect("challenge");
        assert_eq!(challenge, "Basic realm=\"RabbitMQ Management\"");
        assert_eq!(body["error"], "not_authorized");
        assert!(body["reason"].is_string(), "{body}");
        let (status, _, _) = api
            .send(Method::PUT, "/api/queues/%2F/q", Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "no write without login");
    }
    let anonymous = Api::as_user(&broker, None);
    assert!(
        anonymous
            .metrics("/metrics")
            .await
            .contains("rabbitmq_queues")
    );
    let (status, _) = Api::new(&broker).get("/api/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    broker.shutdown().await;
}

#[tokio::test]
async fn overview_names_the_product_and_every_listener() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let overview = api.get_ok("/api/overview").await;
    assert_eq!(overview["product_name"], "mqbridge");
    assert!(overview["rabbitmq_version"].is_string());
    assert!(
        overview["node"]
            .as_str()
            .is_some_and(|n| n.starts_with("mqbridge@"))
    );
    let server = &broker.server;
    let listeners = overview["listeners"].as_array().expect("listeners");
    let port_of = |protocol: &str| {
        listeners
            .iter()
            .find(|l| l["protocol"] == protocol)
            .map(|l| l["port"].as_u64().expect("port"))
    };
    let expected = [
        ("amqp", server.amqp_addr.port()),
        ("mqtt", server.mqtt_addr.port()),
        ("stomp", server.stomp_addr.port()),
        ("http/web-mqtt", server.ws_addr.port()),
        ("http/web-stomp", server.ws_addr.port()),
        ("sqs", server.sqs_addr.port()),
        ("http", server.management_addr.port()),
    ];
    for (protocol, port) in expected {
        assert_eq!(port_of(protocol), Some(u64::from(port)), "{protocol}");
    }
    let totals = &overview["object_totals"];
    assert_eq!(totals["exchanges"], 6, "the built-in exchanges");
    assert_eq!(totals["queues"], 0);
    assert_eq!(overview["queue_totals"]["messages"], 0);

    let whoami = api.get_ok("/api/whoami").await;
    assert_eq!(whoami, json!({"name": "guest", "tags": ["administrator"]}));
    let nodes = api.get_ok("/api/nodes").await;
    assert_eq!(nodes.as_array().map(Vec::len), Some(1));
    assert_eq!(nodes[0]["name"], overview["node"]);
    assert_eq!(nodes[0]["running"], true);
    broker.shutdown().await;
}

#[tokio::test]
async fn vhosts_list_the_default_one_with_its_message_counts() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "counted", FieldTable::default()).await;
    publish(&channel, "", "counted", b"one").await;
    publish(&channel, "", "counted", b"two").await;
    eventually("the vhost counts two messages", || async {
        api.get("/api/vhosts/%2F").await.1["messages"] == 2
    })
    .await;
    let vhosts = api.get_ok("/api/vhosts").await;
    assert_eq!(vhosts[0]["name"], "/");
    assert_eq!(vhosts[0]["messages_ready"], 2);
    assert_eq!(vhosts[0]["message_stats"]["publish"], 2);
    assert_eq!(api.get("/api/vhosts/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/api/queues/nope").await.0, StatusCode::NOT_FOUND);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_queue_declared_through_the_api_is_consumed_over_amqp() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let body = json!({"durable": true, "auto_delete": false, "arguments": {"x-max-length": 10}});
    let (status, _) = api.put("/api/queues/%2F/orders", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api.put("/api/queues/%2F/orders", body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "already there, equivalent");
    let (status, error) = api
        .put("/api/queues/%2F/orders", json!({"durable": false}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "bad_request");
    let reason = error["reason"].as_str().expect("reason");
    assert!(reason.contains("inequivalent arg 'durable'"), "{reason}");
    let (status, refused) = api.put("/api/queues/%2F/amq.mine", json!({})).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "reserved prefix, as RabbitMQ answers it"
    );
    assert_eq!(refused["error"], "not_authorised");
    let (status, _) = api.put("/api/queues/%2F/plain", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let plain = api.get_ok("/api/queues/%2F/plain").await;
    assert_eq!(plain["durable"], false, "RabbitMQ's default");

    let shown = api.get_ok("/api/queues/%2F/orders").await;
    assert_eq!(shown["durable"], true);
    assert_eq!(shown["arguments"], json!({"x-max-length": 10}));
    assert_eq!(shown["vhost"], "/");

    // AMQP sees the same queue, with the same arguments (a passive declare would do too).
    let (_connection, channel) = broker.channel().await;
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let arguments = common::table(&[("x-max-length", lapin::types::AMQPValue::LongInt(10))]);
    within(channel.queue_declare("orders".into(), options, arguments))
        .await
        .expect("equivalent redeclaration over AMQP");
    publish(&channel, "", "orders", b"from lapin").await;
    let mut consumer = within(channel.basic_consume(
        "orders".into(),
        "c".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("consume");
    let delivery = next_delivery(&mut consumer).await;
    assert_eq!(delivery.data, b"from lapin");
    await_messages(&api, "orders", "consumers", 1).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn queue_listings_show_what_amqp_clients_did() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "listed", FieldTable::default()).await;
    for body in [b"a", b"b", b"c"] {
        publish(&channel, "", "listed", body).await;
    }
    await_messages(&api, "listed", "messages", 3).await;
    let options = BasicGetOptions { no_ack: false };
    let held = within(channel.basic_get("listed".into(), options))
        .await
        .expect("basic.get")
        .expect("a message");
    await_messages(&api, "listed", "messages_unacknowledged", 1).await;
    let queue = api.get_ok("/api/queues/%2F/listed").await;
    assert_eq!(queue["messages"], 3, "ready and unacknowledged");
    assert_eq!(queue["messages_ready"], 2);
    assert_eq!(queue["exclusive"], false);
    assert_eq!(queue["type"], "classic");
    assert_eq!(queue["message_stats"]["publish"], 3);
    assert_eq!(queue["message_stats"]["deliver_get"], 1);
    within(
        held.delivery
            .acker
            .ack(lapin::options::BasicAckOptions::default()),
    )
    .await
    .expect("ack");
    await_messages(&api, "listed", "messages", 2).await;
    let queue = api.get_ok("/api/queues/%2F/listed").await;
    assert_eq!(queue["message_stats"]["ack"], 1);

    for path in ["/api/queues", "/api/queues/%2F"] {
        let listed = api.get_ok(path).await;
        let names: Vec<&str> = listed
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|q| q["name"].as_str())
            .collect();
        assert_eq!(names, ["listed"], "{path}");
    }
    let columns = api.get_ok("/api/queues?columns=name,messages").await;
    assert_eq!(columns, json!([{"name": "listed", "messages": 2}]));
    let overview = api.get_ok("/api/overview").await;
    assert_eq!(overview["object_totals"]["queues"], 1);
    assert_eq!(overview["queue_totals"]["messages_ready"], 2);
    broker.shutdown().await;
}

#[tokio::test]
async fn get_returns_payloads_and_the_ackmode_decides_what_stays() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "got", FieldTable::default()).await;
    publish(&channel, "", "got", b"first").await;
    publish(&channel, "", "got", &[0xff, 0x00, 0x01]).await;
    await_messages(&api, "got", "messages", 2).await;

    let peek = json!({"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"});
    let (status, got) = api.post("/api/queues/%2F/got/get", peek.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let got = got.as_array().expect("a list").clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["payload"], "first");
    assert_eq!(got[0]["payload_encoding"], "string");
    assert_eq!(got[0]["payload_bytes"], 5);
    assert_eq!(got[0]["redelivered"], false);
    assert_eq!(got[0]["exchange"], "");
    assert_eq!(got[0]["routing_key"], "got");
    assert_eq!(got[0]["message_count"], 1);
    assert_eq!(got[1]["payload"], "/wAB", "not UTF-8: base64");
    assert_eq!(got[1]["payload_encoding"], "base64");
    await_messages(&api, "got", "messages", 2).await;

    let (_, again) = api.post("/api/queues/%2F/got/get", peek).await;
    assert_eq!(
        again[0]["redelivered"], true,
        "requeued messages come back redelivered"
    );

    let take = json!({"count": "1", "ackmode": "ack_requeue_false", "encoding": "base64"});
    let (_, taken) = api.post("/api/queues/%2F/got/get", take).await;
    assert_eq!(taken[0]["payload"], "Zmlyc3Q=");
    await_messages(&api, "got", "messages", 1).await;
    let message = get(&channel, "got").await.expect("the second is left");
    assert_eq!(message.delivery.data, [0xff, 0x00, 0x01]);

    let truncated = json!({"count": 1, "ackmode": "ack_requeue_true", "truncate": 2});
    let (status, _) = api.post("/api/queues/%2F/got/get", truncated).await;
    assert_eq!(status, StatusCode::OK);
    let bad = json!({"count": 1, "ackmode": "keep_it"});
    let (status, error) = api.post("/api/queues/%2F/got/get", bad).await;
    assert_eq!(
        (status, &error["error"]),
        (StatusCode::BAD_REQUEST, &json!("bad_request"))
    );
    let (status, _) = api.post("/api/queues/%2F/missing/get", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    broker.shutdown().await;
}

#[tokio::test]
async fn purge_empties_and_delete_removes_with_rabbitmq_conditions() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "doomed", FieldTable::default()).await;
    publish(&channel, "", "doomed", b"x").await;
    await_messages(&api, "doomed", "messages", 1).await;
    let (status, error) = api.delete("/api/queues/%2F/doomed?if-empty=true").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, _) = api.delete("/api/queues/%2F/doomed/contents").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    await_messages(&api, "doomed", "messages", 0).await;
    assert!(get(&channel, "doomed").await.is_none(), "purged");
    let (status, _) = api.delete("/api/queues/%2F/doomed?if-empty=true").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/api/queues/%2F/doomed").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete("/api/queues/%2F/doomed").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete("/api/queues/%2F/doomed/contents").await.0,
        StatusCode::NOT_FOUND
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn exchanges_are_listed_with_the_default_one() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let listed = api.get_ok("/api/exchanges/%2F").await;
    let kind_of = |listed: &Value, name: &str| {
        listed
            .as_array()
            .and_then(|l| l.iter().find(|x| x["name"] == name))
            .map(|x| x["type"].clone())
    };
    assert_eq!(kind_of(&listed, ""), Some(json!("direct")));
    assert_eq!(kind_of(&listed, "amq.topic"), Some(json!("topic")));
    let default = api.get_ok("/api/exchanges/%2F/amq.default").await;
    assert_eq!(default["name"], "");
    broker.shutdown().await;
}

#[tokio::test]
async fn exchanges_are_declared_and_deleted() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let spec = json!({"type": "fanout", "durable": "false", "auto_delete": false, "internal": false, "arguments": {}});
    assert_eq!(
        api.put("/api/exchanges/%2F/events", spec.clone()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        api.put("/api/exchanges/%2F/events", spec).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, error) = api
        .put("/api/exchanges/%2F/events", json!({"type": "topic"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let shown = api.get_ok("/api/exchanges/%2F/events").await;
    assert_eq!(
        (&shown["type"], &shown["durable"]),
        (&json!("fanout"), &json!(false))
    );
    let (status, _) = api
        .put("/api/exchanges/%2F/amq.mine", json!({"type": "direct"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.put("/api/exchanges/%2F/bare", json!({})).await.0,
        StatusCode::CREATED
    );
    let bare = api.get_ok("/api/exchanges/%2F/bare").await;
    assert_eq!(
        (&bare["type"], &bare["durable"]),
        (&json!("direct"), &json!(false))
    );
    let (status, _) = api
        .put("/api/exchanges/%2F/odd", json!({"type": "sideways"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        api.delete("/api/exchanges/%2F/amq.direct").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.delete("/api/exchanges/%2F/events").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get("/api/exchanges/%2F/events").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete("/api/exchanges/%2F/events").await.0,
        StatusCode::NOT_FOUND
    );
    let all = api.get_ok("/api/exchanges").await;
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(7),
        "the built-ins and bare"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn bindings_are_created_listed_routed_and_deleted() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    api.put("/api/queues/%2F/sink", json!({"durable": false}))
        .await;
    api.put("/api/exchanges/%2F/router", json!({"type": "direct"}))
        .await;
    api.put("/api/exchanges/%2F/front", json!({"type": "fanout"}))
        .await;
    let (status, headers, _) = api
        .send(
            Method::POST,
            "/api/bindings/%2F/e/router/q/sink",
            Some(json!({"routing_key": "k", "arguments": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers.get("location").expect("location"), "sink/k");
    let (status, _) = api
        .post(
            "/api/bindings/%2F/e/front/e/router",
            json!({"routing_key": "k"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let listed = api.get_ok("/api/bindings/%2F").await;
    let expected = json!([
        {"source": "", "vhost": "/", "destination": "sink", "destination_type": "queue",
         "routing_key": "sink", "arguments": {}, "properties_key": "sink"},
        {"source": "front", "vhost": "/", "destination": "router", "destination_type": "exchange",
         "routing_key": "k", "arguments": {}, "properties_key": "k"},
        {"source": "router", "vhost": "/", "destination": "sink", "destination_type": "queue",
         "routing_key": "k", "arguments": {}, "properties_key": "k"},
    ]);
    assert_eq!(listed, expected);
    let to_queue = api.get_ok("/api/queues/%2F/sink/bindings").await;
    assert_eq!(to_queue.as_array().map(Vec::len), Some(2));
    let one = api.get_ok("/api/bindings/%2F/e/router/q/sink/k").await;
    assert_eq!(one["routing_key"], "k");
    let from_front = api.get_ok("/api/exchanges/%2F/front/bindings/source").await;
    assert_eq!(from_front[0]["destination"], "router");

    let message = json!({"routing_key": "k", "payload": "via front", "payload_encoding": "string", "properties": {}});
    let (_, routed) = api
        .post("/api/exchanges/%2F/front/publish", message.clone())
        .await;
    assert_eq!(routed, json!({"routed": true}));
    await_messages(&api, "sink", "messages", 1).await;

    let (status, _) = api.delete("/api/bindings/%2F/e/router/q/sink/k").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, routed) = api.post("/api/exchanges/%2F/front/publish", message).await;
    assert_eq!(routed, json!({"routed": false}));
    let (status, _) = api.delete("/api/bindings/%2F/e/router/q/sink/k").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .post("/api/bindings/%2F/e/router/q/nowhere", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .post("/api/bindings/%2F/e/amq.default/q/sink", json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no bindings from the default exchange"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_publish_through_the_api_reaches_a_lapin_consumer() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "inbox", FieldTable::default()).await;
    let mut consumer = within(channel.basic_consume(
        "inbox".into(),
        "c".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("consume");
    let message = json!({
        "routing_key": "inbox",
        "payload": "aGVsbG8gZnJvbSBIVFRQ",
        "payload_encoding": "base64",
        "properties": {"content_type": "text/plain", "delivery_mode": 2,
                       "headers": {"colour": "blue"}},
    });
    let (status, routed) = api
        .post("/api/exchanges/%2F/amq.default/publish", message)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(routed, json!({"routed": true}));
    let delivery = next_delivery(&mut consumer).await;
    assert_eq!(delivery.data, b"hello from HTTP");
    let properties = &delivery.properties;
    assert_eq!(
        properties.content_type().as_ref().map(|t| t.as_str()),
        Some("text/plain")
    );
    assert_eq!(*properties.delivery_mode(), Some(2));
    let headers = properties.headers().as_ref().expect("headers");
    assert!(headers.inner().contains_key("colour"));

    let unknown = json!({"routing_key": "k", "payload": "x", "payload_encoding": "string"});
    let (status, _) = api.post("/api/exchanges/%2F/nope/publish", unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .post(
            "/api/exchanges/%2F/amq.default/publish",
            json!({"payload": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "routing_key is required");
    broker.shutdown().await;
}

#[tokio::test]
async fn connections_list_an_open_amqp_connection_until_it_closes() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    assert_eq!(api.get_ok("/api/connections").await, json!([]));
    let connection = broker.connect().await;
    let amqp_port = u64::from(broker.server.amqp_addr.port());
    let listed = |connections: &Value| {
        connections
            .as_array()
            .map(|list| {
                list.iter()
                    .filter(|c| c["protocol"] == "AMQP 0-9-1")
                    .count()
            })
            .unwrap_or(0)
    };
    eventually("the AMQP connection is listed", || async {
        listed(&api.get("/api/connections").await.1) == 1
    })
    .await;
    let connections = api.get_ok("/api/connections").await;
    let entry = &connections[0];
    assert_eq!(entry["port"], amqp_port);
    assert_eq!(entry["peer_host"], "127.0.0.1");
    assert_eq!(entry["ssl"], false);
    assert_eq!(entry["state"], "running");
    assert!(entry["connected_at"].as_u64().is_some_and(|ms| ms > 0));
    let name = entry["name"].as_str().expect("name");
    assert!(
        name.ends_with(&format!("-> {}", broker.server.amqp_addr)),
        "{name}"
    );
    let overview = api.get_ok("/api/overview").await;
    assert_eq!(overview["object_totals"]["connections"], 1);
    assert_eq!(api.get_ok("/api/channels").await, json!([]));

    within(connection.close(200, "bye".into()))
        .await
        .expect("close");
    eventually("the closed connection is gone", || async {
        listed(&api.get("/api/connections").await.1) == 0
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn the_alarms_health_check_follows_the_memory_alarm() {
    let broker = Broker::start_with(|config| config.memory_high_watermark_bytes = 1000).await;
    let api = Api::new(&broker);
    let (status, body) = api.get("/api/health/checks/alarms").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "heavy", FieldTable::default()).await;
    publish(&channel, "", "heavy", &[7; 4000]).await;
    eventually("the memory alarm is reported", || async {
        api.get("/api/health/checks/alarms").await.0 == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (_, body) = api.get("/api/health/checks/alarms").await;
    assert_eq!(body["status"], "failed");
    assert_eq!(body["alarms"][0]["resource"], "memory");
    assert!(body["reason"].is_string());
    assert_eq!(api.get_ok("/api/nodes").await[0]["mem_alarm"], true);

    let (status, _) = api.delete("/api/queues/%2F/heavy/contents").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    eventually("the alarm clears", || async {
        api.get("/api/health/checks/alarms").await.0 == StatusCode::OK
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn an_exclusive_queue_of_a_connection_is_locked_to_the_api() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    let options = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    within(channel.queue_declare("mine".into(), options, FieldTable::default()))
        .await
        .expect("declare");
    let shown = api.get_ok("/api/queues/%2F/mine").await;
    assert_eq!(shown["exclusive"], true);
    let (status, error) = api.post("/api/queues/%2F/mine/get", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, _) = api.delete("/api/queues/%2F/mine").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let next = within(channel.basic_consume(
        "mine".into(),
        "c".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert!(next.is_ok(), "its own connection still uses it");
    let mut consumer = next.expect("consumer");
    publish(&channel, "", "mine", b"still mine").await;
    let delivery = within(consumer.next())
        .await
        .expect("open")
        .expect("delivery");
    assert_eq!(delivery.data, b"still mine");
    broker.shutdown().await;
}

#[tokio::test]
async fn rates_follow_traffic_and_fall_to_zero_when_it_stops() {
    let broker = Broker::start_with(|config| config.collect_statistics_interval_ms = 100).await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "busy", FieldTable::default()).await;
    let rate = |value: &Value, counter: &str| {
        value["message_stats"][format!("{counter}_details")]["rate"]
            .as_f64()
            .expect("a rate")
    };
    // Publish until a sample sees it: the rate is over one interval, whichever it was.
    let mut sent = 0;
    eventually("a publish rate on the queue and the broker", || {
        sent += 1;
        let channel = channel.clone();
        let api = &api;
        async move {
            publish(&channel, "", "busy", format!("m{sent}").as_bytes()).await;
            let queue = api.get_ok("/api/queues/%2F/busy").await;
            let overview = api.get_ok("/api/overview").await;
            rate(&queue, "publish") > 0.0 && rate(&overview, "publish") > 0.0
        }
    })
    .await;
    eventually("the rate back at zero once publishing stops", || async {
        rate(&api.get_ok("/api/queues/%2F/busy").await, "publish") == 0.0
    })
    .await;
    let vhost = api.get_ok("/api/vhosts/%2F").await;
    assert!(vhost["message_stats"]["publish"].as_u64() > Some(0));
    assert!(vhost["message_stats"]["ack_details"]["rate"].is_number());
}

//! Policies through the management API (RabbitMQ's `/api/policies`), checked by what AMQP
//! clients see of the queues and exchanges they match.

mod common;

use common::management::Api;
use common::{Broker, declare, drain, publish, table, text, within};
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn publish_all(channel: &Channel, queue: &str, bodies: &[&str]) {
    for body in bodies {
        publish(channel, "", queue, body.as_bytes()).await;
    }
}

fn texts(bodies: Vec<Vec<u8>>) -> Vec<String> {
    bodies
        .into_iter()
        .map(|b| String::from_utf8(b).expect("utf-8"))
        .collect()
}

async fn queue_json(api: &Api, name: &str) -> Value {
    api.get_ok(&format!("/api/queues/%2F/{name}")).await
}

#[tokio::test]
async fn a_length_policy_trims_queues_that_exist_and_limits_queues_declared_later() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "limited.a", FieldTable::default()).await;
    declare(&channel, "unlimited", FieldTable::default()).await;
    publish_all(&channel, "limited.a", &["1", "2", "3", "4", "5"]).await;
    publish_all(&channel, "unlimited", &["1", "2", "3"]).await;

    let policy = json!({"pattern": "^limited\\.", "definition": {"max-length": 2},
                        "apply-to": "queues"});
    let (status, _) = api.put("/api/policies/%2F/cap", policy.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        api.put("/api/policies/%2F/cap", policy).await.0,
        StatusCode::NO_CONTENT
    );
    // Drop-head: the oldest go.
    assert_eq!(texts(drain(&channel, "limited.a").await), ["4", "5"]);
    assert_eq!(texts(drain(&channel, "unlimited").await), ["1", "2", "3"]);

    declare(&channel, "limited.b", FieldTable::default()).await;
    publish_all(&channel, "limited.b", &["x", "y", "z"]).await;
    let listed = queue_json(&api, "limited.b").await;
    assert_eq!(listed["policy"], "cap");
    assert_eq!(
        listed["effective_policy_definition"],
        json!({"max-length": 2})
    );
    assert_eq!(queue_json(&api, "unlimited").await["policy"], Value::Null);
    assert_eq!(texts(drain(&channel, "limited.b").await), ["y", "z"]);

    assert_eq!(
        api.delete("/api/policies/%2F/cap").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.delete("/api/policies/%2F/cap").await.0,
        StatusCode::NOT_FOUND
    );
    publish_all(&channel, "limited.a", &["a", "b", "c"]).await;
    assert_eq!(texts(drain(&channel, "limited.a").await), ["a", "b", "c"]);
    assert_eq!(queue_json(&api, "limited.a").await["policy"], Value::Null);
}

/// The next message `queue` delivers to a consumer, and its `x-death` reason.
async fn dead_letter(channel: &Channel, queue: &str) -> (String, String) {
    let mut consumer = within(channel.basic_consume(
        queue.into(),
        "".into(),
        BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("basic.consume");
    let delivery = within(consumer.next())
        .await
        .expect("open")
        .expect("delivery");
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        panic!("no x-death in {headers:?}");
    };
    let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else {
        panic!("x-death is empty");
    };
    let reason = match death.inner().get("reason") {
        Some(AMQPValue::LongString(reason)) => reason.to_string(),
        other => panic!("reason {other:?}"),
    };
    (String::from_utf8(delivery.data).expect("utf-8"), reason)
}

#[tokio::test]
async fn ttl_and_dead_letter_policies_combine_with_queue_arguments_as_rabbitmq_does() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "graveyard", FieldTable::default()).await;
    declare(&channel, "own-grave", FieldTable::default()).await;
    let definition = json!({"message-ttl": 20, "dead-letter-exchange": "",
                            "dead-letter-routing-key": "graveyard"});
    let (status, _) = api
        .put(
            "/api/policies/%2F/expiring",
            json!({"pattern": "^short", "definition": definition}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    declare(&channel, "short-lived", FieldTable::default()).await;
    publish(&channel, "", "short-lived", b"gone").await;
    let (body, reason) = dead_letter(&channel, "graveyard").await;
    assert_eq!((body.as_str(), reason.as_str()), ("gone", "expired"));

    // The queue's own dead-letter key wins; of the two TTLs the smaller (the policy's) does.
    let arguments = table(&[
        ("x-message-ttl", AMQPValue::LongInt(600_000)),
        ("x-dead-letter-routing-key", text("own-grave")),
    ]);
    declare(&channel, "short-own", arguments).await;
    publish(&channel, "", "short-own", b"mine").await;
    let (body, reason) = dead_letter(&channel, "own-grave").await;
    assert_eq!((body.as_str(), reason.as_str()), ("mine", "expired"));
}

#[tokio::test]
async fn the_highest_priority_policy_applies_and_the_next_takes_over_when_it_goes() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    let broad = json!({"pattern": "^jobs", "definition": {"max-length": 3}});
    let narrow = json!({"pattern": "^jobs\\.urgent$", "definition": {"max-length": 1},
                        "priority": 5, "apply-to": "queues"});
    api.put("/api/policies/%2F/broad", broad).await;
    api.put("/api/policies/%2F/narrow", narrow).await;
    declare(&channel, "jobs.urgent", FieldTable::default()).await;
    declare(&channel, "jobs.later", FieldTable::default()).await;
    assert_eq!(queue_json(&api, "jobs.urgent").await["policy"], "narrow");
    assert_eq!(queue_json(&api, "jobs.later").await["policy"], "broad");
    publish_all(&channel, "jobs.urgent", &["1", "2", "3", "4"]).await;
    assert_eq!(texts(drain(&channel, "jobs.urgent").await), ["4"]);

    api.delete("/api/policies/%2F/narrow").await;
    assert_eq!(queue_json(&api, "jobs.urgent").await["policy"], "broad");
    publish_all(&channel, "jobs.urgent", &["5", "6", "7", "8"]).await;
    assert_eq!(texts(drain(&channel, "jobs.urgent").await), ["6", "7", "8"]);
    let listed = api.get_ok("/api/policies/%2F").await;
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["broad"]);
    assert_eq!(
        api.get_ok("/api/policies/%2F/broad").await["apply-to"],
        "all"
    );
}

#[tokio::test]
async fn an_exchange_policy_names_an_alternate_exchange() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (_connection, channel) = broker.channel().await;
    for (name, kind) in [
        ("orders", ExchangeKind::Direct),
        ("unrouted", ExchangeKind::Fanout),
    ] {
        within(channel.exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        ))
        .await
        .expect("exchange.declare");
    }
    declare(&channel, "lost", FieldTable::default()).await;
    within(channel.queue_bind(
        "lost".into(),
        "unrouted".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("queue.bind");
    publish(&channel, "orders", "nowhere", b"dropped").await;
    let policy = json!({"pattern": "^orders$", "definition": {"alternate-exchange": "unrouted"},
                        "apply-to": "exchanges"});
    api.put("/api/policies/%2F/ae", policy).await;
    publish(&channel, "orders", "nowhere", b"kept").await;
    assert_eq!(texts(drain(&channel, "lost").await), ["kept"]);
}

#[tokio::test]
async fn policies_survive_a_restart_and_apply_to_recovered_queues() {
    let broker = Broker::start().await;
    let policy = json!({"pattern": "^kept", "definition": {"max-length": 1}});
    Api::new(&broker).put("/api/policies/%2F/one", policy).await;
    {
        let (_connection, channel) = broker.channel().await;
        let durable = lapin::options::QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        within(channel.queue_declare("kept".into(), durable, FieldTable::default()))
            .await
            .expect("declare");
    }
    let broker = broker.restart().await;
    let api = Api::new(&broker);
    assert_eq!(
        api.get_ok("/api/policies/%2F/one").await["pattern"],
        "^kept"
    );
    assert_eq!(queue_json(&api, "kept").await["policy"], "one");
    let (_connection, channel) = broker.channel().await;
    publish_all(&channel, "kept", &["a", "b"]).await;
    assert_eq!(texts(drain(&channel, "kept").await), ["b"]);
}

#[tokio::test]
async fn bad_policies_are_refused_and_change_nothing() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let refused = [
        json!({"pattern": "(", "definition": {"max-length": 1}}),
        json!({"pattern": ".*", "definition": {"max-length": -1}}),
        json!({"pattern": ".*", "definition": {"message-ttl": "soon"}}),
        json!({"pattern": ".*", "definition": {"overflow": "explode"}}),
        json!({"pattern": ".*", "definition": {"federation-upstream-set": "all"}}),
        json!({"pattern": ".*", "definition": {}}),
        json!({"pattern": ".*", "definition": [1]}),
        json!({"pattern": ".*"}),
        json!({"definition": {"max-length": 1}}),
        json!({"pattern": ".*", "definition": {"max-length": 1}, "apply-to": "topics"}),
        json!({"pattern": ".*", "definition": {"max-length": 1}, "priority": "high"}),
    ];
    for body in refused {
        let (status, answer) = api.put("/api/policies/%2F/bad", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} answered {answer}");
        assert!(answer["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
    assert_eq!(api.get_ok("/api/policies").await, json!([]));
    let fine = json!({"pattern": ".*", "definition": {"max-length": 1}});
    assert_eq!(
        api.put("/api/policies/nowhere/p", fine).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn only_administrators_and_permitted_policymakers_set_policies() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let everything = json!({"configure": ".*", "write": ".*", "read": ".*"});
    for (user, tags) in [("maker", "policymaker"), ("viewer", "management")] {
        api.put(
            &format!("/api/users/{user}"),
            json!({"password": "pw", "tags": tags}),
        )
        .await;
        api.put(&format!("/api/permissions/%2F/{user}"), everything.clone())
            .await;
    }
    api.put("/api/vhosts/elsewhere", json!({})).await;
    let policy = json!({"pattern": ".*", "definition": {"expires": 60000}});
    let maker = Api::as_user(&broker, Some(("maker", "pw")));
    let viewer = Api::as_user(&broker, Some(("viewer", "pw")));
    assert_eq!(
        maker.put("/api/policies/%2F/p", policy.clone()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        maker
            .put("/api/policies/elsewhere/p", policy.clone())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        viewer.put("/api/policies/%2F/q", policy).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        viewer.delete("/api/policies/%2F/p").await.0,
        StatusCode::UNAUTHORIZED
    );
    // Reading is open to any management user in the vhosts they see.
    assert_eq!(viewer.get_ok("/api/policies").await[0]["name"], "p");
    assert_eq!(
        viewer.get("/api/policies/elsewhere").await.0,
        StatusCode::UNAUTHORIZED
    );
}

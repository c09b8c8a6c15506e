//! Users, permissions, vhosts and definitions through the management API (RabbitMQ's paths),
//! checked by logging in over AMQP as the users it makes.

mod common;

use common::management::Api;
use common::{Broker, assert_reply, connect_url, declare};
use lapin::types::FieldTable;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn amqp_login(
    broker: &Broker,
    user: &str,
    password: &str,
    vhost: &str,
) -> lapin::Result<lapin::Connection> {
    let vhost = vhost.replace('/', "%2f");
    connect_url(&format!(
        "amqp://{user}:{password}@{}/{vhost}",
        broker.server.amqp_addr
    ))
    .await
}

#[tokio::test]
async fn a_user_made_over_the_api_logs_in_where_permitted() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let (status, _) = api
        .put(
            "/api/users/ann",
            json!({"password": "pw", "tags": "management"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let user = api.get_ok("/api/users/ann").await;
    assert_eq!(user["tags"], json!(["management"]));
    assert_eq!(user["hashing_algorithm"], "rabbit_password_hashing_sha256");
    assert_ne!(user["password_hash"], "pw", "never the password itself");
    assert_reply(amqp_login(&broker, "ann", "pw", "/").await, 530);

    let (status, _) = api
        .put("/api/vhosts/staging", json!({"description": "pre-prod"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let grant = json!({"configure": "^ann-", "write": ".*", "read": ".*"});
    let (status, _) = api.put("/api/permissions/staging/ann", grant).await;
    assert_eq!(status, StatusCode::CREATED);
    let listed = api.get_ok("/api/users/ann/permissions").await;
    assert_eq!(listed[0]["vhost"], "staging");
    assert_eq!(
        api.get_ok("/api/vhosts/staging").await["description"],
        "pre-prod"
    );

    let connection = amqp_login(&broker, "ann", "pw", "staging")
        .await
        .expect("ann logs in");
    let channel = connection.create_channel().await.expect("channel");
    declare(&channel, "ann-q", FieldTable::default()).await;
    let refused = channel
        .queue_declare("other".into(), Default::default(), FieldTable::default())
        .await;
    assert_reply(refused, 403);
    assert_reply(amqp_login(&broker, "ann", "wrong", "staging").await, 403);

    // A management user is not an administrator.
    let ann = Api::as_user(&broker, Some(("ann", "pw")));
    assert_eq!(ann.get("/api/overview").await.0, StatusCode::OK);
    assert_eq!(ann.get("/api/users").await.0, StatusCode::UNAUTHORIZED);

    assert_eq!(api.delete("/api/users/ann").await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.delete("/api/users/ann").await.0, StatusCode::NOT_FOUND);
    assert_reply(amqp_login(&broker, "ann", "pw", "staging").await, 403);
    assert_eq!(
        api.get("/api/permissions/staging/ann").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_user_without_management_tags_cannot_use_the_api() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    api.put("/api/users/app", json!({"password": "pw"})).await;
    let app = Api::as_user(&broker, Some(("app", "pw")));
    let (status, body) = app.get("/api/overview").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["reason"], "Not management user");
}

#[tokio::test]
async fn deleting_a_vhost_takes_its_queues_and_permissions() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    api.put("/api/vhosts/tmp", json!({})).await;
    let everything = json!({"configure": ".*", "write": ".*", "read": ".*"});
    api.put("/api/permissions/tmp/guest", everything).await;
    let (status, _) = api.put("/api/queues/tmp/q", json!({"durable": true})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        api.delete("/api/vhosts/tmp").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.get("/api/queues/tmp/q").await.0, StatusCode::NOT_FOUND);
    let permissions = api.get_ok("/api/permissions").await;
    assert!(
        permissions
            .as_array()
            .expect("list")
            .iter()
            .all(|p| p["vhost"] != "tmp")
    );
}

#[tokio::test]
async fn bad_permission_patterns_and_unknown_vhosts_are_400() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let bad = json!({"configure": "(", "write": ".*", "read": ".*"});
    assert_eq!(
        api.put("/api/permissions/%2F/guest", bad).await.0,
        StatusCode::BAD_REQUEST
    );
    let good = json!({"configure": ".*", "write": ".*", "read": ".*"});
    assert_eq!(
        api.put("/api/permissions/nowhere/guest", good).await.0,
        StatusCode::BAD_REQUEST
    );
    let hash = json!({"password_hash": "not a hash", "tags": ""});
    assert_eq!(
        api.put("/api/users/x", hash).await.0,
        StatusCode::BAD_REQUEST
    );
}

/// What a definitions export says, without the fields that name the exporting broker.
fn comparable(mut definitions: Value) -> Value {
    for field in ["rabbit_version", "product_name", "product_version"] {
        definitions.as_object_mut().expect("object").remove(field);
    }
    definitions
}

#[tokio::test]
async fn definitions_exported_from_one_broker_rebuild_another() {
    let source = Broker::start().await;
    let api = Api::new(&source);
    api.put(
        "/api/users/ops",
        json!({"password": "pw", "tags": ["monitoring"]}),
    )
    .await;
    api.put(
        "/api/vhosts/prod",
        json!({"description": "live", "tags": ["eu"]}),
    )
    .await;
    let grant = json!({"configure": "^ops", "write": ".*", "read": "^ops"});
    api.put("/api/permissions/prod/ops", grant).await;
    let topic = json!({"exchange": "amq.topic", "write": "^ops\\.", "read": ".*"});
    api.put("/api/topic-permissions/prod/ops", topic).await;
    api.put(
        "/api/permissions/prod/guest",
        json!({"configure": ".*", "write": ".*", "read": ".*"}),
    )
    .await;
    api.put(
        "/api/exchanges/prod/events",
        json!({"type": "topic", "durable": true}),
    )
    .await;
    let arguments = json!({"x-max-length": 10, "x-dead-letter-exchange": "events"});
    api.put(
        "/api/queues/prod/orders",
        json!({"durable": true, "arguments": arguments}),
    )
    .await;
    let bind = json!({"routing_key": "order.*"});
    let (status, _) = api.post("/api/bindings/prod/e/events/q/orders", bind).await;
    assert_eq!(status, StatusCode::CREATED);
    let cap = json!({"pattern": "^ord", "definition": {"max-length": 5}, "apply-to": "queues"});
    api.put("/api/policies/prod/cap", cap).await;
    let exported = api.get_ok("/api/definitions").await;
    assert_eq!(exported["queues"][0]["arguments"]["x-max-length"], 10);
    assert_eq!(exported["policies"][0]["definition"]["max-length"], 5);

    let target = Broker::start().await;
    let (status, _) = Api::new(&target)
        .post("/api/definitions", exported.clone())
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let rebuilt = Api::new(&target).get_ok("/api/definitions").await;
    // The guest's password hash has its own salt on each broker; the rest is the same.
    let (mut exported, mut rebuilt) = (comparable(exported), comparable(rebuilt));
    for definitions in [&mut exported, &mut rebuilt] {
        for user in definitions["users"].as_array_mut().expect("users") {
            if user["name"] == "guest" {
                user["password_hash"] = Value::Null;
            }
        }
    }
    assert_eq!(exported, rebuilt);
    // The imported hash is the password's: ops logs in to the rebuilt broker.
    let ops = Api::as_user(&target, Some(("ops", "pw")));
    assert_eq!(ops.get("/api/overview").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_management_user_lists_only_the_vhosts_they_have_permissions_in() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    api.put("/api/vhosts/secret", json!({})).await;
    let everything = json!({"configure": ".*", "write": ".*", "read": ".*"});
    api.put("/api/permissions/secret/guest", everything.clone())
        .await;
    api.put("/api/queues/secret/hidden", json!({})).await;
    api.put("/api/queues/%2F/open", json!({})).await;
    api.put(
        "/api/users/ann",
        json!({"password": "pw", "tags": "management"}),
    )
    .await;
    api.put("/api/permissions/%2F/ann", everything).await;
    api.put(
        "/api/users/watch",
        json!({"password": "pw", "tags": "monitoring"}),
    )
    .await;

    let ann = Api::as_user(&broker, Some(("ann", "pw")));
    let names = |listing: Value| -> Vec<String> {
        let list = listing.as_array().expect("a list").iter();
        list.map(|q| q["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names(ann.get_ok("/api/queues").await), ["open"]);
    assert_eq!(names(ann.get_ok("/api/vhosts").await), ["/"]);
    assert_eq!(
        ann.get("/api/queues/secret").await.0,
        StatusCode::UNAUTHORIZED
    );
    let watch = Api::as_user(&broker, Some(("watch", "pw")));
    let mut seen = names(watch.get_ok("/api/queues").await);
    seen.sort();
    assert_eq!(seen, ["hidden", "open"], "monitoring sees every vhost");
}

#[tokio::test]
async fn one_vhosts_definitions_load_into_another() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let everything = json!({"configure": ".*", "write": ".*", "read": ".*"});
    for vhost in ["blue", "green"] {
        api.put(&format!("/api/vhosts/{vhost}"), json!({})).await;
        api.put(
            &format!("/api/permissions/{vhost}/guest"),
            everything.clone(),
        )
        .await;
    }
    api.put("/api/queues/blue/jobs", json!({"durable": true}))
        .await;
    let cap = json!({"pattern": "^jobs$", "definition": {"max-length": 3}});
    api.put("/api/policies/blue/cap", cap).await;
    api.put("/api/queues/%2F/elsewhere", json!({"durable": true}))
        .await;

    let exported = api.get_ok("/api/definitions/blue").await;
    let queues: Vec<&str> = exported["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    assert_eq!(queues, ["jobs"]);
    assert_eq!(exported["users"], json!([]), "users are not a vhost's");
    let (status, _) = api.post("/api/definitions/green", exported).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(api.get_ok("/api/queues/green/jobs").await["policy"], "cap");

    // RabbitMQ's per-vhost exports name no vhost in their items.
    let bare = json!({"queues": [{"name": "bare", "durable": true, "auto_delete": false,
                                  "arguments": {}}]});
    let (status, _) = api.post("/api/definitions/green", bare).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(api.get("/api/queues/green/bare").await.0, StatusCode::OK);
    assert_eq!(
        api.get("/api/definitions/nowhere").await.0,
        StatusCode::NOT_FOUND
    );
}

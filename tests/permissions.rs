//! Users and permissions, enforced on every protocol: a user sees only the vhosts they have
//! permissions in, and each declare, bind, publish and consume needs its configure, write or
//! read permission (RabbitMQ's rules). Denials use each protocol's own error.

mod common;

use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
use common::mqtt::v5 as mqtt5;
use common::stomp::{self, StompClient};
use common::{Broker, assert_reply, connect_url, declare, next_error, sns, sqs, within};
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueBindOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection};
use mqbridge::config::AwsAccessKey;
use mqbridge_stomp::codec::{Command, Frame};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, SubscribeReasonCode};
use serde_json::json;

/// `limited` may touch only names starting `lim-`; `device` may publish and subscribe on
/// `amq.topic` only under `sensors.`; `outsider` has no permissions at all.
fn definitions() -> serde_json::Value {
    json!({
        "users": [
            {"name": "limited", "password": "secret", "tags": []},
            {"name": "device", "password": "secret", "tags": ""},
            {"name": "outsider", "password": "secret", "tags": ["management"]},
        ],
        "permissions": [
            {"user": "limited", "vhost": "/", "configure": "^lim-", "write": "^lim-", "read": "^lim-"},
            {"user": "device", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
        ],
        "topic_permissions": [
            {"user": "device", "vhost": "/", "exchange": "amq.topic",
             "write": "^sensors\\.", "read": "^sensors\\."},
        ],
        "queues": [{"name": "shared", "vhost": "/", "durable": true}],
    })
}

async fn start() -> Broker {
    Broker::start_with(|config| common::with_definitions(config, &definitions())).await
}

/// With SQS/SNS access keys acting as the guest, `limited` and `outsider`.
async fn start_with_keys() -> Broker {
    let key = |id: &str, user: &str| AwsAccessKey {
        access_key_id: id.to_owned(),
        secret_access_key: format!("{id}-secret"),
        user: user.to_owned(),
    };
    Broker::start_with(|config| {
        common::with_definitions(config, &definitions());
        config.aws_access_keys = vec![
            key("ADMIN", "guest"),
            key("LIMITED", "limited"),
            key("OUTSIDER", "outsider"),
        ];
    })
    .await
}

async fn login(broker: &Broker, user: &str) -> lapin::Result<Connection> {
    connect_url(&format!(
        "amqp://{user}:secret@{}/%2f",
        broker.server.amqp_addr
    ))
    .await
}

#[tokio::test]
async fn amqp_a_user_without_permissions_in_the_vhost_is_not_allowed_in() {
    let broker = start().await;
    assert_reply(login(&broker, "outsider").await, 530);
    let url = format!("amqp://limited:wrong@{}/%2f", broker.server.amqp_addr);
    assert_reply(connect_url(&url).await, 403);
}

#[tokio::test]
async fn amqp_each_operation_needs_its_permission() {
    let broker = start().await;
    let connection = login(&broker, "limited").await.expect("limited logs in");
    let channel = || async { within(connection.create_channel()).await.expect("channel") };
    declare(&channel().await, "lim-q", FieldTable::default()).await;

    let refused = channel().await;
    let declared = refused.queue_declare("other".into(), Default::default(), FieldTable::default());
    assert_reply(within(declared).await, 403);

    let refused = channel().await;
    let consume = refused.basic_consume(
        "shared".into(),
        "c".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    );
    assert_reply(within(consume).await, 403);

    let refused = channel().await;
    let bind = refused.queue_bind(
        "lim-q".into(),
        "amq.direct".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    );
    assert_reply(within(bind).await, 403);

    // Publishing to the default exchange needs write on `amq.default`.
    let refused = channel().await;
    let mut events = connection.events_listener();
    let _ = refused
        .basic_publish(
            "".into(),
            "lim-q".into(),
            BasicPublishOptions::default(),
            b"no",
            BasicProperties::default(),
        )
        .await;
    let error = within(next_error(&mut events)).await;
    assert_eq!(common::reply_code(&error), Some(403), "{error:?}");

    // The guest, an administrator, is untouched by all this.
    let (_guest, admin) = broker.channel().await;
    common::publish(&admin, "", "lim-q", b"from guest").await;
    let got = common::get(&channel().await, "lim-q")
        .await
        .expect("readable");
    assert_eq!(got.delivery.data, b"from guest");
}

#[tokio::test]
async fn mqtt5_topic_permissions_refuse_with_reason_0x87() {
    let broker = start().await;
    let mut options = broker.mqtt5_options("device-1");
    options.set_credentials("device", "secret");
    let mut device = broker.mqtt5(options).await;
    let publish = |topic: &'static str| {
        let client = device.client.clone();
        async move {
            client
                .publish(topic, QoS::AtLeastOnce, false, "21.5")
                .await
                .expect("queued");
        }
    };
    publish("admin/reboot").await;
    let ack = within(next_puback(&mut device.events)).await;
    assert_eq!(ack, PubAckReason::NotAuthorized);
    publish("sensors/t1").await;
    let ack = within(next_puback(&mut device.events)).await;
    assert_eq!(ack, PubAckReason::NoMatchingSubscribers);

    device
        .client
        .subscribe("admin/#", QoS::AtLeastOnce)
        .await
        .expect("queued");
    let suback = mqtt5::subscribed(&mut device.events).await;
    assert_eq!(suback.return_codes, [SubscribeReasonCode::NotAuthorized]);
    device
        .client
        .subscribe("sensors/#", QoS::AtLeastOnce)
        .await
        .expect("queued");
    let suback = mqtt5::subscribed(&mut device.events).await;
    assert_eq!(
        suback.return_codes,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
}

async fn next_puback(events: &mut rumqttc::v5::EventLoop) -> PubAckReason {
    loop {
        if let Packet::PubAck(ack) = mqtt5::next_incoming(events).await {
            return ack.reason;
        }
    }
}

#[tokio::test]
async fn mqtt3_a_refused_publish_closes_the_connection_instead_of_a_false_ack() {
    let broker = start().await;
    let mut options = broker.mqtt_options("device-3");
    options.set_credentials("device", "secret");
    let (client, mut events) = rumqttc::AsyncClient::new(options, 16);
    client
        .publish("admin/reboot", rumqttc::QoS::AtLeastOnce, false, "x")
        .await
        .expect("queued");
    let ended = within(async {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::PubAck(_))) => return false,
                Ok(_) => {}
                Err(_) => return true,
            }
        }
    })
    .await;
    assert!(ended, "no PUBACK for a publish that was not taken");
}

#[tokio::test]
async fn stomp_a_refused_send_is_an_error_frame() {
    let broker = start().await;
    let connect = Frame::new(Command::Connect)
        .with("accept-version", "1.2")
        .with("host", "/")
        .with("login", "limited")
        .with("passcode", "secret");
    let (mut client, _) = StompClient::open_with(&broker, connect).await;
    client.send(&stomp::send("/amq/queue/shared", "no")).await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("access_refused"));
    let body = String::from_utf8_lossy(&error.body).into_owned();
    assert!(body.contains("refused for user 'limited'"), "{body}");
}

#[tokio::test]
async fn users_and_permissions_survive_a_restart() {
    let broker = start().await;
    let broker = broker.restart().await;
    login(&broker, "limited").await.expect("still a user");
    assert_reply(login(&broker, "outsider").await, 530);
    broker.connect().await;
}

#[tokio::test]
async fn sqs_actions_need_the_permission_on_their_queue() {
    let broker = start_with_keys().await;
    let limited = sqs::client_with_keys(&broker, "LIMITED", "LIMITED-secret");
    let admin = sqs::client_with_keys(&broker, "ADMIN", "ADMIN-secret");
    let shared = sqs::create_queue(&admin, "shared").await;
    let mine = sqs::create_queue(&limited, "lim-q").await;
    let refused = within(limited.create_queue().queue_name("other").send()).await;
    assert_eq!(sqs::error_code(refused), "AccessDenied");
    let send = |url: &str| {
        limited
            .send_message()
            .queue_url(url)
            .message_body("hi")
            .send()
    };
    assert_eq!(sqs::error_code(within(send(&shared)).await), "AccessDenied");
    within(send(&mine)).await.expect("write on lim-q");
    let receive = within(limited.receive_message().queue_url(&shared).send()).await;
    assert_eq!(sqs::error_code(receive), "AccessDenied");
    let got = within(limited.receive_message().queue_url(&mine).send()).await;
    assert_eq!(got.expect("read on lim-q").messages().len(), 1);
    // Looking a queue up needs only access to the vhost.
    within(limited.get_queue_url().queue_name("shared").send())
        .await
        .expect("GetQueueUrl");
    let outsider = sqs::client_with_keys(&broker, "OUTSIDER", "OUTSIDER-secret");
    let listed = within(outsider.list_queues().send()).await;
    assert_eq!(sqs::error_code(listed), "AccessDenied");
}

#[tokio::test]
async fn sns_actions_need_the_permission_on_their_topic() {
    let broker = start_with_keys().await;
    let client = |id: &str| {
        let credentials = Credentials::new(id, format!("{id}-secret"), None, None, "tests");
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(credentials)
            .endpoint_url(format!("http://{}", broker.server.sqs_addr))
            .build();
        aws_sdk_sns::Client::from_conf(config)
    };
    let (admin, limited) = (client("ADMIN"), client("LIMITED"));
    let news = sns::create_topic(&admin, "news").await;
    let mine = sns::create_topic(&limited, "lim-t").await;
    let refused = within(limited.create_topic().name("other").send()).await;
    assert_eq!(sqs::error_code(refused), "AuthorizationError");
    let publish = |arn: &str| limited.publish().topic_arn(arn).message("hi").send();
    assert_eq!(
        sqs::error_code(within(publish(&news)).await),
        "AuthorizationError"
    );
    within(publish(&mine)).await.expect("write on lim-t");
}

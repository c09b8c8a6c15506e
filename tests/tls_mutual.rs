//! Client certificates (mTLS): the certificate's CN is the username, clients without a trusted
//! certificate are refused, and SIGHUP's reload swaps the certificates for new handshakes.

mod common;

use common::tls::{self, TestCa, amqps};
use common::{Broker, assert_reply, within};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};

async fn start_mtls(ca: &TestCa) -> Broker {
    Broker::start_with(|config| {
        ca.configure(config, true);
        certificate_users(config);
    })
    .await
}

/// The CNs of the tests' certificates, as users without passwords (a certificate is their
/// only credential) and with every permission on the default vhost. As in RabbitMQ, a CN must
/// be a user the broker knows.
fn certificate_users(config: &mut mqbridge::Config) {
    let names = ["alice", "bob", "carol", "device-42", "sensor-9"];
    let users: Vec<_> = names
        .iter()
        .map(|name| serde_json::json!({"name": name, "password_hash": "", "tags": []}))
        .collect();
    let permissions: Vec<_> = names
        .iter()
        .map(|name| {
            serde_json::json!({"user": name, "vhost": "/",
                "configure": ".*", "write": ".*", "read": ".*"})
        })
        .collect();
    let definitions = serde_json::json!({"users": users, "permissions": permissions});
    common::with_definitions(config, &definitions);
}

/// Publishes with `user_id` set; the broker refuses a user id other than the logged-in user's
/// (406), which tells us who the certificate logged in as.
async fn publish_as(connection: &lapin::Connection, user_id: &str) -> lapin::Result<()> {
    let channel = within(connection.create_channel()).await?;
    within(channel.confirm_select(Default::default())).await?;
    let properties = BasicProperties::default().with_user_id(user_id.into());
    let confirm = within(channel.basic_publish(
        "".into(),
        "nowhere".into(),
        BasicPublishOptions::default(),
        b"who am I",
        properties,
    ))
    .await?;
    within(confirm).await.map(|_| ())
}

#[tokio::test]
async fn the_certificate_cn_is_the_amqp_user_whatever_the_password() {
    let ca = TestCa::new("mtls CA");
    let broker = start_mtls(&ca).await;
    let port = broker.server.tls_addrs.expect("tls").amqps.port();
    let alice = ca.client("alice");
    // "alice" has no password in the broker: the certificate is her credential.
    let connection = amqps(port, "alice", ca.lapin_config(Some(&alice)))
        .await
        .expect("alice logs in by certificate");
    publish_as(&connection, "alice")
        .await
        .expect("user_id alice is hers");
    assert_reply(publish_as(&connection, "guest").await, 406);
}

#[tokio::test]
async fn a_certificate_of_someone_the_broker_does_not_know_opens_nothing() {
    let ca = TestCa::new("mtls unknown CA");
    let broker = start_mtls(&ca).await;
    let port = broker.server.tls_addrs.expect("tls").amqps.port();
    let mallory = ca.client("mallory");
    let refused = amqps(port, "mallory", ca.lapin_config(Some(&mallory))).await;
    assert_reply(refused, 530);
}

#[tokio::test]
async fn another_username_still_needs_its_password() {
    let ca = TestCa::new("mtls CA 2");
    let broker = start_mtls(&ca).await;
    let port = broker.server.tls_addrs.expect("tls").amqps.port();
    let alice = ca.client("alice");
    let guest = amqps(port, "guest", ca.lapin_config(Some(&alice))).await;
    publish_as(&guest.expect("guest/guest is valid"), "guest")
        .await
        .expect("as guest");
    let url = format!("amqps://guest:wrong@localhost:{port}/%2f");
    let runtime = lapin::runtime::default_runtime().expect("runtime");
    let wrong = lapin::Connection::connect_with_config(
        &url,
        Default::default(),
        ca.lapin_config(Some(&alice)),
        runtime,
    );
    assert!(
        within(wrong).await.is_err(),
        "a wrong password for another user is refused"
    );
}

#[tokio::test]
async fn mqtt_over_mtls_logs_in_as_the_cn() {
    let ca = TestCa::new("mtls MQTT CA");
    let broker = start_mtls(&ca).await;
    let port = broker.server.tls_addrs.expect("tls").mqtts.port();
    let device = ca.client("device-42");
    let mut options = MqttOptions::new("device-42", "localhost", port);
    options.set_credentials("device-42", "");
    let tls = TlsConfiguration::Rustls(ca.client_config(Some(&device)));
    options.set_transport(Transport::tls_with_config(tls));
    broker.mqtt(options).await;
}

#[tokio::test]
async fn clients_without_a_trusted_certificate_are_refused() {
    let ca = TestCa::new("mtls CA 3");
    let broker = start_mtls(&ca).await;
    let tls = broker.server.tls_addrs.expect("tls");
    let bare = amqps(tls.amqps.port(), "guest", ca.lapin_config(None)).await;
    assert!(bare.is_err(), "no client certificate");
    let stranger = TestCa::new("not trusted").client("mallory");
    let forged = amqps(
        tls.amqps.port(),
        "mallory",
        ca.lapin_config(Some(&stranger)),
    )
    .await;
    assert!(forged.is_err(), "a certificate from another CA");
    // The broker still serves a client with a good certificate.
    let alice = ca.client("alice");
    let good = amqps(tls.amqps.port(), "alice", ca.lapin_config(Some(&alice))).await;
    common::assert_round_trip(&good.expect("alice"), "mtls-survivor").await;
}

#[tokio::test]
async fn reload_swaps_the_certificate_for_new_handshakes_only() {
    let old = TestCa::new("old CA");
    let broker = Broker::start_with(|config| old.configure(config, false)).await;
    let tls = broker.server.tls_addrs.expect("tls");
    let open = amqps(tls.amqps.port(), "guest", old.lapin_config(None))
        .await
        .expect("connects");
    // Renewal: a certificate from a new CA is written over the old files.
    let new = TestCa::new("new CA");
    let renewed = new.server();
    old.write("server.pem", &renewed.cert_pem);
    old.write("server.key", &renewed.key_pem);
    broker.server.reload_tls().expect("reload");
    assert!(
        tls::connect(tls.mqtts, old.client_config(None))
            .await
            .is_err()
    );
    tls::connect(tls.mqtts, new.client_config(None))
        .await
        .expect("new CA");
    common::assert_round_trip(&open, "kept-its-session").await;
    // A broken file is refused and the renewed certificate stays in use.
    old.write("server.key", "not a key");
    assert!(broker.server.reload_tls().is_err());
    assert!(
        tls::connect(tls.mqtts, new.client_config(None))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_mqtt_client_without_a_username_logs_in_as_its_certificate() {
    let ca = TestCa::new("mtls MQTT CA 2");
    let broker = Broker::start_with(|config| {
        ca.configure(config, true);
        certificate_users(config);
        config.mqtt_anonymous = false;
    })
    .await;
    let (_connection, channel) = broker.channel().await;
    common::declare(&channel, "identity", Default::default()).await;
    channel
        .queue_bind(
            "identity".into(),
            "amq.topic".into(),
            "who.am.i".into(),
            Default::default(),
            Default::default(),
        )
        .await
        .expect("bind");
    let port = broker.server.tls_addrs.expect("tls").mqtts.port();
    let sensor = ca.client("sensor-9");
    let mut options = MqttOptions::new("sensor-9", "localhost", port);
    let tls = TlsConfiguration::Rustls(ca.client_config(Some(&sensor)));
    options.set_transport(Transport::tls_with_config(tls));
    let mut client = broker.mqtt(options).await;
    client
        .client
        .publish("who/am/i", rumqttc::QoS::AtLeastOnce, false, "hello")
        .await
        .expect("publish");
    // Drive the client (it sends the PUBLISH) while looking for the message on the AMQP side.
    let mut got = None;
    for _ in 0..100 {
        got = common::get(&channel, "identity").await;
        if got.is_some() {
            break;
        }
        let _ =
            tokio::time::timeout(std::time::Duration::from_millis(20), client.events.poll()).await;
    }
    let got = got.expect("the MQTT publish reached AMQP");
    let headers = got.properties.headers().clone().expect("headers");
    let username = headers.inner().get("x-mqtt-username").cloned();
    assert_eq!(
        username,
        Some(lapin::types::AMQPValue::LongString("sensor-9".into()))
    );
}

#[tokio::test]
async fn amqp_external_logs_in_with_the_certificate_alone() {
    let ca = TestCa::new("mtls EXTERNAL CA");
    let broker = start_mtls(&ca).await;
    let port = broker.server.tls_addrs.expect("tls").amqps.port();
    let bob = ca.client("bob");
    let url = format!("amqps://localhost:{port}/%2f?auth_mechanism=external");
    let runtime = lapin::runtime::default_runtime().expect("runtime");
    let connection = within(lapin::Connection::connect_with_config(
        &url,
        lapin::ConnectionProperties::default(),
        ca.lapin_config(Some(&bob)),
        runtime,
    ))
    .await
    .expect("bob logs in with EXTERNAL");
    publish_as(&connection, "bob").await.expect("bob is bob");

    // Without a certificate, EXTERNAL has no identity to offer: 403.
    let plain = common::connect_url(&format!(
        "amqp://{}/%2f?auth_mechanism=external",
        broker.server.amqp_addr
    ))
    .await;
    assert_reply(plain, 403);
}

#[tokio::test]
async fn a_stomp_client_without_a_login_logs_in_as_its_certificate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = TestCa::new("mtls STOMP CA");
    let broker = Broker::start_with(|config| {
        ca.configure(config, true);
        certificate_users(config);
        config.stomp_anonymous = false;
    })
    .await;
    let stomps = broker.server.tls_addrs.expect("tls").stomps;
    let carol = ca.client("carol");
    let mut stream = tls::connect(stomps, ca.client_config(Some(&carol)))
        .await
        .expect("TLS handshake");
    // Anonymous logins are off, so without the certificate this CONNECT would get an ERROR.
    let connect = b"CONNECT\naccept-version:1.2\nhost:/\n\n\0";
    within(stream.write_all(connect)).await.expect("write");
    let mut answer = vec![0; 512];
    let read = within(stream.read(&mut answer)).await.expect("read");
    assert!(
        answer[..read].starts_with(b"CONNECTED\n"),
        "{}",
        String::from_utf8_lossy(&answer[..read])
    );
}

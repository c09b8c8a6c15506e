//! The TLS listeners against the real broker with a CA made for the test: lapin over AMQPS,
//! rumqttc over MQTTS and WSS, and clients that get the handshake wrong.

mod common;

use common::mqtt::{next_publish, subscribed};
use common::tls::{self, TestCa, amqps};
use common::{Broker, within};
use rumqttc::{MqttOptions, QoS, TlsConfiguration, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(ca: &TestCa) -> Broker {
    Broker::start_with(|config| ca.configure(config, false)).await
}

fn addrs(broker: &Broker) -> mqbridge::server::TlsAddrs {
    broker.server.tls_addrs.expect("TLS listeners started")
}

fn mqtts_options(client_id: &str, port: u16, ca: &TestCa) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, "localhost", port);
    let tls = TlsConfiguration::Rustls(ca.client_config(None));
    options.set_transport(Transport::tls_with_config(tls));
    options
}

#[tokio::test]
async fn lapin_over_amqps_publishes_and_gets() {
    let ca = TestCa::new("amqps CA");
    let broker = start(&ca).await;
    let connection = amqps(addrs(&broker).amqps.port(), "guest", ca.lapin_config(None))
        .await
        .expect("AMQPS connects");
    common::assert_round_trip(&connection, "over-tls").await;
}

#[tokio::test]
async fn rumqttc_over_mqtts_and_wss_meet_on_the_same_topic() {
    let ca = TestCa::new("mqtts CA");
    let broker = start(&ca).await;
    let tls = addrs(&broker);
    let options =
        common::websocket::mqtt_wss_options("page", tls.wss.port(), ca.client_config(None));
    let mut page = broker.mqtt(options).await;
    page.client
        .subscribe("tls/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut page.events).await;
    let device = broker
        .mqtt(mqtts_options("device", tls.mqtts.port(), &ca))
        .await;
    device
        .client
        .publish("tls/hello", QoS::AtLeastOnce, false, "encrypted")
        .await
        .expect("publish");
    let mut events = device.events;
    let device_loop = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let got = next_publish(&mut page.events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("tls/hello", &b"encrypted"[..])
    );
    device_loop.abort();
}

#[tokio::test]
async fn plain_text_and_untrusting_clients_fail_alone() {
    let ca = TestCa::new("refusals CA");
    let broker = start(&ca).await;
    let tls = addrs(&broker);
    let survivor = amqps(tls.amqps.port(), "guest", ca.lapin_config(None))
        .await
        .expect("AMQPS connects");
    // A plain AMQP client on the TLS port: its protocol header is not a ClientHello.
    let mut plain = within(tokio::net::TcpStream::connect(tls.amqps))
        .await
        .expect("tcp");
    within(plain.write_all(b"AMQP\x00\x00\x09\x01"))
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = within(plain.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"AMQP"), "no AMQP spoken before TLS");
    // A client that trusts another CA gives up during the handshake.
    let stranger = TestCa::new("another CA");
    assert!(
        tls::connect(tls.mqtts, stranger.client_config(None))
            .await
            .is_err()
    );
    // A client that connects and says nothing is dropped on its own task.
    let _silent = within(tokio::net::TcpStream::connect(tls.wss))
        .await
        .expect("tcp");
    common::assert_round_trip(&survivor, "still-serving").await;
    let again = amqps(tls.amqps.port(), "guest", ca.lapin_config(None)).await;
    common::assert_round_trip(&again.expect("connects"), "new-after-failures").await;
}

#[tokio::test]
async fn tls_listeners_start_only_with_both_certificate_and_key() {
    let plain = Broker::start().await;
    assert!(plain.server.tls_addrs.is_none());
    let ca = TestCa::new("half CA");
    let mut config = mqbridge::Config {
        amqp_port: 0,
        mqtt_port: 0,
        ws_port: 0,
        data_dir: ca.dir.0.join("data"),
        ..mqbridge::Config::default()
    };
    ca.configure(&mut config, false);
    config.tls_key_file = None;
    let error = mqbridge::Server::start(config.clone())
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("set both or neither"), "{error}");
    config.tls_key_file = Some(ca.write("empty.key", ""));
    let error = mqbridge::Server::start(config).await.expect_err("refused");
    assert!(format!("{error:#}").contains("empty.key"), "{error:#}");
}

#[tokio::test]
async fn stomp_over_tls_connects() {
    let ca = TestCa::new("stomps CA");
    let broker = start(&ca).await;
    let mut stream = tls::connect(addrs(&broker).stomps, ca.client_config(None))
        .await
        .expect("TLS handshake");
    let connect = b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0";
    within(stream.write_all(connect)).await.expect("write");
    let mut answer = vec![0; 512];
    let read = within(stream.read(&mut answer)).await.expect("read");
    assert!(
        answer[..read].starts_with(b"CONNECTED\n"),
        "{:?}",
        &answer[..read]
    );
}

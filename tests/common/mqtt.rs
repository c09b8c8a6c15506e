//! MQTT clients (rumqttc, v3.1.1 and v5) against the test broker.

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Publish};

use super::{Broker, within};

/// Client id, connect options and a running event loop's receiving end.
pub struct Client {
    pub client: AsyncClient,
    pub events: EventLoop,
}

impl Broker {
    pub fn mqtt_options(&self, client_id: &str) -> MqttOptions {
        let addr = self.server.mqtt_addr;
        let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(std::time::Duration::from_secs(30));
        options
    }

    /// Connects and waits for CONNACK.
    pub async fn mqtt(&self, options: MqttOptions) -> Client {
        let (client, mut events) = AsyncClient::new(options, 64);
        let connack = within(next_incoming(&mut events)).await;
        assert!(
            matches!(connack, Incoming::ConnAck(_)),
            "expected CONNACK, got {connack:?}"
        );
        Client { client, events }
    }
}

/// The next packet from the broker (driving the event loop meanwhile).
pub async fn next_incoming(events: &mut EventLoop) -> Incoming {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(packet)) => return packet,
            Ok(Event::Outgoing(_)) => {}
            Err(error) => panic!("mqtt connection failed: {error}"),
        }
    }
}

/// The next PUBLISH from the broker, skipping acks.
pub async fn next_publish(events: &mut EventLoop) -> Publish {
    within(async {
        loop {
            if let Incoming::Publish(publish) = next_incoming(events).await {
                return publish;
            }
        }
    })
    .await
}

/// Drives the event loop until the broker acknowledges a subscription.
pub async fn subscribed(events: &mut EventLoop) -> rumqttc::SubAck {
    within(async {
        loop {
            if let Incoming::SubAck(ack) = next_incoming(events).await {
                return ack;
            }
        }
    })
    .await
}

/// A fresh MQTT 3.1.1 client subscribed (QoS 1) to `alive/{id}`, for [`assert_alive`].
pub async fn alive_client(broker: &Broker, id: &str) -> Client {
    let mut client = broker.mqtt(broker.mqtt_options(id)).await;
    client
        .client
        .subscribe(format!("alive/{id}"), rumqttc::QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut client.events).await;
    client
}

/// Proves that a client made by [`alive_client`] still publishes and receives: the broker
/// survived whatever another connection did.
pub async fn assert_alive(client: &mut Client, id: &str, marker: &str) {
    client
        .client
        .publish(
            format!("alive/{id}"),
            rumqttc::QoS::AtLeastOnce,
            false,
            marker.to_owned(),
        )
        .await
        .expect("publish");
    let got = next_publish(&mut client.events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        (format!("alive/{id}").as_str(), marker.as_bytes())
    );
}

/// MQTT 5 clients (rumqttc::v5).
pub mod v5 {
    use rumqttc::v5::mqttbytes::v5::{ConnAck, DisconnectReasonCode, Packet, Publish, SubAck};
    use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, StateError};

    use super::super::{Broker, within};

    pub struct Client {
        pub client: AsyncClient,
        pub events: EventLoop,
        pub connack: ConnAck,
    }

    impl Broker {
        pub fn mqtt5_options(&self, client_id: &str) -> MqttOptions {
            let addr = self.server.mqtt_addr;
            let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
            options.set_keep_alive(std::time::Duration::from_secs(30));
            options
        }

        /// Connects and waits for a successful CONNACK.
        pub async fn mqtt5(&self, options: MqttOptions) -> Client {
            let (client, mut events) = AsyncClient::new(options, 64);
            let connack = within(next_incoming(&mut events)).await;
            let Packet::ConnAck(connack) = connack else {
                panic!("expected CONNACK, got {connack:?}")
            };
            Client {
                client,
                events,
                connack,
            }
        }
    }

    /// The next packet from the broker (driving the event loop meanwhile).
    pub async fn next_incoming(events: &mut EventLoop) -> Packet {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(packet)) => return packet,
                Ok(Event::Outgoing(_)) => {}
                Err(error) => panic!("mqtt 5 connection failed: {error}"),
            }
        }
    }

    /// The next PUBLISH from the broker, skipping acks.
    pub async fn next_publish(events: &mut EventLoop) -> Publish {
        within(async {
            loop {
                if let Packet::Publish(publish) = next_incoming(events).await {
                    return publish;
                }
            }
        })
        .await
    }

    /// Drives the event loop until the broker acknowledges a subscription.
    pub async fn subscribed(events: &mut EventLoop) -> SubAck {
        within(async {
            loop {
                if let Packet::SubAck(ack) = next_incoming(events).await {
                    return ack;
                }
            }
        })
        .await
    }

    /// Drives the event loop until the broker sends DISCONNECT; returns its reason code.
    pub async fn server_disconnect(events: &mut EventLoop) -> DisconnectReasonCode {
        within(async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Disconnect(disconnect))) => {
                        return disconnect.reason_code;
                    }
                    Ok(_) => {}
                    Err(ConnectionError::MqttState(StateError::ServerDisconnect {
                        reason_code,
                        ..
                    })) => return reason_code,
                    Err(error) => panic!("expected a server DISCONNECT, got {error}"),
                }
            }
        })
        .await
    }
}

/// A raw MQTT connection on a TCP socket, speaking through the adapter's own codec, for
/// clients that misbehave in ways rumqttc cannot.
pub mod raw {
    use bytes::{Bytes, BytesMut};
    use mqbridge_mqtt::codec::{
        self, Connect, ConnectProperties, Packet, ProtocolVersion, Publish, PublishProperties, QoS,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::super::{Broker, within};

    pub const V3: ProtocolVersion = ProtocolVersion::V3_1_1;
    pub const V5: ProtocolVersion = ProtocolVersion::V5;

    /// One raw MQTT connection.
    pub struct Raw {
        pub stream: TcpStream,
        pub input: BytesMut,
        pub version: ProtocolVersion,
    }

    impl Raw {
        /// A TCP connection that has sent nothing yet.
        pub async fn open(broker: &Broker, version: ProtocolVersion) -> Raw {
            let stream = within(TcpStream::connect(broker.server.mqtt_addr))
                .await
                .expect("tcp connect");
            Raw {
                stream,
                input: BytesMut::new(),
                version,
            }
        }

        /// A connection that has sent CONNECT and got a successful CONNACK.
        pub async fn connected(broker: &Broker, version: ProtocolVersion, keep_alive: u16) -> Raw {
            Raw::connected_with(broker, connect(version, "raw", keep_alive)).await
        }

        /// A connection that has sent `connect` and got a successful CONNACK.
        pub async fn connected_with(broker: &Broker, connect: Packet) -> Raw {
            let Packet::Connect(ref request) = connect else {
                panic!("not a CONNECT: {connect:?}")
            };
            let mut raw = Raw::open(broker, request.version).await;
            raw.send(&connect).await;
            match raw.next().await {
                Some(Packet::ConnAck(connack)) => assert_eq!(connack.code, 0, "{connack:?}"),
                other => panic!("expected CONNACK, got {other:?}"),
            }
            raw
        }

        pub async fn send(&mut self, packet: &Packet) {
            let mut out = BytesMut::new();
            codec::encode(packet, self.version, &mut out).expect("encode");
            self.send_bytes(&out).await;
        }

        pub async fn send_bytes(&mut self, bytes: &[u8]) {
            within(self.stream.write_all(bytes)).await.expect("write");
        }

        /// The next packet from the broker, or None once it has closed the connection.
        pub async fn next(&mut self) -> Option<Packet> {
            within(async {
                loop {
                    let max = codec::PACKET_SIZE_MAX as u32;
                    if let Some(packet) =
                        codec::decode(&mut self.input, Some(self.version), max).expect("decode")
                    {
                        return Some(packet);
                    }
                    match self.stream.read_buf(&mut self.input).await {
                        Ok(0) | Err(_) => {
                            assert!(self.input.is_empty(), "a partial packet at close");
                            return None;
                        }
                        Ok(_) => {}
                    }
                }
            })
            .await
        }

        /// The broker closes the connection without sending anything (3.x has no DISCONNECT).
        pub async fn assert_closed(&mut self) {
            let packet = self.next().await;
            assert!(packet.is_none(), "expected a close, got {packet:?}");
        }

        /// The broker sends an MQTT 5 DISCONNECT with `code`, then closes.
        pub async fn assert_disconnect(&mut self, code: u8) {
            match self.next().await {
                Some(Packet::Disconnect(disconnect)) => {
                    assert_eq!(disconnect.reason, code, "{disconnect:?}");
                }
                other => panic!("expected DISCONNECT {code:#04x}, got {other:?}"),
            }
            self.assert_closed().await;
        }
    }

    pub fn connect(version: ProtocolVersion, client_id: &str, keep_alive: u16) -> Packet {
        Packet::Connect(Box::new(Connect {
            version,
            client_id: client_id.to_owned(),
            clean_start: true,
            keep_alive,
            username: None,
            password: None,
            will: None,
            properties: ConnectProperties::default(),
        }))
    }

    pub fn publish(topic: &str, payload: Bytes) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.to_owned(),
            packet_id: None,
            payload,
            properties: PublishProperties::default(),
        })
    }
}

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

//! The MQTT side of the crash tests: QoS 1 publishes into a persistent session (clean session
//! off, subscribed before), killed mid-stream; after the restart the session must deliver every
//! PUBACKed message. QoS 1 is at least once, so copies are allowed; nothing else is.
//!
//! Each client runs its rumqttc event loop on the task that uses it; nothing is shared.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS};

const TOPIC: &str = "crash/mqtt";
const SUBSCRIBER: &str = "crash-subscriber";
/// Publishes queued in the client at once; rumqttc keeps up to 100 unacknowledged in flight.
const REQUESTS_MAX: usize = 64;
/// Bound on every wait for the broker.
const WAIT: Duration = Duration::from_secs(10);

/// What the publisher was told, and what the subscriber has seen.
#[derive(Debug, Default)]
pub struct Model {
    pub next_id: u64,
    /// PUBACKed and not yet received by the subscriber.
    pending: BTreeSet<u64>,
    pub pubacked_total: u64,
}

/// What one publisher learnt before the kill.
#[derive(Debug)]
pub struct Published {
    next_id: u64,
    pubacked: Vec<u64>,
}

impl Model {
    pub fn absorb(&mut self, published: Published) {
        eprintln!("mqtt cycle: {} PUBACKed", published.pubacked.len());
        self.next_id = published.next_id;
        self.pubacked_total += published.pubacked.len() as u64;
        self.pending.extend(published.pubacked);
    }
}

fn options(broker: SocketAddr, client_id: &str, clean: bool) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(clean);
    options
}

/// Polls until `wanted` matches an incoming packet, bounded by [`WAIT`].
async fn until(events: &mut EventLoop, wanted: impl Fn(&Incoming) -> bool) {
    let waited = tokio::time::timeout(WAIT, async {
        loop {
            match events.poll().await.expect("mqtt connection") {
                Event::Incoming(packet) if wanted(&packet) => return,
                _ => {}
            }
        }
    });
    waited.await.expect("the broker answered in time");
}

/// Creates the persistent session and its QoS 1 subscription, then leaves it offline, so
/// that everything published later waits in its queue (and in the journal).
pub async fn subscribe_persistent(broker: SocketAddr) {
    let (client, mut events) = AsyncClient::new(options(broker, SUBSCRIBER, false), 10);
    until(&mut events, |p| matches!(p, Incoming::ConnAck(_))).await;
    client
        .subscribe(TOPIC, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    until(&mut events, |p| matches!(p, Incoming::SubAck(_))).await;
    disconnect(&client, &mut events).await;
}

async fn disconnect(client: &AsyncClient, events: &mut EventLoop) {
    client.disconnect().await.expect("disconnect");
    let sent = tokio::time::timeout(WAIT, async {
        while let Ok(event) = events.poll().await {
            if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                return;
            }
        }
    });
    sent.await.expect("DISCONNECT sent");
}

/// Publishes QoS 1 messages numbered from `first` until the connection fails; returns the
/// ids the broker PUBACKed.
pub async fn publish_until_killed(broker: SocketAddr, first: u64) -> Published {
    let client_id = format!("crash-publisher-{first}");
    let (client, mut events) = AsyncClient::new(options(broker, &client_id, true), REQUESTS_MAX);
    let mut next_id = first;
    // Ids in the order their PUBLISH was handed to the event loop, which sends them in order
    // and reports each packet id as it goes out.
    let mut queued = VecDeque::new();
    let mut in_flight = HashMap::new();
    let mut pubacked = Vec::new();
    loop {
        while queued.len() < REQUESTS_MAX {
            let id = next_id + 1;
            let payload = id.to_string();
            if client
                .try_publish(TOPIC, QoS::AtLeastOnce, false, payload)
                .is_err()
            {
                break;
            }
            next_id = id;
            queued.push_back(id);
        }
        match events.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(packet_id))) => {
                let id = queued.pop_front().expect("a queued publish went out");
                in_flight.insert(packet_id, id);
            }
            Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                pubacked.extend(in_flight.remove(&ack.pkid));
            }
            Ok(_) => {}
            Err(_) => return Published { next_id, pubacked },
        }
    }
}

/// Resumes the persistent session and receives until every PUBACKed message came; PUBACKs
/// each one (rumqttc does so as it polls), then leaves the session offline again.
pub async fn verify(broker: SocketAddr, model: &mut Model) {
    let (client, mut events) = AsyncClient::new(options(broker, SUBSCRIBER, false), 10);
    let pending_before = model.pending.len();
    let received = tokio::time::timeout(WAIT, async {
        while !model.pending.is_empty() {
            match events.poll().await.expect("mqtt connection") {
                Event::Incoming(Incoming::Publish(publish)) => {
                    let id = parse_id(&publish.payload);
                    assert!(
                        id >= 1 && id <= model.next_id,
                        "message {id} was never published"
                    );
                    model.pending.remove(&id);
                }
                Event::Incoming(Incoming::ConnAck(ack)) => {
                    assert!(
                        ack.session_present,
                        "the persistent session is gone: {ack:?}"
                    );
                }
                _ => {}
            }
        }
    });
    // MQTT PUBACK must mean "on disk" (issue 8). If this fails while the MQTT adapter still
    // PUBACKs before the journal's sync, it is that gap, not this check, that is wrong.
    assert!(
        received.await.is_ok(),
        "{} of {pending_before} PUBACKed QoS 1 messages never came after kill -9 (first: {:?})",
        model.pending.len(),
        model.pending.iter().take(10).collect::<Vec<_>>()
    );
    disconnect(&client, &mut events).await;
}

fn parse_id(payload: &[u8]) -> u64 {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("a message nobody published: {payload:?}"))
}

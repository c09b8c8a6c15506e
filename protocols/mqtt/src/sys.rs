//! `$SYS/broker/...` statistics in Mosquitto's naming, so that dashboards and
//! `mosquitto_sub -t '$SYS/#' -v` work unchanged. Published every `sys_interval` (10 s, as
//! Mosquitto) as retained messages on `amq.topic`: a new subscriber gets the latest values at
//! once. `messages/received` and `messages/sent` count every protocol's messages, from the
//! same per-connection counters the management API's metrics sum; `publish/messages/*` and
//! `clients/connected` are MQTT's own. `$SYS` topics are
//! not matched by filters starting with a wildcard [MQTT-4.7.2-1], so `#` subscribers do not
//! receive them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use mqbridge_broker_api::{HeaderValue, Headers, Message, Properties, VirtualHost};
use tokio::sync::watch;

use crate::connection::MqttShared;
use crate::topic;
use crate::translate::{PUBLISH_QOS_HEADER, TOPIC_EXCHANGE};

/// Messages the broker's clients published and were sent, over every protocol so far.
pub type MessageTotals = Arc<dyn Fn() -> (u64, u64) + Send + Sync>;

/// Counters the connections update; read by the `$SYS` task.
#[derive(Debug)]
pub struct Statistics {
    started: Instant,
    pub clients_connected: AtomicU64,
    pub publish_received: AtomicU64,
    pub publish_sent: AtomicU64,
}

impl Default for Statistics {
    fn default() -> Self {
        Statistics {
            started: Instant::now(),
            clients_connected: AtomicU64::new(0),
            publish_received: AtomicU64::new(0),
            publish_sent: AtomicU64::new(0),
        }
    }
}

impl Statistics {
    pub fn count(counter: &AtomicU64, delta: i64) {
        if delta >= 0 {
            counter.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            counter.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Topic name and value of every `$SYS` statistic now.
    fn snapshot(
        &self,
        retained: usize,
        (received, sent): (u64, u64),
    ) -> Vec<(&'static str, String)> {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed).to_string();
        vec![
            (
                "$SYS/broker/version",
                format!("mqbridge version {}", env!("CARGO_PKG_VERSION")),
            ),
            (
                "$SYS/broker/uptime",
                format!("{} seconds", self.started.elapsed().as_secs()),
            ),
            (
                "$SYS/broker/clients/connected",
                read(&self.clients_connected),
            ),
            ("$SYS/broker/messages/received", received.to_string()),
            ("$SYS/broker/messages/sent", sent.to_string()),
            (
                "$SYS/broker/publish/messages/received",
                read(&self.publish_received),
            ),
            (
                "$SYS/broker/publish/messages/sent",
                read(&self.publish_sent),
            ),
            ("$SYS/broker/retained messages/count", retained.to_string()),
        ]
    }
}

/// Publishes the statistics every `sys_interval` until shutdown. Runs on its own task.
pub async fn publish_statistics(
    shared: Arc<MqttShared>,
    vhost: Arc<dyn VirtualHost>,
    totals: MessageTotals,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(shared.settings.sys_interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let snapshot = shared
            .statistics
            .snapshot(shared.retained_count(), totals());
        for (name, value) in snapshot {
            let message = Arc::new(statistic(name, value));
            shared.retain(name, &message);
            let mut routes = Vec::new();
            let headers = &message.properties.headers;
            if vhost
                .route(TOPIC_EXCHANGE, &message.routing_key, headers, &mut routes)
                .is_ok()
            {
                for queue in routes {
                    queue.publish(Arc::clone(&message), None).await;
                }
            }
        }
    }
}

fn statistic(name: &str, value: String) -> Message {
    let mut headers = Headers::new();
    headers.insert(PUBLISH_QOS_HEADER, HeaderValue::U8(0));
    Message {
        exchange: TOPIC_EXCHANGE.to_owned(),
        routing_key: topic::name_to_routing_key(name),
        properties: Properties {
            delivery_mode: Some(1),
            headers,
            ..Properties::default()
        },
        body: Bytes::from(value),
        body_md5: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_use_mosquitto_topic_names() {
        let statistics = Statistics::default();
        Statistics::count(&statistics.clients_connected, 2);
        Statistics::count(&statistics.clients_connected, -1);
        let snapshot = statistics.snapshot(3, (7, 5));
        let value = |name: &str| {
            snapshot
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(value("$SYS/broker/clients/connected").as_deref(), Some("1"));
        assert_eq!(
            value("$SYS/broker/retained messages/count").as_deref(),
            Some("3")
        );
        assert_eq!(value("$SYS/broker/messages/received").as_deref(), Some("7"));
        assert_eq!(value("$SYS/broker/messages/sent").as_deref(), Some("5"));
        assert!(value("$SYS/broker/version").is_some_and(|v| v.starts_with("mqbridge")));
    }
}

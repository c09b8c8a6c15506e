//! The broker as a whole: `/api/overview`, `/api/whoami`, `/api/nodes`, `/api/vhosts`, and the
//! alarms health check. One node: the broker is not clustered.

use hyper::StatusCode;
use mqbridge_broker_api::User;
use serde_json::{Value, json};

use super::http::{self, ApiError, HttpResponse};
use super::rates::Subject;
use super::{Management, RABBITMQ_API_VERSION};
use crate::core::inspect::{MessageEvents, VHostView};

/// Messages and objects summed over some vhosts.
#[derive(Debug, Default)]
pub struct Totals {
    pub queues: u64,
    pub consumers: u64,
    pub exchanges: u64,
    pub ready: u64,
    pub unacknowledged: u64,
    pub events: MessageEvents,
}

impl Totals {
    pub fn of(views: &[VHostView]) -> Totals {
        let mut totals = Totals::default();
        for view in views {
            totals.exchanges += view.exchanges().len() as u64;
            for queue in view.queues() {
                totals.queues += 1;
                totals.consumers += u64::from(queue.counts.consumers);
                totals.ready += u64::from(queue.counts.messages_ready);
                totals.unacknowledged += u64::from(queue.counts.messages_unacknowledged);
            }
            let events = view.message_totals();
            totals.events.published += events.published;
            totals.events.delivered += events.delivered;
            totals.events.acknowledged += events.acknowledged;
        }
        totals
    }

    fn queue_totals(&self) -> Value {
        json!({
            "messages": self.ready + self.unacknowledged,
            "messages_ready": self.ready,
            "messages_unacknowledged": self.unacknowledged,
        })
    }
}

pub fn overview(management: &Management) -> Value {
    let views = management.core.vhost_views();
    let totals = Totals::of(&views);
    let connections = management.registry.list().len();
    json!({
        "management_version": RABBITMQ_API_VERSION,
        "rabbitmq_version": RABBITMQ_API_VERSION,
        "product_name": "mqbridge",
        "product_version": env!("CARGO_PKG_VERSION"),
        "cluster_name": management.node,
        "node": management.node,
        "object_totals": {
            "connections": connections,
            "exchanges": totals.exchanges,
            "queues": totals.queues,
            "consumers": totals.consumers,
        },
        "queue_totals": totals.queue_totals(),
        "message_stats": management.rates.message_stats(&Subject::Broker, totals.events),
        "listeners": listeners(management),
    })
}

/// Every listener in RabbitMQ's protocol names; the WebSocket port carries both MQTT and
/// STOMP, so it is listed under both.
fn listeners(management: &Management) -> Value {
    let mut list = Vec::new();
    let mut add = |protocol: &str, address: std::net::SocketAddr| {
        list.push(json!({
            "node": management.node,
            "protocol": protocol,
            "ip_address": address.ip().to_string(),
            "port": address.port(),
        }));
    };
    for &(listener, address) in &management.listeners {
        let names: &[&str] = match listener {
            "amqp" => &["amqp"],
            "amqps" => &["amqp/ssl"],
            "mqtt" => &["mqtt"],
            "mqtts" => &["mqtt/ssl"],
            "stomp" => &["stomp"],
            "stomps" => &["stomp/ssl"],
            "ws" => &["http/web-mqtt", "http/web-stomp"],
            "wss" => &["https/web-mqtt", "https/web-stomp"],
            other => &[other],
        };
        for name in names {
            add(name, address);
        }
    }
    if let Some(&address) = management.address.get() {
        add("http", address);
        add("http/prometheus", address);
    }
    Value::Array(list)
}

pub fn whoami(management: &Management, user: &User) -> Value {
    let tags = management
        .core
        .access()
        .user(&user.name)
        .map(|record| record.tags)
        .unwrap_or_default();
    json!({ "name": user.name, "tags": tags })
}

pub fn node(management: &Management) -> Value {
    let alarms = management.core.alarms();
    let mut node = json!({
        "name": management.node,
        "type": "disc",
        "running": true,
        "uptime": u64::try_from(management.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "mem_used": super::metrics::resident_memory_bytes().unwrap_or(0),
        "mem_limit": alarms.high_watermark_bytes,
        "mem_alarm": alarms.memory,
        "disk_free_alarm": alarms.disk,
        "disk_free_limit": alarms.disk_free_limit_bytes,
        "queued_message_bytes": alarms.used_bytes,
    });
    // Left out, not null, until the free space has been measured once.
    if let Some(free) = alarms.disk_free_bytes {
        node["disk_free"] = free.into();
    }
    node
}

/// `/api/vhosts` (all) or `/api/vhosts/{name}` (one object).
pub fn vhosts(management: &Management, user: &User, name: Option<&str>) -> Result<Value, ApiError> {
    let views = management.views(name, user)?;
    let records = management.core.vhost_records();
    let described: Vec<Value> = views
        .iter()
        .map(|view| {
            let totals = Totals::of(std::slice::from_ref(view));
            let mut object = totals.queue_totals();
            let record = records.iter().find(|r| r.name == view.name());
            object["name"] = view.name().into();
            object["description"] = record.map_or("", |r| r.description.as_str()).into();
            object["tags"] = json!(record.map(|r| r.tags.clone()).unwrap_or_default());
            object["tracing"] = false.into();
            let subject = Subject::Vhost(view.name().to_owned());
            object["message_stats"] = management.rates.message_stats(&subject, totals.events);
            object
        })
        .collect();
    Ok(match name {
        Some(_) => described.into_iter().next().unwrap_or(Value::Null),
        None => Value::Array(described),
    })
}

/// 200 `{"status":"ok"}`, or 503 naming the alarms in effect (RabbitMQ's answer).
pub fn alarms(management: &Management) -> HttpResponse {
    let alarms = management.core.alarms();
    let mut resources = Vec::new();
    if alarms.memory {
        resources.push(json!({ "node": management.node, "resource": "memory" }));
    }
    if alarms.disk {
        resources.push(json!({ "node": management.node, "resource": "disk" }));
    }
    if resources.is_empty() {
        return http::ok(&json!({ "status": "ok" }));
    }
    http::json(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({
            "status": "failed",
            "reason": "There are alarms in effect in the cluster",
            "alarms": resources,
        }),
    )
}

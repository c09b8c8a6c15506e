//! `/api/connections`: the sockets the protocol listeners are serving, from the server's
//! registry, with what each adapter reported: the user and vhost once it opened one, its
//! client id (MQTT client id, AMQP `connection_name`) and its channels (AMQP). Fields not
//! known yet (before login) are null. `/api/channels` is empty: channels are counted, not
//! listed.

use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use super::Management;
use crate::server::registry::ConnectionInfo;

pub fn list(management: &Management) -> Value {
    let connections = management.registry.list();
    Value::Array(
        connections
            .iter()
            .map(|connection| {
                let report = &connection.report;
                let (published, delivered) = report.messages();
                let connected_at = connection
                    .connected_at
                    .duration_since(UNIX_EPOCH)
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    .unwrap_or(0);
                json!({
                    "name": format!("{} -> {}", connection.peer, connection.local),
                    "node": management.node,
                    "type": "network",
                    "protocol": connection.protocol(),
                    "listener": connection.listener,
                    "ssl": connection.tls(),
                    "host": connection.local.ip().to_string(),
                    "port": connection.local.port(),
                    "peer_host": connection.peer.ip().to_string(),
                    "peer_port": connection.peer.port(),
                    "connected_at": connected_at,
                    "state": "running",
                    "user": report.user(),
                    "vhost": report.vhost(),
                    "client_properties": client_properties(connection),
                    "channels": report.channels(),
                    "messages_published": published,
                    "messages_delivered": delivered,
                })
            })
            .collect(),
    )
}

/// The client's name for itself where RabbitMQ's tools look for it: `connection_name` (AMQP)
/// and `client_id` (MQTT), both the same reported value.
fn client_properties(connection: &ConnectionInfo) -> Value {
    match connection.report.client_id() {
        Some(id) => json!({"connection_name": id, "client_id": id}),
        None => json!({}),
    }
}

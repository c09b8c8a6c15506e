//! `/api/connections`: the sockets the protocol listeners are serving, from the server's
//! registry. What the registry cannot know yet (the user, vhost, client id and channels a
//! connection's adapter holds) is left out rather than guessed; `/api/channels` is empty for
//! the same reason.

use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use super::Management;

pub fn list(management: &Management) -> Value {
    let connections = management.registry.list();
    Value::Array(
        connections
            .iter()
            .map(|connection| {
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
                })
            })
            .collect(),
    )
}

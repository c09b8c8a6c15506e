//! `/api/connections`: the sockets the protocol listeners are serving, from the server's
//! registry, with what each adapter reported: the user and vhost once it opened one, its
//! client id (MQTT client id, AMQP `connection_name`) and its channels (AMQP). `user` and
//! `vhost` are left out until the connection logs in. `/api/channels` lists each AMQP
//! connection's open channels by number, RabbitMQ's `conn (n)` names, with the connection's
//! user and vhost.
//!
//! As in RabbitMQ, administrators and monitoring users see every connection, others their
//! own; a `DELETE` closes one (an administrator's, or the user's own) with the protocol's own
//! words: AMQP connection.close 320, MQTT 5 DISCONNECT 0x98, a STOMP ERROR frame.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::http::{self, ApiError, HttpResponse};
use super::{ApiRequest, Management, auth};
use crate::server::registry::ConnectionInfo;

pub fn route(
    management: &Management,
    request: &ApiRequest,
    path: &[&str],
) -> Result<HttpResponse, ApiError> {
    let columns = request.query.get("columns");
    let visible = |connection: &ConnectionInfo| visible(management, request, connection);
    let find = |name: &str| {
        let connections = management.registry.list();
        let found = connections.into_iter().find(|c| c.name() == name);
        found.filter(|c| visible(c)).ok_or(ApiError::NotFound)
    };
    match (&request.method, path) {
        (&Method::GET, []) => {
            let connections = management.registry.list().into_iter().filter(visible);
            let listed: Vec<Value> = connections.map(|c| describe(management, &c)).collect();
            Ok(http::ok(&http::select_columns(
                Value::Array(listed),
                columns,
            )))
        }
        (&Method::GET, [name]) => Ok(http::ok(&describe(management, &find(name)?))),
        (&Method::DELETE, [name]) => {
            let connection = find(name)?;
            if !owned(request, &connection) && !auth::is_administrator(management, &request.user) {
                return Err(ApiError::AccessRefused(
                    "only administrators close other users' connections".to_owned(),
                ));
            }
            connection.report.close(CLOSED_BY_OPERATOR);
            Ok(http::empty(StatusCode::NO_CONTENT))
        }
        (_, [] | [_]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

/// Whether the requesting user sees `connection`: its own, or every one for administrators
/// and monitoring users.
fn visible(management: &Management, request: &ApiRequest, connection: &ConnectionInfo) -> bool {
    owned(request, connection) || auth::sees_every_vhost(management, &request.user)
}

fn owned(request: &ApiRequest, connection: &ConnectionInfo) -> bool {
    connection.report.user().as_deref() == Some(request.user.name.as_str())
}

/// `/api/channels`: the visible connections' channels, named `<connection> (<number>)`.
pub fn channels(management: &Management, request: &ApiRequest) -> Value {
    let connections = management.registry.list().into_iter();
    let visible = connections.filter(|c| visible(management, request, c));
    let listed = visible.flat_map(|connection| {
        let name = connection.name();
        let report = Arc::clone(&connection.report);
        let node = management.node.clone();
        report.channels().into_iter().map(move |number| {
            json!({
                "name": format!("{name} ({number})"),
                "number": number,
                "node": node,
                "user": report.user(),
                "vhost": report.vhost(),
                "state": "running",
                "connection_details": {
                    "name": name,
                    "peer_host": connection.origin().peer.ip().to_string(),
                    "peer_port": connection.origin().peer.port(),
                },
            })
        })
    });
    Value::Array(listed.collect())
}

/// The reason a connection closed through the API is given, RabbitMQ's.
pub const CLOSED_BY_OPERATOR: &str = "Closed via management plugin";

fn describe(management: &Management, connection: &ConnectionInfo) -> Value {
    let report = &connection.report;
    let counts = report.messages();
    let connected_at = connection
        .origin()
        .connected_at
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut described = json!({
        "name": connection.name(),
        "node": management.node,
        "type": "network",
        "protocol": connection.protocol(),
        "listener": connection.origin().listener,
        "ssl": connection.tls(),
        "host": connection.origin().local.ip().to_string(),
        "port": connection.origin().local.port(),
        "peer_host": connection.origin().peer.ip().to_string(),
        "peer_port": connection.origin().peer.port(),
        "connected_at": connected_at,
        "state": "running",
        "client_properties": client_properties(connection),
        "channels": report.channels().len(),
        "messages_published": counts.published,
        "messages_delivered": counts.delivered,
        "messages_acknowledged": counts.acknowledged,
    });
    // Known once the connection logs in; left out until then rather than null, as
    // rabbitmqadmin prints every field as text.
    if let (Some(user), Some(vhost)) = (report.user(), report.vhost()) {
        described["user"] = json!(user);
        described["vhost"] = json!(vhost);
    }
    described
}

/// The client's name for itself where RabbitMQ's tools look for it: `connection_name` (AMQP)
/// and `client_id` (MQTT), both the same reported value.
fn client_properties(connection: &ConnectionInfo) -> Value {
    match connection.report.client_id() {
        Some(id) => json!({"connection_name": &*id, "client_id": &*id}),
        None => json!({}),
    }
}

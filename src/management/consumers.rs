//! `/api/consumers[/{vhost}]`: every consumer of every queue the user may see, in RabbitMQ's
//! shape, with the connection it belongs to from the server's registry. Each queue with
//! consumers is asked for them (a round trip to its task), so a listing costs one message per
//! such queue.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::http::{self, ApiError, HttpResponse};
use super::{ApiRequest, Management};

pub async fn list(
    management: &Management,
    request: &ApiRequest,
    vhost: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let views = management.views(vhost, &request.user)?;
    let connections: HashMap<_, _> = management
        .registry
        .list()
        .into_iter()
        .filter_map(|c| c.report.connection().map(|id| (id, c)))
        .collect();
    let mut listed = Vec::new();
    for view in views {
        for (queue, consumer) in view.consumers().await {
            let connection = connections.get(&consumer.connection);
            let channel_details = connection.map_or(json!({}), |c| {
                json!({
                    "connection_name": c.name(),
                    "peer_host": c.origin().peer.ip().to_string(),
                    "peer_port": c.origin().peer.port(),
                    "user": c.report.user(),
                })
            });
            listed.push(json!({
                "consumer_tag": consumer.tag,
                "queue": {"name": queue, "vhost": view.name()},
                "channel_details": channel_details,
                "ack_required": consumer.ack_required,
                "exclusive": consumer.exclusive,
                "prefetch_count": consumer.prefetch,
                "active": true,
                "activity_status": "up",
                "arguments": {},
            }));
        }
    }
    let columns = request.query.get("columns");
    Ok(http::ok(&http::select_columns(
        Value::Array(listed),
        columns,
    )))
}

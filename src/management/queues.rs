//! `/api/queues`: list, show, declare, delete, purge and get, in RabbitMQ's shapes.
//!
//! A get takes up to `count` messages as one owner, then settles them all at once by the
//! `ackmode`: requeued (`ack_requeue_true`, `reject_requeue_true`: back in place, marked
//! redelivered, as RabbitMQ does), acknowledged (`ack_requeue_false`) or rejected
//! (`reject_requeue_false`: dead-lettered if the queue has a dead-letter exchange). Taking all
//! before requeueing any keeps a requeued message from being taken twice.

use hyper::{Method, StatusCode};
use mqbridge_broker_api::{ConsumerId, GetOk, QueueSpec, Settlement, User};
use serde_json::{Value, json};

use super::http::{self, ApiError, HttpResponse};
use super::json::{encode_payload, headers_to_json, json_to_headers, properties_to_json};
use super::rates::Subject;
use super::{ApiRequest, Management, bindings, declared};
use crate::core::inspect::QueueSnapshot;

/// Messages one get request may take: RabbitMQ's API has no limit, but every message taken is
/// held in the answer; this bounds the answer's size.
const GET_COUNT_MAX: u64 = 10_000;

pub async fn route(
    management: &Management,
    request: &ApiRequest,
    path: &[&str],
) -> Result<HttpResponse, ApiError> {
    let columns = request.query.get("columns");
    match (&request.method, path) {
        (&Method::GET, []) => list(management, &request.user, None, columns),
        (&Method::GET, [vhost]) => list(management, &request.user, Some(vhost), columns),
        (&Method::GET, [vhost, name]) => show(management, vhost, name, columns),
        (&Method::PUT, [vhost, name]) => declare(management, request, vhost, name),
        (&Method::DELETE, [vhost, name]) => delete(management, request, vhost, name).await,
        (&Method::GET, [vhost, name, "bindings"]) => {
            bindings::to_queue(management, vhost, name, columns)
        }
        (&Method::DELETE, [vhost, name, "contents"]) => {
            purge(management, request, vhost, name).await
        }
        (&Method::POST, [vhost, name, "get"]) => get(management, request, vhost, name).await,
        (_, [] | [_] | [_, _] | [_, _, "bindings" | "contents" | "get"]) => {
            Err(ApiError::MethodNotAllowed)
        }
        _ => Err(ApiError::NotFound),
    }
}

fn list(
    management: &Management,
    user: &User,
    vhost: Option<&str>,
    columns: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let queues: Vec<Value> = management
        .views(vhost, user)?
        .iter()
        .flat_map(|view| {
            view.queues()
                .into_iter()
                .map(|queue| describe(management, view.name(), &queue))
        })
        .collect();
    Ok(http::ok(&http::select_columns(
        Value::Array(queues),
        columns,
    )))
}

fn show(
    management: &Management,
    vhost: &str,
    name: &str,
    columns: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let view = management
        .core
        .vhost_view(vhost)
        .ok_or(ApiError::NotFound)?;
    let queue = view.queue(name).ok_or(ApiError::NotFound)?;
    let described = describe(management, vhost, &queue);
    Ok(http::ok(&http::select_columns(described, columns)))
}

/// A queue in RabbitMQ's field names. `messages` counts ready and unacknowledged, as there.
pub fn describe(management: &Management, vhost: &str, queue: &QueueSnapshot) -> Value {
    let counts = queue.counts;
    let ready = u64::from(counts.messages_ready);
    let unacknowledged = u64::from(counts.messages_unacknowledged);
    let subject = Subject::Queue {
        vhost: vhost.to_owned(),
        name: queue.spec.name.clone(),
    };
    let effective = queue.policy.as_ref().and_then(|name| {
        let policies = management.core.vhost_view(vhost)?.policies();
        let record = policies.into_iter().find(|p| p.name == *name)?;
        Some(record.definition)
    });
    let mut described = json!({
        "name": queue.spec.name,
        "vhost": vhost,
        "durable": queue.spec.durable,
        "auto_delete": queue.spec.auto_delete,
        "exclusive": queue.owner.is_some(),
        "arguments": headers_to_json(&queue.spec.arguments),
        "node": management.node,
        "type": "classic",
        "state": "running",
        "effective_policy_definition": effective.unwrap_or_default(),
        "messages": ready + unacknowledged,
        "messages_ready": ready,
        "messages_unacknowledged": unacknowledged,
        "consumers": counts.consumers,
        "message_stats": management.rates.message_stats(&subject, counts.events),
    });
    // Left out rather than null when there is none: rabbitmqadmin prints fields as text.
    if let Some(policy) = &queue.policy {
        described["policy"] = json!(policy);
    }
    described
}

fn declare(
    management: &Management,
    request: &ApiRequest,
    vhost: &str,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let body = http::object(&request.body)?;
    let spec = QueueSpec {
        name: name.to_owned(),
        // As RabbitMQ's API (and AMQP): not durable unless asked.
        durable: http::field_bool(&body, "durable", false)?,
        exclusive: false,
        auto_delete: http::field_bool(&body, "auto_delete", false)?,
        arguments: json_to_headers(body.get("arguments"), "arguments")?,
    };
    let (vhost, view) = management.vhost(vhost, &request.user)?;
    let existed = view.queue(name).is_some();
    vhost.declare_queue(spec, false, management.connection)?;
    Ok(declared(!existed))
}

async fn delete(
    management: &Management,
    request: &ApiRequest,
    vhost: &str,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let (vhost, view) = management.vhost(vhost, &request.user)?;
    if view.queue(name).is_none() {
        return Err(ApiError::NotFound);
    }
    let if_unused = request.query.flag("if-unused");
    let if_empty = request.query.flag("if-empty");
    vhost
        .delete_queue(name, if_unused, if_empty, management.connection)
        .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

async fn purge(
    management: &Management,
    request: &ApiRequest,
    vhost: &str,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let (vhost, _) = management.vhost(vhost, &request.user)?;
    let queue = vhost.queue(name, management.connection)?;
    queue.purge().await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// What a get request asks for.
struct GetRequest {
    count: u64,
    settlement: Settlement,
    base64_always: bool,
    truncate: Option<usize>,
}

fn parse_get(body: &[u8]) -> Result<GetRequest, ApiError> {
    let body = http::object(body)?;
    let count = http::field_u64(&body, "count")?.unwrap_or(1);
    if count > GET_COUNT_MAX {
        return Err(ApiError::bad_request(format!(
            "count must be at most {GET_COUNT_MAX}"
        )));
    }
    let settlement = match http::field_str(&body, "ackmode")?.unwrap_or("ack_requeue_true") {
        "ack_requeue_true" | "reject_requeue_true" => Settlement::Requeue,
        "ack_requeue_false" => Settlement::Ack,
        "reject_requeue_false" => Settlement::Reject,
        other => return Err(ApiError::bad_request(format!("unknown ackmode {other}"))),
    };
    let base64_always = match http::field_str(&body, "encoding")?.unwrap_or("auto") {
        "auto" => false,
        "base64" => true,
        other => return Err(ApiError::bad_request(format!("unknown encoding {other}"))),
    };
    let truncate =
        http::field_u64(&body, "truncate")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    Ok(GetRequest {
        count,
        settlement,
        base64_always,
        truncate,
    })
}

async fn get(
    management: &Management,
    request: &ApiRequest,
    vhost: &str,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let asked = parse_get(&request.body)?;
    let (vhost, _) = management.vhost(vhost, &request.user)?;
    let queue = vhost.queue(name, management.connection)?;
    let owner = ConsumerId::next();
    let mut taken: Vec<GetOk> = Vec::new();
    for _ in 0..asked.count {
        match queue.get(owner, false).await {
            Ok(Some(got)) => taken.push(got),
            Ok(None) => break,
            Err(error) if taken.is_empty() => return Err(error.into()),
            // The queue went away mid-way: answer what was taken (nothing left to settle).
            Err(_) => break,
        }
    }
    let tags = taken.iter().map(|got| got.delivery.tag).collect();
    queue.settle(owner, tags, asked.settlement).await;
    let answer: Vec<Value> = taken.iter().map(|got| describe_get(got, &asked)).collect();
    Ok(http::ok(&Value::Array(answer)))
}

fn describe_get(got: &GetOk, asked: &GetRequest) -> Value {
    let message = &got.delivery.message;
    let body = &message.body;
    let shown = match asked.truncate {
        Some(limit) if limit < body.len() => body.get(..limit).unwrap_or(body),
        _ => body,
    };
    let (payload, encoding) = encode_payload(shown, asked.base64_always);
    json!({
        "payload": payload,
        "payload_bytes": body.len(),
        "payload_encoding": encoding,
        "redelivered": got.delivery.redelivered,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "message_count": got.message_count,
        "properties": properties_to_json(&message.properties),
    })
}

//! `/api/exchanges`: list, show, declare, delete, and publish, in RabbitMQ's shapes. The
//! default exchange is listed with the name `""` and addressed in paths as `amq.default`.
//!
//! A publish routes like any protocol's (`VirtualHost::route`) and answers `{"routed": bool}`
//! once every queue has the message in its inbox; it does not wait for the journal, as
//! RabbitMQ's API publish is not confirmed either.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use mqbridge_broker_api::{ExchangeKind, ExchangeSpec, Message, User};
use serde_json::{Value, json};

use super::http::{self, ApiError, HttpResponse};
use super::json::{decode_payload, headers_to_json, json_to_headers, json_to_properties};
use super::{ApiRequest, Management, bindings, declared};

/// How paths name the default exchange, whose real name is empty.
pub const DEFAULT_EXCHANGE_PATH: &str = "amq.default";

/// The exchange a path segment names.
pub fn exchange_name(segment: &str) -> &str {
    match segment {
        DEFAULT_EXCHANGE_PATH => "",
        name => name,
    }
}

pub async fn route(
    management: &Management,
    request: &ApiRequest,
    path: &[&str],
) -> Result<HttpResponse, ApiError> {
    let columns = request.query.get("columns");
    match (&request.method, path) {
        (&Method::GET, []) => list(management, &request.user, None, columns),
        (&Method::GET, [vhost]) => list(management, &request.user, Some(vhost), columns),
        (&Method::GET, [vhost, name]) => {
            let view = management
                .core
                .vhost_view(vhost)
                .ok_or(ApiError::NotFound)?;
            let spec = view
                .exchange(exchange_name(name))
                .ok_or(ApiError::NotFound)?;
            Ok(http::ok(&http::select_columns(
                describe(vhost, &spec),
                columns,
            )))
        }
        (&Method::PUT, [vhost, name]) => declare(management, request, vhost, exchange_name(name)),
        (&Method::DELETE, [vhost, name]) => delete(management, request, vhost, exchange_name(name)),
        (&Method::POST, [vhost, name, "publish"]) => {
            publish(management, request, vhost, exchange_name(name)).await
        }
        (&Method::GET, [vhost, name, "bindings", side @ ("source" | "destination")]) => {
            bindings::of_exchange(management, vhost, exchange_name(name), side, columns)
        }
        (_, [] | [_] | [_, _] | [_, _, "publish"] | [_, _, "bindings", _]) => {
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
    let exchanges: Vec<Value> = management
        .views(vhost, user)?
        .iter()
        .flat_map(|view| {
            view.exchanges()
                .into_iter()
                .map(|spec| describe(view.name(), &spec))
        })
        .collect();
    Ok(http::ok(&http::select_columns(
        Value::Array(exchanges),
        columns,
    )))
}

fn describe(vhost: &str, spec: &ExchangeSpec) -> Value {
    json!({
        "name": spec.name,
        "vhost": vhost,
        "type": spec.kind.as_str(),
        "durable": spec.durable,
        "auto_delete": spec.auto_delete,
        "internal": spec.internal,
        "arguments": headers_to_json(&spec.arguments),
    })
}

fn declare(
    management: &Management,
    request: &ApiRequest,
    vhost: &str,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let body = http::object(&request.body)?;
    // RabbitMQ's defaults for what the body leaves out: a direct exchange, not durable.
    let kind = http::field_str(&body, "type")?.unwrap_or("direct");
    let kind = ExchangeKind::parse(kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid exchange type '{kind}': direct, fanout, topic or headers"
        ))
    })?;
    let spec = ExchangeSpec {
        name: name.to_owned(),
        kind,
        durable: http::field_bool(&body, "durable", false)?,
        auto_delete: http::field_bool(&body, "auto_delete", false)?,
        internal: http::field_bool(&body, "internal", false)?,
        arguments: json_to_headers(body.get("arguments"), "arguments")?,
    };
    let (vhost, view) = management.vhost(vhost, &request.user)?;
    let existed = view.exchange(name).is_some();
    vhost.declare_exchange(spec, false)?;
    Ok(declared(!existed))
}

fn delete(
    management: &Management,
    request: &ApiRequest,
    vhost: &str,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let (vhost, view) = management.vhost(vhost, &request.user)?;
    if view.exchange(name).is_none() {
        return Err(ApiError::NotFound);
    }
    vhost.delete_exchange(name, request.query.flag("if-unused"))?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

async fn publish(
    management: &Management,
    request: &ApiRequest,
    vhost: &str,
    exchange: &str,
) -> Result<HttpResponse, ApiError> {
    let body = http::object(&request.body)?;
    let routing_key = http::field_str(&body, "routing_key")?
        .ok_or_else(|| ApiError::bad_request("routing_key is required"))?;
    let payload = http::field_str(&body, "payload")?
        .ok_or_else(|| ApiError::bad_request("payload is required"))?;
    let encoding = http::field_str(&body, "payload_encoding")?.unwrap_or("string");
    let message = Arc::new(Message {
        exchange: exchange.to_owned(),
        routing_key: routing_key.to_owned(),
        properties: json_to_properties(body.get("properties"))?,
        body: decode_payload(payload, encoding)?.into(),
        body_md5: Default::default(),
    });
    let (vhost, _) = management.vhost(vhost, &request.user)?;
    let mut queues = Vec::new();
    vhost.route(
        exchange,
        routing_key,
        &message.properties.headers,
        &mut queues,
    )?;
    for queue in &queues {
        queue.publish(Arc::clone(&message), None).await;
    }
    Ok(http::ok(&json!({ "routed": !queues.is_empty() })))
}

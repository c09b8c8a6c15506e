//! `/api/bindings` and the binding lists under queues and exchanges, in RabbitMQ's shapes.
//!
//! As in RabbitMQ, every queue is listed as bound to the default exchange (`""`) with its own
//! name as the key (the core routes the default exchange without bindings, so these are
//! synthesised), and a binding is named in paths by its `properties_key`: the routing key (or
//! `~` when empty) when it has no arguments, else the key, `~` and a digest of the arguments.

use hyper::header::{HeaderValue, LOCATION};
use hyper::{Method, StatusCode};
use mqbridge_broker_api::{BindingSpec, Destination, Headers, User};
use serde_json::{Value, json};

use super::exchanges::exchange_name;
use super::http::{self, ApiError, HttpResponse};
use super::json::{headers_to_json, json_to_headers};
use super::{ApiRequest, Management};
use crate::core::inspect::VHostView;

pub fn route(
    management: &Management,
    request: &ApiRequest,
    path: &[&str],
) -> Result<HttpResponse, ApiError> {
    let columns = request.query.get("columns");
    let listing = |bindings: Vec<Value>| {
        Ok(http::ok(&http::select_columns(
            Value::Array(bindings),
            columns,
        )))
    };
    match (&request.method, path) {
        (&Method::GET, []) => listing(all(management, &request.user, None)?),
        (&Method::GET, [vhost]) => listing(all(management, &request.user, Some(vhost))?),
        (method, [vhost, "e", source, kind, destination, rest @ ..]) if rest.len() <= 1 => {
            let destination = match *kind {
                "q" => Destination::Queue((*destination).to_owned()),
                "e" => Destination::Exchange(exchange_name(destination).to_owned()),
                _ => return Err(ApiError::NotFound),
            };
            let pair = Pair {
                vhost,
                source: exchange_name(source),
                destination,
            };
            match (method, rest) {
                (&Method::GET, []) => listing(between(management, &pair)?),
                (&Method::POST, []) => create(management, request, &pair),
                (&Method::GET, [key]) => {
                    let found = between(management, &pair)?
                        .into_iter()
                        .find(|b| b["properties_key"] == *key)
                        .ok_or(ApiError::NotFound)?;
                    Ok(http::ok(&http::select_columns(found, columns)))
                }
                (&Method::DELETE, [key]) => delete(management, request, &pair, key),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        (_, [] | [_]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

/// A binding's two ends, as a path names them.
struct Pair<'a> {
    vhost: &'a str,
    source: &'a str,
    destination: Destination,
}

/// RabbitMQ's name for a binding within its source and destination.
pub fn properties_key(routing_key: &str, arguments: &Headers) -> String {
    if arguments.is_empty() {
        return match routing_key {
            "" => "~".to_owned(),
            key => key.to_owned(),
        };
    }
    // FNV-1a over the arguments' JSON: stable, and short enough for a path.
    let text = headers_to_json(arguments).to_string();
    let digest = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{routing_key}~{digest:016x}")
}

fn describe(vhost: &str, binding: &BindingSpec) -> Value {
    let (destination, destination_type) = match &binding.destination {
        Destination::Queue(name) => (name, "queue"),
        Destination::Exchange(name) => (name, "exchange"),
    };
    json!({
        "source": binding.source,
        "vhost": vhost,
        "destination": destination,
        "destination_type": destination_type,
        "routing_key": binding.routing_key,
        "arguments": headers_to_json(&binding.arguments),
        "properties_key": properties_key(&binding.routing_key, &binding.arguments),
    })
}

/// Every binding of a vhost: the default exchange's first, then the declared ones.
fn bindings_of(view: &VHostView) -> Vec<BindingSpec> {
    let implied = view.queues().into_iter().map(|queue| BindingSpec {
        source: String::new(),
        routing_key: queue.spec.name.clone(),
        destination: Destination::Queue(queue.spec.name),
        arguments: Headers::new(),
    });
    implied.chain(view.bindings()).collect()
}

fn all(management: &Management, user: &User, vhost: Option<&str>) -> Result<Vec<Value>, ApiError> {
    Ok(management
        .views(vhost, user)?
        .iter()
        .flat_map(|view| {
            bindings_of(view)
                .iter()
                .map(|b| describe(view.name(), b))
                .collect::<Vec<_>>()
        })
        .collect())
}

fn matching(
    management: &Management,
    vhost: &str,
    keep: impl Fn(&BindingSpec) -> bool,
) -> Result<Vec<Value>, ApiError> {
    let view = management
        .core
        .vhost_view(vhost)
        .ok_or(ApiError::NotFound)?;
    Ok(bindings_of(&view)
        .iter()
        .filter(|b| keep(b))
        .map(|b| describe(vhost, b))
        .collect())
}

fn between(management: &Management, pair: &Pair<'_>) -> Result<Vec<Value>, ApiError> {
    matching(management, pair.vhost, |b| {
        b.source == pair.source && b.destination == pair.destination
    })
}

/// `/api/queues/{vhost}/{name}/bindings`.
pub fn to_queue(
    management: &Management,
    vhost: &str,
    name: &str,
    columns: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let view = management
        .core
        .vhost_view(vhost)
        .ok_or(ApiError::NotFound)?;
    view.queue(name).ok_or(ApiError::NotFound)?;
    let destination = Destination::Queue(name.to_owned());
    let listed = matching(management, vhost, |b| b.destination == destination)?;
    Ok(http::ok(&http::select_columns(
        Value::Array(listed),
        columns,
    )))
}

/// `/api/exchanges/{vhost}/{name}/bindings/source` and `.../destination`.
pub fn of_exchange(
    management: &Management,
    vhost: &str,
    name: &str,
    side: &str,
    columns: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let view = management
        .core
        .vhost_view(vhost)
        .ok_or(ApiError::NotFound)?;
    view.exchange(name).ok_or(ApiError::NotFound)?;
    let destination = Destination::Exchange(name.to_owned());
    let listed = matching(management, vhost, |b| match side {
        "source" => b.source == name,
        _ => b.destination == destination,
    })?;
    Ok(http::ok(&http::select_columns(
        Value::Array(listed),
        columns,
    )))
}

fn create(
    management: &Management,
    request: &ApiRequest,
    pair: &Pair<'_>,
) -> Result<HttpResponse, ApiError> {
    let body = http::object(&request.body)?;
    let routing_key = http::field_str(&body, "routing_key")?.unwrap_or("");
    let binding = BindingSpec {
        source: pair.source.to_owned(),
        destination: pair.destination.clone(),
        routing_key: routing_key.to_owned(),
        arguments: json_to_headers(body.get("arguments"), "arguments")?,
    };
    let key = properties_key(&binding.routing_key, &binding.arguments);
    let (vhost, _) = management.vhost(pair.vhost, &request.user)?;
    vhost.bind(binding, management.connection)?;
    let mut response = http::empty(StatusCode::CREATED);
    // RabbitMQ answers with the new binding's path relative to the one posted to:
    // `{destination}/{properties_key}`, each segment percent-encoded.
    let destination = match &pair.destination {
        Destination::Queue(name) | Destination::Exchange(name) => name,
    };
    let encode = |text: &str| {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let location = format!("{}/{}", encode(destination), encode(&key));
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

fn delete(
    management: &Management,
    request: &ApiRequest,
    pair: &Pair<'_>,
    key: &str,
) -> Result<HttpResponse, ApiError> {
    let view = management
        .core
        .vhost_view(pair.vhost)
        .ok_or(ApiError::NotFound)?;
    let binding = view
        .bindings()
        .into_iter()
        .find(|b| {
            b.source == pair.source
                && b.destination == pair.destination
                && properties_key(&b.routing_key, &b.arguments) == key
        })
        .ok_or(ApiError::NotFound)?;
    let (vhost, _) = management.vhost(pair.vhost, &request.user)?;
    vhost.unbind(binding, management.connection)?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqbridge_broker_api::HeaderValue as Value;

    #[test]
    fn properties_keys_follow_rabbitmq() {
        assert_eq!(properties_key("", &Headers::new()), "~");
        assert_eq!(properties_key("a.b", &Headers::new()), "a.b");
        let mut arguments = Headers::new();
        arguments.insert("x-match", Value::String("all".into()));
        let key = properties_key("a.b", &arguments);
        assert!(key.starts_with("a.b~") && key.len() == "a.b~".len() + 16);
        assert_eq!(key, properties_key("a.b", &arguments), "stable");
    }
}

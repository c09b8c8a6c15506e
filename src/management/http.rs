//! HTTP plumbing of the management API: paths split into percent-decoded segments, query
//! parameters, bounded JSON bodies, and answers (JSON, empty, or RabbitMQ's error object).
//!
//! Errors are RabbitMQ's shape, `{"error": "...", "reason": "..."}`, with its statuses: 401
//! with `WWW-Authenticate` for credentials, 404 for a missing object or vhost, 400 for a body
//! or an inequivalent declaration, and, as RabbitMQ answers an AMQP access refusal (`amq.`
//! names, built-in exchanges), 401 `not_authorised` without a challenge.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Response, StatusCode};
use mqbridge_broker_api::BrokerError;
use serde_json::{Map, Value, json};

/// A response with its body in memory.
pub type HttpResponse = Response<Full<Bytes>>;

/// Bounds a request body before it is buffered. A publish through the API carries the
/// payload in the body (base64 grows it by a third); 16 MiB matches the protocols' frame
/// limits.
pub const BODY_SIZE_MAX: usize = 16 * 1024 * 1024;

/// What RabbitMQ's management plugin names its realm; tools print it.
const REALM: &str = "Basic realm=\"RabbitMQ Management\"";

/// A refused request, in RabbitMQ's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("not authorised: {0}")]
    NotAuthorized(String),
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("access refused: {0}")]
    AccessRefused(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn bad_request(reason: impl Into<String>) -> Self {
        ApiError::BadRequest(reason.into())
    }

    pub fn response(&self) -> HttpResponse {
        let (status, error, reason) = match self {
            ApiError::NotAuthorized(reason) => {
                (StatusCode::UNAUTHORIZED, "not_authorized", reason.as_str())
            }
            ApiError::NotFound => (StatusCode::NOT_FOUND, "Object Not Found", "Not Found"),
            ApiError::BadRequest(reason) => {
                (StatusCode::BAD_REQUEST, "bad_request", reason.as_str())
            }
            ApiError::AccessRefused(reason) => {
                (StatusCode::UNAUTHORIZED, "not_authorised", reason.as_str())
            }
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this path",
            ),
            ApiError::Unavailable(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                reason.as_str(),
            ),
        };
        let mut response = json(status, &json!({ "error": error, "reason": reason }));
        if matches!(self, ApiError::NotAuthorized(_)) {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
        }
        response
    }
}

/// Core errors by meaning; the text goes to the client as RabbitMQ's reply texts do.
impl From<BrokerError> for ApiError {
    fn from(error: BrokerError) -> Self {
        match error {
            BrokerError::NotFound(_) => ApiError::NotFound,
            BrokerError::AccessRefused(reason) => ApiError::AccessRefused(reason),
            BrokerError::Unavailable(reason) => ApiError::Unavailable(reason),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

pub fn json(status: StatusCode, value: &Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub fn ok(value: &Value) -> HttpResponse {
    json(StatusCode::OK, value)
}

pub fn empty(status: StatusCode) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

pub fn text(content_type: &'static str, body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The path's segments, each percent-decoded after splitting, so that `%2F` is a `/` inside
/// a segment (the default vhost `/` is `%2F`). Empty segments are dropped.
pub fn segments(path: &str) -> Result<Vec<String>, ApiError> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map(|decoded| decoded.into_owned())
                .map_err(|_| ApiError::bad_request("a path segment is not UTF-8"))
        })
        .collect()
}

/// Query parameters, decoded.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A flag such as `if-empty=true`.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }
}

/// Reads the body, refusing more than [`BODY_SIZE_MAX`] before buffering it.
pub async fn read_body(headers: &HeaderMap, body: Incoming) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::bad_request(format!("body larger than {BODY_SIZE_MAX} bytes"));
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_SIZE_MAX as u64) {
        return Err(too_large());
    }
    match Limited::new(body, BODY_SIZE_MAX).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(ApiError::bad_request("the body could not be read")),
    }
}

/// The body as a JSON object; an empty body is an empty object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(error) => Err(ApiError::bad_request(format!("invalid JSON: {error}"))),
    }
}

/// A boolean field. Also `"true"`/`"false"`, which rabbitmqadmin sends.
pub fn field_bool(body: &Map<String, Value>, name: &str, default: bool) -> Result<bool, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(Value::String(text)) if text == "true" => Ok(true),
        Some(Value::String(text)) if text == "false" => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name} must be true or false, not {other}"
        ))),
    }
}

/// A non-negative integer field. Also its decimal text, which rabbitmqadmin sends.
pub fn field_u64(body: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    let bad = || ApiError::bad_request(format!("{name} must be a non-negative integer"));
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
        Some(Value::String(text)) => text.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

pub fn field_str<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
    }
}

/// Keeps only the `columns` (comma-separated; dotted names reach into objects) of each object
/// of a listing, as RabbitMQ's `columns` query parameter does.
pub fn select_columns(value: Value, columns: Option<&str>) -> Value {
    let Some(columns) = columns.filter(|c| !c.is_empty()) else {
        return value;
    };
    let pick = |item: Value| {
        let mut picked = Map::new();
        for column in columns.split(',') {
            let mut path = column.split('.');
            let first = path.next().unwrap_or_default();
            let Some(mut found) = item.get(first) else {
                continue;
            };
            let mut kept = vec![first];
            for step in path {
                match found.get(step) {
                    Some(inner) => {
                        found = inner;
                        kept.push(step);
                    }
                    None => break,
                }
            }
            insert_path(&mut picked, &kept, found.clone());
        }
        Value::Object(picked)
    };
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(pick).collect()),
        single => pick(single),
    }
}

fn insert_path(object: &mut Map<String, Value>, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            object.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let inner = object
                .entry((*first).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                insert_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_decoded_after_splitting() {
        let path = "/api/queues/%2F/a%2Fb";
        assert_eq!(
            segments(path).expect("valid"),
            ["api", "queues", "/", "a/b"]
        );
        assert!(segments("/api/queues/%FF").is_err());
    }

    #[test]
    fn columns_keep_only_what_was_asked() {
        let listing = json!([{"name": "q", "messages": 3, "durable": true,
                              "message_stats": {"publish": 5, "ack": 1}}]);
        let picked = select_columns(listing, Some("name,message_stats.publish,missing"));
        assert_eq!(
            picked,
            json!([{"name": "q", "message_stats": {"publish": 5}}])
        );
    }

    #[test]
    fn rabbitmqadmin_strings_read_as_booleans_and_numbers() {
        let body = object(br#"{"durable": "false", "count": "3"}"#).expect("object");
        assert!(!field_bool(&body, "durable", true).expect("bool"));
        assert!(field_bool(&body, "auto_delete", true).expect("default"));
        assert_eq!(field_u64(&body, "count").expect("number"), Some(3));
        assert!(object(b"[1]").is_err());
        assert!(object(b"").expect("empty is {}").is_empty());
    }
}

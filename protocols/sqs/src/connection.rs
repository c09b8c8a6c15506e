//! The HTTP side: one task per TCP connection (hyper's HTTP/1.1 connection driver), each request
//! parsed in the protocol it came in, run, and answered in the same protocol.
//!
//! Every response carries `x-amzn-RequestId`. Bodies are bounded before they are buffered
//! (Content-Length checked first, then the stream itself). Bad input is a 4xx answer and never
//! ends the connection or the broker.
//!
//! Authentication ([`crate::auth`]): before the body is read, the peer, the credentials' form,
//! the access key and the clock are checked; after it, the signature over the whole request.
//! In dev mode (no keys) only the peer is checked: loopback, or AccessDenied.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use mqbridge_broker_api::{ConnectionReport, MessageCounts};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::auth::Caller;
use crate::error::{ErrorKind, SqsError};
use crate::neighbor::{Claim, Neighbor, NeighborRequest, signed_service};
use crate::protocol::{self, Protocol, Request};
use crate::render;
use crate::service::{Context, SqsService, new_uuid, now_ms};
use crate::sigv4;

/// The host used in queue URLs when a request has no `Host` header (HTTP/1.0).
const HOST_DEFAULT: &str = "localhost:9324";

/// Serves one connection until the peer closes it or the broker shuts down (then in-flight
/// requests finish, long polls return early, and the connection closes).
/// Requests that `neighbor` claims are its to answer.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    service: Arc<SqsService>,
    neighbor: Option<Arc<dyn Neighbor>>,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_reporting(stream, peer, service, neighbor, None, shutdown).await;
}

/// [`serve`], counting the messages each request sends, receives and deletes in `report`
/// (the broker's per-protocol totals).
pub async fn serve_reporting<S>(
    stream: S,
    peer: SocketAddr,
    service: Arc<SqsService>,
    neighbor: Option<Arc<dyn Neighbor>>,
    report: Option<Arc<ConnectionReport>>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Without a bound on the head, a peer trickling header bytes (slow loris) would hold its
    // connection for ever; a body, once its head is in, is bounded by `request_size_max`.
    let header_read_timeout = service.settings.header_read_timeout;
    let handler = service_fn(move |request| {
        let service = Arc::clone(&service);
        let neighbor = neighbor.clone();
        let report = report.clone();
        async move {
            let response = respond(
                &service,
                neighbor.as_deref(),
                report.as_deref(),
                peer,
                request,
            );
            Ok::<_, Infallible>(response.await)
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), handler);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "SQS connection ended");
            }
        }
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The messages a successful request sent (published), received (delivered) and deleted
/// (acknowledged).
fn moved(action: &str, result: &serde_json::Value) -> MessageCounts {
    let entries = |key: &str| {
        let list = result.get(key).and_then(serde_json::Value::as_array);
        list.map_or(0, |list| list.len() as u64)
    };
    let mut counts = MessageCounts::default();
    match action {
        "SendMessage" => counts.published = 1,
        "SendMessageBatch" => counts.published = entries("Successful"),
        "ReceiveMessage" => counts.delivered = entries("Messages"),
        "DeleteMessage" => counts.acknowledged = 1,
        "DeleteMessageBatch" => counts.acknowledged = entries("Successful"),
        _ => {}
    }
    counts
}

/// What a request came to: an SQS result, or the neighbor's whole answer.
enum Answer {
    Sqs(Request, serde_json::Value),
    Neighbor(Response<Full<Bytes>>),
}

async fn respond(
    service: &SqsService,
    neighbor: Option<&dyn Neighbor>,
    report: Option<&ConnectionReport>,
    peer: SocketAddr,
    request: hyper::Request<Incoming>,
) -> Response<Full<Bytes>> {
    let request_id = new_uuid();
    let (parts, body) = request.into_parts();
    let target = header(&parts, "x-amz-target").map(str::to_owned);
    let protocol = target.as_ref().map_or(Protocol::Query, |_| Protocol::Json);
    let host = header(&parts, HOST.as_str())
        .unwrap_or(HOST_DEFAULT)
        .to_owned();
    if let Some(answer) = neighbor.and_then(|n| {
        let query = parts.uri.query().unwrap_or("");
        n.public(
            parts.method.as_str(),
            parts.uri.path(),
            query,
            &host,
            &request_id,
        )
    }) {
        return answer.await;
    }
    let outcome = async {
        // A header value that is not visible ASCII cannot be signed the way SDKs sign; leaving
        // it out makes a signature that covers it fail, as it would on AWS.
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let signed = sigv4::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
        };
        let admission = service
            .authenticator
            .admit(peer.ip(), &signed, now_ms() / 1000)?;
        let body = read_body(service, &parts, body).await?;
        let Caller { user, sender } = admission.verify(&signed, &body)?;
        let request = NeighborRequest {
            target: target.as_deref(),
            path: signed.path,
            query: signed.query,
            body: &body,
            host: &host,
            user: &user,
            request_id: &request_id,
        };
        if let Some(neighbor) = neighbor.filter(|n| claimed(*n, &parts, &request)) {
            return Ok(Answer::Neighbor(neighbor.handle(request).await));
        }
        let mut request = match &target {
            Some(target) => protocol::parse_json(target, &body)?,
            None => protocol::parse_query(signed.path, signed.query.as_bytes(), &body)?,
        };
        let context = Context { host, user, sender };
        let result = service
            .handle(&request.action, &mut request.params, &context)
            .await?;
        if let Some(report) = report {
            report.add(moved(&request.action, &result));
        }
        Ok(Answer::Sqs(request, result))
    }
    .await;
    match outcome {
        Ok(Answer::Sqs(request, result)) => success(&request, &result, &request_id),
        Ok(Answer::Neighbor(response)) => response,
        Err(error) => failure(protocol, &error, &request_id),
    }
}

fn header<'a>(parts: &'a hyper::http::request::Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the neighbor claims an authenticated request.
fn claimed(
    neighbor: &dyn Neighbor,
    parts: &hyper::http::request::Parts,
    request: &NeighborRequest<'_>,
) -> bool {
    let authorization = header(parts, hyper::header::AUTHORIZATION.as_str());
    neighbor.claims(Claim {
        target: request.target,
        signed_for: signed_service(authorization, request.query),
        query: request.query.as_bytes(),
        body: request.body,
    })
}

/// Reads the body, refusing more than the configured bound before buffering it.
async fn read_body(
    service: &SqsService,
    parts: &hyper::http::request::Parts,
    body: Incoming,
) -> Result<Bytes, SqsError> {
    let max = service.settings.request_size_max;
    let too_large = || {
        SqsError::new(
            ErrorKind::RequestTooLarge,
            format!("The request body must be at most {max} bytes."),
        )
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX)) {
        return Err(too_large());
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(SqsError::new(
            ErrorKind::MalformedRequest,
            "The request body could not be read.",
        )),
    }
}

fn success(
    request: &Request,
    result: &serde_json::Value,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let (body, content_type) = match request.protocol {
        // Straight into bytes (`to_string` would go through `fmt` one piece at a time), into
        // a buffer of about the right size: a receive's answer holds up to ten bodies, and
        // growing a vector to that size copies it over and over.
        Protocol::Json => {
            let mut body = Vec::with_capacity(json_size_hint(result));
            if serde_json::to_writer(&mut body, result).is_err() {
                body.clear();
            }
            (body, render::JSON_CONTENT_TYPE)
        }
        Protocol::Query => (
            render::xml_result(&request.action, result, request_id),
            render::XML_CONTENT_TYPE,
        ),
    };
    response(StatusCode::OK, body, content_type, request_id)
}

/// About the size of `value` as JSON, escapes aside: its strings plus a little per item.
fn json_size_hint(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    const ITEM: usize = 8;
    match value {
        Value::String(text) => text.len() + ITEM,
        Value::Array(items) => items.iter().map(json_size_hint).sum::<usize>() + ITEM,
        Value::Object(map) => {
            let items = map.iter().map(|(k, v)| k.len() + json_size_hint(v));
            items.sum::<usize>() + ITEM
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => ITEM * 3,
    }
}

fn failure(protocol: Protocol, error: &SqsError, request_id: &str) -> Response<Full<Bytes>> {
    if error.kind == ErrorKind::InternalError {
        tracing::warn!(%error, "SQS request failed");
    } else {
        tracing::debug!(%error, "SQS request refused");
    }
    let status = StatusCode::from_u16(error.kind.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = match protocol {
        Protocol::Json => response(
            status,
            render::json_error(error),
            render::JSON_CONTENT_TYPE,
            request_id,
        ),
        Protocol::Query => response(
            status,
            render::xml_error(error, request_id),
            render::XML_CONTENT_TYPE,
            request_id,
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&render::query_error_header(error)) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-amzn-query-error"), value);
    }
    response
}

/// A response with AWS's headers: the content type and `x-amzn-RequestId`.
pub fn response(
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), value);
    }
    response
}

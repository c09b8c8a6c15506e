//! The opening handshake (RFC 6455 section 4.2), sans-IO: the bytes of an HTTP request head in,
//! the decision and the bytes of the HTTP response out.
//!
//! We parse the request ourselves (with `httparse`) rather than through tungstenite's server
//! handshake because that one drops a request that is not a WebSocket upgrade without any
//! response, and we owe every refused client an HTTP status and a body that says why: a plain
//! `curl` to the port, a wrong path or a missing subprotocol are the common mistakes.
//!
//! Checks, in the order a client meets them:
//! 1. `GET` over HTTP/1.1 (405, 505), on `/ws` or `/mqtt` (404);
//! 2. `Upgrade: websocket` and `Connection: upgrade` (426), `Sec-WebSocket-Version: 13` (426,
//!    with the version we speak), a well-formed `Sec-WebSocket-Key` (400);
//! 3. a subprotocol we carry among those offered (400): MQTT ([MQTT-6.0.0-3] the client offers
//!    `mqtt`; MQTT 3.1 clients offer `mqttv3.1`) or STOMP (`v10.stomp`, `v11.stomp`,
//!    `v12.stomp`);
//! 4. the `Origin` against the allow-list (403, RFC 6455 section 10.2). A request without an
//!    `Origin` is not from a browser and is not subject to it.

use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Bounds what an unauthenticated peer makes us buffer before the upgrade. Browsers send well
/// under 2 KiB; cookies for the page's own domain are the usual bulk.
pub const REQUEST_HEAD_MAX: usize = 16 * 1024;
/// More header lines than any browser or client library sends.
const HEADERS_MAX: usize = 64;
/// The paths clients default to: RabbitMQ's Web-MQTT/Web-STOMP use `/ws`; EMQX, NanoMQ, HiveMQ
/// and most MQTT client libraries use `/mqtt`.
pub const PATHS: [&str; 2] = ["/ws", "/mqtt"];

/// The protocol a WebSocket connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subprotocol {
    Mqtt,
    Stomp,
}

/// Subprotocol tokens in our order of preference when a client offers several.
const SUBPROTOCOLS: [(&str, Subprotocol); 5] = [
    ("mqtt", Subprotocol::Mqtt),
    ("mqttv3.1", Subprotocol::Mqtt),
    ("v12.stomp", Subprotocol::Stomp),
    ("v11.stomp", Subprotocol::Stomp),
    ("v10.stomp", Subprotocol::Stomp),
];

/// Who may open a WebSocket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Origins (`scheme://host[:port]`) allowed to connect; empty, or containing `*`, allows
    /// every origin.
    pub allowed: Vec<String>,
}

impl OriginPolicy {
    fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.allowed.is_empty()
            || self
                .allowed
                .iter()
                .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    }
}

/// A request the broker upgrades.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub subprotocol: Subprotocol,
    /// The offered token we chose; echoed back as RFC 6455 requires.
    pub token: &'static str,
    accept_key: String,
}

impl Upgrade {
    /// The `101 Switching Protocols` response.
    pub fn response(&self) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
            self.accept_key, self.token
        )
        .into_bytes()
    }
}

/// A request the broker refuses, with the HTTP status and a body saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub detail: String,
    /// One more header the status calls for (426 names what to upgrade to).
    header: Option<&'static str>,
}

impl Refusal {
    fn new(status: u16, detail: impl Into<String>) -> Refusal {
        Refusal {
            status,
            detail: detail.into(),
            header: None,
        }
    }

    fn with_header(mut self, header: &'static str) -> Refusal {
        self.header = Some(header);
        self
    }

    /// The complete HTTP response; the connection closes after it.
    pub fn response(&self) -> Vec<u8> {
        let body = format!("{}\n", self.detail);
        let header = self.header.map(|h| format!("{h}\r\n")).unwrap_or_default();
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
             Connection: close\r\n{header}\r\n{body}",
            self.status,
            reason_phrase(self.status),
            body.len(),
        )
        .into_bytes()
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// What the bytes read so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet; read more.
    Incomplete,
    /// A complete head of `length` bytes (anything after it is already WebSocket data).
    Request {
        length: usize,
        outcome: Result<Upgrade, Refusal>,
    },
}

/// Parses the request head in `buffer` and decides on it.
pub fn parse(buffer: &[u8], origins: &OriginPolicy) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => Parsed::Request {
            length,
            outcome: decide(&request, origins),
        },
        Ok(httparse::Status::Partial) if buffer.len() < REQUEST_HEAD_MAX => Parsed::Incomplete,
        Ok(httparse::Status::Partial) => Parsed::Request {
            length: buffer.len(),
            outcome: Err(Refusal::new(431, "request head too large")),
        },
        Err(error) => Parsed::Request {
            length: buffer.len(),
            outcome: Err(Refusal::new(
                400,
                format!("malformed HTTP request: {error}"),
            )),
        },
    }
}

fn decide(request: &httparse::Request, origins: &OriginPolicy) -> Result<Upgrade, Refusal> {
    if request.method != Some("GET") {
        return Err(Refusal::new(405, "a WebSocket upgrade is a GET request"));
    }
    if request.version != Some(1) {
        return Err(Refusal::new(505, "a WebSocket upgrade needs HTTP/1.1"));
    }
    let path = request.path.unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    if !PATHS.contains(&path) {
        return Err(Refusal::new(
            404,
            format!("no WebSocket endpoint at {path}; use /ws or /mqtt"),
        ));
    }
    let headers = Headers(request.headers);
    if !headers.has_token("upgrade", "websocket") || !headers.has_token("connection", "upgrade") {
        return Err(Refusal::new(
            426,
            "this port speaks WebSocket only (MQTT or STOMP): send Upgrade: websocket",
        )
        .with_header("Upgrade: websocket"));
    }
    if headers.value("sec-websocket-version") != Some("13") {
        return Err(
            Refusal::new(426, "only WebSocket version 13 (RFC 6455) is supported")
                .with_header("Sec-WebSocket-Version: 13"),
        );
    }
    let key = headers.value("sec-websocket-key").unwrap_or_default();
    if !valid_key(key) {
        return Err(Refusal::new(400, "missing or malformed Sec-WebSocket-Key"));
    }
    let (token, subprotocol) = choose_subprotocol(&headers)?;
    if let Some(origin) = headers.value("origin")
        && !origins.allows(origin)
    {
        return Err(Refusal::new(403, format!("origin {origin} is not allowed")));
    }
    Ok(Upgrade {
        subprotocol,
        token,
        accept_key: derive_accept_key(key.as_bytes()),
    })
}

fn choose_subprotocol(headers: &Headers) -> Result<(&'static str, Subprotocol), Refusal> {
    let offered: Vec<&str> = headers.tokens("sec-websocket-protocol").collect();
    if offered.is_empty() {
        return Err(Refusal::new(
            400,
            "no WebSocket subprotocol offered: offer mqtt, mqttv3.1, v10.stomp, v11.stomp \
             or v12.stomp",
        ));
    }
    SUBPROTOCOLS
        .iter()
        .find(|(token, _)| offered.iter().any(|o| o.eq_ignore_ascii_case(token)))
        .copied()
        .ok_or_else(|| {
            Refusal::new(
                400,
                format!(
                    "unsupported WebSocket subprotocol {}: offer mqtt, mqttv3.1, v10.stomp, \
                     v11.stomp or v12.stomp",
                    offered.join(", ")
                ),
            )
        })
}

/// RFC 6455 section 4.1: the key is 16 random bytes, base64-encoded (24 characters, `==`).
fn valid_key(key: &str) -> bool {
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    key.len() == 24
        && key.ends_with("==")
        && key.bytes().take(22).all(|byte| BASE64.contains(&byte))
}

/// Case-insensitive header lookup over a parsed request.
struct Headers<'h, 'b>(&'h [httparse::Header<'b>]);

impl Headers<'_, '_> {
    fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .and_then(|header| std::str::from_utf8(header.value).ok())
            .map(str::trim)
    }

    /// The comma-separated tokens of every header called `name` (a list may be split over
    /// several header lines).
    fn tokens(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |header| header.name.eq_ignore_ascii_case(name))
            .filter_map(|header| std::str::from_utf8(header.value).ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|token| !token.is_empty())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }
}

#[cfg(test)]
mod tests;

//! STOMP 1.0, 1.1 and 1.2 framing: octets in, [`Frame`]s out, and back. Sans-IO: nothing here
//! reads a socket or awaits; the [`Decoder`] keeps only where it stopped scanning a partial
//! frame, so a frame split over many reads is scanned once, and many frames in one read come
//! out one call each.
//!
//! This module owns frame boundaries, the size limits, header escaping per version and
//! `content-length`. It does not own which frame may come when, which headers a command needs
//! or what they mean: that is the session's and the connection's. Decoding accepts the
//! commands of both directions, so that tests and clients can use it too.
//!
//! # Grammar (STOMP 1.2, "Augmented BNF"; 1.0 and 1.1 are the same shape)
//!
//! ```text
//! frame   = command EOL *( header EOL ) EOL *OCTET NULL *( EOL )
//! EOL     = [CR] LF
//! header  = name ":" value          (split at the first ":"; repeated names: the first wins)
//! heart-beat between frames = EOL
//! ```
//!
//! The body is `content-length` octets followed by a NUL when that header is present (so it
//! may contain NULs), else everything up to the first NUL.
//!
//! # Why our own codec, not `stomp-parser`
//!
//! `stomp-parser` (0.8) parses one complete frame from a `Vec<u8>`: someone else must find the
//! frame's end, which is most of the work with `content-length` bodies and split reads. It
//! applies STOMP 1.2's escapes to every version (1.0 has none, 1.1 has no `\r`), bounds
//! nothing before it allocates, and copies every body. This codec finds frame ends
//! incrementally, checks sizes against the limit before buffering, escapes per version, and
//! hands bodies out as zero-copy slices of the read buffer.
//!
//! # Deviations, on purpose
//!
//! - A CR before LF is accepted in every version (1.0 only names LF); it is never part of a
//!   header.
//! - STOMP 1.0 has no escaping. When we encode for 1.0, a CR or LF inside a header value, and
//!   a `:` inside a header name, would break the frame, so they become spaces and `_`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod escape;
#[cfg(test)]
mod tests;

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The most headers a frame may carry. Generous for real clients (a few dozen at most), small
/// enough that a frame of empty headers cannot make us build a huge table.
pub const HEADER_COUNT_MAX: usize = 1024;
/// The most octets a command line and its headers may take: bounds the scan for the blank
/// line and the header table, whatever the frame size limit.
pub const HEADER_BYTES_MAX: usize = 64 * 1024;

/// A protocol version, as negotiated by `accept-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V1_0,
    V1_1,
    V1_2,
}

impl Version {
    /// Every version we speak, oldest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    pub fn parse(text: &str) -> Option<Version> {
        match text.trim() {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }
}

/// A frame's command: the client's, then the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Connect,
    Stomp,
    Send,
    Subscribe,
    Unsubscribe,
    Begin,
    Commit,
    Abort,
    Ack,
    Nack,
    Disconnect,
    Connected,
    Message,
    Receipt,
    Error,
}

impl Command {
    pub fn parse(text: &[u8]) -> Option<Command> {
        Some(match text {
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"SEND" => Command::Send,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"DISCONNECT" => Command::Disconnect,
            b"CONNECTED" => Command::Connected,
            b"MESSAGE" => Command::Message,
            b"RECEIPT" => Command::Receipt,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// "The CONNECT and CONNECTED frames do not escape the carriage return, line feed or colon
    /// octets in order to remain backward compatible with STOMP 1.0" (STOMP 1.2, Value
    /// Encoding). STOMP shares their rule.
    fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }

    /// Frames that carry a body, and so always get `content-length` when we send them.
    fn has_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One frame. Headers keep their order and repetitions; [`Frame::header`] returns the first,
/// as STOMP 1.2 asks ("only the first header entry SHOULD be used").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: Command,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Frame {
    pub fn new(command: Command) -> Frame {
        Frame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header (builder style).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Frame {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Frame {
        self.body = body.into();
        self
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why octets are not a frame. Every variant ends the connection with an ERROR frame whose
/// `message` header is [`DecodeError::summary`] and whose body is the `Display` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error(
        "the frame is larger than {limit} octets, or its NUL terminator is missing \
         (frames are limited to {limit} octets)"
    )]
    FrameTooLarge { limit: usize },
    #[error("the command line and headers exceed {HEADER_BYTES_MAX} octets")]
    HeadersTooLarge,
    #[error("more than {HEADER_COUNT_MAX} headers")]
    TooManyHeaders,
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
    #[error("header line '{0}' has no ':'")]
    HeaderWithoutColon(String),
    #[error("undefined escape sequence '\\{0}' in a header (STOMP {1})")]
    BadEscape(char, &'static str),
    #[error("headers must be UTF-8")]
    NotUtf8,
    #[error("content-length '{0}' is not a number of octets")]
    BadContentLength(String),
    #[error("content-length {0} disagrees with the body: octet {0} after the headers is not NUL")]
    ContentLengthMismatch(usize),
}

impl DecodeError {
    /// The short text for the ERROR frame's `message` header.
    pub fn summary(&self) -> &'static str {
        match self {
            DecodeError::FrameTooLarge { .. } => "frame too large",
            DecodeError::HeadersTooLarge | DecodeError::TooManyHeaders => "headers too large",
            DecodeError::UnknownCommand(_) => "unknown command",
            DecodeError::HeaderWithoutColon(_) => "malformed header",
            DecodeError::BadEscape(..) => "bad escape sequence",
            DecodeError::NotUtf8 => "malformed header",
            DecodeError::BadContentLength(_) | DecodeError::ContentLengthMismatch(_) => {
                "bad content-length"
            }
        }
    }
}

/// A frame whose headers are parsed but whose body has not fully arrived.
#[derive(Debug)]
struct Pending {
    command: Command,
    headers: Vec<(String, String)>,
    /// Offset of the body in the buffer.
    body_start: usize,
    content_length: Option<usize>,
}

/// Turns a byte stream into frames. Owned by the connection, fed its read buffer.
#[derive(Debug)]
pub struct Decoder {
    version: Version,
    frame_size_max: usize,
    /// How far the buffer was searched without finding the end of the headers or the NUL.
    scanned: usize,
    pending: Option<Pending>,
}

impl Decoder {
    /// A decoder for a new connection: no escaping until a version is negotiated (CONNECT has
    /// none anyway), frames limited to `frame_size_max` octets.
    pub fn new(frame_size_max: usize) -> Decoder {
        Decoder {
            version: Version::V1_0,
            frame_size_max,
            scanned: 0,
            pending: None,
        }
    }

    /// Applies the negotiated version and the limit for a logged-in client.
    pub fn configure(&mut self, version: Version, frame_size_max: usize) {
        self.version = version;
        self.frame_size_max = frame_size_max;
    }

    /// The next frame in `buf`, removing its octets (and the heart-beat EOLs before it).
    /// `Ok(None)`: more octets are needed; what was read stays in `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if self.pending.is_none() {
            skip_heart_beats(buf);
            if buf.is_empty() {
                return Ok(None);
            }
            match self.parse_headers(buf)? {
                Some(pending) => self.pending = Some(pending),
                None => return Ok(None),
            }
        }
        let Some((body_start, content_length)) = self
            .pending
            .as_ref()
            .map(|p| (p.body_start, p.content_length))
        else {
            return Ok(None);
        };
        let Some(body_end) = self.find_body_end(body_start, content_length, buf)? else {
            return Ok(None);
        };
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        self.scanned = 0;
        let octets = buf.split_to(body_end + 1).freeze();
        Ok(Some(Frame {
            command: pending.command,
            headers: pending.headers,
            body: octets.slice(pending.body_start..body_end),
        }))
    }

    /// Finds the blank line ending the headers and parses what is before it.
    fn parse_headers(&mut self, buf: &BytesMut) -> Result<Option<Pending>, DecodeError> {
        let limit = HEADER_BYTES_MAX.min(self.frame_size_max);
        // Resume a little before where the last search stopped: the blank line may straddle it.
        let from = self.scanned.saturating_sub(2);
        let Some(body_start) = blank_line_end(buf, from) else {
            if buf.len() > limit {
                return Err(if limit < HEADER_BYTES_MAX {
                    DecodeError::FrameTooLarge {
                        limit: self.frame_size_max,
                    }
                } else {
                    DecodeError::HeadersTooLarge
                });
            }
            self.scanned = buf.len();
            return Ok(None);
        };
        if body_start > limit + 2 {
            return Err(DecodeError::HeadersTooLarge);
        }
        self.scanned = body_start;
        let block = buf.get(..body_start).unwrap_or_default();
        let (command, headers) = parse_block(block, self.version)?;
        let content_length = match headers.iter().find(|(n, _)| n == "content-length") {
            None => None,
            Some((_, value)) => Some(parse_content_length(value)?),
        };
        if let Some(length) = content_length {
            // Checked before a single body octet is buffered.
            if body_start.saturating_add(length) >= self.frame_size_max {
                return Err(DecodeError::FrameTooLarge {
                    limit: self.frame_size_max,
                });
            }
        }
        Ok(Some(Pending {
            command,
            headers,
            body_start,
            content_length,
        }))
    }

    /// The offset of the frame's NUL, once it has arrived.
    fn find_body_end(
        &mut self,
        body_start: usize,
        content_length: Option<usize>,
        buf: &mut BytesMut,
    ) -> Result<Option<usize>, DecodeError> {
        if let Some(length) = content_length {
            let end = body_start + length;
            return match buf.get(end) {
                Some(0) => Ok(Some(end)),
                Some(_) => Err(DecodeError::ContentLengthMismatch(length)),
                None => {
                    // The size was checked against the limit: make room for the whole body now
                    // rather than growing the buffer read by read.
                    buf.reserve(end + 1 - buf.len());
                    Ok(None)
                }
            };
        }
        let from = self.scanned.max(body_start);
        let found = buf
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == 0));
        match found {
            Some(offset) => Ok(Some(from + offset)),
            None if buf.len() >= self.frame_size_max => Err(DecodeError::FrameTooLarge {
                limit: self.frame_size_max,
            }),
            None => {
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }
}

/// Removes the EOLs clients send between frames as heart-beats.
fn skip_heart_beats(buf: &mut BytesMut) {
    let mut skip = 0;
    loop {
        match buf.get(skip..) {
            Some([b'\n', ..]) => skip += 1,
            Some([b'\r', b'\n', ..]) => skip += 2,
            _ => break,
        }
    }
    let _ = buf.split_to(skip);
}

/// The offset just past the first empty line at or after `from`, if there is one.
fn blank_line_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let rest = buf.get(at..)?;
        let newline = at + rest.iter().position(|&b| b == b'\n')?;
        match buf.get(newline + 1..) {
            Some([b'\n', ..]) => return Some(newline + 2),
            Some([b'\r', b'\n', ..]) => return Some(newline + 3),
            // A lone CR may be followed by LF in the next read.
            Some([b'\r']) | Some([]) => return None,
            _ => at = newline + 1,
        }
    }
}

type HeaderList = Vec<(String, String)>;

/// Parses the command line and header lines (the block includes the blank line).
fn parse_block(block: &[u8], version: Version) -> Result<(Command, HeaderList), DecodeError> {
    let mut lines = block.split(|&b| b == b'\n').map(strip_cr);
    let command_line = lines.next().unwrap_or_default();
    let command = Command::parse(command_line).ok_or_else(|| {
        DecodeError::UnknownCommand(String::from_utf8_lossy(command_line).into_owned())
    })?;
    let escaping = command.escapes_headers().then_some(version);
    let mut headers = Vec::new();
    for line in lines.filter(|line| !line.is_empty()) {
        if headers.len() == HEADER_COUNT_MAX {
            return Err(DecodeError::TooManyHeaders);
        }
        let text = std::str::from_utf8(line).map_err(|_| DecodeError::NotUtf8)?;
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| DecodeError::HeaderWithoutColon(text.to_owned()))?;
        headers.push((
            escape::decode(name, escaping)?,
            escape::decode(value, escaping)?,
        ));
    }
    Ok((command, headers))
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_content_length(value: &str) -> Result<usize, DecodeError> {
    let digits = value.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::BadContentLength(value.to_owned()));
    }
    digits
        .parse()
        .map_err(|_| DecodeError::BadContentLength(value.to_owned()))
}

/// Appends `frame` to `out` in `version`'s escaping. Frames with a body (SEND, MESSAGE,
/// ERROR) always get a `content-length`, so that binary bodies survive; any the caller set is
/// replaced.
pub fn encode(frame: &Frame, version: Version, out: &mut BytesMut) {
    let escaping = frame.command.escapes_headers().then_some(version);
    out.reserve(frame.body.len() + 64 + frame.headers.len() * 32);
    out.put_slice(frame.command.as_str().as_bytes());
    out.put_u8(b'\n');
    for (name, value) in &frame.headers {
        if name == "content-length" {
            continue;
        }
        escape::encode_name(name, escaping, out);
        out.put_u8(b':');
        escape::encode_value(value, escaping, out);
        out.put_u8(b'\n');
    }
    if frame.command.has_body() || !frame.body.is_empty() {
        out.put_slice(b"content-length:");
        out.put_slice(frame.body.len().to_string().as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.put_slice(&frame.body);
    out.put_u8(0);
}

/// A heart-beat from us: one EOL.
pub fn encode_heart_beat(out: &mut BytesMut) {
    out.put_u8(b'\n');
}

//! One AMQP 0-9-1 connection with one channel: socket halves, frame buffers and the handshake.
//!
//! Frames are encoded and parsed with `amq-protocol` (`gen_frame`, `parse_frame`); this module
//! only frames bytes on the socket. Wire layout of every frame (AMQP 0-9-1 section 4.2.3):
//!
//! ```text
//! +------+---------+---------+-------------------+-----------+
//! | type | channel |  size   |  payload (size)   | frame-end |
//! |  u8  |   u16   |   u32   |                   |   0xCE    |
//! +------+---------+---------+-------------------+-----------+
//! ```
//!
//! Deviations from a general client, all on purpose: one channel (number 1) per connection;
//! heartbeats are disabled in `tune-ok` (a benchmark connection is never idle); only the PLAIN
//! mechanism; no TLS. Content header and body frames are not parsed, only skipped, because
//! the throughput scenarios never look at what they receive (`take_with_body` hands body
//! payloads to the overload scenario, which reads the message id in them). The client
//! announces the `connection.blocked` capability only when asked (`Connection::open_with`),
//! so that the throughput scenarios see exactly the broker behaviour they always saw. The
//! reader and the writer are separate halves so a producer can read confirms while it writes.

use std::ops::Range;

use amq_protocol::frame::{AMQPFrame, ProtocolVersion, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, channel, connection, constants};
use amq_protocol::types::{AMQPValue, ChannelId, FieldTable};
use amq_protocol::uri::{AMQPScheme, AMQPUri};
use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The only channel this client opens on a connection.
pub const CHANNEL: ChannelId = 1;

/// Largest frame we accept and propose, RabbitMQ's default; a 1 KiB message fits in one
/// body frame, and larger bodies are split as the spec requires.
const FRAME_MAX_BYTES: u32 = 131_072;

/// Type, channel and size fields in front of every payload.
const FRAME_HEADER_BYTES: usize = 7;

/// Frame header plus the frame-end octet: what a frame costs beyond its payload.
pub const FRAME_OVERHEAD_BYTES: usize = FRAME_HEADER_BYTES + 1;

/// Read buffer size: one `read` brings in thousands of small deliveries, which is what keeps
/// the consumer's syscall count far below the message rate.
const READ_BUFFER_BYTES: usize = 512 * 1024;

// A whole frame must fit in the read buffer, or a maximal frame could never be parsed.
const _: () = assert!(READ_BUFFER_BYTES >= FRAME_MAX_BYTES as usize + FRAME_OVERHEAD_BYTES);

/// A frame taken from the read buffer; content frames are skipped, not decoded.
#[derive(Debug)]
pub enum Inbound {
    Method(ChannelId, AMQPClass),
    Content,
    Heartbeat,
}

/// The read half: a socket and a buffer of received bytes not yet taken as frames.
#[derive(Debug)]
pub struct FrameReader {
    socket: OwnedReadHalf,
    buffer: Vec<u8>,
    /// Bytes in `buffer[unread]` are received and not yet taken.
    unread: Range<usize>,
}

impl FrameReader {
    fn new(socket: OwnedReadHalf) -> Self {
        Self {
            socket,
            buffer: vec![0; READ_BUFFER_BYTES],
            unread: 0..0,
        }
    }

    /// Reads more bytes from the socket; fails on end of stream.
    /// Cancellation-safe: a cancelled read has read nothing, and the buffer is unchanged.
    pub async fn fill(&mut self) -> anyhow::Result<()> {
        if self.unread.start > 0 {
            // Move the partial frame to the front so the rest of the buffer is free.
            self.buffer.copy_within(self.unread.clone(), 0);
            self.unread = 0..self.unread.len();
        }
        let count = self
            .socket
            .read(&mut self.buffer[self.unread.end..])
            .await?;
        if count == 0 {
            bail!("the broker closed the connection");
        }
        self.unread.end += count;
        Ok(())
    }

    /// Takes the next complete frame from the buffer, or `None` when more bytes are needed.
    pub fn take(&mut self) -> anyhow::Result<Option<Inbound>> {
        self.take_with_body(|_| {})
    }

    /// As `take`, and hands the payload of a body frame to `on_body` before returning it as
    /// `Inbound::Content`.
    pub fn take_with_body(
        &mut self,
        mut on_body: impl FnMut(&[u8]),
    ) -> anyhow::Result<Option<Inbound>> {
        let unread = &self.buffer[self.unread.clone()];
        let Some((frame_type, frame_bytes)) = frame_extent(unread)? else {
            return Ok(None);
        };
        let inbound = match frame_type {
            constants::FRAME_METHOD => match parse_frame(&unread[..frame_bytes]) {
                Ok((_, AMQPFrame::Method(channel, method))) => Inbound::Method(channel, method),
                Ok((_, other)) => bail!("expected a method frame, parsed {other}"),
                Err(error) => bail!("cannot parse a method frame: {error:?}"),
            },
            constants::FRAME_HEADER => Inbound::Content,
            constants::FRAME_BODY => {
                on_body(&unread[FRAME_HEADER_BYTES..frame_bytes - 1]);
                Inbound::Content
            }
            constants::FRAME_HEARTBEAT => Inbound::Heartbeat,
            other => bail!("unknown frame type {other}"),
        };
        self.unread.start += frame_bytes;
        Ok(Some(inbound))
    }

    /// Returns the next method frame, reading as needed and skipping everything else.
    /// Fails if the broker closes the connection or the channel.
    pub async fn next_method(&mut self) -> anyhow::Result<(ChannelId, AMQPClass)> {
        loop {
            match self.take()? {
                Some(Inbound::Method(channel, method)) => {
                    fail_if_closed(&method)?;
                    return Ok((channel, method));
                }
                Some(Inbound::Content | Inbound::Heartbeat) => {}
                None => self.fill().await?,
            }
        }
    }
}

/// Type and total length of the frame at the start of `unread`, once all of it is there.
/// The declared size is checked against frame-max before anything waits for the payload.
fn frame_extent(unread: &[u8]) -> anyhow::Result<Option<(u8, usize)>> {
    let Some(&[frame_type, _, _, size_0, size_1, size_2, size_3]) =
        unread.get(..FRAME_HEADER_BYTES)
    else {
        return Ok(None);
    };
    let payload_bytes = u32::from_be_bytes([size_0, size_1, size_2, size_3]);
    if payload_bytes > FRAME_MAX_BYTES {
        bail!("frame of {payload_bytes} bytes exceeds frame-max {FRAME_MAX_BYTES}");
    }
    let frame_bytes = payload_bytes as usize + FRAME_OVERHEAD_BYTES;
    if unread.len() < frame_bytes {
        return Ok(None);
    }
    if unread[frame_bytes - 1] != constants::FRAME_END {
        bail!("frame of type {frame_type} does not end with the frame-end octet");
    }
    Ok(Some((frame_type, frame_bytes)))
}

/// Turns a `connection.close` or `channel.close` from the broker into an error with its reply.
pub fn fail_if_closed(method: &AMQPClass) -> anyhow::Result<()> {
    match method {
        AMQPClass::Connection(connection::AMQPMethod::Close(close)) => Err(anyhow!(
            "the broker closed the connection: {} {}",
            close.reply_code,
            close.reply_text
        )),
        AMQPClass::Channel(channel::AMQPMethod::Close(close)) => Err(anyhow!(
            "the broker closed the channel: {} {}",
            close.reply_code,
            close.reply_text
        )),
        _ => Ok(()),
    }
}

/// The write half: a socket and a buffer of encoded frames not yet written.
#[derive(Debug)]
pub struct FrameWriter {
    socket: OwnedWriteHalf,
    buffer: Vec<u8>,
}

impl FrameWriter {
    /// Encodes a frame at the end of the write buffer.
    pub fn push(&mut self, frame: &AMQPFrame) -> anyhow::Result<()> {
        encode(frame, &mut self.buffer)
    }

    /// Pushes a method frame on the client's channel.
    pub fn push_method(&mut self, method: AMQPClass) -> anyhow::Result<()> {
        self.push(&AMQPFrame::Method(CHANNEL, method))
    }

    /// Writes the buffered frames, if any, in one go.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.buffer.is_empty() {
            self.socket.write_all(&self.buffer).await?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Writes already encoded frames, bypassing the buffer (the producer's hot path).
    pub async fn write_encoded(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.socket.write_all(bytes).await?;
        Ok(())
    }
}

/// Appends the encoding of `frame` to `out`.
pub fn encode(frame: &AMQPFrame, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let context = WriteContext::from(std::mem::take(out));
    let (bytes, _) = gen_frame(frame)(context)
        .map_err(|error| anyhow!("cannot encode {frame}: {error:?}"))?
        .into_inner();
    *out = bytes;
    Ok(())
}

/// An open connection with channel `CHANNEL` open on it.
#[derive(Debug)]
pub struct Connection {
    pub reader: FrameReader,
    pub writer: FrameWriter,
    /// Negotiated frame-max, which bounds body frames.
    pub frame_max: u32,
}

impl Connection {
    /// Connects to `url`, performs the handshake and opens channel `CHANNEL`.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_with(url, Capabilities::default()).await
    }

    /// As `open`, announcing `capabilities` in `connection.start-ok`.
    pub async fn open_with(url: &str, capabilities: Capabilities) -> anyhow::Result<Self> {
        let uri: AMQPUri = url
            .parse()
            .map_err(|error| anyhow!("bad URL `{url}`: {error}"))?;
        if uri.scheme != AMQPScheme::AMQP {
            bail!("only amqp:// URLs are supported by the raw client");
        }
        let address = (uri.authority.host.as_str(), uri.authority.port);
        let socket = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {}:{}", address.0, address.1))?;
        // Frames are batched by hand; Nagle's algorithm would only add latency to acks.
        socket.set_nodelay(true)?;
        let (read_half, write_half) = socket.into_split();
        let mut connection = Self {
            reader: FrameReader::new(read_half),
            writer: FrameWriter {
                socket: write_half,
                buffer: Vec::new(),
            },
            frame_max: FRAME_MAX_BYTES,
        };
        connection
            .handshake(&uri, capabilities)
            .await
            .with_context(|| {
                format!(
                    "AMQP handshake with {}:{} (credentials, vhost?)",
                    address.0, address.1
                )
            })?;
        let opened = connection.call(channel_method(channel::AMQPMethod::Open(channel::Open {})));
        match opened.await? {
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)) => Ok(connection),
            other => bail!("expected channel.open-ok, got {other:?}"),
        }
    }

    /// Protocol header, start/start-ok (PLAIN), tune/tune-ok, open/open-ok (section 2.2.4).
    async fn handshake(&mut self, uri: &AMQPUri, capabilities: Capabilities) -> anyhow::Result<()> {
        self.writer
            .push(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))?;
        self.writer.flush().await?;
        let start = match self.reader.next_method().await? {
            (0, AMQPClass::Connection(connection::AMQPMethod::Start(start))) => start,
            (_, other) => bail!("expected connection.start, got {other:?}"),
        };
        let mechanisms = String::from_utf8_lossy(start.mechanisms.as_bytes()).into_owned();
        if !mechanisms.split(' ').any(|mechanism| mechanism == "PLAIN") {
            bail!("the broker does not offer SASL PLAIN (offers: {mechanisms})");
        }
        let user = &uri.authority.userinfo;
        let response = format!("\0{}\0{}", user.username, user.password);
        self.send_on_zero(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: client_properties(capabilities),
            mechanism: "PLAIN".into(),
            response: response.into(),
            locale: "en_US".into(),
        }))
        .await?;
        let tune = match self.reader.next_method().await? {
            (0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune))) => tune,
            (_, other) => bail!("expected connection.tune, got {other:?}"),
        };
        // A zero frame-max from the broker means "no limit": keep ours.
        self.frame_max = match tune.frame_max {
            0 => FRAME_MAX_BYTES,
            broker => broker.min(FRAME_MAX_BYTES),
        };
        self.send_on_zero(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: CHANNEL,
            frame_max: self.frame_max,
            heartbeat: 0,
        }))
        .await?;
        let open = connection::Open {
            virtual_host: uri.vhost.as_str().into(),
        };
        self.send_on_zero(connection::AMQPMethod::Open(open))
            .await?;
        match self.reader.next_method().await? {
            (0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))) => Ok(()),
            (_, other) => bail!("expected connection.open-ok, got {other:?}"),
        }
    }

    async fn send_on_zero(&mut self, method: connection::AMQPMethod) -> anyhow::Result<()> {
        self.writer
            .push(&AMQPFrame::Method(0, AMQPClass::Connection(method)))?;
        self.writer.flush().await
    }

    /// Sends a synchronous method on `CHANNEL` and returns the broker's next method on it.
    pub async fn call(&mut self, method: AMQPClass) -> anyhow::Result<AMQPClass> {
        self.writer.push_method(method)?;
        self.writer.flush().await?;
        loop {
            let (channel, reply) = self.reader.next_method().await?;
            if channel == CHANNEL {
                return Ok(reply);
            }
        }
    }

    /// Sends `connection.close` and waits for `close-ok`, skipping whatever arrives before it.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.writer.push(&close_frame())?;
        self.writer.flush().await?;
        loop {
            if let (0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) =
                self.reader.next_method().await?
            {
                return Ok(());
            }
        }
    }
}

/// A normal `connection.close` (reply 200) from the client.
pub fn close_frame() -> AMQPFrame {
    AMQPFrame::Method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: constants::REPLY_SUCCESS,
            reply_text: "benchmark done".into(),
            class_id: 0,
            method_id: 0,
        })),
    )
}

fn channel_method(method: channel::AMQPMethod) -> AMQPClass {
    AMQPClass::Channel(method)
}

/// Optional protocol extensions the client announces in `start-ok` (RabbitMQ's
/// `capabilities` table in the client properties).
#[derive(Debug, Clone, Copy, Default)]
pub struct Capabilities {
    /// The client understands `connection.blocked` / `connection.unblocked`.
    pub connection_blocked: bool,
}

/// Identifies the client in the broker's connection list, with its capabilities.
fn client_properties(capabilities: Capabilities) -> FieldTable {
    let mut properties = FieldTable::default();
    if capabilities.connection_blocked {
        let mut table = FieldTable::default();
        table.insert("connection.blocked".into(), AMQPValue::Boolean(true));
        properties.insert("capabilities".into(), AMQPValue::FieldTable(table));
    }
    properties.insert(
        "product".into(),
        AMQPValue::LongString("mqbridge-bench".into()),
    );
    properties.insert(
        "version".into(),
        AMQPValue::LongString(env!("CARGO_PKG_VERSION").into()),
    );
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_extent_waits_for_whole_frames_and_checks_them() {
        let heartbeat = [8, 0, 0, 0, 0, 0, 0, 0xCE];
        assert_eq!(frame_extent(&heartbeat).unwrap(), Some((8, 8)));
        for cut in 0..heartbeat.len() {
            assert_eq!(
                frame_extent(&heartbeat[..cut]).unwrap(),
                None,
                "cut at {cut}"
            );
        }
        let mut two = heartbeat.to_vec();
        two.extend_from_slice(&heartbeat);
        assert_eq!(
            frame_extent(&two).unwrap(),
            Some((8, 8)),
            "only the first frame"
        );
        assert!(
            frame_extent(&[8, 0, 0, 0, 0, 0, 0, 0xAB]).is_err(),
            "bad frame end"
        );
        assert!(
            frame_extent(&[3, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]).is_err(),
            "over frame-max"
        );
    }

    #[test]
    fn encoded_heartbeat_matches_the_spec_bytes() {
        let mut bytes = vec![0xAA];
        encode(&AMQPFrame::Heartbeat, &mut bytes).unwrap();
        // Encoding appends: the byte already in the buffer is kept.
        assert_eq!(bytes, [0xAA, 8, 0, 0, 0, 0, 0, 0, 0xCE]);
    }
}

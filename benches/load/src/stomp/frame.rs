//! STOMP 1.2 frames on a TCP connection: just enough of the format for the benchmark.
//!
//! A frame is (STOMP 1.2, "Augmented BNF"):
//!
//! ```text
//! COMMAND EOL
//! (name:value EOL)*       header values escaped (\n \r \c \\), except in CONNECT/CONNECTED
//! EOL
//! body NUL                 body length from content-length when present, else up to the NUL
//! (EOL)*                   heart-beats between frames
//! ```
//!
//! Deviation from a general client, on purpose: header values are never unescaped. The
//! benchmark only reads `content-length`, `receipt-id` and the ack id of a MESSAGE, and sends
//! the ack id back exactly as received, so the broker unescapes what it escaped. A frame is
//! found by scanning its header lines in the read buffer, without copying them.

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Largest frame accepted from a broker: far above the benchmark's messages, small enough
/// that a broker that never sends the NUL cannot make the client buffer without bound.
const FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The head (command and header lines) of a whole frame at the front of the read buffer.
#[derive(Debug)]
pub struct Head<'a> {
    /// The command and header lines, each ending with `\n`.
    text: &'a [u8],
}

impl<'a> Head<'a> {
    /// The command, without its end of line.
    pub fn command(&self) -> &'a [u8] {
        self.lines().next().unwrap_or_default()
    }

    /// The value of the first header called `name` (STOMP 1.2: the first occurrence wins).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.lines().skip(1).find_map(|line| {
            let value = line.strip_prefix(name.as_bytes())?;
            value.strip_prefix(b":")
        })
    }

    /// The header as text, for error messages.
    pub fn header_text(&self, name: &str) -> String {
        self.header(name).map_or_else(String::new, |value| {
            String::from_utf8_lossy(value).into_owned()
        })
    }

    fn lines(&self) -> impl Iterator<Item = &'a [u8]> {
        self.text
            .split(|&octet| octet == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .take_while(|line| !line.is_empty())
    }
}

/// The read half: a socket and the octets received and not yet taken as frames.
#[derive(Debug)]
pub struct FrameReader {
    socket: OwnedReadHalf,
    buffer: BytesMut,
    read_bytes: usize,
    /// Octets of the frame handed out by the last `peek`, consumed by the next `advance`.
    peeked: usize,
}

impl FrameReader {
    /// Reads more octets; fails on end of stream. Cancellation-safe (`read_buf` is).
    pub async fn fill(&mut self) -> anyhow::Result<()> {
        self.buffer.reserve(self.read_bytes);
        if self.socket.read_buf(&mut self.buffer).await? == 0 {
            bail!("the broker closed the connection");
        }
        Ok(())
    }

    /// The head of the next whole frame in the buffer, or `None` when more octets are
    /// needed. Call [`Self::advance`] to move past it.
    pub fn peek(&mut self) -> anyhow::Result<Option<Head<'_>>> {
        // Heart-beats (bare EOLs) before a frame.
        let blank = self
            .buffer
            .iter()
            .take_while(|&&octet| octet == b'\n' || octet == b'\r')
            .count();
        self.buffer.advance(blank);
        let Some((head_bytes, frame_bytes)) = frame_extent(&self.buffer)? else {
            return Ok(None);
        };
        self.peeked = frame_bytes;
        let text = self
            .buffer
            .get(..head_bytes)
            .context("head past the buffer")?;
        Ok(Some(Head { text }))
    }

    /// Drops the frame returned by the last [`Self::peek`].
    pub fn advance(&mut self) {
        self.buffer.advance(self.peeked);
        self.peeked = 0;
    }

    /// Reads until a whole frame arrives and returns its command and the named header.
    pub async fn next_with(&mut self, header: &str) -> anyhow::Result<(String, String)> {
        loop {
            if let Some(head) = self.peek()? {
                let found = (
                    String::from_utf8_lossy(head.command()).into_owned(),
                    head.header_text(header),
                );
                let message = head.header_text("message");
                self.advance();
                if found.0 == "ERROR" {
                    bail!("the broker sent ERROR: {message}");
                }
                return Ok(found);
            }
            self.fill().await?;
        }
    }
}

/// For a whole frame at the front of `buffer`: the octets of its head (up to and including
/// the blank line) and of the whole frame (through the NUL). `None` while incomplete.
fn frame_extent(buffer: &[u8]) -> anyhow::Result<Option<(usize, usize)>> {
    let mut line_start = 0;
    let head_bytes = loop {
        let Some(newline) = buffer
            .get(line_start..)
            .and_then(|rest| rest.iter().position(|&o| o == b'\n'))
        else {
            if buffer.len() > FRAME_BYTES_MAX {
                bail!("the broker sent a frame head over {FRAME_BYTES_MAX} octets");
            }
            return Ok(None);
        };
        let line = buffer
            .get(line_start..line_start + newline)
            .unwrap_or_default();
        line_start += newline + 1;
        if line.is_empty() || line == b"\r" {
            break line_start;
        }
    };
    let head = Head {
        text: buffer.get(..head_bytes).unwrap_or_default(),
    };
    let body_end = match head.header("content-length") {
        Some(length) => {
            let length: usize = std::str::from_utf8(length)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .context("the broker sent a bad content-length")?;
            if length > FRAME_BYTES_MAX {
                bail!("the broker sent a body of {length} octets");
            }
            if buffer.len() <= head_bytes + length {
                return Ok(None);
            }
            head_bytes + length
        }
        None => match buffer
            .get(head_bytes..)
            .and_then(|body| body.iter().position(|&o| o == 0))
        {
            Some(length) => head_bytes + length,
            None if buffer.len() > FRAME_BYTES_MAX => {
                bail!("no NUL within {FRAME_BYTES_MAX} octets")
            }
            None => return Ok(None),
        },
    };
    if buffer.get(body_end) != Some(&0) {
        bail!("the broker sent a frame whose body does not end with NUL");
    }
    Ok(Some((head_bytes, body_end + 1)))
}

/// The write half: a socket and the encoded frames not yet written.
#[derive(Debug)]
pub struct FrameWriter {
    socket: OwnedWriteHalf,
    pub buffer: BytesMut,
}

impl FrameWriter {
    /// Appends a frame without a body; `headers` are written as given (already escaped).
    pub fn push(&mut self, command: &str, headers: &[(&str, &[u8])]) {
        self.buffer.extend_from_slice(command.as_bytes());
        self.buffer.extend_from_slice(b"\n");
        for (name, value) in headers {
            self.buffer.extend_from_slice(name.as_bytes());
            self.buffer.extend_from_slice(b":");
            self.buffer.extend_from_slice(value);
            self.buffer.extend_from_slice(b"\n");
        }
        self.buffer.extend_from_slice(b"\n\0");
    }

    /// Writes the buffered frames, if any, in one go.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.buffer.is_empty() {
            self.socket.write_all(&self.buffer).await?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Sends DISCONNECT and shuts the write side.
    pub async fn disconnect(mut self) -> anyhow::Result<()> {
        self.push("DISCONNECT", &[]);
        self.flush().await?;
        self.socket.shutdown().await?;
        Ok(())
    }
}

/// Connects and logs in with STOMP 1.2; fails unless the broker answers CONNECTED 1.2.
pub async fn connect(
    address: std::net::SocketAddr,
    login: &str,
    passcode: &str,
    read_bytes: usize,
) -> anyhow::Result<(FrameReader, FrameWriter)> {
    let socket = TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    socket.set_nodelay(true)?;
    let (read_half, write_half) = socket.into_split();
    let mut reader = FrameReader {
        socket: read_half,
        buffer: BytesMut::new(),
        read_bytes,
        peeked: 0,
    };
    let mut writer = FrameWriter {
        socket: write_half,
        buffer: BytesMut::new(),
    };
    writer.push(
        "CONNECT",
        &[
            ("accept-version", b"1.2"),
            ("host", b"/"),
            ("login", login.as_bytes()),
            ("passcode", passcode.as_bytes()),
            // No heart-beats: a busy benchmark connection never needs them.
            ("heart-beat", b"0,0"),
        ],
    );
    writer.flush().await?;
    match reader.next_with("version").await? {
        (command, version) if command == "CONNECTED" && version == "1.2" => Ok((reader, writer)),
        (command, version) if command == "CONNECTED" => {
            bail!("the broker negotiated STOMP {version}, not 1.2")
        }
        (command, _) => bail!("expected CONNECTED, got {command}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_end_at_content_length_or_at_the_nul() {
        let frame = b"MESSAGE\ncontent-length:3\nack:7\n\na\0b\0\n";
        assert_eq!(frame_extent(frame).unwrap(), Some((32, 36)));
        assert_eq!(frame_extent(&frame[..35]).unwrap(), None);
        let frame = b"RECEIPT\r\nreceipt-id:9\r\n\r\n\0";
        assert_eq!(frame_extent(frame).unwrap(), Some((25, 26)));
        assert_eq!(frame_extent(b"RECEIPT\nreceipt-id:9\n").unwrap(), None);
        assert!(frame_extent(b"MESSAGE\ncontent-length:1\n\nab").is_err());
    }

    #[test]
    fn headers_are_found_by_exact_name() {
        let head = Head {
            text: b"MESSAGE\nmessage-id:m1\nack:a\\c1\n\n",
        };
        assert_eq!(head.command(), b"MESSAGE");
        assert_eq!(head.header("ack"), Some(&b"a\\c1"[..]));
        assert_eq!(head.header("message-id"), Some(&b"m1"[..]));
        assert_eq!(head.header("message"), None);
    }
}

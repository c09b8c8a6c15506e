//! The WebSocket transport: browsers reach the broker's MQTT and STOMP adapters over it.
//!
//! WebSocket is a transport, not a protocol: this crate upgrades the HTTP connection, picks
//! MQTT or STOMP by the subprotocol the client offers, and hands the listener a byte stream
//! ([`WsStream`]) to pass to that adapter's ordinary `serve`. It knows nothing of MQTT or STOMP
//! beyond their subprotocol names and MQTT's rule that packets travel in binary frames.
//!
//! Layout:
//! - [`handshake`]: the HTTP upgrade, sans-IO: request head in, decision and response out.
//! - [`stream`]: [`WsStream`], the upgraded connection as `AsyncRead + AsyncWrite`.
//! - [`accept`] (here): reads the request head, answers it, and builds the stream.
//!
//! A connection's life, on the listener's connection task:
//! `accept` -> the adapter's `serve(&mut stream, ...)` -> [`WsStream::close`].

pub mod handshake;
pub mod stream;

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

pub use handshake::{OriginPolicy, Subprotocol};
pub use stream::WsStream;

/// tungstenite allocates its read buffer up front, per connection (128 KiB by default); idle
/// browser connections are the common case, and larger messages still arrive in one read
/// after another.
const READ_BUFFER_SIZE: usize = 16 * 1024;

/// The listener's WebSocket settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsSettings {
    /// Browser origins allowed to connect.
    pub origins: OriginPolicy,
    /// Largest message (and frame) accepted from a client, in bytes; larger ones close the
    /// connection with 1009.
    pub max_message_size: usize,
    /// A client that connects and sends nothing (or dribbles its request) is dropped after
    /// this, so it cannot hold a connection slot.
    pub handshake_timeout: Duration,
}

/// Why a connection did not become a WebSocket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    #[error("no complete upgrade request within {0:?}")]
    Timeout(Duration),
    #[error("refused with HTTP {status}: {detail}")]
    Refused { status: u16, detail: String },
    #[error("connection ended during the upgrade: {0}")]
    Io(#[from] io::Error),
}

/// Performs the opening handshake on a freshly accepted connection (plain or TLS). A refused
/// request gets its HTTP error response before this returns.
pub async fn accept<S>(mut stream: S, settings: &WsSettings) -> Result<WsStream<S>, AcceptError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let timeout = settings.handshake_timeout;
    let read = tokio::time::timeout(timeout, read_head(&mut stream, settings));
    let (head, length, outcome) = read.await.map_err(|_| AcceptError::Timeout(timeout))??;
    match outcome {
        Ok(upgrade) => {
            stream.write_all(&upgrade.response()).await?;
            let config = WebSocketConfig::default()
                .read_buffer_size(READ_BUFFER_SIZE)
                .max_message_size(Some(settings.max_message_size))
                .max_frame_size(Some(settings.max_message_size));
            // Frames a client sent right behind its request are already in `head`.
            let rest = head.get(length..).unwrap_or_default().to_vec();
            let socket =
                WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(config))
                    .await;
            Ok(WsStream::new(socket, upgrade.subprotocol))
        }
        Err(refusal) => {
            stream.write_all(&refusal.response()).await?;
            let _ = stream.shutdown().await;
            Err(AcceptError::Refused {
                status: refusal.status,
                detail: refusal.detail,
            })
        }
    }
}

type Head = (
    Vec<u8>,
    usize,
    Result<handshake::Upgrade, handshake::Refusal>,
);

/// Reads until the request head is complete (or refused).
async fn read_head<S>(stream: &mut S, settings: &WsSettings) -> Result<Head, AcceptError>
where
    S: AsyncRead + Unpin,
{
    let mut head = Vec::with_capacity(1024);
    loop {
        if stream.read_buf(&mut head).await? == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        if let handshake::Parsed::Request { length, outcome } =
            handshake::parse(&head, &settings.origins)
        {
            return Ok((head, length, outcome));
        }
    }
}

#[cfg(test)]
mod tests;

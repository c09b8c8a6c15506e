//! [`WsStream`]: an upgraded WebSocket seen as a byte stream, so that the MQTT and STOMP
//! adapters run over it unchanged, exactly as over TCP.
//!
//! Reading yields the payloads of data messages back to back; message boundaries mean nothing
//! to the adapters' codecs, so one packet split over several messages and several packets in
//! one message both parse (MQTT over WebSocket, section 6 of the MQTT 5 specification). Pings
//! are answered by tungstenite on the next read or write; pongs are ignored.
//!
//! Writing sends each `poll_write` buffer as one message: binary for MQTT ([MQTT-6.0.0-1]),
//! text for STOMP when the bytes are UTF-8 (what stomp.js and RabbitMQ Web-STOMP expect by
//! default) and binary when they are not, so a binary body is never mangled.
//!
//! Invariants the adapters rely on, as they do on a `TcpStream`:
//! - a completed `poll_write` reaches the socket without a `flush`: a message left buffered by
//!   a busy socket is pushed out by the next `poll_write` or `poll_read` (the adapters always
//!   keep a read pending);
//! - a violation of the WebSocket protocol ends the byte stream (an error, then EOF) and records
//!   the close code; [`WsStream::close`] sends it after the adapter has returned.
//!
//! Runs on the connection task; `tokio::io::split` in the adapters serialises reads and writes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::Subprotocol;

/// How long the closing handshake may take before the TCP connection is dropped anyway, so a
/// client that never answers our Close does not hold a connection slot.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// RFC 6455 section 5.5: a control frame's payload is at most 125 bytes, 2 of them the code.
const CLOSE_REASON_MAX: usize = 123;

/// An upgraded WebSocket carrying one MQTT or STOMP connection.
pub struct WsStream<S> {
    socket: WebSocketStream<S>,
    subprotocol: Subprotocol,
    /// The unread rest of the last data message.
    reading: Bytes,
    /// A message was handed to the socket and may not have reached it yet.
    unflushed: bool,
    /// Why the transport ends the connection, decided while reading.
    close: Option<CloseFrame>,
    /// The client sent its Close, or the connection is gone.
    peer_closed: bool,
}

impl<S> WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    pub(crate) fn new(socket: WebSocketStream<S>, subprotocol: Subprotocol) -> WsStream<S> {
        WsStream {
            socket,
            subprotocol,
            reading: Bytes::new(),
            unflushed: false,
            close: None,
            peer_closed: false,
        }
    }

    /// The protocol this connection carries, chosen during the upgrade.
    pub fn subprotocol(&self) -> Subprotocol {
        self.subprotocol
    }

    /// The close code the transport decided on while reading, if any (1002, 1003, 1007, 1009).
    pub fn close_code(&self) -> Option<u16> {
        self.close.as_ref().map(|frame| frame.code.into())
    }

    /// Runs the closing handshake once the adapter is done with the stream: our Close (the
    /// recorded violation, else 1001 when the broker shuts down, else 1000), then the client's
    /// answer, bounded by [`CLOSE_TIMEOUT`].
    pub async fn close(mut self, broker_shutting_down: bool) {
        let frame = self.close.take().unwrap_or_else(|| {
            if broker_shutting_down {
                close_frame(CloseCode::Away, "broker shutting down")
            } else {
                close_frame(CloseCode::Normal, "")
            }
        });
        let handshake = async {
            // RFC 6455 5.5.1: a Close received is answered with a Close. Tungstenite queued
            // that answer (the client's code, or 1002 for a code no one may send) when it read
            // the client's Close, and refuses a second one (SendAfterClosing) without
            // writing the first: flushing is all that is left to do.
            if self.peer_closed {
                return self.socket.flush().await;
            }
            self.socket.send(Message::Close(Some(frame))).await?;
            while self.socket.next().await.transpose()?.is_some() {}
            Ok::<(), WsError>(())
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, handshake).await;
    }

    /// Pushes a buffered message towards the socket; `Pending` only means "not yet".
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.unflushed {
            ready!(Pin::new(&mut self.socket).poll_flush(cx)).map_err(into_io)?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes in one message from the client.
    fn on_message(&mut self, message: Message) -> io::Result<()> {
        match message {
            Message::Binary(payload) => self.reading = payload,
            Message::Text(text) => match self.subprotocol {
                Subprotocol::Stomp => self.reading = Bytes::from(text),
                // [MQTT-6.0.0-1] If any other type of data frame is received the recipient
                // MUST close the Network Connection.
                Subprotocol::Mqtt => {
                    return Err(self.fail(CloseCode::Unsupported, "MQTT needs binary frames"));
                }
            },
            Message::Close(_) => self.peer_closed = true,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        Ok(())
    }

    /// Maps a WebSocket error to the close code it calls for (RFC 6455 section 7.4.1).
    fn on_error(&mut self, error: WsError) -> io::Error {
        match error {
            WsError::Io(error) => {
                self.peer_closed = true;
                error
            }
            WsError::ConnectionClosed | WsError::AlreadyClosed => {
                self.peer_closed = true;
                io::ErrorKind::UnexpectedEof.into()
            }
            WsError::Capacity(error) => self.fail(CloseCode::Size, &error.to_string()),
            WsError::Utf8(_) => self.fail(CloseCode::Invalid, "text frame is not UTF-8"),
            error => self.fail(CloseCode::Protocol, &error.to_string()),
        }
    }

    /// Records why the connection must close and ends the byte stream.
    fn fail(&mut self, code: CloseCode, reason: &str) -> io::Error {
        tracing::debug!(%code, reason, "websocket connection failed");
        self.close = Some(close_frame(code, reason));
        io::Error::new(io::ErrorKind::InvalidData, reason.to_owned())
    }

    fn message(&self, bytes: &[u8]) -> Message {
        match (self.subprotocol, std::str::from_utf8(bytes)) {
            (Subprotocol::Stomp, Ok(text)) => Message::text(text),
            _ => Message::Binary(Bytes::copy_from_slice(bytes)),
        }
    }
}

impl<S> AsyncRead for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.reading.is_empty() {
                let length = this.reading.len().min(buffer.remaining());
                buffer.put_slice(&this.reading[..length]);
                this.reading.advance(length);
                return Poll::Ready(Ok(()));
            }
            if this.peer_closed || this.close.is_some() {
                return Poll::Ready(Ok(()));
            }
            // Pending here only means the socket is busy; the read below registers for wake-up.
            if let Poll::Ready(Err(error)) = this.poll_drain(cx) {
                return Poll::Ready(Err(error));
            }
            match ready!(Pin::new(&mut this.socket).poll_next(cx)) {
                Some(Ok(message)) => this.on_message(message)?,
                Some(Err(error)) => return Poll::Ready(Err(this.on_error(error))),
                None => this.peer_closed = true,
            }
        }
    }
}

impl<S> AsyncWrite for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // The previous message goes out before the next is taken: this is the backpressure a
        // slow client exerts on the adapter.
        ready!(this.poll_drain(cx))?;
        ready!(Pin::new(&mut this.socket).poll_ready(cx)).map_err(into_io)?;
        let message = this.message(bytes);
        Pin::new(&mut this.socket)
            .start_send(message)
            .map_err(into_io)?;
        this.unflushed = true;
        if let Poll::Ready(Err(error)) = this.poll_drain(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drain(cx)
    }

    /// Flushes only: the closing handshake needs the close code, which [`WsStream::close`]
    /// knows once the adapter has returned.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drain(cx)
    }
}

fn close_frame(code: CloseCode, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(CLOSE_REASON_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code,
        reason: reason[..end].into(),
    }
}

fn into_io(error: WsError) -> io::Error {
    match error {
        WsError::Io(error) => error,
        error => io::Error::other(error),
    }
}

#[cfg(test)]
mod tests;

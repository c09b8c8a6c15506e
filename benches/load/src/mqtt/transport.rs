//! How a connection reaches the broker: plain TCP, TLS, or a WebSocket (subprotocol `mqtt`).
//!
//! Every transport ends as one [`Stream`], a byte stream the MQTT connection reads and writes
//! as it would a TCP socket, so the packet code is the same on all three.
//!
//! - TLS: rustls (through tokio-rustls) trusting only the CA certificates of `--ca-file`; the
//!   server name is the broker's IP address, so the certificate must name it (`IP:127.0.0.1`).
//! - WebSocket: tokio-tungstenite's client handshake on `ws://HOST:PORT/PATH` with
//!   `Sec-WebSocket-Protocol: mqtt`; each batch the client writes becomes one binary frame, and
//!   the payload of every binary frame received is appended to the byte stream (MQTT over
//!   WebSocket allows packets split across frames and many packets in one frame). A small
//!   task per connection moves bytes between the frames and an in-memory pipe; its cost shows
//!   in the client's CPU figure, which the report prints.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The WebSocket subprotocol of MQTT (MQTT 3.1.1 section 6).
const WEBSOCKET_SUBPROTOCOL: &str = "mqtt";

/// Bytes buffered in the pipe between the connection and its WebSocket task, each way: a few
/// of the publisher's 64 KiB batches, so the task can frame one while the next is written.
const WEBSOCKET_PIPE_BYTES: usize = 256 * 1024;

/// Largest read from the pipe, and so the largest binary frame the client sends.
const WEBSOCKET_FRAME_BYTES: usize = 64 * 1024;

/// A connected byte stream, whatever carries it.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug> Stream for T {}

/// The transport chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportKind {
    /// MQTT on a plain TCP connection.
    Tcp,
    /// MQTT in binary WebSocket frames (`ws://`, subprotocol `mqtt`).
    Ws,
    /// MQTT on TLS (MQTTS).
    Tls,
}

/// A transport ready to open connections: for TLS, the client configuration, built once.
#[derive(Clone)]
pub enum Transport {
    Tcp,
    /// The URL path of the WebSocket endpoint (`/ws` for mqbridge and RabbitMQ, `/mqtt` too
    /// for mqbridge; Mosquitto accepts any).
    WebSocket {
        path: String,
    },
    Tls(TlsConnector),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp => formatter.write_str("Tcp"),
            Self::WebSocket { path } => write!(formatter, "WebSocket({path})"),
            Self::Tls(_) => formatter.write_str("Tls"),
        }
    }
}

impl Transport {
    /// Builds the transport; TLS needs `ca_file`, the PEM certificates to trust.
    pub fn new(kind: TransportKind, ws_path: &str, ca_file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(match kind {
            TransportKind::Tcp => Self::Tcp,
            TransportKind::Ws => Self::WebSocket {
                path: ws_path.to_owned(),
            },
            TransportKind::Tls => {
                let ca_file = ca_file.context("--transport tls needs --ca-file")?;
                Self::Tls(tls_connector(ca_file)?)
            }
        })
    }

    /// Connects to `address` and completes the TLS or WebSocket handshake.
    pub async fn connect(&self, address: SocketAddr) -> anyhow::Result<Box<dyn Stream>> {
        let socket = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        // Packets are batched by hand; Nagle's algorithm would only delay acks.
        socket.set_nodelay(true)?;
        match self {
            Self::Tcp => Ok(Box::new(socket)),
            Self::Tls(connector) => {
                let name = ServerName::IpAddress(address.ip().into());
                let stream = connector
                    .connect(name, socket)
                    .await
                    .with_context(|| format!("TLS handshake with {address}"))?;
                Ok(Box::new(stream))
            }
            Self::WebSocket { path } => websocket(socket, address, path).await,
        }
    }
}

fn tls_connector(ca_file: &Path) -> anyhow::Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("reading {}", ca_file.display()))?
    {
        roots.add(certificate.with_context(|| format!("parsing {}", ca_file.display()))?)?;
    }
    if roots.is_empty() {
        bail!("no certificate in {}", ca_file.display());
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Completes the WebSocket handshake and returns one end of a pipe whose other end a spawned
/// task moves to and from WebSocket frames.
async fn websocket(
    socket: TcpStream,
    address: SocketAddr,
    path: &str,
) -> anyhow::Result<Box<dyn Stream>> {
    let mut request = format!("ws://{address}{path}").into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(WEBSOCKET_SUBPROTOCOL),
    );
    let (websocket, response) = tokio_tungstenite::client_async(request, socket)
        .await
        .with_context(|| format!("WebSocket handshake with ws://{address}{path}"))?;
    let agreed = response.headers().get("Sec-WebSocket-Protocol");
    if agreed.is_none_or(|value| value != WEBSOCKET_SUBPROTOCOL) {
        bail!("the broker did not accept the WebSocket subprotocol {WEBSOCKET_SUBPROTOCOL}");
    }
    let (ours, theirs) = tokio::io::duplex(WEBSOCKET_PIPE_BYTES);
    tokio::spawn(pump(websocket, theirs));
    Ok(Box::new(ours))
}

/// Moves bytes between the pipe and the WebSocket until either side ends. An error ends the
/// pipe, which the connection sees as the broker closing, and reports in its own words.
async fn pump(
    websocket: tokio_tungstenite::WebSocketStream<TcpStream>,
    pipe: DuplexStream,
) -> anyhow::Result<()> {
    let (mut frames_out, mut frames_in) = websocket.split();
    let (mut pipe_in, mut pipe_out) = tokio::io::split(pipe);
    let outbound = async {
        let mut buffer = vec![0; WEBSOCKET_FRAME_BYTES];
        loop {
            let read = pipe_in.read(&mut buffer).await?;
            if read == 0 {
                frames_out.close().await?;
                return anyhow::Ok(());
            }
            let payload = buffer.get(..read).context("read past the buffer")?;
            frames_out.send(Message::binary(payload.to_vec())).await?;
        }
    };
    let inbound = async {
        while let Some(message) = frames_in.next().await {
            match message? {
                Message::Binary(payload) => pipe_out.write_all(&payload).await?,
                Message::Close(_) => break,
                // Pings are answered by tungstenite on the next write or flush; MQTT never
                // travels in text frames.
                _ => {}
            }
        }
        pipe_out.shutdown().await?;
        anyhow::Ok(())
    };
    tokio::try_join!(outbound, inbound)?;
    Ok(())
}

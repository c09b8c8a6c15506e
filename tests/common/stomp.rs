//! A raw STOMP client over a plain `TcpStream`. STOMP is text and no Rust client crate covers
//! 1.0 to 1.2 with receipts, transactions and malformed input, so tests write frames with the
//! adapter's own codec (or by hand where they must be malformed) and read what comes back.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::BytesMut;
use mqbridge_stomp::codec::{self, Command, Decoder, Frame, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Broker, within};

/// What the client accepts from the broker: far above anything a test sends back.
const FRAME_SIZE_MAX: usize = 64 * 1024 * 1024;
/// How long "nothing arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(300);

pub struct StompClient {
    stream: TcpStream,
    input: BytesMut,
    decoder: Decoder,
    pub version: Version,
    /// Heart-beat EOLs received so far.
    pub heart_beats: usize,
    next_receipt: u32,
    /// Frames that arrived while [`StompClient::request`] waited for its receipt.
    held: VecDeque<Frame>,
}

impl StompClient {
    /// Opens a TCP connection and sends nothing.
    pub async fn connect(broker: &Broker) -> StompClient {
        let stream = within(TcpStream::connect(broker.server.stomp_addr))
            .await
            .expect("tcp connect");
        StompClient {
            stream,
            input: BytesMut::new(),
            decoder: Decoder::new(FRAME_SIZE_MAX),
            version: Version::V1_2,
            heart_beats: 0,
            next_receipt: 0,
            held: VecDeque::new(),
        }
    }

    /// Connects as guest with STOMP 1.2 and waits for CONNECTED.
    pub async fn open(broker: &Broker) -> StompClient {
        StompClient::open_with(broker, connect_frame("1.2")).await.0
    }

    /// Connects with `connect` and waits for CONNECTED, adopting the version it names.
    pub async fn open_with(broker: &Broker, connect: Frame) -> (StompClient, Frame) {
        let mut client = StompClient::connect(broker).await;
        client.send(&connect).await;
        let connected = client.expect(Command::Connected).await;
        let version = connected.header("version").unwrap_or("1.0");
        client.version = Version::parse(version).expect("a version we speak");
        client.decoder.configure(client.version, FRAME_SIZE_MAX);
        (client, connected)
    }

    pub async fn send(&mut self, frame: &Frame) {
        let mut out = BytesMut::new();
        codec::encode(frame, self.version, &mut out);
        self.send_bytes(&out).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        within(self.stream.write_all(bytes)).await.expect("write");
    }

    /// The next frame, or `None` once the broker has closed the connection. Heart-beats (EOLs
    /// between frames; the broker sends none after a frame) are counted and skipped.
    pub async fn next(&mut self) -> Option<Frame> {
        if let Some(frame) = self.held.pop_front() {
            return Some(frame);
        }
        within(self.read_frame()).await
    }

    async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            let leading = self.input.iter().take_while(|&&b| b == b'\n').count();
            self.heart_beats += leading;
            if let Some(frame) = self.decoder.decode(&mut self.input).expect("valid frame") {
                return Some(frame);
            }
            match self.stream.read_buf(&mut self.input).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next frame, which must be `command`.
    pub async fn expect(&mut self, command: Command) -> Frame {
        match self.next().await {
            Some(frame) if frame.command == command => frame,
            other => panic!("expected {command}, got {}", describe(other.as_ref())),
        }
    }

    /// The next frame must be an ERROR, after which the broker closes the connection.
    pub async fn expect_error(&mut self) -> Frame {
        let error = self.expect(Command::Error).await;
        assert!(
            error.header("message").is_some(),
            "ERROR without message: {error:?}"
        );
        self.assert_closed().await;
        error
    }

    pub async fn assert_closed(&mut self) {
        match self.next().await {
            None => {}
            Some(frame) => panic!(
                "expected the connection to close, got {}",
                describe(Some(&frame))
            ),
        }
    }

    /// Asserts that no frame arrives for [`QUIET`].
    pub async fn assert_quiet(&mut self) {
        if let Some(frame) = self.held.front() {
            panic!("expected nothing, got {}", describe(Some(frame)));
        }
        if let Ok(frame) = tokio::time::timeout(QUIET, self.read_frame()).await {
            panic!("expected nothing, got {}", describe(frame.as_ref()));
        }
    }

    /// Sends `frame` with a fresh `receipt` header and waits for its RECEIPT. MESSAGE frames
    /// that arrive meanwhile (a SEND to one's own subscription is often delivered before its
    /// receipt) are kept for [`StompClient::next`].
    pub async fn request(&mut self, frame: Frame) {
        self.next_receipt += 1;
        let receipt = format!("r-{}", self.next_receipt);
        self.send(&frame.with("receipt", receipt.clone())).await;
        loop {
            let answer = within(self.read_frame()).await;
            match answer {
                Some(frame) if frame.command == Command::Message => self.held.push_back(frame),
                Some(frame) if frame.command == Command::Receipt => {
                    assert_eq!(frame.header("receipt-id"), Some(receipt.as_str()));
                    return;
                }
                other => panic!(
                    "expected RECEIPT {receipt}, got {}",
                    describe(other.as_ref())
                ),
            }
        }
    }

    /// SUBSCRIBE with `ack` mode, confirmed by a receipt.
    pub async fn subscribe(&mut self, id: &str, destination: &str, ack: &str) {
        let frame = Frame::new(Command::Subscribe)
            .with("id", id)
            .with("destination", destination)
            .with("ack", ack);
        self.request(frame).await;
    }

    /// SEND of a text body, confirmed by a receipt (so the queues have it when this returns).
    pub async fn publish(&mut self, destination: &str, body: &str) {
        self.request(send(destination, body)).await;
    }

    /// The next MESSAGE; its body must be `body`.
    pub async fn expect_message(&mut self, body: &str) -> Frame {
        let message = self.expect(Command::Message).await;
        assert_eq!(
            String::from_utf8_lossy(&message.body),
            body,
            "message {message:?}"
        );
        message
    }

    /// ACK (or NACK) of a MESSAGE, with the header its version uses.
    pub fn ack_frame(&self, command: Command, message: &Frame) -> Frame {
        let id = message
            .header("ack")
            .or_else(|| message.header("message-id"))
            .expect("an ack id");
        let frame = Frame::new(command);
        match self.version {
            Version::V1_2 => frame.with("id", id),
            _ => frame
                .with("message-id", id)
                .with("subscription", message.header("subscription").unwrap_or("")),
        }
    }

    /// DISCONNECT with a receipt, then the close.
    pub async fn disconnect(mut self) {
        self.request(Frame::new(Command::Disconnect)).await;
        self.assert_closed().await;
    }
}

/// A frame for a failure message: command, headers and the body's length (bodies can be
/// large and binary).
pub fn describe(frame: Option<&Frame>) -> String {
    match frame {
        None => "the connection closed".to_owned(),
        Some(frame) => {
            let text = String::from_utf8_lossy(&frame.body);
            let body: String = text.chars().take(200).collect();
            format!(
                "{} {:?} body ({} octets) {body:?}",
                frame.command,
                frame.headers,
                frame.body.len()
            )
        }
    }
}

/// A CONNECT as guest/guest asking for `versions` (e.g. "1.1,1.2").
pub fn connect_frame(versions: &str) -> Frame {
    Frame::new(Command::Connect)
        .with("accept-version", versions)
        .with("host", "/")
        .with("login", "guest")
        .with("passcode", "guest")
}

/// A SEND of a text body.
pub fn send(destination: &str, body: &str) -> Frame {
    Frame::new(Command::Send)
        .with("destination", destination)
        .with_body(body.as_bytes().to_vec())
}

/// A name unique to this test process, so tests sharing a broker never share queues.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Ready messages in `queue`, by a passive declare over AMQP.
pub async fn message_count(channel: &lapin::Channel, queue: &str) -> u32 {
    let options = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    within(channel.queue_declare(queue.into(), options, Default::default()))
        .await
        .expect("the queue exists")
        .message_count()
}

/// Proves that a client still publishes and receives: the broker (and this connection) are
/// unaffected by whatever another connection did.
pub async fn assert_alive(client: &mut StompClient, queue: &str) {
    let destination = format!("/queue/{queue}");
    client.subscribe(queue, &destination, "auto").await;
    client.publish(&destination, "alive").await;
    client.expect_message("alive").await;
    let unsubscribe = Frame::new(Command::Unsubscribe).with("id", queue);
    client.request(unsubscribe).await;
}

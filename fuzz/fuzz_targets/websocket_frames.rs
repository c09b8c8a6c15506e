//! WebSocket framing into MQTT and STOMP: `mqbridge_websocket::accept` and the `WsStream`
//! it returns, read as the adapters read it, with the bytes handed to the MQTT or STOMP codec.
//! No broker: this is the transport alone, over an in-memory pipe.
//!
//! Input: an options octet, then frames.
//! - bit 0: the subprotocol offered: STOMP (`v12.stomp`) instead of MQTT (`mqtt`);
//! - bit 1: the frames are raw octets (the fuzzer must mask them) instead of records the
//!   target turns into masked frames (`mqbridge_fuzz::websocket`);
//! - bit 2: (records only) the client ends with a Close frame instead of just closing.
//!
//! Checks: from records, the byte stream is exactly the data messages' payloads back to back
//! (up to a message the subprotocol refuses); whatever is read is written back through the
//! stream, as an adapter's answers are; the carried protocol's decoder never panics on it.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqbridge_fuzz::websocket::{Frames, request};
use mqbridge_websocket::{OriginPolicy, Subprotocol, WsSettings, WsStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;

/// Bounds one input; the transport alone never waits on anything but the pipe.
const INPUT_TIME_MAX: Duration = Duration::from_secs(2);
const MESSAGE_SIZE_MAX: usize = 1 << 20;

fuzz_target!(|input: &[u8]| {
    let (options, rest) = mqbridge_fuzz::options(input);
    let subprotocol = if options & 1 == 1 {
        Subprotocol::Stomp
    } else {
        Subprotocol::Mqtt
    };
    let raw = options & 0b10 != 0;
    let mut client = request(subprotocol);
    let frames = if raw {
        client.extend_from_slice(rest);
        None
    } else {
        let mut frames = Frames::from_records(subprotocol, rest);
        if options & 0b100 != 0 {
            frames.close();
        }
        client.extend_from_slice(&frames.wire);
        Some(frames)
    };
    let read = runtime().block_on(async {
        let (near, far) = tokio::io::duplex(4096);
        let exchange = async { tokio::join!(talk(near, &client), serve(far)).1 };
        tokio::time::timeout(INPUT_TIME_MAX, exchange).await
    });
    let read = read.expect("the transport finished in time");
    if let Some(frames) = frames {
        assert_eq!(
            read, frames.expected,
            "the byte stream is not the messages' payloads"
        );
    }
    decode(subprotocol, &read);
});

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// The client: writes everything, half-closes, reads until the server is done.
async fn talk(mut near: DuplexStream, bytes: &[u8]) {
    let (mut reading, mut writing) = tokio::io::split(&mut near);
    let write = async {
        let _ = writing.write_all(bytes).await;
        let _ = writing.shutdown().await;
    };
    let read = async {
        let mut sink = vec![0; 4096];
        while let Ok(1..) = reading.read(&mut sink).await {}
    };
    tokio::join!(write, read);
}

/// The server: the upgrade, then the byte stream until it ends, echoed back.
async fn serve(far: DuplexStream) -> Vec<u8> {
    let settings = WsSettings {
        origins: OriginPolicy::default(),
        max_message_size: MESSAGE_SIZE_MAX,
        handshake_timeout: std::time::Duration::from_secs(10),
    };
    let Ok(mut stream) = mqbridge_websocket::accept(far, &settings).await else {
        return Vec::new();
    };
    let read = read_all(&mut stream).await;
    stream.close(false).await;
    read
}

async fn read_all(stream: &mut WsStream<DuplexStream>) -> Vec<u8> {
    let mut read = Vec::new();
    let mut chunk = vec![0; 4096];
    while let Ok(n @ 1..) = stream.read(&mut chunk).await {
        read.extend_from_slice(&chunk[..n]);
        if stream.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
    read
}

fn decode(subprotocol: Subprotocol, bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    match subprotocol {
        Subprotocol::Mqtt => {
            let mut version = None;
            while let Ok(Some(packet)) = mqbridge_mqtt::codec::decode(&mut buf, version, 0) {
                if let mqbridge_mqtt::codec::Packet::Connect(connect) = packet {
                    version.get_or_insert(connect.version);
                }
            }
        }
        Subprotocol::Stomp => {
            let mut decoder = mqbridge_stomp::codec::Decoder::new(MESSAGE_SIZE_MAX);
            while let Ok(Some(_)) = decoder.decode(&mut buf) {}
        }
    }
}

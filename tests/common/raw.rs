//! A raw AMQP 0-9-1 client over a plain `TcpStream`, for the input lapin will not produce:
//! malformed frames, methods only servers send, frames out of order. Frames are encoded and
//! decoded with the broker's own codec, so a test states exactly which octets go out.

use std::net::SocketAddr;

use bytes::BytesMut;
use lapin::BasicProperties;
use lapin::protocol::{AMQPClass, basic, channel, confirm, connection};
use lapin::types::{FieldTable, LongString, ShortString};
use mqbridge_amqp::codec::{self, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::within;

/// The frame-max the raw client asks for in tune-ok (the spec's minimum, so that tests can
/// exceed it cheaply).
pub const FRAME_MAX: u32 = 4096;

pub struct RawClient {
    stream: TcpStream,
    input: BytesMut,
}

impl RawClient {
    /// Opens a TCP connection and sends nothing.
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let stream = within(TcpStream::connect(addr)).await.expect("tcp connect");
        RawClient {
            stream,
            input: BytesMut::new(),
        }
    }

    /// Connects and completes the handshake as guest on vhost `/` with [`FRAME_MAX`] and no
    /// heartbeat, then opens channel 1.
    pub async fn open(addr: SocketAddr) -> RawClient {
        let mut client = RawClient::connect(addr).await;
        client.handshake(0).await;
        client.open_channel(1).await;
        client
    }

    /// Sends the protocol header and answers start and tune; returns once open-ok arrives.
    pub async fn handshake(&mut self, heartbeat_secs: u16) {
        self.send(&codec::PROTOCOL_HEADER).await;
        let (_, start) = self.next_method().await;
        assert!(matches!(
            start,
            AMQPClass::Connection(connection::AMQPMethod::Start(_))
        ));
        let start_ok = connection::StartOk {
            client_properties: FieldTable::default(),
            mechanism: ShortString::from("PLAIN"),
            response: LongString::from("\0guest\0guest"),
            locale: ShortString::from("en_US"),
        };
        self.send_method(
            0,
            connection_method(connection::AMQPMethod::StartOk(start_ok)),
        )
        .await;
        let (_, tune) = self.next_method().await;
        let AMQPClass::Connection(connection::AMQPMethod::Tune(tune)) = tune else {
            panic!("expected connection.tune, got {tune:?}");
        };
        let tune_ok = connection::TuneOk {
            channel_max: tune.channel_max,
            frame_max: FRAME_MAX,
            heartbeat: heartbeat_secs,
        };
        self.send_method(
            0,
            connection_method(connection::AMQPMethod::TuneOk(tune_ok)),
        )
        .await;
        let open = connection::Open {
            virtual_host: ShortString::from("/"),
        };
        self.send_method(0, connection_method(connection::AMQPMethod::Open(open)))
            .await;
        let (_, open_ok) = self.next_method().await;
        assert!(matches!(
            open_ok,
            AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))
        ));
    }

    pub async fn open_channel(&mut self, id: u16) {
        let open = AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}));
        self.send_method(id, open).await;
        let (on, open_ok) = self.next_method().await;
        assert_eq!(on, id);
        assert!(matches!(
            open_ok,
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))
        ));
    }

    /// Puts the channel in confirm mode and waits for select-ok.
    pub async fn confirm_select(&mut self, id: u16) {
        let select = confirm::AMQPMethod::Select(confirm::Select { nowait: false });
        self.send_method(id, AMQPClass::Confirm(select)).await;
        let (_, select_ok) = self.next_method().await;
        assert!(matches!(
            select_ok,
            AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))
        ));
    }

    pub async fn send(&mut self, octets: &[u8]) {
        within(self.stream.write_all(octets))
            .await
            .expect("write to the broker");
    }

    pub async fn send_method(&mut self, channel: u16, method: AMQPClass) {
        let mut out = BytesMut::new();
        codec::encode_method(channel, &method, &mut out).expect("encode");
        self.send(&out).await;
    }

    /// The next frame from the broker, or `None` once it closed the socket.
    pub async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = codec::decode(&mut self.input, 0).expect("broker frames decode") {
                return Some(frame);
            }
            let read = within(self.stream.read_buf(&mut self.input)).await;
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next method frame, skipping heartbeats.
    pub async fn next_method(&mut self) -> (u16, AMQPClass) {
        loop {
            match self.next_frame().await {
                Some(Frame::Method { channel, method }) => return (channel, method),
                Some(Frame::Heartbeat { .. }) => {}
                other => panic!("expected a method frame, got {other:?}"),
            }
        }
    }

    /// Waits for the broker's connection.close, answers close-ok and checks that the broker
    /// then closes the socket. Returns the close for its reply code and text.
    pub async fn expect_connection_close(&mut self) -> connection::Close {
        // Skips methods the broker sent before it saw the bad input.
        let close = loop {
            if let (0, AMQPClass::Connection(connection::AMQPMethod::Close(close))) =
                self.next_method().await
            {
                break close;
            }
        };
        let close_ok = connection::AMQPMethod::CloseOk(connection::CloseOk {});
        // The broker may already have closed the socket (after a framing error it does not
        // wait for close-ok), so a failed write is fine here.
        let mut out = BytesMut::new();
        codec::encode_method(0, &connection_method(close_ok), &mut out).expect("encode");
        let _ = self.stream.write_all(&out).await;
        self.expect_closed().await;
        close
    }

    /// Reads until the broker closes the socket, ignoring any frames still in flight.
    pub async fn expect_closed(&mut self) {
        let mut sink = Vec::new();
        // An error (a reset) also means closed; `within` fails the test if it stays open.
        let _ = within(self.stream.read_to_end(&mut sink)).await;
    }

    /// Reads every octet until the broker closes the socket.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut octets = self.input.split().to_vec();
        within(self.stream.read_to_end(&mut octets))
            .await
            .expect("read until closed");
        octets
    }
}

fn connection_method(method: connection::AMQPMethod) -> AMQPClass {
    AMQPClass::Connection(method)
}

/// Appends a basic.publish of each body to the default exchange with `routing_key`, for one
/// write that the broker reads as a burst.
pub fn encode_publishes(channel: u16, routing_key: &str, bodies: &[&[u8]], out: &mut BytesMut) {
    let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "".into(),
        routing_key: routing_key.into(),
        mandatory: false,
        immediate: false,
    }));
    let properties = BasicProperties::default();
    for body in bodies {
        codec::encode_content(channel, &publish, &properties, body, FRAME_MAX, out)
            .expect("encode");
    }
}

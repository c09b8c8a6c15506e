//! One MQTT 3.1.1 connection: socket halves, packet buffers, CONNECT/CONNACK and SUBSCRIBE.
//!
//! Packets are encoded and decoded with mqbridge's own sans-IO codec
//! (`mqbridge_mqtt::codec`); this module only moves octets between the codec and the socket.
//! Every packet starts with a fixed header (MQTT 3.1.1 section 2.2):
//!
//! ```text
//! byte 1    packet type (bits 7-4) | flags (bits 3-0; PUBLISH: DUP, QoS x2, RETAIN)
//! byte 2..  remaining length, a variable byte integer of 1 to 4 octets, 7 bits each
//! then      remaining-length octets; PUBLISH: topic (u16 length + UTF-8), packet id (u16,
//!           QoS > 0 only), payload
//! ```
//!
//! Deviation from a general client, on purpose: a subscriber does not decode the PUBLISH
//! packets it receives, it only finds their end and packet identifier from the fixed header
//! and the topic length ([`PacketReader::take_fast`]), as the AMQP raw client skips content
//! frames. With 50 subscribers the client receives millions of messages per second, and a
//! full decode (UTF-8 and topic checks, a `String` per message) would make it measure itself.
//! Every other packet goes through `decode`. No MQTT 5, no will, no session resumption. The
//! socket is whatever [`Transport`] connected: TCP, TLS or a WebSocket.

use std::net::SocketAddr;
use std::num::NonZeroU16;

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, BytesMut};
use mqbridge_mqtt::codec::{
    Connect, ConnectProperties, Packet, ProtocolVersion, QoS, Subscribe, Subscription, decode,
    encode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};

use super::transport::{Stream, Transport};

/// The halves of a connected stream.
type ReadSide = ReadHalf<Box<dyn Stream>>;
type WriteSide = WriteHalf<Box<dyn Stream>>;

/// The only version this client speaks; every broker under comparison supports it.
pub const VERSION: ProtocolVersion = ProtocolVersion::V3_1_1;

/// Packet type of PUBLISH in the high nibble of the first octet (spec 2.2.1).
const PUBLISH_TYPE: u8 = 3;

/// Largest packet accepted from a broker: far above the benchmark's messages, small enough
/// that a corrupt length cannot make the client buffer without bound.
const MAX_PACKET_BYTES: u32 = 16 * 1024 * 1024;

/// A variable byte integer has at most four octets (spec 2.2.3).
const VAR_INT_OCTETS_MAX: usize = 4;

/// Packet identifier of the one SUBSCRIBE each connection sends.
const SUBSCRIBE_PACKET_ID: NonZeroU16 = NonZeroU16::MIN;

/// SUBACK return code for a refused subscription (3.1.1 section 3.9.3).
const SUBACK_FAILURE: u8 = 0x80;

/// CONNACK return code "connection accepted" (3.1.1 section 3.2.2.3).
const CONNACK_ACCEPTED: u8 = 0;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub address: SocketAddr,
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: Transport,
}

/// What the fast path found at the front of the read buffer.
#[derive(Debug)]
pub enum Inbound {
    /// A PUBLISH, skipped; its packet identifier when QoS > 0.
    Publish(Option<NonZeroU16>),
    /// Any other packet, decoded; boxed, since a `Packet` is large and these are rare.
    Other(Box<Packet>),
}

/// The read half: a socket and the octets received and not yet taken as packets.
#[derive(Debug)]
pub struct PacketReader {
    socket: ReadSide,
    buffer: BytesMut,
    /// Room made before each read; the read fills at most this much.
    read_bytes: usize,
}

impl PacketReader {
    /// Reads more octets; fails on end of stream. Cancellation-safe (`read_buf` is).
    pub async fn fill(&mut self) -> anyhow::Result<()> {
        // `reserve` moves the unread tail to the front when the allocation is ours alone.
        self.buffer.reserve(self.read_bytes);
        if self.socket.read_buf(&mut self.buffer).await? == 0 {
            bail!("the broker closed the connection");
        }
        Ok(())
    }

    /// Decodes the next whole packet in the buffer, or `None` when more octets are needed.
    pub fn take(&mut self) -> anyhow::Result<Option<Packet>> {
        decode(&mut self.buffer, Some(VERSION), MAX_PACKET_BYTES)
            .map_err(|error| anyhow!("cannot decode a packet from the broker: {error}"))
    }

    /// Returns the next packet, reading as needed.
    pub async fn next(&mut self) -> anyhow::Result<Packet> {
        loop {
            if let Some(packet) = self.take()? {
                return Ok(packet);
            }
            self.fill().await?;
        }
    }

    /// Like [`Self::take`], but skips PUBLISH packets without decoding them.
    pub fn take_fast(&mut self) -> anyhow::Result<Option<Inbound>> {
        let Some(&first) = self.buffer.first() else {
            return Ok(None);
        };
        if first >> 4 != PUBLISH_TYPE {
            return Ok(self.take()?.map(|packet| Inbound::Other(Box::new(packet))));
        }
        let Some((header_bytes, body_bytes)) = fixed_header(&self.buffer)? else {
            return Ok(None);
        };
        let Some(body) = self.buffer.get(header_bytes..header_bytes + body_bytes) else {
            return Ok(None);
        };
        let packet_id = if (first >> 1) & 0b11 == 0 {
            None
        } else {
            Some(publish_packet_id(body)?)
        };
        self.buffer.advance(header_bytes + body_bytes);
        Ok(Some(Inbound::Publish(packet_id)))
    }
}

/// Octets of the fixed header and of the rest of the packet at the front of `buffer`, once
/// the remaining length is complete; `None` while it is not.
fn fixed_header(buffer: &[u8]) -> anyhow::Result<Option<(usize, usize)>> {
    let mut length: usize = 0;
    for index in 0..VAR_INT_OCTETS_MAX {
        let Some(&octet) = buffer.get(1 + index) else {
            return Ok(None);
        };
        length |= usize::from(octet & 0x7F) << (7 * index);
        if octet & 0x80 == 0 {
            if length > MAX_PACKET_BYTES as usize {
                bail!("the broker sent a packet of {length} octets");
            }
            return Ok(Some((2 + index, length)));
        }
    }
    bail!("the broker sent a remaining length longer than 4 octets")
}

/// The packet identifier of a QoS 1 or 2 PUBLISH body: it follows the topic name.
fn publish_packet_id(body: &[u8]) -> anyhow::Result<NonZeroU16> {
    let topic_bytes = match body {
        [high, low, ..] => usize::from(u16::from_be_bytes([*high, *low])),
        _ => bail!("PUBLISH too short for its topic length"),
    };
    let id = match body.get(2 + topic_bytes..4 + topic_bytes) {
        Some(&[high, low]) => u16::from_be_bytes([high, low]),
        _ => bail!("PUBLISH too short for its packet identifier"),
    };
    NonZeroU16::new(id).context("PUBLISH with packet identifier 0")
}

/// The write half: a socket and the encoded packets not yet written.
#[derive(Debug)]
pub struct PacketWriter {
    socket: WriteSide,
    buffer: BytesMut,
}

impl PacketWriter {
    /// Encodes a packet at the end of the write buffer.
    pub fn push(&mut self, packet: &Packet) -> anyhow::Result<()> {
        encode(packet, VERSION, &mut self.buffer)
            .map_err(|error| anyhow!("cannot encode {}: {error}", packet.name()))
    }

    /// Writes the buffered packets, if any, in one go.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.buffer.is_empty() {
            self.socket.write_all(&self.buffer).await?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Writes already encoded packets, bypassing the buffer (the publisher's hot path).
    pub async fn write_encoded(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.socket.write_all(bytes).await?;
        Ok(())
    }

    /// Sends DISCONNECT and shuts the socket's write side: the clean end of an MQTT
    /// connection, which has no reply (3.1.1 section 3.14).
    pub async fn disconnect(mut self) -> anyhow::Result<()> {
        self.push(&Packet::Disconnect(mqbridge_mqtt::codec::Disconnect {
            reason: 0,
            properties: Default::default(),
        }))?;
        self.flush().await?;
        self.socket.shutdown().await?;
        Ok(())
    }
}

/// A connection whose CONNECT the broker accepted.
#[derive(Debug)]
pub struct Connection {
    pub reader: PacketReader,
    pub writer: PacketWriter,
}

impl Connection {
    /// Connects, sends CONNECT (clean session) and waits for a CONNACK that accepts it.
    /// `read_bytes` is the room made before each read: large for a subscriber, tiny for the
    /// thousands of idle connections.
    pub async fn open(
        endpoint: &Endpoint,
        client_id: String,
        keep_alive_seconds: u16,
        read_bytes: usize,
    ) -> anyhow::Result<Self> {
        let socket = endpoint.transport.connect(endpoint.address).await?;
        let (read_half, write_half) = tokio::io::split(socket);
        let mut connection = Self {
            reader: PacketReader {
                socket: read_half,
                buffer: BytesMut::new(),
                read_bytes,
            },
            writer: PacketWriter {
                socket: write_half,
                buffer: BytesMut::new(),
            },
        };
        let connect = Connect {
            version: VERSION,
            client_id,
            clean_start: true,
            keep_alive: keep_alive_seconds,
            username: endpoint.username.clone(),
            password: endpoint.password.clone().map(Into::into),
            will: None,
            properties: ConnectProperties::default(),
        };
        connection
            .writer
            .push(&Packet::Connect(Box::new(connect)))?;
        connection.writer.flush().await?;
        match connection.reader.next().await? {
            Packet::ConnAck(ack) if ack.code == CONNACK_ACCEPTED => Ok(connection),
            Packet::ConnAck(ack) => bail!(
                "the broker refused the connection: CONNACK return code {} \
                 (4 = bad user name or password, 5 = not authorised)",
                ack.code
            ),
            other => bail!("expected CONNACK, got {}", other.name()),
        }
    }

    /// Gives up the buffers and keeps the open socket, for the idle connections.
    pub fn into_sockets(self) -> (ReadSide, WriteSide) {
        (self.reader.socket, self.writer.socket)
    }

    /// Subscribes to `topic` at `qos` and waits for the SUBACK; fails if the broker refuses
    /// or grants a lower QoS, since the scenario would then not be the one asked for.
    pub async fn subscribe(&mut self, topic: &str, qos: QoS) -> anyhow::Result<()> {
        let subscribe = Subscribe {
            packet_id: SUBSCRIBE_PACKET_ID,
            filters: vec![Subscription {
                filter: topic.to_owned(),
                qos,
                no_local: false,
                retain_as_published: false,
                retain_handling: 0,
            }],
            subscription_identifier: None,
            user_properties: Vec::new(),
        };
        self.writer.push(&Packet::Subscribe(subscribe))?;
        self.writer.flush().await?;
        match self.reader.next().await? {
            Packet::SubAck(ack) => match ack.reasons.as_slice() {
                [SUBACK_FAILURE] => bail!("the broker refused the subscription to {topic}"),
                [granted] if *granted == qos as u8 => Ok(()),
                [granted] => bail!("asked for QoS {} on {topic}, granted {granted}", qos as u8),
                other => bail!("SUBACK with {} return codes for one filter", other.len()),
            },
            other => bail!("expected SUBACK, got {}", other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_header_waits_for_the_whole_remaining_length() {
        assert_eq!(fixed_header(&[0x30]).unwrap(), None);
        assert_eq!(fixed_header(&[0x30, 5]).unwrap(), Some((2, 5)));
        assert_eq!(fixed_header(&[0x30, 0x80]).unwrap(), None);
        assert_eq!(fixed_header(&[0x30, 0x80, 0x01]).unwrap(), Some((3, 128)));
        assert!(fixed_header(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }

    #[test]
    fn packet_id_follows_the_topic() {
        let body = [0, 3, b'a', b'/', b'b', 0x12, 0x34, b'x'];
        assert_eq!(publish_packet_id(&body).unwrap().get(), 0x1234);
        assert!(publish_packet_id(&body[..5]).is_err());
    }
}

//! The publisher: one connection publishing one pre-encoded message over and over.
//!
//! The message is encoded once with the codec and copied into a batch buffer of about 64 KiB;
//! the hot loop writes a prefix of it. At QoS 0 nothing else happens: the broker's only way
//! to slow the publisher is TCP backpressure. At QoS 1 each message in the batch gets its own
//! packet identifier, patched into the copy at a fixed offset, and at most `QOS1_WINDOW`
//! messages are unacknowledged: the writer publishes until the window is full and then waits
//! for PUBACKs. The PUBACK reader runs on the same task; the two share a `Settlement`.
//!
//! On stop the publisher waits for the outstanding PUBACKs and sends DISCONNECT, unless it
//! was stopped in the middle of a write the broker was not reading; then it just closes.

use std::num::NonZeroU16;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use mqbridge_mqtt::codec::{Packet, Publish, PublishProperties, QoS, encode};
use tokio::sync::Notify;

use super::connection::{Connection, PacketReader, PacketWriter, VERSION};
use super::{BENCH_KEEP_ALIVE_SECONDS, READ_BUFFER_BYTES, Workload};
use crate::meter::Meter;
use crate::scenario::StopSignal;

/// QoS 1 publishes in flight (sent, not yet PUBACKed): the same window as the AMQP confirm
/// scenarios, many loopback round trips' worth at any rate these brokers reach, and well
/// below the 65,535 packet identifiers, so an identifier is never reused while in flight.
pub const QOS1_WINDOW: u64 = 1000;

/// Bytes per write syscall: about 500 100-byte messages, small enough to stay well inside
/// loopback socket buffers (as the AMQP raw producer).
const PUBLISH_BATCH_BYTES: usize = 64 * 1024;

/// Room for a PUBLISH's packet identifier: two octets (spec 2.3.1).
const PACKET_ID_BYTES: usize = 2;

/// PUBACK state shared by the writer and the reader of the publisher.
#[derive(Debug, Default)]
struct Settlement {
    /// PUBACKs received so far; written by the reader only.
    acked: AtomicU64,
    /// Wakes the writer after `acked` changed.
    changed: Notify,
}

/// Opens the publisher's connection and spawns its task.
pub async fn spawn_publisher(
    workload: Arc<Workload>,
    meter: Arc<Meter>,
    stop: StopSignal,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let client_id = format!("{}-pub", workload.client_id_prefix);
    let connection = Connection::open(
        &workload.endpoint,
        client_id,
        BENCH_KEEP_ALIVE_SECONDS,
        READ_BUFFER_BYTES,
    )
    .await
    .context("publisher connection")?;
    let (message, id_offset) = encode_message(&workload.topic, workload.size, workload.qos)?;
    let Connection { reader, writer } = connection;
    Ok(tokio::spawn(async move {
        let settlement = Settlement::default();
        let writing = publish(
            writer,
            &message,
            id_offset,
            &workload,
            &meter,
            &settlement,
            stop,
        );
        let reading = read_acks(reader, &meter, &settlement);
        // The writer ends the task: it returns once stopped and all PUBACKs are in. The
        // reader only ends on an error (it has nothing to wait for after DISCONNECT).
        tokio::select! {
            written = writing => written,
            read = reading => read.and_then(|()| bail!("the PUBACK reader stopped early")),
        }
    }))
}

/// Encodes the benchmark's PUBLISH; returns it and, at QoS 1, the offset of its packet
/// identifier (which sits right before the payload).
fn encode_message(topic: &str, size: usize, qos: QoS) -> anyhow::Result<(Vec<u8>, usize)> {
    let payload: Bytes = b"abcdefghijklmnopqrstuvwxyz"
        .iter()
        .copied()
        .cycle()
        .take(size)
        .collect();
    let publish = Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.to_owned(),
        packet_id: (qos != QoS::AtMostOnce).then_some(NonZeroU16::MIN),
        payload,
        properties: PublishProperties::default(),
    };
    let mut bytes = BytesMut::new();
    encode(&Packet::Publish(publish), VERSION, &mut bytes)
        .map_err(|error| anyhow::anyhow!("cannot encode the PUBLISH: {error}"))?;
    let id_offset = bytes.len() - size - PACKET_ID_BYTES;
    Ok((bytes.to_vec(), id_offset))
}

/// The writer: publishes batches until stopped, then waits for outstanding PUBACKs and
/// disconnects.
async fn publish(
    mut writer: PacketWriter,
    message: &[u8],
    id_offset: usize,
    workload: &Workload,
    meter: &Meter,
    settlement: &Settlement,
    mut stop: StopSignal,
) -> anyhow::Result<()> {
    let batch_messages = (PUBLISH_BATCH_BYTES / message.len()).max(1);
    let mut batch = message.repeat(batch_messages);
    let window = if workload.qos == QoS::AtMostOnce {
        0
    } else {
        QOS1_WINDOW
    };
    let mut published: u64 = 0;
    let mut next_id: u16 = 0;
    while !*stop.borrow_and_update() {
        let mut allowed = batch_messages as u64;
        if window > 0 {
            let in_flight = published - settlement.acked.load(Ordering::Acquire);
            if in_flight >= window {
                tokio::select! {
                    () = settlement.changed.notified() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            allowed = allowed.min(window - in_flight);
            for index in 0..allowed as usize {
                // Identifiers run 1..=65535 and wrap, skipping 0 [MQTT-2.3.1-1].
                next_id = next_id % u16::MAX + 1;
                let at = index * message.len() + id_offset;
                batch[at..at + PACKET_ID_BYTES].copy_from_slice(&next_id.to_be_bytes());
            }
        }
        tokio::select! {
            written = writer.write_encoded(&batch[..allowed as usize * message.len()]) => written?,
            // A broker that stopped reading (RabbitMQ's flow control under fan-out) would
            // block the stop forever. The write is abandoned mid-packet, so no DISCONNECT can
            // follow: the connection just closes when the task ends.
            _ = stop.changed() => return Ok(()),
        }
        published += allowed;
        meter.published.add(allowed);
    }
    while window > 0 && settlement.acked.load(Ordering::Acquire) < published {
        settlement.changed.notified().await;
    }
    writer.disconnect().await
}

/// The reader: counts PUBACKs, a whole read buffer at a time; ends only with an error.
async fn read_acks(
    mut reader: PacketReader,
    meter: &Meter,
    settlement: &Settlement,
) -> anyhow::Result<()> {
    loop {
        reader.fill().await?;
        let mut acked = 0;
        while let Some(packet) = reader.take()? {
            match packet {
                Packet::PubAck(_) => acked += 1,
                other => bail!("unexpected {} on the publisher's connection", other.name()),
            }
        }
        if acked > 0 {
            settlement.acked.fetch_add(acked, Ordering::Release);
            meter.confirmed.add(acked);
            settlement.changed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_id_offset_points_at_the_identifier() {
        let (bytes, offset) = encode_message("bench/t", 100, QoS::AtLeastOnce).unwrap();
        assert_eq!(bytes[0], 0x32, "PUBLISH, QoS 1");
        assert_eq!(&bytes[offset..offset + 2], &[0, 1]);
        assert_eq!(bytes.len() - offset - 2, 100);
        let (qos0, _) = encode_message("bench/t", 100, QoS::AtMostOnce).unwrap();
        assert_eq!(qos0.len(), bytes.len() - 2, "no identifier at QoS 0");
    }
}

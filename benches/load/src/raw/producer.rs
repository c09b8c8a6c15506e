//! The raw producer: publishes one pre-encoded message over and over, in large batched writes.
//!
//! Every message of a run is the same `basic.publish` + content header + body, so it is
//! encoded once and copied `batch_messages` times into a batch buffer; the hot loop then only
//! writes a prefix of that buffer. The client's cost per message is a fraction of a memcpy,
//! which keeps it far faster than any broker it measures.
//!
//! With a confirm window W (`confirm.select`), at most W messages are unconfirmed: the writer
//! publishes until the window is full, then waits for `basic.ack`/`basic.nack` (single or
//! `multiple`) to settle some. The writer and the confirm reader run concurrently on the
//! producer's task and share a `Settlement` through atomics and a `Notify`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, confirm, connection};
use anyhow::bail;
use tokio::sync::Notify;

use super::connection::{
    CHANNEL, Connection, FRAME_OVERHEAD_BYTES, FrameReader, FrameWriter, close_frame, encode,
};
use crate::meter::Meter;
use crate::scenario::{StopSignal, Workload};

/// Bytes per write syscall: large enough that syscalls cost little per message (about 700
/// 16-byte messages), small enough to stay well inside loopback socket buffers.
const PUBLISH_BATCH_BYTES: usize = 64 * 1024;

/// Opens a producer connection (with `confirm.select` if the workload has a window) and
/// spawns its task.
pub async fn spawn_producer(
    workload: Arc<Workload>,
    meter: Arc<Meter>,
    stop: StopSignal,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let mut connection = Connection::open(&workload.url).await?;
    if workload.confirm_window > 0 {
        let select = confirm::AMQPMethod::Select(confirm::Select { nowait: false });
        match connection.call(AMQPClass::Confirm(select)).await? {
            AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_)) => {}
            other => bail!("expected confirm.select-ok, got {other:?}"),
        }
    }
    let message = encode_message(&workload, connection.frame_max)?;
    let Connection { reader, writer, .. } = connection;
    let settlement = Settlement::default();
    Ok(tokio::spawn(async move {
        let publishing = publish(writer, &message, &workload, &meter, &settlement, stop);
        let confirming = read_confirms(reader, &meter, &settlement);
        // The writer half comes back from `publish` and lives until `close-ok` is read:
        // dropping it earlier would send FIN before the broker answers, and it resets.
        let (_writer, ()) = tokio::try_join!(publishing, confirming)?;
        Ok(())
    }))
}

/// Encodes `basic.publish` to the default exchange, the content header and the body frames.
fn encode_message(workload: &Workload, frame_max: u32) -> anyhow::Result<Vec<u8>> {
    let (queue, size) = (workload.queue.as_str(), workload.size);
    let publish = basic::AMQPMethod::Publish(basic::Publish {
        exchange: "".into(),
        routing_key: queue.into(),
        mandatory: false,
        immediate: false,
    });
    let method = AMQPClass::Basic(publish);
    let header = AMQPContentHeader {
        class_id: method.get_amqp_class_id(),
        body_size: size as u64,
        properties: BasicProperties::default().with_delivery_mode(workload.delivery_mode()),
    };
    let mut bytes = Vec::new();
    encode(&AMQPFrame::Method(CHANNEL, method), &mut bytes)?;
    encode(&AMQPFrame::Header(CHANNEL, header), &mut bytes)?;
    let body: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz"
        .iter()
        .copied()
        .cycle()
        .take(size)
        .collect();
    let chunk_bytes = frame_max as usize - FRAME_OVERHEAD_BYTES;
    for chunk in body.chunks(chunk_bytes) {
        encode(&AMQPFrame::Body(CHANNEL, chunk.to_vec()), &mut bytes)?;
    }
    Ok(bytes)
}

/// Publisher-confirm state shared by the writer and the confirm reader of one producer.
#[derive(Debug, Default)]
struct Settlement {
    /// Messages acked or nacked so far; written by the reader only.
    settled: AtomicU64,
    /// Set by the reader when it stops, so a writer waiting for the window does not hang.
    reader_done: AtomicBool,
    /// Wakes the writer after `settled` or `reader_done` changed.
    changed: Notify,
}

/// The writer: publishes batches until stopped, then waits for outstanding confirms and
/// sends `connection.close`; returns the write half so the caller keeps it open.
async fn publish(
    mut writer: FrameWriter,
    message: &[u8],
    workload: &Workload,
    meter: &Meter,
    settlement: &Settlement,
    mut stop: StopSignal,
) -> anyhow::Result<FrameWriter> {
    let batch_messages = (PUBLISH_BATCH_BYTES / message.len()).max(1);
    let batch = message.repeat(batch_messages);
    let window = u64::from(workload.confirm_window);
    let mut published: u64 = 0;
    let limit = workload.messages_max.unwrap_or(u64::MAX);
    while !*stop.borrow_and_update() && published < limit {
        let mut allowed = (batch_messages as u64).min(limit - published);
        if window > 0 {
            let in_flight = published - settled_or_fail(settlement)?;
            if in_flight >= window {
                tokio::select! {
                    () = settlement.changed.notified() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            allowed = allowed.min(window - in_flight);
        }
        writer
            .write_encoded(&batch[..allowed as usize * message.len()])
            .await?;
        published += allowed;
        meter.published.add(allowed);
    }
    while window > 0 && settled_or_fail(settlement)? < published {
        settlement.changed.notified().await;
    }
    writer.push(&close_frame())?;
    writer.flush().await?;
    Ok(writer)
}

/// Reads the settled count, failing if the confirm reader has stopped (the broker closed).
fn settled_or_fail(settlement: &Settlement) -> anyhow::Result<u64> {
    if settlement.reader_done.load(Ordering::Acquire) {
        bail!("the connection closed while messages were unconfirmed");
    }
    Ok(settlement.settled.load(Ordering::Acquire))
}

/// The confirm reader: settles `basic.ack`/`basic.nack` until `connection.close-ok`.
async fn read_confirms(
    mut reader: FrameReader,
    meter: &Meter,
    settlement: &Settlement,
) -> anyhow::Result<()> {
    let mut tracker = ConfirmTracker::default();
    let outcome = loop {
        let (delivery_tag, multiple) = match reader.next_method().await {
            Ok((_, AMQPClass::Basic(basic::AMQPMethod::Ack(ack)))) => {
                (ack.delivery_tag, ack.multiple)
            }
            Ok((_, AMQPClass::Basic(basic::AMQPMethod::Nack(nack)))) => {
                eprintln!(
                    "producer: the broker nacked delivery tag {}",
                    nack.delivery_tag
                );
                (nack.delivery_tag, nack.multiple)
            }
            Ok((0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))) => break Ok(()),
            Ok(_) => continue,
            Err(error) => break Err(error),
        };
        let newly_settled = tracker.settle(delivery_tag, multiple);
        settlement
            .settled
            .fetch_add(newly_settled, Ordering::Release);
        meter.confirmed.add(newly_settled);
        settlement.changed.notify_one();
    };
    settlement.reader_done.store(true, Ordering::Release);
    settlement.changed.notify_one();
    outcome
}

/// Counts settled delivery tags, whether confirms come one by one, with `multiple`, or out of
/// order: `through` is the highest tag below which all are settled, `beyond` the settled tags
/// above it.
#[derive(Debug, Default)]
struct ConfirmTracker {
    through: u64,
    beyond: BTreeSet<u64>,
}

impl ConfirmTracker {
    /// Records a confirm and returns how many messages it newly settled.
    fn settle(&mut self, delivery_tag: u64, multiple: bool) -> u64 {
        let before = self.settled();
        if multiple {
            self.through = self.through.max(delivery_tag);
            let through = self.through;
            self.beyond.retain(|&tag| tag > through);
        } else if delivery_tag > self.through {
            self.beyond.insert(delivery_tag);
        }
        while self.beyond.remove(&(self.through + 1)) {
            self.through += 1;
        }
        self.settled() - before
    }

    fn settled(&self) -> u64 {
        self.through + self.beyond.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_tracker_counts_single_multiple_and_out_of_order_confirms() {
        let mut tracker = ConfirmTracker::default();
        assert_eq!(tracker.settle(1, false), 1);
        assert_eq!(tracker.settle(3, false), 1);
        assert_eq!(
            tracker.settle(3, false),
            0,
            "a repeated confirm settles nothing"
        );
        assert_eq!(tracker.settle(5, true), 3, "tags 2, 4 and 5");
        assert_eq!(tracker.settle(4, false), 0);
        assert_eq!(tracker.settle(6, false), 1);
        assert_eq!(tracker.settled(), 6);
    }

    #[test]
    fn durable_workloads_publish_persistent_messages() {
        let transient = encode_message(&workload(16, false), 131_072).unwrap();
        let persistent = encode_message(&workload(16, true), 131_072).unwrap();
        assert_eq!(transient.len(), persistent.len());
        let differing: Vec<(u8, u8)> = transient
            .iter()
            .zip(&persistent)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (*a, *b))
            .collect();
        assert_eq!(differing, [(1, 2)], "only the delivery-mode octet differs");
    }

    fn workload(size: usize, durable: bool) -> Workload {
        Workload {
            url: String::new(),
            queue: "q".to_owned(),
            size,
            confirm_window: 0,
            durable,
            messages_max: None,
        }
    }

    #[test]
    fn message_is_method_header_and_body_frames() {
        let bytes = encode_message(&workload(16, false), 131_072).unwrap();
        assert_eq!(bytes[0], 1, "starts with a method frame");
        assert_eq!(bytes.last(), Some(&0xCE), "ends with a frame end");
        let body_frame = &bytes[bytes.len() - 24..];
        assert_eq!(
            &body_frame[..7],
            &[3, 0, 1, 0, 0, 0, 16],
            "one 16-byte body frame"
        );
    }

    #[test]
    fn large_bodies_are_split_at_frame_max() {
        let bytes = encode_message(&workload(100, false), 64).unwrap();
        let body_frames = 100usize.div_ceil(64 - FRAME_OVERHEAD_BYTES);
        let last_frame_bytes = 100 % (64 - FRAME_OVERHEAD_BYTES) + FRAME_OVERHEAD_BYTES;
        assert_eq!(body_frames, 2);
        assert_eq!(
            bytes[bytes.len() - last_frame_bytes],
            3,
            "the last frame is a body frame"
        );
    }
}

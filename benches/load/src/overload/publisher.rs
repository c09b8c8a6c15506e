//! The flood's publishers and the recovery probe.
//!
//! A publisher is the raw producer (`crate::raw`) with three differences: every message
//! carries its id (`MessageId`, patched into a pre-encoded batch before each write), every
//! confirm is recorded per message in the `Ledger`, and the connection announces the
//! `connection.blocked` capability so that the broker says when its memory alarm holds the
//! publisher back (`FlowClock`). Messages are persistent (`delivery-mode` 2) and the queue is
//! durable, so a confirm means "on disk".
//!
//! While blocked, the broker stops reading the publisher's socket: the writer's `write_all`
//! waits in the kernel, which is the point. A publisher told to stop therefore finishes only
//! once the broker reads again (after the drain has begun) and has confirmed everything.
//!
//! Runs on one tokio task per publisher: the writer and the confirm reader are joined on it
//! and share a `Settlement` through atomics and a `Notify`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, confirm, connection};
use anyhow::{Context, bail};
use tokio::sync::Notify;

use super::flow::FlowClock;
use super::ledger::{Ledger, MessageId};
use crate::meter::Meter;
use crate::raw::connection::{
    CHANNEL, Capabilities, Connection, FRAME_OVERHEAD_BYTES, FrameReader, FrameWriter, close_frame,
    encode,
};
use crate::scenario::{ClientTask, StopSignal};

/// Bytes per write syscall, as the raw producer: about 60 messages of 1 KiB.
const PUBLISH_BATCH_BYTES: usize = 64 * 1024;

/// AMQP `delivery-mode` of a persistent message.
const DELIVERY_MODE_PERSISTENT: u8 = 2;

/// Publisher index the recovery probe writes in its message id: no flood publisher has it,
/// and the probe's message is never consumed.
const PROBE_PUBLISHER: u32 = u32::MAX;

/// What every publisher of the flood shares, read-only.
#[derive(Debug)]
pub struct Flood {
    pub url: String,
    pub queue: String,
    /// Body size in bytes, at least `MessageId::WIRE_BYTES`.
    pub size: usize,
    /// Unconfirmed messages allowed per publisher.
    pub confirm_window: u32,
}

/// The shared records the publishers write to.
#[derive(Debug, Clone)]
pub struct Records {
    pub ledger: Arc<Mutex<Ledger>>,
    pub flow: Arc<FlowClock>,
    pub meter: Arc<Meter>,
}

/// Opens publisher `index` (with `confirm.select`) and spawns its task.
pub async fn spawn_publisher(
    index: u32,
    flood: Arc<Flood>,
    records: Records,
    stop: StopSignal,
) -> anyhow::Result<ClientTask> {
    let connection = open_confirming(&flood.url).await?;
    let message = Template::new(&flood, connection.frame_max)?;
    let Connection { reader, writer, .. } = connection;
    let settlement = Settlement::default();
    Ok(tokio::spawn(async move {
        let publishing = publish(writer, message, index, &flood, &records, &settlement, stop);
        let confirming = read_confirms(reader, index, &records, &settlement);
        // The write half lives until `close-ok` is read, or the broker would see a reset.
        let (_writer, ()) = tokio::try_join!(publishing, confirming)?;
        Ok(())
    }))
}

/// Opens a connection that understands `connection.blocked` and selects confirms.
async fn open_confirming(url: &str) -> anyhow::Result<Connection> {
    let capabilities = Capabilities {
        connection_blocked: true,
    };
    let mut connection = Connection::open_with(url, capabilities).await?;
    let select = confirm::AMQPMethod::Select(confirm::Select { nowait: false });
    match connection.call(AMQPClass::Confirm(select)).await? {
        AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_)) => Ok(connection),
        other => bail!("expected confirm.select-ok, got {other:?}"),
    }
}

/// One encoded message (publish + header + one body frame) and where its id goes.
#[derive(Debug, Clone)]
struct Template {
    bytes: Vec<u8>,
    id_offset: usize,
}

impl Template {
    fn new(flood: &Flood, frame_max: u32) -> anyhow::Result<Self> {
        let size = flood.size;
        if size < MessageId::WIRE_BYTES || size + FRAME_OVERHEAD_BYTES > frame_max as usize {
            // One body frame per message keeps the consumer's id reading trivial.
            bail!(
                "--size must be between {} and {} bytes (one body frame)",
                MessageId::WIRE_BYTES,
                frame_max as usize - FRAME_OVERHEAD_BYTES
            );
        }
        let publish = basic::AMQPMethod::Publish(basic::Publish {
            exchange: "".into(),
            routing_key: flood.queue.as_str().into(),
            mandatory: false,
            immediate: false,
        });
        let method = AMQPClass::Basic(publish);
        let header = AMQPContentHeader {
            class_id: method.get_amqp_class_id(),
            body_size: size as u64,
            properties: BasicProperties::default().with_delivery_mode(DELIVERY_MODE_PERSISTENT),
        };
        let mut bytes = Vec::new();
        encode(&AMQPFrame::Method(CHANNEL, method), &mut bytes)?;
        encode(&AMQPFrame::Header(CHANNEL, header), &mut bytes)?;
        let body: Vec<u8> = b"overload".iter().copied().cycle().take(size).collect();
        encode(&AMQPFrame::Body(CHANNEL, body), &mut bytes)?;
        // The body ends one octet (the frame-end) before the end of the message.
        let id_offset = bytes.len() - 1 - size;
        Ok(Self { bytes, id_offset })
    }

    /// Writes `id` into the copy of the message at `slot` of a batch.
    fn stamp(&self, batch: &mut [u8], slot: usize, id: MessageId) {
        let start = slot * self.bytes.len() + self.id_offset;
        id.encode(&mut batch[start..start + MessageId::WIRE_BYTES]);
    }
}

/// Publisher-confirm state shared by the writer and the confirm reader of one publisher.
#[derive(Debug, Default)]
struct Settlement {
    /// Messages acked or nacked so far; written by the reader only.
    settled: AtomicU64,
    /// Set by the reader when it stops, so a writer waiting for the window does not hang.
    reader_done: AtomicBool,
    /// Wakes the writer after `settled` or `reader_done` changed.
    changed: Notify,
}

impl Settlement {
    /// The settled count, or an error once the confirm reader has stopped.
    fn settled_or_fail(&self) -> anyhow::Result<u64> {
        if self.reader_done.load(Ordering::Acquire) {
            bail!("the connection closed while messages were unconfirmed");
        }
        Ok(self.settled.load(Ordering::Acquire))
    }
}

/// The writer: publishes numbered batches under the confirm window until stopped, waits for
/// every confirm, sends `connection.close` and returns the write half.
async fn publish(
    mut writer: FrameWriter,
    message: Template,
    index: u32,
    flood: &Flood,
    records: &Records,
    settlement: &Settlement,
    mut stop: StopSignal,
) -> anyhow::Result<FrameWriter> {
    let message_bytes = message.bytes.len();
    let batch_messages = (PUBLISH_BATCH_BYTES / message_bytes).max(1);
    let mut batch = message.bytes.repeat(batch_messages);
    let window = u64::from(flood.confirm_window.max(1));
    let mut published: u64 = 0;
    while !*stop.borrow_and_update() {
        let in_flight = published - settlement.settled_or_fail()?;
        if in_flight >= window {
            tokio::select! {
                () = settlement.changed.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let allowed = (batch_messages as u64).min(window - in_flight);
        for slot in 0..allowed {
            let sequence = published + slot + 1;
            let id = MessageId {
                publisher: index,
                sequence,
            };
            message.stamp(&mut batch, slot as usize, id);
        }
        writer
            .write_encoded(&batch[..allowed as usize * message_bytes])
            .await?;
        published += allowed;
        records.meter.published.add(allowed);
    }
    while settlement.settled_or_fail()? < published {
        settlement.changed.notified().await;
    }
    writer.push(&close_frame())?;
    writer.flush().await?;
    Ok(writer)
}

/// The confirm reader: records acks and nacks in the ledger and blocked/unblocked in the flow
/// clock until `connection.close-ok`.
async fn read_confirms(
    mut reader: FrameReader,
    index: u32,
    records: &Records,
    settlement: &Settlement,
) -> anyhow::Result<()> {
    let mut blocked = false;
    let outcome = loop {
        let (tag, multiple, acked) = match reader.next_method().await {
            Ok((_, AMQPClass::Basic(basic::AMQPMethod::Ack(ack)))) => {
                (ack.delivery_tag, ack.multiple, true)
            }
            Ok((_, AMQPClass::Basic(basic::AMQPMethod::Nack(nack)))) => {
                (nack.delivery_tag, nack.multiple, false)
            }
            Ok((0, AMQPClass::Connection(method))) => match method {
                connection::AMQPMethod::Blocked(_) if !blocked => {
                    blocked = true;
                    records.flow.blocked();
                    continue;
                }
                connection::AMQPMethod::Unblocked(_) if blocked => {
                    blocked = false;
                    records.flow.unblocked();
                    continue;
                }
                connection::AMQPMethod::CloseOk(_) => break Ok(()),
                _ => continue,
            },
            Ok(_) => continue,
            Err(error) => break Err(error),
        };
        let settled = lock(&records.ledger).settle(index, tag, multiple, acked);
        settlement.settled.fetch_add(settled, Ordering::Release);
        records.meter.confirmed.add(settled);
        settlement.changed.notify_one();
    };
    if blocked {
        records.flow.unblocked();
    }
    settlement.reader_done.store(true, Ordering::Release);
    settlement.changed.notify_one();
    outcome
}

/// Locks the ledger; a panic elsewhere leaves it consistent (each update is one call).
pub fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the recovery probe saw.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// From the call until the broker confirmed the probe's message.
    pub confirmed_after: Duration,
    /// The broker sent `connection.blocked` to the probe (the alarm was still set).
    pub told_blocked: bool,
}

/// Opens a fresh publisher, publishes one persistent message to the flood's queue and waits
/// for its confirm, for at most `bound`.
pub async fn probe(flood: &Flood, bound: Duration) -> anyhow::Result<Probe> {
    let started = Instant::now();
    let mut told_blocked = false;
    let probing = async {
        let mut connection = open_confirming(&flood.url).await?;
        let message = Template::new(flood, connection.frame_max)?;
        let mut bytes = message.bytes.clone();
        let id = MessageId {
            publisher: PROBE_PUBLISHER,
            sequence: 1,
        };
        message.stamp(&mut bytes, 0, id);
        connection.writer.write_encoded(&bytes).await?;
        loop {
            match connection.reader.next_method().await? {
                (_, AMQPClass::Basic(basic::AMQPMethod::Ack(_))) => break,
                (_, AMQPClass::Basic(basic::AMQPMethod::Nack(_))) => {
                    bail!("the broker nacked the probe's message")
                }
                (0, AMQPClass::Connection(connection::AMQPMethod::Blocked(_))) => {
                    told_blocked = true;
                }
                _ => {}
            }
        }
        let confirmed_after = started.elapsed();
        connection.close().await?;
        anyhow::Ok(confirmed_after)
    };
    let confirmed_after = tokio::time::timeout(bound, probing)
        .await
        .with_context(|| format!("the probe's message was not confirmed within {bound:?}"))??;
    Ok(Probe {
        confirmed_after,
        told_blocked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flood(size: usize) -> Flood {
        Flood {
            url: String::new(),
            queue: "q".to_owned(),
            size,
            confirm_window: 1,
        }
    }

    #[test]
    fn stamped_ids_land_at_the_front_of_each_body() {
        let message = Template::new(&flood(64), 131_072).unwrap();
        let mut batch = message.bytes.repeat(3);
        let id = MessageId {
            publisher: 2,
            sequence: 9,
        };
        message.stamp(&mut batch, 1, id);
        let second = &batch[message.bytes.len()..2 * message.bytes.len()];
        let body = &second[second.len() - 1 - 64..second.len() - 1];
        assert_eq!(MessageId::decode(body), Some(id));
        assert_eq!(
            &batch[..message.bytes.len()],
            &message.bytes[..],
            "slot 0 untouched"
        );
        assert_eq!(second.last(), Some(&0xCE), "the frame-end is intact");
    }

    #[test]
    fn sizes_outside_one_body_frame_are_refused() {
        assert!(Template::new(&flood(MessageId::WIRE_BYTES - 1), 131_072).is_err());
        assert!(Template::new(&flood(200), 128).is_err());
        assert!(Template::new(&flood(120), 128).is_ok());
    }
}

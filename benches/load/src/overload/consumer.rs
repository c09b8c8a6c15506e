//! The flood's consumers: one slow consumer during the flood, one fast one for the drain.
//!
//! Both are the raw consumer (`crate::raw`) reading the message id at the front of each body
//! (`FrameReader::take_with_body`) into the `Ledger`, once per socket read. They differ only
//! in pace: the slow one has a small prefetch and waits `ack_delay` per message before acking
//! what it read, so it drains a trickle while the publishers flood; the fast one acks
//! everything it read at once after each read.
//!
//! A delivery counts as received once its body is read; acks (`multiple=true`) only ever
//! cover deliveries whose body was read, so a delivery in flight when the consumer stops is
//! left unacked and returns to the queue instead of being acked unseen.
//!
//! Runs on one tokio task per consumer, which owns both halves of its connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, basic};
use amq_protocol::types::FieldTable;
use anyhow::bail;

use super::ledger::{Ledger, MessageId};
use super::publisher::lock;
use crate::meter::Meter;
use crate::raw::connection::{Connection, Inbound, fail_if_closed};
use crate::scenario::{ClientTask, StopSignal};

/// How a consumer acks.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Waits this long per message read before acking them.
    Slow { ack_delay: Duration },
    /// Acks every read at once.
    Fast,
}

/// Opens a consumer on `queue` with `prefetch` and spawns its task.
pub async fn spawn_consumer(
    url: &str,
    queue: &str,
    prefetch: u16,
    pace: Pace,
    ledger: Arc<Mutex<Ledger>>,
    meter: Arc<Meter>,
    stop: StopSignal,
) -> anyhow::Result<ClientTask> {
    let mut connection = Connection::open(url).await?;
    let qos = basic::Qos {
        prefetch_count: prefetch,
        global: false,
    };
    match connection
        .call(AMQPClass::Basic(basic::AMQPMethod::Qos(qos)))
        .await?
    {
        AMQPClass::Basic(basic::AMQPMethod::QosOk(_)) => {}
        other => bail!("expected basic.qos-ok, got {other:?}"),
    }
    let consume = basic::Consume {
        queue: queue.into(),
        consumer_tag: "".into(),
        no_local: false,
        no_ack: false,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    };
    let consumer_tag = match connection
        .call(AMQPClass::Basic(basic::AMQPMethod::Consume(consume)))
        .await?
    {
        AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok)) => ok.consumer_tag.to_string(),
        other => bail!("expected basic.consume-ok, got {other:?}"),
    };
    Ok(tokio::spawn(async move {
        let connection = receive(connection, pace, &ledger, &meter, stop).await?;
        cancel_and_close(connection, &consumer_tag).await
    }))
}

/// Receives, records and acks until stopped; returns the connection for the clean stop.
async fn receive(
    mut connection: Connection,
    pace: Pace,
    ledger: &Mutex<Ledger>,
    meter: &Meter,
    mut stop: StopSignal,
) -> anyhow::Result<Connection> {
    let mut walk = Walk::default();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return Ok(connection),
            filled = connection.reader.fill() => filled?,
        }
        walk.ids.clear();
        let acked_before = walk.read_through;
        walk.take_all(&mut connection)?;
        lock(ledger).receive(&walk.ids)?;
        meter.consumed.add(walk.ids.len() as u64);
        if walk.read_through == acked_before {
            continue;
        }
        if let Pace::Slow { ack_delay } = pace {
            tokio::time::sleep(ack_delay * walk.ids.len() as u32).await;
        }
        let ack = basic::Ack {
            delivery_tag: walk.read_through,
            multiple: true,
        };
        connection
            .writer
            .push_method(AMQPClass::Basic(basic::AMQPMethod::Ack(ack)))?;
        connection.writer.flush().await?;
    }
}

/// What one walk over the read buffer found.
#[derive(Debug, Default)]
struct Walk {
    /// Ids of the bodies read in this walk.
    ids: Vec<MessageId>,
    /// Delivery tag of the last `basic.deliver` seen, whose body may not have arrived yet.
    announced: u64,
    /// Delivery tag of the last delivery whose body was read: what may be acked.
    read_through: u64,
}

impl Walk {
    /// Takes every complete frame in the read buffer.
    fn take_all(&mut self, connection: &mut Connection) -> anyhow::Result<()> {
        let mut malformed = false;
        loop {
            let ids = &mut self.ids;
            let before = ids.len();
            let taken = connection
                .reader
                .take_with_body(|body| match MessageId::decode(body) {
                    Some(id) => ids.push(id),
                    None => malformed = true,
                })?;
            if malformed {
                bail!("a delivery's body is too short to carry a message id");
            }
            if ids.len() > before {
                self.read_through = self.announced;
            }
            match taken {
                None => return Ok(()),
                Some(Inbound::Method(_, method)) => self.on_method(method)?,
                Some(Inbound::Content | Inbound::Heartbeat) => {}
            }
        }
    }

    fn on_method(&mut self, method: AMQPClass) -> anyhow::Result<()> {
        fail_if_closed(&method)?;
        match method {
            AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver)) => {
                self.announced = deliver.delivery_tag;
                Ok(())
            }
            AMQPClass::Basic(basic::AMQPMethod::Cancel(_)) => {
                bail!("the broker cancelled the consumer (was the queue deleted?)")
            }
            other => bail!("unexpected method while consuming: {other:?}"),
        }
    }
}

/// Cancels the subscription, waits for `cancel-ok`, then closes the connection. Deliveries
/// that arrive meanwhile are not acked: they return to the queue.
async fn cancel_and_close(mut connection: Connection, consumer_tag: &str) -> anyhow::Result<()> {
    let cancel = basic::Cancel {
        consumer_tag: consumer_tag.into(),
        nowait: false,
    };
    connection
        .writer
        .push_method(AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel)))?;
    connection.writer.flush().await?;
    loop {
        if let (_, AMQPClass::Basic(basic::AMQPMethod::CancelOk(_))) =
            connection.reader.next_method().await?
        {
            break;
        }
    }
    connection.close().await
}

//! The raw consumer: `basic.qos` + `basic.consume` with manual acks, acking with `multiple`.
//!
//! Runs on its own task, which owns both halves of its connection. Each socket read brings in
//! many deliveries; the task walks them, queues one `basic.ack` (`multiple=true`) per
//! `ACK_EVERY` deliveries, and writes the queued acks in one write after the walk. On stop it
//! sends `basic.cancel`, waits for `cancel-ok` and closes the connection; deliveries still in
//! flight are left unacked and return to the queue, which is deleted next.

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, basic};
use amq_protocol::types::FieldTable;
use anyhow::bail;

use super::connection::{Connection, Inbound, fail_if_closed};
use crate::meter::Meter;
use crate::scenario::{ACK_EVERY, PREFETCH_COUNT, StopSignal, Workload};

/// Opens a consumer connection, subscribes to the workload's queue and spawns its task.
pub async fn spawn_consumer(
    workload: Arc<Workload>,
    meter: Arc<Meter>,
    stop: StopSignal,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let mut connection = Connection::open(&workload.url).await?;
    let qos = basic::Qos {
        prefetch_count: PREFETCH_COUNT,
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
        queue: workload.queue.as_str().into(),
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
        let connection = receive(connection, &meter, stop).await?;
        cancel_and_close(connection, &consumer_tag).await
    }))
}

/// Deliveries received and not yet acked.
#[derive(Debug, Default)]
struct AckState {
    last_delivery_tag: u64,
    unacked: u64,
}

/// Receives and acks deliveries until stopped; returns the connection for the clean stop.
async fn receive(
    mut connection: Connection,
    meter: &Meter,
    mut stop: StopSignal,
) -> anyhow::Result<Connection> {
    let mut acks = AckState::default();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return Ok(connection),
            filled = connection.reader.fill() => filled?,
        }
        let delivered = take_deliveries(&mut connection, &mut acks)?;
        meter.consumed.add(delivered);
        connection.writer.flush().await?;
    }
}

/// Walks the complete frames in the read buffer, queueing acks; returns the deliveries seen.
fn take_deliveries(connection: &mut Connection, acks: &mut AckState) -> anyhow::Result<u64> {
    let mut delivered = 0;
    while let Some(inbound) = connection.reader.take()? {
        let Inbound::Method(_, method) = inbound else {
            continue;
        };
        fail_if_closed(&method)?;
        match method {
            AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver)) => {
                delivered += 1;
                acks.last_delivery_tag = deliver.delivery_tag;
                acks.unacked += 1;
                if acks.unacked >= ACK_EVERY {
                    let ack = basic::Ack {
                        delivery_tag: acks.last_delivery_tag,
                        multiple: true,
                    };
                    connection
                        .writer
                        .push_method(AMQPClass::Basic(basic::AMQPMethod::Ack(ack)))?;
                    acks.unacked = 0;
                }
            }
            AMQPClass::Basic(basic::AMQPMethod::Cancel(_)) => {
                bail!("the broker cancelled the consumer (was the queue deleted?)")
            }
            other => bail!("unexpected method while consuming: {other:?}"),
        }
    }
    Ok(delivered)
}

/// Cancels the subscription, waits for `cancel-ok`, then closes the connection.
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
        // Deliveries sent before the broker saw the cancel still arrive; they are skipped.
        if let (_, AMQPClass::Basic(basic::AMQPMethod::CancelOk(_))) =
            connection.reader.next_method().await?
        {
            break;
        }
    }
    connection.close().await
}

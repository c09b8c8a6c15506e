//! A subscriber: one connection subscribed to the benchmark topic, counting what it receives.
//!
//! Each socket read brings in many PUBLISH packets; the task walks them without decoding
//! (see `connection`), queues one PUBACK per QoS 1 message, and writes the queued PUBACKs in
//! one write after the walk. MQTT has no cumulative acknowledgement, so at QoS 1 the
//! subscriber sends as many PUBACKs as it receives messages, but in one syscall per read.
//! On stop it disconnects; messages still in flight are dropped with the clean session.

use std::sync::Arc;

use anyhow::{Context, bail};
use mqbridge_mqtt::codec::{Ack, AckProperties, Packet};

use super::connection::{Connection, Inbound};
use super::{BENCH_KEEP_ALIVE_SECONDS, READ_BUFFER_BYTES, Workload};
use crate::meter::{Meter, PaddedCounter};
use crate::scenario::StopSignal;

/// Opens subscriber `index`, subscribes it and spawns its task, which adds what it receives
/// to `received` (its own counter) and to the meter's total.
pub async fn spawn_subscriber(
    index: usize,
    workload: Arc<Workload>,
    meter: Arc<Meter>,
    received: Arc<PaddedCounter>,
    stop: StopSignal,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let client_id = format!("{}-sub{index}", workload.client_id_prefix);
    let mut connection = Connection::open(
        &workload.endpoint,
        client_id,
        BENCH_KEEP_ALIVE_SECONDS,
        READ_BUFFER_BYTES,
    )
    .await
    .with_context(|| format!("subscriber {index} connection"))?;
    connection
        .subscribe(&workload.topic, workload.qos)
        .await
        .with_context(|| format!("subscriber {index}"))?;
    Ok(tokio::spawn(async move {
        let connection = receive(connection, &meter, &received, stop).await?;
        connection.writer.disconnect().await
    }))
}

/// Receives and acknowledges messages until stopped; returns the connection for the clean
/// stop.
async fn receive(
    mut connection: Connection,
    meter: &Meter,
    received: &PaddedCounter,
    mut stop: StopSignal,
) -> anyhow::Result<Connection> {
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return Ok(connection),
            filled = connection.reader.fill() => filled?,
        }
        let count = take_messages(&mut connection)?;
        received.add(count);
        meter.consumed.add(count);
        connection.writer.flush().await?;
    }
}

/// Walks the whole packets in the read buffer, queueing PUBACKs; returns the messages seen.
fn take_messages(connection: &mut Connection) -> anyhow::Result<u64> {
    let mut count = 0;
    while let Some(inbound) = connection.reader.take_fast()? {
        match inbound {
            Inbound::Publish(packet_id) => {
                count += 1;
                if let Some(packet_id) = packet_id {
                    connection.writer.push(&Packet::PubAck(Ack {
                        packet_id,
                        reason: 0,
                        properties: AckProperties::default(),
                    }))?;
                }
            }
            Inbound::Other(packet) => match *packet {
                Packet::PingResp => {}
                other => bail!("unexpected {} on a subscriber's connection", other.name()),
            },
        }
    }
    Ok(count)
}

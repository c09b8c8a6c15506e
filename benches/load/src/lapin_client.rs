//! The same producer and consumer on lapin, a general-purpose AMQP client.
//!
//! Kept as a cross-check: if the raw client and lapin give the broker the same figure, the
//! broker is the bottleneck; if lapin gives less, lapin is. lapin's `basic_publish` waits
//! until its I/O loop has written the frames, so the producer keeps many publishes in flight
//! at once (`PUBLISH_PIPELINE_DEPTH`, or the confirm window) to give lapin its best chance.
//!
//! Each producer and consumer owns its lapin connection; lapin runs its own I/O loop beside
//! the task spawned here.

use std::sync::Arc;

use anyhow::Context;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::meter::Meter;
use crate::scenario::{ACK_EVERY, PREFETCH_COUNT, StopSignal, Workload};

/// Publishes kept in flight without confirms; one at a time lapin waits for its I/O loop on
/// every message, and past a few hundred the pipeline no longer raises its rate.
const PUBLISH_PIPELINE_DEPTH: usize = 1000;

/// AMQP reply code of a normal close.
const REPLY_SUCCESS: u16 = 200;

async fn open_channel(url: &str) -> anyhow::Result<(Connection, Channel)> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .with_context(|| format!("lapin: connecting to {url}"))?;
    let channel = connection.create_channel().await?;
    Ok((connection, channel))
}

/// Opens a producer connection and spawns its task.
pub async fn spawn_producer(
    workload: Arc<Workload>,
    meter: Arc<Meter>,
    stop: StopSignal,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let (connection, channel) = open_channel(&workload.url).await?;
    if workload.confirm_window > 0 {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
    }
    Ok(tokio::spawn(async move {
        publish(&channel, &workload, &meter, stop).await?;
        connection
            .close(REPLY_SUCCESS, "benchmark done".into())
            .await?;
        Ok(())
    }))
}

/// Keeps up to the confirm window (or `PUBLISH_PIPELINE_DEPTH`) publishes in flight until
/// stopped, then waits for those still in flight.
async fn publish(
    channel: &Channel,
    workload: &Workload,
    meter: &Meter,
    stop: StopSignal,
) -> anyhow::Result<()> {
    let payload = vec![b'x'; workload.size];
    let confirms = workload.confirm_window > 0;
    let in_flight_max = if confirms {
        workload.confirm_window as usize
    } else {
        PUBLISH_PIPELINE_DEPTH
    };
    let publish_one = || async {
        let properties = BasicProperties::default().with_delivery_mode(workload.delivery_mode());
        let options = BasicPublishOptions::default();
        let routing_key = workload.queue.as_str().into();
        let confirm = channel
            .basic_publish("".into(), routing_key, options, &payload, properties)
            .await?;
        meter.published.add(1);
        if confirms {
            confirm.await?;
            meter.confirmed.add(1);
        }
        anyhow::Ok(())
    };
    let mut in_flight = FuturesUnordered::new();
    while !*stop.borrow() {
        while in_flight.len() < in_flight_max {
            in_flight.push(publish_one());
        }
        if let Some(outcome) = in_flight.next().await {
            outcome?;
        }
    }
    while let Some(outcome) = in_flight.next().await {
        outcome?;
    }
    Ok(())
}

/// Opens a consumer connection, subscribes and spawns its task.
pub async fn spawn_consumer(
    workload: Arc<Workload>,
    meter: Arc<Meter>,
    mut stop: StopSignal,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let (connection, channel) = open_channel(&workload.url).await?;
    channel
        .basic_qos(PREFETCH_COUNT, BasicQosOptions::default())
        .await?;
    let options = BasicConsumeOptions::default();
    let queue = workload.queue.as_str().into();
    let mut consumer = channel
        .basic_consume(queue, "".into(), options, FieldTable::default())
        .await?;
    Ok(tokio::spawn(async move {
        let mut unacked = 0;
        loop {
            let delivery = tokio::select! {
                biased;
                _ = stop.changed() => break,
                delivery = consumer.next() => delivery.context("the consumer stream ended")??,
            };
            meter.consumed.add(1);
            unacked += 1;
            if unacked >= ACK_EVERY {
                let options = BasicAckOptions { multiple: true };
                channel.basic_ack(delivery.delivery_tag, options).await?;
                unacked = 0;
            }
        }
        channel
            .basic_cancel(consumer.tag(), BasicCancelOptions::default())
            .await?;
        connection
            .close(REPLY_SUCCESS, "benchmark done".into())
            .await?;
        Ok(())
    }))
}

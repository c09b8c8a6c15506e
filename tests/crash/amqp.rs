//! The AMQP side of the crash tests: a publisher with confirms and a consumer acking some of
//! its deliveries run against the broker until it is killed; after the restart, `verify`
//! drains the queue and compares it with what the clients were told.
//!
//! The model lives behind a `std::sync::Mutex` shared by the two client tasks and the test;
//! it is never held across an `.await`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use rand::Rng;

use crate::process::BrokerProcess;

const EXCHANGE: &str = "crash-main";
const QUEUE: &str = "crash-main";
const KEY: &str = "m";
/// Unconfirmed publishes in flight: enough that group commit batches many messages per sync,
/// few enough that a kill leaves a readable number unconfirmed.
const IN_FLIGHT_MAX: usize = 64;
/// Deliveries the concurrent consumer holds unacked, so some are in flight at the kill.
const PREFETCH: u16 = 50;
/// Bound on every wait for the broker, so a hung broker fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(10);
/// Bound on the clients' own stop after the kill (their sockets fail at once).
const CLIENT_STOP: Duration = Duration::from_secs(5);

/// What the clients were told, and so what the broker must have after a restart.
#[derive(Debug, Default)]
pub struct Model {
    next_id: u64,
    /// Confirmed publishes not seen since (each is in the queue, or acknowledged).
    confirmed: BTreeSet<u64>,
    /// Acks sent by the concurrent consumer: the broker may or may not have processed them.
    ack_sent: BTreeSet<u64>,
    /// Acked during the last verification, and processed (the queue was empty after), but
    /// not yet behind a confirmed publish in the journal.
    drained: BTreeSet<u64>,
    /// Acknowledged messages whose removal is behind a confirmed publish: never to return.
    settled: BTreeSet<u64>,
    /// Cycles whose exchange, queue and binding a confirmed publish followed.
    definitions: Vec<u64>,
    confirms_total: u64,
}

pub type SharedModel = Arc<Mutex<Model>>;

impl Model {
    pub fn shared() -> SharedModel {
        Arc::new(Mutex::new(Model::default()))
    }

    fn confirm(&mut self, id: u64) {
        self.confirmed.insert(id);
        self.confirms_total += 1;
        // This publish was sent after the drained acks were processed, so its Enqueue
        // follows their Removes in the journal, and its sync made them durable.
        self.settled.append(&mut self.drained);
    }
}

fn lock(model: &SharedModel) -> std::sync::MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn assert_made_progress(model: &SharedModel) {
    let model = lock(model);
    eprintln!(
        "{} confirms, {} settled acks, {} cycles' definitions checked",
        model.confirms_total,
        model.settled.len(),
        model.definitions.len()
    );
    assert!(
        model.confirms_total > 0 && !model.settled.is_empty(),
        "no confirm or no settled ack in the whole run: the test checked nothing ({} confirms)",
        model.confirms_total
    );
}

async fn connect(url: &str) -> lapin::Result<(Connection, Channel)> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    Ok((connection, channel))
}

async fn declare(channel: &Channel, exchange: &str, queue: &str, key: &str) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let kind = ExchangeKind::Direct;
    let no_arguments = FieldTable::default;
    channel
        .exchange_declare(exchange.into(), kind, durable, no_arguments())
        .await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), durable, no_arguments())
        .await?;
    let bind = QueueBindOptions::default();
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            bind,
            no_arguments(),
        )
        .await
}

/// Declares the durable exchange, queue and binding every cycle publishes through.
pub async fn define_main(url: &str) {
    let (_connection, channel) = connect(url).await.expect("connect");
    declare(&channel, EXCHANGE, QUEUE, KEY)
        .await
        .expect("main definitions");
}

/// Publishes `count` persistent messages of `size` bytes to the main queue, waiting for the
/// confirms of every 32: the journal then gets many small writes, not one large one, and a
/// small segment size gives several segments.
pub async fn publish_confirmed(url: &str, count: usize, size: usize) {
    const ROUND: usize = 32;
    let (_connection, channel) = connect(url).await.expect("connect");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let body = vec![b'x'; size];
    for round in 0..count.div_ceil(ROUND) {
        let mut confirms = Vec::with_capacity(ROUND);
        for _ in 0..ROUND.min(count - round * ROUND) {
            let options = BasicPublishOptions::default();
            let sent =
                channel.basic_publish(EXCHANGE.into(), KEY.into(), options, &body, persistent());
            confirms.push(sent.await.expect("publish"));
        }
        for confirm in confirms {
            let confirmation = confirm.await.expect("confirm");
            assert!(
                matches!(confirmation, Confirmation::Ack(None)),
                "{confirmation:?}"
            );
        }
    }
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

/// The clients of one cycle, running until the broker dies.
pub struct Workload {
    publisher: tokio::task::JoinHandle<Result<(), String>>,
    consumer: tokio::task::JoinHandle<()>,
}

impl Workload {
    pub fn spawn(url: &str, cycle: u64, model: &SharedModel) -> Workload {
        let (url_p, model_p) = (url.to_owned(), Arc::clone(model));
        let (url_c, model_c) = (url.to_owned(), Arc::clone(model));
        Workload {
            publisher: tokio::spawn(async move { publish(&url_p, cycle, &model_p).await }),
            consumer: tokio::spawn(async move { consume(&url_c, &model_c).await }),
        }
    }

    /// Waits for both clients to notice the kill; a publisher that saw a nack or a returned
    /// message fails the test.
    pub async fn finish(self) {
        let published = tokio::time::timeout(CLIENT_STOP, self.publisher)
            .await
            .expect("the publisher stops once the broker is gone")
            .expect("publisher task");
        if let Err(error) = published {
            panic!("{error}");
        }
        // The consumer reports nothing the checks need (it records an ack before sending
        // it), so one that lapin leaves waiting on a dead socket is stopped, not waited for.
        let consumer = self.consumer.abort_handle();
        if tokio::time::timeout(CLIENT_STOP, self.consumer)
            .await
            .is_err()
        {
            consumer.abort();
        }
    }
}

/// Declares this cycle's own definitions, then publishes persistent messages with confirms
/// until the connection fails. `Err` only for what the broker must never say.
async fn publish(url: &str, cycle: u64, model: &SharedModel) -> Result<(), String> {
    let Ok((_connection, channel)) = connect(url).await else {
        return Ok(());
    };
    if channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .is_err()
    {
        return Ok(());
    }
    match define_cycle(&channel, cycle).await {
        Ok(true) => lock(model).definitions.push(cycle),
        Ok(false) => return Err(format!("cycle {cycle}: marker returned on a fresh binding")),
        Err(_) => return Ok(()),
    }
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < IN_FLIGHT_MAX {
            let id = {
                let mut model = lock(model);
                model.next_id += 1;
                model.next_id
            };
            let body = id.to_string();
            let options = BasicPublishOptions::default();
            let sent = channel
                .basic_publish(
                    EXCHANGE.into(),
                    KEY.into(),
                    options,
                    body.as_bytes(),
                    persistent(),
                )
                .await;
            let Ok(confirm) = sent else { return Ok(()) };
            in_flight.push(async move { (id, confirm.await) });
        }
        match in_flight.next().await {
            Some((id, Ok(Confirmation::Ack(None)))) => lock(model).confirm(id),
            Some((id, Ok(other))) => return Err(format!("message {id}: {other:?}")),
            Some((_, Err(_))) | None => return Ok(()),
        }
    }
}

/// Declares `crash-x-{cycle}` -> `crash-q-{cycle}` and publishes one persistent mandatory
/// marker through it; `Ok(true)` once confirmed and routed.
async fn define_cycle(channel: &Channel, cycle: u64) -> lapin::Result<bool> {
    let (exchange, queue, key) = cycle_names(cycle);
    declare(channel, &exchange, &queue, &key).await?;
    routed_marker(channel, &exchange, &key).await
}

fn cycle_names(cycle: u64) -> (String, String, String) {
    (
        format!("crash-x-{cycle}"),
        format!("crash-q-{cycle}"),
        format!("k{cycle}"),
    )
}

/// Publishes a mandatory persistent message; `true` if confirmed and not returned.
async fn routed_marker(channel: &Channel, exchange: &str, key: &str) -> lapin::Result<bool> {
    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirmation = channel
        .basic_publish(
            exchange.into(),
            key.into(),
            mandatory,
            b"marker",
            persistent(),
        )
        .await?
        .await?;
    Ok(matches!(confirmation, Confirmation::Ack(None)))
}

/// Consumes the main queue with manual acks, acking about half of the deliveries and
/// leaving the rest unacked, until the connection fails.
async fn consume(url: &str, model: &SharedModel) {
    let Ok((_connection, channel)) = connect(url).await else {
        return;
    };
    if channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .is_err()
    {
        return;
    }
    let consuming = channel
        .basic_consume(
            QUEUE.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await;
    let Ok(mut consumer) = consuming else { return };
    while let Some(Ok(delivery)) = consumer.next().await {
        if !rand::rng().random_bool(0.5) {
            continue;
        }
        let id = parse_id(&delivery.data);
        // Recorded before sending: once the ack may be on its way, the message may be gone.
        lock(model).ack_sent.insert(id);
        if delivery.ack(BasicAckOptions::default()).await.is_err() {
            return;
        }
    }
}

fn parse_id(body: &[u8]) -> u64 {
    std::str::from_utf8(body)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("a message nobody published: {body:?}"))
}

/// Checks the restarted broker against the model, leaves the main queue empty and returns
/// the updated model for the next cycle.
pub async fn verify(broker: &BrokerProcess, cycle: u64, model: SharedModel) -> SharedModel {
    let url = broker.amqp_url();
    let (connection, channel) = connect(&url).await.expect("connect after restart");
    let definitions = lock(&model).definitions.clone();
    check_definitions(&channel, &definitions).await;
    let found = drain(&channel).await;
    {
        let mut model = lock(&model);
        check_drained(&model, &found, cycle);
        model.confirmed.clear();
        model.ack_sent.clear();
        model.drained = found.into_iter().collect();
    }
    connection
        .close(200, "verified".into())
        .await
        .expect("close");
    assert_queue_empty(&url).await;
    model
}

/// Every definition a confirmed publish followed is back: exchange, queue, and the binding
/// (a mandatory publish through it is routed, not returned).
async fn check_definitions(channel: &Channel, cycles: &[u64]) {
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Direct,
            passive,
            FieldTable::default(),
        )
        .await
        .expect("the main exchange is back");
    for &cycle in cycles {
        let (exchange, queue, key) = cycle_names(cycle);
        let routed = routed_marker(channel, &exchange, &key).await;
        assert!(
            matches!(routed, Ok(true)),
            "cycle {cycle}: {exchange} -> {queue} ({key}) is not back: {routed:?}"
        );
    }
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    for &cycle in cycles {
        let queue = cycle_names(cycle).1;
        let declared = channel.queue_declare(queue.as_str().into(), passive, FieldTable::default());
        let declared = declared
            .await
            .unwrap_or_else(|e| panic!("{queue} is gone: {e}"));
        assert!(
            declared.message_count() >= 1,
            "{queue} lost its confirmed marker"
        );
    }
}

/// Takes every message of the main queue (all are ready after a restart) and acks them.
async fn drain(channel: &Channel) -> Vec<u64> {
    let passive = QueueDeclareOptions {
        durable: true,
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare(QUEUE.into(), passive, FieldTable::default())
        .await
        .expect("the main queue is back");
    let count = queue.message_count() as usize;
    let mut found = Vec::with_capacity(count);
    if count == 0 {
        return found;
    }
    channel
        .basic_qos(1000, BasicQosOptions::default())
        .await
        .expect("qos");
    let options = BasicConsumeOptions::default();
    let mut consumer = channel
        .basic_consume(
            QUEUE.into(),
            "verify".into(),
            options,
            FieldTable::default(),
        )
        .await
        .expect("consume");
    while found.len() < count {
        let delivery = tokio::time::timeout(WAIT, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {count} messages delivered", found.len()))
            .expect("consumer open")
            .expect("delivery");
        found.push(parse_id(&delivery.data));
        if found.len() % 500 == 0 || found.len() == count {
            let multiple = BasicAckOptions { multiple: true };
            delivery.ack(multiple).await.expect("ack");
        }
    }
    found
}

/// No loss, nothing invented, no copies, and settled acks stay settled.
fn check_drained(model: &Model, found: &[u64], cycle: u64) {
    let mut seen = BTreeSet::new();
    for &id in found {
        assert!(
            id >= 1 && id <= model.next_id,
            "cycle {cycle}: message {id} was never published"
        );
        assert!(
            seen.insert(id),
            "cycle {cycle}: message {id} is twice in the queue"
        );
        assert!(
            !model.settled.contains(&id),
            "cycle {cycle}: message {id} came back although its ack was durable"
        );
    }
    let lost: Vec<u64> = model
        .confirmed
        .iter()
        .filter(|id| !seen.contains(id) && !model.ack_sent.contains(id))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "cycle {cycle}: {} confirmed, unacknowledged messages lost after kill -9 (first: {:?}); \
         {} confirmed this cycle, {} found",
        lost.len(),
        &lost[..lost.len().min(10)],
        model.confirmed.len(),
        found.len()
    );
}

/// The drained acks were processed: nothing came back to the queue when the channel closed.
async fn assert_queue_empty(url: &str) {
    let (_connection, channel) = connect(url).await.expect("connect");
    let passive = QueueDeclareOptions {
        durable: true,
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let queue = channel
            .queue_declare(QUEUE.into(), passive, FieldTable::default())
            .await
            .expect("passive declare");
        if queue.message_count() == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} drained and acked messages are back in the queue",
            queue.message_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! The bystander of the hostile-input tests: a well-behaved AMQP client that stored messages
//! before a hostile case ran and keeps a live consumer during it. After the case,
//! [`Bystander::check`] proves that the broker still serves that client and lost nothing it had
//! confirmed: the point of every hostile case is "the offender gets the protocol's error, and
//! nobody else notices".

use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer};

use super::{Broker, eventually, next_delivery, within};

/// Messages the bystander stores before each case.
pub const STORED: usize = 5;

/// The durable queue holding the bystander's stored messages.
const STORE_QUEUE: &str = "bystander-store";
/// The queue the bystander's consumer listens on.
const LIVE_QUEUE: &str = "bystander-live";

/// How soon a refusal must arrive when the broker has to answer from a declared length alone.
/// Far below every server timeout (handshake, keep-alive, HTTP header), so a broker that waits
/// for the declared body instead of refusing fails the test.
pub const PROMPT: Duration = Duration::from_secs(2);

pub struct Bystander {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
    bodies: Vec<Vec<u8>>,
    rounds: u32,
}

impl Bystander {
    /// Connects, stores [`STORED`] persistent messages in a durable queue (each confirmed, so on
    /// disk) and starts a consumer on a second queue.
    pub async fn start(broker: &Broker) -> Bystander {
        let connection = broker.connect().await;
        let channel = within(connection.create_channel()).await.expect("channel");
        within(channel.confirm_select(ConfirmSelectOptions::default()))
            .await
            .expect("confirm.select");
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        for queue in [STORE_QUEUE, LIVE_QUEUE] {
            within(channel.queue_declare(queue.into(), durable, FieldTable::default()))
                .await
                .expect("queue.declare");
        }
        let bodies: Vec<Vec<u8>> = (0..STORED)
            .map(|n| format!("stored message {n}").into_bytes())
            .collect();
        for body in &bodies {
            publish_confirmed(&channel, STORE_QUEUE, body).await;
        }
        let consumer = within(channel.basic_consume(
            LIVE_QUEUE.into(),
            "bystander".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        ))
        .await
        .expect("basic.consume");
        Bystander {
            connection,
            channel,
            consumer,
            bodies,
            rounds: 0,
        }
    }

    /// Asserts that the bystander's connection still publishes and receives a message round
    /// trip, and that the durable queue still holds exactly the stored messages.
    pub async fn check(&mut self) {
        assert!(
            self.connection.status().connected(),
            "the bystander's connection was closed"
        );
        self.rounds += 1;
        let marker = format!("round trip {}", self.rounds).into_bytes();
        publish_confirmed(&self.channel, LIVE_QUEUE, &marker).await;
        let delivery = next_delivery(&mut self.consumer).await;
        assert_eq!(
            delivery.data, marker,
            "the bystander's consumer got another message"
        );
        self.assert_stored().await;
    }

    /// Takes every stored message without acknowledging it, compares the bodies, and hands
    /// them back by closing the channel that holds them.
    async fn assert_stored(&self) {
        let channel = within(self.connection.create_channel())
            .await
            .expect("channel");
        let mut found = Vec::new();
        let options = BasicGetOptions { no_ack: false };
        while let Some(message) = within(channel.basic_get(STORE_QUEUE.into(), options))
            .await
            .expect("basic.get")
        {
            found.push(message.delivery.data);
        }
        found.sort();
        let mut expected = self.bodies.clone();
        expected.sort();
        assert_eq!(found, expected, "the durable queue lost or gained messages");
        within(channel.close(200, "checked".into()))
            .await
            .expect("channel.close");
        // The close requeues them; the next check (or case) must find them all again.
        eventually("the stored messages are back in their queue", || {
            self.ready_count_is(STORED)
        })
        .await;
    }

    async fn ready_count_is(&self, count: usize) -> bool {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let queue = within(self.channel.queue_declare(
            STORE_QUEUE.into(),
            passive,
            FieldTable::default(),
        ))
        .await
        .expect("passive queue.declare");
        usize::try_from(queue.message_count()).is_ok_and(|n| n == count)
    }
}

/// Publishes a persistent message to `queue` and waits for the broker's confirm.
async fn publish_confirmed(channel: &Channel, queue: &str, body: &[u8]) {
    let persistent = BasicProperties::default().with_delivery_mode(2);
    let confirm = within(async {
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                persistent,
            )
            .await
            .expect("basic.publish")
            .await
            .expect("confirm")
    })
    .await;
    assert!(confirm.is_ack(), "the broker refused to store: {confirm:?}");
}

/// Awaits `future`, failing the test unless it finishes within [`PROMPT`]: for refusals that
/// must come from a declared length alone, without waiting for the body or a timeout.
pub async fn promptly<F: std::future::Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(PROMPT, future).await {
        Ok(output) => output,
        Err(_) => panic!("no prompt answer to {what}: the broker waited instead of refusing"),
    }
}

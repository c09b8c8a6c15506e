//! Frames from a logged-in client: SEND, ACK and NACK, the transaction frames, DISCONNECT, and
//! the dispatch that gives every frame its receipt or its ERROR.

use std::sync::Arc;

use mqbridge_broker_api::Settlement;

use super::{Connection, Violation};
use crate::codec::{Command, Frame, Version};
use crate::destination::Destination;
use crate::session::{Pending, parse_message_id};
use crate::translate;

impl Connection {
    /// Handles one frame: its receipt is owed once it is done (a SEND's once its queues have
    /// the message); any violation ends the connection with an ERROR frame.
    pub(super) async fn on_frame(&mut self, frame: Frame) {
        let receipt = frame.header("receipt").map(str::to_owned);
        if self.version.is_none() {
            // CONNECT has no receipt: CONNECTED is its answer.
            if let Err(violation) = self.on_connect(&frame) {
                self.fail(violation, receipt);
            }
            return;
        }
        match self.dispatch(&frame, receipt.is_some()).await {
            Ok(confirm) => match (receipt, confirm) {
                (Some(receipt), Some(confirm)) => self.receipts.after_confirm(receipt, confirm),
                (Some(receipt), None) => self.receipts.ready(receipt),
                (None, _) => {}
            },
            Err(violation) => return self.fail(violation, receipt),
        }
        self.release_receipts();
    }

    /// Runs a frame. `Some(confirm)`: the receipt waits for that publish confirm.
    async fn dispatch(&mut self, frame: &Frame, receipt: bool) -> Result<Option<u64>, Violation> {
        match frame.command {
            Command::Send => return self.on_send(frame, receipt).await,
            Command::Subscribe => self.on_subscribe(frame).await?,
            Command::Unsubscribe => self.on_unsubscribe(frame).await?,
            Command::Ack | Command::Nack => self.on_ack(frame).await?,
            Command::Begin => self.transactions.begin(transaction(frame)?)?,
            Command::Commit => self.on_commit(frame, receipt).await?,
            Command::Abort => drop(self.transactions.end(transaction(frame)?)?),
            Command::Disconnect => self.disconnecting = true,
            Command::Connect | Command::Stomp => {
                return Err(Violation::new(
                    "already connected",
                    "a second CONNECT on one connection",
                ));
            }
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                return Err(Violation::new(
                    "unexpected frame",
                    format!("{} is a frame only servers send", frame.command),
                ));
            }
        }
        Ok(None)
    }

    /// SEND: published now, or held by its transaction until COMMIT.
    async fn on_send(&mut self, frame: &Frame, receipt: bool) -> Result<Option<u64>, Violation> {
        if let Some(id) = frame.header("transaction") {
            // Checked now, so that the error names this frame rather than the COMMIT.
            send_destination(frame)?;
            self.transactions.add(id, frame.clone())?;
            return Ok(None);
        }
        self.publish(frame, receipt).await
    }

    /// Routes a SEND and publishes it to every queue it reaches. With `confirm`, returns the
    /// id of the confirm that says all of them have it.
    async fn publish(&mut self, frame: &Frame, confirm: bool) -> Result<Option<u64>, Violation> {
        let destination = send_destination(frame)?;
        let (exchange, key) = destination.publish_target().ok_or_else(|| {
            Violation::new(
                "invalid destination",
                "a /temp-queue/ destination can only be named in reply-to",
            )
        })?;
        self.check_send_target(&destination, frame)?;
        let reply_to = self.reply_to(frame).await?;
        let opened = self.opened_mut()?;
        let sent = translate::Sent {
            exchange,
            routing_key: key,
            reply_to,
            user: &opened.user,
        };
        let message = translate::message_in(frame, sent)
            .map_err(|error| Violation::new("invalid header", error.to_string()))?;
        let mut routes = std::mem::take(&mut opened.routes);
        let headers = &message.properties.headers;
        if let Err(error) = opened.vhost.route(exchange, key, headers, &mut routes) {
            opened.routes = routes;
            return Err(Violation::broker(&error));
        }
        opened.published = true;
        let id = confirm.then(|| opened.next_confirm());
        let ticket = id.and_then(|id| opened.confirms.tickets(id, routes.len()));
        let message = Arc::new(message);
        for queue in routes.drain(..) {
            queue.publish(Arc::clone(&message), ticket.clone()).await;
        }
        opened.routes = routes;
        if let Some(report) = &self.report {
            report.published();
        }
        Ok(id)
    }

    /// ACK or NACK: settled now, or held by its transaction until COMMIT.
    async fn on_ack(&mut self, frame: &Frame) -> Result<(), Violation> {
        if let Some(id) = frame.header("transaction") {
            let number = self.ack_number(frame)?;
            if !self.unacked.contains(number) {
                return Err(unknown_ack(frame));
            }
            return Ok(self.transactions.add(id, frame.clone())?);
        }
        self.settle(frame, false).await
    }

    /// Settles what an ACK or NACK names. In a COMMIT (`committing`), a delivery that is no
    /// longer pending (its subscription ended since) is skipped rather than an error.
    async fn settle(&mut self, frame: &Frame, committing: bool) -> Result<(), Violation> {
        let number = self.ack_number(frame)?;
        let taken = self.unacked.take(number);
        let Some(&Pending { consumer, .. }) = taken.first() else {
            return match committing {
                true => Ok(()),
                false => Err(unknown_ack(frame)),
            };
        };
        // Everything one ACK takes belongs to one subscription (see `Unacked::take`).
        debug_assert!(taken.iter().all(|p| p.consumer == consumer));
        let settlement = match frame.command {
            Command::Ack => Settlement::Ack,
            _ => nack_settlement(frame),
        };
        let opened = self.opened_mut()?;
        let queue = opened
            .by_consumer
            .get(&consumer)
            .and_then(|id| opened.subscriptions.get(id))
            .map(|s| Arc::clone(&s.queue));
        if let Some(queue) = queue {
            let tags = taken.iter().map(|p| p.tag).collect();
            queue.settle(consumer, tags, settlement).await;
        }
        if let Some(report) = self
            .report
            .as_ref()
            .filter(|_| settlement == Settlement::Ack)
        {
            report.acknowledged(taken.len());
        }
        Ok(())
    }

    /// The delivery number an ACK or NACK names: by `id` in STOMP 1.2, by `message-id`
    /// before; either is accepted from any version.
    fn ack_number(&self, frame: &Frame) -> Result<u64, Violation> {
        let (primary, other) = match self.version {
            Some(Version::V1_2) => ("id", "message-id"),
            _ => ("message-id", "id"),
        };
        let text = frame
            .header(primary)
            .or_else(|| frame.header(other))
            .ok_or_else(|| Violation::missing(frame.command, primary))?;
        parse_message_id(self.id.0, text).ok_or_else(|| unknown_ack(frame))
    }

    /// COMMIT: runs the transaction's frames in order. With a receipt, the receipt also waits
    /// for every SEND's confirm.
    async fn on_commit(&mut self, frame: &Frame, receipt: bool) -> Result<(), Violation> {
        let frames = self.transactions.end(transaction(frame)?)?;
        for held in &frames {
            match held.command {
                Command::Send => {
                    if let Some(confirm) = self.publish(held, receipt).await? {
                        self.receipts.wait(confirm);
                    }
                }
                Command::Ack | Command::Nack => self.settle(held, true).await?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Sends the receipts that may go, in order; a DISCONNECT's was the last owed.
    pub(super) fn release_receipts(&mut self) {
        for receipt in self.receipts.release() {
            self.send(&Frame::new(Command::Receipt).with("receipt-id", receipt));
        }
        if self.disconnecting && self.receipts.is_empty() {
            self.close();
        }
    }

    pub(super) fn opened_mut(&mut self) -> Result<&mut super::Opened, Violation> {
        self.opened
            .as_mut()
            .ok_or_else(|| Violation::new("not connected", "no session is open"))
    }
}

/// A SEND's destination, parsed.
fn send_destination(frame: &Frame) -> Result<Destination, Violation> {
    let text = frame
        .header("destination")
        .ok_or_else(|| Violation::missing(Command::Send, "destination"))?;
    Destination::parse(text)
        .map_err(|error| Violation::new("invalid destination", error.to_string()))
}

/// The `transaction` header BEGIN, COMMIT and ABORT need.
fn transaction(frame: &Frame) -> Result<&str, Violation> {
    frame
        .header("transaction")
        .ok_or_else(|| Violation::missing(frame.command, "transaction"))
}

/// What a NACK does: RabbitMQ's `requeue` header decides when present; without it the queue
/// dead-letters the message if it has a dead-letter exchange, else requeues it.
fn nack_settlement(frame: &Frame) -> Settlement {
    match frame.header("requeue") {
        Some("false") => Settlement::Reject,
        Some(_) => Settlement::Requeue,
        None => Settlement::DeadLetterOrRequeue,
    }
}

fn unknown_ack(frame: &Frame) -> Violation {
    let id = frame
        .header("id")
        .or_else(|| frame.header("message-id"))
        .unwrap_or_default();
    Violation::new(
        "unknown message id",
        format!(
            "{} of '{id}', which is no delivery awaiting acknowledgement on this connection",
            frame.command
        ),
    )
}

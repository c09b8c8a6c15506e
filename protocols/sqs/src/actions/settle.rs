//! DeleteMessage, ChangeMessageVisibility and their batch forms: what a receipt handle does to
//! its lease (see `crate::leases`).
//!
//! Deviation from AWS, chosen for safety: a handle whose lease ended by timeout is refused
//! (ReceiptHandleIsInvalid) instead of AWS's silent success that deletes nothing, so a consumer
//! learns that it lost the message. A handle whose message was already deleted succeeds, as on
//! AWS, so that retried deletes are harmless.

use std::time::Duration;

use mqbridge_broker_api::Settlement;
use serde_json::{Value, json};

use crate::actions::batch;
use crate::actions::receive::VISIBILITY_SECONDS_MAX;
use crate::error::{ErrorKind, SqsError};
use crate::leases::{Lease, LeaseMiss, Receipt};
use crate::params::Params;
use crate::service::SqsService;

pub async fn delete_message(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    delete_one(service, &queue.name, params.required("ReceiptHandle")?).await?;
    Ok(json!({}))
}

pub async fn delete_message_batch(
    service: &SqsService,
    params: &mut Params,
) -> Result<Value, SqsError> {
    let entries = batch::entries(params)?;
    let queue = service.resolve(params)?;
    let (mut successful, mut failed) = (Vec::new(), Vec::new());
    let mut acks = Acks::default();
    for (id, entry) in entries {
        let outcome = entry
            .required("ReceiptHandle")
            .and_then(|handle| release(service, &queue.name, handle));
        match outcome {
            Ok(lease) => {
                acks.add(lease);
                successful.push(json!({"Id": id}));
            }
            Err(error) => failed.push(batch::failure(&id, &error)),
        }
    }
    acks.settle().await;
    Ok(batch::result(successful, failed))
}

/// The deliveries a DeleteMessageBatch acknowledges, by the consumer that owns them: one
/// settle per owner instead of one round trip to the queue per message.
#[derive(Default)]
struct Acks(Vec<(Lease, Vec<u64>)>);

impl Acks {
    fn add(&mut self, released: Option<(Lease, u64)>) {
        let Some((lease, tag)) = released else {
            return;
        };
        match self
            .0
            .iter_mut()
            .find(|(held, _)| held.owner == lease.owner)
        {
            Some((_, tags)) => tags.push(tag),
            None => self.0.push((lease, vec![tag])),
        }
    }

    async fn settle(self) {
        for (lease, tags) in self.0 {
            lease.queue.settle(lease.owner, tags, Settlement::Ack).await;
        }
    }
}

pub async fn change_visibility(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let queue = service.resolve(params)?;
    let timeout = params
        .integer("VisibilityTimeout", 0..=VISIBILITY_SECONDS_MAX)?
        .ok_or_else(|| SqsError::missing("VisibilityTimeout"))?;
    change_one(
        service,
        &queue.name,
        params.required("ReceiptHandle")?,
        timeout,
    )
    .await?;
    Ok(json!({}))
}

pub async fn change_visibility_batch(
    service: &SqsService,
    params: &mut Params,
) -> Result<Value, SqsError> {
    let entries = batch::entries(params)?;
    let queue = service.resolve(params)?;
    let (mut successful, mut failed) = (Vec::new(), Vec::new());
    for (id, entry) in entries {
        let outcome = async {
            let timeout = entry
                .integer("VisibilityTimeout", 0..=VISIBILITY_SECONDS_MAX)?
                .ok_or_else(|| SqsError::missing("VisibilityTimeout"))?;
            let handle = entry.required("ReceiptHandle")?;
            change_one(service, &queue.name, handle, timeout).await
        }
        .await;
        match outcome {
            Ok(()) => successful.push(json!({"Id": id})),
            Err(error) => failed.push(batch::failure(&id, &error)),
        }
    }
    Ok(batch::result(successful, failed))
}

fn decode(queue: &str, handle: &str) -> Result<Receipt, SqsError> {
    Receipt::decode(handle)
        .filter(|r| r.queue == queue)
        .ok_or_else(|| {
            SqsError::new(
                ErrorKind::ReceiptHandleIsInvalid,
                format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
            )
        })
}

async fn delete_one(service: &SqsService, queue: &str, handle: &str) -> Result<(), SqsError> {
    if let Some((lease, tag)) = release(service, queue, handle)? {
        lease
            .queue
            .settle(lease.owner, vec![tag], Settlement::Ack)
            .await;
    }
    Ok(())
}

/// Ends the lease a delete's handle names; returns it and its delivery tag for the caller to
/// settle `Ack`, or `None` if the message was deleted already.
fn release(
    service: &SqsService,
    queue: &str,
    handle: &str,
) -> Result<Option<(Lease, u64)>, SqsError> {
    let receipt = decode(queue, handle)?;
    match service.leases.take(&receipt) {
        Ok(lease) => {
            service.forget_first_receive(&lease.message_id);
            Ok(Some((lease, receipt.tag)))
        }
        Err(LeaseMiss::Unknown) => Ok(None),
        Err(LeaseMiss::Ended) => Err(SqsError::new(
            ErrorKind::ReceiptHandleIsInvalid,
            format!("The receipt handle \"{handle}\" has expired."),
        )),
    }
}

/// Moves a lease's deadline. Timeout 0 ends the lease here and now, so that the message is
/// visible when the answer arrives (and, on a FIFO queue, its group is free).
async fn change_one(
    service: &SqsService,
    queue: &str,
    handle: &str,
    timeout_secs: i64,
) -> Result<(), SqsError> {
    let receipt = decode(queue, handle)?;
    let not_in_flight = || {
        SqsError::new(
            ErrorKind::MessageNotInflight,
            "The message referred to isn't in flight.",
        )
    };
    if timeout_secs == 0 {
        let lease = service.leases.end(&receipt).map_err(|_| not_in_flight())?;
        lease
            .queue
            .settle(lease.owner, vec![receipt.tag], Settlement::Requeue)
            .await;
        return Ok(());
    }
    let timeout = Duration::from_secs(u64::try_from(timeout_secs).unwrap_or(0));
    service
        .leases
        .extend(&receipt, timeout)
        .map_err(|_| not_in_flight())
}

//! Message move tasks (dead-letter queue redrive): the table of tasks, and the task that moves
//! one dead-letter queue's messages.
//!
//! A task takes the source's ready messages with the core's `get` (owned by the task until
//! settled), publishes each to its destination with a confirm, and acks it on the source only
//! once the destination has stored it, so a message is never lost and at worst moved twice (a
//! crash between the two steps). It moves at most the number of messages the source held when
//! it started (AWS's ApproximateNumberOfMessagesToMove), so messages that fail again and come
//! back to the dead-letter queue while it runs are not moved in a loop.
//!
//! The destination is the task's DestinationArn, or else the queue each message was
//! dead-lettered from: the receive path stamps that queue's ARN in
//! [`DEAD_LETTER_SOURCE_HEADER`] when it moves a message to a dead-letter queue. A message
//! without the header (sent to the dead-letter queue directly, or by another protocol) has no
//! source to return to; the task stops there as FAILED and the message stays in the queue.
//!
//! Each task runs on its own tokio task and ends when it has moved its count, when the source
//! is empty, when cancelled, or at broker shutdown. The table is a `std::sync::Mutex`, never
//! held across an `.await`; it lives in memory, so tasks are forgotten at a restart (their
//! unsettled messages are ready again in the dead-letter queue).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mqbridge_broker_api::{
    BrokerError, ConsumerId, Delivery, HeaderValue, Message, QueueHandle, Settlement,
};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::delay::MoverContext;
use crate::error::{ErrorKind, SqsError};
use crate::fifo::{SEQUENCE_HEADER, next_sequence_number};
use crate::service::{new_uuid, now_ms, publish_confirmed};

/// The header naming, by ARN, the queue a dead-lettered message was moved from.
pub const DEAD_LETTER_SOURCE_HEADER: &str = "x-sqs-dead-letter-source";
/// Finished tasks remembered per source queue: ListMessageMoveTasks shows at most 10.
const FINISHED_REMEMBERED_MAX: usize = 10;
/// Messages taken and published at once when no rate is set: enough to share one journal sync
/// among many messages, few enough that a cancel takes effect soon.
const BATCH_MAX: usize = 100;
/// AWS's FailureReason when a queue the task needs is gone.
const NO_QUEUE_REASON: &str = "AWS.SimpleQueueService.NonExistentQueue";

/// A task's status, as ListMessageMoveTasks spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Running,
    Completed,
    Cancelling,
    Cancelled,
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Running => "RUNNING",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::Cancelling => "CANCELLING",
            TaskStatus::Cancelled => "CANCELLED",
            TaskStatus::Failed => "FAILED",
        }
    }

    /// Whether the task still runs (AWS allows one such task per source queue).
    pub fn is_active(self) -> bool {
        matches!(self, TaskStatus::Running | TaskStatus::Cancelling)
    }
}

/// What ListMessageMoveTasks reports of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub id: String,
    pub handle: String,
    /// The source queue's name (the table's key) and ARN.
    pub source: String,
    pub source_arn: String,
    pub destination_arn: Option<String>,
    pub rate_per_second: Option<u32>,
    pub status: TaskStatus,
    pub moved: u64,
    pub to_move: u64,
    pub failure_reason: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub started_ms: u64,
}

struct TaskEntry {
    info: TaskInfo,
    cancel: Arc<Notify>,
}

/// Why a task stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Cancelled,
    Failed(String),
}

/// Every task, oldest first. Bounded: per source queue, the active task and the last
/// [`FINISHED_REMEMBERED_MAX`] finished ones.
#[derive(Default)]
pub struct MoveTasks {
    tasks: Mutex<Vec<TaskEntry>>,
}

impl MoveTasks {
    /// Records a new RUNNING task, unless its source already has an active one (AWS's
    /// InvalidParameterValue). Returns the notifier that cancels it.
    pub fn insert(&self, info: TaskInfo) -> Result<Arc<Notify>, SqsError> {
        let mut tasks = self.lock();
        let busy = tasks
            .iter()
            .any(|t| t.info.source == info.source && t.info.status.is_active());
        if busy {
            return Err(SqsError::invalid(
                "There is already a task running. Only one active task is allowed for a source \
                 queue arn at a given time.",
            ));
        }
        let source = info.source.clone();
        let cancel = Arc::new(Notify::new());
        tasks.push(TaskEntry {
            info,
            cancel: Arc::clone(&cancel),
        });
        forget_old(&mut tasks, &source);
        Ok(cancel)
    }

    /// The most recent tasks of `source`, newest first.
    pub fn list(&self, source: &str, max: usize) -> Vec<TaskInfo> {
        self.lock()
            .iter()
            .rev()
            .filter(|t| t.info.source == source)
            .take(max)
            .map(|t| t.info.clone())
            .collect()
    }

    /// Asks a RUNNING task to stop; returns how many messages it has moved so far.
    pub fn cancel(&self, id: &str) -> Result<u64, SqsError> {
        let mut tasks = self.lock();
        let entry = tasks
            .iter_mut()
            .find(|t| t.info.id == id)
            .ok_or_else(|| SqsError::new(ErrorKind::ResourceNotFound, "Task does not exist."))?;
        if entry.info.status != TaskStatus::Running {
            // AWS: "A message movement can only be cancelled when the current status is
            // RUNNING."
            return Err(SqsError::new(
                ErrorKind::ResourceNotFound,
                format!(
                    "Only a RUNNING task can be cancelled; this task is {}.",
                    entry.info.status.as_str()
                ),
            ));
        }
        entry.info.status = TaskStatus::Cancelling;
        entry.cancel.notify_one();
        Ok(entry.info.moved)
    }

    fn is_cancelling(&self, id: &str) -> bool {
        self.lock()
            .iter()
            .any(|t| t.info.id == id && t.info.status == TaskStatus::Cancelling)
    }

    fn add_moved(&self, id: &str, count: u64) {
        if let Some(entry) = self.lock().iter_mut().find(|t| t.info.id == id) {
            entry.info.moved += count;
        }
    }

    /// Records how a task ended. A task asked to cancel ends CANCELLED even if it ran out of
    /// messages first, unless it failed.
    fn finish(&self, id: &str, outcome: Outcome) {
        let mut tasks = self.lock();
        let Some(entry) = tasks.iter_mut().find(|t| t.info.id == id) else {
            return;
        };
        let cancelling = entry.info.status == TaskStatus::Cancelling;
        entry.info.status = match outcome {
            Outcome::Failed(reason) => {
                entry.info.failure_reason = Some(reason);
                TaskStatus::Failed
            }
            Outcome::Cancelled => TaskStatus::Cancelled,
            Outcome::Completed if cancelling => TaskStatus::Cancelled,
            Outcome::Completed => TaskStatus::Completed,
        };
        let source = entry.info.source.clone();
        forget_old(&mut tasks, &source);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<TaskEntry>> {
        // Every update is a push, a remove or a field write; a panic cannot leave one half done.
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drops the oldest finished tasks of `source` beyond [`FINISHED_REMEMBERED_MAX`].
fn forget_old(tasks: &mut Vec<TaskEntry>, source: &str) {
    let finished = tasks
        .iter()
        .filter(|t| t.info.source == source && !t.info.status.is_active())
        .count();
    let mut excess = finished.saturating_sub(FINISHED_REMEMBERED_MAX);
    tasks.retain(|t| {
        let drop = excess > 0 && t.info.source == source && !t.info.status.is_active();
        if drop {
            excess -= 1;
        }
        !drop
    });
}

/// The queue name an ARN names (`arn:aws:sqs:<region>:<account>:<name>`), if it is one.
pub fn arn_queue_name(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, _, name] if !name.is_empty() => Some(name),
        _ => None,
    }
}

/// One running task: what it moves, where, and how fast. Runs on its own tokio task.
pub struct MoveRun {
    pub tasks: Arc<MoveTasks>,
    pub context: MoverContext,
    pub id: String,
    pub source: Arc<dyn QueueHandle>,
    /// The DestinationArn's queue; `None` returns each message to its dead-letter source.
    pub destination: Option<String>,
    pub rate_per_second: Option<u32>,
    pub to_move: u64,
    pub cancel: Arc<Notify>,
}

impl MoveRun {
    pub async fn run(self) {
        let outcome = self.move_all().await;
        tracing::debug!(task = self.id, ?outcome, "message move task ended");
        self.tasks.finish(&self.id, outcome);
    }

    async fn move_all(&self) -> Outcome {
        let owner = ConsumerId::next();
        let started = Instant::now();
        let mut moved = 0u64;
        let mut shutdown = self.context.shutdown.clone();
        while moved < self.to_move {
            if self.tasks.is_cancelling(&self.id) {
                return Outcome::Cancelled;
            }
            let due = self.due(started, moved);
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = self.cancel.notified() => return Outcome::Cancelled,
                _ = shutdown.changed() => return shutdown_outcome(),
            }
            if *shutdown.borrow() {
                return shutdown_outcome();
            }
            let want = self.batch_size(moved);
            let batch = match take(&self.source, owner, want).await {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => batch,
                Err(outcome) => return outcome,
            };
            let (count, failure) = self.move_batch(owner, batch).await;
            moved += count;
            self.tasks.add_moved(&self.id, count);
            if let Some(outcome) = failure {
                return outcome;
            }
        }
        Outcome::Completed
    }

    /// When the next message may move: at once without a rate, else `moved / rate` seconds
    /// after the start.
    fn due(&self, started: Instant, moved: u64) -> Instant {
        match self.rate_per_second {
            Some(rate) if rate > 0 => {
                let millis = moved.saturating_mul(1000) / u64::from(rate);
                started + Duration::from_millis(millis)
            }
            _ => started,
        }
    }

    fn batch_size(&self, moved: u64) -> usize {
        let left = usize::try_from(self.to_move - moved).unwrap_or(usize::MAX);
        match self.rate_per_second {
            Some(_) => 1,
            None => left.min(BATCH_MAX),
        }
    }

    /// Moves a batch, in order, destination by destination. Returns how many moved, and the
    /// outcome that stops the task if one did; the deliveries not moved go back to the source.
    async fn move_batch(&self, owner: ConsumerId, batch: Vec<Delivery>) -> (u64, Option<Outcome>) {
        let groups = match self.group(&batch) {
            Ok(groups) => groups,
            Err(reason) => {
                requeue(&self.source, owner, &batch).await;
                return (0, Some(Outcome::Failed(reason)));
            }
        };
        let mut moved = 0;
        let mut rest = batch.as_slice();
        for (destination, count) in groups {
            let (group, later) = rest.split_at(count.min(rest.len()));
            rest = later;
            let (done, failure) = self.move_group(owner, &destination, group).await;
            moved += done;
            if failure.is_some() {
                requeue(&self.source, owner, rest).await;
                return (moved, failure);
            }
        }
        (moved, None)
    }

    /// Runs of consecutive deliveries with the same destination queue, as (queue, length).
    fn group(&self, batch: &[Delivery]) -> Result<Vec<(String, usize)>, String> {
        let mut groups: Vec<(String, usize)> = Vec::new();
        for delivery in batch {
            let destination = match &self.destination {
                Some(name) => name.clone(),
                None => dead_letter_source(&delivery.message)?,
            };
            match groups.last_mut() {
                Some((last, count)) if *last == destination => *count += 1,
                _ => groups.push((destination, 1)),
            }
        }
        Ok(groups)
    }

    /// Publishes `group` to `destination` with confirms, then acks what was stored and
    /// requeues the rest.
    async fn move_group(
        &self,
        owner: ConsumerId,
        destination: &str,
        group: &[Delivery],
    ) -> (u64, Option<Outcome>) {
        let context = &self.context;
        let target = match context.vhost.queue(destination, context.connection) {
            Ok(target) => target,
            Err(_) => {
                requeue(&self.source, owner, group).await;
                return (0, Some(Outcome::Failed(NO_QUEUE_REASON.to_owned())));
            }
        };
        let messages = group
            .iter()
            .map(|d| Arc::new(redriven(&d.message, destination)))
            .collect();
        let Ok(accepted) = publish_confirmed(&target, messages, &context.shutdown).await else {
            requeue(&self.source, owner, group).await;
            return (0, Some(shutdown_outcome()));
        };
        let (stored, refused): (Vec<_>, Vec<_>) = group
            .iter()
            .zip(&accepted)
            .partition(|(_, accepted)| **accepted);
        let stored: Vec<u64> = stored.into_iter().map(|(d, _)| d.tag).collect();
        let refused: Vec<u64> = refused.into_iter().map(|(d, _)| d.tag).collect();
        let count = stored.len() as u64;
        self.source.settle(owner, stored, Settlement::Ack).await;
        if refused.is_empty() {
            return (count, None);
        }
        self.source
            .settle(owner, refused, Settlement::Requeue)
            .await;
        let reason = format!("The queue {destination} did not accept the moved messages.");
        (count, Some(Outcome::Failed(reason)))
    }
}

/// A task stopped by broker shutdown ends FAILED; nobody sees it, since the table is in memory.
fn shutdown_outcome() -> Outcome {
    Outcome::Failed("The broker shut down.".to_owned())
}

/// Takes up to `want` ready messages from the source.
async fn take(
    source: &Arc<dyn QueueHandle>,
    owner: ConsumerId,
    want: usize,
) -> Result<Vec<Delivery>, Outcome> {
    let mut batch = Vec::new();
    while batch.len() < want {
        match source.get(owner, false).await {
            Ok(Some(ok)) => batch.push(ok.delivery),
            Ok(None) => break,
            Err(error) => {
                requeue(source, owner, &batch).await;
                return Err(Outcome::Failed(match error {
                    BrokerError::NotFound(_) => NO_QUEUE_REASON.to_owned(),
                    other => other.to_string(),
                }));
            }
        }
    }
    Ok(batch)
}

async fn requeue(source: &Arc<dyn QueueHandle>, owner: ConsumerId, deliveries: &[Delivery]) {
    if deliveries.is_empty() {
        return;
    }
    let tags = deliveries.iter().map(|d| d.tag).collect();
    source.settle(owner, tags, Settlement::Requeue).await;
}

/// The queue a dead-lettered message came from, by its [`DEAD_LETTER_SOURCE_HEADER`].
fn dead_letter_source(message: &Message) -> Result<String, String> {
    message
        .properties
        .headers
        .get(DEAD_LETTER_SOURCE_HEADER)
        .and_then(HeaderValue::as_str)
        .and_then(arn_queue_name)
        .map(str::to_owned)
        .ok_or_else(|| {
            "A message in the source queue was not moved there from another queue; \
             give a DestinationArn to move it."
                .to_owned()
        })
}

/// The message as the destination gets it. AWS: "All redriven messages are considered new
/// messages and are assigned a new messageID and enqueueTime"; it is no longer dead-lettered.
fn redriven(message: &Message, destination: &str) -> Message {
    let mut message = message.clone();
    message.exchange.clear();
    destination.clone_into(&mut message.routing_key);
    message.properties.headers.remove(DEAD_LETTER_SOURCE_HEADER);
    message.properties.message_id = Some(new_uuid());
    message.properties.timestamp = Some(now_ms() / 1000);
    let headers = &mut message.properties.headers;
    if headers.get(SEQUENCE_HEADER).is_some() {
        // A FIFO message gets its place in the destination's order anew.
        headers.insert(SEQUENCE_HEADER, HeaderValue::String(next_sequence_number()));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, source: &str, status: TaskStatus) -> TaskInfo {
        TaskInfo {
            id: id.to_owned(),
            handle: format!("h-{id}"),
            source: source.to_owned(),
            source_arn: format!("arn:aws:sqs:us-east-1:000000000000:{source}"),
            destination_arn: None,
            rate_per_second: None,
            status,
            moved: 0,
            to_move: 3,
            failure_reason: None,
            started_ms: 0,
        }
    }

    #[test]
    fn one_active_task_per_source_and_newest_listed_first() {
        let tasks = MoveTasks::default();
        tasks
            .insert(info("a", "dlq", TaskStatus::Running))
            .expect("first");
        let error = tasks
            .insert(info("b", "dlq", TaskStatus::Running))
            .expect_err("second");
        assert_eq!(error.kind, ErrorKind::InvalidParameterValue);
        tasks
            .insert(info("c", "other", TaskStatus::Running))
            .expect("another source");
        tasks.finish("a", Outcome::Completed);
        tasks
            .insert(info("d", "dlq", TaskStatus::Running))
            .expect("after the first ended");
        let listed: Vec<String> = tasks.list("dlq", 10).into_iter().map(|t| t.id).collect();
        assert_eq!(listed, ["d", "a"]);
        assert_eq!(tasks.list("dlq", 1).len(), 1);
    }

    #[test]
    fn only_running_tasks_cancel_and_a_cancelled_task_ends_cancelled() {
        let tasks = MoveTasks::default();
        tasks
            .insert(info("a", "dlq", TaskStatus::Running))
            .expect("insert");
        tasks.add_moved("a", 2);
        assert_eq!(tasks.cancel("a").expect("cancel"), 2);
        assert!(tasks.is_cancelling("a"));
        let again = tasks.cancel("a").expect_err("cancelling");
        assert_eq!(again.kind, ErrorKind::ResourceNotFound);
        tasks.finish("a", Outcome::Completed);
        assert_eq!(tasks.list("dlq", 1)[0].status, TaskStatus::Cancelled);
        let unknown = tasks.cancel("zz").expect_err("unknown");
        assert_eq!(unknown.kind.status(), 404);
    }

    #[test]
    fn finished_tasks_are_forgotten_beyond_the_listing_limit() {
        let tasks = MoveTasks::default();
        for n in 0..15 {
            let id = n.to_string();
            tasks
                .insert(info(&id, "dlq", TaskStatus::Running))
                .expect("insert");
            tasks.finish(&id, Outcome::Failed("x".to_owned()));
        }
        let listed = tasks.list("dlq", 100);
        assert_eq!(listed.len(), FINISHED_REMEMBERED_MAX);
        assert_eq!(listed[0].id, "14");
        assert_eq!(listed[0].failure_reason.as_deref(), Some("x"));
    }

    #[test]
    fn arns_name_their_queue() {
        assert_eq!(
            arn_queue_name("arn:aws:sqs:us-east-1:000000000000:dlq"),
            Some("dlq")
        );
        assert_eq!(arn_queue_name("arn:aws:sns:us-east-1:0:dlq"), None);
        assert_eq!(arn_queue_name("dlq"), None);
        assert_eq!(arn_queue_name("arn:aws:sqs:us-east-1:0:"), None);
    }

    #[test]
    fn a_redriven_message_is_new_and_no_longer_dead_lettered() {
        let mut message = Message::default();
        message.properties.message_id = Some("old".to_owned());
        message.properties.headers.insert(
            DEAD_LETTER_SOURCE_HEADER,
            HeaderValue::String("arn:aws:sqs:us-east-1:000000000000:work".to_owned()),
        );
        assert_eq!(dead_letter_source(&message).as_deref(), Ok("work"));
        let moved = redriven(&message, "work");
        assert_eq!(moved.routing_key, "work");
        assert_ne!(moved.properties.message_id.as_deref(), Some("old"));
        assert!(
            moved
                .properties
                .headers
                .get(DEAD_LETTER_SOURCE_HEADER)
                .is_none()
        );
        assert!(dead_letter_source(&Message::default()).is_err());
    }
}

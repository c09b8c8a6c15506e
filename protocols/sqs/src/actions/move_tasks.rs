//! StartMessageMoveTask, CancelMessageMoveTask, ListMessageMoveTasks: dead-letter queue
//! redrive. This module checks the requests and answers; `crate::move_tasks` keeps the tasks
//! and moves the messages.
//!
//! A task handle is, as AWS's are, base64 of `{"taskId":"<uuid>","sourceArn":"<arn>"}`: a
//! handle that does not decode is InvalidParameterValue, one whose queue is gone or whose task
//! is unknown is ResourceNotFoundException (404).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::error::{ErrorKind, SqsError};
use crate::move_tasks::{self, MoveRun, TaskInfo, TaskStatus};
use crate::params::Params;
use crate::registry;
use crate::service::{ResolvedQueue, SqsService, new_uuid, now_ms};

/// AWS: "The maximum value for messages per second is 500."
const RATE_PER_SECOND_MAX: i64 = 500;
/// AWS: ListMessageMoveTasks "The default is 1 ... The upper limit is 10."
const LIST_MAX: i64 = 10;

pub fn start(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let source = queue_by_arn(service, params.required("SourceArn")?, "SourceArn")?;
    let source_arn = SqsService::queue_arn(&source.name);
    if !is_dead_letter_queue(service, &source.name) {
        return Err(SqsError::invalid(
            "Source queue must be configured as a Dead Letter Queue.",
        ));
    }
    let destination = match params.string("DestinationArn")? {
        Some(arn) => Some(destination(service, &source, arn)?),
        None => None,
    };
    let rate_per_second = params
        .integer("MaxNumberOfMessagesPerSecond", 1..=RATE_PER_SECOND_MAX)?
        .and_then(|rate| u32::try_from(rate).ok());
    let id = new_uuid();
    let to_move = u64::from(source.handle.message_count());
    let info = TaskInfo {
        id: id.clone(),
        handle: encode_handle(&id, &source_arn),
        source: source.name.clone(),
        source_arn,
        destination_arn: destination.as_deref().map(SqsService::queue_arn),
        rate_per_second,
        status: TaskStatus::Running,
        moved: 0,
        to_move,
        failure_reason: None,
        started_ms: now_ms(),
    };
    let handle = info.handle.clone();
    let cancel = service.move_tasks.insert(info)?;
    let run = MoveRun {
        tasks: std::sync::Arc::clone(&service.move_tasks),
        context: service.mover_context(),
        id,
        source: source.handle,
        destination,
        rate_per_second,
        to_move,
        cancel,
    };
    tokio::spawn(run.run());
    Ok(json!({"TaskHandle": handle}))
}

pub fn cancel(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let (id, source_arn) = decode_handle(params.required("TaskHandle")?)
        .ok_or_else(|| SqsError::invalid("Value for parameter TaskHandle is invalid."))?;
    queue_by_arn(service, &source_arn, "SourceArn")?;
    let moved = service.move_tasks.cancel(&id)?;
    Ok(json!({"ApproximateNumberOfMessagesMoved": moved}))
}

pub fn list(service: &SqsService, params: &Params) -> Result<Value, SqsError> {
    let source = queue_by_arn(service, params.required("SourceArn")?, "SourceArn")?;
    let max = params.integer("MaxResults", 1..=LIST_MAX)?.unwrap_or(1);
    let max = usize::try_from(max).unwrap_or(1);
    let results: Vec<Value> = service
        .move_tasks
        .list(&source.name, max)
        .iter()
        .map(entry)
        .collect();
    Ok(json!({"Results": results}))
}

/// The queue an ARN parameter names. AWS: a malformed ARN is InvalidParameterValue, a queue
/// that does not exist ResourceNotFoundException.
fn queue_by_arn(
    service: &SqsService,
    arn: &str,
    parameter: &str,
) -> Result<ResolvedQueue, SqsError> {
    let name = move_tasks::arn_queue_name(arn).ok_or_else(|| {
        SqsError::invalid(format!(
            "You must use this format to specify the {parameter}: \
             arn:<partition>:<service>:<region>:<account-id>:<resource-id>"
        ))
    })?;
    service
        .resolve_name(name)
        .map_err(|error| match error.kind {
            ErrorKind::QueueDoesNotExist => SqsError::new(
                ErrorKind::ResourceNotFound,
                format!(
                    "The resource that you specified for the {parameter} parameter doesn't exist."
                ),
            ),
            _ => error,
        })
}

/// AWS accepts as a source only "ARNs of dead-letter queues (DLQs) whose sources are other
/// Amazon SQS queues": some queue's RedrivePolicy must name it.
fn is_dead_letter_queue(service: &SqsService, name: &str) -> bool {
    service.registry.lock().values().any(|meta| {
        meta.attributes
            .get("RedrivePolicy")
            .and_then(|p| registry::redrive_policy(p))
            .is_some_and(|(dlq, _)| dlq == name)
    })
}

/// The DestinationArn's queue name: an existing queue other than the source, of the source's
/// type (AWS: a FIFO dead-letter queue redrives to a FIFO queue only).
fn destination(
    service: &SqsService,
    source: &ResolvedQueue,
    arn: &str,
) -> Result<String, SqsError> {
    let queue = queue_by_arn(service, arn, "DestinationArn")?;
    if queue.name == source.name {
        return Err(SqsError::invalid(
            "Source queue arn and destination queue arn cannot be the same.",
        ));
    }
    if queue.meta.is_fifo() != source.meta.is_fifo() {
        return Err(SqsError::invalid(
            "The destination queue must be of the same type (standard or FIFO) as the source \
             queue.",
        ));
    }
    Ok(queue.name)
}

fn encode_handle(id: &str, source_arn: &str) -> String {
    BASE64.encode(json!({"taskId": id, "sourceArn": source_arn}).to_string())
}

/// The task id and source ARN in a handle.
fn decode_handle(handle: &str) -> Option<(String, String)> {
    let bytes = BASE64.decode(handle.trim()).ok()?;
    let document: Value = serde_json::from_slice(&bytes).ok()?;
    let id = document.get("taskId")?.as_str()?;
    let arn = document.get("sourceArn")?.as_str()?;
    Some((id.to_owned(), arn.to_owned()))
}

/// One ListMessageMoveTasksResultEntry. As on AWS, the handle is given only while the task
/// runs, and DestinationArn and MaxNumberOfMessagesPerSecond only when the start gave them.
fn entry(task: &TaskInfo) -> Value {
    let mut entry = Map::new();
    entry.insert("SourceArn".into(), json!(task.source_arn));
    entry.insert("Status".into(), json!(task.status.as_str()));
    entry.insert("StartedTimestamp".into(), json!(task.started_ms));
    entry.insert("ApproximateNumberOfMessagesMoved".into(), json!(task.moved));
    entry.insert(
        "ApproximateNumberOfMessagesToMove".into(),
        json!(task.to_move),
    );
    if task.status == TaskStatus::Running {
        entry.insert("TaskHandle".into(), json!(task.handle));
    }
    if let Some(arn) = &task.destination_arn {
        entry.insert("DestinationArn".into(), json!(arn));
    }
    if let Some(rate) = task.rate_per_second {
        entry.insert("MaxNumberOfMessagesPerSecond".into(), json!(rate));
    }
    if let Some(reason) = &task.failure_reason {
        entry.insert("FailureReason".into(), json!(reason));
    }
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_garbage_does_not_decode() {
        let handle = encode_handle("id-1", "arn:aws:sqs:us-east-1:000000000000:dlq");
        assert_eq!(
            decode_handle(&handle),
            Some((
                "id-1".to_owned(),
                "arn:aws:sqs:us-east-1:000000000000:dlq".to_owned()
            ))
        );
        assert_eq!(decode_handle("not base64!"), None);
        assert_eq!(decode_handle(&BASE64.encode("{\"taskId\":1}")), None);
    }

    #[test]
    fn a_finished_entry_has_no_handle_and_a_failed_one_its_reason() {
        let mut task = TaskInfo {
            id: "i".to_owned(),
            handle: "h".to_owned(),
            source: "dlq".to_owned(),
            source_arn: "arn:aws:sqs:us-east-1:000000000000:dlq".to_owned(),
            destination_arn: None,
            rate_per_second: Some(5),
            status: TaskStatus::Running,
            moved: 1,
            to_move: 2,
            failure_reason: None,
            started_ms: 7,
        };
        let running = entry(&task);
        assert_eq!(running["TaskHandle"], "h");
        assert_eq!(running["MaxNumberOfMessagesPerSecond"], 5);
        assert!(running.get("DestinationArn").is_none());
        task.status = TaskStatus::Failed;
        task.failure_reason = Some("why".to_owned());
        let failed = entry(&task);
        assert!(failed.get("TaskHandle").is_none());
        assert_eq!(failed["FailureReason"], "why");
        assert_eq!(failed["Status"], "FAILED");
    }
}

//! Dead-letter queue redrive (StartMessageMoveTask, ListMessageMoveTasks,
//! CancelMessageMoveTask) and queue permissions (AddPermission, RemovePermission), through
//! the AWS SDK against the real broker.

mod common;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ListMessageMoveTasksResultEntry, MessageSystemAttributeName, QueueAttributeName,
};
use common::sqs::{client, create_queue, error_code, query};
use common::{Broker, eventually, within};

fn arn(name: &str) -> String {
    format!("arn:aws:sqs:us-east-1:000000000000:{name}")
}

/// Creates `dlq`, and `source` with a RedrivePolicy (maxReceiveCount 1) naming it.
async fn queues_with_dead_letter_queue(sqs: &Client, source: &str, dlq: &str) -> (String, String) {
    let dlq_url = create_queue(sqs, dlq).await;
    let policy = format!(
        r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":"1"}}"#,
        arn(dlq)
    );
    let source_url = within(
        sqs.create_queue()
            .queue_name(source)
            .attributes(QueueAttributeName::RedrivePolicy, policy)
            .send(),
    )
    .await
    .expect("CreateQueue")
    .queue_url
    .expect("url");
    (source_url, dlq_url)
}

/// Visible messages in a queue.
async fn count(sqs: &Client, url: &str) -> usize {
    let attributes = within(
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send(),
    )
    .await
    .expect("GetQueueAttributes");
    attributes.attributes().expect("attributes")[&QueueAttributeName::ApproximateNumberOfMessages]
        .parse()
        .expect("a count")
}

/// Sends `bodies` to `source` and has the receive path dead-letter every one of them: each
/// is received once with visibility 0, and the next receive moves it to the dead-letter queue.
async fn dead_letter(sqs: &Client, source: &str, dlq: &str, bodies: &[&str]) {
    for body in bodies {
        within(
            sqs.send_message()
                .queue_url(source)
                .message_body(*body)
                .send(),
        )
        .await
        .expect("SendMessage");
    }
    eventually("every message is dead-lettered and visible", || async {
        within(
            sqs.receive_message()
                .queue_url(source)
                .max_number_of_messages(10)
                .visibility_timeout(0)
                .send(),
        )
        .await
        .expect("ReceiveMessage");
        count(sqs, dlq).await == bodies.len()
    })
    .await;
}

async fn bodies(sqs: &Client, url: &str) -> Vec<String> {
    let mut bodies: Vec<String> = within(
        sqs.receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .wait_time_seconds(1)
            .send(),
    )
    .await
    .expect("ReceiveMessage")
    .messages()
    .iter()
    .filter_map(|m| m.body().map(str::to_owned))
    .collect();
    bodies.sort();
    bodies
}

async fn latest_task(sqs: &Client, source_arn: &str) -> ListMessageMoveTasksResultEntry {
    let listed = within(sqs.list_message_move_tasks().source_arn(source_arn).send())
        .await
        .expect("ListMessageMoveTasks");
    assert_eq!(listed.results().len(), 1, "MaxResults defaults to 1");
    listed.results()[0].clone()
}

async fn wait_for_status(sqs: &Client, source_arn: &str, status: &str) {
    eventually(&format!("the task is {status}"), || async {
        latest_task(sqs, source_arn).await.status() == Some(status)
    })
    .await;
}

#[tokio::test]
async fn dead_letters_go_back_to_the_queue_they_came_from() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let (source, dlq) = queues_with_dead_letter_queue(&sqs, "orders", "orders-dlq").await;
    dead_letter(&sqs, &source, &dlq, &["a", "b", "c"]).await;

    // Each dead letter says where it came from.
    let peek = within(
        sqs.receive_message()
            .queue_url(&dlq)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send(),
    )
    .await
    .expect("ReceiveMessage");
    let attributes = peek.messages()[0].attributes().expect("system attributes");
    let source_arn = &attributes[&MessageSystemAttributeName::DeadLetterQueueSourceArn];
    assert_eq!(source_arn, &arn("orders"));
    eventually("the peeked message is visible again", || async {
        count(&sqs, &dlq).await == 3
    })
    .await;

    let started = within(
        sqs.start_message_move_task()
            .source_arn(arn("orders-dlq"))
            .send(),
    )
    .await
    .expect("StartMessageMoveTask");
    assert!(started.task_handle().is_some_and(|h| !h.is_empty()));
    wait_for_status(&sqs, &arn("orders-dlq"), "COMPLETED").await;
    let task = latest_task(&sqs, &arn("orders-dlq")).await;
    assert_eq!(task.approximate_number_of_messages_moved(), 3);
    assert_eq!(task.approximate_number_of_messages_to_move(), Some(3));
    assert_eq!(task.source_arn(), Some(arn("orders-dlq").as_str()));
    assert_eq!(task.destination_arn(), None);
    assert_eq!(
        task.task_handle(),
        None,
        "only a running task shows its handle"
    );
    assert!(task.started_timestamp() > 0);

    assert_eq!(bodies(&sqs, &source).await, ["a", "b", "c"]);
    assert_eq!(count(&sqs, &dlq).await, 0);
}

#[tokio::test]
async fn a_destination_arn_sends_the_dead_letters_elsewhere() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let (source, dlq) = queues_with_dead_letter_queue(&sqs, "jobs", "jobs-dlq").await;
    let elsewhere = create_queue(&sqs, "retry").await;
    dead_letter(&sqs, &source, &dlq, &["x", "y"]).await;

    within(
        sqs.start_message_move_task()
            .source_arn(arn("jobs-dlq"))
            .destination_arn(arn("retry"))
            .send(),
    )
    .await
    .expect("StartMessageMoveTask");
    wait_for_status(&sqs, &arn("jobs-dlq"), "COMPLETED").await;
    let task = latest_task(&sqs, &arn("jobs-dlq")).await;
    assert_eq!(task.destination_arn(), Some(arn("retry").as_str()));
    assert_eq!(task.approximate_number_of_messages_moved(), 2);
    assert_eq!(bodies(&sqs, &elsewhere).await, ["x", "y"]);
    assert_eq!(count(&sqs, &source).await, 0);

    // The Query protocol lists the same task, as flattened result entries.
    let form = format!("Action=ListMessageMoveTasks&SourceArn={}", arn("jobs-dlq"));
    let listed = query(&broker, "/", &form).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(
        listed
            .body
            .contains("<ListMessageMoveTasksResultEntry><ApproximateNumberOfMessagesMoved>2<"),
        "{}",
        listed.body
    );
}

#[tokio::test]
async fn move_tasks_refuse_what_aws_refuses() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    create_queue(&sqs, "plain").await;
    let not_a_dlq = sqs
        .start_message_move_task()
        .source_arn(arn("plain"))
        .send();
    assert_eq!(error_code(within(not_a_dlq).await), "InvalidParameterValue");
    let missing = sqs
        .start_message_move_task()
        .source_arn(arn("nowhere"))
        .send();
    assert_eq!(
        error_code(within(missing).await),
        "ResourceNotFoundException"
    );
    queues_with_dead_letter_queue(&sqs, "src", "src-dlq").await;
    let no_destination = sqs
        .start_message_move_task()
        .source_arn(arn("src-dlq"))
        .destination_arn(arn("nowhere"))
        .send();
    assert_eq!(
        error_code(within(no_destination).await),
        "ResourceNotFoundException"
    );
    let too_fast = sqs
        .start_message_move_task()
        .source_arn(arn("src-dlq"))
        .max_number_of_messages_per_second(501)
        .send();
    assert_eq!(error_code(within(too_fast).await), "InvalidParameterValue");

    // A well-formed handle naming no task, and one that is not a handle at all.
    let unknown = "eyJ0YXNrSWQiOiJub3BlIiwic291cmNlQXJuIjoiYXJuOmF3czpzcXM6dXMtZWFzdC0xOjAwMDAwMDAwMDAwMDpzcmMtZGxxIn0=";
    let cancel = sqs.cancel_message_move_task().task_handle(unknown).send();
    assert_eq!(
        error_code(within(cancel).await),
        "ResourceNotFoundException"
    );
    let cancel = sqs.cancel_message_move_task().task_handle("garbage").send();
    assert_eq!(error_code(within(cancel).await), "InvalidParameterValue");
}

#[tokio::test]
async fn a_rate_limited_task_is_cancelled_while_it_runs() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let (source, dlq) = queues_with_dead_letter_queue(&sqs, "slow", "slow-dlq").await;
    dead_letter(&sqs, &source, &dlq, &["1", "2", "3", "4", "5"]).await;

    let started = within(
        sqs.start_message_move_task()
            .source_arn(arn("slow-dlq"))
            .max_number_of_messages_per_second(1)
            .send(),
    )
    .await
    .expect("StartMessageMoveTask");
    let handle = started.task_handle().expect("a handle").to_owned();
    let running = latest_task(&sqs, &arn("slow-dlq")).await;
    assert_eq!(running.status(), Some("RUNNING"));
    assert_eq!(running.task_handle(), Some(handle.as_str()));
    assert_eq!(running.max_number_of_messages_per_second(), Some(1));
    // AWS allows one active task per source queue.
    let second = sqs
        .start_message_move_task()
        .source_arn(arn("slow-dlq"))
        .send();
    assert_eq!(error_code(within(second).await), "InvalidParameterValue");

    let cancelled = within(sqs.cancel_message_move_task().task_handle(&handle).send())
        .await
        .expect("CancelMessageMoveTask");
    let moved_at_cancel = cancelled.approximate_number_of_messages_moved();
    assert!(moved_at_cancel < 5, "moved {moved_at_cancel}");
    wait_for_status(&sqs, &arn("slow-dlq"), "CANCELLED").await;
    let again = sqs.cancel_message_move_task().task_handle(&handle).send();
    assert_eq!(error_code(within(again).await), "ResourceNotFoundException");

    let moved = latest_task(&sqs, &arn("slow-dlq"))
        .await
        .approximate_number_of_messages_moved();
    let moved = usize::try_from(moved).expect("a count");
    assert!(moved < 5, "a cancelled task leaves the rest");
    eventually("the rest stays in the dead-letter queue", || async {
        count(&sqs, &dlq).await == 5 - moved && count(&sqs, &source).await == moved
    })
    .await;
}

async fn policy(sqs: &Client, url: &str) -> Option<String> {
    within(
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::Policy)
            .send(),
    )
    .await
    .expect("GetQueueAttributes")
    .attributes()
    .and_then(|a| a.get(&QueueAttributeName::Policy).cloned())
}

async fn add_partner(sqs: &Client, url: &str) {
    within(
        sqs.add_permission()
            .queue_url(url)
            .label("partner")
            .aws_account_ids("111122223333")
            .actions("SendMessage")
            .actions("ReceiveMessage")
            .send(),
    )
    .await
    .expect("AddPermission");
}

#[tokio::test]
async fn add_permission_writes_a_statement_in_the_queue_policy() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "shared").await;
    assert_eq!(policy(&sqs, &url).await, None);
    add_partner(&sqs, &url).await;
    let document = policy(&sqs, &url).await.expect("a policy");
    for part in [
        r#""Version":"2012-10-17""#,
        &format!(r#""Id":"{}/SQSDefaultPolicy""#, arn("shared")),
        r#""Sid":"partner""#,
        r#""Effect":"Allow""#,
        r#""AWS":"arn:aws:iam::111122223333:root""#,
        r#""Action":["SQS:SendMessage","SQS:ReceiveMessage"]"#,
        &format!(r#""Resource":"{}""#, arn("shared")),
    ] {
        assert!(document.contains(part), "{part} not in {document}");
    }

    let duplicate = sqs
        .add_permission()
        .queue_url(&url)
        .label("partner")
        .aws_account_ids("111122223333")
        .actions("SendMessage")
        .send();
    assert_eq!(error_code(within(duplicate).await), "InvalidParameterValue");
    let eight = (0..8).fold(
        sqs.add_permission().queue_url(&url).label("many"),
        |r, _| r.actions("SendMessage"),
    );
    let too_many = eight.aws_account_ids("111122223333").send();
    assert_eq!(error_code(within(too_many).await), "OverLimit");
}

#[tokio::test]
async fn remove_permission_takes_statements_out_by_label() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "shared").await;
    add_partner(&sqs, &url).await;
    // The Query protocol spells the lists AWSAccountId.N and ActionName.N.
    let form = format!(
        "Action=AddPermission&QueueUrl={url}&Label=other&AWSAccountId.1=444455556666\
         &ActionName.1=DeleteMessage"
    );
    let added = query(&broker, "/", &form).await;
    assert_eq!(added.status, 200, "{}", added.body);
    let document = policy(&sqs, &url).await.expect("a policy");
    assert!(
        document.contains(r#""Action":"SQS:DeleteMessage""#),
        "{document}"
    );

    within(
        sqs.remove_permission()
            .queue_url(&url)
            .label("partner")
            .send(),
    )
    .await
    .expect("RemovePermission");
    let document = policy(&sqs, &url).await.expect("a policy");
    assert!(!document.contains("partner"), "{document}");
    let unknown = sqs
        .remove_permission()
        .queue_url(&url)
        .label("partner")
        .send();
    assert_eq!(error_code(within(unknown).await), "InvalidParameterValue");
    within(
        sqs.remove_permission()
            .queue_url(&url)
            .label("other")
            .send(),
    )
    .await
    .expect("RemovePermission");
    assert_eq!(
        policy(&sqs, &url).await,
        None,
        "no statement left, no policy"
    );
}

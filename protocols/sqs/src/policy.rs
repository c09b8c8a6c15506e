//! The queue `Policy` documents that AddPermission and RemovePermission write, in the shape
//! AWS generates:
//!
//! ```text
//! {"Version": "2012-10-17", "Id": "<queue arn>/SQSDefaultPolicy",
//!  "Statement": [{"Sid": "<label>", "Effect": "Allow",
//!                 "Principal": {"AWS": "arn:aws:iam::<account>:root"},
//!                 "Action": "SQS:SendMessage", "Resource": "<queue arn>"}]}
//! ```
//!
//! As AWS writes it, a principal or action list of one is a plain string and a longer one a
//! list. The limits are SQS's policy quotas. Pure functions over the attribute's text: the
//! broker keeps the document and answers with it, but does not enforce it (see
//! ARCHITECTURE.md, "SQS on the core").

use serde_json::{Map, Value, json};

use crate::error::{ErrorKind, SqsError};

/// AWS's policy quota: statements per policy.
const STATEMENTS_MAX: usize = 20;
/// AWS's policy quota: actions per statement.
const ACTIONS_PER_STATEMENT_MAX: usize = 7;
/// AWS's policy quota: principals per policy.
const PRINCIPALS_MAX: usize = 50;
/// AWS's policy quota: bytes per policy document.
const POLICY_BYTES_MAX: usize = 8192;
/// AWS: a label is "Maximum 80 characters".
const LABEL_LENGTH_MAX: usize = 80;

/// The actions a queue owner may share with other accounts (`*` is all of them). Naming
/// SendMessage, DeleteMessage or ChangeMessageVisibility grants their batch versions too.
const SHAREABLE_ACTIONS: &[&str] = &[
    "*",
    "ChangeMessageVisibility",
    "DeleteMessage",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "SendMessage",
];

/// The other SQS actions: valid names, but only the queue owner may call them.
const OWNER_ACTIONS: &[&str] = &[
    "AddPermission",
    "CancelMessageMoveTask",
    "ChangeMessageVisibilityBatch",
    "CreateQueue",
    "DeleteMessageBatch",
    "DeleteQueue",
    "ListMessageMoveTasks",
    "ListQueueTags",
    "ListQueues",
    "RemovePermission",
    "SendMessageBatch",
    "SetQueueAttributes",
    "StartMessageMoveTask",
    "TagQueue",
    "UntagQueue",
];

/// One AddPermission request.
pub struct Grant<'a> {
    pub label: &'a str,
    pub account_ids: &'a [String],
    pub actions: &'a [String],
}

/// The policy with `grant` added as a statement for the queue `queue_arn`.
pub fn add(existing: Option<&str>, queue_arn: &str, grant: &Grant<'_>) -> Result<String, SqsError> {
    validate(grant)?;
    let mut policy = parse(existing, queue_arn)?;
    let statements = statements(&mut policy)?;
    if statements.iter().any(|s| sid(s) == Some(grant.label)) {
        return Err(SqsError::invalid(format!(
            "Value {} for parameter Label is invalid. Reason: Already exists.",
            grant.label
        )));
    }
    if statements.len() >= STATEMENTS_MAX {
        return Err(over_limit(format!(
            "{} statements were found, maximum allowed is {STATEMENTS_MAX}.",
            statements.len() + 1
        )));
    }
    let principals: Vec<String> = grant
        .account_ids
        .iter()
        .map(|account| format!("arn:aws:iam::{account}:root"))
        .collect();
    let actions: Vec<String> = grant.actions.iter().map(|a| format!("SQS:{a}")).collect();
    statements.push(json!({
        "Sid": grant.label,
        "Effect": "Allow",
        "Principal": {"AWS": one_or_many(principals)},
        "Action": one_or_many(actions),
        "Resource": queue_arn,
    }));
    let principal_count: usize = statements.iter().map(principal_count).sum();
    if principal_count > PRINCIPALS_MAX {
        return Err(over_limit(format!(
            "{principal_count} principals were found, maximum allowed is {PRINCIPALS_MAX}."
        )));
    }
    let text = policy.to_string();
    if text.len() > POLICY_BYTES_MAX {
        return Err(over_limit(format!(
            "The policy would be {} bytes, maximum allowed is {POLICY_BYTES_MAX}.",
            text.len()
        )));
    }
    Ok(text)
}

/// The policy without the statement `label`; `None` when no statement is left (the attribute
/// goes away).
pub fn remove(existing: Option<&str>, label: &str) -> Result<Option<String>, SqsError> {
    let not_found = || {
        SqsError::invalid(format!(
            "Value {label} for parameter Label is invalid. Reason: can't find label on existing \
             policy."
        ))
    };
    let existing = existing.ok_or_else(not_found)?;
    let mut policy = parse(Some(existing), "")?;
    let statements = statements(&mut policy)?;
    let before = statements.len();
    statements.retain(|s| sid(s) != Some(label));
    if statements.len() == before {
        return Err(not_found());
    }
    if statements.is_empty() {
        return Ok(None);
    }
    Ok(Some(policy.to_string()))
}

fn validate(grant: &Grant<'_>) -> Result<(), SqsError> {
    let label_ok = (1..=LABEL_LENGTH_MAX).contains(&grant.label.len())
        && grant
            .label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !label_ok {
        return Err(SqsError::invalid(format!(
            "Value {} for parameter Label is invalid. Reason: Must be 1 to {LABEL_LENGTH_MAX} \
             alphanumeric characters, hyphens or underscores.",
            grant.label
        )));
    }
    if grant.actions.is_empty() {
        return Err(SqsError::missing("Actions"));
    }
    if grant.account_ids.is_empty() {
        return Err(SqsError::invalid(
            "Value [] for parameter PrincipalId is invalid. Reason: Unable to verify.",
        ));
    }
    if grant.actions.len() > ACTIONS_PER_STATEMENT_MAX {
        return Err(over_limit(format!(
            "{} Actions were found, maximum allowed is {ACTIONS_PER_STATEMENT_MAX}.",
            grant.actions.len()
        )));
    }
    for action in grant.actions {
        if SHAREABLE_ACTIONS.contains(&action.as_str()) {
            continue;
        }
        let reason = if OWNER_ACTIONS.contains(&action.as_str()) {
            "Only the queue owner is allowed to invoke this action."
        } else {
            "Please refer to the appropriate WSDL for a list of valid actions."
        };
        return Err(SqsError::invalid(format!(
            "Value SQS:{action} for parameter ActionName is invalid. Reason: {reason}"
        )));
    }
    Ok(())
}

/// The existing document, or a new empty one for the queue.
fn parse(existing: Option<&str>, queue_arn: &str) -> Result<Value, SqsError> {
    match existing {
        Some(text) if !text.is_empty() => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| SqsError::invalid("The queue's Policy attribute is not a JSON object.")),
        _ => Ok(json!({
            "Version": "2012-10-17",
            "Id": format!("{queue_arn}/SQSDefaultPolicy"),
            "Statement": [],
        })),
    }
}

/// The document's statement list; a single statement object (which the policy language
/// allows) becomes a list of one.
fn statements(policy: &mut Value) -> Result<&mut Vec<Value>, SqsError> {
    let map: &mut Map<String, Value> = policy
        .as_object_mut()
        .ok_or_else(|| SqsError::invalid("The queue's Policy attribute is not a JSON object."))?;
    let entry = map
        .entry("Statement")
        .or_insert_with(|| Value::Array(Vec::new()));
    if entry.is_object() {
        *entry = Value::Array(vec![entry.take()]);
    }
    entry
        .as_array_mut()
        .ok_or_else(|| SqsError::invalid("The queue's Policy has a Statement that is not a list."))
}

fn sid(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

fn principal_count(statement: &Value) -> usize {
    match statement.get("Principal").and_then(|p| p.get("AWS")) {
        Some(Value::Array(items)) => items.len(),
        Some(_) => 1,
        None => 0,
    }
}

fn one_or_many(mut items: Vec<String>) -> Value {
    match items.len() {
        1 => Value::String(items.remove(0)),
        _ => json!(items),
    }
}

fn over_limit(message: String) -> SqsError {
    SqsError::new(ErrorKind::OverLimit, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:q";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn grant<'a>(label: &'a str, accounts: &'a [String], actions: &'a [String]) -> Grant<'a> {
        Grant {
            label,
            account_ids: accounts,
            actions,
        }
    }

    #[test]
    fn add_writes_the_document_aws_generates() {
        let (one, send) = (strings(&["111122223333"]), strings(&["SendMessage"]));
        let text = add(None, ARN, &grant("a", &one, &send)).expect("added");
        let policy: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            policy,
            json!({
                "Version": "2012-10-17",
                "Id": format!("{ARN}/SQSDefaultPolicy"),
                "Statement": [{
                    "Sid": "a",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                    "Action": "SQS:SendMessage",
                    "Resource": ARN,
                }],
            })
        );
        let (two, both) = (strings(&["1", "2"]), strings(&["ReceiveMessage", "*"]));
        let text = add(Some(&text), ARN, &grant("b", &two, &both)).expect("added");
        let policy: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            policy["Statement"][1]["Principal"]["AWS"],
            json!(["arn:aws:iam::1:root", "arn:aws:iam::2:root"])
        );
        assert_eq!(
            policy["Statement"][1]["Action"],
            json!(["SQS:ReceiveMessage", "SQS:*"])
        );
        let duplicate = add(Some(&text), ARN, &grant("a", &one, &send)).expect_err("dup");
        assert!(duplicate.message.ends_with("Reason: Already exists."));
    }

    #[test]
    fn add_checks_actions_accounts_labels_and_limits() {
        let (one, send) = (strings(&["1"]), strings(&["SendMessage"]));
        let eight = strings(&["SendMessage"; 8]);
        let error = add(None, ARN, &grant("a", &one, &eight)).expect_err("8 actions");
        assert_eq!(error.kind, ErrorKind::OverLimit);
        let owner = strings(&["DeleteQueue"]);
        let error = add(None, ARN, &grant("a", &one, &owner)).expect_err("owner only");
        assert!(error.message.contains("Only the queue owner"));
        let bogus = strings(&["Fly"]);
        let error = add(None, ARN, &grant("a", &one, &bogus)).expect_err("unknown");
        assert_eq!(error.kind, ErrorKind::InvalidParameterValue);
        let error = add(None, ARN, &grant("a", &[], &send)).expect_err("no accounts");
        assert!(error.message.contains("PrincipalId"));
        let error = add(None, ARN, &grant("a", &one, &[])).expect_err("no actions");
        assert_eq!(error.kind, ErrorKind::MissingParameter);
        let error = add(None, ARN, &grant("a b", &one, &send)).expect_err("label");
        assert_eq!(error.kind, ErrorKind::InvalidParameterValue);
        let mut text = None;
        for n in 0..STATEMENTS_MAX {
            let label = format!("l{n}");
            text = Some(add(text.as_deref(), ARN, &grant(&label, &one, &send)).expect("room"));
        }
        let error = add(text.as_deref(), ARN, &grant("last", &one, &send)).expect_err("full");
        assert_eq!(error.kind, ErrorKind::OverLimit);
    }

    #[test]
    fn remove_takes_the_statement_and_the_last_one_the_policy() {
        let (one, send) = (strings(&["1"]), strings(&["SendMessage"]));
        let text = add(None, ARN, &grant("a", &one, &send)).expect("a");
        let text = add(Some(&text), ARN, &grant("b", &one, &send)).expect("b");
        let text = remove(Some(&text), "a")
            .expect("removed")
            .expect("b is left");
        assert!(!text.contains("\"Sid\":\"a\""));
        let error = remove(Some(&text), "a").expect_err("gone");
        assert!(
            error
                .message
                .ends_with("can't find label on existing policy.")
        );
        assert_eq!(remove(Some(&text), "b").expect("removed"), None);
        assert!(remove(None, "b").is_err());
    }
}

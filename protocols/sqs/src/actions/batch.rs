//! What every batch action checks before touching an entry, and how it reports entries.
//!
//! AWS: a batch holds 1 to 10 entries (EmptyBatchRequest, TooManyEntriesInBatchRequest) whose
//! `Id`s are distinct (BatchEntryIdsNotDistinct) and use only `A-Z a-z 0-9 - _`, up to 80
//! characters (InvalidBatchEntryId). Entry failures are reported per entry, not as an error.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::error::{ErrorKind, SqsError};
use crate::params::Params;

/// AWS: "up to 10" entries per batch.
pub const ENTRIES_MAX: usize = 10;

/// The entries of a batch request, checked; they are taken out of `params`.
pub fn entries(params: &mut Params) -> Result<Vec<(String, Params)>, SqsError> {
    let entries = params.take_entries("Entries")?;
    if entries.is_empty() {
        return Err(SqsError::new(
            ErrorKind::EmptyBatchRequest,
            "There should be at least one entry in the request.",
        ));
    }
    if entries.len() > ENTRIES_MAX {
        return Err(SqsError::new(
            ErrorKind::TooManyEntriesInBatchRequest,
            format!(
                "Maximum number of entries per request are {ENTRIES_MAX}. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let id = entry.required("Id")?.to_owned();
        let valid = (1..=80).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(SqsError::new(
                ErrorKind::InvalidBatchEntryId,
                "A batch entry id can only contain alphanumeric characters, hyphens and \
                 underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(SqsError::new(
                ErrorKind::BatchEntryIdsNotDistinct,
                format!("Id {id} repeated."),
            ));
        }
        out.push((id, entry));
    }
    Ok(out)
}

/// A `BatchResultErrorEntry`.
pub fn failure(id: &str, error: &SqsError) -> Value {
    json!({
        "Id": id,
        "SenderFault": error.kind.is_sender_fault(),
        "Code": error.kind.query_code(),
        "Message": error.message,
    })
}

/// The batch result: successes and failures in the JSON protocol's shape.
pub fn result(successful: Vec<Value>, failed: Vec<Value>) -> Value {
    // Moved in: `json!` would copy every entry through `to_value`.
    let mut result = serde_json::Map::new();
    result.insert("Successful".into(), Value::Array(successful));
    result.insert("Failed".into(), Value::Array(failed));
    Value::Object(result)
}

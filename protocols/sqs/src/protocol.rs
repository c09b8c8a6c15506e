//! The two wire protocols of the SQS API, parsed into one request shape.
//!
//! ```text
//! AWS JSON 1.0:  POST /   X-Amz-Target: AmazonSQS.<Action>
//!                         Content-Type: application/x-amz-json-1.0
//!                         {"QueueUrl": "...", "Attributes": {"k": "v"}, ...}
//! Query:         POST / or POST /<account>/<queue>   (or GET with a query string)
//!                         Content-Type: application/x-www-form-urlencoded
//!                         Action=<Action>&Version=2012-11-05&Attribute.1.Name=k&Attribute.1.Value=v
//! ```
//!
//! Query requests are rewritten into the JSON protocol's shape (`Attribute.N.Name/Value` becomes
//! the `Attributes` map, `AttributeName.N` the `AttributeNames` list, `...BatchRequestEntry.N.*`
//! the `Entries` list, and so on), so each action reads one shape. Deviation: Query scalars stay
//! text; [`crate::params::Params`] accepts numbers as text for that reason.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ErrorKind, SqsError};
use crate::params::Params;

/// Which protocol a request came in, so that its answer goes back in the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Query,
}

/// One parsed request.
#[derive(Debug)]
pub struct Request {
    pub protocol: Protocol,
    pub action: String,
    pub params: Params,
}

/// The `X-Amz-Target` prefix of SQS's JSON protocol.
const TARGET_PREFIX: &str = "AmazonSQS.";

/// The most dot-separated parts a Query parameter name may have. The deepest name SQS's model
/// spells has 7 (`SendMessageBatchRequestEntry.N.MessageAttribute.N.Value.StringListValue.N`);
/// `nest` recurses once per part, so a name of thousands of parts would overflow the stack.
pub const NAME_PARTS_MAX: usize = 16;

/// Parses a JSON protocol request; `target` is the `X-Amz-Target` header.
pub fn parse_json(target: &str, body: &[u8]) -> Result<Request, SqsError> {
    let action = target.strip_prefix(TARGET_PREFIX).ok_or_else(|| {
        SqsError::new(
            ErrorKind::InvalidAction,
            format!("Unknown target {target}."),
        )
    })?;
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|_| {
            SqsError::new(
                ErrorKind::MalformedRequest,
                "The request body is not valid JSON.",
            )
        })?
    };
    Ok(Request {
        protocol: Protocol::Json,
        action: action.to_owned(),
        params: Params::from_value(value)?,
    })
}

/// Parses a Query protocol request from its URL query string and form body. `path` is the
/// request path: a request posted to a queue URL names its queue there.
pub fn parse_query(path: &str, query: &[u8], body: &[u8]) -> Result<Request, SqsError> {
    if std::str::from_utf8(body).is_err() || std::str::from_utf8(query).is_err() {
        return Err(SqsError::new(
            ErrorKind::MalformedRequest,
            "The request body is not valid form data.",
        ));
    }
    let mut action = None;
    let mut pairs = Vec::new();
    let all = form_urlencoded::parse(query).chain(form_urlencoded::parse(body));
    for (key, value) in all {
        match key.as_ref() {
            "Action" => action = Some(value.into_owned()),
            // Protocol envelope and SigV2/SigV4 query authentication, not action parameters.
            "Version" | "AWSAccessKeyId" | "Signature" | "SignatureMethod" | "SignatureVersion"
            | "Timestamp" | "Expires" | "SecurityToken" => {}
            k if k.starts_with("X-Amz-") => {}
            k if k.split('.').nth(NAME_PARTS_MAX).is_some() => {
                return Err(SqsError::new(
                    ErrorKind::MalformedRequest,
                    format!("A parameter name has more than {NAME_PARTS_MAX} parts."),
                ));
            }
            _ => pairs.push((key.into_owned(), value.into_owned())),
        }
    }
    let action = action.ok_or_else(|| SqsError::missing("Action"))?;
    let mut params = nest(
        pairs
            .iter()
            .map(|(k, v)| (k.split('.').collect(), v.as_str())),
    );
    if action == "CreateQueue" {
        // CreateQueue alone spells its tag map in lower case in the JSON model.
        if let Some(tags) = params.remove("Tags") {
            params.insert("tags".to_owned(), tags);
        }
    }
    if action == "AddPermission" {
        // The model's Query member for `Actions` is `ActionName.N` (`AWSAccountId.N` already
        // becomes `AWSAccountIds`).
        if let Some(actions) = params.remove("ActionNames") {
            params.insert("Actions".to_owned(), actions);
        }
    }
    if !params.contains_key("QueueUrl") && path.trim_matches('/').contains('/') {
        params.insert("QueueUrl".to_owned(), Value::String(path.to_owned()));
    }
    Ok(Request {
        protocol: Protocol::Query,
        action,
        params: Params(params),
    })
}

/// Builds the JSON shape from flattened `A.1.B` keys (already split on dots).
fn nest<'a>(pairs: impl Iterator<Item = (Vec<&'a str>, &'a str)>) -> Map<String, Value> {
    // Group by the first segment, keeping the rest of each key.
    let mut groups: BTreeMap<&str, Vec<(Vec<&str>, &str)>> = BTreeMap::new();
    for (segments, value) in pairs {
        if let Some((first, rest)) = segments.split_first() {
            groups
                .entry(first)
                .or_default()
                .push((rest.to_vec(), value));
        }
    }
    let mut out = Map::new();
    for (name, members) in groups {
        let (key, value) = nest_group(name, members);
        out.insert(key, value);
    }
    out
}

/// One top-level parameter: a scalar, an indexed list, or an indexed name/value map.
fn nest_group(name: &str, members: Vec<(Vec<&str>, &str)>) -> (String, Value) {
    if let [(rest, value)] = members.as_slice()
        && rest.is_empty()
    {
        return (name.to_owned(), Value::String((*value).to_owned()));
    }
    // `Value.DataType`, `Value.StringValue`: a nested structure, not an indexed list.
    let structure = members
        .iter()
        .all(|(rest, _)| rest.first().is_some_and(|s| s.parse::<u32>().is_err()));
    if structure {
        return (name.to_owned(), Value::Object(nest(members.into_iter())));
    }
    let indexed = by_index(members);
    match name {
        "Attribute" | "Tag" | "MessageAttribute" | "MessageSystemAttribute" => {
            let mut map = Map::new();
            for fields in indexed.into_values() {
                let fields = nest(fields.into_iter());
                let key = fields.get("Name").or_else(|| fields.get("Key"));
                if let (Some(Value::String(key)), Some(value)) = (key, fields.get("Value")) {
                    map.insert(key.clone(), value.clone());
                }
            }
            (format!("{name}s"), Value::Object(map))
        }
        _ if name.ends_with("BatchRequestEntry") => {
            let entries = indexed
                .into_values()
                .map(|fields| Value::Object(nest(fields.into_iter())))
                .collect();
            ("Entries".to_owned(), Value::Array(entries))
        }
        // `AttributeName.N`, `MessageAttributeName.N`, `TagKey.N`: plain lists.
        _ => {
            let items = indexed
                .into_values()
                .filter_map(|fields| match fields.as_slice() {
                    [(rest, value)] if rest.is_empty() => Some(Value::String((*value).to_owned())),
                    _ => None,
                })
                .collect();
            (format!("{name}s"), Value::Array(items))
        }
    }
}

/// Groups `N.rest` members by their numeric index, in index order; other members are dropped.
fn by_index<'a>(
    members: Vec<(Vec<&'a str>, &'a str)>,
) -> BTreeMap<u32, Vec<(Vec<&'a str>, &'a str)>> {
    let mut indexed: BTreeMap<u32, Vec<(Vec<&str>, &str)>> = BTreeMap::new();
    for (rest, value) in members {
        let Some((index, tail)) = rest.split_first() else {
            continue;
        };
        if let Ok(index) = index.parse::<u32>() {
            indexed
                .entry(index)
                .or_default()
                .push((tail.to_vec(), value));
        }
    }
    indexed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(body: &str) -> Request {
        parse_query("/", b"", body.as_bytes()).expect("parses")
    }

    #[test]
    fn query_maps_and_lists_take_the_json_shape() {
        let request = query(
            "Action=CreateQueue&QueueName=q&Attribute.1.Name=DelaySeconds&Attribute.1.Value=5\
             &Tag.1.Key=team&Tag.1.Value=core&AttributeName.2=B&AttributeName.1=A",
        );
        assert_eq!(request.action, "CreateQueue");
        assert_eq!(
            Value::Object(request.params.0),
            json!({
                "QueueName": "q",
                "Attributes": {"DelaySeconds": "5"},
                "tags": {"team": "core"},
                "AttributeNames": ["A", "B"],
            })
        );
    }

    #[test]
    fn query_batch_entries_and_message_attributes_nest() {
        let request = query(
            "Action=SendMessageBatch&QueueUrl=http%3A%2F%2Fh%2F0%2Fq\
             &SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=n\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=v",
        );
        assert_eq!(
            request.params.0["Entries"],
            json!([{
                "Id": "a",
                "MessageBody": "x",
                "MessageAttributes": {"n": {"DataType": "String", "StringValue": "v"}},
            }])
        );
    }

    #[test]
    fn add_permission_lists_take_the_json_member_names() {
        let request = query(
            "Action=AddPermission&QueueUrl=u&Label=l&AWSAccountId.1=1&AWSAccountId.2=2\
             &ActionName.1=SendMessage",
        );
        assert_eq!(request.params.0["AWSAccountIds"], json!(["1", "2"]));
        assert_eq!(request.params.0["Actions"], json!(["SendMessage"]));
    }

    #[test]
    fn a_query_posted_to_a_queue_url_names_the_queue_by_path() {
        let request = parse_query("/000000000000/q", b"", b"Action=PurgeQueue").expect("parses");
        assert_eq!(request.params.0["QueueUrl"], json!("/000000000000/q"));
    }

    #[test]
    fn arbitrary_bytes_never_panic_either_parser() {
        // A small deterministic generator: the same inputs every run, no extra dependency.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"Action=.&%1{}[]\":,AttributeMessageBatchRequestEntry0xyz\xff";
        for _ in 0..5000 {
            let length = usize::try_from(next() % 64).unwrap_or(0);
            let bytes: Vec<u8> = (0..length)
                .map(|_| {
                    let index = usize::try_from(next() % alphabet.len() as u64).unwrap_or(0);
                    alphabet.get(index).copied().unwrap_or(b'x')
                })
                .collect();
            let _ = parse_query("/a/b", &bytes, &bytes);
            let _ = parse_json("AmazonSQS.SendMessage", &bytes);
        }
        let odd = "Action=X&Attribute.x.Name=a&Attribute.1=b&A..B=c&.=d&Tag.1.Key.Deep.er=e\
                   &SendMessageBatchRequestEntry.=f&SendMessageBatchRequestEntry.1=g";
        assert!(parse_query("/", b"", odd.as_bytes()).is_ok());
    }

    /// Found by review and confirmed with the sqs_request fuzz target: each part of a name
    /// was one level of recursion (and a copy of the remaining parts), so a 40 KB body
    /// overflowed the stack and took the broker down.
    #[test]
    fn a_name_of_thousands_of_parts_is_refused_not_recursed_into() {
        let deep = format!("Action=SendMessage&{}=v", "a.".repeat(20_000));
        let error = parse_query("/", b"", deep.as_bytes()).expect_err("too deep");
        assert_eq!(error.kind, ErrorKind::MalformedRequest);
        let limit = format!("Action=SendMessage&{}a=v", "a.".repeat(NAME_PARTS_MAX - 1));
        assert!(parse_query("/", b"", limit.as_bytes()).is_ok());
    }

    #[test]
    fn malformed_bodies_are_client_errors() {
        let error = parse_json("AmazonSQS.ListQueues", b"{nope").expect_err("bad json");
        assert_eq!(error.kind.status(), 400);
        let error = parse_json("AmazonSQS.ListQueues", b"[1]").expect_err("not an object");
        assert_eq!(error.kind.status(), 400);
        let error = parse_query("/", b"", b"Version=1").expect_err("no action");
        assert_eq!(error.kind, ErrorKind::MissingParameter);
        let error = parse_query("/", b"", &[0xff, 0xfe]).expect_err("not utf-8");
        assert_eq!(error.kind.status(), 400);
    }
}

//! SNS's two wire protocols, parsed into one request shape (the JSON protocol's).
//!
//! ```text
//! Query:  POST /  Action=Publish&Version=2010-03-31&TopicArn=...&Message=...
//!           MessageAttributes.entry.1.Name=k&MessageAttributes.entry.1.Value.DataType=String
//!           Attributes.entry.1.key=k&Attributes.entry.1.value=v   Tags.member.1.Key=k
//! JSON:   POST /  X-Amz-Target: SNS_20100331.Publish   {"TopicArn": "...", ...}
//! ```
//!
//! In the Query form, `X.member.N` is the list `X`, and `X.entry.N.{key,value}` (or
//! `{Name,Value}`) is the map `X`; everything else nests by its dots. Query scalars stay text.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ErrorKind, SnsError};
use crate::params::Params;

/// The `X-Amz-Target` prefix of SNS's JSON protocol.
pub const TARGET_PREFIX: &str = "SNS_20100331.";
/// The Query protocol's API version.
pub const VERSION: &str = "2010-03-31";

/// The most dot-separated parts a Query parameter name may have. The deepest name SNS's model
/// spells has 8:
/// `PublishBatchRequestEntries.member.N.MessageAttributes.entry.N.Value.DataType`. The key
/// tree is built, read and dropped recursively, one level per part, so a name of thousands of
/// parts would overflow the stack.
pub const NAME_PARTS_MAX: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Query,
}

#[derive(Debug)]
pub struct Request {
    pub protocol: Protocol,
    pub action: String,
    pub params: Params,
}

/// The actions SNS has and SQS has not, by which an unsigned Query request without a
/// `Version` is known to be SNS's.
pub const ACTIONS: &[&str] = &[
    "CreateTopic",
    "DeleteTopic",
    "ListTopics",
    "GetTopicAttributes",
    "SetTopicAttributes",
    "Subscribe",
    "ConfirmSubscription",
    "Unsubscribe",
    "ListSubscriptions",
    "ListSubscriptionsByTopic",
    "GetSubscriptionAttributes",
    "SetSubscriptionAttributes",
    "Publish",
    "PublishBatch",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

pub fn parse_json(target: &str, body: &[u8]) -> Result<Request, SnsError> {
    let action = target.strip_prefix(TARGET_PREFIX).ok_or_else(|| {
        SnsError::new(ErrorKind::InvalidAction, format!("Unknown target {target}"))
    })?;
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|_| SnsError::invalid("The request body is not valid JSON"))?
    };
    let Value::Object(map) = value else {
        return Err(SnsError::invalid("The request body must be a JSON object"));
    };
    Ok(Request {
        protocol: Protocol::Json,
        action: action.to_owned(),
        params: Params(map),
    })
}

/// Parses a Query request from its URL query string and form body.
pub fn parse_query(query: &[u8], body: &[u8]) -> Result<Request, SnsError> {
    let mut action = None;
    let mut tree = Node::default();
    for (key, value) in form_urlencoded::parse(query).chain(form_urlencoded::parse(body)) {
        match key.as_ref() {
            "Action" => action = Some(value.into_owned()),
            "Version" | "AWSAccessKeyId" | "Signature" | "SignatureMethod" | "SignatureVersion"
            | "Timestamp" | "Expires" | "SecurityToken" => {}
            k if k.starts_with("X-Amz-") => {}
            k if k.split('.').nth(NAME_PARTS_MAX).is_some() => {
                return Err(SnsError::invalid(format!(
                    "a parameter name has more than {NAME_PARTS_MAX} parts"
                )));
            }
            k => tree.insert(k.split('.'), value.into_owned()),
        }
    }
    let action = action.ok_or_else(|| SnsError::missing("Action"))?;
    let params = match tree.into_value() {
        Value::Object(params) => params,
        // No parameters at all (ListTopics), or a stray top-level list.
        _ => Map::new(),
    };
    Ok(Request {
        protocol: Protocol::Query,
        action,
        params: Params(params),
    })
}

/// Whether a Query request is SNS's: its `Version`, else its action.
pub fn is_query_for_sns(query: &[u8], body: &[u8]) -> bool {
    let mut action = None;
    for (key, value) in form_urlencoded::parse(query).chain(form_urlencoded::parse(body)) {
        match key.as_ref() {
            "Version" => return value == VERSION,
            "Action" => action = Some(value),
            _ => {}
        }
    }
    action.is_some_and(|a| ACTIONS.contains(&a.as_ref()))
}

/// A flattened Query key tree: `a.b.1.c=v` nests as a -> b -> 1 -> c.
#[derive(Debug, Default)]
struct Node {
    text: Option<String>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn insert<'a>(&mut self, mut path: impl Iterator<Item = &'a str>, value: String) {
        match path.next() {
            None => self.text = Some(value),
            Some(segment) => self
                .children
                .entry(segment.to_owned())
                .or_default()
                .insert(path, value),
        }
    }

    fn into_value(self) -> Value {
        if self.children.is_empty() {
            return self.text.map_or(Value::Null, Value::String);
        }
        let mut children = self.children;
        if children.len() == 1 {
            if let Some(list) = children.remove("member") {
                return Value::Array(list.numbered().map(Node::into_value).collect());
            }
            if let Some(entries) = children.remove("entry") {
                return Value::Object(entries.numbered().filter_map(Node::entry).collect());
            }
        }
        Value::Object(
            children
                .into_iter()
                .map(|(k, v)| (k, v.into_value()))
                .collect(),
        )
    }

    /// Children in the order of their numbers (`member.2` after `member.1`, `member.10` last).
    fn numbered(self) -> impl Iterator<Item = Node> {
        let mut items: Vec<(u64, Node)> = self
            .children
            .into_iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v)
    }

    /// A map entry: `key`/`value` (Attributes, in lower case) or `Name`/`Value`
    /// (MessageAttributes).
    fn entry(mut self) -> Option<(String, Value)> {
        let key = self
            .children
            .remove("key")
            .or_else(|| self.children.remove("Name"))?
            .text?;
        let value = self
            .children
            .remove("value")
            .or_else(|| self.children.remove("Value"))
            .map_or(Value::Null, Node::into_value);
        Some((key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_lists_and_maps_take_the_json_shape() {
        let body = b"Action=Publish&Version=2010-03-31&TopicArn=arn&Message=hi\
            &MessageAttributes.entry.1.Name=color&MessageAttributes.entry.1.Value.DataType=String\
            &MessageAttributes.entry.1.Value.StringValue=red\
            &Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=d\
            &Tags.member.2.Key=b&Tags.member.2.Value=2&Tags.member.10.Key=c&Tags.member.1.Key=a";
        let request = parse_query(b"", body).unwrap();
        assert_eq!(request.action, "Publish");
        assert_eq!(
            Value::Object(request.params.0),
            json!({
                "TopicArn": "arn",
                "Message": "hi",
                "MessageAttributes": {"color": {"DataType": "String", "StringValue": "red"}},
                "Attributes": {"DisplayName": "d"},
                "Tags": [{"Key": "a"}, {"Key": "b", "Value": "2"}, {"Key": "c"}],
            })
        );
    }

    /// Found by review and confirmed with the sns_request fuzz target: each part of a name
    /// was one level of the key tree, built, read and dropped recursively, so a 400 KB body
    /// overflowed the stack and took the broker down.
    #[test]
    fn a_name_of_thousands_of_parts_is_refused_not_recursed_into() {
        let deep = format!("Action=Publish&{}=v", "a.".repeat(200_000));
        let error = parse_query(b"", deep.as_bytes()).expect_err("too deep");
        assert_eq!(error.kind, ErrorKind::InvalidParameter);
        let limit = format!("Action=Publish&{}a=v", "a.".repeat(NAME_PARTS_MAX - 1));
        assert!(parse_query(b"", limit.as_bytes()).is_ok());
    }

    #[test]
    fn sns_query_requests_are_known_by_version_or_action() {
        assert!(is_query_for_sns(
            b"",
            b"Action=CreateQueue&Version=2010-03-31"
        ));
        assert!(!is_query_for_sns(
            b"",
            b"Action=AddPermission&Version=2012-11-05"
        ));
        assert!(is_query_for_sns(b"Action=ListTopics", b""));
        assert!(!is_query_for_sns(b"", b"Action=ListQueues"));
    }
}

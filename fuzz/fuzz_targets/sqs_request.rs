//! SQS request bodies in both wire protocols: `mqbridge_sqs::protocol::parse_json` (AWS JSON
//! 1.0) and `parse_query` (Query: URL query string and form body).
//!
//! Input: an options octet, then the request.
//! - bit 0: Query instead of JSON;
//! - JSON: the input is the body; bits 1-2 choose the `X-Amz-Target` (an SQS action, an
//!   unknown one, or another service's);
//! - Query: the input up to the first NUL is the query string and the rest the body; bit 1
//!   posts to a queue URL path instead of `/`.
//!
//! Checks: a parsed Query request has the JSON protocol's shape with text leaves only (no
//! numbers, booleans or nulls: Query carries text). Runs on a thread with the broker's stack
//! (`mqbridge_fuzz::stack`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqbridge_fuzz::stack::on_broker_stack;
use mqbridge_sqs::protocol::{self, Protocol};
use serde_json::Value;

const TARGETS: [&str; 4] = [
    "AmazonSQS.SendMessage",
    "AmazonSQS.CreateQueue",
    "AmazonSQS.NoSuchAction",
    "SNS_20100331.Publish",
];

fuzz_target!(|input: &[u8]| on_broker_stack(input, check));

fn check(input: &[u8]) {
    let (options, request) = mqbridge_fuzz::options(input);
    if options & 1 == 0 {
        let target = TARGETS[usize::from(options >> 1 & 0b11)];
        if let Ok(parsed) = protocol::parse_json(target, request) {
            assert_eq!(parsed.protocol, Protocol::Json);
        }
        return;
    }
    let path = if options & 0b10 != 0 {
        "/000000000000/q"
    } else {
        "/"
    };
    let (query, body) = match request.iter().position(|&b| b == 0) {
        Some(at) => (&request[..at], &request[at + 1..]),
        None => (&b""[..], request),
    };
    if let Ok(parsed) = protocol::parse_query(path, query, body) {
        assert_eq!(parsed.protocol, Protocol::Query);
        for (name, value) in &parsed.params.0 {
            assert!(
                only_text(value),
                "{name} holds a value Query cannot carry: {value}"
            );
        }
    }
}

/// Whether every leaf of `value` is a string.
fn only_text(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(only_text),
        Value::Object(members) => members.values().all(only_text),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

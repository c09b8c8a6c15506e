//! SNS subscription filter policies: `mqbridge_sns::filter::FilterPolicy::parse`, then
//! `matches_attributes` or `matches_body` against a message.
//!
//! Input: an options octet, then the policy's JSON text, a NUL, and the message: in body
//! scope the published text, in attribute scope lines of `name:data type:value`.
//! - bit 0: MessageBody scope instead of MessageAttributes.
//!
//! Checks: the policy means the same after its JSON is parsed and written out again (no
//! whitespace, duplicate keys dropped the same way): it parses exactly when the original
//! does, and matches the message exactly when the original does. Runs on a thread with the
//! broker's stack (`mqbridge_fuzz::stack`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqbridge_fuzz::stack::on_broker_stack;
use mqbridge_sns::filter::{Attribute, FilterPolicy, MAX_POLICY_BYTES, Scope};

fuzz_target!(|input: &[u8]| on_broker_stack(input, check));

fn check(input: &[u8]) {
    let (options, rest) = mqbridge_fuzz::options(input);
    let scope = if options & 1 == 1 {
        Scope::MessageBody
    } else {
        Scope::MessageAttributes
    };
    let (policy, message) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &b""[..]),
    };
    let (Ok(policy), Ok(message)) = (std::str::from_utf8(policy), std::str::from_utf8(message))
    else {
        return;
    };
    let parsed = FilterPolicy::parse(policy, scope);
    let verdict = parsed.as_ref().ok().map(|p| matches(p, message));
    if policy.len() > MAX_POLICY_BYTES {
        return;
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(policy) else {
        return;
    };
    let compact = serde_json::to_string(&json).expect("a JSON value serializes");
    let reparsed = FilterPolicy::parse(&compact, scope);
    assert_eq!(
        parsed.is_ok(),
        reparsed.is_ok(),
        "{parsed:?} but {reparsed:?} for {compact}"
    );
    let reverdict = reparsed.as_ref().ok().map(|p| matches(p, message));
    assert_eq!(
        verdict, reverdict,
        "the compact policy {compact} matches differently"
    );
}

fn matches(policy: &FilterPolicy, message: &str) -> bool {
    match policy.scope() {
        Scope::MessageBody => policy.matches_body(message),
        Scope::MessageAttributes => {
            let attributes: Vec<(&str, Attribute<'_>)> = message
                .lines()
                .filter_map(|line| {
                    let mut fields = line.splitn(3, ':');
                    let name = fields.next()?;
                    let data_type = fields.next()?;
                    let value = fields.next()?;
                    Some((name, Attribute { data_type, value }))
                })
                .collect();
            policy.matches_attributes(&attributes)
        }
    }
}

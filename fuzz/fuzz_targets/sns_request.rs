//! SNS request bodies: `mqbridge_sns::protocol::parse_query` (Query: URL query string and
//! form body), `is_query_for_sns` (which service a Query request is for) and `parse_json`.
//!
//! Input: an options octet, then the request.
//! - bit 0: JSON (`X-Amz-Target: SNS_20100331.Publish`) instead of Query;
//! - Query: the input up to the first NUL is the query string and the rest the body.
//!
//! Checks: Query parsing succeeds exactly when the request names an action and no parameter
//! name has more parts than `NAME_PARTS_MAX`; a request with SNS's API version is always taken
//! for SNS. Runs on a thread with the broker's stack (`mqbridge_fuzz::stack`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqbridge_fuzz::stack::on_broker_stack;
use mqbridge_sns::protocol;

fuzz_target!(|input: &[u8]| on_broker_stack(input, check));

fn check(input: &[u8]) {
    let (options, request) = mqbridge_fuzz::options(input);
    if options & 1 == 1 {
        let _ = protocol::parse_json("SNS_20100331.Publish", request);
        return;
    }
    let (query, body) = match request.iter().position(|&b| b == 0) {
        Some(at) => (&request[..at], &request[at + 1..]),
        None => (&b""[..], request),
    };
    let pairs = || form_pairs(query).chain(form_pairs(body));
    let names_action = pairs().any(|(key, _)| key == "Action");
    let too_deep = pairs().any(|(key, _)| {
        !key.starts_with("X-Amz-") && key.split('.').count() > protocol::NAME_PARTS_MAX
    });
    let parsed = protocol::parse_query(query, body);
    assert_eq!(parsed.is_ok(), names_action && !too_deep, "{parsed:?}");
    let first_version = pairs().find(|(key, _)| key == "Version");
    if first_version.is_some_and(|(_, value)| value == protocol::VERSION) {
        assert!(protocol::is_query_for_sns(query, body));
    }
}

fn form_pairs(octets: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(octets).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

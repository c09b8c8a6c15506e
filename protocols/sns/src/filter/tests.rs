//! Unit tests, by area: validation errors and limits, attribute matching, body matching.

mod attributes;
mod body;
mod complexity;
mod validation;

use super::{Attribute, FilterPolicy, PolicyError, Scope};

fn attribute_policy(json: &str) -> FilterPolicy {
    FilterPolicy::parse(json, Scope::MessageAttributes).expect("policy should be valid")
}

fn body_policy(json: &str) -> FilterPolicy {
    FilterPolicy::parse(json, Scope::MessageBody).expect("policy should be valid")
}

/// The message of the error parsing `json` gives, in either scope.
fn error(json: &str, scope: Scope) -> String {
    match FilterPolicy::parse(json, scope) {
        Ok(policy) => panic!("expected {json} to be refused, got {policy:?}"),
        Err(PolicyError {
            limit_exceeded,
            message,
        }) => {
            assert!(!limit_exceeded, "{message}");
            message
        }
    }
}

fn string(value: &str) -> Attribute<'_> {
    Attribute {
        data_type: "String",
        value,
    }
}

fn number(value: &str) -> Attribute<'_> {
    Attribute {
        data_type: "Number",
        value,
    }
}

fn array(value: &str) -> Attribute<'_> {
    Attribute {
        data_type: "String.Array",
        value,
    }
}

#[test]
fn scope_names_round_trip() {
    for scope in [Scope::MessageAttributes, Scope::MessageBody] {
        assert_eq!(Scope::parse(scope.as_str()), Some(scope));
    }
    assert_eq!(Scope::parse("RandomValue"), None);
    assert_eq!(Scope::parse("messagebody"), None);
}

#[test]
fn parsed_policy_keeps_its_scope() {
    assert_eq!(body_policy(r#"{"a":["x"]}"#).scope(), Scope::MessageBody);
    assert_eq!(
        attribute_policy(r#"{"a":["x"]}"#).scope(),
        Scope::MessageAttributes
    );
}

//! Subscription filter policies: the `FilterPolicy` and `FilterPolicyScope` attributes of
//! an SNS subscription, parsed and validated once when set, then asked of every message
//! published to the topic.
//!
//! A policy is compiled into alternatives, one for each way through its `$or` operators.
//! An alternative is a list of leaves, each a key path and the conditions on it, and it
//! matches when every leaf does; a leaf matches when any of its conditions does. AWS counts
//! a policy's complexity over this same shape, so the limits are checked while building it.
//!
//! Body-scope key paths are joined with dots, the way AWS flattens both the policy and the
//! message: `{"a": {"b": [..]}}` and `{"a.b": [..]}` select the same values.
//!
//! Everything here is pure: no I/O, no panics, and work bounded by the limits below for
//! any policy or message text.

mod condition;
mod eval;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use condition::Condition;

/// Largest accepted policy text (AWS: "The maximum size of a filter policy is 256 KB").
pub const MAX_POLICY_BYTES: usize = 256 * 1024;
/// Keys one alternative of a policy may name (AWS: "a maximum of five keys"; in body
/// scope only top-level keys count).
pub const MAX_KEYS: usize = 5;
/// Most combinations a policy may have (AWS: "must not exceed 150").
pub const MAX_COMBINATIONS: u64 = 150;

/// Where a subscription's filter policy looks: the `FilterPolicyScope` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    MessageAttributes,
    MessageBody,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "MessageAttributes" => Some(Scope::MessageAttributes),
            "MessageBody" => Some(Scope::MessageBody),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MessageAttributes => "MessageAttributes",
            Scope::MessageBody => "MessageBody",
        }
    }
}

/// A message attribute as SNS carries it: DataType `String`, `Number`, `Binary`,
/// `String.Array`, or a custom suffix such as `String.foo` or `Number.int`; `value` is the
/// StringValue (for `String.Array` a JSON array in text). Binary attributes never match:
/// AWS ignores them, so the filter treats them as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub data_type: &'a str,
    pub value: &'a str,
}

/// A parsed, validated subscription filter policy.
#[derive(Debug, Clone)]
pub struct FilterPolicy {
    scope: Scope,
    /// The policy's alternatives; it matches when any one of them does.
    alternatives: Vec<Alternative>,
}

/// One way through the policy's `$or`s: every leaf must match. Leaves are shared between
/// the alternatives that multiplying out an `$or` copies them into.
type Alternative = Vec<Arc<Leaf>>;

/// A key path and the conditions on it, any one of which may match.
#[derive(Debug)]
struct Leaf {
    /// Attribute name, or for the body the dotted path into the JSON object.
    path: String,
    conditions: Vec<Condition>,
}

/// Why a policy was refused. `message` is AWS's wording where it is known; the caller adds
/// the "Invalid parameter: FilterPolicy: " framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Set for errors that AWS reports as FilterPolicyLimitExceeded rather than
    /// InvalidParameter. AWS uses that code only for the number of policies per topic or
    /// account, which this module does not see, so parsing never sets it.
    pub limit_exceeded: bool,
    pub message: String,
}

impl PolicyError {
    fn invalid(message: impl Into<String>) -> PolicyError {
        PolicyError {
            limit_exceeded: false,
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

impl FilterPolicy {
    /// Parses and validates; errors carry AWS's wording (the caller wraps them as
    /// InvalidParameter `Invalid parameter: FilterPolicy: <message>`, or
    /// FilterPolicyLimitExceeded when `limit_exceeded`).
    pub fn parse(json: &str, scope: Scope) -> Result<FilterPolicy, PolicyError> {
        let alternatives = parse::compile(json, scope)?;
        Ok(FilterPolicy {
            scope,
            alternatives,
        })
    }

    /// The scope the policy was parsed for, which decides which `matches_*` applies.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Whether a message with these attributes passes the policy (MessageAttributes scope).
    pub fn matches_attributes(&self, attributes: &[(&str, Attribute<'_>)]) -> bool {
        eval::matches_attributes(&self.alternatives, attributes)
    }

    /// `body` is the published Message text; a body that is not a JSON object never
    /// matches (MessageBody scope).
    pub fn matches_body(&self, body: &str) -> bool {
        eval::matches_body(&self.alternatives, body)
    }
}

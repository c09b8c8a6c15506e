//! Matching a message against compiled alternatives.
//!
//! Both scopes first gather what the message holds at each key path, as a list of
//! values (several for an array), then ask every leaf about its path: a leaf matches
//! when any of its conditions accepts any of the values there.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use serde_json::Value;

use super::condition::{AnythingBut, Condition, canonical};
use super::{Alternative, Attribute, Leaf};

/// How deep into a message body (or a String.Array value) values are gathered. serde_json
/// already refuses deeper text by default; this keeps the walk bounded regardless.
const MAX_BODY_DEPTH: usize = 128;

/// One value found in the message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Found<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
}

/// The values at each key path of one message, keyed by borrowed attribute names or by
/// the dotted body paths built while walking the body.
type Values<'a, K> = HashMap<K, Vec<Found<'a>>>;

pub(super) fn matches_attributes(
    alternatives: &[Alternative],
    attributes: &[(&str, Attribute<'_>)],
) -> bool {
    // Each String.Array is parsed once per message, not once per policy key reading it.
    let arrays: Vec<Option<Value>> = attributes
        .iter()
        .map(|(_, a)| {
            if a.data_type == "String.Array" {
                serde_json::from_str(a.value).ok()
            } else {
                None
            }
        })
        .collect();
    let mut values: Values<'_, &str> = HashMap::new();
    for ((name, attribute), array) in attributes.iter().zip(&arrays) {
        if let Some(found) = attribute_values(attribute, array.as_ref()) {
            values.entry(*name).or_default().extend(found);
        }
    }
    // AWS: `"exists": false` does not match a message that has no attributes at all.
    let absence_can_match = !values.is_empty();
    matches(alternatives, &values, absence_can_match)
}

/// The values an attribute contributes, or `None` when the filter cannot see it at all:
/// Binary (and any other type AWS does not filter on) counts as absent.
fn attribute_values<'a>(
    attribute: &Attribute<'a>,
    array: Option<&'a Value>,
) -> Option<Vec<Found<'a>>> {
    if attribute.data_type == "String.Array" {
        let mut found = Vec::new();
        // A value that is not a JSON array still makes the attribute present, with
        // nothing in it to match.
        if let Some(Value::Array(items)) = array {
            for item in items {
                gather_scalars(item, 0, &mut |v| found.push(v));
            }
        }
        return Some(found);
    }
    // Custom types ("String.foo", "Number.int") filter like their base type.
    match attribute.data_type.split('.').next() {
        Some("String") => Some(vec![Found::Str(attribute.value)]),
        Some("Number") => Some(
            attribute
                .value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Found::Num)
                .into_iter()
                .collect(),
        ),
        _ => None,
    }
}

pub(super) fn matches_body(alternatives: &[Alternative], body: &str) -> bool {
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    let mut paths: Values<'_, String> = HashMap::new();
    for (key, value) in &root {
        gather_body(value, key.clone(), 1, &mut paths);
    }
    matches(alternatives, &paths, true)
}

/// Records every scalar under `value` at `path`, joining object keys with dots; array
/// elements share their array's path, so a key matches if any element does.
fn gather_body<'a>(
    value: &'a Value,
    path: String,
    depth: usize,
    paths: &mut HashMap<String, Vec<Found<'a>>>,
) {
    if depth > MAX_BODY_DEPTH {
        return;
    }
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                gather_body(child, format!("{path}.{key}"), depth + 1, paths);
            }
        }
        Value::Array(items) => {
            for item in items {
                gather_body(item, path.clone(), depth + 1, paths);
            }
        }
        scalar => {
            if let Some(found) = as_found(scalar) {
                paths.entry(path).or_default().push(found);
            }
        }
    }
}

/// Scalars of a String.Array element, flattening nested arrays; objects hold no values an
/// attribute key could name, so they are skipped.
fn gather_scalars<'a>(value: &'a Value, depth: usize, push: &mut impl FnMut(Found<'a>)) {
    match value {
        Value::Array(items) if depth < MAX_BODY_DEPTH => {
            for item in items {
                gather_scalars(item, depth + 1, push);
            }
        }
        other => {
            if let Some(found) = as_found(other) {
                push(found);
            }
        }
    }
}

fn as_found(value: &Value) -> Option<Found<'_>> {
    match value {
        Value::Null => Some(Found::Null),
        Value::Bool(b) => Some(Found::Bool(*b)),
        Value::Number(n) => n.as_f64().map(Found::Num),
        Value::String(s) => Some(Found::Str(s)),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn matches<K: Borrow<str> + Hash + Eq>(
    alternatives: &[Alternative],
    values: &Values<'_, K>,
    absence_can_match: bool,
) -> bool {
    alternatives.iter().any(|leaves| {
        leaves.iter().all(|leaf| {
            let found = values.get(leaf.path.as_str()).map(Vec::as_slice);
            leaf_matches(leaf, found, absence_can_match)
        })
    })
}

/// `found` is `None` when the message has nothing at the leaf's path.
fn leaf_matches(leaf: &Leaf, found: Option<&[Found<'_>]>, absence_can_match: bool) -> bool {
    leaf.conditions
        .iter()
        .any(|condition| match (condition, found) {
            (Condition::Exists(false), None) => absence_can_match,
            (Condition::Exists(false), Some(_)) => false,
            // AWS: the key must hold a non-null value.
            (Condition::Exists(true), found) => {
                found.unwrap_or_default().iter().any(|v| *v != Found::Null)
            }
            (_, None) => false,
            (condition, Some(values)) => values.iter().any(|v| accepts(condition, *v)),
        })
}

/// Whether one value satisfies a condition other than `exists`. Conditions are typed:
/// strings match strings, numbers match numbers, so "10" and 10 are different values.
fn accepts(condition: &Condition, value: Found<'_>) -> bool {
    match (condition, value) {
        (Condition::Null, Found::Null) => true,
        (Condition::Bool(b), Found::Bool(v)) => *b == v,
        (Condition::Str(s), Found::Str(v)) => s == v,
        (Condition::Num(n), Found::Num(v)) => *n == canonical(v),
        (Condition::Prefix(p), Found::Str(v)) => v.starts_with(p.as_str()),
        (Condition::Suffix(s), Found::Str(v)) => v.ends_with(s.as_str()),
        (Condition::EqualsIgnoreCase(lower), Found::Str(v)) => v.to_lowercase() == *lower,
        (Condition::Numeric(range), Found::Num(v)) => range.contains(canonical(v)),
        (Condition::Cidr(cidr), Found::Str(v)) => cidr.contains(v),
        (Condition::AnythingBut(not), value) => anything_but(not, value),
        _ => false,
    }
}

/// Matches any value that is not excluded. A null is no value at all, so it never
/// matches; a value of the other type (a number against a list of strings) is not one
/// of the excluded values, so it does.
fn anything_but(not: &AnythingBut, value: Found<'_>) -> bool {
    match (not, value) {
        (_, Found::Null) => false,
        (AnythingBut::Strings(list), Found::Str(v)) => !list.iter().any(|s| s == v),
        (AnythingBut::Numbers(list), Found::Num(v)) => !list.contains(&canonical(v)),
        (AnythingBut::Prefix(p), Found::Str(v)) => !v.starts_with(p.as_str()),
        (AnythingBut::Suffix(s), Found::Str(v)) => !v.ends_with(s.as_str()),
        _ => true,
    }
}

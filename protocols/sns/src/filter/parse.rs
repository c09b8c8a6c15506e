//! Policy JSON to alternatives, checking AWS's structural rules and limits on the way.
//!
//! Limits are checked after every step that can grow the result, not once at the end, so
//! a hostile policy (thousands of keys, `$or`s nested inside `$or`s) is refused after
//! bounded work instead of being multiplied out first.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::condition;
use super::{Alternative, Leaf, MAX_COMBINATIONS, MAX_KEYS, MAX_POLICY_BYTES, PolicyError, Scope};

/// Deepest nesting of objects and `$or`s walked. A leaf at depth d costs d combinations
/// for each of its values, so anything deeper than the combination limit is refused as
/// too complex anyway; the bound keeps recursion shallow whatever the JSON parser allows.
const MAX_NESTING: usize = MAX_COMBINATIONS as usize;

/// Match operators; an `$or` whose objects use one of these as a key is not an `$or`.
const RESERVED_KEYS: &[&str] = &[
    "prefix",
    "suffix",
    "equals-ignore-case",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
    "wildcard",
];

/// An alternative under construction, with what the limits need to know about it.
#[derive(Clone)]
struct Draft {
    leaves: Alternative,
    /// Distinct top-level keys; only these count toward the key limit in body scope, and
    /// in attribute scope every key is top-level.
    top_keys: Vec<String>,
    /// Product over the leaves of (values x depth): this alternative's combinations.
    combinations: u64,
}

impl Draft {
    fn new() -> Draft {
        Draft {
            leaves: Vec::new(),
            top_keys: Vec::new(),
            combinations: 1,
        }
    }
}

/// Where in the policy object the walk is.
#[derive(Clone, Copy)]
struct Position<'a> {
    /// Dotted path of the enclosing object, `None` at the root.
    prefix: Option<&'a str>,
    /// The top-level key this object hangs from, `None` at the root.
    top: Option<&'a str>,
    /// 1 for keys of the root object, 2 for keys one object down, and so on.
    depth: u64,
    /// Objects and `$or`s entered so far, for the recursion bound.
    nesting: usize,
}

pub(super) fn compile(json: &str, scope: Scope) -> Result<Vec<Alternative>, PolicyError> {
    if json.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::invalid(
            "Filter policy can not be larger than 256 KB",
        ));
    }
    let value: Value = serde_json::from_str(json)
        .map_err(|e| PolicyError::invalid(format!("failed to parse JSON. {e}")))?;
    let Value::Object(root) = value else {
        return Err(PolicyError::invalid("Filter is not an object"));
    };
    let start = Position {
        prefix: None,
        top: None,
        depth: 1,
        nesting: 0,
    };
    let drafts = Walk { scope }.object(&root, start, vec![Draft::new()])?;
    Ok(drafts.into_iter().map(|d| d.leaves).collect())
}

struct Walk {
    scope: Scope,
}

impl Walk {
    /// Adds the keys of one policy object to every draft, returning the drafts that result
    /// (more than were given when the object holds an `$or`).
    fn object(
        &self,
        object: &Map<String, Value>,
        at: Position<'_>,
        mut drafts: Vec<Draft>,
    ) -> Result<Vec<Draft>, PolicyError> {
        if object.is_empty() {
            return Err(PolicyError::invalid("Empty objects are not allowed"));
        }
        if at.nesting >= MAX_NESTING {
            return Err(too_complex());
        }
        for (key, value) in object {
            if key == "$or"
                && let Some(options) = or_options(value)
            {
                drafts = self.or(&options, at, drafts)?;
                continue;
            }
            let path = match at.prefix {
                Some(prefix) => format!("{prefix}.{key}"),
                None => key.clone(),
            };
            let top = at.top.unwrap_or(key);
            drafts = match value {
                Value::Array(items) => {
                    let leaf = Leaf {
                        path,
                        conditions: condition::parse_list(items)?,
                    };
                    let cost = (items.len() as u64).saturating_mul(at.depth);
                    add_leaf(drafts, &Arc::new(leaf), top, cost)?
                }
                Value::Object(inner) => self.nested(inner, &path, top, at, drafts)?,
                _ => {
                    return Err(PolicyError::invalid(format!(
                        "\"{key}\" must be an object or an array"
                    )));
                }
            };
        }
        Ok(drafts)
    }

    /// A key whose value is an object: a path one level down into the message body.
    fn nested(
        &self,
        inner: &Map<String, Value>,
        path: &str,
        top: &str,
        at: Position<'_>,
        drafts: Vec<Draft>,
    ) -> Result<Vec<Draft>, PolicyError> {
        if self.scope == Scope::MessageAttributes {
            return Err(PolicyError::invalid(
                "Filter policy scope MessageAttributes does not support nested filter policy",
            ));
        }
        let below = Position {
            prefix: Some(path),
            top: Some(top),
            depth: at.depth + 1,
            nesting: at.nesting + 1,
        };
        self.object(inner, below, drafts)
    }

    /// Each option of an `$or` continues every draft so far; the results are pooled.
    fn or(
        &self,
        options: &[&Map<String, Value>],
        at: Position<'_>,
        drafts: Vec<Draft>,
    ) -> Result<Vec<Draft>, PolicyError> {
        let inside = Position {
            nesting: at.nesting + 1,
            ..at
        };
        let mut pooled = Vec::new();
        for option in options {
            pooled.extend(self.object(option, inside, drafts.clone())?);
            check_limits(&pooled)?;
        }
        Ok(pooled)
    }
}

/// The objects of an `$or`, if AWS would read it as one: an array of at least two
/// objects, none keyed by a match operator. Anything else is an ordinary key named "$or".
fn or_options(value: &Value) -> Option<Vec<&Map<String, Value>>> {
    let Value::Array(items) = value else {
        return None;
    };
    if items.len() < 2 {
        return None;
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(o) if !o.keys().any(|k| RESERVED_KEYS.contains(&k.as_str())) => Some(o),
            _ => None,
        })
        .collect()
}

fn add_leaf(
    mut drafts: Vec<Draft>,
    leaf: &Arc<Leaf>,
    top: &str,
    cost: u64,
) -> Result<Vec<Draft>, PolicyError> {
    for draft in &mut drafts {
        draft.leaves.push(Arc::clone(leaf));
        if !draft.top_keys.iter().any(|k| k == top) {
            draft.top_keys.push(top.to_string());
        }
        draft.combinations = draft.combinations.saturating_mul(cost);
    }
    check_limits(&drafts)?;
    Ok(drafts)
}

/// Both limits only grow as the walk goes on, so failing early never refuses a policy
/// that would have passed at the end.
fn check_limits(drafts: &[Draft]) -> Result<(), PolicyError> {
    if drafts.iter().any(|d| d.top_keys.len() > MAX_KEYS) {
        return Err(PolicyError::invalid(format!(
            "Filter policy can not have more than {MAX_KEYS} keys"
        )));
    }
    let total = drafts
        .iter()
        .fold(0u64, |sum, d| sum.saturating_add(d.combinations));
    if total > MAX_COMBINATIONS {
        return Err(too_complex());
    }
    Ok(())
}

fn too_complex() -> PolicyError {
    PolicyError::invalid("Filter policy is too complex")
}

//! One entry of a policy key's list: a literal to compare with, or a match expression such
//! as `{"prefix": "a"}`. Parsed here, with AWS's error texts for each malformed shape.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::PolicyError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Condition {
    /// `null`: matches a JSON null in the body (attributes are never null).
    Null,
    Bool(bool),
    /// A plain string: exact, case-sensitive match against string values.
    Str(String),
    /// A plain number: numeric equality against number values, at five decimals.
    Num(f64),
    Prefix(String),
    Suffix(String),
    /// Stored lower-cased, so matching lower-cases only the message side.
    EqualsIgnoreCase(String),
    AnythingBut(AnythingBut),
    Numeric(Range),
    Exists(bool),
    Cidr(Cidr),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum AnythingBut {
    Strings(Vec<String>),
    Numbers(Vec<f64>),
    Prefix(String),
    Suffix(String),
}

/// A numeric interval; `=` is the interval with both ends inclusive at the same value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Range {
    pub lower: Option<Bound>,
    pub upper: Option<Bound>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Bound {
    pub value: f64,
    pub inclusive: bool,
}

/// A network kept with its host bits cleared, so containment is one masked compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cidr {
    V4 { network: u32, bits: u32 },
    V6 { network: u128, bits: u32 },
}

/// AWS compares numbers to five decimal places. Rounding policy and message numbers the
/// same way makes values that differ only past that precision compare equal.
pub(super) fn canonical(x: f64) -> f64 {
    let scaled = (x * 1e5).round();
    // Beyond 2^53 the scaling no longer round-trips exactly; such numbers are far outside
    // AWS's documented range anyway, so they are compared as they are.
    if scaled.is_finite() && scaled.abs() < 9.0e15 {
        scaled / 1e5
    } else {
        x
    }
}

/// Parses a key's list of conditions.
pub(super) fn parse_list(items: &[Value]) -> Result<Vec<Condition>, PolicyError> {
    if items.is_empty() {
        return Err(PolicyError::invalid("Empty arrays are not allowed"));
    }
    items.iter().map(parse_one).collect()
}

fn parse_one(item: &Value) -> Result<Condition, PolicyError> {
    match item {
        Value::Null => Ok(Condition::Null),
        Value::Bool(b) => Ok(Condition::Bool(*b)),
        Value::String(s) => Ok(Condition::Str(s.clone())),
        Value::Number(_) => number(item).map(Condition::Num),
        Value::Array(_) => Err(PolicyError::invalid(
            "Match value must be String, number, true, false, or null",
        )),
        Value::Object(expression) => parse_expression(expression),
    }
}

fn parse_expression(expression: &Map<String, Value>) -> Result<Condition, PolicyError> {
    let (name, value) = single_entry(expression, "Match expression name not found")?;
    match name {
        "prefix" => string_operand(name, value).map(Condition::Prefix),
        "suffix" => string_operand(name, value).map(Condition::Suffix),
        "equals-ignore-case" => {
            string_operand(name, value).map(|s| Condition::EqualsIgnoreCase(s.to_lowercase()))
        }
        "numeric" => match value {
            Value::Array(terms) => parse_numeric(terms).map(Condition::Numeric),
            _ => Err(PolicyError::invalid("Value of numeric must be an array.")),
        },
        "anything-but" => parse_anything_but(value).map(Condition::AnythingBut),
        "exists" => match value {
            Value::Bool(b) => Ok(Condition::Exists(*b)),
            _ => Err(PolicyError::invalid(
                "exists match pattern must be either true or false.",
            )),
        },
        // AWS names the prefix operator in this error, not cidr; kept for fidelity.
        "cidr" => match value {
            Value::String(s) => parse_cidr(s).map(Condition::Cidr),
            _ => Err(PolicyError::invalid(
                "prefix match pattern must be a string",
            )),
        },
        other => Err(PolicyError::invalid(format!(
            "Unrecognized match type {other}"
        ))),
    }
}

/// The one name and value of a match expression object.
fn single_entry<'a>(
    expression: &'a Map<String, Value>,
    when_empty: &str,
) -> Result<(&'a str, &'a Value), PolicyError> {
    let mut entries = expression.iter();
    match (entries.next(), entries.next()) {
        (Some((name, value)), None) => Ok((name.as_str(), value)),
        (None, _) => Err(PolicyError::invalid(when_empty)),
        (Some(_), Some(_)) => Err(PolicyError::invalid(
            "Only one key allowed in match expression",
        )),
    }
}

fn string_operand(operator: &str, value: &Value) -> Result<String, PolicyError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(PolicyError::invalid(format!(
            "{operator} match pattern must be a string"
        ))),
    }
}

fn number(value: &Value) -> Result<f64, PolicyError> {
    // serde_json gives every parsed number as f64; the error path is for completeness.
    value
        .as_f64()
        .filter(|n| n.is_finite())
        .map(canonical)
        .ok_or_else(|| PolicyError::invalid(format!("Invalid number {value}")))
}

/// How AWS quotes a term in numeric-expression errors: strings bare, a missing term as
/// the closing bracket its parser found instead.
fn term_text(term: Option<&Value>) -> String {
    match term {
        None => "]".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `["=", n]`, `["<" | "<=", n]`, or `[">" | ">=", n]` optionally followed by
/// `"<" | "<=", m` with n < m.
fn parse_numeric(terms: &[Value]) -> Result<Range, PolicyError> {
    let operator = match terms.first() {
        Some(Value::String(op)) => op.as_str(),
        other => {
            return Err(PolicyError::invalid(format!(
                "Invalid member in numeric match: {}",
                term_text(other)
            )));
        }
    };
    let inclusive = match operator {
        "=" | "<=" | ">=" => true,
        "<" | ">" => false,
        _ => {
            return Err(PolicyError::invalid(format!(
                "Unrecognized numeric range operator: {operator}"
            )));
        }
    };
    let name = if operator == "=" { "equals" } else { operator };
    let value = numeric_term(terms.get(1), name)?;
    let bound = Some(Bound { value, inclusive });
    match operator {
        "=" | "<" | "<=" if terms.len() > 2 => Err(too_many_elements()),
        "=" => Ok(Range {
            lower: bound,
            upper: bound,
        }),
        "<" | "<=" => Ok(Range {
            lower: None,
            upper: bound,
        }),
        _ => complete_range(bound, terms.get(2..).unwrap_or_default()),
    }
}

/// The optional upper half of a range that began with `>` or `>=`.
fn complete_range(lower: Option<Bound>, rest: &[Value]) -> Result<Range, PolicyError> {
    let Some(first) = rest.first() else {
        return Ok(Range { lower, upper: None });
    };
    let Value::String(operator) = first else {
        return Err(PolicyError::invalid(format!(
            "Bad value in numeric range: {}",
            term_text(Some(first))
        )));
    };
    let inclusive = match operator.as_str() {
        "<=" => true,
        "<" => false,
        _ => {
            return Err(PolicyError::invalid(format!(
                "Bad numeric range operator: {operator}"
            )));
        }
    };
    let value = numeric_term(rest.get(1), operator)?;
    if rest.len() > 2 {
        return Err(PolicyError::invalid(
            "Too many terms in numeric range expression",
        ));
    }
    if lower.is_some_and(|bottom| bottom.value >= value) {
        return Err(PolicyError::invalid("Bottom must be less than top"));
    }
    Ok(Range {
        lower,
        upper: Some(Bound { value, inclusive }),
    })
}

fn numeric_term(term: Option<&Value>, operator: &str) -> Result<f64, PolicyError> {
    match term {
        Some(value @ Value::Number(_)) => number(value),
        _ => Err(PolicyError::invalid(format!(
            "Value of {operator} must be numeric"
        ))),
    }
}

fn too_many_elements() -> PolicyError {
    PolicyError::invalid("Too many elements in numeric expression")
}

fn parse_anything_but(value: &Value) -> Result<AnythingBut, PolicyError> {
    match value {
        Value::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
        Value::Number(_) => Ok(AnythingBut::Numbers(vec![number(value)?])),
        Value::Array(items) => anything_but_list(items),
        Value::Object(expression) => {
            let (name, operand) =
                single_entry(expression, "Anything-But expression name not found")?;
            if name != "prefix" && name != "suffix" {
                return Err(PolicyError::invalid(format!(
                    "Unsupported anything-but pattern: {name}"
                )));
            }
            let Value::String(text) = operand else {
                return Err(PolicyError::invalid(
                    "prefix/suffix match pattern must be a string",
                ));
            };
            if text.is_empty() {
                return Err(PolicyError::invalid("Null prefix/suffix not allowed"));
            }
            Ok(if name == "prefix" {
                AnythingBut::Prefix(text.clone())
            } else {
                AnythingBut::Suffix(text.clone())
            })
        }
        Value::Null | Value::Bool(_) => Err(PolicyError::invalid(
            "Value of anything-but must be an array or single string/number value.",
        )),
    }
}

/// A list must be all strings or all numbers, and not empty.
fn anything_but_list(items: &[Value]) -> Result<AnythingBut, PolicyError> {
    let mut strings = Vec::new();
    let mut numbers = Vec::new();
    for item in items {
        match item {
            Value::String(s) => strings.push(s.clone()),
            Value::Number(_) => numbers.push(number(item)?),
            _ => {
                return Err(PolicyError::invalid(
                    "Inside anything but list, start|null|boolean is not supported.",
                ));
            }
        }
    }
    match (strings.is_empty(), numbers.is_empty()) {
        (false, true) => Ok(AnythingBut::Strings(strings)),
        (true, false) => Ok(AnythingBut::Numbers(numbers)),
        _ => Err(PolicyError::invalid(
            "Inside anything but list, either all values are number or string, mixed type is not supported",
        )),
    }
}

fn parse_cidr(text: &str) -> Result<Cidr, PolicyError> {
    let mut parts = text.split('/');
    let (Some(address), Some(mask), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(PolicyError::invalid("Malformed CIDR, one '/' required"));
    };
    let bits: u32 = mask
        .parse()
        .map_err(|_| PolicyError::invalid("Malformed CIDR, mask bits must be an integer"))?;
    let address: IpAddr = address
        .parse()
        .map_err(|_| PolicyError::invalid(format!("Nonstandard IP address: {address}")))?;
    let out_of_range = |max: u32| {
        PolicyError::invalid(format!(
            "Malformed CIDR, mask bits must be between 0 and {max}"
        ))
    };
    match address {
        IpAddr::V4(v4) if bits <= 32 => Ok(Cidr::V4 {
            network: u32::from(v4) & mask_v4(bits),
            bits,
        }),
        IpAddr::V6(v6) if bits <= 128 => Ok(Cidr::V6 {
            network: u128::from(v6) & mask_v6(bits),
            bits,
        }),
        IpAddr::V4(_) => Err(out_of_range(32)),
        IpAddr::V6(_) => Err(out_of_range(128)),
    }
}

/// The network mask with the top `bits` bits set; `bits` is at most 32.
fn mask_v4(bits: u32) -> u32 {
    u32::MAX.checked_shl(32 - bits).unwrap_or(0)
}

/// The network mask with the top `bits` bits set; `bits` is at most 128.
fn mask_v6(bits: u32) -> u128 {
    u128::MAX.checked_shl(128 - bits).unwrap_or(0)
}

impl Cidr {
    /// Whether `text` is an address of the same family inside this network.
    pub(super) fn contains(&self, text: &str) -> bool {
        match (self, text.parse::<IpAddr>()) {
            (Cidr::V4 { network, bits }, Ok(IpAddr::V4(ip))) => {
                u32::from(ip) & mask_v4(*bits) == *network
            }
            (Cidr::V6 { network, bits }, Ok(IpAddr::V6(ip))) => {
                u128::from(ip) & mask_v6(*bits) == *network
            }
            _ => false,
        }
    }
}

impl Range {
    pub(super) fn contains(&self, x: f64) -> bool {
        let above = self.lower.is_none_or(|b| {
            if b.inclusive {
                x >= b.value
            } else {
                x > b.value
            }
        });
        let below = self.upper.is_none_or(|b| {
            if b.inclusive {
                x <= b.value
            } else {
                x < b.value
            }
        });
        above && below
    }
}

//! Typed access to a request's parameters, whichever protocol carried them.
//!
//! Both protocols are parsed into the JSON protocol's shape (see [`crate::protocol`]), so the
//! actions read one shape. The Query protocol carries every scalar as text, so numbers and
//! booleans are accepted both as JSON values and as their decimal text.

use serde_json::{Map, Value};

use crate::error::SqsError;

/// The parameters of one request (or of one batch entry).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    pub fn from_value(value: Value) -> Result<Self, SqsError> {
        match value {
            Value::Object(map) => Ok(Params(map)),
            _ => Err(SqsError::invalid("The request body must be a JSON object.")),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str) -> Result<Option<&str>, SqsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(SqsError::invalid(format!("{name} must be a string."))),
        }
    }

    pub fn required(&self, name: &str) -> Result<&str, SqsError> {
        self.string(name)?.ok_or_else(|| SqsError::missing(name))
    }

    /// An integer parameter, checked against `range` (AWS: InvalidParameterValue outside it).
    pub fn integer(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, SqsError> {
        let value = match self.get(name) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        match value {
            Some(v) if range.contains(&v) => Ok(Some(v)),
            _ => Err(SqsError::invalid(format!(
                "Value for parameter {name} is invalid. Reason: must be between {} and {}.",
                range.start(),
                range.end()
            ))),
        }
    }

    /// A list of strings (`AttributeNames`, `TagKeys`, ...); absent is empty.
    pub fn strings(&self, name: &str) -> Result<Vec<String>, SqsError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(SqsError::invalid(format!(
                        "{name} must be a list of strings."
                    ))),
                })
                .collect(),
            Some(_) => Err(SqsError::invalid(format!("{name} must be a list."))),
        }
    }

    /// A map of string to string (`Attributes`, `Tags`); absent is empty. Order is kept.
    pub fn string_map(&self, name: &str) -> Result<Vec<(String, String)>, SqsError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(key, value)| match value {
                    Value::String(s) => Ok((key.clone(), s.clone())),
                    _ => Err(SqsError::invalid(format!("{name} values must be strings."))),
                })
                .collect(),
            Some(_) => Err(SqsError::invalid(format!("{name} must be a map."))),
        }
    }

    /// A list of objects (batch `Entries`), taken out of the parameters so that the entries
    /// (whole message bodies, in SendMessageBatch) are moved, not copied; absent is empty.
    pub fn take_entries(&mut self, name: &str) -> Result<Vec<Params>, SqsError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items.into_iter().map(Params::from_value).collect(),
            Some(_) => Err(SqsError::invalid(format!("{name} must be a list."))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> Params {
        Params::from_value(value).expect("object")
    }

    #[test]
    fn integers_are_read_from_numbers_and_text_and_range_checked() {
        let p = params(json!({"A": 5, "B": "7", "C": "x", "D": 99}));
        assert_eq!(p.integer("A", 0..=10).ok().flatten(), Some(5));
        assert_eq!(p.integer("B", 0..=10).ok().flatten(), Some(7));
        assert!(p.integer("C", 0..=10).is_err());
        assert!(p.integer("D", 0..=10).is_err());
        assert_eq!(p.integer("E", 0..=10).ok().flatten(), None);
    }

    #[test]
    fn a_missing_required_parameter_is_missing_parameter() {
        let error = params(json!({})).required("QueueUrl").expect_err("missing");
        assert_eq!(error.kind, crate::error::ErrorKind::MissingParameter);
    }
}

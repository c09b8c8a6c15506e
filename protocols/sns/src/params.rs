//! Typed access to a request's parameters in the JSON protocol's shape (see
//! [`crate::protocol`]); Query scalars arrive as text, so booleans are read from either.

use serde_json::{Map, Value};

use crate::error::SnsError;

#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str) -> Result<Option<&str>, SnsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(SnsError::invalid(name)),
        }
    }

    pub fn required(&self, name: &str) -> Result<&str, SnsError> {
        self.string(name)?.ok_or_else(|| SnsError::missing(name))
    }

    pub fn boolean(&self, name: &str) -> Result<Option<bool>, SnsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(SnsError::invalid(name)),
        }
    }

    /// A string-to-string map (`Attributes`).
    pub fn string_map(&self, name: &str) -> Result<Vec<(String, String)>, SnsError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Null => Ok((k.clone(), String::new())),
                    _ => Err(SnsError::invalid(format!("{name}.{k}"))),
                })
                .collect(),
            Some(_) => Err(SnsError::invalid(name)),
        }
    }

    /// A list of strings (`TagKeys`).
    pub fn strings(&self, name: &str) -> Result<Vec<String>, SnsError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| SnsError::invalid(name))
                })
                .collect(),
            Some(_) => Err(SnsError::invalid(name)),
        }
    }

    /// A list of structures (`Tags`, `PublishBatchRequestEntries`).
    pub fn entries(&self, name: &str) -> Result<Vec<Params>, SnsError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(map) => Ok(Params(map.clone())),
                    _ => Err(SnsError::invalid(name)),
                })
                .collect(),
            Some(_) => Err(SnsError::invalid(name)),
        }
    }
}

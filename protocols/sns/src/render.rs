//! Answers in the protocol of the request. Actions return results in the JSON protocol's shape;
//! [`xml_result`] renders it as the Query protocol's XML:
//!
//! ```text
//! <{Action}Response xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
//!   <{Action}Result> ...fields... </{Action}Result>
//!   <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata>
//! </{Action}Response>
//! ```
//! Lists are `<member>` elements; the `Attributes` map is `<entry><key/><value/></entry>`.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::error::SnsError;

pub const XML_NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
pub const XML_CONTENT_TYPE: &str = "text/xml";
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";

pub fn xml_result(action: &str, result: &Value, request_id: &str) -> Vec<u8> {
    let mut out = format!("<?xml version=\"1.0\"?><{action}Response xmlns=\"{XML_NAMESPACE}\">");
    if let Value::Object(fields) = result {
        let _ = write!(out, "<{action}Result>");
        for (name, value) in fields {
            element(&mut out, name, value);
        }
        let _ = write!(out, "</{action}Result>");
    }
    let _ = write!(
        out,
        "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>\
         </{action}Response>"
    );
    out.into_bytes()
}

fn element(out: &mut String, name: &str, value: &Value) {
    let _ = write!(out, "<{name}>");
    match value {
        Value::Object(map) if name == "Attributes" => {
            for (key, value) in map {
                let _ = write!(out, "<entry><key>{}</key>", escape(key));
                element(out, "value", value);
                out.push_str("</entry>");
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                element(out, key, value);
            }
        }
        Value::Array(items) => {
            for item in items {
                element(out, "member", item);
            }
        }
        Value::String(text) => out.push_str(&escape(text)),
        Value::Null => {}
        other => out.push_str(&other.to_string()),
    }
    let _ = write!(out, "</{name}>");
}

pub fn xml_error(error: &SnsError, request_id: &str) -> Vec<u8> {
    let fault = if error.kind.is_sender_fault() {
        "Sender"
    } else {
        "Receiver"
    };
    format!(
        "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"{XML_NAMESPACE}\"><Error>\
         <Type>{fault}</Type><Code>{}</Code><Message>{}</Message></Error>\
         <RequestId>{request_id}</RequestId></ErrorResponse>",
        error.kind.code(),
        escape(&error.message)
    )
    .into_bytes()
}

pub fn json_error(error: &SnsError) -> Vec<u8> {
    json!({"__type": format!("com.amazonaws.sns#{}", error.kind.shape()), "message": error.message})
        .to_string()
        .into_bytes()
}

/// The `x-amzn-query-error` header: the Query code and the fault side.
pub fn query_error_header(error: &SnsError) -> String {
    let fault = if error.kind.is_sender_fault() {
        "Sender"
    } else {
        "Receiver"
    };
    format!("{};{fault}", error.kind.code())
}

/// XML escaping as SQS does it (carriage returns included).
pub use mqbridge_sqs::render::escape;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_members_and_attributes_are_entries() {
        let result = json!({
            "Topics": [{"TopicArn": "a&b"}],
            "Attributes": {"DisplayName": "d"},
        });
        let xml = String::from_utf8(xml_result("X", &result, "r")).unwrap();
        assert!(xml.contains("<Topics><member><TopicArn>a&amp;b</TopicArn></member></Topics>"));
        assert!(xml.contains(
            "<Attributes><entry><key>DisplayName</key><value>d</value></entry></Attributes>"
        ));
        assert!(xml.contains("<RequestId>r</RequestId>"));
    }
}

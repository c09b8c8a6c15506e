//! Answers in the protocol of the request: JSON bodies for AWS JSON 1.0, XML documents in the
//! `2012-11-05` namespace for the Query protocol, and errors exactly as AWS shapes them.
//!
//! Actions return their result in the JSON protocol's shape; [`xml_result`] renders that shape
//! as the Query protocol's XML:
//!
//! ```text
//! <{Action}Response xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
//!   <{Action}Result> ...fields... </{Action}Result>      (absent when the result is empty)
//!   <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata>
//! </{Action}Response>
//! ```
//! Lists and maps take their Query spelling: `QueueUrls` -> repeated `QueueUrl`, `Attributes` ->
//! `Attribute` Name/Value pairs, `Tags` -> `Tag` Key/Value, `Messages` -> `Message`,
//! `MessageAttributes` -> `MessageAttribute` Name/Value, batch `Successful` and
//! ListMessageMoveTasks `Results` -> `{Action}ResultEntry`, and `Failed` ->
//! `BatchResultErrorEntry`.

use std::fmt::Write;

use serde_json::{Map, Value, json};

use crate::error::SqsError;

/// The Query protocol's XML namespace for SQS.
pub const XML_NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
pub const XML_CONTENT_TYPE: &str = "text/xml";

/// The JSON protocol's error body.
pub fn json_error(error: &SqsError) -> Vec<u8> {
    let body = json!({
        "__type": format!("com.amazonaws.sqs#{}", error.kind.shape()),
        "message": error.message,
    });
    body.to_string().into_bytes()
}

/// The `x-amzn-query-error` header value: the Query code and the fault side.
pub fn query_error_header(error: &SqsError) -> String {
    let fault = if error.kind.is_sender_fault() {
        "Sender"
    } else {
        "Receiver"
    };
    format!("{};{fault}", error.kind.query_code())
}

/// The Query protocol's `ErrorResponse` document.
pub fn xml_error(error: &SqsError, request_id: &str) -> Vec<u8> {
    let fault = if error.kind.is_sender_fault() {
        "Sender"
    } else {
        "Receiver"
    };
    let mut out = String::from("<?xml version=\"1.0\"?>");
    let _ = write!(
        out,
        "<ErrorResponse xmlns=\"{XML_NAMESPACE}\"><Error><Type>{fault}</Type><Code>{}</Code>\
         <Message>{}</Message><Detail/></Error><RequestId>{request_id}</RequestId>\
         </ErrorResponse>",
        error.kind.query_code(),
        escape(&error.message),
    );
    out.into_bytes()
}

/// The Query protocol's success document for `action`.
pub fn xml_result(action: &str, result: &Value, request_id: &str) -> Vec<u8> {
    let mut out = String::from("<?xml version=\"1.0\"?>");
    let _ = write!(out, "<{action}Response xmlns=\"{XML_NAMESPACE}\">");
    if let Some(fields) = result.as_object().filter(|m| !m.is_empty()) {
        let _ = write!(out, "<{action}Result>");
        fields_xml(action, fields, &mut out);
        let _ = write!(out, "</{action}Result>");
    }
    let _ = write!(
        out,
        "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>\
         </{action}Response>"
    );
    out.into_bytes()
}

fn fields_xml(action: &str, fields: &Map<String, Value>, out: &mut String) {
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("QueueUrls" | "queueUrls", Value::Array(urls)) => urls
                .iter()
                .for_each(|url| element("QueueUrl", &text(url), out)),
            ("Attributes", Value::Object(map)) => pairs_xml("Attribute", "Name", map, out),
            ("Tags", Value::Object(map)) => pairs_xml("Tag", "Key", map, out),
            ("Messages", Value::Array(messages)) => {
                for message in messages.iter().filter_map(Value::as_object) {
                    out.push_str("<Message>");
                    fields_xml(action, message, out);
                    out.push_str("</Message>");
                }
            }
            ("MessageAttributes", Value::Object(map)) => {
                for (name, attribute) in map {
                    let _ = write!(
                        out,
                        "<MessageAttribute><Name>{}</Name><Value>",
                        escape(name)
                    );
                    if let Some(attribute) = attribute.as_object() {
                        fields_xml(action, attribute, out);
                    }
                    out.push_str("</Value></MessageAttribute>");
                }
            }
            // Batch `Successful`, and ListMessageMoveTasks `Results`, are flattened as
            // `{Action}ResultEntry` elements.
            ("Successful" | "Results", Value::Array(entries)) => {
                entries_xml(&format!("{action}ResultEntry"), action, entries, out);
            }
            ("Failed", Value::Array(entries)) => {
                entries_xml("BatchResultErrorEntry", action, entries, out);
            }
            (_, Value::Array(_) | Value::Object(_)) => {}
            (key, scalar) => element(key, &text(scalar), out),
        }
    }
}

fn entries_xml(tag: &str, action: &str, entries: &[Value], out: &mut String) {
    for entry in entries.iter().filter_map(Value::as_object) {
        let _ = write!(out, "<{tag}>");
        fields_xml(action, entry, out);
        let _ = write!(out, "</{tag}>");
    }
}

fn pairs_xml(tag: &str, key_tag: &str, map: &Map<String, Value>, out: &mut String) {
    for (key, value) in map {
        let _ = write!(
            out,
            "<{tag}><{key_tag}>{}</{key_tag}><Value>{}</Value></{tag}>",
            escape(key),
            escape(&text(value))
        );
    }
}

fn element(tag: &str, value: &str, out: &mut String) {
    let _ = write!(out, "<{tag}>{}</{tag}>", escape(value));
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// XML text escaping. A carriage return is escaped as well, because an XML parser would
/// otherwise normalise it away and the body's MD5 would no longer match (AWS does the same).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn xml(action: &str, result: Value) -> String {
        String::from_utf8(xml_result(action, &result, "id")).expect("utf-8")
    }

    #[test]
    fn an_error_has_the_shape_the_sdks_parse() {
        let error = SqsError::no_queue();
        let body: Value = serde_json::from_slice(&json_error(&error)).expect("json");
        assert_eq!(body["__type"], "com.amazonaws.sqs#QueueDoesNotExist");
        assert_eq!(
            query_error_header(&error),
            "AWS.SimpleQueueService.NonExistentQueue;Sender"
        );
        let xml = String::from_utf8(xml_error(&error, "r1")).expect("utf-8");
        assert!(xml.contains("<Code>AWS.SimpleQueueService.NonExistentQueue</Code>"));
        assert!(xml.contains("<Type>Sender</Type>"));
        let internal = SqsError::new(ErrorKind::InternalError, "x");
        assert!(query_error_header(&internal).ends_with(";Receiver"));
    }

    #[test]
    fn lists_and_maps_take_their_query_spelling() {
        let out = xml(
            "GetQueueAttributes",
            json!({"Attributes": {"DelaySeconds": "0"}}),
        );
        assert!(out.contains(
            "<GetQueueAttributesResult><Attribute><Name>DelaySeconds</Name><Value>0</Value>\
             </Attribute></GetQueueAttributesResult>"
        ));
        let out = xml("ListQueues", json!({"QueueUrls": ["a", "b"]}));
        assert!(out.contains("<QueueUrl>a</QueueUrl><QueueUrl>b</QueueUrl>"));
        let out = xml(
            "ListMessageMoveTasks",
            json!({"Results": [{"Status": "RUNNING"}]}),
        );
        assert!(out.contains(
            "<ListMessageMoveTasksResultEntry><Status>RUNNING</Status>\
             </ListMessageMoveTasksResultEntry>"
        ));
        let out = xml("DeleteMessageBatch", json!({"Successful": [{"Id": "1"}]}));
        assert!(out.contains("<DeleteMessageBatchResultEntry><Id>1</Id>"));
    }

    #[test]
    fn an_empty_result_has_no_result_element_and_text_is_escaped() {
        let out = xml("DeleteQueue", json!({}));
        assert!(!out.contains("DeleteQueueResult"));
        let out = xml("ReceiveMessage", json!({"Messages": [{"Body": "a<b&\r"}]}));
        assert!(out.contains("<Message><Body>a&lt;b&amp;&#xD;</Body></Message>"));
    }
}

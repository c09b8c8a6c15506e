//! Refused policies and the messages they get, and the key and combination limits.

use super::super::{MAX_POLICY_BYTES, Scope};
use super::{attribute_policy, body_policy, error};

/// Each policy is refused in both scopes with the given message.
fn refused_everywhere(cases: &[(&str, &str)]) {
    for (json, expected) in cases {
        for scope in [Scope::MessageAttributes, Scope::MessageBody] {
            assert_eq!(error(json, scope), *expected, "policy {json} in {scope:?}");
        }
    }
}

#[test]
fn policy_must_be_a_json_object_of_arrays() {
    refused_everywhere(&[
        (r#"["a"]"#, "Filter is not an object"),
        ("42", "Filter is not an object"),
        ("{}", "Empty objects are not allowed"),
        (
            r#"{"key_a":"value_one"}"#,
            "\"key_a\" must be an object or an array",
        ),
        (r#"{"k":5}"#, "\"k\" must be an object or an array"),
        (r#"{"k":[]}"#, "Empty arrays are not allowed"),
        (
            r#"{"key":[["value"]]}"#,
            "Match value must be String, number, true, false, or null",
        ),
    ]);
    assert!(error("{not json", Scope::MessageBody).starts_with("failed to parse JSON."));
    assert!(error("", Scope::MessageAttributes).starts_with("failed to parse JSON."));
}

#[test]
fn match_expressions_take_one_known_operator() {
    refused_everywhere(&[
        (
            r#"{"key":[{"wrong-operator":true}]}"#,
            "Unrecognized match type wrong-operator",
        ),
        (r#"{"key":[{"foo":1}]}"#, "Unrecognized match type foo"),
        (
            r#"{"key":[{"suffix":"value","prefix":"value2"}]}"#,
            "Only one key allowed in match expression",
        ),
        (r#"{"key":[{}]}"#, "Match expression name not found"),
    ]);
}

#[test]
fn string_operators_need_a_string() {
    refused_everywhere(&[
        (
            r#"{"key":[{"prefix":5}]}"#,
            "prefix match pattern must be a string",
        ),
        (
            r#"{"key":[{"suffix":100}]}"#,
            "suffix match pattern must be a string",
        ),
        (
            r#"{"key":[{"suffix":null}]}"#,
            "suffix match pattern must be a string",
        ),
        (
            r#"{"key":[{"suffix":[]}]}"#,
            "suffix match pattern must be a string",
        ),
        (
            r#"{"key":[{"suffix":["test","test2"]}]}"#,
            "suffix match pattern must be a string",
        ),
        (
            r#"{"key":[{"equals-ignore-case":1}]}"#,
            "equals-ignore-case match pattern must be a string",
        ),
    ]);
}

#[test]
fn numeric_expressions_are_checked_term_by_term() {
    refused_everywhere(&[
        (
            r#"{"k":[{"numeric":5}]}"#,
            "Value of numeric must be an array.",
        ),
        (
            r#"{"k":[{"numeric":[]}]}"#,
            "Invalid member in numeric match: ]",
        ),
        (
            r#"{"k":[{"numeric":[1,"<="]}]}"#,
            "Invalid member in numeric match: 1",
        ),
        (
            r#"{"k":[{"numeric":["operator"]}]}"#,
            "Unrecognized numeric range operator: operator",
        ),
        (
            r#"{"k":[{"numeric":["=","000"]}]}"#,
            "Value of equals must be numeric",
        ),
        (
            r#"{"k":[{"numeric":[">","x"]}]}"#,
            "Value of > must be numeric",
        ),
        (
            r#"{"k":[{"numeric":[">="]}]}"#,
            "Value of >= must be numeric",
        ),
        (
            r#"{"k":[{"numeric":["<",100,">",10]}]}"#,
            "Too many elements in numeric expression",
        ),
        (
            r#"{"k":[{"numeric":["=",1,"<",2]}]}"#,
            "Too many elements in numeric expression",
        ),
        (
            r#"{"k":[{"numeric":[">=",1,">",2]}]}"#,
            "Bad numeric range operator: >",
        ),
        (
            r#"{"k":[{"numeric":[">",20,"test"]}]}"#,
            "Bad numeric range operator: test",
        ),
        (
            r#"{"k":[{"numeric":[">",20,30]}]}"#,
            "Bad value in numeric range: 30",
        ),
        (
            r#"{"k":[{"numeric":[">",20,"<="]}]}"#,
            "Value of <= must be numeric",
        ),
        (
            r#"{"k":[{"numeric":[">",20,"<","30"]}]}"#,
            "Value of < must be numeric",
        ),
        (
            r#"{"k":[{"numeric":[">",3,"<",1]}]}"#,
            "Bottom must be less than top",
        ),
        (
            r#"{"k":[{"numeric":[">=",5,"<=",5]}]}"#,
            "Bottom must be less than top",
        ),
        (
            r#"{"k":[{"numeric":[">",20,"<",30,"<",50]}]}"#,
            "Too many terms in numeric range expression",
        ),
    ]);
}

#[test]
fn exists_takes_a_boolean() {
    refused_everywhere(&[
        (
            r#"{"k":[{"exists":"yes"}]}"#,
            "exists match pattern must be either true or false.",
        ),
        (
            r#"{"k":[{"exists":null}]}"#,
            "exists match pattern must be either true or false.",
        ),
    ]);
}

#[test]
fn anything_but_shapes() {
    refused_everywhere(&[
        (
            r#"{"k":[{"anything-but":{"wrong-operator":null}}]}"#,
            "Unsupported anything-but pattern: wrong-operator",
        ),
        (
            r#"{"k":[{"anything-but":{"exists":false}}]}"#,
            "Unsupported anything-but pattern: exists",
        ),
        (
            r#"{"k":[{"anything-but":{"prefix":false}}]}"#,
            "prefix/suffix match pattern must be a string",
        ),
        (
            r#"{"k":[{"anything-but":{"suffix":""}}]}"#,
            "Null prefix/suffix not allowed",
        ),
        (
            r#"{"k":[{"anything-but":{}}]}"#,
            "Anything-But expression name not found",
        ),
        (
            r#"{"k":[{"anything-but":true}]}"#,
            "Value of anything-but must be an array or single string/number value.",
        ),
        (
            r#"{"k":[{"anything-but":[null]}]}"#,
            "Inside anything but list, start|null|boolean is not supported.",
        ),
        (
            r#"{"k":[{"anything-but":["a",1]}]}"#,
            "Inside anything but list, either all values are number or string, mixed type is not supported",
        ),
        (
            r#"{"k":[{"anything-but":[]}]}"#,
            "Inside anything but list, either all values are number or string, mixed type is not supported",
        ),
    ]);
}

#[test]
fn cidr_needs_a_well_formed_network() {
    refused_everywhere(&[
        (
            r#"{"ip":[{"cidr":5}]}"#,
            "prefix match pattern must be a string",
        ),
        (
            r#"{"ip":[{"cidr":"10.0.0.0"}]}"#,
            "Malformed CIDR, one '/' required",
        ),
        (
            r#"{"ip":[{"cidr":"10.0.0.0/8/8"}]}"#,
            "Malformed CIDR, one '/' required",
        ),
        (
            r#"{"ip":[{"cidr":"10.0.0.0/x"}]}"#,
            "Malformed CIDR, mask bits must be an integer",
        ),
        (
            r#"{"ip":[{"cidr":"10.0.0.300/8"}]}"#,
            "Nonstandard IP address: 10.0.0.300",
        ),
        (
            r#"{"ip":[{"cidr":"10.0.0.0/33"}]}"#,
            "Malformed CIDR, mask bits must be between 0 and 32",
        ),
        (
            r#"{"ip":[{"cidr":"::/129"}]}"#,
            "Malformed CIDR, mask bits must be between 0 and 128",
        ),
    ]);
}

#[test]
fn attribute_policies_cannot_nest() {
    let nested = r#"{"object":{"key":[{"prefix":"auto-"}]}}"#;
    assert_eq!(
        error(nested, Scope::MessageAttributes),
        "Filter policy scope MessageAttributes does not support nested filter policy"
    );
    body_policy(nested);
}

#[test]
fn policy_text_is_limited_to_256_kb() {
    // Padding with whitespace keeps the policy itself trivially valid.
    let padded = |len: usize| format!(r#"{{"k":["v"]}}{}"#, " ".repeat(len - 11));
    attribute_policy(&padded(MAX_POLICY_BYTES));
    assert_eq!(
        error(&padded(MAX_POLICY_BYTES + 1), Scope::MessageAttributes),
        "Filter policy can not be larger than 256 KB"
    );
}

#[test]
fn at_most_five_keys() {
    let six = r#"{"a":["1"],"b":["2"],"c":["3"],"d":["4"],"e":["5"],"f":["6"]}"#;
    for scope in [Scope::MessageAttributes, Scope::MessageBody] {
        assert_eq!(
            error(six, scope),
            "Filter policy can not have more than 5 keys"
        );
    }
    attribute_policy(r#"{"a":["1"],"b":["2"],"c":["3"],"d":["4"],"e":["5"]}"#);
}

#[test]
fn body_scope_counts_only_top_level_keys() {
    // Four top-level keys, six leaves: AWS's own example of an accepted policy.
    body_policy(
        r#"{"state":["SUCCESS"],"severity":[{"exists":true}],"message":[{"exists":true}],
            "finding":{"standard_control":[{"exists":true}],"region":[{"exists":true}],
                       "account":[{"exists":true}]}}"#,
    );
}

#[test]
fn keys_are_counted_per_or_alternative() {
    // Each alternative names three keys; five distinct keys overall.
    attribute_policy(r#"{"a":["1"],"$or":[{"b":["1"],"c":["1"]},{"d":["1"],"e":["1"]}]}"#);
    assert_eq!(
        error(
            r#"{"a":["1"],"b":["1"],"$or":[{"c":["1"],"d":["1"],"e":["1"],"f":["1"]},{"g":["1"]}]}"#,
            Scope::MessageAttributes
        ),
        "Filter policy can not have more than 5 keys"
    );
}

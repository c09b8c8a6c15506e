//! MessageBody scope: nested keys, dotted keys, arrays, null, and exists on JSON bodies.

use super::body_policy;

fn matches(policy: &str, body: &str) -> bool {
    body_policy(policy).matches_body(body)
}

#[test]
fn only_json_objects_can_match() {
    let policy = r#"{"a":[{"exists":false}]}"#;
    assert!(matches(policy, r#"{"b":1}"#));
    for body in ["", "not json", "[1]", "\"a\"", "42", "null", "{\"b\":1"] {
        assert!(!matches(policy, body), "{body}");
    }
}

#[test]
fn top_level_operators() {
    let policy = r#"{"customer_interests":["rugby"],"price_usd":[{"numeric":[">",100]}],
        "store":[{"prefix":"example"}]}"#;
    let body = r#"{"customer_interests":"rugby","price_usd":210.75,"store":"example_corp"}"#;
    assert!(matches(policy, body));
    let cheap = r#"{"customer_interests":"rugby","price_usd":99,"store":"example_corp"}"#;
    assert!(!matches(policy, cheap));
    // A number in text is a string, not a number.
    let text = r#"{"customer_interests":"rugby","price_usd":"210","store":"example_corp"}"#;
    assert!(!matches(policy, text));
}

#[test]
fn nested_policy_mirrors_nested_body() {
    let policy = r#"{"object":{"key":[{"prefix":"auto-"}]}}"#;
    assert!(matches(policy, r#"{"object":{"key":"auto-test"}}"#));
    assert!(!matches(policy, r#"{"object":{"key":"manual"}}"#));
    assert!(!matches(policy, r#"{"key":"auto-test"}"#));
    assert!(!matches(policy, r#"{"object":"auto-test"}"#));
}

#[test]
fn dotted_keys_and_nested_keys_are_the_same_path() {
    let nested = r#"{"object":{"nested":["string.value"]}}"#;
    let dotted = r#"{"object.nested":["string.value"]}"#;
    for policy in [nested, dotted] {
        assert!(matches(policy, r#"{"object":{"nested":"string.value"}}"#));
        assert!(matches(policy, r#"{"object.nested":"string.value"}"#));
        assert!(!matches(policy, r#"{"object":{"nested":"test-auto"}}"#));
    }
}

#[test]
fn arrays_match_if_any_element_does() {
    let policy = r#"{"headers":{"route-to":["queue1"]}}"#;
    assert!(matches(
        policy,
        r#"{"headers":{"route-to":["queue1","queue2"]}}"#
    ));
    assert!(!matches(policy, r#"{"headers":{"route-to":["queue3"]}}"#));
    // Arrays of objects, and arrays of arrays, are walked through.
    let s3 = r#"{"Records":{"s3":{"object":{"key":[{"prefix":"auto-"}]}},
        "eventName":[{"prefix":"ObjectCreated:"}]}}"#;
    let created = r#"{"Records":[{"eventName":"ObjectCreated:Put",
        "s3":{"object":[[{"key":"auto-insurance-2314.xml"}]]}}]}"#;
    assert!(matches(s3, created));
    let removed = r#"{"Records":[{"eventName":"ObjectRemoved:Delete",
        "s3":{"object":{"key":"auto-insurance-2314.xml"}}}]}"#;
    assert!(!matches(s3, removed));
    let numbers = r#"{"price":[{"anything-but":[100,500]}]}"#;
    assert!(matches(numbers, r#"{"price":[100,50]}"#));
    assert!(!matches(numbers, r#"{"price":100}"#));
}

#[test]
fn null_and_booleans() {
    let null = r#"{"a":[null]}"#;
    assert!(matches(null, r#"{"a":null}"#));
    assert!(!matches(null, r#"{"a":"null"}"#));
    assert!(!matches(null, r#"{"b":1}"#));
    let flag = r#"{"enabled":[true]}"#;
    assert!(matches(flag, r#"{"enabled":true}"#));
    assert!(!matches(flag, r#"{"enabled":false}"#));
    assert!(!matches(flag, r#"{"enabled":"true"}"#));
    // A null is no value for anything-but or exists.
    assert!(!matches(r#"{"a":[{"anything-but":"x"}]}"#, r#"{"a":null}"#));
    assert!(!matches(r#"{"a":[{"exists":true}]}"#, r#"{"a":null}"#));
}

#[test]
fn exists_looks_at_leaves() {
    let present = r#"{"store":[{"exists":true}]}"#;
    assert!(matches(present, r#"{"store":"fans"}"#));
    assert!(matches(present, r#"{"store":["a"]}"#));
    assert!(!matches(present, r#"{"customer_interests":["baseball"]}"#));
    assert!(!matches(present, r#"{"store":[]}"#));
    // An object is not a leaf: nothing is at the path "store" itself.
    assert!(!matches(present, r#"{"store":{"name":"fans"}}"#));
    let absent = r#"{"store":[{"exists":false}]}"#;
    assert!(matches(absent, r#"{"customer_interests":["baseball"]}"#));
    assert!(!matches(absent, r#"{"store":"fans"}"#));
    let nested = r#"{"detail":{"id":[{"exists":true}]}}"#;
    assert!(matches(nested, r#"{"detail":{"id":7}}"#));
    assert!(!matches(nested, r#"{"detail":{"other":7}}"#));
}

#[test]
fn string_operators_on_body_values() {
    assert!(matches(r#"{"f":[{"suffix":".png"}]}"#, r#"{"f":"a.png"}"#));
    assert!(matches(
        r#"{"s":[{"equals-ignore-case":"ok"}]}"#,
        r#"{"s":"OK"}"#
    ));
    assert!(matches(
        r#"{"ip":[{"cidr":"10.0.0.0/8"}]}"#,
        r#"{"ip":"10.9.8.7"}"#
    ));
    assert!(!matches(
        r#"{"e":[{"anything-but":{"prefix":"order-"}}]}"#,
        r#"{"e":"order-1"}"#
    ));
    assert!(matches(
        r#"{"n":[{"numeric":["=",301.5]}]}"#,
        r#"{"n":3.015e2}"#
    ));
}

#[test]
fn or_at_the_top_and_inside_a_nested_key() {
    let policy = r#"{"$or":[{"metricName":["CPUUtilization","ReadLatency"]},
        {"namespace":["AWS/EC2","AWS/ES"]}],
        "detail":{"scope":["Service"],"$or":[{"source":["aws.cloudwatch"]},
        {"type":["CloudWatch Alarm State Change"]}]}}"#;
    let passing = [
        r#"{"metricName":"CPUUtilization","detail":{"scope":"Service","source":"aws.cloudwatch"}}"#,
        r#"{"namespace":"AWS/ES","detail":{"scope":"Service","source":"aws.cloudwatch"}}"#,
        r#"{"metricName":"ReadLatency","detail":{"scope":"Service","type":"CloudWatch Alarm State Change"}}"#,
    ];
    for body in passing {
        assert!(matches(policy, body), "{body}");
    }
    let failing = [
        r#"{"metricName":"CPUUtilization","detail":{"scope":"aws.cloudwatch","type":"CloudWatch Alarm State Change"}}"#,
        r#"{"metricName":"CPUUtilization","detail":{"scope":"Service","type":"CPUUtilization"}}"#,
        r#"{"metricName":"CPUUtilization","detail":{"type":"CloudWatch Alarm State Change"}}"#,
        r#"{"metricName":"CPUUtilization","detail":{"scope":"Service"}}"#,
        r#"{"metricName":"CPUUtilization","scope":"Service"}"#,
    ];
    for body in failing {
        assert!(!matches(policy, body), "{body}");
    }
}

#[test]
fn deep_bodies_do_not_panic() {
    let policy = r#"{"a":[{"exists":false}]}"#;
    let deep = format!("{}1{}", r#"{"k":"#.repeat(100_000), "}".repeat(100_000));
    assert!(!matches(policy, &deep));
    let wide = format!("{{\"k\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(!matches(policy, &wide));
}

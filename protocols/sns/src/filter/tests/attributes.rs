//! MessageAttributes scope: each operator against String, Number, String.Array and Binary
//! attributes.

use super::super::Attribute;
use super::{array, attribute_policy, number, string};

fn matches(policy: &str, attributes: &[(&str, Attribute<'_>)]) -> bool {
    attribute_policy(policy).matches_attributes(attributes)
}

#[test]
fn exact_strings_are_case_sensitive_and_any_of() {
    let policy = r#"{"customer_interests":["rugby","tennis"]}"#;
    assert!(matches(policy, &[("customer_interests", string("rugby"))]));
    assert!(matches(policy, &[("customer_interests", string("tennis"))]));
    assert!(!matches(policy, &[("customer_interests", string("Rugby"))]));
    assert!(!matches(
        policy,
        &[("customer_interests", string("baseball"))]
    ));
    assert!(!matches(policy, &[("other", string("rugby"))]));
    assert!(!matches(policy, &[]));
}

#[test]
fn keys_must_all_match() {
    let policy = r#"{"a":["1"],"b":["2"]}"#;
    assert!(matches(policy, &[("a", string("1")), ("b", string("2"))]));
    assert!(!matches(policy, &[("a", string("1")), ("b", string("3"))]));
    assert!(!matches(policy, &[("a", string("1"))]));
}

#[test]
fn numbers_compare_numerically_and_only_with_numbers() {
    let policy = r#"{"price_usd":[{"numeric":["=",301.5]}]}"#;
    assert!(matches(policy, &[("price_usd", number("301.5"))]));
    assert!(matches(policy, &[("price_usd", number("3.015e2"))]));
    assert!(!matches(policy, &[("price_usd", number("301.6"))]));
    assert!(!matches(policy, &[("price_usd", string("301.5"))]));
    assert!(!matches(policy, &[("price_usd", number("not a number"))]));
    // A bare number in the list is numeric equality too.
    assert!(matches(r#"{"n":[100]}"#, &[("n", number("100.0"))]));
    assert!(!matches(r#"{"n":[100]}"#, &[("n", string("100"))]));
    assert!(!matches(r#"{"n":["100"]}"#, &[("n", number("100"))]));
}

#[test]
fn numbers_match_to_five_decimal_places() {
    let policy = r#"{"n":[{"numeric":["=",1]}]}"#;
    assert!(matches(policy, &[("n", number("1.000001"))]));
    assert!(!matches(policy, &[("n", number("1.0001"))]));
}

#[test]
fn numeric_ranges() {
    let policy = r#"{"price_usd":[{"numeric":[">",0,"<=",150]}]}"#;
    for (value, expected) in [
        ("0", false),
        ("0.5", true),
        ("150", true),
        ("150.01", false),
    ] {
        assert_eq!(
            matches(policy, &[("price_usd", number(value))]),
            expected,
            "{value}"
        );
    }
    let negative = r#"{"n":[{"numeric":["<",0]}]}"#;
    assert!(matches(negative, &[("n", number("-1e3"))]));
    assert!(!matches(negative, &[("n", number("0"))]));
    let closed = r#"{"n":[{"numeric":[">=",10,"<",20]}]}"#;
    assert!(matches(closed, &[("n", number("10"))]));
    assert!(!matches(closed, &[("n", number("20"))]));
    let at_most = r#"{"n":[{"numeric":["<=",5]}]}"#;
    assert!(matches(at_most, &[("n", number("5"))]));
    assert!(!matches(at_most, &[("n", number("5.1"))]));
}

#[test]
fn prefix_suffix_and_equals_ignore_case() {
    let prefix = r#"{"c":[{"prefix":"bas"}]}"#;
    assert!(matches(prefix, &[("c", string("basketball"))]));
    assert!(!matches(prefix, &[("c", string("rugby"))]));
    let suffix = r#"{"f":[{"suffix":".png"}]}"#;
    assert!(matches(suffix, &[("f", string("cat.png"))]));
    assert!(!matches(suffix, &[("f", string("cat.jpg"))]));
    let ignore_case = r#"{"s":[{"equals-ignore-case":"MaIn"}]}"#;
    assert!(matches(ignore_case, &[("s", string("main"))]));
    assert!(matches(ignore_case, &[("s", string("MAIN"))]));
    assert!(!matches(ignore_case, &[("s", string("mains"))]));
    // String operators never match numbers.
    assert!(!matches(
        r#"{"n":[{"prefix":"1"}]}"#,
        &[("n", number("12"))]
    ));
}

#[test]
fn anything_but_values() {
    let policy = r#"{"c":[{"anything-but":["rugby","tennis"]}]}"#;
    assert!(matches(policy, &[("c", string("baseball"))]));
    assert!(!matches(policy, &[("c", string("rugby"))]));
    // A missing attribute is not "anything but": it has no value at all.
    assert!(!matches(policy, &[("other", string("baseball"))]));
    let single = r#"{"c":[{"anything-but":"rugby"}]}"#;
    assert!(matches(single, &[("c", string("golf"))]));
    assert!(!matches(single, &[("c", string("rugby"))]));
    let numbers = r#"{"price":[{"anything-but":[100,500]}]}"#;
    assert!(matches(numbers, &[("price", number("100.1"))]));
    assert!(!matches(numbers, &[("price", number("100"))]));
    assert!(!matches(
        r#"{"price":[{"anything-but":100}]}"#,
        &[("price", number("1e2"))]
    ));
}

#[test]
fn anything_but_prefix_and_suffix() {
    let prefix = r#"{"event":[{"anything-but":{"prefix":"order-"}}]}"#;
    assert!(matches(prefix, &[("event", string("order_number"))]));
    assert!(!matches(prefix, &[("event", string("order-cancelled"))]));
    let suffix = r#"{"f":[{"anything-but":{"suffix":".tmp"}}]}"#;
    assert!(matches(suffix, &[("f", string("a.txt"))]));
    assert!(!matches(suffix, &[("f", string("a.tmp"))]));
}

#[test]
fn exists() {
    let present = r#"{"store":[{"exists":true}]}"#;
    assert!(matches(present, &[("store", string("fans"))]));
    assert!(matches(present, &[("store", number("99"))]));
    assert!(!matches(present, &[("other", string("x"))]));
    let absent = r#"{"store":[{"exists":false}]}"#;
    assert!(matches(absent, &[("other", string("x"))]));
    assert!(!matches(absent, &[("store", string("fans"))]));
    // AWS: exists false needs at least one attribute on the message.
    assert!(!matches(absent, &[]));
}

#[test]
fn cidr_matches_ipv4_and_ipv6() {
    let v4 = r#"{"source_ip":[{"cidr":"10.0.0.0/24"}]}"#;
    assert!(matches(v4, &[("source_ip", string("10.0.0.0"))]));
    assert!(matches(v4, &[("source_ip", string("10.0.0.255"))]));
    assert!(!matches(v4, &[("source_ip", string("10.1.1.0"))]));
    assert!(!matches(v4, &[("source_ip", string("not an ip"))]));
    assert!(!matches(v4, &[("source_ip", string("::ffff:10.0.0.1"))]));
    let v6 = r#"{"ip":[{"cidr":"2001:db8::/32"}]}"#;
    assert!(matches(v6, &[("ip", string("2001:db8:1::5"))]));
    assert!(!matches(v6, &[("ip", string("2001:db9::1"))]));
    assert!(!matches(v6, &[("ip", string("10.0.0.1"))]));
    let everything = r#"{"ip":[{"cidr":"0.0.0.0/0"}]}"#;
    assert!(matches(everything, &[("ip", string("192.168.1.1"))]));
    let host = r#"{"ip":[{"cidr":"192.168.1.7/32"}]}"#;
    assert!(matches(host, &[("ip", string("192.168.1.7"))]));
    assert!(!matches(host, &[("ip", string("192.168.1.8"))]));
}

#[test]
fn string_arrays_match_on_any_element() {
    let policy = r#"{"customer_interests":["rugby"]}"#;
    let interests = array(r#"["soccer","rugby","hockey"]"#);
    assert!(matches(policy, &[("customer_interests", interests)]));
    assert!(!matches(
        policy,
        &[("customer_interests", array(r#"["soccer"]"#))]
    ));
    // Numbers in a String.Array compare as numbers.
    let numeric = r#"{"n":[{"numeric":[">",10]}]}"#;
    assert!(matches(numeric, &[("n", array("[1, 20]"))]));
    assert!(!matches(numeric, &[("n", array(r#"["20"]"#))]));
    // anything-but passes when some element is not excluded.
    let not = r#"{"c":[{"anything-but":["rugby","tennis"]}]}"#;
    assert!(matches(not, &[("c", array(r#"["rugby","baseball"]"#))]));
    assert!(!matches(not, &[("c", array(r#"["rugby"]"#))]));
    // Text that is not a JSON array is present but has nothing to match.
    assert!(!matches(policy, &[("customer_interests", array("rugby"))]));
    assert!(matches(
        r#"{"customer_interests":[{"exists":false}]}"#,
        &[("other", array("[]"))]
    ));
}

#[test]
fn custom_types_binary_and_null() {
    let custom = Attribute {
        data_type: "String.foo",
        value: "x",
    };
    assert!(matches(r#"{"k":["x"]}"#, &[("k", custom)]));
    let integer = Attribute {
        data_type: "Number.int",
        value: "7",
    };
    assert!(matches(r#"{"k":[7]}"#, &[("k", integer)]));
    let binary = Attribute {
        data_type: "Binary",
        value: "eA==",
    };
    assert!(!matches(r#"{"k":["eA=="]}"#, &[("k", binary)]));
    assert!(!matches(r#"{"k":[{"exists":true}]}"#, &[("k", binary)]));
    // Attributes are never null; a null in the policy matches nothing here.
    let with_null = r#"{"attr1":[null,{"anything-but":"whatever"}]}"#;
    assert!(!matches(with_null, &[]));
    assert!(matches(with_null, &[("attr1", string("other"))]));
}

#[test]
fn or_across_keys() {
    let policy = r#"{"source":["aws.cloudwatch"],"$or":[
        {"metricName":["CPUUtilization"]},{"namespace":["AWS/EC2"]}]}"#;
    let source = ("source", string("aws.cloudwatch"));
    assert!(matches(
        policy,
        &[source, ("metricName", string("CPUUtilization"))]
    ));
    assert!(matches(policy, &[source, ("namespace", string("AWS/EC2"))]));
    assert!(!matches(policy, &[source, ("namespace", string("AWS/ES"))]));
    assert!(!matches(policy, &[("namespace", string("AWS/EC2"))]));
}

#[test]
fn an_or_that_aws_would_not_read_as_one_is_a_key() {
    // One object only: "$or" is then an attribute name holding that expression.
    let policy = r#"{"$or":["a","b"]}"#;
    assert!(matches(policy, &[("$or", string("b"))]));
    assert!(!matches(policy, &[("a", string("a"))]));
}

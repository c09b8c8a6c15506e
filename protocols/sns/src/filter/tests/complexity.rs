//! The 150-combination limit, computed as AWS does: the sum over `$or` alternatives of the
//! product over their keys of (number of values x nesting depth of the key).

use super::super::Scope;
use super::{attribute_policy, body_policy, error};

const TOO_COMPLEX: &str = "Filter policy is too complex";

fn values(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| format!("\"v{i}\"")).collect();
    format!("[{}]", list.join(","))
}

#[test]
fn one_key_may_have_150_values() {
    attribute_policy(&format!(r#"{{"key":{}}}"#, values(150)));
    assert_eq!(
        error(
            &format!(r#"{{"key":{}}}"#, values(151)),
            Scope::MessageAttributes
        ),
        TOO_COMPLEX
    );
}

#[test]
fn keys_multiply() {
    // AWS's worked example: 3 x 1 x 2 = 6.
    attribute_policy(r#"{"key_a":["1","2","3"],"key_b":["1"],"key_c":["1","2"]}"#);
    let json = format!(r#"{{"key1":{},"key2":{}}}"#, values(100), values(51));
    assert_eq!(error(&json, Scope::MessageAttributes), TOO_COMPLEX);
    let json = format!(r#"{{"key1":{},"key2":{}}}"#, values(75), values(2));
    attribute_policy(&json);
}

#[test]
fn nested_keys_multiply_by_their_depth() {
    // AWS's worked example: four values three levels down and three values two levels
    // down give 3 x 4 x 2 x 3 = 72.
    let nested =
        r#"{"key_a":{"key_b":{"key_c":["1","2","3","4"]}},"key_d":{"key_e":["1","2","3"]}"#;
    body_policy(&format!("{nested}}}"));
    // A third key with three values makes it 216.
    let json = format!(r#"{nested},"key_f":["1","2","3"]}}"#);
    assert_eq!(error(&json, Scope::MessageBody), TOO_COMPLEX);
}

#[test]
fn or_alternatives_add_up() {
    // (4 x 6) + (4 x 4 x 4) + (4 x 4 x 4) = 152
    let json = r#"{"source":["a","b","c","d"],"$or":[
        {"metricName":["1","2","3","4","5","6"]},
        {"metricType":["1","2","3","4"],"$or":[{"metricId":[1,2,3,4]},{"spaceId":[1,2,3,4]}]}]}"#;
    assert_eq!(error(json, Scope::MessageAttributes), TOO_COMPLEX);
    // (3 x 6) + (3 x 4 x 4) + (3 x 4 x 7) = 150, exactly the limit.
    attribute_policy(
        r#"{"source":["a","b","c"],"$or":[
        {"metricName":["1","2","3","4","5","6"]},
        {"metricType":["1","2","3","4"],"$or":[{"metricId":[1,2,3,4]},{"spaceId":[1,2,3,4,5,6,7]}]}]}"#,
    );
}

#[test]
fn nested_or_counts_depth_too() {
    // (3 x 4 x 2) + (3 x 4 x 6) + (2 x 4 x 2) + (2 x 4 x 6) = 160
    let json = r#"{"$or":[{"metricName":["a","b","c"]},{"namespace":["x","y"]}],
        "detail":{"scope":["s","t"],"$or":[{"source":["c"]},{"type":["1","2","3"]}]}}"#;
    assert_eq!(error(json, Scope::MessageBody), TOO_COMPLEX);
}

#[test]
fn hostile_policies_are_refused_after_bounded_work() {
    // Twenty nested $or levels would multiply out to a million alternatives; only three
    // key names are used, so it is the combination limit that stops it.
    let mut json = r#"{"k":["v"]}"#.to_string();
    for _ in 0..20 {
        json = format!(r#"{{"$or":[{json},{{"a":["x"]}}],"b":["y","z"]}}"#);
    }
    assert_eq!(error(&json, Scope::MessageBody), TOO_COMPLEX);

    // Nesting deeper than any JSON parser limit, in both scopes.
    let deep = format!("{}[\"v\"]{}", r#"{"k":"#.repeat(5000), "}".repeat(5000));
    assert!(error(&deep, Scope::MessageBody).starts_with("failed to parse JSON."));
    let deep_or = format!(
        "{}{}",
        r#"{"$or":[{"a":["1"]},"#.repeat(3000),
        r#"{"b":["2"]}]}"#.repeat(3000)
    );
    assert!(!error(&deep_or, Scope::MessageAttributes).is_empty());
}

#[test]
fn deep_but_parseable_nesting_is_too_complex() {
    // 100 levels parse, but a key 100 levels down costs 100 combinations per value.
    let json = format!("{}[\"1\",\"2\"]{}", r#"{"k":"#.repeat(100), "}".repeat(100));
    assert_eq!(error(&json, Scope::MessageBody), TOO_COMPLEX);
}

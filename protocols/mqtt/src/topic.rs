//! MQTT topic names and filters: their syntax (spec 4.7, 4.8) and their mapping onto routing
//! and binding keys of the `amq.topic` exchange, where MQTT topics live in the core.
//!
//! The codec checks every name and filter it decodes with [`validate_name`] and
//! [`validate_filter`]. Pure functions; no state.
//!
//! # Mapping to AMQP (RabbitMQ's convention, ARCHITECTURE.md)
//!
//! A topic name becomes a routing key by swapping `/` and `.`: `a/b.c` is `a.b/c`. The swap is
//! its own inverse, so names and keys convert both ways without merging two names into one
//! key. A filter becomes a binding key by the same swap, with a `+` level becoming `*`; `#`
//! stays `#`. Matching then agrees with MQTT's in the cases that look like traps:
//!
//! - **Parent level.** MQTT's `a/#` matches `a` itself (4.7.1.2: "sport/tennis/player1/#"
//!   matches "sport/tennis/player1"), and AMQP's `a.#` matches `a` because `#` matches zero
//!   words; the core's trie (`src/core/vhost/topic.rs`) tries every skip from zero.
//! - **Empty levels.** MQTT's `+` matches an empty level: `a/+` matches `a/`, `+/b` matches
//!   `/b`. The trie splits `a.` into the words `a` and `` (it splits on every `.`), and its `*`
//!   matches any one word, the empty one included, so `a.*` matches `a.`.
//! - **The empty key.** The trie gives the key `` no words at all, so `#` matches it and `*`
//!   does not. An MQTT name is never empty [MQTT-4.7.3-1], so a key made from a name is never
//!   empty either.
//!
//! and differs in three, which the session handles:
//!
//! - **`$` topics.** "The Server MUST NOT match Topic Filters starting with a wildcard
//!   character (# or +) with Topic Names beginning with a $ character" [MQTT-4.7.2-1]. The trie
//!   does not know this: `#` matches `$SYS.x`. The session drops such deliveries; see
//!   [`is_system_topic`] and [`filter_matches`].
//! - **A literal `*` level.** `*` is an ordinary character in MQTT but a whole-level wildcard
//!   in AMQP, so the filter `a/*` (meaning only the topic `a/*`) binds `a.*` and matches `a/b`
//!   too. [`binding_key_is_broader`] says when this or the `$` rule can happen, and
//!   [`filter_matches`] gives MQTT's answer. A `*` inside a level (`a*`) is literal in both.
//! - **Keys from other protocols.** An AMQP or STOMP publisher may use a routing key whose
//!   name is not a valid topic name: the empty key, or words `+` or `#`. An MQTT client must
//!   never receive a wildcard in a PUBLISH [MQTT-3.3.2-2], so [`delivered_name`] sends them
//!   percent-encoded; the session checks its result with [`validate_name`] (the empty key has
//!   no name and is not delivered).
//!
//! Shared subscriptions `$share/{group}/{filter}` bind the filter part: split it off with
//! [`split_shared`] first. The names `$queue/q` and `$exchange/x/rk` are addresses, not topics:
//! see [`publish_route`].

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use mqbridge_broker_api::ReplyAddress;
use mqbridge_broker_api::reply::TOPIC_EXCHANGE;

/// The prefix of a shared subscription's filter (4.8.2).
const SHARED_PREFIX: &str = "$share/";

/// The longest name or filter: it is a UTF-8 Encoded String [MQTT-4.7.3-3].
const LENGTH_MAX: usize = u16::MAX as usize;

/// The rules of 4.7.3 that names and filters share.
fn validate_common(topic: &str) -> Result<(), &'static str> {
    // [MQTT-4.7.3-1] "All Topic Names and Topic Filters MUST be at least one character long."
    if topic.is_empty() {
        return Err("[MQTT-4.7.3-1] topic name or filter is empty");
    }
    // [MQTT-4.7.3-2] "Topic Names and Topic Filters MUST NOT include the null character
    // (Unicode U+0000)." The codec's strings are checked already; keys from AMQP are not.
    if topic.contains('\0') {
        return Err("[MQTT-4.7.3-2] topic name or filter contains U+0000");
    }
    // [MQTT-4.7.3-3] "Topic Names and Topic Filters are UTF-8 Encoded Strings; they MUST NOT
    // encode to more than 65,535 bytes."
    if topic.len() > LENGTH_MAX {
        return Err("[MQTT-4.7.3-3] topic name or filter is longer than 65,535 octets");
    }
    Ok(())
}

/// Checks a topic name, as a PUBLISH, a will or a Response Topic carries it.
pub fn validate_name(topic: &str) -> Result<(), &'static str> {
    validate_common(topic)?;
    // [MQTT-3.3.2-2] "The Topic Name in the PUBLISH packet MUST NOT contain wildcard
    // characters." ([MQTT-4.7.0-1]; 3.1.1: [MQTT-4.7.1-1].)
    if topic.contains(['+', '#']) {
        return Err("[MQTT-3.3.2-2] topic name contains a wildcard character");
    }
    Ok(())
}

/// Checks a topic filter, as SUBSCRIBE and UNSUBSCRIBE carry it, including the shared
/// subscription form `$share/{group}/{filter}`.
pub fn validate_filter(filter: &str) -> Result<(), &'static str> {
    validate_common(filter)?;
    let Some(rest) = filter.strip_prefix(SHARED_PREFIX) else {
        return validate_levels(filter);
    };
    // [MQTT-4.8.2-2] "The ShareName MUST NOT contain the characters "/", "+" or "#", but MUST
    // be followed by a "/" character. This "/" character MUST be followed by a Topic Filter."
    let Some((group, inner)) = rest.split_once('/') else {
        return Err("[MQTT-4.8.2-2] shared subscription has no '/' after its share name");
    };
    // [MQTT-4.8.2-1] "A Shared Subscription's Topic Filter MUST start with "$share/" and MUST
    // contain a ShareName that is at least one character long."
    if group.is_empty() {
        return Err("[MQTT-4.8.2-1] shared subscription has an empty share name");
    }
    if group.contains(['+', '#']) {
        return Err("[MQTT-4.8.2-2] share name contains a wildcard character");
    }
    if inner.is_empty() {
        return Err("[MQTT-4.8.2-2] shared subscription has no topic filter");
    }
    validate_levels(inner)
}

/// The wildcard rules, level by level.
fn validate_levels(filter: &str) -> Result<(), &'static str> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level == "#" {
            // [MQTT-4.7.1-2] (MQTT 5: [MQTT-4.7.1-1]) "The multi-level wildcard character MUST
            // be specified either on its own or following a topic level separator. In either
            // case it MUST be the last character specified in the Topic Filter."
            if levels.peek().is_some() {
                return Err("[MQTT-4.7.1-2] '#' is not the last level of the filter");
            }
        } else if level.contains('#') {
            return Err("[MQTT-4.7.1-2] '#' does not occupy a whole level");
        } else if level != "+" && level.contains('+') {
            // [MQTT-4.7.1-3] (MQTT 5: [MQTT-4.7.1-2]) "The single-level wildcard can be used at
            // any level in the Topic Filter, including first and last levels. Where it is used,
            // it MUST occupy an entire level of the filter."
            return Err("[MQTT-4.7.1-3] '+' does not occupy a whole level");
        }
    }
    Ok(())
}

/// Splits a shared subscription's filter `$share/{group}/{filter}` into its group and filter;
/// `None` for an ordinary filter. Does not validate: run [`validate_filter`] first.
pub fn split_shared(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix(SHARED_PREFIX)?.split_once('/')
}

/// Whether a topic name starts with `$`: such topics (`$SYS/...`) are not matched by filters
/// starting with a wildcard [MQTT-4.7.2-1], which the core's trie does not know.
pub fn is_system_topic(name: &str) -> bool {
    name.starts_with('$')
}

/// Whether `filter` matches the topic name `name` by MQTT's rules (4.7), including the `$`
/// rule. For a shared subscription, pass the filter part of [`split_shared`].
pub fn filter_matches(filter: &str, name: &str) -> bool {
    // [MQTT-4.7.2-1] "The Server MUST NOT match Topic Filters starting with a wildcard
    // character (# or +) with Topic Names beginning with a $ character."
    if is_system_topic(name) && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut name_levels = name.split('/');
    loop {
        match (filter_levels.next(), name_levels.next()) {
            // `#` matches the parent level too: `a/#` matches `a` (4.7.1.2).
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(filter_level), Some(name_level)) if filter_level == name_level => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether the binding key of `filter` can match names the filter does not (see the module
/// docs): a level that is exactly `*`, or a wildcard first level, which the trie also matches
/// against `$` topics. Deliveries through such a binding need [`filter_matches`].
pub fn binding_key_is_broader(filter: &str) -> bool {
    filter.starts_with(['+', '#']) || filter.split('/').any(|level| level == "*")
}

/// Topic names under which a client publishes straight to a queue or to any exchange, and
/// which Response Topics take for replies that must reach one (ARCHITECTURE.md, "Reply
/// addresses"). Names under `$` are the server's to define, and no subscription matches them:
/// filters that start with a wildcard skip them [MQTT-4.7.2-1], and the routes below never
/// touch `amq.topic`.
const QUEUE_PREFIX: &str = "$queue/";
const EXCHANGE_PREFIX: &str = "$exchange/";

/// The exchange and routing key a PUBLISH to `topic` is routed with: `$queue/q` is queue `q`
/// (the default exchange), `$exchange/x/rk` is exchange `x` with the key `rk` as written, and
/// every other name is its routing key on `amq.topic`.
pub fn publish_route(topic: &str) -> (String, String) {
    match address(topic) {
        Some(address) => {
            let (exchange, key) = address.route();
            (exchange.to_owned(), key.to_owned())
        }
        None => (TOPIC_EXCHANGE.to_owned(), name_to_routing_key(topic)),
    }
}

/// Whether a PUBLISH to `topic` goes to a queue or exchange rather than to MQTT's topic tree
/// (and so is never retained).
pub fn is_address(topic: &str) -> bool {
    address(topic).is_some()
}

fn address(topic: &str) -> Option<ReplyAddress<'_>> {
    if let Some(queue) = topic.strip_prefix(QUEUE_PREFIX) {
        return Some(ReplyAddress::Queue(queue));
    }
    let rest = topic.strip_prefix(EXCHANGE_PREFIX)?;
    let (exchange, routing_key) = rest.split_once('/').unwrap_or((rest, ""));
    Some(ReplyAddress::Exchange {
        exchange,
        routing_key,
    })
}

/// The core's `reply_to` for a Response Topic: `a/b` is `/topic/a.b`, `$queue/q` is `q`.
pub fn response_topic_to_reply_to(topic: &str) -> String {
    match address(topic) {
        Some(address) => address.render(),
        None => ReplyAddress::Exchange {
            exchange: TOPIC_EXCHANGE,
            routing_key: &name_to_routing_key(topic),
        }
        .render(),
    }
}

/// The Response Topic an MQTT responder publishes its reply to, for any `reply_to`.
pub fn reply_to_to_response_topic(reply_to: &str) -> String {
    match ReplyAddress::parse(reply_to) {
        ReplyAddress::Queue(queue) => format!("{QUEUE_PREFIX}{queue}"),
        ReplyAddress::Exchange {
            exchange: TOPIC_EXCHANGE,
            routing_key,
        } => routing_key_to_name(routing_key),
        ReplyAddress::Exchange {
            exchange,
            routing_key,
        } => format!("{EXCHANGE_PREFIX}{exchange}/{routing_key}"),
    }
}

/// The topic name an MQTT subscriber is sent a message under. A key from another protocol may
/// hold what no topic name may [MQTT-3.3.2-2, MQTT-4.7.3-2]: the characters `+`, `#` and U+0000
/// go out percent-encoded (`%2B`, `%23`, `%00`), so `a.#` is delivered as `a/%23` rather than
/// not at all. Other names are [`routing_key_to_name`]'s, unchanged. Check the result with
/// [`validate_name`]: the empty key still has no name.
pub fn delivered_name(key: &str) -> String {
    let name = routing_key_to_name(key);
    if !name.contains(['+', '#', '\0']) {
        return name;
    }
    name.replace('+', "%2B")
        .replace('#', "%23")
        .replace('\0', "%00")
}

/// The routing key on `amq.topic` of a topic name: `/` and `.` swapped.
pub fn name_to_routing_key(topic: &str) -> String {
    swap_separators(topic)
}

/// The topic name of a routing key on `amq.topic`; the inverse of [`name_to_routing_key`]. The
/// result may not be a valid name (see the module docs): check it with [`validate_name`].
pub fn routing_key_to_name(key: &str) -> String {
    swap_separators(key)
}

/// The binding key on `amq.topic` of a topic filter: `/` and `.` swapped, `+` levels become
/// `*`, `#` stays. For a shared subscription, pass the filter part of [`split_shared`].
pub fn filter_to_binding_key(filter: &str) -> String {
    let mut key = String::with_capacity(filter.len());
    for (index, level) in filter.split('/').enumerate() {
        if index > 0 {
            key.push('.');
        }
        match level {
            "+" => key.push('*'),
            level => key.extend(level.chars().map(|c| if c == '.' { '/' } else { c })),
        }
    }
    key
}

fn swap_separators(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '/' => '.',
            '.' => '/',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::select;

    #[test]
    fn names_follow_the_rules_of_4_7() {
        for name in [
            "a", "/", "a/b", "a//b", "/a", "a/", "a.b", "$SYS/x", "a*", " ", "ü/€",
        ] {
            assert_eq!(validate_name(name), Ok(()), "{name:?}");
        }
        for (name, id) in [
            ("", "[MQTT-4.7.3-1]"),
            ("a\0b", "[MQTT-4.7.3-2]"),
            ("a/+", "[MQTT-3.3.2-2]"),
            ("a/#", "[MQTT-3.3.2-2]"),
            ("a+b", "[MQTT-3.3.2-2]"),
        ] {
            let error = validate_name(name).unwrap_err();
            assert!(error.starts_with(id), "{name:?}: {error}");
        }
        assert!(validate_name(&"a".repeat(LENGTH_MAX)).is_ok());
        let long = validate_name(&"a".repeat(LENGTH_MAX + 1)).unwrap_err();
        assert!(long.starts_with("[MQTT-4.7.3-3]"));
    }

    #[test]
    fn filters_follow_the_rules_of_4_7_and_4_8() {
        let valid = [
            "#",
            "+",
            "a/#",
            "+/+",
            "a/+/b",
            "/",
            "//",
            "a//#",
            "+/#",
            "$SYS/#",
            "a*",
            "*",
            "$share/g/a/#",
            "$share/g/+",
            "$share/g//",
            "$share",
            "$shared/x",
            "$share/g/$share/x",
        ];
        for filter in valid {
            assert_eq!(validate_filter(filter), Ok(()), "{filter:?}");
        }
        for (filter, id) in [
            ("", "[MQTT-4.7.3-1]"),
            ("a\0", "[MQTT-4.7.3-2]"),
            ("#/a", "[MQTT-4.7.1-2]"),
            ("a/#/", "[MQTT-4.7.1-2]"),
            ("a#", "[MQTT-4.7.1-2]"),
            ("a/b#", "[MQTT-4.7.1-2]"),
            ("a+", "[MQTT-4.7.1-3]"),
            ("a/+b/c", "[MQTT-4.7.1-3]"),
            ("$share/", "[MQTT-4.8.2-2]"),
            ("$share/g", "[MQTT-4.8.2-2]"),
            ("$share//a", "[MQTT-4.8.2-1]"),
            ("$share/g+/a", "[MQTT-4.8.2-2]"),
            ("$share/#/a", "[MQTT-4.8.2-2]"),
            ("$share/g/", "[MQTT-4.8.2-2]"),
            ("$share/g/a#", "[MQTT-4.7.1-2]"),
        ] {
            let error = validate_filter(filter).unwrap_err();
            assert!(error.starts_with(id), "{filter:?}: {error}");
        }
    }

    #[test]
    fn shared_filters_split_into_group_and_filter() {
        assert_eq!(split_shared("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(split_shared("$share/g//"), Some(("g", "/")));
        assert_eq!(split_shared("$share/g"), None);
        assert_eq!(split_shared("a/b"), None);
        assert_eq!(split_shared("$shared/g/a"), None);
    }

    #[test]
    fn names_and_filters_map_to_amqp_keys() {
        assert_eq!(name_to_routing_key("a/b.c"), "a.b/c");
        assert_eq!(routing_key_to_name("a.b/c"), "a/b.c");
        assert_eq!(name_to_routing_key("/a//"), ".a..");
        assert_eq!(filter_to_binding_key("a/+/b.c/#"), "a.*.b/c.#");
        assert_eq!(filter_to_binding_key("+"), "*");
        assert_eq!(filter_to_binding_key("a+b/*"), "a+b.*");
        assert_eq!(filter_to_binding_key("$SYS/#"), "$SYS.#");
    }

    #[test]
    fn matching_follows_mqtt_rules() {
        for (filter, name, expected) in [
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("a/#", "ab", false),
            ("#", "a/b", true),
            ("a/+", "a/", true),
            ("+/b", "/b", true),
            ("a/+", "a", false),
            ("a/+", "a/b/c", false),
            ("+", "/", false),
            ("+/+", "/", true),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("a/*", "a/b", false),
            ("a/*", "a/*", true),
        ] {
            assert_eq!(filter_matches(filter, name), expected, "{filter} vs {name}");
        }
        assert!(is_system_topic("$SYS/uptime"));
        assert!(!is_system_topic("SYS/$"));
        assert!(binding_key_is_broader("#"));
        assert!(binding_key_is_broader("+/a"));
        assert!(binding_key_is_broader("a/*/b"));
        assert!(!binding_key_is_broader("a/+/#"));
        assert!(!binding_key_is_broader("a/b*"));
    }

    /// The core trie's matching (`src/core/vhost/topic.rs`), restated: words split on `.`, the
    /// empty key has none, `*` is any one word and `#` any number.
    fn amqp_matches(binding_key: &str, routing_key: &str) -> bool {
        fn words(key: &str) -> Vec<&str> {
            if key.is_empty() {
                Vec::new()
            } else {
                key.split('.').collect()
            }
        }
        fn match_words(binding: &[&str], key: &[&str]) -> bool {
            match binding.split_first() {
                None => key.is_empty(),
                Some((&"#", rest)) => (0..=key.len()).any(|skip| match_words(rest, &key[skip..])),
                Some((&"*", rest)) => !key.is_empty() && match_words(rest, &key[1..]),
                Some((word, rest)) => key.first() == Some(word) && match_words(rest, &key[1..]),
            }
        }
        match_words(&words(binding_key), &words(routing_key))
    }

    const NAME_LEVELS: &[&str] = &["a", "b", "", "x.y", "*", "$s", "a*"];

    fn name() -> impl Strategy<Value = String> {
        vec(select(NAME_LEVELS), 1..5)
            .prop_map(|levels| levels.join("/"))
            .prop_filter("names are not empty", |name| !name.is_empty())
    }

    fn filter() -> impl Strategy<Value = String> {
        let levels = [NAME_LEVELS, &["+", "+"]].concat();
        (vec(select(levels), 0..4), any::<bool>())
            .prop_map(|(mut levels, hash)| {
                if hash || levels.is_empty() {
                    levels.push("#");
                }
                levels.join("/")
            })
            .prop_filter("filters are not empty", |filter| !filter.is_empty())
    }

    proptest! {
        #[test]
        fn name_to_key_to_name_is_identity(name in "[a-z/. $*\u{e9}]{1,12}") {
            prop_assume!(validate_name(&name).is_ok());
            prop_assert_eq!(routing_key_to_name(&name_to_routing_key(&name)), name);
        }

        #[test]
        fn amqp_matching_of_mapped_keys_agrees_with_mqtt(filter in filter(), name in name()) {
            prop_assert_eq!(validate_filter(&filter), Ok(()));
            prop_assert_eq!(validate_name(&name), Ok(()));
            let mqtt = filter_matches(&filter, &name);
            let amqp = amqp_matches(&filter_to_binding_key(&filter), &name_to_routing_key(&name));
            if binding_key_is_broader(&filter) {
                prop_assert!(!mqtt || amqp, "{} matches {} in MQTT only", filter, name);
            } else {
                prop_assert_eq!(mqtt, amqp, "{} vs {}", filter, name);
            }
        }
    }
    #[test]
    fn addresses_route_past_the_topic_tree_and_back() {
        assert_eq!(publish_route("$queue/q.1"), ("".into(), "q.1".into()));
        assert_eq!(publish_route("$exchange/x/r.k"), ("x".into(), "r.k".into()));
        assert_eq!(publish_route("a/b.c"), ("amq.topic".into(), "a.b/c".into()));
        assert!(is_address("$queue/q") && !is_address("$SYS/x"));
        for (topic, reply_to) in [
            ("replies/me", "/topic/replies.me"),
            ("$queue/amq.gen-1", "amq.gen-1"),
            ("$exchange/x/rk", "/exchange/x/rk"),
        ] {
            assert_eq!(response_topic_to_reply_to(topic), reply_to);
            assert_eq!(reply_to_to_response_topic(reply_to), topic);
        }
        assert_eq!(reply_to_to_response_topic("/reply-queue/q"), "$queue/q");
    }
    #[test]
    fn keys_that_are_no_topic_name_are_delivered_encoded() {
        assert_eq!(delivered_name("a.b/c"), "a/b.c");
        assert_eq!(delivered_name("a.#"), "a/%23");
        assert_eq!(delivered_name("+.x"), "%2B/x");
        assert_eq!(delivered_name("a\0"), "a%00");
        assert!(validate_name(&delivered_name("a.#.+")).is_ok());
        assert!(validate_name(&delivered_name("")).is_err());
    }
}

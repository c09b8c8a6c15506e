//! Exchanges and their bindings. Each kind keeps its bindings in the shape its matching needs:
//! a map for direct, a list for fanout, a trie for topic, a scan for headers (headers bindings
//! are few in practice and their match depends on every header, so no index helps).
//! Mutated only under the vhost's write lock; matched under its read lock.

use std::collections::HashMap;

use mqbridge_broker_api::{Destination, ExchangeKind, ExchangeSpec, HeaderValue, Headers};

use super::topic::TopicTrie;

/// The argument naming an exchange to try when this one routes a message nowhere.
pub const ALTERNATE_EXCHANGE: &str = "alternate-exchange";

#[derive(Debug)]
pub struct Exchange {
    pub spec: ExchangeSpec,
    bindings: Bindings,
    /// Bindings with this exchange as source, for `if-unused` and auto-delete.
    pub binding_count: usize,
    /// The policy that applies to it, by name, and the alternate exchange it names.
    pub policy: Option<(String, Option<String>)>,
}

#[derive(Debug)]
enum Bindings {
    Direct(HashMap<String, Vec<Destination>>),
    Fanout(Vec<(String, Destination)>),
    Topic(TopicTrie),
    Headers(Vec<HeadersBinding>),
}

#[derive(Debug)]
struct HeadersBinding {
    routing_key: String,
    arguments: Headers,
    destination: Destination,
}

impl Exchange {
    pub fn new(spec: ExchangeSpec) -> Self {
        let bindings = match spec.kind {
            ExchangeKind::Direct => Bindings::Direct(HashMap::new()),
            ExchangeKind::Fanout => Bindings::Fanout(Vec::new()),
            ExchangeKind::Topic => Bindings::Topic(TopicTrie::default()),
            ExchangeKind::Headers => Bindings::Headers(Vec::new()),
        };
        Exchange {
            spec,
            bindings,
            binding_count: 0,
            policy: None,
        }
    }

    /// The exchange's own `alternate-exchange` argument, else its policy's.
    pub fn alternate(&self) -> Option<&str> {
        self.spec
            .arguments
            .get(ALTERNATE_EXCHANGE)
            .and_then(HeaderValue::as_str)
            .or_else(|| self.policy.as_ref().and_then(|(_, ae)| ae.as_deref()))
    }

    /// Adds a binding; binding twice is a no-op (AMQP: bindings are idempotent).
    pub fn bind(&mut self, key: &str, arguments: &Headers, destination: Destination) -> bool {
        let added = match &mut self.bindings {
            Bindings::Direct(map) => {
                let list = map.entry(key.to_owned()).or_default();
                let new = !list.contains(&destination);
                if new {
                    list.push(destination);
                }
                new
            }
            Bindings::Fanout(list) => {
                let entry = (key.to_owned(), destination);
                let new = !list.contains(&entry);
                if new {
                    list.push(entry);
                }
                new
            }
            Bindings::Topic(trie) => trie.insert(key, destination),
            Bindings::Headers(list) => {
                let new = !list.iter().any(|b| {
                    b.routing_key == key
                        && b.arguments == *arguments
                        && b.destination == destination
                });
                if new {
                    let routing_key = key.to_owned();
                    let arguments = arguments.clone();
                    list.push(HeadersBinding {
                        routing_key,
                        arguments,
                        destination,
                    });
                }
                new
            }
        };
        self.binding_count += usize::from(added);
        added
    }

    /// Whether `bind` with these would find the binding already there.
    pub fn contains(&self, key: &str, arguments: &Headers, destination: &Destination) -> bool {
        match &self.bindings {
            Bindings::Direct(map) => map.get(key).is_some_and(|list| list.contains(destination)),
            Bindings::Fanout(list) => list.iter().any(|(k, d)| k == key && d == destination),
            Bindings::Topic(trie) => trie.contains(key, destination),
            Bindings::Headers(list) => list.iter().any(|b| {
                b.routing_key == key && b.arguments == *arguments && b.destination == *destination
            }),
        }
    }

    /// Removes a binding; returns whether it existed.
    pub fn unbind(&mut self, key: &str, arguments: &Headers, destination: &Destination) -> bool {
        let removed = match &mut self.bindings {
            Bindings::Direct(map) => {
                let Some(list) = map.get_mut(key) else {
                    return false;
                };
                let before = list.len();
                list.retain(|d| d != destination);
                let removed = list.len() != before;
                if list.is_empty() {
                    map.remove(key);
                }
                removed
            }
            Bindings::Fanout(list) => retain_count(list, |(k, d)| !(k == key && d == destination)),
            Bindings::Topic(trie) => trie.remove(key, destination),
            Bindings::Headers(list) => retain_count(list, |b| {
                !(b.routing_key == key
                    && b.arguments == *arguments
                    && b.destination == *destination)
            }),
        };
        self.binding_count -= usize::from(removed);
        removed
    }

    /// Appends the destinations a message with this key and these headers reaches.
    pub fn route<'a>(&'a self, key: &str, headers: &Headers, out: &mut Vec<&'a Destination>) {
        match &self.bindings {
            Bindings::Direct(map) => out.extend(map.get(key).into_iter().flatten()),
            Bindings::Fanout(list) => out.extend(list.iter().map(|(_, d)| d)),
            Bindings::Topic(trie) => trie.matches(key, out),
            Bindings::Headers(list) => out.extend(
                list.iter()
                    .filter(|b| headers_match(&b.arguments, headers))
                    .map(|b| &b.destination),
            ),
        }
    }
}

fn retain_count<T>(list: &mut Vec<T>, keep: impl FnMut(&T) -> bool) -> bool {
    let before = list.len();
    list.retain(keep);
    list.len() != before
}

/// Whether a headers-exchange binding matches a message's headers. `x-match` is `all` (the
/// default) or `any`; the `-with-x` variants also compare arguments starting with `x-`, which are
/// otherwise ignored. A binding argument of type void matches on presence alone.
pub fn headers_match(arguments: &Headers, headers: &Headers) -> bool {
    let mode = arguments
        .get("x-match")
        .and_then(HeaderValue::as_str)
        .unwrap_or("all");
    let with_x = mode.ends_with("-with-x");
    let mut pairs = arguments
        .iter()
        .filter(|(name, _)| *name != "x-match" && (with_x || !name.starts_with("x-")))
        .map(|(name, expected)| match (expected, headers.get(name)) {
            (_, None) => false,
            (HeaderValue::Void, Some(_)) => true,
            (expected, Some(actual)) => values_equal(expected, actual),
        });
    if mode.starts_with("any") {
        pairs.any(|m| m)
    } else {
        pairs.all(|m| m)
    }
}

/// Equality that ignores the encoding differences between protocols: integer widths, and text
/// carried as bytes.
fn values_equal(a: &HeaderValue, b: &HeaderValue) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        return x == y;
    }
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, HeaderValue)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn headers_all_and_any() {
        let message = table(&[
            ("format", HeaderValue::String("pdf".into())),
            ("type", HeaderValue::I32(2)),
        ]);
        let all = table(&[
            ("x-match", HeaderValue::String("all".into())),
            ("format", HeaderValue::Bytes("pdf".into())),
            ("type", HeaderValue::U8(2)),
        ]);
        assert!(headers_match(&all, &message));
        let any = table(&[
            ("x-match", HeaderValue::String("any".into())),
            ("format", HeaderValue::String("zip".into())),
            ("type", HeaderValue::I64(2)),
        ]);
        assert!(headers_match(&any, &message));
        let missing = table(&[("lang", HeaderValue::Void)]);
        assert!(!headers_match(&missing, &message));
    }

    #[test]
    fn x_arguments_count_only_with_x() {
        let message = table(&[("x-tenant", HeaderValue::String("a".into()))]);
        let plain = table(&[("x-tenant", HeaderValue::String("b".into()))]);
        assert!(
            headers_match(&plain, &message),
            "x- arguments are ignored by default"
        );
        let mut with_x = plain.clone();
        with_x.insert("x-match", HeaderValue::String("all-with-x".into()));
        assert!(!headers_match(&with_x, &message));
    }
}

//! Topic-exchange matching: a trie over the dot-separated words of binding keys.
//!
//! A binding key is a list of words; `*` matches exactly one word and `#` zero or more. Matching
//! a routing key walks the trie once per word, so its cost grows with the key's length and the
//! number of wildcard branches, not with the number of bindings (100k bindings cost what ten
//! do). Owned by the exchange it belongs to; mutated only under the vhost's write lock.

use std::collections::HashMap;

use mqbridge_broker_api::Destination;

/// One trie node: the bindings whose key ends here and the branches below.
#[derive(Debug, Default)]
pub struct TopicTrie {
    children: HashMap<String, TopicTrie>,
    star: Option<Box<TopicTrie>>,
    hash: Option<Box<TopicTrie>>,
    destinations: Vec<Destination>,
}

impl TopicTrie {
    /// Adds a binding; returns false if it was already there.
    pub fn insert(&mut self, key: &str, destination: Destination) -> bool {
        let node = words(key).fold(self, |node, word| node.child_mut(word));
        if node.destinations.contains(&destination) {
            return false;
        }
        node.destinations.push(destination);
        true
    }

    /// Whether the binding is there.
    pub fn contains(&self, key: &str, destination: &Destination) -> bool {
        let mut node = self;
        for word in words(key) {
            let next = match word {
                "*" => node.star.as_deref(),
                "#" => node.hash.as_deref(),
                _ => node.children.get(word),
            };
            let Some(next) = next else {
                return false;
            };
            node = next;
        }
        node.destinations.contains(destination)
    }

    /// Removes a binding; returns false if it was not there. Empty branches are pruned so that
    /// churn (MQTT clients subscribing and leaving) does not grow the trie forever.
    pub fn remove(&mut self, key: &str, destination: &Destination) -> bool {
        let words: Vec<&str> = words(key).collect();
        self.remove_words(&words, destination)
    }

    fn remove_words(&mut self, words: &[&str], destination: &Destination) -> bool {
        let Some((first, rest)) = words.split_first() else {
            let before = self.destinations.len();
            self.destinations.retain(|d| d != destination);
            return self.destinations.len() != before;
        };
        match *first {
            "*" => prune(&mut self.star, |n| n.remove_words(rest, destination)),
            "#" => prune(&mut self.hash, |n| n.remove_words(rest, destination)),
            word => {
                let Some(child) = self.children.get_mut(word) else {
                    return false;
                };
                let removed = child.remove_words(rest, destination);
                if child.is_empty() {
                    self.children.remove(word);
                }
                removed
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.destinations.is_empty()
            && self.children.is_empty()
            && self.star.is_none()
            && self.hash.is_none()
    }

    fn child_mut(&mut self, word: &str) -> &mut TopicTrie {
        match word {
            "*" => self.star.get_or_insert_with(Box::default),
            "#" => self.hash.get_or_insert_with(Box::default),
            _ => self.children.entry(word.to_owned()).or_default(),
        }
    }

    /// Appends every destination whose binding key matches `routing_key`. May append one
    /// destination more than once (two patterns can match); callers deduplicate.
    pub fn matches<'a>(&'a self, routing_key: &str, out: &mut Vec<&'a Destination>) {
        let words: Vec<&str> = words(routing_key).collect();
        self.match_words(&words, out);
    }

    fn match_words<'a>(&'a self, words: &[&str], out: &mut Vec<&'a Destination>) {
        if let Some(hash) = &self.hash {
            // `#` swallows any number of words, including none.
            for skip in 0..=words.len() {
                hash.match_words(words.get(skip..).unwrap_or_default(), out);
            }
        }
        let Some((first, rest)) = words.split_first() else {
            out.extend(self.destinations.iter());
            return;
        };
        if let Some(child) = self.children.get(*first) {
            child.match_words(rest, out);
        }
        if let Some(star) = &self.star {
            star.match_words(rest, out);
        }
    }
}

/// The words of a key. The empty key has no words (so `#` matches it and `*` does not), as in
/// RabbitMQ.
fn words(key: &str) -> impl Iterator<Item = &str> {
    key.split('.').filter(move |_| !key.is_empty())
}

fn prune(slot: &mut Option<Box<TopicTrie>>, f: impl FnOnce(&mut TopicTrie) -> bool) -> bool {
    let Some(node) = slot.as_mut() else {
        return false;
    };
    let removed = f(node);
    if node.is_empty() {
        *slot = None;
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str) -> Destination {
        Destination::Queue(name.to_owned())
    }

    fn matched(trie: &TopicTrie, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        trie.matches(key, &mut out);
        let mut names: Vec<String> = out
            .into_iter()
            .map(|d| match d {
                Destination::Queue(n) | Destination::Exchange(n) => n.clone(),
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn wildcards_match_as_amqp_specifies() {
        let mut trie = TopicTrie::default();
        for (key, name) in [
            ("a.b.c", "exact"),
            ("a.*.c", "star"),
            ("a.#", "hash"),
            ("#", "all"),
            ("#.c", "ends_c"),
            ("a.#.c", "a_any_c"),
            ("*", "one_word"),
        ] {
            trie.insert(key, queue(name));
        }
        assert_eq!(
            matched(&trie, "a.b.c"),
            ["a_any_c", "all", "ends_c", "exact", "hash", "star"]
        );
        assert_eq!(matched(&trie, "a"), ["all", "hash", "one_word"]);
        assert_eq!(matched(&trie, "a.c"), ["a_any_c", "all", "ends_c", "hash"]);
        assert_eq!(matched(&trie, "b.b"), ["all"]);
        assert_eq!(matched(&trie, ""), ["all"]);
    }

    #[test]
    fn remove_prunes_and_reports() {
        let mut trie = TopicTrie::default();
        assert!(trie.insert("a.*.#", queue("q")));
        assert!(!trie.insert("a.*.#", queue("q")));
        assert!(trie.contains("a.*.#", &queue("q")));
        assert!(!trie.contains("a.*", &queue("q")));
        assert!(trie.remove("a.*.#", &queue("q")));
        assert!(!trie.contains("a.*.#", &queue("q")));
        assert!(!trie.remove("a.*.#", &queue("q")));
        assert!(trie.is_empty());
    }

    #[test]
    fn hundred_thousand_bindings_match_only_their_branch() {
        let mut trie = TopicTrie::default();
        for i in 0..100_000 {
            trie.insert(&format!("sensor.{i}.temp"), queue(&i.to_string()));
        }
        assert_eq!(matched(&trie, "sensor.4242.temp"), ["4242"]);
        assert!(matched(&trie, "sensor.4242.humidity").is_empty());
    }
}

//! Permission patterns: RabbitMQ's regular expressions over resource names, searched (not
//! anchored) as `re:run` does. `.*` is by far the most common pattern and is matched without
//! running a regex, so a user with full permissions costs nothing per publish.

use regex::Regex;

#[derive(Debug, Clone)]
pub enum Pattern {
    /// `.*`: every name.
    Any,
    /// `""` or `^$`: only the empty name, so in effect nothing (RabbitMQ's documented synonym).
    Nothing,
    Regex(Regex),
}

impl Pattern {
    /// Compiles `source`; the error text is for the peer.
    pub fn parse(source: &str) -> Result<Pattern, String> {
        match source {
            ".*" => Ok(Pattern::Any),
            "" | "^$" => Ok(Pattern::Nothing),
            _ => Regex::new(source)
                .map(Pattern::Regex)
                .map_err(|error| format!("invalid regular expression '{source}': {error}")),
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Nothing => name.is_empty(),
            Pattern::Regex(regex) => regex.is_match(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_search_like_rabbitmq() {
        let p = |s: &str| Pattern::parse(s).expect("valid");
        assert!(p(".*").matches("anything"));
        assert!(!p("").matches("q"));
        assert!(!p("^$").matches("amq.default"));
        assert!(p("^orders").matches("orders.eu"));
        assert!(!p("^orders").matches("my-orders"));
        assert!(p("orders").matches("my-orders"), "unanchored, as re:run");
        assert!(Pattern::parse("(").is_err());
    }
}

//! Reply addresses: what `Properties::reply_to` may hold, so that request/response works
//! between any two protocols (ARCHITECTURE.md, "Reply addresses").
//!
//! - a queue name: AMQP's convention, reply by publishing to the default exchange with it as
//!   the routing key;
//! - `/topic/RK` or `/exchange/X/RK`: RabbitMQ's STOMP (and AMQP 1.0) address forms, which is
//!   how an MQTT 5 Response Topic travels; `/queue/q`, `/amq/queue/q` and `/reply-queue/q`
//!   name queue `q`.
//!
//! AMQP 0-9-1 queue names are `[a-zA-Z0-9-_.:]`, so a leading `/` can never be mistaken for a
//! queue.

/// The exchange MQTT topics and STOMP `/topic/` destinations live on.
pub const TOPIC_EXCHANGE: &str = "amq.topic";

/// Where a reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyAddress<'a> {
    Queue(&'a str),
    Exchange {
        exchange: &'a str,
        routing_key: &'a str,
    },
}

impl<'a> ReplyAddress<'a> {
    /// Reads a `reply_to` value. Anything that is not one of the address forms is a queue
    /// name.
    pub fn parse(reply_to: &'a str) -> Self {
        Self::parse_address(reply_to).unwrap_or(ReplyAddress::Queue(reply_to))
    }

    /// Reads an address form (one that begins with `/`), or `None` for anything else.
    pub fn parse_address(text: &'a str) -> Option<Self> {
        if let Some(key) = text.strip_prefix("/topic/") {
            return Some(ReplyAddress::Exchange {
                exchange: TOPIC_EXCHANGE,
                routing_key: key,
            });
        }
        if let Some(rest) = text.strip_prefix("/exchange/") {
            let (exchange, routing_key) = rest.split_once('/').unwrap_or((rest, ""));
            return Some(ReplyAddress::Exchange {
                exchange,
                routing_key,
            });
        }
        ["/queue/", "/amq/queue/", "/reply-queue/"]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix))
            .map(ReplyAddress::Queue)
    }

    /// The exchange and routing key a reply is published with.
    pub fn route(self) -> (&'a str, &'a str) {
        match self {
            ReplyAddress::Queue(queue) => ("", queue),
            ReplyAddress::Exchange {
                exchange,
                routing_key,
            } => (exchange, routing_key),
        }
    }

    /// The canonical `reply_to` text for this address.
    pub fn render(self) -> String {
        match self {
            ReplyAddress::Queue(queue) => queue.to_owned(),
            ReplyAddress::Exchange {
                exchange: TOPIC_EXCHANGE,
                routing_key,
            } => format!("/topic/{routing_key}"),
            ReplyAddress::Exchange {
                exchange,
                routing_key,
            } => format!("/exchange/{exchange}/{routing_key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_reads_back_to_its_route() {
        let cases = [
            ("amq.gen-1", ("", "amq.gen-1")),
            ("/topic/a.b", ("amq.topic", "a.b")),
            ("/exchange/x/r.k", ("x", "r.k")),
            ("/exchange/x", ("x", "")),
            ("/queue/q", ("", "q")),
            ("/amq/queue/q", ("", "q")),
            ("/reply-queue/q", ("", "q")),
        ];
        for (text, route) in cases {
            assert_eq!(ReplyAddress::parse(text).route(), route, "{text}");
        }
        assert_eq!(ReplyAddress::parse_address("q"), None);
    }

    #[test]
    fn rendering_is_canonical() {
        for text in ["q", "/topic/a.b", "/exchange/x/rk"] {
            assert_eq!(ReplyAddress::parse(text).render(), text);
        }
        assert_eq!(
            ReplyAddress::parse("/exchange/amq.topic/a").render(),
            "/topic/a"
        );
        assert_eq!(ReplyAddress::parse("/queue/q").render(), "q");
    }
}

//! The connection handshake's content: what the server announces in connection.start, how
//! credentials are read from start-ok, and how tune parameters are negotiated. Pure functions;
//! the connection task sequences them.

use amq_protocol::protocol::connection;
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};

use crate::codec::FRAME_MIN_SIZE;

/// Mechanisms we accept, in preference order, as announced to clients.
pub const MECHANISMS: &str = "PLAIN AMQPLAIN EXTERNAL";

/// The `connection.start` the server sends first. The capabilities table is RabbitMQ's:
/// clients switch features on by it (confirms, nack, cancel notification, blocked).
pub fn start(product: &str, version: &str) -> connection::Start {
    let mut capabilities = FieldTable::default();
    for name in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
    ] {
        capabilities.insert(ShortString::from(name), AMQPValue::Boolean(true));
    }
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes()));
    let mut properties = FieldTable::default();
    properties.insert("capabilities".into(), AMQPValue::FieldTable(capabilities));
    properties.insert("product".into(), text(product));
    properties.insert("version".into(), text(version));
    properties.insert("platform".into(), text("Rust"));
    properties.insert("copyright".into(), text("The mqbridge authors"));
    properties.insert(
        "information".into(),
        text("Licensed under the Apache License 2.0"),
    );
    properties.insert("cluster_name".into(), text(product));
    connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: properties,
        mechanisms: LongString::from(MECHANISMS.as_bytes()),
        locales: LongString::from("en_US".as_bytes()),
    }
}

/// Username and password from a start-ok response, or why they cannot be read.
pub fn credentials(mechanism: &str, response: &[u8]) -> Result<(String, String), String> {
    match mechanism {
        // RFC 4616: authzid NUL authcid NUL passwd.
        "PLAIN" => {
            let mut parts = response.split(|b| *b == 0);
            let (_authzid, user, pass) = (parts.next(), parts.next(), parts.next());
            let text = |p: Option<&[u8]>| {
                p.and_then(|p| std::str::from_utf8(p).ok())
                    .map(str::to_owned)
            };
            match (text(user), text(pass), parts.next()) {
                (Some(user), Some(pass), None) => Ok((user, pass)),
                _ => Err("malformed PLAIN response".to_owned()),
            }
        }
        // A field table without its length prefix, holding LOGIN and PASSWORD.
        "AMQPLAIN" => {
            let mut framed = (response.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(response);
            // The parser recurses per nested table; a deep one would overflow the stack.
            if !crate::codec::table_octets_within_limit(&framed) {
                return Err("malformed AMQPLAIN response".to_owned());
            }
            let (_, table) = amq_protocol::types::parsing::parse_field_table(framed.as_slice())
                .map_err(|_| "malformed AMQPLAIN response".to_owned())?;
            let field = |name: &str| match table.inner().get(name) {
                Some(AMQPValue::LongString(s)) => {
                    Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                }
                Some(AMQPValue::ShortString(s)) => Some(s.as_str().to_owned()),
                _ => None,
            };
            field("LOGIN")
                .zip(field("PASSWORD"))
                .ok_or_else(|| "AMQPLAIN response lacks LOGIN or PASSWORD".to_owned())
        }
        // RabbitMQ's rabbitmq_auth_mechanism_ssl: the identity is the TLS client certificate,
        // which the listener answers an empty login with; without one the login is refused.
        "EXTERNAL" => Ok((String::new(), String::new())),
        other => Err(format!("unknown authentication mechanism '{other}'")),
    }
}

/// Whether the client announced a capability in its start-ok properties.
pub fn client_capability(properties: &FieldTable, name: &str) -> bool {
    match properties.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(caps)) => {
            matches!(caps.inner().get(name), Some(AMQPValue::Boolean(true)))
        }
        _ => false,
    }
}

/// Negotiated limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuned {
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat_secs: u16,
}

/// Applies the client's tune-ok to what we proposed. Zero means "no limit" for channel_max and
/// frame_max, so our proposal stands; the client may lower them, not raise them.
pub fn negotiate(proposed: Tuned, client: &connection::TuneOk) -> Result<Tuned, String> {
    let pick = |ours: u32, theirs: u32| if theirs == 0 { ours } else { theirs };
    let frame_max = pick(proposed.frame_max, client.frame_max);
    if frame_max < FRAME_MIN_SIZE {
        return Err(format!(
            "frame_max={frame_max} is below the minimum of {FRAME_MIN_SIZE}"
        ));
    }
    if frame_max > proposed.frame_max {
        return Err(format!(
            "frame_max={frame_max} exceeds the server's {}",
            proposed.frame_max
        ));
    }
    let channel_max = pick(
        u32::from(proposed.channel_max),
        u32::from(client.channel_max),
    );
    if channel_max > u32::from(proposed.channel_max) {
        return Err(format!(
            "channel_max={channel_max} exceeds the server's {}",
            proposed.channel_max
        ));
    }
    Ok(Tuned {
        channel_max: u16::try_from(channel_max).unwrap_or(proposed.channel_max),
        frame_max,
        heartbeat_secs: client.heartbeat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_credentials() {
        assert_eq!(
            credentials("PLAIN", b"\0guest\0secret"),
            Ok(("guest".into(), "secret".into()))
        );
        assert!(credentials("PLAIN", b"guest").is_err());
        assert!(credentials("CRAM-MD5", b"").is_err());
    }

    #[test]
    fn external_asks_for_the_certificate_identity() {
        assert_eq!(
            credentials("EXTERNAL", b""),
            Ok((String::new(), String::new()))
        );
    }

    #[test]
    fn amqplain_credentials() {
        // LOGIN:S"bob", PASSWORD:S"pw" without the table's length prefix.
        let mut response = Vec::new();
        for (name, value) in [("LOGIN", "bob"), ("PASSWORD", "pw")] {
            response.push(name.len() as u8);
            response.extend_from_slice(name.as_bytes());
            response.push(b'S');
            response.extend_from_slice(&(value.len() as u32).to_be_bytes());
            response.extend_from_slice(value.as_bytes());
        }
        assert_eq!(
            credentials("AMQPLAIN", &response),
            Ok(("bob".into(), "pw".into()))
        );
    }

    #[test]
    fn tune_takes_the_smaller_limits() {
        let ours = Tuned {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat_secs: 60,
        };
        let client = connection::TuneOk {
            channel_max: 0,
            frame_max: 65_536,
            heartbeat: 10,
        };
        let tuned = negotiate(ours, &client).expect("valid");
        assert_eq!(
            tuned,
            Tuned {
                channel_max: 2047,
                frame_max: 65_536,
                heartbeat_secs: 10
            }
        );
        let tiny = connection::TuneOk {
            channel_max: 0,
            frame_max: 100,
            heartbeat: 0,
        };
        assert!(negotiate(ours, &tiny).is_err());
    }
}

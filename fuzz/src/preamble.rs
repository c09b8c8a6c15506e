//! Logins the connection targets may put before their input, so that most inputs reach the
//! state after the handshake instead of failing at it. Targets still send raw input without
//! one for some option values, so the handshakes themselves stay fuzzed.
//!
//! Every login is the default `guest`/`guest`, which the in-memory broker accepts from its
//! loopback peer.

use amq_protocol::protocol::{AMQPClass, channel, connection};
use amq_protocol::types::{FieldTable, LongString, ShortString};
use bytes::BytesMut;
use mqbridge_amqp::codec;
use mqbridge_mqtt::codec::{Connect, ConnectProperties, Packet, ProtocolVersion};

/// AMQP 0-9-1: the protocol header, start-ok (PLAIN), tune-ok, connection.open of `/` and
/// channel.open of channel 1, as a client sends them without waiting for the broker's
/// answers (the broker reads them in order).
pub fn amqp() -> Vec<u8> {
    let mut out = BytesMut::new();
    codec::encode_protocol_header(&mut out);
    let start_ok = connection::StartOk {
        client_properties: FieldTable::default(),
        mechanism: ShortString::from("PLAIN"),
        response: LongString::from("\0guest\0guest"),
        locale: ShortString::from("en_US"),
    };
    let tune_ok = connection::TuneOk {
        channel_max: 16,
        frame_max: codec::FRAME_MIN_SIZE * 8,
        heartbeat: 0,
    };
    let open = connection::Open {
        virtual_host: ShortString::from("/"),
    };
    let methods = [
        (
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(start_ok)),
        ),
        (
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok)),
        ),
        (0, AMQPClass::Connection(connection::AMQPMethod::Open(open))),
        (
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        ),
    ];
    for (channel, method) in &methods {
        codec::encode_method(*channel, method, &mut out).expect("a handshake method encodes");
    }
    out.to_vec()
}

/// MQTT: a CONNECT in `version` from client `fuzz-{client}`, with a clean start unless
/// `persistent`. A few client ids, not one: sessions then both resume and take each other over.
pub fn mqtt(version: ProtocolVersion, client: u8, persistent: bool) -> Vec<u8> {
    let connect = Connect {
        version,
        client_id: format!("fuzz-{client}"),
        clean_start: !persistent,
        keep_alive: 0,
        username: Some("guest".to_owned()),
        password: Some(bytes::Bytes::from_static(b"guest")),
        will: None,
        properties: ConnectProperties::default(),
    };
    let mut out = BytesMut::new();
    mqbridge_mqtt::codec::encode(&Packet::Connect(Box::new(connect)), version, &mut out)
        .expect("a CONNECT encodes");
    out.to_vec()
}

/// STOMP: a CONNECT frame accepting `version` only.
pub fn stomp(version: &str) -> Vec<u8> {
    format!("CONNECT\naccept-version:{version}\nhost:/\nlogin:guest\npasscode:guest\n\n\0")
        .into_bytes()
}

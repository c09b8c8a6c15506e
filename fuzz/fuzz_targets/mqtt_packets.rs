//! MQTT 3.1, 3.1.1 and 5 packets: `mqbridge_mqtt::codec::decode` on a client's byte stream,
//! in the version the input chooses.
//!
//! Input: an options octet, then what a client sends.
//! - bits 0-1: the version the connection has settled: 0 none yet (the stream must open
//!   with a CONNECT, whose version then holds for the rest, as in the connection task),
//!   1 MQTT 3.1, 2 MQTT 3.1.1, 3 MQTT 5;
//! - bits 2-3: the packet size limit: 0 (none), 64, 4096 or 16 MiB.
//!
//! Checks: decode consumes exactly one packet or nothing; every decoded packet re-encodes in
//! its version to `encoded_len` octets and decodes back to an equal packet.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqbridge_mqtt::codec::{self, Packet, ProtocolVersion};

const VERSIONS: [Option<ProtocolVersion>; 4] = [
    None,
    Some(ProtocolVersion::V3_1),
    Some(ProtocolVersion::V3_1_1),
    Some(ProtocolVersion::V5),
];
const SIZE_LIMITS: [u32; 4] = [0, 64, 4096, 16 << 20];

fuzz_target!(|input: &[u8]| {
    let (options, stream) = mqbridge_fuzz::options(input);
    let mut version = VERSIONS[usize::from(options & 0b11)];
    let limit = SIZE_LIMITS[usize::from(options >> 2 & 0b11)];
    let mut buf = BytesMut::from(stream);
    loop {
        let before = buf.len();
        match codec::decode(&mut buf, version, limit) {
            Ok(Some(packet)) => {
                if let Packet::Connect(connect) = &packet {
                    version.get_or_insert(connect.version);
                }
                let Some(settled) = version else {
                    panic!("decode took {} before any CONNECT", packet.name());
                };
                check_round_trip(&packet, settled);
            }
            Ok(None) => {
                assert_eq!(
                    buf.len(),
                    before,
                    "decode consumed octets of a partial packet"
                );
                return;
            }
            Err(_) => return,
        }
    }
});

fn check_round_trip(packet: &Packet, version: ProtocolVersion) {
    let version = match packet {
        Packet::Connect(connect) => connect.version,
        _ => version,
    };
    let mut encoded = BytesMut::new();
    if let Err(error) = codec::encode(packet, version, &mut encoded) {
        panic!("a decoded packet does not encode: {error}\n{packet:?}");
    }
    assert_eq!(
        encoded.len(),
        codec::encoded_len(packet, version),
        "encoded_len is wrong"
    );
    let context = match packet {
        Packet::Connect(_) => None,
        _ => Some(version),
    };
    match codec::decode(&mut encoded, context, 0) {
        Ok(Some(again)) => assert_eq!(&again, packet, "round trip changed the packet"),
        other => panic!("an encoded packet does not decode: {other:?}\n{packet:?}"),
    }
    assert!(
        encoded.is_empty(),
        "decode left octets of an encoded packet"
    );
}

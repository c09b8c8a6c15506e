use bytes::{Bytes, BytesMut};

use super::*;

const LIMIT: usize = 4096;

fn decoder(version: Version) -> Decoder {
    let mut decoder = Decoder::new(LIMIT);
    decoder.configure(version, LIMIT);
    decoder
}

fn decode_all(version: Version, octets: &[u8]) -> Result<Vec<Frame>, DecodeError> {
    let mut decoder = decoder(version);
    let mut buf = BytesMut::from(octets);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf)? {
        frames.push(frame);
    }
    Ok(frames)
}

fn decode_one(version: Version, octets: &[u8]) -> Result<Frame, DecodeError> {
    let frames = decode_all(version, octets)?;
    assert_eq!(frames.len(), 1, "{frames:?}");
    Ok(frames.into_iter().next().expect("one frame"))
}

#[test]
fn a_send_frame_with_headers_and_body() {
    let frame =
        decode_one(Version::V1_2, b"SEND\ndestination:/queue/a\nx:1\n\nhello\0").expect("valid");
    assert_eq!(frame.command, Command::Send);
    assert_eq!(frame.header("destination"), Some("/queue/a"));
    assert_eq!(frame.header("x"), Some("1"));
    assert_eq!(frame.body, Bytes::from_static(b"hello"));
}

#[test]
fn crlf_line_ends_and_heart_beats_between_frames() {
    let octets = b"\n\r\nSEND\r\ndestination:/queue/a\r\n\r\nbody\0\r\n\nDISCONNECT\n\n\0\n";
    let frames = decode_all(Version::V1_2, octets).expect("valid");
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].header("destination"), Some("/queue/a"));
    assert_eq!(frames[0].body, Bytes::from_static(b"body"));
    assert_eq!(frames[1].command, Command::Disconnect);
}

#[test]
fn a_frame_split_at_every_octet_decodes_once_complete() {
    let octets: &[u8] = b"SEND\ndestination:/queue/a\ncontent-length:3\n\na\0b\0MESSAGE\n\nx\0";
    let mut decoder = decoder(Version::V1_2);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for &octet in octets {
        buf.extend_from_slice(&[octet]);
        while let Some(frame) = decoder.decode(&mut buf).expect("valid") {
            frames.push(frame);
        }
    }
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].body, Bytes::from_static(b"a\0b"));
    assert_eq!(frames[1].command, Command::Message);
    assert!(buf.is_empty());
}

#[test]
fn many_frames_in_one_buffer() {
    let mut octets = Vec::new();
    for i in 0..100 {
        octets.extend_from_slice(format!("SEND\ndestination:/queue/q\n\n{i}\0").as_bytes());
    }
    let frames = decode_all(Version::V1_1, &octets).expect("valid");
    assert_eq!(frames.len(), 100);
    assert_eq!(frames[99].body, Bytes::from_static(b"99"));
}

#[test]
fn content_length_carries_binary_bodies_with_nul() {
    let body: Vec<u8> = (0..=255).collect();
    let mut octets = format!(
        "SEND\ndestination:/queue/a\ncontent-length:{}\n\n",
        body.len()
    )
    .into_bytes();
    octets.extend_from_slice(&body);
    octets.push(0);
    let frame = decode_one(Version::V1_0, &octets).expect("valid");
    assert_eq!(frame.body.as_ref(), body.as_slice());
}

#[test]
fn a_content_length_that_disagrees_with_the_body_is_an_error() {
    let error = decode_all(Version::V1_2, b"SEND\ncontent-length:2\n\nabc\0").expect_err("bad");
    assert_eq!(error, DecodeError::ContentLengthMismatch(2));
    let error = decode_all(Version::V1_2, b"SEND\ncontent-length:two\n\nab\0").expect_err("bad");
    assert!(matches!(error, DecodeError::BadContentLength(_)));
}

#[test]
fn a_body_without_nul_past_the_limit_is_an_error() {
    let mut octets = b"SEND\ndestination:/queue/a\n\n".to_vec();
    octets.resize(LIMIT + 1, b'x');
    let error = decode_all(Version::V1_2, &octets).expect_err("too large");
    assert_eq!(error, DecodeError::FrameTooLarge { limit: LIMIT });
}

#[test]
fn a_declared_length_past_the_limit_is_refused_before_the_body_arrives() {
    let octets = format!("SEND\ncontent-length:{LIMIT}\n\n");
    let error = decode_all(Version::V1_2, octets.as_bytes()).expect_err("too large");
    assert_eq!(error, DecodeError::FrameTooLarge { limit: LIMIT });
}

#[test]
fn headers_without_an_end_are_bounded() {
    let mut decoder = Decoder::new(1024 * 1024);
    let mut buf = BytesMut::from(&b"SEND\n"[..]);
    buf.resize(HEADER_BYTES_MAX + 1, b'h');
    assert_eq!(decoder.decode(&mut buf), Err(DecodeError::HeadersTooLarge));
    let mut small = Decoder::new(100);
    let mut buf = BytesMut::from(&[b'h'; 101][..]);
    assert_eq!(
        small.decode(&mut buf),
        Err(DecodeError::FrameTooLarge { limit: 100 })
    );
}

#[test]
fn too_many_headers_are_refused() {
    let mut octets = b"SEND\n".to_vec();
    for _ in 0..=HEADER_COUNT_MAX {
        octets.extend_from_slice(b"a:b\n");
    }
    octets.extend_from_slice(b"\n\0");
    let mut decoder = Decoder::new(1024 * 1024);
    let mut buf = BytesMut::from(octets.as_slice());
    assert_eq!(decoder.decode(&mut buf), Err(DecodeError::TooManyHeaders));
}

#[test]
fn unknown_commands_and_malformed_headers_are_errors() {
    let error = decode_all(Version::V1_2, b"PUBLISH\n\n\0").expect_err("bad");
    assert_eq!(error, DecodeError::UnknownCommand("PUBLISH".to_owned()));
    let error = decode_all(Version::V1_2, b"SEND\nnocolon\n\n\0").expect_err("bad");
    assert!(matches!(error, DecodeError::HeaderWithoutColon(_)));
    let error = decode_all(Version::V1_2, b"SEND\na:\xff\n\n\0").expect_err("bad");
    assert_eq!(error, DecodeError::NotUtf8);
}

#[test]
fn escapes_follow_the_version() {
    let octets = b"SEND\na\\cb:x\\ny\\\\z\\r\n\n\0";
    let frame = decode_one(Version::V1_2, octets).expect("valid");
    assert_eq!(frame.header("a:b"), Some("x\ny\\z\r"));
    // 1.1 has no \r.
    let error = decode_all(Version::V1_1, octets).expect_err("bad");
    assert_eq!(error, DecodeError::BadEscape('r', "1.1"));
    // 1.0 has no escaping at all.
    let frame = decode_one(Version::V1_0, b"SEND\na:x\\ty\n\n\0").expect("valid");
    assert_eq!(frame.header("a"), Some("x\\ty"));
    let error = decode_all(Version::V1_2, b"SEND\na:x\\ty\n\n\0").expect_err("bad");
    assert_eq!(error, DecodeError::BadEscape('t', "1.2"));
}

#[test]
fn connect_frames_are_never_unescaped() {
    let frame = decode_one(Version::V1_2, b"CONNECT\npasscode:a\\tb\n\n\0").expect("valid");
    assert_eq!(frame.header("passcode"), Some("a\\tb"));
}

#[test]
fn the_first_of_repeated_headers_wins_and_values_keep_colons() {
    let frame = decode_one(Version::V1_2, b"SEND\nk:first\nk:second\nurl:a:b\n\n\0").expect("ok");
    assert_eq!(frame.header("k"), Some("first"));
    assert_eq!(frame.header("url"), Some("a:b"));
    assert_eq!(frame.headers.len(), 3);
}

#[test]
fn encoding_round_trips_in_every_version() {
    for version in [Version::V1_1, Version::V1_2] {
        let frame = Frame::new(Command::Message)
            .with("destination", "/queue/a")
            .with("odd:name", "line\nbreak\\colon:")
            .with_body(Bytes::from_static(b"a\0b"));
        let mut out = BytesMut::new();
        encode(&frame, version, &mut out);
        let decoded = decode_one(version, &out).expect("round trip");
        assert_eq!(decoded.header("odd:name"), Some("line\nbreak\\colon:"));
        assert_eq!(decoded.header("content-length"), Some("3"));
        assert_eq!(decoded.body, frame.body);
    }
}

#[test]
fn encoding_for_1_0_keeps_the_frame_well_formed() {
    let frame = Frame::new(Command::Message).with("a:b", "x\ny");
    let mut out = BytesMut::new();
    encode(&frame, Version::V1_0, &mut out);
    assert_eq!(&out[..], b"MESSAGE\na_b:x y\ncontent-length:0\n\n\0");
}

#[test]
fn a_nul_in_a_header_never_ends_the_frame() {
    for version in [Version::V1_0, Version::V1_1, Version::V1_2] {
        let frame = Frame::new(Command::Message).with("k\0", "a\0b");
        let mut out = BytesMut::new();
        encode(&frame, version, &mut out);
        let decoded = decode_one(version, &out).expect("one whole frame");
        assert_eq!(
            decoded.header("k\u{FFFD}"),
            Some("a\u{FFFD}b"),
            "{version:?}"
        );
    }
}

#[test]
fn connected_is_not_escaped_and_has_no_content_length() {
    let frame = Frame::new(Command::Connected).with("version", "1.2");
    let mut out = BytesMut::new();
    encode(&frame, Version::V1_2, &mut out);
    assert_eq!(&out[..], b"CONNECTED\nversion:1.2\n\n\0");
}

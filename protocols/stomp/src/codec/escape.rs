//! Header escaping, which differs by version (STOMP 1.1 and 1.2, "Value Encoding"):
//!
//! | octet | 1.0 | 1.1 | 1.2 |
//! |---|---|---|---|
//! | `\` | - | `\\` | `\\` |
//! | LF | - | `\n` | `\n` |
//! | `:` | - | `\c` | `\c` |
//! | CR | - | - | `\r` |
//!
//! "Undefined escape sequences such as \t MUST be treated as a fatal protocol error." `None`
//! for the version means the frame is not escaped (CONNECT, STOMP, CONNECTED).
//!
//! No version can carry a NUL in a header: it ends the frame. We write U+FFFD instead (a header
//! from another protocol may hold one), so the frame stays whole and the loss stays visible.

use bytes::{BufMut, BytesMut};

use super::{DecodeError, Version};

/// Undoes the escaping of one header name or value.
pub(super) fn decode(text: &str, version: Option<Version>) -> Result<String, DecodeError> {
    let version = match version {
        Some(v) if v != Version::V1_0 && text.contains('\\') => v,
        _ => return Ok(text.to_owned()),
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars.next().unwrap_or(' ');
        out.push(match escaped {
            '\\' => '\\',
            'n' => '\n',
            'c' => ':',
            'r' if version == Version::V1_2 => '\r',
            other => return Err(DecodeError::BadEscape(other, version.as_str())),
        });
    }
    Ok(out)
}

/// Writes a header name: escaped for 1.1 and 1.2; for 1.0 and unescaped frames, octets that
/// would end the name or the line early are replaced.
pub(super) fn encode_name(name: &str, version: Option<Version>, out: &mut BytesMut) {
    match version {
        Some(Version::V1_1 | Version::V1_2) => encode_value(name, version, out),
        _ => sanitize(name, &[':', '\n', '\r', '\0'], out),
    }
}

/// Writes a header value in `version`'s escaping.
pub(super) fn encode_value(value: &str, version: Option<Version>, out: &mut BytesMut) {
    let version = match version {
        Some(v @ (Version::V1_1 | Version::V1_2)) => v,
        _ => return sanitize(value, &['\n', '\r', '\0'], out),
    };
    if !value.contains(['\\', '\n', ':', '\r', '\0']) {
        return out.put_slice(value.as_bytes());
    }
    for c in value.chars() {
        match c {
            '\\' => out.put_slice(b"\\\\"),
            '\n' => out.put_slice(b"\\n"),
            ':' => out.put_slice(b"\\c"),
            '\r' if version == Version::V1_2 => out.put_slice(b"\\r"),
            // 1.1 cannot carry a CR in a value; a space keeps the frame well formed.
            '\r' => out.put_u8(b' '),
            '\0' => out.put_slice(REPLACEMENT),
            c => {
                let mut utf8 = [0; 4];
                out.put_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

/// U+FFFD, for a NUL that no version can carry.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Copies `text`, with each of `forbidden` replaced: `:` by `_`, line ends by a space, NUL by
/// U+FFFD.
fn sanitize(text: &str, forbidden: &[char], out: &mut BytesMut) {
    if !text.contains(forbidden) {
        return out.put_slice(text.as_bytes());
    }
    for c in text.chars() {
        let c = match c {
            ':' if forbidden.contains(&':') => '_',
            '\n' | '\r' => ' ',
            '\0' => '\u{FFFD}',
            c => c,
        };
        let mut utf8 = [0; 4];
        out.put_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
}

//! The canonical form of a request that SigV4 signs: method, path, query, headers and payload
//! hash, each spelled one way only, so that client and server hash the same bytes.

use std::fmt::Write;

use sha2::{Digest, Sha256};

use super::Request;

/// `x-amz-content-sha256` value by which a client leaves the body out of the signature.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

pub(super) fn canonical_request(
    request: &Request,
    body: &[u8],
    signed_headers: &[String],
    presigned: bool,
) -> String {
    let mut out = String::new();
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_uri(request.path));
    out.push('\n');
    out.push_str(&canonical_query(request.query, presigned));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let _ = writeln!(out, "{name}:{}", values.join(","));
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    match request.header("x-amz-content-sha256") {
        Some(UNSIGNED_PAYLOAD) => out.push_str(UNSIGNED_PAYLOAD),
        // A stated digest that is not the body's makes the signatures differ, as it should.
        _ => out.push_str(&hex(&Sha256::digest(body))),
    }
    out
}

/// The path with dot segments removed (RFC 3986 section 5.2.4), each byte outside the
/// unreserved set percent-encoded, `/` kept.
pub(super) fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut pieces = path.split('/').skip(1).peekable();
    while let Some(segment) = pieces.next() {
        let last = pieces.peek().is_none();
        match segment {
            "." if last => segments.push(""),
            "." => {}
            ".." => {
                segments.pop();
                if last {
                    segments.push("");
                }
            }
            other => segments.push(other),
        }
    }
    let mut out = String::from("/");
    let joined = segments.join("/");
    uri_encode(joined.as_bytes(), false, &mut out);
    out
}

/// Query parameters decoded and encoded again the one canonical way, sorted by name then
/// value. A presigned request's own signature is not part of what it signs.
pub(super) fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .filter(|(name, _)| !(presigned && *name == b"X-Amz-Signature"))
        .map(|(name, value)| {
            let (mut n, mut v) = (String::new(), String::new());
            uri_encode(&percent_decode(name), true, &mut n);
            uri_encode(&percent_decode(value), true, &mut v);
            (n, v)
        })
        .collect();
    pairs.sort();
    let encoded: Vec<String> = pairs.into_iter().map(|(n, v)| format!("{n}={v}")).collect();
    encoded.join("&")
}

/// Raw `name=value` pairs of a query string (a name without `=` has an empty value).
pub(super) fn query_pairs(query: &str) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.as_bytes(), value.as_bytes())
        })
}

/// RFC 3986 percent-encoding of everything but `A-Za-z0-9-_.~` (and `/` unless
/// `encode_slash`), upper-case hex, as AWS's `UriEncode` defines it.
pub(super) fn uri_encode(bytes: &[u8], encode_slash: bool, out: &mut String) {
    for &byte in bytes {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b'/' if !encode_slash => out.push('/'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

/// `%XX` escapes decoded; anything else (a stray `%`, a `+`) kept as it is.
pub(super) fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = match tail {
            [high, low, ..] if byte == b'%' => hex_value(*high).zip(hex_value(*low)),
            _ => None,
        };
        match (escaped, tail.get(2..)) {
            (Some((high, low)), Some(after)) => {
                out.push(high << 4 | low);
                rest = after;
            }
            _ => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    out
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

pub(super) use crate::hex::encode as hex;

/// A signature in hex, if it is 32 bytes of it.
pub(super) fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != out.len() * 2 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *byte = hex_value(*high)? << 4 | hex_value(*low)?;
    }
    Some(out)
}

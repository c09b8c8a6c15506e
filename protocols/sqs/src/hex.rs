//! Lower-case hex, as AWS writes digests and ids. On every message's path (MD5s, message ids),
//! so it writes into one buffer rather than formatting byte by byte.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// 16 bytes in a UUID's form, `8-4-4-4-12` hex digits.
pub fn uuid(bytes: &[u8; 16]) -> String {
    let hex = encode(bytes);
    let mut out = String::with_capacity(36);
    for (index, part) in [0..8, 8..12, 12..16, 16..20, 20..32]
        .into_iter()
        .enumerate()
    {
        if index > 0 {
            out.push('-');
        }
        out.push_str(&hex[part]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_uuid_forms() {
        assert_eq!(encode(&[0x00, 0x7f, 0xff]), "007fff");
        let bytes: [u8; 16] = core::array::from_fn(|i| u8::try_from(i).unwrap_or(0) * 17);
        assert_eq!(uuid(&bytes), "00112233-4455-6677-8899-aabbccddeeff");
    }
}

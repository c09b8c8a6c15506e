//! A depth limit for field tables and arrays (§4.2.5.5), checked before amq-protocol parses a
//! payload. Its parser recurses once per nested table or array, so a 64 KiB start-ok holding
//! thousands of tables inside each other would overflow the connection task's stack and abort
//! the whole broker; no real client nests more than a few levels.
//!
//! The walk is iterative and only looks where client methods and content headers carry
//! tables. It never rejects a payload for being malformed: it stops at the first thing it
//! cannot read and leaves the refusal (502) to the parser, which fails at that same point
//! before recursing any deeper than the walk already checked.

/// The deepest nesting of field tables and arrays accepted, the outermost table counting as
/// one. Far above what clients send, far below what a task's stack survives.
pub const FIELD_NESTING_MAX: usize = 32;

/// Whether the field tables in a method payload (class and method ids first) nest no deeper
/// than [`FIELD_NESTING_MAX`].
pub fn method_within_limit(payload: &[u8]) -> bool {
    let mut cursor = Cursor {
        octets: payload,
        at: 0,
    };
    let (Some(class_id), Some(method_id)) = (cursor.short(), cursor.short()) else {
        return true;
    };
    // What precedes the one table of each method that has one: short strings, and octets
    // (a reserved short counts as two, a bit field as one).
    let (octets, short_strings, bits) = match (class_id, method_id) {
        (10, 10) => (2, 0, 0),      // connection.start: version major and minor
        (10, 11) => (0, 0, 0),      // connection.start-ok: client-properties first
        (40, 10) => (2, 2, 1),      // exchange.declare
        (40, 30 | 40) => (2, 3, 1), // exchange.bind, exchange.unbind
        (50, 10) => (2, 1, 1),      // queue.declare
        (50, 20) => (2, 3, 1),      // queue.bind
        (50, 50) => (2, 3, 0),      // queue.unbind
        (60, 20) => (2, 2, 1),      // basic.consume
        _ => return true,
    };
    let skipped = cursor.skip(octets).is_some()
        && (0..short_strings).all(|_| cursor.short_string().is_some())
        && cursor.skip(bits).is_some();
    !skipped || table_within_limit(&mut cursor)
}

/// Whether the headers table of a content header payload nests no deeper than
/// [`FIELD_NESTING_MAX`].
pub fn header_within_limit(payload: &[u8]) -> bool {
    const CONTENT_TYPE: u16 = 1 << 15;
    const CONTENT_ENCODING: u16 = 1 << 14;
    const HEADERS: u16 = 1 << 13;
    // Class id, weight, body size.
    let mut cursor = Cursor {
        octets: payload,
        at: 12,
    };
    let Some(flags) = cursor.short() else {
        return true;
    };
    // The properties follow this one flags word even when its continuation bit (bit 0) is
    // set: amq-protocol ignores that bit, and the walk must look where the parser will.
    for flag in [CONTENT_TYPE, CONTENT_ENCODING] {
        if flags & flag != 0 && cursor.short_string().is_none() {
            return true;
        }
    }
    flags & HEADERS == 0 || table_within_limit(&mut cursor)
}

/// Whether a field table with its length prefix, as AMQPLAIN frames its response, nests no
/// deeper than [`FIELD_NESTING_MAX`].
pub fn table_octets_within_limit(octets: &[u8]) -> bool {
    table_within_limit(&mut Cursor { octets, at: 0 })
}

struct Cursor<'a> {
    octets: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn skip(&mut self, count: usize) -> Option<()> {
        let end = self.at.checked_add(count)?;
        (end <= self.octets.len()).then(|| self.at = end)
    }

    fn octet(&mut self) -> Option<u8> {
        let octet = *self.octets.get(self.at)?;
        self.at += 1;
        Some(octet)
    }

    fn short(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.octet()?, self.octet()?]))
    }

    fn long(&mut self) -> Option<usize> {
        let octets = [self.octet()?, self.octet()?, self.octet()?, self.octet()?];
        usize::try_from(u32::from_be_bytes(octets)).ok()
    }

    fn short_string(&mut self) -> Option<()> {
        let size = self.octet()?;
        self.skip(size.into())
    }
}

/// A table or array being walked, and where it ends.
struct Open {
    end: usize,
    table: bool,
}

/// Walks the table at the cursor with an explicit stack instead of recursion.
fn table_within_limit(cursor: &mut Cursor<'_>) -> bool {
    let Some(size) = cursor.long() else {
        return true;
    };
    let mut open = vec![Open {
        end: cursor.at.saturating_add(size),
        table: true,
    }];
    while let Some(innermost) = open.last() {
        if cursor.at >= innermost.end {
            open.pop();
            continue;
        }
        // A table's field has a name before its type; an array's value has none.
        if innermost.table && cursor.short_string().is_none() {
            return true;
        }
        let Some(kind) = cursor.octet() else {
            return true;
        };
        let fixed = match kind {
            b'F' | b'A' => {
                let Some(size) = cursor.long() else {
                    return true;
                };
                if open.len() >= FIELD_NESTING_MAX {
                    return false;
                }
                let end = cursor.at.saturating_add(size);
                open.push(Open {
                    end,
                    table: kind == b'F',
                });
                continue;
            }
            b'S' | b'x' => match cursor.long() {
                Some(size) => size,
                None => return true,
            },
            b'V' => 0,
            b't' | b'b' | b'B' => 1,
            b's' | b'U' | b'u' => 2,
            b'I' | b'i' | b'f' => 4,
            b'D' => 5,
            b'L' | b'l' | b'd' | b'T' => 8,
            _ => return true,
        };
        if cursor.skip(fixed).is_none() {
            return true;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table nesting `depth` tables (the outermost included), each holding the next as "a".
    fn nested(depth: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for level in (1..depth).rev() {
            out.extend_from_slice(&(7 * level).to_be_bytes());
            out.extend_from_slice(&[1, b'a', b'F']);
        }
        out.extend_from_slice(&0u32.to_be_bytes());
        out
    }

    #[test]
    fn tables_up_to_the_limit_pass_and_one_deeper_fails() {
        let limit = FIELD_NESTING_MAX as u32;
        assert!(table_octets_within_limit(&nested(limit)));
        assert!(!table_octets_within_limit(&nested(limit + 1)));
    }

    #[test]
    fn arrays_count_as_levels_too() {
        // A table holding "a" => an array of arrays, 40 deep.
        let mut value: Vec<u8> = Vec::new();
        for _ in 0..40 {
            let mut wrapped = vec![b'A'];
            wrapped.extend_from_slice(&(value.len() as u32).to_be_bytes());
            wrapped.extend_from_slice(&value);
            value = wrapped;
        }
        let mut table = vec![1, b'a'];
        table.extend_from_slice(&value);
        let mut octets = (table.len() as u32).to_be_bytes().to_vec();
        octets.extend_from_slice(&table);
        assert!(!table_octets_within_limit(&octets));
    }

    #[test]
    fn flat_tables_of_every_type_pass() {
        let mut fields = Vec::new();
        for (kind, value) in [
            (b't', vec![1]),
            (b's', vec![0, 1]),
            (b'I', vec![0; 4]),
            (b'D', vec![0; 5]),
            (b'l', vec![0; 8]),
            (b'S', vec![0, 0, 0, 2, b'h', b'i']),
            (b'V', vec![]),
        ] {
            fields.extend_from_slice(&[1, b'k', kind]);
            fields.extend_from_slice(&value);
        }
        let mut octets = (fields.len() as u32).to_be_bytes().to_vec();
        octets.extend_from_slice(&fields);
        assert!(table_octets_within_limit(&octets));
    }

    #[test]
    fn a_deep_queue_declare_fails_and_a_plain_one_passes() {
        let mut payload = vec![0, 50, 0, 10, 0, 0, 1, b'q', 0];
        payload.extend_from_slice(&nested(100));
        assert!(!method_within_limit(&payload));
        let mut payload = vec![0, 50, 0, 10, 0, 0, 1, b'q', 0];
        payload.extend_from_slice(&nested(3));
        assert!(method_within_limit(&payload));
    }

    #[test]
    fn a_deep_headers_property_fails() {
        // Class 60, weight 0, body size 0, flags: content-type and headers.
        let mut payload = vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xA0, 0];
        payload.extend_from_slice(&[4, b't', b'e', b'x', b't']);
        payload.extend_from_slice(&nested(100));
        assert!(!header_within_limit(&payload));
        // The continuation bit changes nothing: the parser reads the same offsets.
        let mut payload = vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 1];
        payload.extend_from_slice(&nested(100));
        assert!(!header_within_limit(&payload));
    }
}

//! The data representations of spec section 1.5, read from and written to octets.
//!
//! [`Reader`] reads a packet's variable header and payload from the packet's own frozen
//! octets, so that binary fields and the PUBLISH payload are zero-copy slices of the read
//! buffer. Every read checks the remaining length first: a field that would run past the end
//! of the packet is [`DecodeError::Truncated`], never a panic.
//!
//! [`Sink`] is what the encoder writes to. It has two implementations that see the same
//! calls: [`Measure`], which only adds up lengths and records the first value the wire cannot
//! carry, and [`Writer`], which appends to the output. Encoding runs the packet body through
//! `Measure` first, so the remaining length is known before the fixed header is written and a
//! packet that cannot be encoded is refused before a single octet is appended.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{DecodeError, EncodeError};

/// The largest value of a Variable Byte Integer (spec 1.5.5): four octets of seven bits.
pub const VAR_INT_MAX: u32 = 268_435_455;

/// How many octets a Variable Byte Integer of `value` takes (spec 1.5.5, Table 1-1).
pub fn var_int_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// The outcome of reading a Variable Byte Integer from the front of some octets.
pub enum VarInt {
    /// The value and how many octets it took.
    Complete(u32, usize),
    /// The octets end inside the integer.
    Incomplete,
    /// A fifth octet would be needed, or the encoding is longer than the value needs.
    Invalid,
}

/// Reads a Variable Byte Integer, checking the two rules of spec 1.5.5: at most four octets
/// and, [MQTT-1.5.5-1], "The encoded value MUST use the minimum number of bytes necessary to
/// represent the value."
pub fn read_var_int(octets: &[u8]) -> VarInt {
    let mut value: u32 = 0;
    for (index, &octet) in octets.iter().take(4).enumerate() {
        value |= u32::from(octet & 0x7F) << (7 * index);
        if octet & 0x80 == 0 {
            // A last octet of zero after others means a shorter encoding existed.
            if index > 0 && octet == 0 {
                return VarInt::Invalid;
            }
            return VarInt::Complete(value, index + 1);
        }
    }
    if octets.len() >= 4 {
        VarInt::Invalid
    } else {
        VarInt::Incomplete
    }
}

/// Reads the fields of one packet, front to back.
pub struct Reader {
    octets: Bytes,
    /// Whether to cite the MQTT 5 statement ids in UTF-8 errors rather than 3.1.1's.
    v5: bool,
}

impl Reader {
    /// A reader over one packet's variable header and payload.
    pub fn new(octets: Bytes, v5: bool) -> Reader {
        Reader { octets, v5 }
    }

    /// Whether every octet has been read.
    pub fn is_empty(&self) -> bool {
        self.octets.is_empty()
    }

    /// Whether the spec of the packet being read is MQTT 5.
    pub fn is_v5(&self) -> bool {
        self.v5
    }

    /// Switches to MQTT 5's rules, once a CONNECT's protocol level says so.
    pub fn set_v5(&mut self, v5: bool) {
        self.v5 = v5;
    }

    /// Fails unless every octet has been read; `error` says which packet has octets too many.
    pub fn finish(&self, error: &'static str) -> Result<(), DecodeError> {
        if self.octets.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(error))
        }
    }

    /// The next `len` octets as a shared slice.
    pub fn take(&mut self, len: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        if len > self.octets.len() {
            return Err(DecodeError::Truncated { field });
        }
        Ok(self.octets.split_to(len))
    }

    /// Every octet left, as a shared slice (the PUBLISH payload).
    pub fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.octets)
    }

    /// A reader over the next `len` octets, which this reader skips (a property block).
    pub fn sub_reader(&mut self, len: usize, field: &'static str) -> Result<Reader, DecodeError> {
        Ok(Reader::new(self.take(len, field)?, self.v5))
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        if self.octets.is_empty() {
            return Err(DecodeError::Truncated { field });
        }
        Ok(self.octets.get_u8())
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        if self.octets.len() < 2 {
            return Err(DecodeError::Truncated { field });
        }
        Ok(self.octets.get_u16())
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        if self.octets.len() < 4 {
            return Err(DecodeError::Truncated { field });
        }
        Ok(self.octets.get_u32())
    }

    /// A Variable Byte Integer inside a packet (property lengths, identifiers, subscription
    /// identifiers); the remaining length is read by the fixed-header code instead.
    pub fn var_int(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        match read_var_int(&self.octets) {
            VarInt::Complete(value, len) => {
                self.octets.advance(len);
                Ok(value)
            }
            VarInt::Incomplete => Err(DecodeError::Truncated { field }),
            VarInt::Invalid => Err(DecodeError::Malformed(
                "[MQTT-1.5.5-1] variable byte integer is longer than 4 octets or not minimal",
            )),
        }
    }

    /// Binary Data (spec 1.5.6): a two-octet length and that many octets.
    pub fn binary(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u16(field)?;
        self.take(usize::from(len), field)
    }

    /// A UTF-8 Encoded String (spec 1.5.4 of MQTT 5, 1.5.3 of 3.1.1), checked for the two
    /// rules every receiver must enforce.
    pub fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let octets = self.binary(field)?;
        // [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1]) "The character data in a UTF-8 Encoded
        // String MUST be well-formed UTF-8 as defined by the Unicode specification and
        // restated in RFC 3629. In particular, the character data MUST NOT include encodings
        // of code points between U+D800 and U+DFFF." Rust's UTF-8 check refuses those too.
        let Ok(text) = std::str::from_utf8(&octets) else {
            return Err(DecodeError::Malformed(if self.v5 {
                "[MQTT-1.5.4-1] string is not well-formed UTF-8"
            } else {
                "[MQTT-1.5.3-1] string is not well-formed UTF-8"
            }));
        };
        // [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-2]) "A UTF-8 Encoded String MUST NOT include an
        // encoding of the null character U+0000."
        if text.contains('\0') {
            return Err(DecodeError::Malformed(if self.v5 {
                "[MQTT-1.5.4-2] string contains U+0000"
            } else {
                "[MQTT-1.5.3-2] string contains U+0000"
            }));
        }
        Ok(text.to_owned())
    }
}

/// The destination of an encoded packet body: see the module docs.
///
/// A trait with two private implementations rather than two copies of every packet's layout,
/// so that the measured length and the written octets cannot disagree.
pub trait Sink {
    fn put_u8(&mut self, value: u8);
    fn put_u16(&mut self, value: u16);
    fn put_u32(&mut self, value: u32);
    /// A Variable Byte Integer; a value above [`VAR_INT_MAX`] is refused by [`Measure`].
    fn put_var_int(&mut self, value: u32);
    /// Octets with no length prefix (a PUBLISH payload).
    fn put_raw(&mut self, value: &[u8]);
    /// Records that the packet cannot be encoded; only [`Measure`] keeps it.
    fn reject(&mut self, error: EncodeError);

    /// Binary Data: a two-octet length, then the octets.
    fn put_binary(&mut self, value: &[u8]) {
        match u16::try_from(value.len()) {
            Ok(len) => {
                self.put_u16(len);
                self.put_raw(value);
            }
            Err(_) => self.reject(EncodeError::FieldTooLong { len: value.len() }),
        }
    }

    /// A UTF-8 Encoded String.
    fn put_string(&mut self, value: &str) {
        self.put_binary(value.as_bytes());
    }
}

/// Adds up the length of a packet body and keeps the first reason it cannot be encoded.
#[derive(Debug, Default)]
pub struct Measure {
    pub len: usize,
    pub error: Option<EncodeError>,
}

impl Sink for Measure {
    fn put_u8(&mut self, _: u8) {
        self.len += 1;
    }

    fn put_u16(&mut self, _: u16) {
        self.len += 2;
    }

    fn put_u32(&mut self, _: u32) {
        self.len += 4;
    }

    fn put_var_int(&mut self, value: u32) {
        if value > VAR_INT_MAX {
            self.reject(EncodeError::Invalid(
                "variable byte integer above 268,435,455 (spec 1.5.5)",
            ));
        }
        self.len += var_int_len(value);
    }

    fn put_raw(&mut self, value: &[u8]) {
        self.len += value.len();
    }

    fn reject(&mut self, error: EncodeError) {
        self.error.get_or_insert(error);
    }
}

/// Appends a packet body to the output. Runs only after [`Measure`] accepted the same body.
pub struct Writer<'a> {
    pub out: &'a mut BytesMut,
}

impl Sink for Writer<'_> {
    fn put_u8(&mut self, value: u8) {
        self.out.put_u8(value);
    }

    fn put_u16(&mut self, value: u16) {
        self.out.put_u16(value);
    }

    fn put_u32(&mut self, value: u32) {
        self.out.put_u32(value);
    }

    fn put_var_int(&mut self, value: u32) {
        write_var_int(value, self.out);
    }

    fn put_raw(&mut self, value: &[u8]) {
        self.out.put_slice(value);
    }

    fn reject(&mut self, _: EncodeError) {
        // Measure saw the same call and refused the packet before writing started.
    }
}

/// Appends a Variable Byte Integer (spec 1.5.5), least significant group first.
pub fn write_var_int(mut value: u32, out: &mut BytesMut) {
    loop {
        let mut octet = (value & 0x7F) as u8;
        value >>= 7;
        if value > 0 {
            octet |= 0x80;
        }
        out.put_u8(octet);
        if value == 0 {
            return;
        }
    }
}

//! The compact binary form of an item, for the node's store, its
//! write-ahead log and its transfers between nodes.
//!
//! ```text
//! item    = version:u8 entries
//! entries = count:varint (name value)*     names strictly ascending
//! name    = len:varint utf8-bytes
//! value   = S len:varint utf8 | N number | B len:varint bytes
//!         | FALSE | TRUE | NULL
//!         | L count:varint value* | M entries
//!         | SS count:varint (len:varint utf8)*   members strictly ascending
//!         | NS count:varint number*              members strictly ascending
//!         | BS count:varint (len:varint bytes)*  members strictly ascending
//! number  = head:varint coefficient:varint
//!           head = zigzag(exponent) << 1 | negative
//! ```
//!
//! Varints are LEB128 (7 bits a byte, least significant first). A number
//! is its parts ([`Number::parts`]): `1` takes 3 bytes with its tag,
//! `123.45` takes 4.
//!
//! Every value has exactly one encoding: names and set members in order
//! without repeats, shortest varints, numbers in canonical parts. The
//! decoder accepts nothing else, so whatever it accepts re-encodes to the
//! same bytes, and corruption that still parses is caught at least as often
//! as it breaks that form.
//!
//! The decoder never panics and never allocates more than the input
//! justifies: a length or a count is refused unless the remaining bytes
//! could hold it (each element needs at least one byte), so a collection's
//! allocation is at most one `Value` per remaining input byte; nesting
//! deeper than [`NESTING_DEPTH_MAX`] is refused before it recurses.
//!
//! The encoder walks the item with a stack on the heap rather than by
//! recursion, so no item, however deep, can exhaust the thread's stack.

use crate::limits::NESTING_DEPTH_MAX;
use crate::number::Number;
use crate::value::{Item, Map, Value};
use std::collections::btree_map;
use std::fmt;

/// The version of the format this module writes; the first byte.
pub const FORMAT_VERSION: u8 = 1;

const TAG_S: u8 = 0x01;
const TAG_N: u8 = 0x02;
const TAG_B: u8 = 0x03;
const TAG_FALSE: u8 = 0x04;
const TAG_TRUE: u8 = 0x05;
const TAG_NULL: u8 = 0x06;
const TAG_L: u8 = 0x07;
const TAG_M: u8 = 0x08;
const TAG_SS: u8 = 0x09;
const TAG_NS: u8 = 0x0a;
const TAG_BS: u8 = 0x0b;

/// Bits of a byte of a varint that carry the value.
const VARINT_PAYLOAD_BITS: u32 = 7;
const VARINT_CONTINUE: u8 = 0x80;
const VARINT_PAYLOAD_MASK: u8 = 0x7f;

/// The fewest bytes one encoded element takes: a list element its tag, a
/// map entry a name length and a tag, a set member its length (strings,
/// binaries) or its two varints (numbers).
const LIST_ELEMENT_BYTES_MIN: usize = 1;
const MAP_ENTRY_BYTES_MIN: usize = 2;
const BYTES_MEMBER_BYTES_MIN: usize = 1;
const NUMBER_MEMBER_BYTES_MIN: usize = 2;

/// The largest exponent magnitude a number's parts may carry (the range is
/// 1E-130 to 9.9..9E+125 with at most 38 digits, so -167 to 125); anything
/// past it is refused before it is checked as a number.
const EXPONENT_ABS_MAX: u32 = 200;

/// Why bytes are not an encoded item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The bytes end inside a value.
    Truncated,
    /// A format version this module does not read.
    UnknownVersion(u8),
    /// A value tag this version does not define.
    UnknownTag(u8),
    /// A varint longer than its shortest form or than its type.
    BadVarint,
    /// A length or a count larger than the remaining bytes could hold.
    LengthPastEnd,
    /// A name or a string that is not UTF-8.
    InvalidUtf8,
    /// Number parts that are not a canonical DynamoDB number.
    BadNumber,
    /// Names or set members out of order or repeated.
    NotCanonical,
    /// A set without members.
    EmptySet,
    /// Lists and maps nested deeper than DynamoDB allows.
    TooDeep,
    /// Bytes after the item.
    TrailingBytes,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Truncated => f.write_str("the encoded item ends inside a value"),
            CodecError::UnknownVersion(v) => write!(f, "unknown encoded item format version {v}"),
            CodecError::UnknownTag(t) => write!(f, "unknown value tag {t:#04x}"),
            CodecError::BadVarint => f.write_str("a varint is overlong or overflows"),
            CodecError::LengthPastEnd => f.write_str("a length or count exceeds the remaining bytes"),
            CodecError::InvalidUtf8 => f.write_str("a name or string is not UTF-8"),
            CodecError::BadNumber => f.write_str("number parts are not a canonical DynamoDB number"),
            CodecError::NotCanonical => f.write_str("names or set members are out of order or repeated"),
            CodecError::EmptySet => f.write_str("a set has no members"),
            CodecError::TooDeep => f.write_str("lists and maps nest deeper than allowed"),
            CodecError::TrailingBytes => f.write_str("bytes follow the encoded item"),
        }
    }
}

impl std::error::Error for CodecError {}

// ---------------------------------------------------------------- encoding

/// The item's bytes. An item nested deeper than [`NESTING_DEPTH_MAX`]
/// (which no validated item is: see [`crate::size::check_item`]) encodes,
/// but its bytes do not decode.
pub fn encode(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(item, &mut out);
    out
}

/// Appends the item's bytes to `out` (a log record or a transfer batch).
pub fn encode_into(item: &Item, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    write_document(item, out);
}

/// A list or a map being written: the elements still to write.
enum Frame<'a> {
    List(std::slice::Iter<'a, Value>),
    Map(btree_map::Iter<'a, String, Value>),
}

/// Writes a map's entries and everything inside them, depth first.
fn write_document(entries: &Map, out: &mut Vec<u8>) {
    write_len(entries.len(), out);
    let mut stack = vec![Frame::Map(entries.iter())];
    while let Some(frame) = stack.last_mut() {
        let next = match frame {
            Frame::List(values) => values.next(),
            Frame::Map(entries) => entries.next().map(|(name, value)| {
                write_bytes(name.as_bytes(), out);
                value
            }),
        };
        match next {
            None => {
                stack.pop();
            }
            Some(value) => {
                if let Some(frame) = write_value_head(value, out) {
                    stack.push(frame);
                }
            }
        }
    }
}

/// Writes a scalar or a set whole, or a list's or a map's tag and count and
/// returns the frame of its elements.
fn write_value_head<'a>(value: &'a Value, out: &mut Vec<u8>) -> Option<Frame<'a>> {
    match value {
        Value::S(text) => write_tagged_bytes(TAG_S, text.as_bytes(), out),
        Value::N(number) => {
            out.push(TAG_N);
            write_number(number, out);
        }
        Value::B(bytes) => write_tagged_bytes(TAG_B, bytes, out),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Null => out.push(TAG_NULL),
        Value::L(values) => {
            out.push(TAG_L);
            write_len(values.len(), out);
            return Some(Frame::List(values.iter()));
        }
        Value::M(entries) => {
            out.push(TAG_M);
            write_len(entries.len(), out);
            return Some(Frame::Map(entries.iter()));
        }
        Value::Ss(members) => write_set(TAG_SS, members, |m, out| write_bytes(m.as_bytes(), out), out),
        Value::Ns(members) => write_set(TAG_NS, members, write_number, out),
        Value::Bs(members) => write_set(TAG_BS, members, |m, out| write_bytes(m, out), out),
    }
    None
}

fn write_tagged_bytes(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    write_bytes(bytes, out);
}

/// Writes a set's members in order without repeats, even if a caller built
/// the set by hand and broke that invariant: the decoder accepts nothing
/// else.
fn write_set<T: Ord>(tag: u8, members: &[T], write_member: impl Fn(&T, &mut Vec<u8>), out: &mut Vec<u8>) {
    let mut ordered: Vec<&T> = members.iter().collect();
    if !members.is_sorted_by(|a, b| a < b) {
        ordered.sort_unstable();
        ordered.dedup();
    }
    out.push(tag);
    write_len(ordered.len(), out);
    for member in ordered {
        write_member(member, out);
    }
}

fn write_number(number: &Number, out: &mut Vec<u8>) {
    let (negative, coefficient, exponent) = number.parts();
    let zigzag = ((exponent << 1) ^ (exponent >> 31)) as u32;
    write_varint(u128::from((u64::from(zigzag) << 1) | u64::from(negative)), out);
    write_varint(coefficient, out);
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    write_len(bytes.len(), out);
    out.extend_from_slice(bytes);
}

fn write_len(len: usize, out: &mut Vec<u8>) {
    write_varint(len as u128, out);
}

fn write_varint(mut value: u128, out: &mut Vec<u8>) {
    while value >= u128::from(VARINT_CONTINUE) {
        out.push((value as u8 & VARINT_PAYLOAD_MASK) | VARINT_CONTINUE);
        value >>= VARINT_PAYLOAD_BITS;
    }
    out.push(value as u8);
}

// ---------------------------------------------------------------- decoding

/// The item these bytes encode, or why they encode none.
pub fn decode(bytes: &[u8]) -> Result<Item, CodecError> {
    let mut reader = Reader { rest: bytes };
    let version = reader.byte()?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let item = read_entries(&mut reader, 1)?;
    if !reader.rest.is_empty() {
        return Err(CodecError::TrailingBytes);
    }
    Ok(item)
}

/// The bytes not yet read.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CodecError> {
        let (&first, rest) = self.rest.split_first().ok_or(CodecError::Truncated)?;
        self.rest = rest;
        Ok(first)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        if len > self.rest.len() {
            return Err(CodecError::LengthPastEnd);
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    /// A LEB128 varint of at most `bits` bits, in its shortest form.
    fn varint(&mut self, bits: u32) -> Result<u128, CodecError> {
        let mut value: u128 = 0;
        for index in 0..bits.div_ceil(VARINT_PAYLOAD_BITS) {
            let byte = self.byte()?;
            let payload = byte & VARINT_PAYLOAD_MASK;
            let shift = index * VARINT_PAYLOAD_BITS;
            let room_bits = bits - shift;
            if room_bits < VARINT_PAYLOAD_BITS && u32::from(payload) >> room_bits != 0 {
                return Err(CodecError::BadVarint);
            }
            value |= u128::from(payload) << shift;
            if byte & VARINT_CONTINUE == 0 {
                // A last byte of zero would be a longer form of a shorter varint.
                if byte == 0 && index > 0 {
                    return Err(CodecError::BadVarint);
                }
                return Ok(value);
            }
        }
        Err(CodecError::BadVarint)
    }

    fn varint_u64(&mut self) -> Result<u64, CodecError> {
        u64::try_from(self.varint(u64::BITS)?).map_err(|_| CodecError::BadVarint)
    }

    /// A length or a count of elements of at least `element_bytes_min`
    /// bytes each, refused unless the remaining bytes could hold them.
    fn count(&mut self, element_bytes_min: usize) -> Result<usize, CodecError> {
        let count = self.varint_u64()?;
        let capacity = self.rest.len() / element_bytes_min;
        match usize::try_from(count) {
            Ok(count) if count <= capacity => Ok(count),
            _ => Err(CodecError::LengthPastEnd),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.count(1)?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CodecError::InvalidUtf8)
    }

    fn number(&mut self) -> Result<Number, CodecError> {
        let head = self.varint_u64()?;
        let coefficient = self.varint(u128::BITS)?;
        let negative = head & 1 == 1;
        let zigzag = head >> 1;
        let magnitude = zigzag >> 1;
        if magnitude > u64::from(EXPONENT_ABS_MAX) {
            return Err(CodecError::BadNumber);
        }
        // Bounded above, so the conversion and the negation cannot overflow.
        let magnitude = magnitude as i32;
        let exponent = if zigzag & 1 == 1 { -magnitude - 1 } else { magnitude };
        let number = Number::from_parts(negative, coefficient, exponent).map_err(|_| CodecError::BadNumber)?;
        if number.parts() != (negative, coefficient, exponent) {
            return Err(CodecError::BadNumber);
        }
        Ok(number)
    }
}

/// A map's entries whose values sit at `depth`.
fn read_entries(reader: &mut Reader<'_>, depth: usize) -> Result<Map, CodecError> {
    let count = reader.count(MAP_ENTRY_BYTES_MIN)?;
    let mut entries = Map::new();
    for _ in 0..count {
        let name = reader.string()?;
        if entries.last_key_value().is_some_and(|(last, _)| name <= *last) {
            return Err(CodecError::NotCanonical);
        }
        let value = read_value(reader, depth)?;
        entries.insert(name, value);
    }
    Ok(entries)
}

/// A value at `depth` (1 for an attribute's value).
fn read_value(reader: &mut Reader<'_>, depth: usize) -> Result<Value, CodecError> {
    if depth > NESTING_DEPTH_MAX {
        return Err(CodecError::TooDeep);
    }
    let tag = reader.byte()?;
    Ok(match tag {
        TAG_S => Value::S(reader.string()?),
        TAG_N => Value::N(reader.number()?),
        TAG_B => Value::B(reader.bytes()?.to_vec()),
        TAG_FALSE => Value::Bool(false),
        TAG_TRUE => Value::Bool(true),
        TAG_NULL => Value::Null,
        TAG_L => Value::L(read_list(reader, depth + 1)?),
        TAG_M => Value::M(read_entries(reader, depth + 1)?),
        TAG_SS => Value::Ss(read_set(reader, BYTES_MEMBER_BYTES_MIN, Reader::string)?),
        TAG_NS => Value::Ns(read_set(reader, NUMBER_MEMBER_BYTES_MIN, Reader::number)?),
        TAG_BS => Value::Bs(read_set(reader, BYTES_MEMBER_BYTES_MIN, |r| {
            r.bytes().map(<[u8]>::to_vec)
        })?),
        other => return Err(CodecError::UnknownTag(other)),
    })
}

fn read_list(reader: &mut Reader<'_>, depth: usize) -> Result<Vec<Value>, CodecError> {
    let count = reader.count(LIST_ELEMENT_BYTES_MIN)?;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        values.push(read_value(reader, depth)?);
    }
    Ok(values)
}

/// A set's members, which must be strictly ascending and at least one.
fn read_set<'a, T: Ord>(
    reader: &mut Reader<'a>,
    member_bytes_min: usize,
    read_member: impl Fn(&mut Reader<'a>) -> Result<T, CodecError>,
) -> Result<Vec<T>, CodecError> {
    let count = reader.count(member_bytes_min)?;
    if count == 0 {
        return Err(CodecError::EmptySet);
    }
    let mut members: Vec<T> = Vec::with_capacity(count);
    for _ in 0..count {
        let member = read_member(reader)?;
        if members.last().is_some_and(|last| member <= *last) {
            return Err(CodecError::NotCanonical);
        }
        members.push(member);
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::number as n;

    fn map(attributes: Vec<(&str, Value)>) -> Map {
        attributes.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Items covering every type, empty and non-ASCII text, extreme numbers
    /// and nesting.
    fn samples() -> Vec<Item> {
        let nested = (1..NESTING_DEPTH_MAX).fold(Value::Null, |inner, level| {
            if level % 2 == 0 {
                Value::L(vec![inner])
            } else {
                Value::M(map(vec![("x", inner)]))
            }
        });
        vec![
            Item::new(),
            map(vec![("pk", Value::S("user#1".into())), ("n", Value::N(n("1")))]),
            map(vec![
                ("s", Value::S("héllo wörld".into())),
                ("empty", Value::S(String::new())),
                ("b", Value::B(vec![0, 1, 2, 255])),
                ("no", Value::Bool(false)),
                ("yes", Value::Bool(true)),
                ("nil", Value::Null),
                ("zero", Value::N(Number::ZERO)),
                ("neg", Value::N(n("-123.45"))),
                ("tiny", Value::N(n("1E-130"))),
                ("huge", Value::N(n(&format!("-9.{}E+125", "9".repeat(37))))),
            ]),
            map(vec![
                ("ss", Value::string_set(vec!["b".into(), "a".into(), String::new()])),
                ("ns", Value::number_set(vec![n("10"), n("-1"), n("0.5")])),
                ("bs", Value::binary_set(vec![vec![2], vec![], vec![1, 0]])),
                ("l", Value::L(vec![Value::Null, Value::L(vec![]), Value::M(Map::new())])),
                (
                    "m",
                    Value::M(map(vec![("inner", Value::N(n("7"))), ("", Value::Bool(true))])),
                ),
                ("deep", nested),
            ]),
        ]
    }

    #[test]
    fn items_round_trip() {
        for item in samples() {
            let bytes = encode(&item);
            assert_eq!(bytes[0], FORMAT_VERSION);
            assert_eq!(decode(&bytes), Ok(item));
        }
    }

    #[test]
    fn encode_into_appends() {
        let item = map(vec![("a", Value::Null)]);
        let mut out = vec![0xaa];
        encode_into(&item, &mut out);
        assert_eq!(out, [0xaa, FORMAT_VERSION, 1, 1, b'a', TAG_NULL]);
    }

    #[test]
    fn numbers_take_their_parts() {
        let one = encode(&map(vec![("a", Value::N(n("1")))]));
        assert_eq!(one, [FORMAT_VERSION, 1, 1, b'a', TAG_N, 0, 1]);
        // 123.45 = 12345 x 10^-2: head zigzag(-2) = 3, shifted = 6, positive.
        let decimal = encode(&map(vec![("a", Value::N(n("123.45")))]));
        assert_eq!(decimal, [FORMAT_VERSION, 1, 1, b'a', TAG_N, 6, 0xb9, 0x60]);
        let negative = encode(&map(vec![("a", Value::N(n("-5")))]));
        assert_eq!(negative, [FORMAT_VERSION, 1, 1, b'a', TAG_N, 1, 5]);
    }

    #[test]
    fn the_form_is_far_smaller_than_json() {
        for item in samples().into_iter().skip(1) {
            let json = crate::json::item_to_json(&item).to_string();
            let bytes = encode(&item);
            // Short names and strings dominate a small item; the type
            // descriptors, quotes and decimal numbers weigh on larger ones.
            let times_smaller_min = if item.len() < 5 { 1.6 } else { 3.0 };
            assert!(
                bytes.len() as f64 * times_smaller_min < json.len() as f64,
                "{} vs {}",
                bytes.len(),
                json.len()
            );
        }
    }

    #[test]
    fn hand_built_sets_are_written_in_order() {
        let unordered = map(vec![("s", Value::Ss(vec!["b".into(), "a".into(), "b".into()]))]);
        let decoded = decode(&encode(&unordered)).unwrap();
        assert_eq!(
            decoded,
            map(vec![("s", Value::string_set(vec!["a".into(), "b".into()]))])
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        for item in samples() {
            let bytes = encode(&item);
            for len in 0..bytes.len() {
                assert!(decode(&bytes[..len]).is_err(), "{item:?} cut at {len}");
            }
        }
    }

    /// Whatever the decoder accepts is canonical: it re-encodes to the same
    /// bytes.
    fn assert_canonical_if_accepted(bytes: &[u8]) {
        if let Ok(item) = decode(bytes) {
            assert_eq!(encode(&item), bytes, "{item:?}");
        }
    }

    #[test]
    fn every_single_bit_flip_is_survived() {
        for item in samples() {
            let bytes = encode(&item);
            for bit in 0..bytes.len() * 8 {
                let mut flipped = bytes.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                assert_ne!(decode(&flipped).as_ref(), Ok(&item), "bit {bit}");
                assert_canonical_if_accepted(&flipped);
            }
        }
    }

    #[test]
    fn random_bytes_are_survived() {
        let mut state: u64 = 0x1234_5678_9abc_def0;
        for round in 0..20_000 {
            let len = round % 64;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Mostly small bytes, so tags and short lengths are common.
                    if state.is_multiple_of(4) {
                        (state >> 8) as u8
                    } else {
                        (state >> 8) as u8 % 12
                    }
                })
                .collect();
            let mut framed = vec![FORMAT_VERSION];
            framed.extend_from_slice(&bytes);
            assert_canonical_if_accepted(&framed);
        }
    }

    #[test]
    fn huge_lengths_are_refused_before_allocating() {
        let mut huge_count = vec![FORMAT_VERSION];
        write_varint(u128::from(u64::MAX), &mut huge_count);
        assert_eq!(decode(&huge_count), Err(CodecError::LengthPastEnd));

        let mut huge_string = vec![FORMAT_VERSION, 1, 1, b'a', TAG_S];
        write_varint(u128::from(u64::MAX - 1), &mut huge_string);
        huge_string.extend_from_slice(b"short");
        assert_eq!(decode(&huge_string), Err(CodecError::LengthPastEnd));

        let mut huge_list = vec![FORMAT_VERSION, 1, 1, b'a', TAG_L];
        write_varint(1 << 40, &mut huge_list);
        assert_eq!(decode(&huge_list), Err(CodecError::LengthPastEnd));

        let too_wide = [
            FORMAT_VERSION,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0x7f,
        ];
        assert_eq!(decode(&too_wide), Err(CodecError::BadVarint));
    }

    #[test]
    fn depth_bombs_are_refused() {
        let mut bomb = vec![FORMAT_VERSION, 1, 1, b'a'];
        for _ in 0..100_000 {
            bomb.extend_from_slice(&[TAG_L, 1]);
        }
        bomb.push(TAG_NULL);
        assert_eq!(decode(&bomb), Err(CodecError::TooDeep));
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        let cases: [(&[u8], CodecError); 9] = [
            (&[2, 0], CodecError::UnknownVersion(2)),
            (&[FORMAT_VERSION, 1, 1, b'a', 0x0c], CodecError::UnknownTag(0x0c)),
            // Names out of order, and repeated.
            (
                &[FORMAT_VERSION, 2, 1, b'b', TAG_NULL, 1, b'a', TAG_NULL],
                CodecError::NotCanonical,
            ),
            (
                &[FORMAT_VERSION, 2, 1, b'a', TAG_NULL, 1, b'a', TAG_NULL],
                CodecError::NotCanonical,
            ),
            // A set out of order, and an empty one.
            (
                &[FORMAT_VERSION, 1, 1, b'a', TAG_SS, 2, 1, b'b', 1, b'a'],
                CodecError::NotCanonical,
            ),
            (&[FORMAT_VERSION, 1, 1, b'a', TAG_BS, 0], CodecError::EmptySet),
            // An overlong varint (1 written in two bytes).
            (&[FORMAT_VERSION, 0x81, 0x00, 1, b'a', TAG_NULL], CodecError::BadVarint),
            // 10 with a trailing zero in its coefficient, and a negative zero.
            (&[FORMAT_VERSION, 1, 1, b'a', TAG_N, 0, 10], CodecError::BadNumber),
            (&[FORMAT_VERSION, 1, 1, b'a', TAG_N, 1, 0], CodecError::BadNumber),
        ];
        for (bytes, error) in cases {
            assert_eq!(decode(bytes), Err(error), "{bytes:?}");
        }
        assert_eq!(
            decode(&[FORMAT_VERSION, 1, 1, 0xff, TAG_NULL]),
            Err(CodecError::InvalidUtf8)
        );
        assert_eq!(decode(&[FORMAT_VERSION, 0, 0]), Err(CodecError::TrailingBytes));
    }
}

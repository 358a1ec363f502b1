//! A table's primary key: its schema, the extraction and validation of an
//! item's key or of a request's `Key` map against it (with DynamoDB's
//! messages), and the order-preserving bytes of a sort key value.
//!
//! Key values are scalars: a string, a number or a binary, never empty,
//! at most 2,048 bytes in the partition key and 1,024 in the sort key
//! (Developer Guide, "Constraints": partition and sort key lengths).
//!
//! [`sort_bytes`] writes a key value so that comparing the bytes gives
//! DynamoDB's order (Developer Guide, "Query": sort key values are ordered
//! numerically for numbers and by their UTF-8 or raw bytes for strings and
//! binaries). A string or a binary is its own bytes. A number is a sign
//! byte, then for a nonzero number the power of ten of its first digit
//! offset to one byte (the range, -130 to 125, is exactly 256 values), its
//! digits in base 100 from the first significant one (each pair as 1 to
//! 100), and a terminator 0 that sorts a shorter coefficient first; a
//! negative number has every byte after the sign inverted, so that larger
//! magnitudes sort lower and its terminator, 255, sorts a shorter one last.
//! A number takes at most [`NUMBER_SORT_BYTES_MAX`] bytes.

use crate::error::ApiError;
use crate::limits::{PARTITION_KEY_BYTES_MAX, SORT_KEY_BYTES_MAX};
use crate::number::{DIGITS_MAX, MAGNITUDE_EXPONENT_MIN, Number};
use crate::size::number_bytes;
use crate::value::{Kind, Map, Value};

/// The types a key attribute may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarKind {
    S,
    N,
    B,
}

impl ScalarKind {
    /// The descriptor DynamoDB writes (`"S"`, `"N"`, `"B"`).
    pub fn descriptor(self) -> &'static str {
        self.kind().descriptor()
    }

    /// The key type named by an `AttributeType` descriptor.
    pub fn from_descriptor(text: &str) -> Option<ScalarKind> {
        match text {
            "S" => Some(ScalarKind::S),
            "N" => Some(ScalarKind::N),
            "B" => Some(ScalarKind::B),
            _ => None,
        }
    }

    /// The key type of a value, `None` for a value no key may hold.
    pub fn of(value: &Value) -> Option<ScalarKind> {
        match value {
            Value::S(_) => Some(ScalarKind::S),
            Value::N(_) => Some(ScalarKind::N),
            Value::B(_) => Some(ScalarKind::B),
            _ => None,
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            ScalarKind::S => Kind::S,
            ScalarKind::N => Kind::N,
            ScalarKind::B => Kind::B,
        }
    }
}

/// One key attribute: its name and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAttr {
    pub name: String,
    pub kind: ScalarKind,
}

/// A table's (or an index's) primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySchema {
    /// The partition (`HASH`) key.
    pub partition: KeyAttr,
    /// The sort (`RANGE`) key, if the table has one.
    pub sort: Option<KeyAttr>,
}

/// An item's primary key values, checked against a schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub partition: Value,
    pub sort: Option<Value>,
}

/// DynamoDB's answer to a `Key` that is not exactly the schema's attributes
/// with the schema's types.
pub const KEY_MISMATCH_MESSAGE: &str = "The provided key element does not match the schema";

/// The most bytes [`sort_bytes`] writes for a number: the sign, the
/// magnitude, 19 pairs of digits and the terminator.
pub const NUMBER_SORT_BYTES_MAX: usize = 2 + DIGITS_MAX.div_ceil(2) + 1;

/// Which of the two key attributes, for the size messages.
#[derive(Clone, Copy)]
enum Role {
    Partition,
    Sort,
}

impl KeySchema {
    /// The schema's attributes, partition key first.
    pub fn attributes(&self) -> impl Iterator<Item = &KeyAttr> {
        std::iter::once(&self.partition).chain(self.sort.as_ref())
    }

    /// The key of an item about to be written (`PutItem` and the puts of
    /// the batch and transaction operations), with `PutItem`'s messages.
    pub fn item_key(&self, item: &Map) -> Result<Key, ApiError> {
        let partition = item_key_value(item, &self.partition, Role::Partition)?;
        let sort = match &self.sort {
            Some(attr) => Some(item_key_value(item, attr, Role::Sort)?),
            None => None,
        };
        Ok(Key { partition, sort })
    }

    /// The key named by a request's `Key` map (`GetItem`, `DeleteItem`,
    /// `UpdateItem`, batch and transaction keys): exactly the schema's
    /// attributes, of the schema's types, and valid key values.
    pub fn key_from_map(&self, key: &Map) -> Result<Key, ApiError> {
        let expected_len = 1 + usize::from(self.sort.is_some());
        if key.len() != expected_len {
            return Err(ApiError::validation(KEY_MISMATCH_MESSAGE));
        }
        let partition = map_key_value(key, &self.partition)?;
        let sort = match &self.sort {
            Some(attr) => Some(map_key_value(key, attr)?),
            None => None,
        };
        check_key_value(&self.partition, &partition, Role::Partition)?;
        if let (Some(attr), Some(value)) = (&self.sort, &sort) {
            check_key_value(attr, value, Role::Sort)?;
        }
        Ok(Key { partition, sort })
    }

    /// The key as a map of its attributes, as DynamoDB returns keys
    /// (`LastEvaluatedKey`, `UnprocessedKeys`).
    pub fn key_map(&self, key: &Key) -> Map {
        let mut map = Map::new();
        map.insert(self.partition.name.clone(), key.partition.clone());
        if let (Some(attr), Some(value)) = (&self.sort, &key.sort) {
            map.insert(attr.name.clone(), value.clone());
        }
        map
    }
}

/// One key attribute of an item to write: present, of its type, valid.
fn item_key_value(item: &Map, attr: &KeyAttr, role: Role) -> Result<Value, ApiError> {
    let Some(value) = item.get(&attr.name) else {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Missing the key {} in the item",
            attr.name
        )));
    };
    if ScalarKind::of(value) != Some(attr.kind) {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
            attr.name,
            attr.kind.descriptor(),
            value.kind().descriptor()
        )));
    }
    check_key_value(attr, value, role)?;
    Ok(value.clone())
}

/// One attribute of a `Key` map: present and of its type.
fn map_key_value(key: &Map, attr: &KeyAttr) -> Result<Value, ApiError> {
    match key.get(&attr.name) {
        Some(value) if ScalarKind::of(value) == Some(attr.kind) => Ok(value.clone()),
        _ => Err(ApiError::validation(KEY_MISMATCH_MESSAGE)),
    }
}

/// A key value of the right type: not empty, not too long.
fn check_key_value(attr: &KeyAttr, value: &Value, role: Role) -> Result<(), ApiError> {
    let (empty_what, bytes) = match value {
        Value::S(text) => ("string", text.len()),
        Value::B(bytes) => ("binary", bytes.len()),
        Value::N(number) => ("number", number_bytes(number)),
        _ => return Err(ApiError::validation(KEY_MISMATCH_MESSAGE)),
    };
    if bytes == 0 {
        return Err(ApiError::validation(format!(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an \
             empty {empty_what} value. Key: {}",
            attr.name
        )));
    }
    match role {
        Role::Partition if bytes > PARTITION_KEY_BYTES_MAX => Err(ApiError::validation(format!(
            // DynamoDB's message has no space before the number.
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit \
             of{PARTITION_KEY_BYTES_MAX} bytes"
        ))),
        Role::Sort if bytes > SORT_KEY_BYTES_MAX => Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size \
             limit of {SORT_KEY_BYTES_MAX} bytes"
        ))),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------- sort bytes

const SIGN_NEGATIVE: u8 = 0x01;
const SIGN_ZERO: u8 = 0x02;
const SIGN_POSITIVE: u8 = 0x03;
/// Ends a positive number's digits; below every digit pair (1 to 100).
const TERMINATOR: u8 = 0x00;
/// A pair of decimal digits is written as its value plus this.
const PAIR_OFFSET: u8 = 1;
/// Digit pairs of the largest coefficient.
const PAIRS_MAX: usize = DIGITS_MAX.div_ceil(2);

/// The bytes of a key value whose byte order is DynamoDB's order of such
/// values; `None` for a value no key may hold. Values of one key attribute
/// share a type, so the bytes carry none. Equal values, and only they, have
/// equal bytes (numbers are canonical), so the bytes also serve as a
/// partition key's identity for hashing. A number's bytes end with their
/// terminator; a string's or a binary's do not delimit themselves.
pub fn sort_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::S(text) => Some(text.as_bytes().to_vec()),
        Value::B(bytes) => Some(bytes.clone()),
        Value::N(number) => Some(number_sort_bytes(number)),
        _ => None,
    }
}

/// The value whose [`sort_bytes`] these are, given the key's type; `None`
/// for bytes no value of that type writes.
pub fn value_from_sort_bytes(kind: ScalarKind, bytes: &[u8]) -> Option<Value> {
    match kind {
        ScalarKind::S => String::from_utf8(bytes.to_vec()).ok().map(Value::S),
        ScalarKind::B => Some(Value::B(bytes.to_vec())),
        ScalarKind::N => number_from_sort_bytes(bytes).map(Value::N),
    }
}

fn number_sort_bytes(number: &Number) -> Vec<u8> {
    let mut out = Vec::with_capacity(NUMBER_SORT_BYTES_MAX);
    let (negative, coefficient, _) = number.parts();
    if coefficient == 0 {
        out.push(SIGN_ZERO);
        return out;
    }
    out.push(if negative { SIGN_NEGATIVE } else { SIGN_POSITIVE });
    // The range of magnitudes is exactly the range of a byte once offset.
    let magnitude_byte = u8::try_from(number.magnitude() - MAGNITUDE_EXPONENT_MIN).unwrap_or(u8::MAX);
    out.push(magnitude_byte);
    for pair in coefficient.to_string().as_bytes().chunks(2) {
        let high = pair.first().map_or(0, |d| d - b'0');
        let low = pair.get(1).map_or(0, |d| d - b'0');
        out.push(high * 10 + low + PAIR_OFFSET);
    }
    out.push(TERMINATOR);
    if negative {
        for byte in out.iter_mut().skip(1) {
            *byte = !*byte;
        }
    }
    out
}

fn number_from_sort_bytes(bytes: &[u8]) -> Option<Number> {
    let (&sign, rest) = bytes.split_first()?;
    let negative = match sign {
        SIGN_ZERO if rest.is_empty() => return Some(Number::ZERO),
        SIGN_NEGATIVE => true,
        SIGN_POSITIVE => false,
        _ => return None,
    };
    let plain: Vec<u8> = rest.iter().map(|&b| if negative { !b } else { b }).collect();
    let (&magnitude_byte, tail) = plain.split_first()?;
    let (&terminator, pairs) = tail.split_last()?;
    let first = *pairs.first()?;
    let last = *pairs.last()?;
    // Canonical: a first pair with a nonzero first digit, no all-zero last
    // pair, at most a full coefficient's pairs.
    let canonical = terminator == TERMINATOR
        && pairs.len() <= PAIRS_MAX
        && first >= 10 + PAIR_OFFSET
        && last != PAIR_OFFSET
        && pairs.iter().all(|&p| (PAIR_OFFSET..=99 + PAIR_OFFSET).contains(&p));
    if !canonical {
        return None;
    }
    let mut digits: Vec<u8> = pairs
        .iter()
        .flat_map(|&p| [(p - PAIR_OFFSET) / 10, (p - PAIR_OFFSET) % 10])
        .collect();
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let coefficient = digits.iter().fold(0u128, |c, &d| c * 10 + u128::from(d));
    let magnitude = i32::from(magnitude_byte) + MAGNITUDE_EXPONENT_MIN;
    let exponent = magnitude - (digits.len() as i32 - 1);
    Number::from_parts(negative, coefficient, exponent).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::number::MAGNITUDE_EXPONENT_MAX;
    use crate::test_values::number as n;
    use std::cmp::Ordering;

    fn map(attributes: Vec<(&str, Value)>) -> Map {
        attributes.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn schema(sort: Option<ScalarKind>) -> KeySchema {
        KeySchema {
            partition: KeyAttr {
                name: "pk".into(),
                kind: ScalarKind::S,
            },
            sort: sort.map(|kind| KeyAttr {
                name: "sk".into(),
                kind,
            }),
        }
    }

    fn message(result: Result<Key, ApiError>) -> String {
        let error = result.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Validation);
        error.message
    }

    #[test]
    fn an_items_key_is_extracted() {
        let s = schema(Some(ScalarKind::N));
        let item = map(vec![
            ("pk", Value::S("a".into())),
            ("sk", Value::N(n("5"))),
            ("other", Value::Null),
        ]);
        let key = s.item_key(&item).unwrap();
        assert_eq!(key.partition, Value::S("a".into()));
        assert_eq!(key.sort, Some(Value::N(n("5"))));
        assert_eq!(
            s.key_map(&key),
            map(vec![("pk", Value::S("a".into())), ("sk", Value::N(n("5")))])
        );
    }

    #[test]
    fn an_items_key_is_refused_with_putitems_messages() {
        let s = schema(Some(ScalarKind::N));
        assert_eq!(
            message(s.item_key(&map(vec![("sk", Value::N(n("1")))]))),
            "One or more parameter values were invalid: Missing the key pk in the item"
        );
        assert_eq!(
            message(s.item_key(&map(vec![("pk", Value::S("a".into()))]))),
            "One or more parameter values were invalid: Missing the key sk in the item"
        );
        assert_eq!(
            message(s.item_key(&map(vec![("pk", Value::N(n("1"))), ("sk", Value::N(n("1")))]))),
            "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N"
        );
        assert_eq!(
            message(s.item_key(&map(vec![("pk", Value::S("a".into())), ("sk", Value::L(vec![]))]))),
            "One or more parameter values were invalid: Type mismatch for key sk expected: N actual: L"
        );
        assert_eq!(
            message(s.item_key(&map(vec![("pk", Value::S(String::new())), ("sk", Value::N(n("1")))]))),
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an \
             empty string value. Key: pk"
        );
    }

    #[test]
    fn empty_binary_keys_are_refused() {
        let mut s = schema(None);
        s.partition.kind = ScalarKind::B;
        assert_eq!(
            message(s.key_from_map(&map(vec![("pk", Value::B(vec![]))]))),
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an \
             empty binary value. Key: pk"
        );
    }

    #[test]
    fn key_lengths_are_limited() {
        let s = schema(Some(ScalarKind::S));
        let at_limits = map(vec![
            ("pk", Value::S("p".repeat(PARTITION_KEY_BYTES_MAX))),
            ("sk", Value::S("s".repeat(SORT_KEY_BYTES_MAX))),
        ]);
        assert!(s.item_key(&at_limits).is_ok());
        assert!(s.key_from_map(&at_limits).is_ok());
        let long_partition = map(vec![
            ("pk", Value::S("p".repeat(PARTITION_KEY_BYTES_MAX + 1))),
            ("sk", Value::S("s".into())),
        ]);
        assert_eq!(
            message(s.key_from_map(&long_partition)),
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 \
             bytes"
        );
        let long_sort = map(vec![
            ("pk", Value::S("p".into())),
            ("sk", Value::S("é".repeat(SORT_KEY_BYTES_MAX / 2 + 1))),
        ]);
        assert_eq!(
            message(s.item_key(&long_sort)),
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size \
             limit of 1024 bytes"
        );
    }

    #[test]
    fn a_key_map_must_match_the_schema_exactly() {
        let s = schema(Some(ScalarKind::N));
        let good = map(vec![("pk", Value::S("a".into())), ("sk", Value::N(n("1")))]);
        assert!(s.key_from_map(&good).is_ok());
        for bad in [
            map(vec![("pk", Value::S("a".into()))]),
            map(vec![
                ("pk", Value::S("a".into())),
                ("sk", Value::N(n("1"))),
                ("x", Value::Null),
            ]),
            map(vec![("pk", Value::S("a".into())), ("other", Value::N(n("1")))]),
            map(vec![("pk", Value::S("a".into())), ("sk", Value::S("1".into()))]),
            map(vec![("pk", Value::B(vec![1])), ("sk", Value::N(n("1")))]),
        ] {
            assert_eq!(message(s.key_from_map(&bad)), KEY_MISMATCH_MESSAGE, "{bad:?}");
        }
    }

    #[test]
    fn strings_and_binaries_sort_by_their_bytes() {
        let values = ["", "A", "a", "ab", "b", "é", "\u{10000}"];
        for pair in values.windows(2) {
            let a = sort_bytes(&Value::S(pair[0].into())).unwrap();
            let b = sort_bytes(&Value::S(pair[1].into())).unwrap();
            assert!(a < b, "{pair:?}");
        }
        assert!(sort_bytes(&Value::B(vec![0x7f])) < sort_bytes(&Value::B(vec![0x80])));
        assert_eq!(sort_bytes(&Value::Null), None);
        assert_eq!(
            value_from_sort_bytes(ScalarKind::S, "é".as_bytes()),
            Some(Value::S("é".into()))
        );
        assert_eq!(value_from_sort_bytes(ScalarKind::S, &[0xff]), None);
        assert_eq!(
            value_from_sort_bytes(ScalarKind::B, &[0xff]),
            Some(Value::B(vec![0xff]))
        );
    }

    #[test]
    fn number_bytes_have_the_documented_shape() {
        assert_eq!(number_sort_bytes(&Number::ZERO), vec![SIGN_ZERO]);
        // 1: magnitude 0 -> 130, digits "1" -> pair 10 -> 11.
        assert_eq!(number_sort_bytes(&n("1")), vec![SIGN_POSITIVE, 130, 11, TERMINATOR]);
        assert_eq!(number_sort_bytes(&n("-1")), vec![SIGN_NEGATIVE, !130, !11, !TERMINATOR]);
        // 12.5: magnitude 1, pairs 12 and 50.
        assert_eq!(
            number_sort_bytes(&n("12.5")),
            vec![SIGN_POSITIVE, 131, 13, 51, TERMINATOR]
        );
        let widest = n(&format!("-9.{}E+125", "9".repeat(37)));
        assert_eq!(number_sort_bytes(&widest).len(), NUMBER_SORT_BYTES_MAX);
        assert_eq!(number_sort_bytes(&n("1E-130"))[1], 0);
        assert_eq!(number_sort_bytes(&n("1E+125"))[1], 255);
    }

    /// xorshift64*: a small deterministic generator for the property tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    /// A number of any sign, digit count and magnitude in range, often near
    /// another (shared prefixes, extra digits) to test the close calls.
    fn random_number(rng: &mut Rng, previous: Option<&str>) -> String {
        if let (Some(prev), 0) = (previous, rng.below(3)) {
            let cut = 1 + rng.below(prev.len() as u64) as usize;
            let digit = 1 + rng.below(9);
            let candidate = format!("{}{digit}", &prev[..cut]);
            if Number::parse(&candidate).is_ok() {
                return candidate;
            }
        }
        let sign = if rng.below(2) == 0 { "-" } else { "" };
        let digit_count = 1 + rng.below(DIGITS_MAX as u64) as usize;
        let digits: String = (0..digit_count)
            .map(|i| {
                let low = u64::from(i == 0 || i + 1 == digit_count);
                char::from(b'0' + (low + rng.below(10 - low)) as u8)
            })
            .collect();
        let span = (MAGNITUDE_EXPONENT_MAX - MAGNITUDE_EXPONENT_MIN + 1) as u64;
        let magnitude = MAGNITUDE_EXPONENT_MIN + rng.below(span) as i32;
        format!("{sign}{}.{}E{magnitude}", &digits[..1], &digits[1..])
    }

    /// Compares two numbers without the magnitude logic under test: both
    /// coefficients scaled to the smaller exponent, compared as digit strings.
    fn oracle(a: &Number, b: &Number) -> Ordering {
        let signed = |x: &Number| {
            let (negative, coefficient, exponent) = x.parts();
            let sign = if coefficient == 0 {
                0
            } else if negative {
                -1
            } else {
                1
            };
            (sign, coefficient, exponent)
        };
        let ((sa, ca, ea), (sb, cb, eb)) = (signed(a), signed(b));
        if sa != sb || sa == 0 {
            return sa.cmp(&sb);
        }
        let low = ea.min(eb);
        let scaled = |c: u128, e: i32| format!("{c}{}", "0".repeat((e - low) as usize));
        let (ta, tb) = (scaled(ca, ea), scaled(cb, eb));
        let magnitude_order = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(&tb));
        if sa < 0 {
            magnitude_order.reverse()
        } else {
            magnitude_order
        }
    }

    #[test]
    fn number_bytes_sort_numerically() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut texts: Vec<String> = ["0", "1", "-1", "1E-130", "-1E-130", "1E+125", "-1E+125", "10", "0.1"]
            .into_iter()
            .map(String::from)
            .collect();
        while texts.len() < 600 {
            let previous = texts.last().cloned();
            texts.push(random_number(&mut rng, previous.as_deref()));
        }
        let numbers: Vec<Number> = texts.iter().map(|t| n(t)).collect();
        let encoded: Vec<Vec<u8>> = numbers.iter().map(number_sort_bytes).collect();
        for (i, a) in numbers.iter().enumerate() {
            for (j, b) in numbers.iter().enumerate() {
                let expected = oracle(a, b);
                assert_eq!(a.cmp(b), expected, "{a:?} vs {b:?}");
                assert_eq!(encoded[i].cmp(&encoded[j]), expected, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn number_bytes_decode_to_their_number() {
        let mut rng = Rng(42);
        for _ in 0..2_000 {
            let number = n(&random_number(&mut rng, None));
            let bytes = number_sort_bytes(&number);
            assert_eq!(value_from_sort_bytes(ScalarKind::N, &bytes), Some(Value::N(number)));
        }
        assert_eq!(
            value_from_sort_bytes(ScalarKind::N, &[SIGN_ZERO]),
            Some(Value::N(Number::ZERO))
        );
    }

    #[test]
    fn foreign_number_bytes_are_refused() {
        for bytes in [
            &[][..],
            &[SIGN_ZERO, 0],
            &[0x07],
            &[SIGN_POSITIVE],
            &[SIGN_POSITIVE, 130],
            &[SIGN_POSITIVE, 130, TERMINATOR],
            &[SIGN_POSITIVE, 130, 11],
            &[SIGN_POSITIVE, 130, 5, TERMINATOR],
            &[SIGN_POSITIVE, 130, 11, PAIR_OFFSET, TERMINATOR],
            &[SIGN_POSITIVE, 130, 101, TERMINATOR],
            &[SIGN_POSITIVE, 130, 11, TERMINATOR, 0],
            &[SIGN_POSITIVE, 130, 11, !TERMINATOR],
        ] {
            assert_eq!(value_from_sort_bytes(ScalarKind::N, bytes), None, "{bytes:?}");
        }
        let too_long: Vec<u8> = [SIGN_POSITIVE, 130]
            .into_iter()
            .chain(std::iter::repeat_n(11, PAIRS_MAX + 1))
            .chain([TERMINATOR])
            .collect();
        assert_eq!(value_from_sort_bytes(ScalarKind::N, &too_long), None);
    }
}

//! DynamoDB's number type: up to 38 significant decimal digits, magnitudes
//! from 1E-130 to 9.99..9E+125 (and zero), kept and computed exactly.
//!
//! A number is its sign, its coefficient (at most 38 digits, no trailing
//! zero, so every value has one form) and the power of ten of its last
//! digit. Arithmetic is exact: a result that needs more than 38 digits, or
//! leaves the range, is an error, never rounded.

use std::cmp::Ordering;
use std::fmt;

/// Significant digits a number may have.
pub const DIGITS_MAX: usize = 38;
/// Largest power of ten of a number's first digit (9.9..9E+125).
pub const MAGNITUDE_EXPONENT_MAX: i32 = 125;
/// Smallest power of ten of a number's first digit (1E-130).
pub const MAGNITUDE_EXPONENT_MIN: i32 = -130;
/// Characters a number's text may have before it is refused unread (a
/// number has at most 38 digits, but zeros may pad it).
pub const TEXT_BYTES_MAX: usize = 1_024;

/// Why a text or a result is not a number DynamoDB stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// Not the text of a number.
    NotANumber,
    /// More than [`DIGITS_MAX`] significant digits.
    TooPrecise,
    /// Magnitude above 9.9..9E+125.
    Overflow,
    /// Magnitude below 1E-130 (and not zero).
    Underflow,
}

impl NumberError {
    /// The words DynamoDB answers with.
    pub fn message(self) -> &'static str {
        match self {
            // DynamoDB adds ": " and the text when the text is not empty.
            NumberError::NotANumber => "The parameter cannot be converted to a numeric value",
            NumberError::TooPrecise => "Attempting to store more than 38 significant digits in a Number",
            NumberError::Overflow => {
                "Number overflow. Attempting to store a number with magnitude larger than supported range"
            }
            NumberError::Underflow => {
                "Number underflow. Attempting to store a number with magnitude smaller than supported range"
            }
        }
    }
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for NumberError {}

/// An exact DynamoDB number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    /// Without trailing zeros; 0 only for zero.
    coefficient: u128,
    /// The power of ten of the coefficient's last digit (0 for zero).
    exponent: i32,
}

impl Number {
    pub const ZERO: Number = Number {
        negative: false,
        coefficient: 0,
        exponent: 0,
    };

    /// Parses DynamoDB's text of a number: an optional sign, digits with an
    /// optional decimal point, an optional exponent (`1`, `-0.5`, `.5`,
    /// `1e3`, `1.5E-7`).
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        if text.len() > TEXT_BYTES_MAX {
            return Err(NumberError::NotANumber);
        }
        let (negative, digits, exponent) = Decimal::parse(text).ok_or(NumberError::NotANumber)?;
        Decimal {
            negative,
            digits,
            exponent,
        }
        .into_number()
    }

    pub fn from_i64(value: i64) -> Number {
        let text = value.to_string();
        Number::parse(&text).unwrap_or(Number::ZERO)
    }

    pub fn is_zero(&self) -> bool {
        self.coefficient == 0
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The parts: sign, coefficient (no trailing zero) and the power of
    /// ten of its last digit.
    pub fn parts(&self) -> (bool, u128, i32) {
        (self.negative, self.coefficient, self.exponent)
    }

    /// The number with these parts, checked like a parsed one.
    pub fn from_parts(negative: bool, coefficient: u128, exponent: i32) -> Result<Number, NumberError> {
        let digits: Vec<u8> = coefficient.to_string().bytes().map(|b| b - b'0').collect();
        Decimal {
            negative,
            digits,
            exponent,
        }
        .into_number()
    }

    /// Digits of the coefficient.
    fn digit_count(&self) -> i32 {
        if self.coefficient == 0 {
            return 0;
        }
        self.coefficient.ilog10() as i32 + 1
    }

    /// The power of ten of the first digit (scientific exponent).
    pub fn magnitude(&self) -> i32 {
        self.exponent + self.digit_count() - 1
    }

    pub fn negate(&self) -> Number {
        Number {
            negative: !self.negative && !self.is_zero(),
            ..*self
        }
    }

    /// `self + other`, exact.
    pub fn add(&self, other: &Number) -> Result<Number, NumberError> {
        Decimal::of(self).add(&Decimal::of(other)).into_number()
    }

    /// `self - other`, exact.
    pub fn sub(&self, other: &Number) -> Result<Number, NumberError> {
        self.add(&other.negate())
    }

    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        self.magnitude().cmp(&other.magnitude()).then_with(|| {
            // Same first-digit power: compare coefficients scaled to the
            // same number of digits.
            let (a, b) = (self.digit_count(), other.digit_count());
            let scale = |c: u128, by: i32| c * 10u128.pow(by as u32);
            match a.cmp(&b) {
                Ordering::Less => scale(self.coefficient, b - a).cmp(&other.coefficient),
                Ordering::Greater => self.coefficient.cmp(&scale(other.coefficient, a - b)),
                Ordering::Equal => self.coefficient.cmp(&other.coefficient),
            }
        })
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The canonical text, as DynamoDB returns numbers: plain notation, no
/// exponent, no trailing fractional zero, no `-0`.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        if self.negative {
            f.write_str("-")?;
        }
        let digits = self.coefficient.to_string();
        if self.exponent >= 0 {
            f.write_str(&digits)?;
            for _ in 0..self.exponent {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let fraction = (-self.exponent) as usize;
        if digits.len() > fraction {
            let (whole, part) = digits.split_at(digits.len() - fraction);
            write!(f, "{whole}.{part}")
        } else {
            f.write_str("0.")?;
            for _ in 0..fraction - digits.len() {
                f.write_str("0")?;
            }
            f.write_str(&digits)
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

/// A decimal of any length, for parsing and exact sums: the digits, most
/// significant first, and the power of ten of the last one.
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i32,
}

impl Decimal {
    fn of(number: &Number) -> Decimal {
        let digits = if number.is_zero() {
            Vec::new()
        } else {
            number.coefficient.to_string().bytes().map(|b| b - b'0').collect()
        };
        Decimal {
            negative: number.negative,
            digits,
            exponent: number.exponent,
        }
    }

    /// Sign, digits and the power of ten of the last digit, or `None` when
    /// the text is not a number.
    fn parse(text: &str) -> Option<(bool, Vec<u8>, i32)> {
        let bytes = text.as_bytes();
        let (negative, rest) = match bytes.first()? {
            b'-' => (true, &bytes[1..]),
            b'+' => (false, &bytes[1..]),
            _ => (false, bytes),
        };
        let exponent_at = rest.iter().position(|&b| b == b'e' || b == b'E');
        let (mantissa, exponent_text) = match exponent_at {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let mut digits = Vec::with_capacity(mantissa.len());
        let mut fraction_digits: i64 = 0;
        let mut seen_point = false;
        for &b in mantissa {
            match b {
                b'0'..=b'9' => {
                    digits.push(b - b'0');
                    fraction_digits += i64::from(seen_point);
                }
                b'.' if !seen_point => seen_point = true,
                _ => return None,
            }
        }
        if digits.is_empty() {
            return None;
        }
        let mut exponent = -fraction_digits;
        if let Some(text) = exponent_text {
            exponent += parse_exponent(text)?;
        }
        Some((negative, digits, i32::try_from(exponent).ok()?))
    }

    /// Strips zeros and checks the limits.
    fn into_number(self) -> Result<Number, NumberError> {
        let first = self.digits.iter().position(|&d| d != 0);
        let Some(first) = first else {
            return Ok(Number::ZERO);
        };
        let last = self.digits.iter().rposition(|&d| d != 0).unwrap_or(first);
        // In i64: `from_parts` may bring any i32 exponent, and adding the
        // trailing zeros to i32::MAX must not overflow.
        let exponent = i64::from(self.exponent) + (self.digits.len() - 1 - last) as i64;
        let significant = &self.digits[first..=last];
        let magnitude = exponent + significant.len() as i64 - 1;
        if magnitude > i64::from(MAGNITUDE_EXPONENT_MAX) {
            return Err(NumberError::Overflow);
        }
        if magnitude < i64::from(MAGNITUDE_EXPONENT_MIN) {
            return Err(NumberError::Underflow);
        }
        if significant.len() > DIGITS_MAX {
            return Err(NumberError::TooPrecise);
        }
        let coefficient = significant.iter().fold(0u128, |c, &d| c * 10 + u128::from(d));
        Ok(Number {
            negative: self.negative,
            coefficient,
            // Within the range checked above, so it fits.
            exponent: exponent as i32,
        })
    }

    /// The digits extended with zeros down to the power `exponent`.
    fn aligned(&self, exponent: i32) -> Vec<u8> {
        let mut digits = self.digits.clone();
        digits.resize(digits.len() + (self.exponent - exponent) as usize, 0);
        digits
    }

    /// The exact sum (both from [`Number`]s, so aligning them is bounded by
    /// the range: at most about 300 digits).
    fn add(&self, other: &Decimal) -> Decimal {
        let exponent = self.exponent.min(other.exponent);
        let (a, b) = (self.aligned(exponent), other.aligned(exponent));
        if self.negative == other.negative {
            return Decimal {
                negative: self.negative,
                digits: add_digits(&a, &b),
                exponent,
            };
        }
        match compare_digits(&a, &b) {
            Ordering::Equal => Decimal {
                negative: false,
                digits: Vec::new(),
                exponent: 0,
            },
            Ordering::Greater => Decimal {
                negative: self.negative,
                digits: sub_digits(&a, &b),
                exponent,
            },
            Ordering::Less => Decimal {
                negative: other.negative,
                digits: sub_digits(&b, &a),
                exponent,
            },
        }
    }
}

/// An exponent's text: an optional sign and 1 to 6 digits.
fn parse_exponent(text: &[u8]) -> Option<i64> {
    let (sign, digits) = match text.first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    if digits.is_empty() || digits.len() > 6 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().fold(0i64, |v, &d| v * 10 + i64::from(d - b'0'));
    Some(sign * value)
}

fn trimmed(digits: &[u8]) -> &[u8] {
    let first = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    &digits[first..]
}

fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (trimmed(a), trimmed(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut i, mut j, mut carry) = (a.len(), b.len(), 0u8);
    while i > 0 || j > 0 || carry > 0 {
        let x = if i > 0 { a[i - 1] } else { 0 };
        let y = if j > 0 { b[j - 1] } else { 0 };
        let sum = x + y + carry;
        out.push(sum % 10);
        carry = sum / 10;
        i = i.saturating_sub(1);
        j = j.saturating_sub(1);
    }
    out.reverse();
    out
}

/// `a - b` where `a >= b`.
fn sub_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let (mut i, mut j, mut borrow) = (a.len(), b.len(), 0i8);
    while i > 0 {
        let x = a[i - 1] as i8;
        let y = if j > 0 { b[j - 1] as i8 } else { 0 };
        let mut d = x - y - borrow;
        borrow = i8::from(d < 0);
        if d < 0 {
            d += 10;
        }
        out.push(d as u8);
        i -= 1;
        j = j.saturating_sub(1);
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::number as n;

    #[test]
    fn texts_take_their_canonical_form() {
        for (text, canonical) in [
            ("0", "0"),
            ("-0", "0"),
            ("000.000", "0"),
            ("1.50", "1.5"),
            ("+7", "7"),
            (".5", "0.5"),
            ("5.", "5"),
            ("1e3", "1000"),
            ("1.5E-7", "0.00000015"),
            ("-12.3400e2", "-1234"),
            ("100", "100"),
        ] {
            assert_eq!(n(text).to_string(), canonical, "{text}");
        }
    }

    #[test]
    fn what_is_not_a_number_is_refused() {
        for text in [
            "",
            "-",
            ".",
            "1.2.3",
            "1e",
            "e5",
            "1e+",
            "0x10",
            " 1",
            "1 ",
            "NaN",
            "Infinity",
            "1e1234567",
        ] {
            assert_eq!(Number::parse(text), Err(NumberError::NotANumber), "{text:?}");
        }
    }

    #[test]
    fn the_range_and_precision_are_dynamodbs() {
        let max = format!("9.{}E+125", "9".repeat(37));
        assert!(Number::parse(&max).is_ok());
        assert_eq!(Number::parse("1E+126"), Err(NumberError::Overflow));
        assert!(Number::parse("1E-130").is_ok());
        assert_eq!(Number::parse("1E-131"), Err(NumberError::Underflow));
        assert!(Number::parse(&"9".repeat(38)).is_ok());
        assert_eq!(Number::parse(&"9".repeat(39)), Err(NumberError::TooPrecise));
        // Zeros around the digits do not count.
        assert!(Number::parse(&format!("000{}000.000", "9".repeat(38))).is_ok());
    }

    #[test]
    fn sums_are_exact_or_refused() {
        assert_eq!(n("0.1").add(&n("0.2")).unwrap(), n("0.3"));
        assert_eq!(n("-5").add(&n("5")).unwrap(), Number::ZERO);
        assert_eq!(
            n(&"9".repeat(38)).add(&n("1")).unwrap().to_string(),
            format!("1{}", "0".repeat(38))
        );
        assert_eq!(n("1E+100").add(&n("1E-100")), Err(NumberError::TooPrecise));
        assert_eq!(n("10").sub(&n("12.5")).unwrap(), n("-2.5"));
        assert_eq!(n("9.9E+125").add(&n("1E+125")), Err(NumberError::Overflow));
    }

    #[test]
    fn order_is_numeric() {
        let mut numbers: Vec<Number> = ["10", "-1", "2", "-10.5", "0", "1E-130", "-1E-130", "2.5"]
            .into_iter()
            .map(n)
            .collect();
        numbers.sort();
        let texts: Vec<String> = numbers.iter().map(Number::to_string).collect();
        assert_eq!(texts[0], "-10.5");
        assert_eq!(texts[1], "-1");
        assert_eq!(texts[3], "0");
        assert_eq!(&texts[5..], ["2", "2.5", "10"]);
        assert_eq!(n("1.0"), n("1"));
    }

    #[test]
    fn the_documented_range_holds_for_negative_numbers_too() {
        // Developer Guide, "Data types": negative range -9.99..9E+125 to -1E-130.
        let lowest = format!("-9.{}E+125", "9".repeat(37));
        assert!(Number::parse(&lowest).is_ok());
        assert_eq!(Number::parse("-1E+126"), Err(NumberError::Overflow));
        assert!(Number::parse("-1E-130").is_ok());
        assert_eq!(Number::parse("-1E-131"), Err(NumberError::Underflow));
        assert_eq!(
            Number::parse(&format!("-{}", "9".repeat(39))),
            Err(NumberError::TooPrecise)
        );
    }

    #[test]
    fn leading_and_trailing_zeros_do_not_count_as_digits() {
        // Developer Guide, "Item sizes": leading and trailing zeroes are trimmed.
        let padded = format!("000{}.{}000e-1", "1".repeat(19), "1".repeat(19));
        let (_, coefficient, exponent) = n(&padded).parts();
        assert_eq!(coefficient.to_string(), "1".repeat(38));
        assert_eq!(exponent, -20);
        assert_eq!(n("1.2300E+2").parts(), (false, 123, 0));
        assert_eq!(n("-0.00100").parts(), (true, 1, -3));
    }

    #[test]
    fn extreme_magnitudes_print_in_full() {
        assert_eq!(n("1E+125").to_string(), format!("1{}", "0".repeat(125)));
        assert_eq!(n("-1E-130").to_string(), format!("-0.{}1", "0".repeat(129)));
        assert_eq!(n("123.456E-2").to_string(), "1.23456");
    }

    #[test]
    fn parts_from_anywhere_are_checked_without_overflow() {
        assert_eq!(Number::from_parts(false, 10, i32::MAX), Err(NumberError::Overflow));
        assert_eq!(Number::from_parts(true, 1, i32::MIN), Err(NumberError::Underflow));
        assert_eq!(Number::from_parts(false, u128::MAX, 0), Err(NumberError::TooPrecise));
        assert_eq!(Number::from_parts(true, 0, 77), Ok(Number::ZERO));
        // Trailing zeros move into the exponent.
        assert_eq!(
            Number::from_parts(false, 10, -131).map(|x| x.parts()),
            Ok((false, 1, -130))
        );
        assert_eq!(Number::from_parts(false, 1, 125), Ok(n("1E+125")));
    }

    #[test]
    fn sums_at_the_edges_of_the_range() {
        let max = n(&format!("9.{}E+125", "9".repeat(37)));
        assert_eq!(max.add(&n("1E+88")), Err(NumberError::Overflow));
        assert_eq!(max.sub(&max), Ok(Number::ZERO));
        assert_eq!(n("1E-130").sub(&n("1E-130")), Ok(Number::ZERO));
        // A result below the smallest magnitude is refused, not rounded to zero.
        assert_eq!(n("2E-130").sub(&n("1.5E-130")), Err(NumberError::Underflow));
        assert_eq!(n("-7").add(&n("3")).map(|x| x.to_string()), Ok("-4".to_string()));
    }

    #[test]
    fn not_a_number_has_dynamodbs_words() {
        assert_eq!(
            NumberError::NotANumber.message(),
            "The parameter cannot be converted to a numeric value"
        );
        assert_eq!(
            NumberError::TooPrecise.to_string(),
            "Attempting to store more than 38 significant digits in a Number"
        );
    }
}

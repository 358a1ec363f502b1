//! The size of an item as DynamoDB computes it, for the 400 KB item limit,
//! the 1 MB page of `Query` and `Scan` and the 16 MB of the batch
//! operations.
//!
//! The rules are the Developer Guide's "DynamoDB item sizes and formats"
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>):
//! an item is the sum of its attribute names' UTF-8 lengths and its values'
//! sizes; a string is its UTF-8 bytes, a binary its raw bytes, a number 1
//! byte per two significant digits plus 1, `BOOL` and `NULL` 1 byte, a list
//! or a map 3 bytes plus its elements plus 1 byte per element (a map's
//! elements counting their names), and a set the sum of its members.
//!
//! The walk descends at most [`NESTING_DEPTH_MAX`] levels (the deepest a
//! stored value may be), so measuring never recurses without bound.

use crate::error::ApiError;
use crate::limits::{ITEM_BYTES_MAX, NESTING_DEPTH_MAX};
use crate::number::Number;
use crate::value::{Item, Value};

/// The bytes a list or a map costs whatever it holds.
const DOCUMENT_OVERHEAD_BYTES: usize = 3;
/// The bytes each element of a list or a map costs besides its own size.
const ELEMENT_OVERHEAD_BYTES: usize = 1;
/// The bytes of `BOOL` and `NULL`, and the fixed byte of a number.
const SCALAR_BYTES: usize = 1;

/// DynamoDB's answer to an item whose lists and maps nest deeper than
/// [`NESTING_DEPTH_MAX`].
pub const NESTING_MESSAGE: &str =
    "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";
/// DynamoDB's answer to a `PutItem` (or a batch or transaction put) whose
/// item exceeds [`ITEM_BYTES_MAX`].
pub const ITEM_TOO_LARGE_MESSAGE: &str = "Item size has exceeded the maximum allowed size";
/// DynamoDB's answer to an `UpdateItem` whose result would exceed
/// [`ITEM_BYTES_MAX`].
pub const UPDATE_TOO_LARGE_MESSAGE: &str = "Item size to update has exceeded the maximum allowed size";

/// The item's size in bytes. An item nested deeper than DynamoDB allows
/// measures `usize::MAX`: no such item may be stored, and the answer then
/// exceeds every limit it is compared with.
pub fn item_bytes(item: &Item) -> usize {
    attributes_bytes(item, 1).unwrap_or(usize::MAX)
}

/// One value's size in bytes (without the name of the attribute holding
/// it), `usize::MAX` if it nests deeper than DynamoDB allows.
pub fn value_bytes(value: &Value) -> usize {
    measure(value, 1).unwrap_or(usize::MAX)
}

/// A number's size: 1 byte per two significant digits (an odd last digit
/// taking a byte of its own) plus 1 byte.
pub fn number_bytes(number: &Number) -> usize {
    significant_digits(number).div_ceil(2) + SCALAR_BYTES
}

/// An item's top-level attribute with an empty name.
const EMPTY_NAME_MESSAGE: &str = "One or more parameter values were invalid: An attribute name cannot be empty";

/// The item's size if it may be stored: refused with DynamoDB's message when
/// a name is empty, it nests too deep or exceeds [`ITEM_BYTES_MAX`].
pub fn check_item(item: &Item) -> Result<usize, ApiError> {
    // "Supported data types and naming rules": an attribute name is at
    // least one character long.
    if item.contains_key("") {
        return Err(ApiError::validation(EMPTY_NAME_MESSAGE));
    }
    let bytes = attributes_bytes(item, 1).ok_or_else(|| ApiError::validation(NESTING_MESSAGE))?;
    if bytes > ITEM_BYTES_MAX {
        return Err(ApiError::validation(ITEM_TOO_LARGE_MESSAGE));
    }
    Ok(bytes)
}

fn significant_digits(number: &Number) -> usize {
    let (_, coefficient, _) = number.parts();
    if coefficient == 0 {
        return 0;
    }
    coefficient.ilog10() as usize + 1
}

/// The top-level attributes (or a map's entries) whose values sit at
/// `depth`: names plus values; `None` past the nesting limit.
fn attributes_bytes(attributes: &Item, depth: usize) -> Option<usize> {
    attributes.iter().try_fold(0usize, |total, (name, value)| {
        Some(total.saturating_add(name.len()).saturating_add(measure(value, depth)?))
    })
}

/// The size of `value`, which sits at `depth` (1 for an attribute's value);
/// `None` when it or something in it lies deeper than the limit.
fn measure(value: &Value, depth: usize) -> Option<usize> {
    if depth > NESTING_DEPTH_MAX {
        return None;
    }
    let bytes = match value {
        Value::S(text) => text.len(),
        Value::B(bytes) => bytes.len(),
        Value::N(number) => number_bytes(number),
        Value::Bool(_) | Value::Null => SCALAR_BYTES,
        Value::Ss(members) => members.iter().map(String::len).fold(0, usize::saturating_add),
        Value::Bs(members) => members.iter().map(Vec::len).fold(0, usize::saturating_add),
        Value::Ns(members) => members.iter().map(number_bytes).fold(0, usize::saturating_add),
        Value::L(elements) => list_bytes(elements, depth + 1)?,
        Value::M(entries) => {
            let overhead = entries.len().saturating_mul(ELEMENT_OVERHEAD_BYTES);
            DOCUMENT_OVERHEAD_BYTES
                .saturating_add(overhead)
                .saturating_add(attributes_bytes(entries, depth + 1)?)
        }
    };
    Some(bytes)
}

/// A list holding `elements` at `depth`.
fn list_bytes(elements: &[Value], depth: usize) -> Option<usize> {
    elements.iter().try_fold(DOCUMENT_OVERHEAD_BYTES, |total, element| {
        Some(
            total
                .saturating_add(ELEMENT_OVERHEAD_BYTES)
                .saturating_add(measure(element, depth)?),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::number as n;

    #[test]
    fn an_item_with_an_empty_attribute_name_is_refused() {
        let item = Item::from([(String::new(), crate::value::Value::Null)]);
        assert_eq!(check_item(&item).unwrap_err().message, EMPTY_NAME_MESSAGE);
    }
    use crate::error::ErrorKind;
    use crate::value::Map;

    fn item(attributes: Vec<(&str, Value)>) -> Item {
        attributes.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn scalars_follow_the_documented_rules() {
        assert_eq!(value_bytes(&Value::S("héllo".into())), 6);
        assert_eq!(value_bytes(&Value::S(String::new())), 0);
        assert_eq!(value_bytes(&Value::B(vec![0; 7])), 7);
        assert_eq!(value_bytes(&Value::Bool(false)), 1);
        assert_eq!(value_bytes(&Value::Null), 1);
    }

    #[test]
    fn numbers_cost_a_byte_per_two_significant_digits_plus_one() {
        // Leading and trailing zeros are trimmed before counting.
        for (text, bytes) in [
            ("0", 1),
            ("7", 2),
            ("12", 2),
            ("123", 3),
            ("1000000", 2),
            ("0.00012", 2),
            ("-123.45", 4),
            ("1E+125", 2),
        ] {
            assert_eq!(number_bytes(&n(text)), bytes, "{text}");
        }
        let widest = n(&"9".repeat(38));
        assert_eq!(number_bytes(&widest), 20);
    }

    #[test]
    fn documents_cost_three_bytes_plus_one_per_element() {
        assert_eq!(value_bytes(&Value::L(vec![])), 3);
        assert_eq!(value_bytes(&Value::M(Map::new())), 3);
        // 3 + (1 + 1) + (1 + 2)
        assert_eq!(value_bytes(&Value::L(vec![Value::Null, Value::S("ab".into())])), 8);
        // 3 + ("k" 1 + 1 + "xyz" 3)
        let map: Map = item(vec![("k", Value::S("xyz".into()))]);
        assert_eq!(value_bytes(&Value::M(map)), 8);
    }

    #[test]
    fn sets_are_the_sum_of_their_members() {
        assert_eq!(value_bytes(&Value::string_set(vec!["ab".into(), "cde".into()])), 5);
        assert_eq!(value_bytes(&Value::binary_set(vec![vec![1], vec![2, 3]])), 3);
        assert_eq!(value_bytes(&Value::number_set(vec![n("1"), n("123")])), 5);
    }

    #[test]
    fn an_item_adds_names_and_values() {
        let it = item(vec![
            ("id", Value::S("abc".into())),
            ("n", Value::N(n("42"))),
            ("doc", Value::M(item(vec![("a", Value::Bool(true))]))),
        ]);
        // id: 2 + 3; n: 1 + 2; doc: 3 + (3 + 1 + (1 + 1))
        assert_eq!(item_bytes(&it), 5 + 3 + 9);
        assert_eq!(check_item(&it), Ok(17));
    }

    fn nested(levels: usize) -> Value {
        (1..levels).fold(Value::Null, |inner, _| Value::L(vec![inner]))
    }

    #[test]
    fn nesting_is_limited_to_thirty_two_levels() {
        let deepest = item(vec![("a", nested(NESTING_DEPTH_MAX))]);
        assert!(check_item(&deepest).is_ok());
        let too_deep = item(vec![("a", nested(NESTING_DEPTH_MAX + 1))]);
        assert_eq!(item_bytes(&too_deep), usize::MAX);
        let error = check_item(&too_deep).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Validation);
        assert_eq!(error.message, NESTING_MESSAGE);
    }

    #[test]
    fn the_item_limit_is_inclusive() {
        // A name of 1 byte plus a string of the rest reaches the limit exactly.
        let at_limit = item(vec![("a", Value::S("x".repeat(ITEM_BYTES_MAX - 1)))]);
        assert_eq!(check_item(&at_limit), Ok(ITEM_BYTES_MAX));
        let over = item(vec![("a", Value::S("x".repeat(ITEM_BYTES_MAX)))]);
        assert_eq!(check_item(&over), Err(ApiError::validation(ITEM_TOO_LARGE_MESSAGE)));
    }
}

//! Whether a condition holds for an item (or for no item), as DynamoDB
//! evaluates it: a comparison with a missing attribute, or between values
//! of different types, is false and never an error; `<>` is the negation
//! of `=` (so a missing attribute is `<>` anything); only strings, numbers
//! and binaries have an order (numbers numerically, the others by their
//! bytes, unsigned).

use super::ast::Comparator;
use super::condition::{Condition, Operand};
use crate::error::ApiError;
use crate::number::Number;
use crate::value::{Item, Kind, Value, order};
use std::borrow::Cow;
use std::cmp::Ordering;

impl Condition {
    /// Whether the condition holds for `item` (`None`: no such item, so no
    /// attribute exists).
    pub fn evaluate(&self, item: Option<&Item>) -> Result<bool, ApiError> {
        Ok(holds(self, item))
    }
}

/// Recurses along the condition, whose depth the parser bounds (legacy
/// conditions are two levels deep).
fn holds(condition: &Condition, item: Option<&Item>) -> bool {
    let value = |operand| operand_value(operand, item);
    match condition {
        Condition::Compare {
            comparator,
            left,
            right,
        } => compare(*comparator, value(left), value(right)),
        Condition::Between {
            value: tested,
            low,
            high,
        } => between(value(tested), value(low), value(high)),
        Condition::In { value: tested, list } => value(tested).is_some_and(|tested| {
            list.iter()
                .any(|member| value(member).is_some_and(|member| tested == member))
        }),
        Condition::AttributeExists(path) => item.and_then(|item| path.get(item)).is_some(),
        Condition::AttributeNotExists(path) => item.and_then(|item| path.get(item)).is_none(),
        Condition::AttributeType { path, type_name } => {
            let actual = item.and_then(|item| path.get(item)).map(Value::kind);
            match value(type_name).as_deref() {
                Some(Value::S(name)) => actual.is_some() && actual == Kind::from_descriptor(name),
                _ => false,
            }
        }
        Condition::BeginsWith { value: tested, prefix } => match (value(tested), value(prefix)) {
            (Some(tested), Some(prefix)) => begins_with(&tested, &prefix),
            _ => false,
        },
        Condition::Contains { value: tested, member } => match (value(tested), value(member)) {
            (Some(tested), Some(member)) => contains(&tested, &member),
            _ => false,
        },
        Condition::Not(inner) => !holds(inner, item),
        Condition::And(conditions) => conditions.iter().all(|inner| holds(inner, item)),
        Condition::Or(conditions) => conditions.iter().any(|inner| holds(inner, item)),
    }
}

/// An operand's value for `item`, if it has one.
pub(crate) fn operand_value<'a>(operand: &'a Operand, item: Option<&'a Item>) -> Option<Cow<'a, Value>> {
    match operand {
        Operand::Path(path) => item.and_then(|item| path.get(item)).map(Cow::Borrowed),
        Operand::Value(value) => Some(Cow::Borrowed(value)),
        Operand::Size(inner) => {
            let inner = operand_value(inner, item)?;
            size(&inner).map(|size| Cow::Owned(Value::N(size)))
        }
    }
}

/// The size `size()` gives: a string's or a binary's bytes (strings in
/// UTF-8, "an attribute's size in bytes" as the guide's PartiQL `SIZE` page
/// puts it), a set's members, a list's elements, a map's entries; nothing
/// for other types.
pub(crate) fn size(value: &Value) -> Option<Number> {
    let count = match value {
        Value::S(text) => text.len(),
        Value::B(bytes) => bytes.len(),
        Value::Ss(members) => members.len(),
        Value::Ns(members) => members.len(),
        Value::Bs(members) => members.len(),
        Value::L(elements) => elements.len(),
        Value::M(entries) => entries.len(),
        Value::N(_) | Value::Bool(_) | Value::Null => return None,
    };
    Some(Number::from_i64(i64::try_from(count).unwrap_or(i64::MAX)))
}

fn compare(comparator: Comparator, left: Option<Cow<'_, Value>>, right: Option<Cow<'_, Value>>) -> bool {
    let (Some(left), Some(right)) = (left, right) else {
        return comparator == Comparator::NotEqual;
    };
    let ordering = order(&left, &right);
    match comparator {
        Comparator::Equal => left == right,
        Comparator::NotEqual => left != right,
        Comparator::Less => ordering == Some(Ordering::Less),
        Comparator::LessOrEqual => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        Comparator::Greater => ordering == Some(Ordering::Greater),
        Comparator::GreaterOrEqual => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
    }
}

fn between(value: Option<Cow<'_, Value>>, low: Option<Cow<'_, Value>>, high: Option<Cow<'_, Value>>) -> bool {
    let (Some(value), Some(low), Some(high)) = (value, low, high) else {
        return false;
    };
    let above_low = matches!(order(&low, &value), Some(Ordering::Less | Ordering::Equal));
    let below_high = matches!(order(&value, &high), Some(Ordering::Less | Ordering::Equal));
    above_low && below_high
}

/// A string's or a binary's prefix, of the same type.
pub(crate) fn begins_with(value: &Value, prefix: &Value) -> bool {
    match (value, prefix) {
        (Value::S(value), Value::S(prefix)) => value.starts_with(prefix.as_str()),
        (Value::B(value), Value::B(prefix)) => value.starts_with(prefix),
        _ => false,
    }
}

/// A substring of a string, a run of bytes in a binary, a member of a set
/// of its type, or an element of a list.
pub(crate) fn contains(value: &Value, member: &Value) -> bool {
    match (value, member) {
        (Value::S(text), Value::S(part)) => text.contains(part.as_str()),
        (Value::B(bytes), Value::B(part)) => part.is_empty() || bytes.windows(part.len()).any(|window| window == part),
        (Value::Ss(members), Value::S(member)) => members.binary_search(member).is_ok(),
        (Value::Ns(members), Value::N(member)) => members.binary_search(member).is_ok(),
        (Value::Bs(members), Value::B(member)) => members.binary_search(member).is_ok(),
        (Value::L(elements), member) => elements.contains(member),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::names::Placeholders;
    use crate::test_values::{n, s};
    use std::collections::BTreeMap;

    fn item() -> Item {
        let dims: crate::value::Map = [("x".to_owned(), n("1")), ("y".to_owned(), s("why"))].into();
        [
            ("name".to_owned(), s("Widget")),
            ("price".to_owned(), n("52.5")),
            ("code".to_owned(), Value::B(vec![0x01, 0xff, 0x10])),
            ("tags".to_owned(), Value::string_set(vec!["red".into(), "blue".into()])),
            (
                "sizes".to_owned(),
                Value::number_set(vec![Number::from_i64(8), Number::from_i64(10)]),
            ),
            (
                "parts".to_owned(),
                Value::L(vec![s("a"), n("2"), Value::M(dims.clone())]),
            ),
            ("dims".to_owned(), Value::M(dims)),
            ("flag".to_owned(), Value::Bool(true)),
            ("nothing".to_owned(), Value::Null),
        ]
        .into()
    }

    /// Parses a filter with `:a`, `:b`, `:c` bound to the given values and
    /// evaluates it on the sample item.
    fn holds_on_item(source: &str, values: &[Value]) -> bool {
        let values: BTreeMap<String, Value> = values
            .iter()
            .zip([":a", ":b", ":c"])
            .map(|(value, key)| (key.to_owned(), value.clone()))
            .collect();
        let values = (!values.is_empty()).then_some(values);
        let names: BTreeMap<String, String> = [("#n".to_owned(), "name".to_owned())].into();
        let mut placeholders = Placeholders::new(Some(names), values).unwrap_or_default();
        let condition = Condition::parse_filter(source, &mut placeholders).unwrap_or_else(|e| panic!("{source}: {e}"));
        condition
            .evaluate(Some(&item()))
            .unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    #[test]
    fn comparisons_compare_values_of_one_type() {
        assert!(holds_on_item("price = :a", &[n("52.50")]));
        assert!(holds_on_item("price < :a", &[n("52.6")]));
        assert!(!holds_on_item("price < :a", &[s("60")]));
        assert!(!holds_on_item("price >= :a", &[s("1")]));
        assert!(holds_on_item("#n > :a", &[s("A")]));
        assert!(!holds_on_item("#n > :a", &[s("a")]));
        assert!(holds_on_item("code > :a", &[Value::B(vec![0x01, 0x80])]));
        assert!(holds_on_item(
            "tags = :a",
            &[Value::string_set(vec!["blue".into(), "red".into()])]
        ));
        assert!(holds_on_item(
            "dims = :a",
            &[Value::M(
                [("y".to_owned(), s("why")), ("x".to_owned(), n("1.0"))].into()
            )]
        ));
        assert!(!holds_on_item("parts = :a", &[Value::L(vec![n("2"), s("a")])]));
    }

    #[test]
    fn a_missing_attribute_equals_nothing_and_differs_from_everything() {
        assert!(!holds_on_item("absent = :a", &[n("1")]));
        assert!(holds_on_item("absent <> :a", &[n("1")]));
        assert!(!holds_on_item("absent < :a", &[n("1")]));
        assert!(holds_on_item("price <> :a", &[s("52.5")]));
        assert!(!holds_on_item("absent IN (:a, :b)", &[n("1"), n("2")]));
        assert!(!holds_on_item("absent BETWEEN :a AND :b", &[n("1"), n("2")]));
        let mut none = Placeholders::default();
        let condition = Condition::parse_condition("attribute_not_exists(pk)", &mut none);
        assert_eq!(condition.and_then(|c| c.evaluate(None)), Ok(true));
    }

    #[test]
    fn between_and_in() {
        assert!(holds_on_item("price BETWEEN :a AND :b", &[n("52.5"), n("60")]));
        assert!(!holds_on_item("price BETWEEN :a AND :b", &[n("53"), n("60")]));
        assert!(!holds_on_item("price BETWEEN :a AND :b", &[s("1"), s("9")]));
        assert!(holds_on_item("#n BETWEEN :a AND :b", &[s("W"), s("X")]));
        assert!(holds_on_item("price IN (:a, :b)", &[s("52.5"), n("52.5")]));
        assert!(!holds_on_item("price IN (:a, #n)", &[n("1")]));
        assert!(holds_on_item("dims.y IN (parts[0], :a)", &[s("why")]));
        assert!(!holds_on_item("dims.y IN (parts[0], :a)", &[s("what")]));
    }

    #[test]
    fn functions_on_the_item() {
        assert!(holds_on_item(
            "attribute_exists(dims.x) AND attribute_not_exists(dims.z)",
            &[]
        ));
        assert!(holds_on_item(
            "attribute_exists(nothing) AND attribute_exists(parts[2].y)",
            &[]
        ));
        assert!(!holds_on_item("attribute_exists(parts[3])", &[]));
        assert!(holds_on_item(
            "attribute_type(tags, :a) AND attribute_type(nothing, :b)",
            &[s("SS"), s("NULL")]
        ));
        assert!(!holds_on_item("attribute_type(absent, :a)", &[s("S")]));
        assert!(holds_on_item(
            "begins_with(#n, :a) AND begins_with(code, :b)",
            &[s("Wid"), Value::B(vec![1])]
        ));
        assert!(!holds_on_item("begins_with(#n, :a)", &[Value::B(b"Wid".to_vec())]));
        assert!(holds_on_item(
            "contains(#n, :a) AND contains(code, :b)",
            &[s("dge"), Value::B(vec![0xff, 0x10])]
        ));
        assert!(holds_on_item(
            "contains(tags, :a) AND contains(sizes, :b)",
            &[s("red"), n("10.0")]
        ));
        assert!(!holds_on_item("contains(tags, :a)", &[s("re")]));
        assert!(holds_on_item(
            "contains(parts, :a) AND contains(parts, :b)",
            &[n("2"), s("a")]
        ));
        assert!(!holds_on_item("contains(price, :a)", &[n("5")]));
    }

    #[test]
    fn sizes_of_each_type() {
        for (source, size) in [
            ("size(#n) = :a", "6"),
            ("size(code) = :a", "3"),
            ("size(tags) = :a", "2"),
            ("size(parts) = :a", "3"),
            ("size(dims) = :a", "2"),
            ("size(parts[2]) = :a", "2"),
        ] {
            assert!(holds_on_item(source, &[n(size)]), "{source}");
        }
        assert!(holds_on_item("size(:a) = :b", &[s("héllo"), n("6")]));
        assert!(!holds_on_item("size(price) >= :a", &[n("0")]));
        assert!(!holds_on_item("size(absent) >= :a", &[n("0")]));
        assert!(!holds_on_item("size(flag) < :a", &[n("100")]));
    }

    #[test]
    fn logic_and_precedence() {
        assert!(holds_on_item(
            "price = :a OR price = :b AND flag = :c",
            &[n("52.5"), n("0"), Value::Bool(false)]
        ));
        assert!(!holds_on_item(
            "(price = :a OR price = :b) AND flag = :c",
            &[n("52.5"), n("0"), Value::Bool(false)]
        ));
        assert!(holds_on_item("NOT NOT attribute_exists(flag)", &[]));
        assert!(!holds_on_item(
            "NOT attribute_exists(flag) AND attribute_exists(flag)",
            &[]
        ));
    }
}

//! Shorthands the unit tests write values and placeholders with.

use crate::expr::Placeholders;
use crate::number::Number;
use crate::value::Value;
use std::collections::BTreeMap;

/// A number from its literal; a literal the test got wrong fails the test.
pub fn number(text: &str) -> Number {
    Number::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"))
}

pub fn n(text: &str) -> Value {
    Value::N(number(text))
}

pub fn s(text: &str) -> Value {
    Value::S(text.to_owned())
}

/// ExpressionAttributeNames and ExpressionAttributeValues as a request
/// would carry them (an empty list: the parameter left out).
pub fn placeholders(names: &[(&str, &str)], values: &[(&str, Value)]) -> Placeholders {
    let names: BTreeMap<String, String> = names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let values: BTreeMap<String, Value> = values.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    Placeholders::new(
        (!names.is_empty()).then_some(names),
        (!values.is_empty()).then_some(values),
    )
    .unwrap_or_else(|error| panic!("placeholders refused: {}", error.message))
}

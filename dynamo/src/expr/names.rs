//! Expression attribute names (`#name`) and values (`:value`): the maps a
//! request defines, their validation, and which of them the request's
//! expressions used. A request may carry several expressions; they are all
//! parsed against one [`Placeholders`], then [`Placeholders::check_all_used`]
//! refuses any name or value none of them used, as DynamoDB does.

use super::{ExpressionKind, PLACEHOLDER_BYTES_MAX, invalid};
use crate::error::ApiError;
use crate::limits::EXPRESSION_SUBSTITUTIONS_BYTES_MAX;
use crate::size::value_bytes;
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A request's expression attribute names and values, and which were used
/// (`Placeholders::default()` for a request that has neither).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placeholders {
    names: BTreeMap<String, String>,
    values: BTreeMap<String, Value>,
    names_used: BTreeSet<String>,
    values_used: BTreeSet<String>,
}

impl Placeholders {
    /// The request's `ExpressionAttributeNames` and
    /// `ExpressionAttributeValues` (`None` when the request has none),
    /// checked: a map given must not be empty, and its keys must be
    /// `#`/`:` then letters, digits or underscores, at most 255 bytes.
    pub fn new(
        names: Option<BTreeMap<String, String>>,
        values: Option<BTreeMap<String, Value>>,
    ) -> Result<Placeholders, ApiError> {
        let names = names
            .map(|names| check_map(names, '#', "ExpressionAttributeNames"))
            .transpose()?;
        let values = values
            .map(|values| check_map(values, ':', "ExpressionAttributeValues"))
            .transpose()?;
        if let Some((key, _)) = names.iter().flatten().find(|(_, name)| name.is_empty()) {
            return Err(ApiError::validation(format!(
                "ExpressionAttributeNames contains invalid value: Empty attribute name for key {key}"
            )));
        }
        let placeholders = Placeholders {
            names: names.unwrap_or_default(),
            values: values.unwrap_or_default(),
            ..Placeholders::default()
        };
        if placeholders.substitution_bytes() > EXPRESSION_SUBSTITUTIONS_BYTES_MAX {
            return Err(ApiError::validation(format!(
                "ExpressionAttributeNames and ExpressionAttributeValues together exceed the maximum size of \
                 {EXPRESSION_SUBSTITUTIONS_BYTES_MAX} bytes"
            )));
        }
        Ok(placeholders)
    }

    /// The bytes of all names and values, keys included.
    fn substitution_bytes(&self) -> usize {
        let names = self
            .names
            .iter()
            .map(|(key, name)| key.len().saturating_add(name.len()));
        let values = self
            .values
            .iter()
            .map(|(key, value)| key.len().saturating_add(value_bytes(value)));
        names.chain(values).fold(0, usize::saturating_add)
    }

    /// The attribute name `#key` stands for, now counted as used.
    pub(crate) fn name(&mut self, key: &str, kind: ExpressionKind) -> Result<String, ApiError> {
        let Some(name) = self.names.get(key) else {
            return Err(invalid(
                kind,
                format!("An expression attribute name used in the document path is not defined; attribute name: {key}"),
            ));
        };
        if !self.names_used.contains(key) {
            self.names_used.insert(key.to_owned());
        }
        Ok(name.clone())
    }

    /// The value `:key` stands for, now counted as used.
    pub(crate) fn value(&mut self, key: &str, kind: ExpressionKind) -> Result<Value, ApiError> {
        let Some(value) = self.values.get(key) else {
            return Err(invalid(
                kind,
                format!("An expression attribute value used in expression is not defined; attribute value: {key}"),
            ));
        };
        if !self.values_used.contains(key) {
            self.values_used.insert(key.to_owned());
        }
        Ok(value.clone())
    }

    /// Refuses names, then values, that no expression used, listing them all.
    pub fn check_all_used(&self) -> Result<(), ApiError> {
        let unused_names = unused(self.names.keys(), &self.names_used);
        if !unused_names.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{unused_names}}}"
            )));
        }
        let unused_values = unused(self.values.keys(), &self.values_used);
        if !unused_values.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{unused_values}}}"
            )));
        }
        Ok(())
    }
}

/// Refuses an empty map, or a key that is no placeholder.
fn check_map<V>(map: BTreeMap<String, V>, sigil: char, parameter: &str) -> Result<BTreeMap<String, V>, ApiError> {
    if map.is_empty() {
        return Err(ApiError::validation(format!("{parameter} must not be empty")));
    }
    if let Some(key) = map.keys().find(|key| !is_placeholder(key, sigil)) {
        let shown: String = key.chars().take(PLACEHOLDER_BYTES_MAX).collect();
        return Err(ApiError::validation(format!(
            "{parameter} contains invalid key: Syntax error; key: \"{shown}\""
        )));
    }
    Ok(map)
}

fn is_placeholder(key: &str, sigil: char) -> bool {
    let Some(rest) = key.strip_prefix(sigil) else {
        return false;
    };
    key.len() <= PLACEHOLDER_BYTES_MAX
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn unused<'a>(keys: impl Iterator<Item = &'a String>, used: &BTreeSet<String>) -> String {
    keys.filter(|key| !used.contains(*key))
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The message for `ExpressionAttributeNames` in a request that has no
/// expression at all.
pub fn names_without_expressions_error() -> ApiError {
    ApiError::validation("ExpressionAttributeNames can only be specified when using expressions")
}

/// The message for `ExpressionAttributeValues` in a request none of whose
/// value-taking expressions is present; `expressions` names those the
/// operation has (`["UpdateExpression", "ConditionExpression"]`).
pub fn values_without_expressions_error(expressions: &[&str]) -> ApiError {
    let listed = match expressions.split_last() {
        None => String::new(),
        Some((last, [])) => format!("{last} is null"),
        Some((last, rest)) => format!("{} and {last} are null", rest.join(", ")),
    };
    ApiError::validation(format!(
        "ExpressionAttributeValues can only be specified when using expressions: {listed}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn names(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    fn values(keys: &[&str]) -> Option<BTreeMap<String, Value>> {
        Some(keys.iter().map(|k| ((*k).to_owned(), Value::S("x".into()))).collect())
    }

    fn message<T: std::fmt::Debug>(result: Result<T, ApiError>) -> String {
        match result {
            Ok(value) => panic!("accepted: {value:?}"),
            Err(error) => error.message,
        }
    }

    #[test]
    fn maps_must_hold_placeholders() {
        assert_eq!(
            message(Placeholders::new(names(&[]), values(&[]))),
            "ExpressionAttributeNames must not be empty"
        );
        assert_eq!(
            message(Placeholders::new(None, values(&[]))),
            "ExpressionAttributeValues must not be empty"
        );
        assert_eq!(
            message(Placeholders::new(names(&[("a", "a")]), None)),
            "ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\""
        );
        assert_eq!(
            message(Placeholders::new(None, values(&[":b", "b"]))),
            "ExpressionAttributeValues contains invalid key: Syntax error; key: \"b\""
        );
        assert_eq!(
            message(Placeholders::new(names(&[("#", "a")]), None)),
            "ExpressionAttributeNames contains invalid key: Syntax error; key: \"#\""
        );
        let long = format!("#{}", "n".repeat(PLACEHOLDER_BYTES_MAX));
        assert!(
            message(Placeholders::new(names(&[(&long, "a")]), None))
                .starts_with("ExpressionAttributeNames contains invalid key")
        );
        let longest = format!("#{}", "n".repeat(PLACEHOLDER_BYTES_MAX - 1));
        assert!(Placeholders::new(names(&[(&longest, "a"), ("#_1", "b")]), None).is_ok());
        assert_eq!(
            message(Placeholders::new(names(&[("#n", "")]), None)),
            "ExpressionAttributeNames contains invalid value: Empty attribute name for key #n"
        );
    }

    #[test]
    fn substitutions_are_bounded_in_total() {
        let half = EXPRESSION_SUBSTITUTIONS_BYTES_MAX / 2;
        let big = |key: &str| ((*key).to_owned(), Value::S("x".repeat(half)));
        let fits: BTreeMap<String, Value> = [big(":a")].into();
        assert!(Placeholders::new(None, Some(fits)).is_ok());
        let too_big: BTreeMap<String, Value> = [big(":a"), big(":b")].into();
        assert_eq!(
            message(Placeholders::new(None, Some(too_big))),
            "ExpressionAttributeNames and ExpressionAttributeValues together exceed the maximum size of 2097152 bytes"
        );
    }

    #[test]
    fn lookups_record_use_and_refuse_the_undefined() {
        let Ok(mut placeholders) = Placeholders::new(names(&[("#a", "alpha"), ("#b", "beta")]), values(&[":a", ":c"]))
        else {
            panic!("placeholders refused");
        };
        assert_eq!(placeholders.name("#a", ExpressionKind::Update), Ok("alpha".to_owned()));
        assert_eq!(
            placeholders.value(":a", ExpressionKind::Filter),
            Ok(Value::S("x".into()))
        );
        assert_eq!(
            message(placeholders.name("#x", ExpressionKind::Filter)),
            "Invalid FilterExpression: An expression attribute name used in the document path is not defined; \
             attribute name: #x"
        );
        assert_eq!(
            message(placeholders.value(":x", ExpressionKind::Condition)),
            "Invalid ConditionExpression: An expression attribute value used in expression is not defined; \
             attribute value: :x"
        );
        assert_eq!(
            message(placeholders.check_all_used()),
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
        );
        assert!(placeholders.name("#b", ExpressionKind::Condition).is_ok());
        assert_eq!(
            message(placeholders.check_all_used()),
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:c}"
        );
        assert!(placeholders.value(":c", ExpressionKind::Condition).is_ok());
        assert_eq!(placeholders.check_all_used(), Ok(()));
    }

    #[test]
    fn unused_keys_are_all_listed() {
        let Ok(placeholders) = Placeholders::new(None, values(&[":a", ":c"])) else {
            panic!("placeholders refused");
        };
        assert_eq!(
            message(placeholders.check_all_used()),
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:a, :c}"
        );
    }

    #[test]
    fn placeholders_without_expressions() {
        assert_eq!(
            names_without_expressions_error().message,
            "ExpressionAttributeNames can only be specified when using expressions"
        );
        assert_eq!(
            values_without_expressions_error(&["UpdateExpression", "ConditionExpression"]).message,
            "ExpressionAttributeValues can only be specified when using expressions: UpdateExpression and \
             ConditionExpression are null"
        );
        assert_eq!(
            values_without_expressions_error(&["FilterExpression"]).message,
            "ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null"
        );
    }
}

//! Reading a request body's members: the JSON object, each member of the
//! type its operation declares (a member of another JSON type is a
//! `SerializationException`, as DynamoDB's reader answers), and the
//! constraint violations DynamoDB's front end reports together in one
//! `ValidationException` ("2 validation errors detected: ...").
//!
//! A member whose value is JSON `null` counts as absent, as in DynamoDB.

use crate::error::{ApiError, ErrorKind};
use crate::json::item_from_json;
use crate::limits::{TABLE_NAME_LEN_MAX, TABLE_NAME_LEN_MIN, TABLE_NAME_OR_ARN_LEN_MAX, is_table_name_byte};
use crate::value::Item;
use serde_json::{Map as JsonMap, Value as Json};
use std::collections::BTreeMap;

/// Violations one message lists at most; DynamoDB's front end stops there too.
const VIOLATIONS_LISTED_MAX: usize = 10;

/// The answer to a member of the wrong JSON type.
pub(crate) const WRONG_TYPE_MESSAGE: &str = "Unexpected field type";

/// The `TableName` of an item operation may carry the table's ARN; this is
/// what precedes the name in one.
const TABLE_ARN_MARKER: &str = ":table/";

pub(crate) fn serialization(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Serialization, message)
}

/// A request body: its top-level members.
#[derive(Debug)]
pub(crate) struct Body {
    members: JsonMap<String, Json>,
}

impl Body {
    /// Parses the body; anything but a JSON object is a `SerializationException`.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Body, ApiError> {
        let json: Json =
            serde_json::from_slice(bytes).map_err(|_| serialization("Start of list found where not expected"))?;
        Body::from_json(json)
    }

    pub(crate) fn from_json(json: Json) -> Result<Body, ApiError> {
        match json {
            Json::Object(members) => Ok(Body { members }),
            _ => Err(serialization("Start of list found where not expected")),
        }
    }

    pub(crate) fn object(members: &JsonMap<String, Json>) -> Body {
        Body {
            members: members.clone(),
        }
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The member, `None` when absent or `null`.
    pub(crate) fn get(&self, name: &str) -> Option<&Json> {
        self.members.get(name).filter(|value| !value.is_null())
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Json::String(text)) => Ok(Some(text)),
            Some(_) => Err(serialization(WRONG_TYPE_MESSAGE)),
        }
    }

    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Json::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(serialization(WRONG_TYPE_MESSAGE)),
        }
    }

    /// An integer member; a fraction or a number beyond `i64` is refused.
    pub(crate) fn integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Json::Number(number)) => number
                .as_i64()
                .map(Some)
                .ok_or_else(|| serialization(format!("NUMBER_VALUE cannot be converted to an integer: {number}"))),
            Some(_) => Err(serialization(WRONG_TYPE_MESSAGE)),
        }
    }

    pub(crate) fn members(&self, name: &str) -> Result<Option<&JsonMap<String, Json>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Json::Object(members)) => Ok(Some(members)),
            Some(_) => Err(serialization(WRONG_TYPE_MESSAGE)),
        }
    }

    pub(crate) fn list(&self, name: &str) -> Result<Option<&Vec<Json>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Json::Array(elements)) => Ok(Some(elements)),
            Some(_) => Err(serialization(WRONG_TYPE_MESSAGE)),
        }
    }

    /// A map of attribute values (`Item`, `Key`, `ExclusiveStartKey`...).
    pub(crate) fn item(&self, name: &str) -> Result<Option<Item>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(json @ Json::Object(_)) => item_from_json(json).map(Some),
            Some(_) => Err(serialization(WRONG_TYPE_MESSAGE)),
        }
    }

    /// A list of strings (`AttributesToGet`).
    pub(crate) fn strings(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let Some(elements) = self.list(name)? else {
            return Ok(None);
        };
        elements
            .iter()
            .map(|element| match element {
                Json::String(text) => Ok(text.clone()),
                _ => Err(serialization(WRONG_TYPE_MESSAGE)),
            })
            .collect::<Result<Vec<String>, ApiError>>()
            .map(Some)
    }

    /// A map of strings (`ExpressionAttributeNames`).
    pub(crate) fn string_map(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        let Some(members) = self.members(name)? else {
            return Ok(None);
        };
        members
            .iter()
            .map(|(key, value)| match value {
                Json::String(text) => Ok((key.clone(), text.clone())),
                _ => Err(serialization(WRONG_TYPE_MESSAGE)),
            })
            .collect::<Result<BTreeMap<String, String>, ApiError>>()
            .map(Some)
    }
}

/// The constraint violations of one request, reported together.
#[derive(Debug, Default)]
pub(crate) struct Violations {
    found: Vec<String>,
}

impl Violations {
    pub(crate) fn add(&mut self, value: Option<&str>, field: &str, constraint: &str) {
        if self.found.len() >= VIOLATIONS_LISTED_MAX {
            return;
        }
        let shown = match value {
            Some(text) => format!("'{text}'"),
            None => "null".to_owned(),
        };
        self.found.push(format!(
            "Value {shown} at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    pub(crate) fn null(&mut self, field: &str) {
        self.add(None, field, "Member must not be null");
    }

    /// Checks a table name's length and characters; an item operation's
    /// may instead be the table's ARN (`arn_allowed`).
    pub(crate) fn table_name(&mut self, name: Option<&str>, field: &str, arn_allowed: bool) {
        let Some(name) = name else {
            self.null(field);
            return;
        };
        let arn = arn_allowed && is_table_arn(name);
        let length_max = if arn {
            TABLE_NAME_OR_ARN_LEN_MAX
        } else {
            TABLE_NAME_LEN_MAX
        };
        if name.chars().count() < TABLE_NAME_LEN_MIN {
            self.add(
                Some(name),
                field,
                &format!("Member must have length greater than or equal to {TABLE_NAME_LEN_MIN}"),
            );
        }
        if name.chars().count() > length_max {
            self.add(
                Some(name),
                field,
                &format!("Member must have length less than or equal to {length_max}"),
            );
        }
        let named = if arn { table_name_of(name) } else { name };
        if !named.bytes().all(is_table_name_byte) {
            self.add(
                Some(name),
                field,
                "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
            );
        }
    }

    /// Checks an integer member's minimum (and maximum, when given).
    pub(crate) fn range(&mut self, value: Option<i64>, field: &str, min: i64, max: Option<i64>) {
        let Some(value) = value else {
            return;
        };
        let text = value.to_string();
        if value < min {
            self.add(
                Some(&text),
                field,
                &format!("Member must have value greater than or equal to {min}"),
            );
        }
        if let Some(max) = max
            && value > max
        {
            self.add(
                Some(&text),
                field,
                &format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    /// Checks a member against its enumeration.
    pub(crate) fn one_of(&mut self, value: Option<&str>, field: &str, allowed: &[&str]) {
        if let Some(value) = value
            && !allowed.contains(&value)
        {
            let set = allowed.join(", ");
            self.add(
                Some(value),
                field,
                &format!("Member must satisfy enum value set: [{set}]"),
            );
        }
    }

    /// The `ValidationException` listing every violation, if any.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        let count = self.found.len();
        if count == 0 {
            return Ok(());
        }
        let plural = if count == 1 { "error" } else { "errors" };
        Err(ApiError::validation(format!(
            "{count} validation {plural} detected: {}",
            self.found.join("; ")
        )))
    }
}

/// Whether the text is a table ARN (`arn:...:table/NAME`).
fn is_table_arn(text: &str) -> bool {
    text.starts_with("arn:") && text.contains(TABLE_ARN_MARKER)
}

/// The table name of an item operation's `TableName`, which may be an ARN.
pub(crate) fn table_name_of(text: &str) -> &str {
    if is_table_arn(text) {
        return text.rsplit(TABLE_ARN_MARKER).next().unwrap_or(text);
    }
    text
}

/// The `TableName` member of an item operation (name or ARN), checked.
pub(crate) fn item_table_name(body: &Body) -> Result<String, ApiError> {
    let mut violations = Violations::default();
    let name = table_name(body, &mut violations, true)?;
    violations.finish()?;
    Ok(name)
}

/// The `TableName` member of a table operation, checked: the name (of
/// the ARN when `arn_allowed`).
pub(crate) fn table_name(body: &Body, violations: &mut Violations, arn_allowed: bool) -> Result<String, ApiError> {
    let name = body.string("TableName")?;
    violations.table_name(name, "tableName", arn_allowed);
    let name = name.unwrap_or_default();
    Ok(if arn_allowed { table_name_of(name) } else { name }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_must_be_an_object() {
        assert_eq!(Body::parse(b"[1]").unwrap_err().kind, ErrorKind::Serialization);
        assert_eq!(Body::parse(b"{").unwrap_err().kind, ErrorKind::Serialization);
        assert!(Body::parse(b"{}").is_ok());
    }

    #[test]
    fn null_members_are_absent_and_wrong_types_are_serialization_errors() {
        let body = Body::parse(br#"{"A": null, "B": 3, "C": "x"}"#).unwrap();
        assert_eq!(body.string("A").unwrap(), None);
        assert_eq!(body.string("B").unwrap_err().kind, ErrorKind::Serialization);
        assert_eq!(body.integer("C").unwrap_err().kind, ErrorKind::Serialization);
        assert_eq!(body.integer("B").unwrap(), Some(3));
    }

    #[test]
    fn violations_are_counted_and_joined() {
        let mut violations = Violations::default();
        violations.table_name(Some("a!"), "tableName", false);
        assert_eq!(
            violations.finish().unwrap_err().message,
            "2 validation errors detected: Value 'a!' at 'tableName' failed to satisfy constraint: Member must have \
             length greater than or equal to 3; Value 'a!' at 'tableName' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        );
        let mut violations = Violations::default();
        violations.null("tableName");
        assert_eq!(
            violations.finish().unwrap_err().message,
            "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be \
             null"
        );
    }

    #[test]
    fn an_arn_names_its_table() {
        assert_eq!(
            table_name_of("arn:aws:dynamodb:ddblocal:000000000000:table/Music"),
            "Music"
        );
        assert_eq!(table_name_of("Music"), "Music");
    }
}

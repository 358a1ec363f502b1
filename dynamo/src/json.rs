//! Attribute values and items in the wire JSON of the DynamoDB API
//! (`{"S": "x"}`, `{"N": "1"}`, `{"B": "<base64>"}`, `{"BOOL": true}`,
//! `{"NULL": true}`, `{"L": [...]}`, `{"M": {...}}`, `{"SS": [...]}`,
//! `{"NS": [...]}`, `{"BS": [...]}`) and back, validated as DynamoDB
//! validates them and refused with its messages.
//!
//! DynamoDB reads a body in two stages, and so does this module: a value of
//! the wrong JSON shape (a number where a string belongs, bad base64) is a
//! `SerializationException` and wins over any `ValidationException` (an
//! empty set, a bad number, two types in one value), wherever either lies.
//! Decoding therefore walks the whole value, stops at the first shape error
//! and otherwise answers the first validation error it met. Members with an
//! unknown type name, and members whose value is `null`, count as absent,
//! as in DynamoDB's reader. Empty strings and binaries are valid values
//! (since 2020); only keys may not be empty, which [`crate::key`] checks.
//!
//! What a hostile body can cost: the body is already parsed (the caller's
//! `serde_json` refuses JSON nested deeper than 128); this module descends
//! at most [`NESTING_DEPTH_MAX`] levels of lists and maps before it answers
//! DynamoDB's nesting error, so its recursion is bounded; and one call
//! decodes at most [`ELEMENTS_PER_DECODE_MAX`] values and set members, more
//! than any 400 KB item can hold, so its work and its output are bounded
//! whatever the body's size.

use crate::error::{ApiError, ErrorKind};
use crate::limits::{ATTRIBUTE_NAME_BYTES_MAX, ITEM_BYTES_MAX, NESTING_DEPTH_MAX};
use crate::number::{Number, NumberError};
use crate::size::{ITEM_TOO_LARGE_MESSAGE, NESTING_MESSAGE};
use crate::value::{Item, Kind, Map, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value as Json;

/// Values and set members one call decodes at most. Every element of a
/// stored item costs it at least one byte (a list or map element its
/// overhead byte, a map entry also its name, distinct set members their
/// distinct bytes), so no item within [`ITEM_BYTES_MAX`] comes near this.
pub const ELEMENTS_PER_DECODE_MAX: usize = 2 * ITEM_BYTES_MAX;

const EMPTY_VALUE: &str = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
const MULTIPLE_TYPES: &str =
    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";
const NULL_NOT_TRUE: &str =
    "One or more parameter values were invalid: Null attribute value types must have the value of true";
// DynamoDB's set messages, their grammar and double spaces included.
const EMPTY_STRING_SET: &str = "One or more parameter values were invalid: An string set  may not be empty";
const EMPTY_NUMBER_SET: &str = "One or more parameter values were invalid: An number set  may not be empty";
const EMPTY_BINARY_SET: &str = "One or more parameter values were invalid: Binary sets should not be empty";
const NUMBER_SET_DUPLICATES: &str = "Input collection contains duplicates";

// Shape errors, in the words of DynamoDB's reader (its Java types showing).
const VALUE_NOT_OBJECT: &str = "Unexpected value type in payload";
const VALUE_IS_ARRAY: &str = "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue";
const MAP_NOT_OBJECT: &str = "Unexpected field type";
const MAP_IS_ARRAY: &str =
    "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>";
const LIST_NOT_ARRAY: &str = "Unexpected field type";
const OBJECT_NOT_EXPECTED: &str = "Start of structure or map found where not expected";
const STRING_IS_ARRAY: &str = "Unrecognized collection type class java.lang.String";
const BLOB_NOT_STRING: &str = "only base-64-encoded strings are convertible to bytes";
const BLOB_IS_ARRAY: &str = "Unrecognized collection type class java.nio.ByteBuffer";
// "dectected" is DynamoDB's spelling.
const BLOB_BAD_BASE64: &str = "Invalid last non-pad Base64 character dectected";
const BOOLEAN_IS_STRING: &str = "Unexpected token received from parser";
const BOOLEAN_IS_ARRAY: &str = "Unrecognized collection type class java.lang.Boolean";

/// An attribute value from its wire JSON.
pub fn value_from_json(json: &Json) -> Result<Value, ApiError> {
    let mut decoder = Decoder::new();
    let value = decoder.attribute_value(json, 1)?;
    decoder.finish(value)
}

/// A map of attribute values from its wire JSON: an `Item`, a `Key`, an
/// `ExclusiveStartKey`, `ExpressionAttributeValues`. `null` reads as an
/// empty map (the parameter absent); whether it may be absent is the
/// caller's to say.
pub fn item_from_json(json: &Json) -> Result<Item, ApiError> {
    let mut decoder = Decoder::new();
    let item = decoder.attributes(json, 1)?;
    decoder.finish(item)
}

/// An attribute value's wire JSON: numbers in canonical form, binaries in
/// standard base64 with padding. It recurses as deep as the value nests,
/// which every way in ([`item_from_json`], [`crate::codec::decode`],
/// [`crate::size::check_item`] for computed items) bounds at
/// [`NESTING_DEPTH_MAX`].
pub fn value_to_json(value: &Value) -> Json {
    let (descriptor, body) = match value {
        Value::S(text) => ("S", Json::String(text.clone())),
        Value::N(number) => ("N", Json::String(number.to_string())),
        Value::B(bytes) => ("B", Json::String(base64(bytes))),
        Value::Bool(flag) => ("BOOL", Json::Bool(*flag)),
        Value::Null => ("NULL", Json::Bool(true)),
        Value::L(values) => ("L", Json::Array(values.iter().map(value_to_json).collect())),
        Value::M(entries) => ("M", item_to_json(entries)),
        Value::Ss(members) => ("SS", members.iter().cloned().map(Json::String).collect()),
        Value::Ns(members) => ("NS", members.iter().map(|n| Json::String(n.to_string())).collect()),
        Value::Bs(members) => ("BS", members.iter().map(|b| Json::String(base64(b))).collect()),
    };
    let mut object = serde_json::Map::new();
    object.insert(descriptor.to_string(), body);
    Json::Object(object)
}

/// A map of attribute values' wire JSON (an item, a key).
pub fn item_to_json(item: &Item) -> Json {
    Json::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), value_to_json(value)))
            .collect(),
    )
}

fn serialization(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Serialization, message)
}

/// A walk over one body part: shape errors end it at once (`Err`); the
/// first validation error is kept while the walk goes on looking for shape
/// errors, and answered at the end.
struct Decoder {
    first_invalid: Option<ApiError>,
    elements_left: usize,
}

impl Decoder {
    fn new() -> Decoder {
        Decoder {
            first_invalid: None,
            elements_left: ELEMENTS_PER_DECODE_MAX,
        }
    }

    fn finish<T>(self, decoded: T) -> Result<T, ApiError> {
        match self.first_invalid {
            Some(error) => Err(error),
            None => Ok(decoded),
        }
    }

    fn invalid(&mut self, message: impl Into<String>) {
        if self.first_invalid.is_none() {
            self.first_invalid = Some(ApiError::validation(message));
        }
    }

    /// Counts `count` elements against the budget; past it the body holds
    /// more than any item may, and the walk ends.
    fn spend(&mut self, count: usize) -> Result<(), ApiError> {
        match self.elements_left.checked_sub(count) {
            Some(left) => {
                self.elements_left = left;
                Ok(())
            }
            None => Err(ApiError::validation(ITEM_TOO_LARGE_MESSAGE)),
        }
    }

    /// A map of attribute values whose values sit at `depth`.
    fn attributes(&mut self, json: &Json, depth: usize) -> Result<Map, ApiError> {
        let entries = match json {
            Json::Object(entries) => entries,
            Json::Null => return Ok(Map::new()),
            Json::Array(_) => return Err(serialization(MAP_IS_ARRAY)),
            _ => return Err(serialization(MAP_NOT_OBJECT)),
        };
        let mut map = Map::new();
        for (name, value) in entries {
            if name.len() > ATTRIBUTE_NAME_BYTES_MAX {
                self.invalid(format!(
                    "One or more parameter values were invalid: An attribute name is longer than \
                     {ATTRIBUTE_NAME_BYTES_MAX} bytes"
                ));
            }
            let value = self.attribute_value(value, depth)?;
            map.insert(name.clone(), value);
        }
        Ok(map)
    }

    /// One attribute value at `depth` (1 for an attribute's own value). On
    /// a validation error the value returned is a placeholder, never seen.
    fn attribute_value(&mut self, json: &Json, depth: usize) -> Result<Value, ApiError> {
        self.spend(1)?;
        let members = match json {
            Json::Object(members) => members,
            Json::Null => {
                self.invalid(EMPTY_VALUE);
                return Ok(Value::Null);
            }
            Json::Array(_) => return Err(serialization(VALUE_IS_ARRAY)),
            _ => return Err(serialization(VALUE_NOT_OBJECT)),
        };
        if depth > NESTING_DEPTH_MAX {
            self.invalid(NESTING_MESSAGE);
            return Ok(Value::Null);
        }
        let mut first: Option<Value> = None;
        let mut present = 0usize;
        for (descriptor, member) in members {
            let Some(kind) = Kind::from_descriptor(descriptor) else {
                continue;
            };
            if member.is_null() {
                continue;
            }
            let value = self.member(kind, member, depth)?;
            present += 1;
            first.get_or_insert(value);
        }
        match present {
            0 => self.invalid(EMPTY_VALUE),
            1 => {}
            _ => self.invalid(MULTIPLE_TYPES),
        }
        Ok(first.unwrap_or(Value::Null))
    }

    /// The member of type `kind` of a value at `depth`.
    fn member(&mut self, kind: Kind, json: &Json, depth: usize) -> Result<Value, ApiError> {
        Ok(match kind {
            Kind::S => Value::S(string_member(json)?.to_owned()),
            Kind::N => Value::N(self.number(string_member(json)?)),
            Kind::B => Value::B(blob_member(json)?),
            Kind::Bool => Value::Bool(boolean_member(json)?),
            Kind::Null => {
                if !boolean_member(json)? {
                    self.invalid(NULL_NOT_TRUE);
                }
                Value::Null
            }
            Kind::L => {
                let elements = list_member(json)?;
                let values: Result<Vec<Value>, ApiError> =
                    elements.iter().map(|e| self.attribute_value(e, depth + 1)).collect();
                Value::L(values?)
            }
            Kind::M => Value::M(self.attributes(json, depth + 1)?),
            Kind::Ss => self.string_set(list_member(json)?)?,
            Kind::Ns => self.number_set(list_member(json)?)?,
            Kind::Bs => self.binary_set(list_member(json)?)?,
        })
    }

    /// A number's text; on an error, zero as the placeholder.
    fn number(&mut self, text: &str) -> Number {
        Number::parse(text).unwrap_or_else(|error| {
            self.invalid(number_message(error, text));
            Number::ZERO
        })
    }

    fn string_set(&mut self, elements: &[Json]) -> Result<Value, ApiError> {
        self.spend(elements.len())?;
        let texts = elements.iter().map(string_member).collect::<Result<Vec<&str>, _>>()?;
        if texts.is_empty() {
            self.invalid(EMPTY_STRING_SET);
        }
        let (members, had_duplicates) = sorted_unique(texts.iter().map(|t| t.to_string()).collect());
        if had_duplicates {
            self.invalid(format!(
                "One or more parameter values were invalid: Input collection [{}] contains duplicates.",
                texts.join(", ")
            ));
        }
        Ok(Value::Ss(members))
    }

    fn number_set(&mut self, elements: &[Json]) -> Result<Value, ApiError> {
        self.spend(elements.len())?;
        let texts = elements.iter().map(string_member).collect::<Result<Vec<&str>, _>>()?;
        if texts.is_empty() {
            self.invalid(EMPTY_NUMBER_SET);
        }
        let numbers: Vec<Number> = texts.iter().map(|text| self.number(text)).collect();
        let (members, had_duplicates) = sorted_unique(numbers);
        if had_duplicates {
            self.invalid(NUMBER_SET_DUPLICATES);
        }
        Ok(Value::Ns(members))
    }

    fn binary_set(&mut self, elements: &[Json]) -> Result<Value, ApiError> {
        self.spend(elements.len())?;
        let mut binaries = Vec::with_capacity(elements.len());
        for element in elements {
            binaries.push(blob_member(element)?);
        }
        if binaries.is_empty() {
            self.invalid(EMPTY_BINARY_SET);
        }
        let (members, had_duplicates) = sorted_unique(binaries);
        if had_duplicates {
            // The members as sent: canonical base64, one text per binary.
            let texts: Vec<&str> = elements.iter().filter_map(Json::as_str).collect();
            self.invalid(format!(
                "One or more parameter values were invalid: Input collection [{}]of type BS contains duplicates.",
                texts.join(", ")
            ));
        }
        Ok(Value::Bs(members))
    }
}

/// DynamoDB's message for a number's text that is not a stored number.
fn number_message(error: NumberError, text: &str) -> String {
    match error {
        NumberError::NotANumber if !text.is_empty() => format!("{}: {text}", error.message()),
        _ => error.message().to_string(),
    }
}

/// The items sorted, without repeats, and whether there were repeats.
fn sorted_unique<T: Ord>(mut items: Vec<T>) -> (Vec<T>, bool) {
    items.sort_unstable();
    let before = items.len();
    items.dedup();
    let had_duplicates = items.len() != before;
    (items, had_duplicates)
}

/// The text of an `S` or `N` member, or of a member of `SS` or `NS` (where
/// `null`, which has no place in a set, is a shape error).
fn string_member(json: &Json) -> Result<&str, ApiError> {
    match json {
        Json::String(text) => Ok(text),
        Json::Bool(true) => Err(serialization("TRUE_VALUE cannot be converted to String")),
        Json::Bool(false) => Err(serialization("FALSE_VALUE cannot be converted to String")),
        Json::Number(n) if n.is_f64() => Err(serialization("DECIMAL_VALUE cannot be converted to String")),
        Json::Number(_) => Err(serialization("NUMBER_VALUE cannot be converted to String")),
        Json::Array(_) => Err(serialization(STRING_IS_ARRAY)),
        Json::Object(_) => Err(serialization(OBJECT_NOT_EXPECTED)),
        Json::Null => Err(serialization(VALUE_NOT_OBJECT)),
    }
}

/// The bytes of a `B` member or a member of `BS`: strict standard base64.
fn blob_member(json: &Json) -> Result<Vec<u8>, ApiError> {
    let text = match json {
        Json::String(text) => text,
        Json::Array(_) => return Err(serialization(BLOB_IS_ARRAY)),
        Json::Object(_) => return Err(serialization(OBJECT_NOT_EXPECTED)),
        Json::Null => return Err(serialization(VALUE_NOT_OBJECT)),
        Json::Bool(_) | Json::Number(_) => return Err(serialization(BLOB_NOT_STRING)),
    };
    // DynamoDB's reader counts Java characters (UTF-16 units).
    let length = text.encode_utf16().count();
    if length % 4 != 0 {
        return Err(serialization(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {length}"
        )));
    }
    BASE64.decode(text).map_err(|_| serialization(BLOB_BAD_BASE64))
}

/// The flag of a `BOOL` or `NULL` member.
fn boolean_member(json: &Json) -> Result<bool, ApiError> {
    match json {
        Json::Bool(flag) => Ok(*flag),
        Json::String(_) => Err(serialization(BOOLEAN_IS_STRING)),
        Json::Number(n) if n.is_f64() => Err(serialization("DECIMAL_VALUE cannot be converted to Boolean")),
        Json::Number(_) => Err(serialization("NUMBER_VALUE cannot be converted to Boolean")),
        Json::Array(_) => Err(serialization(BOOLEAN_IS_ARRAY)),
        Json::Object(_) => Err(serialization(OBJECT_NOT_EXPECTED)),
        Json::Null => Err(serialization(VALUE_NOT_OBJECT)),
    }
}

/// The elements of an `L`, `SS`, `NS` or `BS` member.
fn list_member(json: &Json) -> Result<&[Json], ApiError> {
    match json {
        Json::Array(elements) => Ok(elements),
        Json::Object(_) => Err(serialization(OBJECT_NOT_EXPECTED)),
        _ => Err(serialization(LIST_NOT_ARRAY)),
    }
}

/// Standard base64 with padding, as DynamoDB's messages show binaries.
pub(crate) fn base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::number as n;
    use serde_json::json;

    fn value(json: Json) -> Value {
        value_from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn refused(json: Json) -> ApiError {
        match value_from_json(&json) {
            Ok(value) => panic!("{json} decoded to {value:?}"),
            Err(error) => error,
        }
    }

    fn invalid(json: Json) -> String {
        let error = refused(json);
        assert_eq!(error.kind, ErrorKind::Validation, "{}", error.message);
        error.message
    }

    fn malformed(json: Json) -> String {
        let error = refused(json);
        assert_eq!(error.kind, ErrorKind::Serialization, "{}", error.message);
        error.message
    }

    #[test]
    fn every_type_decodes() {
        assert_eq!(value(json!({"S": "héllo"})), Value::S("héllo".into()));
        assert_eq!(value(json!({"N": "-12.50"})), Value::N(n("-12.5")));
        assert_eq!(
            value(json!({"B": "+uwgVQA="})),
            Value::B(vec![0xfa, 0xec, 0x20, 0x55, 0])
        );
        assert_eq!(value(json!({"BOOL": false})), Value::Bool(false));
        assert_eq!(value(json!({"NULL": true})), Value::Null);
        assert_eq!(
            value(json!({"L": [{"S": "a"}, {"N": "1"}]})),
            Value::L(vec![Value::S("a".into()), Value::N(n("1"))])
        );
        let map: Map = [("k".to_string(), Value::Bool(true))].into_iter().collect();
        assert_eq!(value(json!({"M": {"k": {"BOOL": true}}})), Value::M(map));
        assert_eq!(
            value(json!({"SS": ["b", "a"]})),
            Value::Ss(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            value(json!({"NS": ["10", "-1", "2"]})),
            Value::Ns(vec![n("-1"), n("2"), n("10")])
        );
        assert_eq!(
            value(json!({"BS": ["Yg==", "YQ=="]})),
            Value::Bs(vec![b"a".to_vec(), b"b".to_vec()])
        );
    }

    #[test]
    fn empty_strings_and_binaries_are_values() {
        assert_eq!(value(json!({"S": ""})), Value::S(String::new()));
        assert_eq!(value(json!({"B": ""})), Value::B(vec![]));
        assert_eq!(
            value(json!({"SS": ["", "a"]})),
            Value::Ss(vec![String::new(), "a".into()])
        );
        assert_eq!(value(json!({"BS": [""]})), Value::Bs(vec![vec![]]));
    }

    #[test]
    fn encoding_is_canonical() {
        let decoded = value(json!({"L": [
            {"N": "1.50"}, {"N": "-0"}, {"N": "1e3"}, {"NS": ["3", "1.0", "2"]},
            {"B": "+uwgVQA="}, {"BS": ["Yg==", "YQ=="]}, {"NULL": true}, {"SS": ["z", "y"]}
        ]}));
        assert_eq!(
            value_to_json(&decoded),
            json!({"L": [
                {"N": "1.5"}, {"N": "0"}, {"N": "1000"}, {"NS": ["1", "2", "3"]},
                {"B": "+uwgVQA="}, {"BS": ["YQ==", "Yg=="]}, {"NULL": true}, {"SS": ["y", "z"]}
            ]})
        );
    }

    #[test]
    fn items_round_trip() {
        let wire = json!({
            "pk": {"S": "user#1"},
            "age": {"N": "42"},
            "tags": {"SS": ["a", "b"]},
            "doc": {"M": {"list": {"L": [{"BOOL": true}, {"NULL": true}, {"M": {}}]}}},
            "raw": {"BS": ["AAE=", "/w=="]}
        });
        let item = item_from_json(&wire).unwrap();
        assert_eq!(item.len(), 5);
        assert_eq!(item_to_json(&item), wire);
        assert_eq!(item_from_json(&Json::Null), Ok(Item::new()));
    }

    #[test]
    fn a_value_has_exactly_one_type() {
        for empty in [
            json!({}),
            json!({"X": "a"}),
            json!({"s": "a"}),
            json!({"S": null}),
            Json::Null,
        ] {
            assert_eq!(invalid(empty), EMPTY_VALUE);
        }
        assert_eq!(invalid(json!({"S": "a", "BOOL": true})), MULTIPLE_TYPES);
        // Unknown and null members are absent, not a second type.
        assert_eq!(value(json!({"S": "a", "X": 1, "N": null})), Value::S("a".into()));
        // Members are validated before the count: DynamoDB answers the number.
        assert_eq!(
            invalid(json!({"S": "a", "N": "b"})),
            "The parameter cannot be converted to a numeric value: b"
        );
    }

    #[test]
    fn null_must_be_true() {
        assert_eq!(
            invalid(json!({"NULL": false})),
            "One or more parameter values were invalid: Null attribute value types must have the value of true"
        );
    }

    #[test]
    fn empty_sets_are_refused_with_dynamodbs_words() {
        assert_eq!(
            invalid(json!({"SS": []})),
            "One or more parameter values were invalid: An string set  may not be empty"
        );
        assert_eq!(
            invalid(json!({"NS": []})),
            "One or more parameter values were invalid: An number set  may not be empty"
        );
        assert_eq!(
            invalid(json!({"BS": []})),
            "One or more parameter values were invalid: Binary sets should not be empty"
        );
    }

    #[test]
    fn duplicate_set_members_are_refused() {
        assert_eq!(
            invalid(json!({"SS": ["a", "b", "a"]})),
            "One or more parameter values were invalid: Input collection [a, b, a] contains duplicates."
        );
        // Numbers are duplicates by value, not by text.
        assert_eq!(
            invalid(json!({"NS": ["1", "1.0"]})),
            "Input collection contains duplicates"
        );
        assert_eq!(
            invalid(json!({"BS": ["Yg==", "Yg=="]})),
            "One or more parameter values were invalid: Input collection [Yg==, Yg==]of type BS contains duplicates."
        );
    }

    #[test]
    fn numbers_are_validated() {
        for (text, message) in [
            ("", "The parameter cannot be converted to a numeric value"),
            ("abc", "The parameter cannot be converted to a numeric value: abc"),
            (" 1", "The parameter cannot be converted to a numeric value:  1"),
            (
                "123456789012345678901234567890123456789",
                "Attempting to store more than 38 significant digits in a Number",
            ),
            (
                "1e126",
                "Number overflow. Attempting to store a number with magnitude larger than supported range",
            ),
            (
                "-1e-131",
                "Number underflow. Attempting to store a number with magnitude smaller than supported range",
            ),
        ] {
            assert_eq!(invalid(json!({"N": text})), message, "{text:?}");
        }
        assert_eq!(
            invalid(json!({"NS": ["1", "b"]})),
            "The parameter cannot be converted to a numeric value: b"
        );
    }

    #[test]
    fn binaries_must_be_strict_base64() {
        assert_eq!(
            malformed(json!({"B": "23456"})),
            "Base64 encoded length is expected a multiple of 4 bytes but found: 5"
        );
        for bad in ["=+/=", "+/+=", "Zg=a", "Zm9v!A==", "Zg\n="] {
            assert_eq!(malformed(json!({"B": bad})), BLOB_BAD_BASE64, "{bad:?}");
        }
        for not_text in [json!(true), json!(23), json!(34.5)] {
            assert_eq!(malformed(json!({"B": not_text})), BLOB_NOT_STRING);
        }
        assert_eq!(malformed(json!({"B": []})), BLOB_IS_ARRAY);
        assert_eq!(malformed(json!({"BS": ["Yg==", 5]})), BLOB_NOT_STRING);
    }

    #[test]
    fn members_of_the_wrong_json_type_are_serialization_errors() {
        for (json, message) in [
            (json!({"S": true}), "TRUE_VALUE cannot be converted to String"),
            (json!({"S": false}), "FALSE_VALUE cannot be converted to String"),
            (json!({"N": 23}), "NUMBER_VALUE cannot be converted to String"),
            (json!({"S": 34.56}), "DECIMAL_VALUE cannot be converted to String"),
            (json!({"S": ["a"]}), STRING_IS_ARRAY),
            (json!({"S": {}}), OBJECT_NOT_EXPECTED),
            (json!({"BOOL": "true"}), BOOLEAN_IS_STRING),
            (json!({"NULL": 1}), "NUMBER_VALUE cannot be converted to Boolean"),
            (json!({"BOOL": 1.5}), "DECIMAL_VALUE cannot be converted to Boolean"),
            (json!({"BOOL": []}), BOOLEAN_IS_ARRAY),
            (json!({"L": "a"}), LIST_NOT_ARRAY),
            (json!({"SS": {}}), OBJECT_NOT_EXPECTED),
            (json!({"M": []}), MAP_IS_ARRAY),
            (json!({"M": 5}), MAP_NOT_OBJECT),
            (json!({"L": [5]}), VALUE_NOT_OBJECT),
            (json!({"L": [[]]}), VALUE_IS_ARRAY),
            (json!({"SS": ["a", null]}), VALUE_NOT_OBJECT),
            (json!("a"), VALUE_NOT_OBJECT),
        ] {
            assert_eq!(malformed(json.clone()), message, "{json}");
        }
        let error = item_from_json(&json!([])).unwrap_err();
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::Serialization, MAP_IS_ARRAY)
        );
        let error = item_from_json(&json!({"a": 5})).unwrap_err();
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::Serialization, VALUE_NOT_OBJECT)
        );
    }

    #[test]
    fn a_shape_error_wins_over_a_validation_error_anywhere() {
        // "a" sorts first and is invalid; "b" is malformed.
        let error = item_from_json(&json!({"a": {"SS": []}, "b": {"L": [{"NULL": true}, {"S": 5}]}})).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Serialization);
        assert_eq!(error.message, "NUMBER_VALUE cannot be converted to String");
        // Without it, the first validation error is the answer.
        let error = item_from_json(&json!({"a": {"SS": []}, "b": {"NULL": false}})).unwrap_err();
        assert_eq!(error.message, EMPTY_STRING_SET);
    }

    /// A string wrapped in `maps` maps: the string sits at level `maps + 1`.
    fn wrapped(maps: usize) -> Json {
        (0..maps).fold(json!({"S": "leaf"}), |inner, _| json!({"M": {"a": inner}}))
    }

    #[test]
    fn nesting_is_limited_to_thirty_two_levels() {
        assert!(value_from_json(&wrapped(NESTING_DEPTH_MAX - 1)).is_ok());
        assert_eq!(invalid(wrapped(NESTING_DEPTH_MAX)), NESTING_MESSAGE);
        let in_lists = (0..NESTING_DEPTH_MAX).fold(json!({"NULL": true}), |inner, _| json!({"L": [inner]}));
        assert_eq!(invalid(in_lists), NESTING_MESSAGE);
        // The nesting error is a validation error: a shape error still wins.
        let error = item_from_json(&json!({"a": wrapped(40), "b": {"BOOL": "x"}})).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Serialization);
    }

    #[test]
    fn a_body_holding_more_than_any_item_is_cut_short() {
        let members: Vec<Json> = (0..=ELEMENTS_PER_DECODE_MAX).map(|_| json!("1")).collect();
        assert_eq!(invalid(json!({"NS": members})), ITEM_TOO_LARGE_MESSAGE);
    }

    #[test]
    fn attribute_names_are_limited() {
        let long_name = "a".repeat(ATTRIBUTE_NAME_BYTES_MAX + 1);
        let mut wire = serde_json::Map::new();
        wire.insert(long_name, json!({"NULL": true}));
        let error = item_from_json(&Json::Object(wire)).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Validation);
        let mut wire = serde_json::Map::new();
        wire.insert("a".repeat(ATTRIBUTE_NAME_BYTES_MAX), json!({"NULL": true}));
        assert!(item_from_json(&Json::Object(wire)).is_ok());
    }

    #[test]
    fn base64_pads_to_groups_of_four() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}

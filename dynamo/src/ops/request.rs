//! What item operations share when they read a request: the table (known
//! and serving items), the expression attribute names and values, the
//! rule against mixing legacy parameters with expressions, the legacy
//! parameters' JSON, the enumerations (`ReturnValues`,
//! `ReturnConsumedCapacity`...) and the `ConsumedCapacity` answer.

use super::Catalog;
use super::fields::{Body, Violations, WRONG_TYPE_MESSAGE, item_table_name, serialization};
use super::table::TableDescription;
use crate::error::{ApiError, ErrorKind};
use crate::expr::legacy::{self, ComparisonOperator, ConditionalOperator, ExpectedEntry, FilterEntry};
use crate::expr::{
    Condition, Placeholders, Projection, names_without_expressions_error, values_without_expressions_error,
};
use crate::json::value_from_json;
use crate::value::{Item, Value};
use serde_json::{Value as Json, json};

/// The bytes one write capacity unit covers.
const WRITE_UNIT_BYTES: usize = 1_024;
/// The bytes one read capacity unit covers (a strongly consistent read).
const READ_UNIT_BYTES: usize = 4 * 1_024;

const COMPARISON_OPERATORS: [&str; 13] = [
    "IN",
    "NULL",
    "BETWEEN",
    "LT",
    "NOT_CONTAINS",
    "EQ",
    "GT",
    "NOT_NULL",
    "NE",
    "LE",
    "BEGINS_WITH",
    "GE",
    "CONTAINS",
];

/// DynamoDB's answer to an item operation on a table it does not know.
pub(crate) fn resource_not_found() -> ApiError {
    ApiError::new(ErrorKind::ResourceNotFound, "Requested resource not found")
}

/// The table an item operation names, serving items.
pub(crate) fn item_table(body: &Body, catalog: &dyn Catalog) -> Result<TableDescription, ApiError> {
    let name = item_table_name(body)?;
    table_serving(&name, catalog)
}

pub(crate) fn table_serving(name: &str, catalog: &dyn Catalog) -> Result<TableDescription, ApiError> {
    match catalog.table(name) {
        Some(table) if table.status.serves_items() => Ok(table),
        _ => Err(resource_not_found()),
    }
}

/// Refuses a request with both legacy and expression parameters.
pub(crate) fn check_not_mixed(body: &Body, legacy_names: &[&str], expression_names: &[&str]) -> Result<(), ApiError> {
    let legacy_present: Vec<&str> = legacy_names.iter().copied().filter(|name| body.has(name)).collect();
    let expression_present: Vec<&str> = expression_names.iter().copied().filter(|name| body.has(name)).collect();
    if !legacy_present.is_empty() && !expression_present.is_empty() {
        return Err(legacy::mixed_parameters_error(&legacy_present, &expression_present));
    }
    Ok(())
}

/// The request's placeholders; `expressions` are the operation's
/// expression parameters, `value_expressions` those that take values.
pub(crate) fn placeholders(
    body: &Body,
    expressions: &[&str],
    value_expressions: &[&str],
) -> Result<Placeholders, ApiError> {
    let names = body.string_map("ExpressionAttributeNames")?;
    let values = body.item("ExpressionAttributeValues")?;
    if names.is_some() && !expressions.iter().any(|name| body.has(name)) {
        return Err(names_without_expressions_error());
    }
    // With no expression that takes values, values given are reported unused.
    if values.is_some() && !value_expressions.is_empty() && !value_expressions.iter().any(|name| body.has(name)) {
        return Err(values_without_expressions_error(value_expressions));
    }
    Placeholders::new(names, values)
}

/// A string member checked against its enumeration, `default` when absent.
pub(crate) fn enumerated<'a>(
    body: &'a Body,
    member: &str,
    field: &str,
    allowed: &[&str],
    default: &'a str,
    violations: &mut Violations,
) -> Result<&'a str, ApiError> {
    let value = body.string(member)?;
    violations.one_of(value, field, allowed);
    Ok(value.unwrap_or(default))
}

/// `ReturnConsumedCapacity`: whether to answer `ConsumedCapacity`.
pub(crate) fn wants_capacity(body: &Body, violations: &mut Violations) -> Result<bool, ApiError> {
    let value = enumerated(
        body,
        "ReturnConsumedCapacity",
        "returnConsumedCapacity",
        &["INDEXES", "TOTAL", "NONE"],
        "NONE",
        violations,
    )?;
    Ok(value != "NONE")
}

/// `ConsumedCapacity` of a write of this many bytes.
pub(crate) fn write_capacity(table: &str, item_bytes: usize) -> Json {
    let units = item_bytes.div_ceil(WRITE_UNIT_BYTES).max(1);
    json!({"TableName": table, "CapacityUnits": units as f64})
}

/// `ConsumedCapacity` of reads of this many bytes (halved when eventually consistent).
pub(crate) fn read_capacity(table: &str, read_bytes: usize, consistent: bool) -> Json {
    let units = read_bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    let units = if consistent { units } else { units / 2.0 };
    json!({"TableName": table, "CapacityUnits": units})
}

/// `ConditionExpression` or `Expected` (with `ConditionalOperator`).
pub(crate) fn write_condition(body: &Body, placeholders: &mut Placeholders) -> Result<Option<Condition>, ApiError> {
    if let Some(text) = body.string("ConditionExpression")? {
        return Condition::parse_condition(text, placeholders).map(Some);
    }
    let operator = conditional_operator(body)?;
    let Some(members) = body.members("Expected")? else {
        return Ok(None);
    };
    let mut entries = Vec::with_capacity(members.len());
    for (name, entry) in members {
        entries.push((name.clone(), expected_entry(entry)?));
    }
    legacy::expected(&entries, operator)
}

pub(crate) fn conditional_operator(body: &Body) -> Result<Option<ConditionalOperator>, ApiError> {
    let Some(text) = body.string("ConditionalOperator")? else {
        return Ok(None);
    };
    let mut violations = Violations::default();
    violations.one_of(Some(text), "conditionalOperator", &["AND", "OR"]);
    violations.finish()?;
    Ok(ConditionalOperator::parse(text))
}

fn entry_body(json: &Json) -> Result<Body, ApiError> {
    match json {
        Json::Object(members) => Ok(Body::object(members)),
        _ => Err(serialization(WRONG_TYPE_MESSAGE)),
    }
}

fn value_list(body: &Body) -> Result<Option<Vec<Value>>, ApiError> {
    let Some(elements) = body.list("AttributeValueList")? else {
        return Ok(None);
    };
    elements
        .iter()
        .map(value_from_json)
        .collect::<Result<Vec<Value>, ApiError>>()
        .map(Some)
}

fn comparison_operator(body: &Body, required: bool) -> Result<Option<ComparisonOperator>, ApiError> {
    let text = body.string("ComparisonOperator")?;
    let mut violations = Violations::default();
    if required && text.is_none() {
        violations.null("comparisonOperator");
    }
    violations.one_of(text, "comparisonOperator", &COMPARISON_OPERATORS);
    violations.finish()?;
    Ok(text.and_then(ComparisonOperator::parse))
}

fn expected_entry(json: &Json) -> Result<ExpectedEntry, ApiError> {
    let body = entry_body(json)?;
    Ok(ExpectedEntry {
        value: body.get("Value").map(value_from_json).transpose()?,
        exists: body.bool("Exists")?,
        operator: comparison_operator(&body, false)?,
        values: value_list(&body)?,
    })
}

/// `QueryFilter`, `ScanFilter` or `KeyConditions` as entries.
pub(crate) fn filter_entries(body: &Body, member: &str) -> Result<Option<Vec<(String, FilterEntry)>>, ApiError> {
    let Some(members) = body.members(member)? else {
        return Ok(None);
    };
    let mut entries = Vec::with_capacity(members.len());
    for (name, entry) in members {
        let entry_body = entry_body(entry)?;
        let operator = comparison_operator(&entry_body, true)?.ok_or_else(|| serialization(WRONG_TYPE_MESSAGE))?;
        let values = value_list(&entry_body)?.unwrap_or_default();
        entries.push((name.clone(), FilterEntry { operator, values }));
    }
    Ok(Some(entries))
}

/// `ProjectionExpression` or `AttributesToGet`, if either is given.
pub(crate) fn projection(body: &Body, placeholders: &mut Placeholders) -> Result<Option<Projection>, ApiError> {
    if let Some(text) = body.string("ProjectionExpression")? {
        return Projection::parse(text, placeholders).map(Some);
    }
    match body.strings("AttributesToGet")? {
        Some(names) if names.is_empty() => Err(ApiError::validation(
            "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy constraint: Member must \
             have length greater than or equal to 1",
        )),
        Some(names) => legacy::attributes_to_get(&names).map(Some),
        None => Ok(None),
    }
}

/// The item as a read returns it: projected when the request asks.
pub(crate) fn projected(item: &Item, projection: Option<&Projection>) -> Item {
    match projection {
        Some(projection) => projection.apply(item),
        None => item.clone(),
    }
}

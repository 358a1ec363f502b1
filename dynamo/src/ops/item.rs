//! Single-item operations: `GetItem`, and `PutItem`, `UpdateItem` and
//! `DeleteItem` as an [`ItemWrite`] that the item's coordinator runs with
//! [`apply_write`] on the item it holds, storing what comes back.
//!
//! The split follows the node's seam: everything that can be refused
//! without the item is refused by `parse` (at any node); [`apply_write`]
//! only evaluates the condition, applies the change, checks the result's
//! size and builds the answer.

use super::Catalog;
use super::fields::{Body, Violations};
use super::request::{
    check_not_mixed, enumerated, item_table, placeholders, projected, projection, read_capacity, wants_capacity,
    write_capacity, write_condition,
};
use crate::error::{ApiError, ErrorKind};
use crate::expr::legacy::{self, AttributeAction, AttributeUpdate};
use crate::expr::{Condition, Projection, Update};
use crate::json::{item_to_json, value_from_json};
use crate::key::{Key, KeySchema};
use crate::limits::ITEM_BYTES_MAX;
use crate::size::{self, UPDATE_TOO_LARGE_MESSAGE};
use crate::value::Item;
use serde_json::{Map as JsonMap, Value as Json};

/// DynamoDB's answer when a write's condition does not hold.
pub const CONDITION_FAILED_MESSAGE: &str = "The conditional request failed";

const RETURN_VALUES: [&str; 5] = ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"];

/// What a write returns of the item (`ReturnValues`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnValues {
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

impl ReturnValues {
    fn parse(text: &str) -> ReturnValues {
        match text {
            "ALL_OLD" => ReturnValues::AllOld,
            "UPDATED_OLD" => ReturnValues::UpdatedOld,
            "ALL_NEW" => ReturnValues::AllNew,
            "UPDATED_NEW" => ReturnValues::UpdatedNew,
            _ => ReturnValues::None,
        }
    }
}

/// What a write does to the item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteAction {
    /// Replace the item with this one (its key is the request's key).
    Put(Item),
    Update(Update),
    Delete,
}

/// A validated `PutItem`, `UpdateItem` or `DeleteItem` (or a put or delete
/// of a `BatchWriteItem`), ready for the item's coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemWrite {
    pub table: String,
    pub key_schema: KeySchema,
    /// The item's key: the node routes by its partition value.
    pub key: Key,
    pub action: WriteAction,
    pub condition: Option<Condition>,
    pub return_values: ReturnValues,
    /// `ReturnValuesOnConditionCheckFailure` is `ALL_OLD`.
    pub return_item_on_failure: bool,
    pub return_capacity: bool,
}

/// What the coordinator stores after a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    Put(Item),
    Delete,
    Unchanged,
}

/// A write's result: what to store and the response body.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteOutcome {
    pub store: Store,
    pub response: Json,
}

/// A write refused at the coordinator: the error, and for a failed
/// condition with `ReturnValuesOnConditionCheckFailure` `ALL_OLD` the item
/// as it was, which the error body carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteFailure {
    pub error: ApiError,
    pub item: Option<Item>,
}

impl From<ApiError> for WriteFailure {
    fn from(error: ApiError) -> WriteFailure {
        WriteFailure { error, item: None }
    }
}

impl WriteFailure {
    /// The error's JSON body, with `Item` when there is one.
    pub fn body(&self) -> Json {
        let mut body = JsonMap::new();
        body.insert(
            "__type".to_owned(),
            Json::String(self.error.kind.type_name().to_owned()),
        );
        body.insert("message".to_owned(), Json::String(self.error.message.clone()));
        if let Some(item) = &self.item {
            body.insert("Item".to_owned(), item_to_json(item));
        }
        Json::Object(body)
    }
}

/// A validated `GetItem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetItem {
    pub table: String,
    pub key: Key,
    pub projection: Option<Projection>,
    pub consistent: bool,
    pub return_capacity: bool,
}

// ---------------------------------------------------------------- parsing

/// The `Key` member, checked against the schema.
pub(crate) fn request_key(body: &Body, schema: &KeySchema) -> Result<Key, ApiError> {
    let Some(key) = body.item("Key")? else {
        let mut violations = Violations::default();
        violations.null("key");
        violations.finish()?;
        return Err(ApiError::validation(crate::key::KEY_MISMATCH_MESSAGE));
    };
    schema.key_from_map(&key)
}

pub(crate) fn parse_get_item(body: &Body, catalog: &dyn Catalog) -> Result<GetItem, ApiError> {
    let mut violations = Violations::default();
    let return_capacity = wants_capacity(body, &mut violations)?;
    violations.finish()?;
    let table = item_table(body, catalog)?;
    check_not_mixed(body, &["AttributesToGet"], &["ProjectionExpression"])?;
    let mut placeholders = placeholders(body, &["ProjectionExpression"], &[])?;
    let projection = projection(body, &mut placeholders)?;
    placeholders.check_all_used()?;
    let key = request_key(body, &table.key_schema)?;
    Ok(GetItem {
        table: table.name,
        key,
        projection,
        consistent: body.bool("ConsistentRead")?.unwrap_or(false),
        return_capacity,
    })
}

/// The write's common members: `ReturnValues` (limited to `allowed`),
/// `ReturnValuesOnConditionCheckFailure`, `ReturnConsumedCapacity`.
fn return_members(body: &Body, allowed: &[&str]) -> Result<(ReturnValues, bool, bool), ApiError> {
    let mut violations = Violations::default();
    let values = enumerated(
        body,
        "ReturnValues",
        "returnValues",
        &RETURN_VALUES,
        "NONE",
        &mut violations,
    )?;
    let on_failure = enumerated(
        body,
        "ReturnValuesOnConditionCheckFailure",
        "returnValuesOnConditionCheckFailure",
        &["ALL_OLD", "NONE"],
        "NONE",
        &mut violations,
    )?;
    enumerated(
        body,
        "ReturnItemCollectionMetrics",
        "returnItemCollectionMetrics",
        &["SIZE", "NONE"],
        "NONE",
        &mut violations,
    )?;
    let capacity = wants_capacity(body, &mut violations)?;
    violations.finish()?;
    if !allowed.contains(&values) {
        return Err(ApiError::validation(format!(
            "ReturnValues can only be {}",
            allowed.join(" or ")
        )));
    }
    Ok((ReturnValues::parse(values), on_failure == "ALL_OLD", capacity))
}

pub(crate) fn parse_put_item(body: &Body, catalog: &dyn Catalog) -> Result<ItemWrite, ApiError> {
    let Some(item) = body.item("Item")? else {
        let mut violations = Violations::default();
        violations.null("item");
        violations.finish()?;
        return Err(ApiError::validation("Item is required"));
    };
    let (return_values, return_item_on_failure, return_capacity) = return_members(body, &["ALL_OLD", "NONE"])?;
    let table = item_table(body, catalog)?;
    check_not_mixed(body, &["Expected", "ConditionalOperator"], &["ConditionExpression"])?;
    let mut placeholders = placeholders(body, &["ConditionExpression"], &["ConditionExpression"])?;
    let condition = write_condition(body, &mut placeholders)?;
    placeholders.check_all_used()?;
    let key = table.key_schema.item_key(&item)?;
    size::check_item(&item)?;
    Ok(ItemWrite {
        table: table.name,
        key_schema: table.key_schema,
        key,
        action: WriteAction::Put(item),
        condition,
        return_values,
        return_item_on_failure,
        return_capacity,
    })
}

pub(crate) fn parse_delete_item(body: &Body, catalog: &dyn Catalog) -> Result<ItemWrite, ApiError> {
    let (return_values, return_item_on_failure, return_capacity) = return_members(body, &["ALL_OLD", "NONE"])?;
    let table = item_table(body, catalog)?;
    check_not_mixed(body, &["Expected", "ConditionalOperator"], &["ConditionExpression"])?;
    let mut placeholders = placeholders(body, &["ConditionExpression"], &["ConditionExpression"])?;
    let condition = write_condition(body, &mut placeholders)?;
    placeholders.check_all_used()?;
    let key = request_key(body, &table.key_schema)?;
    Ok(ItemWrite {
        table: table.name,
        key_schema: table.key_schema,
        key,
        action: WriteAction::Delete,
        condition,
        return_values,
        return_item_on_failure,
        return_capacity,
    })
}

pub(crate) fn parse_update_item(body: &Body, catalog: &dyn Catalog) -> Result<ItemWrite, ApiError> {
    let (return_values, return_item_on_failure, return_capacity) = return_members(body, &RETURN_VALUES)?;
    let table = item_table(body, catalog)?;
    check_not_mixed(
        body,
        &["AttributeUpdates", "Expected", "ConditionalOperator"],
        &["UpdateExpression", "ConditionExpression"],
    )?;
    let expressions = ["UpdateExpression", "ConditionExpression"];
    let mut placeholders = placeholders(body, &expressions, &expressions)?;
    let update = match body.string("UpdateExpression")? {
        Some(text) => Update::parse(text, &mut placeholders)?,
        None => legacy_update(body)?,
    };
    let condition = write_condition(body, &mut placeholders)?;
    placeholders.check_all_used()?;
    let key = request_key(body, &table.key_schema)?;
    let key_names: Vec<&str> = table.key_schema.attributes().map(|attr| attr.name.as_str()).collect();
    update.check_key_attributes(&key_names)?;
    Ok(ItemWrite {
        table: table.name.clone(),
        key_schema: table.key_schema.clone(),
        key,
        action: WriteAction::Update(update),
        condition,
        return_values,
        return_item_on_failure,
        return_capacity,
    })
}

/// `AttributeUpdates` (an update that changes nothing when absent).
fn legacy_update(body: &Body) -> Result<Update, ApiError> {
    let Some(members) = body.members("AttributeUpdates")? else {
        return legacy::attribute_updates(&[]);
    };
    let mut entries = Vec::with_capacity(members.len());
    for (name, entry) in members {
        let Json::Object(entry) = entry else {
            return Err(super::fields::serialization(super::fields::WRONG_TYPE_MESSAGE));
        };
        let entry = Body::object(entry);
        let action_text = entry.string("Action")?;
        let mut violations = Violations::default();
        violations.one_of(action_text, "attributeUpdates.action", &["ADD", "PUT", "DELETE"]);
        violations.finish()?;
        let action = match action_text {
            Some("ADD") => AttributeAction::Add,
            Some("DELETE") => AttributeAction::Delete,
            _ => AttributeAction::Put,
        };
        let value = entry.get("Value").map(value_from_json).transpose()?;
        entries.push((name.clone(), AttributeUpdate { action, value }));
    }
    legacy::attribute_updates(&entries)
}

// ---------------------------------------------------------------- running

/// `GetItem`'s response for the item the node read (if any).
pub fn get_item_response(request: &GetItem, item: Option<&Item>) -> Json {
    let mut response = JsonMap::new();
    if let Some(item) = item {
        response.insert(
            "Item".to_owned(),
            item_to_json(&projected(item, request.projection.as_ref())),
        );
    }
    if request.return_capacity {
        let bytes = item.map_or(0, size::item_bytes);
        response.insert(
            "ConsumedCapacity".to_owned(),
            read_capacity(&request.table, bytes, request.consistent),
        );
    }
    Json::Object(response)
}

/// Runs a write on the item the coordinator holds under the request's key.
pub fn apply_write(request: &ItemWrite, current: Option<&Item>) -> Result<WriteOutcome, WriteFailure> {
    if let Some(condition) = &request.condition
        && !condition.evaluate(current)?
    {
        return Err(WriteFailure {
            error: ApiError::new(ErrorKind::ConditionalCheckFailed, CONDITION_FAILED_MESSAGE),
            item: current.filter(|_| request.return_item_on_failure).cloned(),
        });
    }
    let (store, new_item) = match &request.action {
        WriteAction::Put(item) => (Store::Put(item.clone()), Some(item.clone())),
        WriteAction::Delete => (current.map_or(Store::Unchanged, |_| Store::Delete), None),
        WriteAction::Update(update) => {
            let item = updated(request, update, current)?;
            let store = if current == Some(&item) {
                Store::Unchanged
            } else {
                Store::Put(item.clone())
            };
            (store, Some(item))
        }
    };
    let attributes = returned_attributes(request, current, new_item.as_ref());
    let mut response = JsonMap::new();
    if let Some(attributes) = attributes.filter(|attributes| !attributes.is_empty()) {
        response.insert("Attributes".to_owned(), item_to_json(&attributes));
    }
    if request.return_capacity {
        // A write is charged for the larger of the item before and after it.
        let bytes = new_item.iter().chain(current).map(size::item_bytes).max().unwrap_or(0);
        response.insert("ConsumedCapacity".to_owned(), write_capacity(&request.table, bytes));
    }
    Ok(WriteOutcome {
        store,
        response: Json::Object(response),
    })
}

/// The item after the update: the current one (or the key alone), changed,
/// and no larger than an item may be.
fn updated(request: &ItemWrite, update: &Update, current: Option<&Item>) -> Result<Item, ApiError> {
    let mut item = current
        .cloned()
        .unwrap_or_else(|| request.key_schema.key_map(&request.key));
    update.apply(&mut item)?;
    size::check_item(&item).map_err(|error| {
        if size::item_bytes(&item) > ITEM_BYTES_MAX {
            ApiError::validation(UPDATE_TOO_LARGE_MESSAGE)
        } else {
            error
        }
    })?;
    Ok(item)
}

/// What `ReturnValues` asks for, given the item before and after.
fn returned_attributes(request: &ItemWrite, old: Option<&Item>, new: Option<&Item>) -> Option<Item> {
    let updated_paths = || match &request.action {
        WriteAction::Update(update) => {
            Projection::of_paths(update.actions().iter().map(|action| action.target().clone()).collect())
        }
        _ => Projection::of_paths(Vec::new()),
    };
    match request.return_values {
        ReturnValues::None => None,
        ReturnValues::AllOld => old.cloned(),
        ReturnValues::AllNew => new.cloned(),
        ReturnValues::UpdatedOld => old.map(|item| updated_paths().apply(item)),
        ReturnValues::UpdatedNew => new.map(|item| updated_paths().apply(item)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;
    use crate::ops::tests::{FakeCatalog, body};
    use crate::test_values::s;
    use crate::value::Value;
    use serde_json::json;

    fn write(operation: &str, text: &str) -> Result<ItemWrite, ApiError> {
        let catalog = FakeCatalog::new();
        let body = body(text);
        match operation {
            "PutItem" => parse_put_item(&body, &catalog),
            "UpdateItem" => parse_update_item(&body, &catalog),
            _ => parse_delete_item(&body, &catalog),
        }
    }

    fn item(pairs: &[(&str, Value)]) -> Item {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect()
    }

    fn n(value: i64) -> Value {
        Value::N(Number::from_i64(value))
    }

    #[test]
    fn put_returns_the_old_item_when_asked() {
        let request = write(
            "PutItem",
            r#"{"TableName": "hash", "Item": {"pk": {"S": "a"}, "v": {"N": "2"}}, "ReturnValues": "ALL_OLD"}"#,
        )
        .unwrap();
        assert_eq!(request.key.partition, s("a"));
        let old = item(&[("pk", s("a")), ("v", n(1))]);
        let outcome = apply_write(&request, Some(&old)).unwrap();
        assert_eq!(outcome.store, Store::Put(item(&[("pk", s("a")), ("v", n(2))])));
        assert_eq!(
            outcome.response,
            json!({"Attributes": {"pk": {"S": "a"}, "v": {"N": "1"}}})
        );
        assert_eq!(apply_write(&request, None).unwrap().response, json!({}));
    }

    #[test]
    fn put_refuses_update_return_values() {
        let error = write(
            "PutItem",
            r#"{"TableName": "hash", "Item": {"pk": {"S": "a"}}, "ReturnValues": "ALL_NEW"}"#,
        )
        .unwrap_err();
        assert_eq!(error.message, "ReturnValues can only be ALL_OLD or NONE");
        let error = write("PutItem", r#"{"TableName": "nope", "Item": {"pk": {"S": "a"}}}"#).unwrap_err();
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::ResourceNotFound, "Requested resource not found")
        );
    }

    #[test]
    fn a_failed_condition_carries_the_item_when_asked() {
        let request = write(
            "PutItem",
            r#"{"TableName": "hash", "Item": {"pk": {"S": "a"}}, "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}"#,
        )
        .unwrap();
        let old = item(&[("pk", s("a")), ("v", n(1))]);
        let failure = apply_write(&request, Some(&old)).unwrap_err();
        assert_eq!(failure.error.kind, ErrorKind::ConditionalCheckFailed);
        assert_eq!(failure.error.message, CONDITION_FAILED_MESSAGE);
        assert_eq!(failure.body()["Item"], json!({"pk": {"S": "a"}, "v": {"N": "1"}}));
        assert_eq!(
            apply_write(&request, None).unwrap().store,
            Store::Put(item(&[("pk", s("a"))]))
        );
    }

    #[test]
    fn update_creates_and_returns_updated_values() {
        let request = write(
            "UpdateItem",
            r#"{"TableName": "range", "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}},
                "UpdateExpression": "SET v = :v ADD c :one", "ExpressionAttributeValues": {":v": {"S": "x"}, ":one": {"N": "1"}},
                "ReturnValues": "UPDATED_NEW"}"#,
        )
        .unwrap();
        let outcome = apply_write(&request, None).unwrap();
        assert_eq!(
            outcome.store,
            Store::Put(item(&[("pk", s("a")), ("sk", n(1)), ("v", s("x")), ("c", n(1))]))
        );
        assert_eq!(
            outcome.response,
            json!({"Attributes": {"v": {"S": "x"}, "c": {"N": "1"}}})
        );
        let old = item(&[("pk", s("a")), ("sk", n(1)), ("c", n(4)), ("w", n(9))]);
        let outcome = apply_write(&request, Some(&old)).unwrap();
        assert_eq!(
            outcome.response,
            json!({"Attributes": {"v": {"S": "x"}, "c": {"N": "5"}}})
        );
    }

    #[test]
    fn update_return_values_old_and_all() {
        let text = |values: &str| {
            format!(
                r#"{{"TableName": "hash", "Key": {{"pk": {{"S": "a"}}}}, "UpdateExpression": "REMOVE w",
                    "ReturnValues": "{values}"}}"#
            )
        };
        let old = item(&[("pk", s("a")), ("w", n(9)), ("z", n(1))]);
        let run = |values: &str| {
            apply_write(&write("UpdateItem", &text(values)).unwrap(), Some(&old))
                .unwrap()
                .response
        };
        assert_eq!(run("UPDATED_OLD"), json!({"Attributes": {"w": {"N": "9"}}}));
        assert_eq!(run("UPDATED_NEW"), json!({}));
        assert_eq!(
            run("ALL_NEW"),
            json!({"Attributes": {"pk": {"S": "a"}, "z": {"N": "1"}}})
        );
        assert_eq!(
            run("ALL_OLD"),
            json!({"Attributes": {"pk": {"S": "a"}, "w": {"N": "9"}, "z": {"N": "1"}}})
        );
    }

    #[test]
    fn update_refusals() {
        let error = write(
            "UpdateItem",
            r#"{"TableName": "hash", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET pk = :v",
                "ExpressionAttributeValues": {":v": {"S": "x"}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"
        );
        let error = write(
            "UpdateItem",
            r#"{"TableName": "hash", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET v = :v",
                "AttributeUpdates": {"w": {"Action": "DELETE"}}, "ExpressionAttributeValues": {":v": {"S": "x"}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "Can not use both expression and non-expression parameters in the same request: Non-expression \
             parameters: {AttributeUpdates} Expression parameters: {UpdateExpression}"
        );
        let error = write(
            "UpdateItem",
            r#"{"TableName": "hash", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET v = :v",
                "ExpressionAttributeValues": {":v": {"S": "x"}, ":u": {"S": "y"}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:u}"
        );
        let error = write("DeleteItem", r#"{"TableName": "hash", "Key": {"pk": {"N": "1"}}}"#).unwrap_err();
        assert_eq!(error.message, crate::key::KEY_MISMATCH_MESSAGE);
    }

    #[test]
    fn an_update_past_400_kb_is_refused_at_the_coordinator() {
        let request = write(
            "UpdateItem",
            r#"{"TableName": "hash", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET b = a"}"#,
        )
        .unwrap();
        let old = item(&[("pk", s("a")), ("a", s(&"x".repeat(300 * 1024)))]);
        let failure = apply_write(&request, Some(&old)).unwrap_err();
        assert_eq!(failure.error.message, UPDATE_TOO_LARGE_MESSAGE);
    }

    #[test]
    fn legacy_expected_and_attribute_updates() {
        let request = write(
            "UpdateItem",
            r#"{"TableName": "hash", "Key": {"pk": {"S": "a"}}, "AttributeUpdates": {"c": {"Action": "ADD", "Value": {"N": "2"}}},
                "Expected": {"c": {"Value": {"N": "1"}}}, "ReturnValues": "ALL_NEW"}"#,
        )
        .unwrap();
        let old = item(&[("pk", s("a")), ("c", n(1))]);
        let outcome = apply_write(&request, Some(&old)).unwrap();
        assert_eq!(
            outcome.response,
            json!({"Attributes": {"pk": {"S": "a"}, "c": {"N": "3"}}})
        );
        let failure = apply_write(&request, None).unwrap_err();
        assert_eq!(failure.error.kind, ErrorKind::ConditionalCheckFailed);
        assert_eq!(failure.item, None);
    }

    #[test]
    fn delete_and_get() {
        let request = write(
            "DeleteItem",
            r#"{"TableName": "hash", "Key": {"pk": {"S": "a"}}, "ReturnValues": "ALL_OLD"}"#,
        )
        .unwrap();
        assert_eq!(
            apply_write(&request, None).unwrap(),
            WriteOutcome {
                store: Store::Unchanged,
                response: json!({})
            }
        );
        let old = item(&[("pk", s("a")), ("v", n(1))]);
        assert_eq!(apply_write(&request, Some(&old)).unwrap().store, Store::Delete);
        let get = parse_get_item(
            &body(r##"{"TableName": "hash", "Key": {"pk": {"S": "a"}}, "ProjectionExpression": "#v", "ExpressionAttributeNames": {"#v": "v"}}"##),
            &FakeCatalog::new(),
        )
        .unwrap();
        assert_eq!(get_item_response(&get, Some(&old)), json!({"Item": {"v": {"N": "1"}}}));
        assert_eq!(get_item_response(&get, None), json!({}));
    }
}

//! `BatchGetItem` and `BatchWriteItem`: validated as a whole (counts,
//! duplicates, every table and key), split into single-item requests the
//! node runs one by one, and answered from the per-item results, with what
//! the node could not do returned as `UnprocessedKeys` or
//! `UnprocessedItems` in the request's own form, ready to resend.

use super::Catalog;
use super::fields::{Body, Violations, WRONG_TYPE_MESSAGE, serialization, table_name_of};
use super::item::{GetItem, ItemWrite, ReturnValues, WriteAction, request_key};
use super::request::{check_not_mixed, placeholders, projected, projection, table_serving, wants_capacity};
use crate::error::ApiError;
use crate::expr::Projection;
use crate::json::item_to_json;
use crate::key::{Key, KeySchema};
use crate::limits::{BATCH_GET_KEYS_MAX, BATCH_GET_RESPONSE_BYTES_MAX, BATCH_WRITE_REQUESTS_MAX};
use crate::size;
use crate::value::Item;
use serde_json::{Map as JsonMap, Value as Json};

const DUPLICATE_KEYS_MESSAGE: &str = "Provided list of item keys contains duplicates";

/// The keys one table of a `BatchGetItem` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchGetTable {
    pub table: String,
    pub key_schema: KeySchema,
    pub keys: Vec<Key>,
    pub projection: Option<Projection>,
    pub consistent: bool,
    /// The table's request members but `Keys`, for `UnprocessedKeys`.
    request_members: JsonMap<String, Json>,
}

/// A validated `BatchGetItem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchGet {
    pub tables: Vec<BatchGetTable>,
    pub return_capacity: bool,
}

/// The node's result for one key of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Read: the item, if there is one.
    Read(Option<Item>),
    /// Not done (the node was too busy, or a replica set was unreachable).
    Unprocessed,
}

/// A validated `BatchWriteItem`: its writes, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchWrite {
    pub writes: Vec<ItemWrite>,
    pub return_capacity: bool,
}

fn members_of(json: &Json) -> Result<&JsonMap<String, Json>, ApiError> {
    match json {
        Json::Object(members) => Ok(members),
        _ => Err(serialization(WRONG_TYPE_MESSAGE)),
    }
}

/// `RequestItems`, present and not empty.
fn request_items(body: &Body) -> Result<&JsonMap<String, Json>, ApiError> {
    let mut violations = Violations::default();
    match body.members("RequestItems")? {
        None => violations.null("requestItems"),
        Some(items) if items.is_empty() => violations.add(
            Some("{}"),
            "requestItems",
            "Member must have length greater than or equal to 1",
        ),
        Some(items) => return Ok(items),
    }
    violations.finish()?;
    Err(ApiError::validation("RequestItems is required"))
}

fn capacity_member(body: &Body) -> Result<bool, ApiError> {
    let mut violations = Violations::default();
    let wanted = wants_capacity(body, &mut violations)?;
    violations.finish()?;
    Ok(wanted)
}

/// Refuses two equal keys.
fn check_distinct(keys: &[Key]) -> Result<(), ApiError> {
    for (at, key) in keys.iter().enumerate() {
        if keys.get(..at).unwrap_or_default().contains(key) {
            return Err(ApiError::validation(DUPLICATE_KEYS_MESSAGE));
        }
    }
    Ok(())
}

pub(crate) fn parse_batch_get(body: &Body, catalog: &dyn Catalog) -> Result<BatchGet, ApiError> {
    let items = request_items(body)?;
    let return_capacity = capacity_member(body)?;
    let key_count: usize = items
        .values()
        .filter_map(|entry| entry.get("Keys").and_then(Json::as_array).map(Vec::len))
        .sum();
    if key_count > BATCH_GET_KEYS_MAX {
        return Err(ApiError::validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    let mut tables = Vec::with_capacity(items.len());
    for (name, entry) in items {
        tables.push(batch_get_table(name, members_of(entry)?, catalog)?);
    }
    Ok(BatchGet {
        tables,
        return_capacity,
    })
}

fn batch_get_table(
    name: &str,
    members: &JsonMap<String, Json>,
    catalog: &dyn Catalog,
) -> Result<BatchGetTable, ApiError> {
    let mut violations = Violations::default();
    violations.table_name(Some(name), "requestItems.key", true);
    violations.finish()?;
    let table = table_serving(table_name_of(name), catalog)?;
    let body = Body::object(members);
    check_not_mixed(&body, &["AttributesToGet"], &["ProjectionExpression"])?;
    let mut placeholders = placeholders(&body, &["ProjectionExpression"], &[])?;
    let projection = projection(&body, &mut placeholders)?;
    placeholders.check_all_used()?;
    let Some(key_maps) = body.list("Keys")? else {
        let mut violations = Violations::default();
        violations.null("requestItems.member.keys");
        violations.finish()?;
        return Err(ApiError::validation("Keys is required"));
    };
    if key_maps.is_empty() {
        let mut violations = Violations::default();
        let field = format!("requestItems.{name}.member.keys");
        violations.add(Some("[]"), &field, "Member must have length greater than or equal to 1");
        violations.finish()?;
    }
    let mut keys = Vec::with_capacity(key_maps.len());
    for key_json in key_maps {
        let key_body = Body::object(&JsonMap::from_iter([("Key".to_owned(), key_json.clone())]));
        keys.push(request_key(&key_body, &table.key_schema)?);
    }
    check_distinct(&keys)?;
    let mut request_members = members.clone();
    request_members.remove("Keys");
    Ok(BatchGetTable {
        table: name.to_owned(),
        key_schema: table.key_schema,
        keys,
        projection,
        consistent: body.bool("ConsistentRead")?.unwrap_or(false),
        request_members,
    })
}

impl BatchGet {
    /// The single reads, table by table, key by key: the order in which
    /// [`batch_get_response`] takes their results.
    pub fn gets(&self) -> Vec<GetItem> {
        self.tables
            .iter()
            .flat_map(|table| {
                table.keys.iter().map(|key| GetItem {
                    table: table.table.clone(),
                    key: key.clone(),
                    projection: table.projection.clone(),
                    consistent: table.consistent,
                    return_capacity: false,
                })
            })
            .collect()
    }
}

/// `BatchGetItem`'s response from the results of [`BatchGet::gets`], in
/// order (a missing result counts as unprocessed). Past 16 MB of items, the
/// rest are unprocessed too.
pub fn batch_get_response(request: &BatchGet, results: &[Fetched]) -> Json {
    let mut responses = JsonMap::new();
    let mut unprocessed = JsonMap::new();
    let mut results = results.iter();
    let mut response_bytes = 0usize;
    let mut full = false;
    for table in &request.tables {
        let mut found = Vec::new();
        let mut left = Vec::new();
        for key in &table.keys {
            let item = match results.next() {
                Some(Fetched::Read(item)) if !full => {
                    item.as_ref().map(|item| projected(item, table.projection.as_ref()))
                }
                _ => {
                    left.push(item_to_json(&table.key_schema.key_map(key)));
                    continue;
                }
            };
            let Some(item) = item else {
                continue;
            };
            response_bytes = response_bytes.saturating_add(size::item_bytes(&item));
            // The item that would take the answer past 16 MB, and every one after it, waits for the next call.
            full = response_bytes > BATCH_GET_RESPONSE_BYTES_MAX;
            if full {
                left.push(item_to_json(&table.key_schema.key_map(key)));
            } else {
                found.push(item_to_json(&item));
            }
        }
        responses.insert(table.table.clone(), Json::Array(found));
        if !left.is_empty() {
            let mut entry = table.request_members.clone();
            entry.insert("Keys".to_owned(), Json::Array(left));
            unprocessed.insert(table.table.clone(), Json::Object(entry));
        }
    }
    let mut response = JsonMap::new();
    response.insert("Responses".to_owned(), Json::Object(responses));
    response.insert("UnprocessedKeys".to_owned(), Json::Object(unprocessed));
    if request.return_capacity {
        let capacity: Vec<Json> = request
            .tables
            .iter()
            .map(|table| super::request::read_capacity(&table.table, 0, table.consistent))
            .collect();
        response.insert("ConsumedCapacity".to_owned(), Json::Array(capacity));
    }
    Json::Object(response)
}

pub(crate) fn parse_batch_write(body: &Body, catalog: &dyn Catalog) -> Result<BatchWrite, ApiError> {
    let items = request_items(body)?;
    let return_capacity = capacity_member(body)?;
    let mut violations = Violations::default();
    super::request::enumerated(
        body,
        "ReturnItemCollectionMetrics",
        "returnItemCollectionMetrics",
        &["SIZE", "NONE"],
        "NONE",
        &mut violations,
    )?;
    violations.finish()?;
    let request_count: usize = items.values().filter_map(Json::as_array).map(Vec::len).sum();
    if request_count > BATCH_WRITE_REQUESTS_MAX {
        return Err(ApiError::validation(
            "Too many items requested for the BatchWriteItem call",
        ));
    }
    let mut writes = Vec::with_capacity(request_count);
    for (name, requests) in items {
        let Json::Array(requests) = requests else {
            return Err(serialization(WRONG_TYPE_MESSAGE));
        };
        let mut violations = Violations::default();
        violations.table_name(Some(name), "requestItems.key", true);
        violations.finish()?;
        if requests.is_empty() {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '[]' at 'requestItems.{name}.member' failed to satisfy \
                 constraint: Member must have length greater than or equal to 1"
            )));
        }
        let table = table_serving(table_name_of(name), catalog)?;
        let mut keys = Vec::with_capacity(requests.len());
        for request in requests {
            let write = batch_write_request(name, &table.key_schema, members_of(request)?)?;
            keys.push(write.key.clone());
            writes.push(write);
        }
        check_distinct(&keys)?;
    }
    Ok(BatchWrite {
        writes,
        return_capacity,
    })
}

fn batch_write_request(
    table: &str,
    schema: &KeySchema,
    request: &JsonMap<String, Json>,
) -> Result<ItemWrite, ApiError> {
    let body = Body::object(request);
    let put = body.members("PutRequest")?;
    let delete = body.members("DeleteRequest")?;
    let (key, action) = match (put, delete) {
        (Some(put), None) => {
            let put = Body::object(put);
            let Some(item) = put.item("Item")? else {
                return Err(null_member("requestItems.member.putRequest.item"));
            };
            let key = schema.item_key(&item)?;
            size::check_item(&item)?;
            (key, WriteAction::Put(item))
        }
        (None, Some(delete)) => (request_key(&Body::object(delete), schema)?, WriteAction::Delete),
        _ => {
            return Err(ApiError::validation(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported \
                 datatypes",
            ));
        }
    };
    Ok(ItemWrite {
        table: table.to_owned(),
        key_schema: schema.clone(),
        key,
        action,
        condition: None,
        return_values: ReturnValues::None,
        return_item_on_failure: false,
        return_capacity: false,
    })
}

fn null_member(field: &str) -> ApiError {
    let mut violations = Violations::default();
    violations.null(field);
    violations
        .finish()
        .err()
        .unwrap_or_else(|| ApiError::validation(format!("{field} is required")))
}

/// `BatchWriteItem`'s response: `done[i]` tells whether the node carried
/// out `writes[i]` (a missing flag counts as not done).
pub fn batch_write_response(request: &BatchWrite, done: &[bool]) -> Json {
    let mut unprocessed = JsonMap::new();
    for (at, write) in request.writes.iter().enumerate() {
        if done.get(at).copied().unwrap_or(false) {
            continue;
        }
        let element = match &write.action {
            WriteAction::Put(item) => json_object("PutRequest", json_object("Item", item_to_json(item))),
            _ => json_object(
                "DeleteRequest",
                json_object("Key", item_to_json(&write.key_schema.key_map(&write.key))),
            ),
        };
        if let Json::Array(list) = unprocessed
            .entry(write.table.clone())
            .or_insert_with(|| Json::Array(Vec::new()))
        {
            list.push(element);
        }
    }
    let mut response = JsonMap::new();
    response.insert("UnprocessedItems".to_owned(), Json::Object(unprocessed));
    if request.return_capacity {
        let mut tables: Vec<&str> = request.writes.iter().map(|write| write.table.as_str()).collect();
        tables.dedup();
        let capacity: Vec<Json> = tables
            .iter()
            .map(|table| super::request::write_capacity(table, 0))
            .collect();
        response.insert("ConsumedCapacity".to_owned(), Json::Array(capacity));
    }
    Json::Object(response)
}

fn json_object(name: &str, value: Json) -> Json {
    Json::Object(JsonMap::from_iter([(name.to_owned(), value)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{FakeCatalog, body};
    use crate::value::Value;
    use serde_json::json;

    fn get(text: &str) -> Result<BatchGet, ApiError> {
        parse_batch_get(&body(text), &FakeCatalog::new())
    }

    fn write(text: &str) -> Result<BatchWrite, ApiError> {
        parse_batch_write(&body(text), &FakeCatalog::new())
    }

    #[test]
    fn batch_get_splits_and_answers_with_unprocessed_keys() {
        let request = get(
            r#"{"RequestItems": {"hash": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}, {"pk": {"S": "c"}}], "ConsistentRead": true}}}"#,
        )
        .unwrap();
        let gets = request.gets();
        assert_eq!(gets.len(), 3);
        assert_eq!(gets[1].key.partition, Value::S("b".into()));
        let item = Item::from([("pk".to_owned(), Value::S("a".into()))]);
        let response = batch_get_response(
            &request,
            &[Fetched::Read(Some(item)), Fetched::Read(None), Fetched::Unprocessed],
        );
        assert_eq!(
            response,
            json!({
                "Responses": {"hash": [{"pk": {"S": "a"}}]},
                "UnprocessedKeys": {"hash": {"Keys": [{"pk": {"S": "c"}}], "ConsistentRead": true}}
            })
        );
    }

    #[test]
    fn batch_get_past_16_megabytes_leaves_the_rest_unprocessed() {
        let keys: Vec<String> = (0..50).map(|n| format!(r#"{{"pk": {{"S": "k{n:02}"}}}}"#)).collect();
        let request = get(&format!(
            r#"{{"RequestItems": {{"hash": {{"Keys": [{}]}}}}}}"#,
            keys.join(",")
        ))
        .unwrap();
        let blob = Value::S("x".repeat(390 * 1024));
        let results: Vec<Fetched> = request
            .gets()
            .iter()
            .map(|get| {
                Fetched::Read(Some(Item::from([
                    ("pk".to_owned(), get.key.partition.clone()),
                    ("b".to_owned(), blob.clone()),
                ])))
            })
            .collect();
        let response = batch_get_response(&request, &results);
        let returned = response["Responses"]["hash"].as_array().unwrap().len();
        let left = response["UnprocessedKeys"]["hash"]["Keys"].as_array().unwrap();
        // 16 MB hold 42 items of 390 KB (and a few bytes); the 43rd would cross the limit.
        assert_eq!(returned, 42);
        assert_eq!(left.len(), 8);
        assert_eq!(left[0], json!({"pk": {"S": "k42"}}));
    }

    #[test]
    fn batch_get_refusals() {
        let error =
            get(r#"{"RequestItems": {"hash": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "a"}}]}}}"#).unwrap_err();
        assert_eq!(error.message, DUPLICATE_KEYS_MESSAGE);
        let keys: Vec<String> = (0..101).map(|n| format!(r#"{{"pk": {{"S": "k{n}"}}}}"#)).collect();
        let error = get(&format!(
            r#"{{"RequestItems": {{"hash": {{"Keys": [{}]}}}}}}"#,
            keys.join(",")
        ))
        .unwrap_err();
        assert_eq!(error.message, "Too many items requested for the BatchGetItem call");
        let error = get(r#"{"RequestItems": {"hash": {"Keys": []}}}"#).unwrap_err();
        assert_eq!(
            error.message,
            "1 validation error detected: Value '[]' at 'requestItems.hash.member.keys' failed to satisfy \
             constraint: Member must have length greater than or equal to 1"
        );
        let error = get(r#"{"RequestItems": {"nope": {"Keys": [{"pk": {"S": "a"}}]}}}"#).unwrap_err();
        assert_eq!(error.kind, crate::error::ErrorKind::ResourceNotFound);
    }

    #[test]
    fn batch_write_splits_and_answers_with_unprocessed_items() {
        let request = write(
            r#"{"RequestItems": {"hash": [{"PutRequest": {"Item": {"pk": {"S": "a"}, "v": {"N": "1"}}}}, {"DeleteRequest": {"Key": {"pk": {"S": "b"}}}}]}}"#,
        )
        .unwrap();
        assert_eq!(request.writes.len(), 2);
        assert_eq!(request.writes[1].action, WriteAction::Delete);
        assert_eq!(
            batch_write_response(&request, &[true, true]),
            json!({"UnprocessedItems": {}})
        );
        assert_eq!(
            batch_write_response(&request, &[true, false]),
            json!({"UnprocessedItems": {"hash": [{"DeleteRequest": {"Key": {"pk": {"S": "b"}}}}]}})
        );
    }

    #[test]
    fn batch_write_refusals() {
        let error = write(
            r#"{"RequestItems": {"hash": [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}, {"DeleteRequest": {"Key": {"pk": {"S": "a"}}}}]}}"#,
        )
        .unwrap_err();
        assert_eq!(error.message, DUPLICATE_KEYS_MESSAGE);
        let puts: Vec<String> = (0..26)
            .map(|n| format!(r#"{{"PutRequest": {{"Item": {{"pk": {{"S": "k{n}"}}}}}}}}"#))
            .collect();
        let error = write(&format!(r#"{{"RequestItems": {{"hash": [{}]}}}}"#, puts.join(","))).unwrap_err();
        assert_eq!(error.message, "Too many items requested for the BatchWriteItem call");
        let error = write(r#"{}"#).unwrap_err();
        assert_eq!(
            error.message,
            "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not \
             be null"
        );
    }
}

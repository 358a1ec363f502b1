//! The DynamoDB operations, as pure functions between request bodies and
//! response bodies, split where the node's work is split:
//!
//! 1. [`parse`] (at any node, before routing): the body into a typed,
//!    fully validated [`Request`]; every refusal that needs no item is
//!    made here, tables looked up in the node's [`Catalog`].
//! 2. [`apply_write`] (at the item's coordinator): a `PutItem`,
//!    `UpdateItem` or `DeleteItem` on the item it holds: what to store and
//!    the response. `parse` is deterministic, so the coordinator may
//!    re-parse the original body.
//! 3. Reads: [`get_item_response`], [`query_page`] (from the partition's
//!    items, read from [`Query::start`]) and [`scan_page`] (from the
//!    table's items in the node's order, [`in_segment`] saying which
//!    belong to a parallel scan's segment).
//! 4. Batches: split into single-item requests ([`BatchGet::gets`],
//!    [`BatchWrite::writes`]), answered from their results.
//! 5. Tables: [`CreateTable::description`] to store, the responses from a
//!    [`TableDescription`], and its binary form for the catalog.
//!
//! # Layout
//! - `fields`: the body's members, and constraint violations.
//! - `request`: what the item operations share when reading a request.
//! - [`table`]: tables, their requests, responses and binary form.
//! - `item`: `GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`.
//! - `read`: `Query` and `Scan`.
//! - `batch`: `BatchGetItem` and `BatchWriteItem`.

mod batch;
mod fields;
mod item;
mod read;
mod request;
pub mod table;

pub use batch::{BatchGet, BatchGetTable, BatchWrite, Fetched, batch_get_response, batch_write_response};
pub use item::{
    CONDITION_FAILED_MESSAGE, GetItem, ItemWrite, ReturnValues, Store, WriteAction, WriteFailure, WriteOutcome,
    apply_write, get_item_response,
};
pub use read::{
    PAGE_ITEMS_MAX, Query, ReadOptions, Scan, Select, Start, in_segment, partition_hash, query_page, scan_order_bytes,
    scan_page, segment_of,
};
pub use table::{
    Billing, CreateTable, DescriptionDecodeError, ListTables, TableDescription, TableStatus, UpdateTable,
    describe_table_response, list_tables_response, table_description_response,
};

use crate::error::{ApiError, ErrorKind};
use fields::Body;

/// The operations on tables, by their `X-Amz-Target` names.
pub const TABLE_OPERATIONS: [&str; 5] = [
    "CreateTable",
    "DescribeTable",
    "DeleteTable",
    "UpdateTable",
    "ListTables",
];
/// The operations on items (a node may read their tables from a cache).
pub const ITEM_OPERATIONS: [&str; 8] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
];

/// The node's table catalog, as the operations read it.
pub trait Catalog {
    /// The table of this name, in whatever status it is.
    fn table(&self, name: &str) -> Option<TableDescription>;
}

/// A request, parsed and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    CreateTable(CreateTable),
    /// `DescribeTable` of a table that exists.
    DescribeTable(TableDescription),
    /// `DeleteTable` of a table that exists.
    DeleteTable(TableDescription),
    UpdateTable(UpdateTable),
    ListTables(ListTables),
    GetItem(GetItem),
    /// `PutItem`, `UpdateItem` or `DeleteItem`.
    Write(ItemWrite),
    Query(Query),
    Scan(Scan),
    BatchGetItem(BatchGet),
    BatchWriteItem(BatchWrite),
}

/// Parses and validates the body of `operation` (the name after the `.` of
/// `X-Amz-Target`), looking tables up in `catalog`.
pub fn parse(operation: &str, body: &[u8], catalog: &dyn Catalog) -> Result<Request, ApiError> {
    let body = Body::parse(body)?;
    Ok(match operation {
        "CreateTable" => {
            let name = body.string("TableName")?.unwrap_or_default();
            let exists = catalog.table(name).is_some();
            Request::CreateTable(table::parse_create_table(&body, exists)?)
        }
        "DescribeTable" => Request::DescribeTable(existing_table(&body, catalog)?),
        "DeleteTable" => Request::DeleteTable(deletable_table(&body, catalog)?),
        "UpdateTable" => {
            let update = table::parse_update_table(&body)?;
            catalog
                .table(&update.name)
                .ok_or_else(|| table::not_found(&update.name))?;
            Request::UpdateTable(update)
        }
        "ListTables" => Request::ListTables(table::parse_list_tables(&body)?),
        "GetItem" => Request::GetItem(item::parse_get_item(&body, catalog)?),
        "PutItem" => Request::Write(item::parse_put_item(&body, catalog)?),
        "UpdateItem" => Request::Write(item::parse_update_item(&body, catalog)?),
        "DeleteItem" => Request::Write(item::parse_delete_item(&body, catalog)?),
        "Query" => Request::Query(read::parse_query(&body, catalog)?),
        "Scan" => Request::Scan(read::parse_scan(&body, catalog)?),
        "BatchGetItem" => Request::BatchGetItem(batch::parse_batch_get(&body, catalog)?),
        "BatchWriteItem" => Request::BatchWriteItem(batch::parse_batch_write(&body, catalog)?),
        _ => {
            return Err(ApiError::new(
                ErrorKind::UnknownOperation,
                format!("The operation {operation} is not supported"),
            ));
        }
    })
}

fn existing_table(body: &Body, catalog: &dyn Catalog) -> Result<TableDescription, ApiError> {
    let name = table::parse_table_name(body)?;
    catalog.table(&name).ok_or_else(|| table::not_found(&name))
}

/// A table `DeleteTable` may delete: it exists and is not being created or
/// deleted. The description returned says `DELETING`.
fn deletable_table(body: &Body, catalog: &dyn Catalog) -> Result<TableDescription, ApiError> {
    let mut table = existing_table(body, catalog)?;
    if matches!(
        table.status,
        TableStatus::Creating | TableStatus::Deleting | TableStatus::Updating
    ) {
        return Err(ApiError::new(
            ErrorKind::ResourceInUse,
            format!(
                "Attempt to change a resource which is still in use: Table is being {}: {}",
                table.status.name().to_lowercase(),
                table.name
            ),
        ));
    }
    table.status = TableStatus::Deleting;
    Ok(table)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::key::{KeyAttr, KeySchema, ScalarKind};
    use std::collections::BTreeMap;

    /// Two active tables: `hash` (pk S) and `range` (pk S, sk N).
    pub(crate) struct FakeCatalog {
        tables: BTreeMap<String, TableDescription>,
    }

    impl FakeCatalog {
        pub(crate) fn new() -> FakeCatalog {
            let attr = |name: &str, kind| KeyAttr {
                name: name.to_owned(),
                kind,
            };
            let table = |name: &str, sort: Option<KeyAttr>| TableDescription {
                name: name.to_owned(),
                key_schema: KeySchema {
                    partition: attr("pk", ScalarKind::S),
                    sort,
                },
                status: TableStatus::Active,
                created_unix_ms: 0,
                item_count: 0,
                size_bytes: 0,
                table_id: format!("id-{name}"),
                billing: Billing::PayPerRequest,
            };
            let tables = [table("hash", None), table("range", Some(attr("sk", ScalarKind::N)))];
            FakeCatalog {
                tables: tables.into_iter().map(|table| (table.name.clone(), table)).collect(),
            }
        }
    }

    impl Catalog for FakeCatalog {
        fn table(&self, name: &str) -> Option<TableDescription> {
            self.tables.get(name).cloned()
        }
    }

    pub(crate) fn body(text: &str) -> Body {
        Body::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn parse_dispatches_by_operation() {
        let catalog = FakeCatalog::new();
        let request = parse(
            "GetItem",
            br#"{"TableName": "hash", "Key": {"pk": {"S": "a"}}}"#,
            &catalog,
        )
        .unwrap();
        assert!(matches!(request, Request::GetItem(GetItem { ref table, .. }) if table == "hash"));
        let error = parse("Frobnicate", b"{}", &catalog).unwrap_err();
        assert_eq!(error.kind, ErrorKind::UnknownOperation);
        let error = parse("GetItem", b"not json", &catalog).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Serialization);
    }

    #[test]
    fn table_operations_look_the_table_up() {
        let catalog = FakeCatalog::new();
        let Request::DeleteTable(table) = parse("DeleteTable", br#"{"TableName": "hash"}"#, &catalog).unwrap() else {
            panic!("not a DeleteTable");
        };
        assert_eq!(
            table_description_response(&table)["TableDescription"]["TableStatus"],
            "DELETING"
        );
        let error = parse("DescribeTable", br#"{"TableName": "nope"}"#, &catalog).unwrap_err();
        assert_eq!(
            (error.kind, error.message.as_str()),
            (
                ErrorKind::ResourceNotFound,
                "Requested resource not found: Table: nope not found"
            )
        );
        let error = parse("DescribeTable", br#"{}"#, &catalog).unwrap_err();
        assert_eq!(
            error.message,
            "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be \
             null"
        );
    }

    /// Every operation, every member it reads, every JSON shape: an answer, never a panic.
    #[test]
    fn hostile_members_are_answered() {
        const MEMBERS: [&str; 26] = [
            "TableName",
            "Key",
            "Item",
            "KeySchema",
            "AttributeDefinitions",
            "ProvisionedThroughput",
            "BillingMode",
            "Limit",
            "ExclusiveStartKey",
            "ExclusiveStartTableName",
            "Select",
            "Segment",
            "TotalSegments",
            "ConditionExpression",
            "UpdateExpression",
            "FilterExpression",
            "KeyConditionExpression",
            "ProjectionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
            "Expected",
            "AttributeUpdates",
            "KeyConditions",
            "QueryFilter",
            "RequestItems",
            "ReturnValues",
        ];
        const SHAPES: [&str; 12] = [
            "null",
            "1",
            "-1",
            "1e300",
            "\"x\"",
            "[]",
            "{}",
            "true",
            "[1]",
            "{\"a\": 1}",
            "{\"hash\": [{}]}",
            "[{\"AttributeName\": 1}]",
        ];
        let catalog = FakeCatalog::new();
        let base = r#""TableName": "range", "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}"#;
        let request_errors = [
            ErrorKind::Validation,
            ErrorKind::Serialization,
            ErrorKind::ResourceNotFound,
        ];
        for operation in TABLE_OPERATIONS.iter().chain(&ITEM_OPERATIONS) {
            for member in MEMBERS {
                for shape in SHAPES {
                    let body = format!(r#"{{{base}, "{member}": {shape}}}"#);
                    if let Err(error) = parse(operation, body.as_bytes(), &catalog) {
                        assert!(request_errors.contains(&error.kind), "{operation} {body}: {error}");
                    }
                }
            }
        }
    }

    #[test]
    fn parsing_is_deterministic() {
        let catalog = FakeCatalog::new();
        let body = br#"{"TableName": "range", "Key": {"pk": {"S": "a"}, "sk": {"N": "1.50"}}, "UpdateExpression": "SET v = :v", "ExpressionAttributeValues": {":v": {"NS": ["2", "1"]}}}"#;
        assert_eq!(
            parse("UpdateItem", body, &catalog).unwrap(),
            parse("UpdateItem", body, &catalog).unwrap()
        );
    }
}

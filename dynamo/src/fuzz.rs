//! The body of the `dynamo_request` fuzz target (`fuzz/`), kept here so a
//! stable test can run it over the checked-in corpus too
//! (`dynamo/tests/fuzz_corpus.rs`).
//!
//! An input is an operation selector byte and a request body. Whatever
//! the bytes, parsing answers a request or an [`crate::error::ApiError`],
//! never a panic; it is deterministic (the coordinator parses a body a
//! second time and must get the same request); and a parsed request runs
//! through its pure execution on an absent and on a present item.

use crate::ops::{self, Catalog, Request, TableDescription, TableStatus};
use crate::value::{Item, Value};
use std::collections::BTreeMap;

/// The operations an input's first byte selects from (then by modulo).
pub const OPERATIONS: [&str; 12] = [
    "CreateTable",
    "DescribeTable",
    "DeleteTable",
    "UpdateTable",
    "ListTables",
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchWriteItem",
];

/// Two tables: `hash` keyed by a string partition key `pk`; `hashrange` by `pk` and a
/// number sort key `sk`.
struct FuzzCatalog(Vec<TableDescription>);

impl Catalog for FuzzCatalog {
    fn table(&self, name: &str) -> Option<TableDescription> {
        self.0.iter().find(|table| table.name == name).cloned()
    }
}

/// The catalog every input runs against, built through `CreateTable` as
/// the node builds its own.
fn catalog() -> FuzzCatalog {
    let empty = FuzzCatalog(Vec::new());
    let bodies = [
        r#"{"TableName":"hash","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"BillingMode":"PAY_PER_REQUEST"}"#,
        r#"{"TableName":"hashrange","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"N"}],"BillingMode":"PAY_PER_REQUEST"}"#,
    ];
    let tables = bodies
        .iter()
        .enumerate()
        .filter_map(|(id, body)| match ops::parse("CreateTable", body.as_bytes(), &empty) {
            Ok(Request::CreateTable(create)) => {
                let mut table = create.description(format!("table-{id}"), 0);
                table.status = TableStatus::Active;
                Some(table)
            }
            _ => None,
        })
        .collect();
    FuzzCatalog(tables)
}

/// An item of either table, with a few attributes an expression may touch.
fn sample_item(sort: bool) -> Item {
    let mut item = BTreeMap::new();
    item.insert("pk".to_string(), Value::S("a".to_string()));
    if sort && let Ok(number) = crate::number::Number::parse("7") {
        item.insert("sk".to_string(), Value::N(number));
    }
    item.insert("s".to_string(), Value::S("text".to_string()));
    item.insert("l".to_string(), Value::L(vec![Value::Bool(true), Value::Null]));
    item
}

/// Whether `body` parses as `operation` against the fuzz catalog (the
/// corpus test checks that its inputs reach past parsing).
pub fn parses(operation: &str, body: &[u8]) -> bool {
    ops::parse(operation, body, &catalog()).is_ok()
}

/// Runs one input (see the module's doc).
pub fn request(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let operation = OPERATIONS[usize::from(selector) % OPERATIONS.len()];
    let catalog = catalog();
    let parsed = ops::parse(operation, body, &catalog);
    assert!(
        parsed == ops::parse(operation, body, &catalog),
        "parsing {operation} is not deterministic"
    );
    let Ok(request) = parsed else {
        return;
    };
    match request {
        Request::Write(write) => {
            let present = sample_item(write.table == "hashrange");
            let _ = ops::apply_write(&write, None);
            let _ = ops::apply_write(&write, Some(&present));
        }
        Request::GetItem(get) => {
            let _ = ops::get_item_response(&get, Some(&sample_item(true)));
        }
        Request::Query(query) => {
            let _ = query.start();
            let _ = ops::query_page(&query, vec![sample_item(true), sample_item(true)]);
        }
        Request::Scan(scan) => {
            let _ = ops::scan_page(&scan, vec![sample_item(false), sample_item(true)]);
        }
        Request::BatchWriteItem(batch) => {
            let done: Vec<bool> = (0..batch.writes.len()).map(|at| at % 2 == 0).collect();
            let _ = ops::batch_write_response(&batch, &done);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_holds_both_tables() {
        let catalog = catalog();
        assert!(catalog.table("hash").is_some());
        assert_eq!(catalog.table("hashrange").map(|t| t.status), Some(TableStatus::Active));
    }

    #[test]
    fn a_put_parses_and_runs() {
        let body = br#"{"TableName":"hashrange","Item":{"pk":{"S":"a"},"sk":{"N":"1"}},"ConditionExpression":"attribute_not_exists(pk)"}"#;
        let catalog = catalog();
        let Ok(Request::Write(write)) = ops::parse("PutItem", body, &catalog) else {
            panic!("a valid PutItem parses");
        };
        assert!(ops::apply_write(&write, None).is_ok());
        assert!(ops::apply_write(&write, Some(&sample_item(true))).is_err());
    }
}

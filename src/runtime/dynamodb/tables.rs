//! The table catalog, kept as records of the reserved table 0 in bucket 0
//! (see [`crate::storage::item_key`]): lookups for the operations' parsing,
//! and CreateTable, UpdateTable, DeleteTable and ListTables as atomic SWAPs
//! and reads of those records.

use super::cluster_client::{Call, ClusterClient, Unavailable};
use super::records::{self, table_of_record, table_record, table_record_key};
use super::scans::{self, BucketPages};
use crate::protocol::wire::{self, Command, ErrorCode};
use crate::storage::item_key::{self, CATALOG_BUCKET, CATALOG_TABLE};
use dynakv_dynamo::error::{ApiError, ErrorKind};
use dynakv_dynamo::ops::{self, Catalog, CreateTable, ListTables, TableDescription, TableStatus, UpdateTable};
use serde_json::Value as Json;
use std::cell::RefCell;

/// Tables a cluster may have: the catalog is read whole by ListTables.
/// DynamoDB's default account quota.
pub const TABLES_MAX: usize = 2_500;

/// The answer for a cluster that could not be asked.
pub fn unavailable(error: Unavailable) -> ApiError {
    match error {
        Unavailable::OutOfSpace => ApiError::new(
            ErrorKind::ItemCollectionSizeLimitExceeded,
            "The cluster has no room for this write",
        ),
        Unavailable::TimedOut | Unavailable::Failed => ApiError::new(
            ErrorKind::InternalServerError,
            "The cluster could not complete the request in time; retry",
        ),
    }
}

/// The catalog as [`ops::parse`] reads it: each table looked up once per
/// request, with the stored record kept for the SWAP that changes it.
pub struct ClusterCatalog<'c> {
    client: RefCell<&'c mut ClusterClient>,
    seen: RefCell<Vec<(String, Option<Vec<u8>>)>>,
    failed: RefCell<Option<Unavailable>>,
}

impl<'c> ClusterCatalog<'c> {
    pub fn new(client: &'c mut ClusterClient) -> ClusterCatalog<'c> {
        ClusterCatalog {
            client: RefCell::new(client),
            seen: RefCell::new(Vec::new()),
            failed: RefCell::new(None),
        }
    }

    /// Why a lookup could not be made, if one could not.
    pub fn failure(&self) -> Option<Unavailable> {
        self.failed.borrow().clone()
    }

    /// The stored record of a table looked up, if it exists.
    fn record(&self, name: &str) -> Option<Vec<u8>> {
        if let Some((_, record)) = self.seen.borrow().iter().find(|(seen, _)| seen == name) {
            return record.clone();
        }
        let call = Call {
            command: Command::Get,
            key: table_record_key(name).to_vec(),
            value: Vec::new(),
        };
        let record = match self.client.borrow_mut().call(call) {
            Ok(answer) if answer.code == ErrorCode::Success => Some(answer.value),
            Ok(_) => None,
            Err(error) => {
                *self.failed.borrow_mut() = Some(error);
                None
            }
        };
        self.seen.borrow_mut().push((name.to_owned(), record.clone()));
        record
    }

    /// Once parsing is done: the client, and the tables it looked up.
    pub fn finish(self) -> (&'c mut ClusterClient, Known) {
        (self.client.into_inner(), Known(self.seen.into_inner()))
    }
}

impl Catalog for ClusterCatalog<'_> {
    fn table(&self, name: &str) -> Option<TableDescription> {
        self.record(name).as_deref().and_then(table_of_record)
    }
}

/// The tables a request's parsing looked up (every one it names), as
/// they were then, with their stored records.
pub struct Known(Vec<(String, Option<Vec<u8>>)>);

impl Known {
    fn record(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(seen, _)| seen == name)
            .and_then(|(_, record)| record.as_deref())
    }
}

impl Catalog for Known {
    fn table(&self, name: &str) -> Option<TableDescription> {
        self.record(name).and_then(table_of_record)
    }
}

/// Stores `new` in place of the table record `current` (`None`: only if
/// there is none); `Ok(false)` if another change came first.
fn swap_table(
    client: &mut ClusterClient,
    name: &str,
    current: Option<&[u8]>,
    new: Option<&TableDescription>,
) -> Result<bool, ApiError> {
    let record = new.and_then(table_record);
    if new.is_some() && record.is_none() {
        return Err(ApiError::validation("The table description is too large"));
    }
    let call = Call {
        command: Command::Swap,
        key: table_record_key(name).to_vec(),
        value: wire::encode_swap(current.map_or(0, wire::swap_hash), record.as_deref()),
    };
    let answer = client.call(call).map_err(unavailable)?;
    Ok(answer.code != ErrorCode::Conflict)
}

fn in_use(name: &str) -> ApiError {
    ApiError::new(ErrorKind::ResourceInUse, format!("Table already exists: {name}"))
}

fn changed(name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceInUse,
        format!("Attempt to change a resource which is still in use: Table is being changed: {name}"),
    )
}

/// CreateTable: the table is stored ACTIVE (its items can be written at
/// once); the answer says CREATING, as DynamoDB's does.
pub fn create(client: &mut ClusterClient, create: &CreateTable, now_unix_ms: u64) -> Result<Json, ApiError> {
    if list_names(client)?.len() >= TABLES_MAX {
        return Err(ApiError::new(
            ErrorKind::LimitExceeded,
            format!("Subscriber limit exceeded: the cluster has {TABLES_MAX} tables"),
        ));
    }
    let table_id = records::new_table_id(&create.name);
    let mut table = create.description(table_id, now_unix_ms);
    table.status = TableStatus::Active;
    if !swap_table(client, &create.name, None, Some(&table))? {
        return Err(in_use(&create.name));
    }
    table.status = TableStatus::Creating;
    Ok(ops::table_description_response(&table))
}

/// UpdateTable: stored ACTIVE with the change, answered UPDATING.
pub fn update(client: &mut ClusterClient, known: &Known, update: &UpdateTable) -> Result<Json, ApiError> {
    let record = known.record(&update.name);
    let current = record.and_then(table_of_record);
    let Some(current) = current else {
        return Err(ApiError::new(
            ErrorKind::ResourceNotFound,
            format!("Requested resource not found: Table: {} not found", update.name),
        ));
    };
    let mut updated = update.apply(&current)?;
    let answered = updated.clone();
    updated.status = TableStatus::Active;
    if !swap_table(client, &update.name, record, Some(&updated))? {
        return Err(changed(&update.name));
    }
    Ok(ops::table_description_response(&answered))
}

/// DeleteTable: the table's record goes first (no request finds the table
/// after), then every item of it, bucket by bucket.
pub fn delete(client: &mut ClusterClient, known: &Known, table: &TableDescription) -> Result<Json, ApiError> {
    if !swap_table(client, &table.name, known.record(&table.name), None)? {
        return Err(changed(&table.name));
    }
    scans::remove_every_item(client, table)?;
    Ok(ops::table_description_response(table))
}

/// ListTables: the catalog read whole (it is bounded by [`TABLES_MAX`]).
pub fn list(client: &mut ClusterClient, request: &ListTables) -> Result<Json, ApiError> {
    Ok(ops::list_tables_response(request, list_names(client)?))
}

fn list_names(client: &mut ClusterClient) -> Result<Vec<String>, ApiError> {
    let key = item_key::bucket_key(CATALOG_BUCKET, CATALOG_TABLE);
    let mut pages = BucketPages::new(key, item_key::TABLE_PREFIX_BYTES, false, None);
    let mut names = Vec::new();
    while let Some(page) = pages.next_page(client)? {
        names.extend(
            page.iter()
                .filter_map(|value| table_of_record(value))
                .map(|table| table.name),
        );
    }
    Ok(names)
}

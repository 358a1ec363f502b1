//! The table catalog, kept as records of the reserved table 0 in bucket 0
//! (see [`crate::storage::item_key`]): lookups for the operations' parsing,
//! and CreateTable, UpdateTable, DeleteTable and ListTables as atomic SWAPs
//! and reads of those records.
//!
//! Item operations read a table from their executor's [`TableCache`] when
//! it was read within [`CACHE_MS`] (every item request would otherwise
//! ask bucket 0's coordinator first). Table operations always read it.
//! DeleteTable keeps that safe: it marks the table's record DELETING (no
//! operation finds the table from then on) and answers; the node's
//! [`Deleter`] waits [`DELETE_GRACE_MS`], longer than any cache keeps the
//! table, removes its items (a write from a stale cache lands before
//! that), then the record. A CreateTable of the name meanwhile takes the
//! record's place, but not before every cache of the old table expired,
//! so no write meant for the new table goes to the old one.

use super::cluster_client::{Call, ClusterClient, Unavailable, unavailable};
use super::records::{self, table_of_record, table_record, table_record_key};
use super::scans::{self, BucketPages};
use crate::protocol::wire::{self, Command, ErrorCode, SWAP_ANY, SwapTo};
use crate::storage::item_key::{self, CATALOG_BUCKET, CATALOG_TABLE};
use dynakv_dynamo::error::{ApiError, ErrorKind};
use dynakv_dynamo::ops::{self, Catalog, CreateTable, ListTables, TableDescription, TableStatus, UpdateTable};
use serde_json::Value as Json;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// How long an executor uses a table it read for item operations.
pub const CACHE_MS: u64 = 1_000;
/// How long DeleteTable waits between marking a table DELETING and
/// removing its items: past [`CACHE_MS`], with room for a write in flight.
pub const DELETE_GRACE_MS: u64 = 1_500;
/// Deletions waiting for the node's [`Deleter`]; one more is done by its
/// executor before it answers.
pub const DELETIONS_QUEUED_MAX: usize = 64;
/// Tables an executor keeps read.
const CACHED_TABLES_MAX: usize = 64;

/// A table's record as stored, with its version (the tag of the SWAP
/// that wrote it, which a SWAP replacing it names, see [`wire::swap_hash`]).
#[derive(Clone, Debug)]
pub struct Stored {
    record: Vec<u8>,
    version: i32,
}

/// Tables an executor read lately, with their records (ACTIVE or UPDATING
/// ones only: a table being created or deleted is always read).
#[derive(Default)]
pub struct TableCache(Vec<(String, Stored, Instant)>);

impl TableCache {
    fn get(&self, name: &str, now: Instant) -> Option<Stored> {
        let fresh = |at: &Instant| now.duration_since(*at) < Duration::from_millis(CACHE_MS);
        (self.0.iter())
            .find(|(cached, _, at)| cached == name && fresh(at))
            .map(|(_, stored, _)| stored.clone())
    }

    fn put(&mut self, name: &str, stored: &Stored, now: Instant) {
        let record = &stored.record;
        let serves = table_of_record(record).is_some_and(|table| table.status.serves_items());
        self.0.retain(|(cached, _, _)| cached != name);
        if !serves || records::deleting_since(record).is_some() {
            return;
        }
        if self.0.len() >= CACHED_TABLES_MAX {
            self.0.remove(0);
        }
        self.0.push((name.to_owned(), stored.clone(), now));
    }
}

/// Tables a cluster may have: the catalog is read whole by ListTables.
/// DynamoDB's default account quota.
pub const TABLES_MAX: usize = 2_500;

/// The catalog as [`ops::parse`] reads it: each table looked up once per
/// request, with the stored record kept for the SWAP that changes it.
pub struct ClusterCatalog<'c> {
    client: RefCell<&'c mut ClusterClient>,
    /// The executor's cache, for an item operation.
    cache: Option<RefCell<&'c mut TableCache>>,
    seen: RefCell<Vec<(String, Option<Stored>)>>,
    failed: RefCell<Option<Unavailable>>,
}

impl<'c> ClusterCatalog<'c> {
    pub fn new(client: &'c mut ClusterClient, cache: Option<&'c mut TableCache>) -> ClusterCatalog<'c> {
        ClusterCatalog {
            client: RefCell::new(client),
            cache: cache.map(RefCell::new),
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
        if let Some((_, stored)) = self.seen.borrow().iter().find(|(seen, _)| seen == name) {
            return stored.as_ref().map(|s| s.record.clone());
        }
        let now = Instant::now();
        if let Some(stored) = self.cache.as_ref().and_then(|cache| cache.borrow().get(name, now)) {
            let record = stored.record.clone();
            self.seen.borrow_mut().push((name.to_owned(), Some(stored)));
            return Some(record);
        }
        let call = Call {
            command: Command::Get,
            key: table_record_key(name).to_vec(),
            value: Vec::new(),
        };
        let stored = match self.client.borrow_mut().call(call) {
            Ok(answer) if answer.code == ErrorCode::Success => Some(Stored {
                record: answer.value,
                version: answer.version,
            }),
            Ok(_) => None,
            Err(error) => {
                *self.failed.borrow_mut() = Some(error);
                None
            }
        };
        if let (Some(cache), Some(stored)) = (&self.cache, &stored) {
            cache.borrow_mut().put(name, stored, now);
        }
        let record = stored.as_ref().map(|s| s.record.clone());
        self.seen.borrow_mut().push((name.to_owned(), stored));
        record
    }

    /// Once parsing is done: the client, and the tables it looked up.
    pub fn finish(self) -> (&'c mut ClusterClient, Known) {
        (self.client.into_inner(), Known(self.seen.into_inner()))
    }
}

impl Catalog for ClusterCatalog<'_> {
    /// A table being deleted is no table.
    fn table(&self, name: &str) -> Option<TableDescription> {
        let record = self.record(name)?;
        if records::deleting_since(&record).is_some() {
            return None;
        }
        table_of_record(&record)
    }
}

/// The tables a request's parsing looked up (every one it names), as
/// they were then, with their stored records.
pub struct Known(Vec<(String, Option<Stored>)>);

impl Known {
    fn stored(&self, name: &str) -> Option<&Stored> {
        self.0
            .iter()
            .find(|(seen, _)| seen == name)
            .and_then(|(_, stored)| stored.as_ref())
    }

    fn record(&self, name: &str) -> Option<&[u8]> {
        self.stored(name).map(|s| &s.record[..])
    }
}

impl Catalog for Known {
    fn table(&self, name: &str) -> Option<TableDescription> {
        let record = self.record(name)?;
        if records::deleting_since(record).is_some() {
            return None;
        }
        table_of_record(record)
    }
}

/// Stores `new` in place of the table record `current` (`None`: only if
/// there is none); `Ok(false)` if another change came first.
fn swap_table(
    client: &mut ClusterClient,
    name: &str,
    current: Option<&Stored>,
    new: Option<(&TableDescription, u64)>,
) -> Result<bool, ApiError> {
    let record = new.and_then(|(table, deleting_since)| table_record(table, deleting_since));
    if new.is_some() && record.is_none() {
        return Err(ApiError::validation("The table description is too large"));
    }
    let call = super::items::swap_call(
        table_record_key(name).to_vec(),
        current.map_or(0, |s| wire::swap_hash(&s.record, s.version)),
        record.as_deref().map_or(SwapTo::Nothing, SwapTo::Value),
    );
    let answer = client.call(call).map_err(unavailable)?;
    Ok(answer.code != ErrorCode::Conflict)
}

/// A table's record as a round of its home replicas finds it.
fn read_consistently(client: &mut ClusterClient, name: &str) -> Result<Option<Stored>, ApiError> {
    let call = super::items::swap_call(table_record_key(name).to_vec(), SWAP_ANY, SwapTo::Unchanged);
    let answer = client.call(call).map_err(unavailable)?;
    Ok((answer.code == ErrorCode::Success).then_some(Stored {
        record: answer.value,
        version: answer.version,
    }))
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
/// once); the answer says CREATING, as DynamoDB's does. It takes the place
/// of no record, or of an abandoned deletion's.
pub fn create(
    client: &mut ClusterClient,
    known: &Known,
    create: &CreateTable,
    now_unix_ms: u64,
) -> Result<Json, ApiError> {
    if list_names(client)?.len() >= TABLES_MAX {
        return Err(ApiError::new(
            ErrorKind::LimitExceeded,
            format!("Subscriber limit exceeded: the cluster has {TABLES_MAX} tables"),
        ));
    }
    let current = known.stored(&create.name);
    if let Some(since) = current.and_then(|s| records::deleting_since(&s.record)) {
        // The table deleted under this name may be in an executor's cache
        // until CACHE_MS after its deletion began.
        let left = (since + CACHE_MS).saturating_sub(now_unix_ms);
        std::thread::sleep(Duration::from_millis(left.min(CACHE_MS)));
    }
    let table_id = records::new_table_id(&create.name);
    let mut table = create.description(table_id, now_unix_ms);
    table.status = TableStatus::Active;
    if !swap_table(client, &create.name, current, Some((&table, 0)))? {
        return Err(in_use(&create.name));
    }
    table.status = TableStatus::Creating;
    Ok(ops::table_description_response(&table))
}

/// UpdateTable: stored ACTIVE with the change, answered UPDATING.
pub fn update(client: &mut ClusterClient, known: &Known, update: &UpdateTable) -> Result<Json, ApiError> {
    let stored = known.stored(&update.name);
    let current = stored.and_then(|s| table_of_record(&s.record));
    let Some(current) = current else {
        return Err(ApiError::new(
            ErrorKind::ResourceNotFound,
            format!("Requested resource not found: Table: {} not found", update.name),
        ));
    };
    let mut updated = update.apply(&current)?;
    let answered = updated.clone();
    updated.status = TableStatus::Active;
    if !swap_table(client, &update.name, stored, Some((&updated, 0)))? {
        return Err(changed(&update.name));
    }
    Ok(ops::table_description_response(&answered))
}

/// DeleteTable: the table marked DELETING, answered; the rest is the
/// [`Deleter`]'s (or, with its queue full, done here first).
pub fn delete(
    client: &mut ClusterClient,
    known: &Known,
    table: &TableDescription,
    now_unix_ms: u64,
    deleter: &crossbeam_channel::Sender<Deletion>,
) -> Result<Json, ApiError> {
    let since = now_unix_ms.max(1);
    let record =
        table_record(table, since).ok_or_else(|| ApiError::validation("The table description is too large"))?;
    if !swap_table(client, &table.name, known.stored(&table.name), Some((table, since)))? {
        return Err(changed(&table.name));
    }
    let deletion = Deletion {
        table: table.clone(),
        record,
        grace_ends: Instant::now() + Duration::from_millis(DELETE_GRACE_MS),
    };
    if let Err(refused) = deleter.try_send(deletion) {
        refused.into_inner().finish(client)?;
    }
    Ok(ops::table_description_response(table))
}

/// A table marked DELETING, to finish.
pub struct Deletion {
    table: TableDescription,
    /// Its DELETING record: removed only if still there.
    record: Vec<u8>,
    grace_ends: Instant,
}

impl Deletion {
    /// Waits out the grace, removes every item, then the record (unless a
    /// CreateTable took its place).
    pub fn finish(self, client: &mut ClusterClient) -> Result<(), ApiError> {
        std::thread::sleep(self.grace_ends.saturating_duration_since(Instant::now()));
        scans::remove_every_item(client, &self.table)?;
        // Its version is the tag of the SWAP that stored it, read back.
        let current = read_consistently(client, &self.table.name)?;
        if let Some(stored) = current.filter(|s| s.record == self.record) {
            swap_table(client, &self.table.name, Some(&stored), None)?;
        }
        Ok(())
    }
}

/// The node's thread (`dynamodb-deleter`) finishing deletions in turn; a
/// deletion it could not finish (the cluster did not answer) is tried
/// again, at most [`DELETION_TRIES_MAX`] times in all.
pub struct Deleter {
    pub client: ClusterClient,
    pub deletions: crossbeam_channel::Receiver<Deletion>,
}

/// Tries of a deletion before its items are left (the record stays
/// DELETING, which no operation finds and a CreateTable replaces).
pub const DELETION_TRIES_MAX: usize = 3;

impl Deleter {
    pub fn run(mut self) {
        for deletion in self.deletions.iter() {
            let name = deletion.table.name.clone();
            let mut outcome = Err(ApiError::new(ErrorKind::InternalServerError, "not tried"));
            for _ in 0..DELETION_TRIES_MAX {
                let again = Deletion {
                    table: deletion.table.clone(),
                    record: deletion.record.clone(),
                    grace_ends: deletion.grace_ends,
                };
                outcome = again.finish(&mut self.client);
                if outcome.is_ok() {
                    break;
                }
            }
            if let Err(error) = outcome {
                crate::log!("dynamodb_delete_failed", "deleting table {name}: {}", error.message);
            }
        }
    }
}

/// ListTables: the catalog read whole (it is bounded by [`TABLES_MAX`]).
pub fn list(client: &mut ClusterClient, request: &ListTables) -> Result<Json, ApiError> {
    Ok(ops::list_tables_response(request, list_names(client)?))
}

/// Every table's name, but those being deleted.
fn list_names(client: &mut ClusterClient) -> Result<Vec<String>, ApiError> {
    let key = item_key::bucket_key(CATALOG_BUCKET, CATALOG_TABLE);
    let mut pages = BucketPages::new(key, item_key::TABLE_PREFIX_BYTES, (false, None), None);
    let mut names = Vec::new();
    while let Some(page) = pages.next_page(client)? {
        let live = page.iter().filter(|value| records::deleting_since(value).is_none());
        names.extend(live.filter_map(|value| table_of_record(value)).map(|table| table.name));
    }
    Ok(names)
}

//! Single items over the cluster. Every write of an item (PutItem,
//! UpdateItem, DeleteItem, and each of a BatchWriteItem) and every strongly
//! consistent read is a SWAP: a round of the item's home replicas (see the
//! node's `shard::rounds`), linearizable. A write runs
//! [`ops::apply_write`] on the item as it last saw it and stores the result
//! with a SWAP that holds only if the item is still that (else it tries
//! again on what the SWAP's round found); see [`write`]. An eventually
//! consistent GetItem reads one copy. An item too large for one record is
//! a head and chunks ([`chunked`]): the head is what is SWAPped and read
//! first.

use super::chunked::{self, Stored, Whole};
use super::cluster_client::unavailable;
use super::cluster_client::{Call, ClusterClient};
use super::records::{self, item_of_record, table_number};
use crate::protocol::wire::{self, Command, ErrorCode, SWAP_ANY, SwapTo};
use dynakv_dynamo::error::{ApiError, ErrorKind};
use dynakv_dynamo::key::Key;
use dynakv_dynamo::ops::{self, BatchGet, BatchWrite, Catalog, Fetched, GetItem, ItemWrite, WriteFailure};
use dynakv_dynamo::value::Item;
use serde_json::Value as Json;

/// Reads and SWAPs a write tries before giving up on an item other
/// writers keep changing (the SDK retries the 500).
const WRITE_ATTEMPTS_MAX: usize = 16;

/// A read of an item's record: of one copy, or (`consistent`) a round.
pub(super) fn get_call(table: u64, key: &Key, consistent: bool) -> Call {
    let key = records::item_record_key(table, key).to_vec();
    match consistent {
        true => swap_call(key, SWAP_ANY, SwapTo::Unchanged),
        false => Call {
            command: Command::Get,
            key,
            value: Vec::new(),
        },
    }
}

/// A SWAP of the record at `key` (see [`wire::KeyOp::Swap`]).
pub fn swap_call(key: Vec<u8>, expected: u64, to: SwapTo<'_>) -> Call {
    Call {
        command: Command::Swap,
        key,
        value: wire::encode_swap(expected, to),
    }
}

/// The item a record holds, if its key is `key`.
fn item_of(record: &[u8], key: &Key, schema: &dynakv_dynamo::key::KeySchema) -> Option<Item> {
    item_of_record(record).filter(|item| schema.item_key(item).ok().as_ref() == Some(key))
}

/// GetItem.
pub fn get(client: &mut ClusterClient, catalog: &dyn Catalog, get: &GetItem) -> Result<Json, ApiError> {
    let table = catalog.table(&get.table).ok_or_else(|| not_found(&get.table))?;
    let seen = read_record(client, table_number(&table), &get.key, get.consistent)?;
    let item = (seen.whole.as_deref()).and_then(|r| item_of(r, &get.key, &table.key_schema));
    Ok(ops::get_item_response(get, item.as_ref()))
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        format!("Requested resource not found: Table: {name} not found"),
    )
}

/// An item's record as a read found it, and whether a round of its home
/// replicas found it (then it was the item's value at some moment of the
/// call; a read of one copy is only a guess).
struct Seen {
    /// The record at the item's key (a head, for an item in chunks).
    record: Option<Vec<u8>>,
    /// The record's version: the tag of the write that stored it.
    version: i32,
    confirmed: bool,
    /// The item's whole record (a head's chunks joined).
    whole: Option<Vec<u8>>,
}

/// Reads of an item whose chunks a later write keeps removing before
/// they are read.
const READ_ATTEMPTS_MAX: usize = 4;

/// Reads an item's record, and its chunks if it has them; a head whose
/// chunks are gone is read again, in a round.
fn read_record(client: &mut ClusterClient, table: u64, key: &Key, consistent: bool) -> Result<Seen, ApiError> {
    let mut consistent = consistent;
    for _ in 0..READ_ATTEMPTS_MAX {
        let answer = client.call(get_call(table, key, consistent)).map_err(unavailable)?;
        let record = (answer.code == ErrorCode::Success).then_some(answer.value);
        if let Some(seen) = made_whole(client, table, record, answer.version, consistent)? {
            return Ok(seen);
        }
        consistent = true;
    }
    Err(changing())
}

/// The item at `key` as a round of its replicas reads it.
pub(super) fn read_item(
    client: &mut ClusterClient,
    table: u64,
    key: &Key,
    schema: &dynakv_dynamo::key::KeySchema,
) -> Result<Option<Item>, ApiError> {
    let seen = read_record(client, table, key, true)?;
    Ok((seen.whole.as_deref()).and_then(|r| item_of(r, key, schema)))
}

/// What a read found, with the item's whole record; `None` if its chunks
/// are gone.
fn made_whole(
    client: &mut ClusterClient,
    table: u64,
    record: Option<Vec<u8>>,
    version: i32,
    confirmed: bool,
) -> Result<Option<Seen>, ApiError> {
    let whole = match chunked::whole(client, table, record.as_deref())? {
        Whole::Absent => None,
        Whole::Record(whole) => Some(whole),
        Whole::ChunksGone => return Ok(None),
    };
    Ok(Some(Seen {
        record,
        version,
        confirmed,
        whole,
    }))
}

fn changing() -> ApiError {
    ApiError::new(
        ErrorKind::InternalServerError,
        "The item kept changing during the request; retry",
    )
}

/// A write: its response, or why it failed. It stores its result with a
/// SWAP that holds only if the item is still what the write was worked out
/// on, even a PutItem that does not depend on it: a SWAP that holds
/// whatever is stored would be applied again by a coordinator that a late
/// resend of it reaches after the item changed. The first try is worked
/// out on one copy's record, a guess the SWAP checks; a SWAP that does not
/// hold answers with the item's record its round confirmed, and the next
/// try is worked out on that. A write that would store nothing (a failed
/// condition, nothing to delete) is answered only from a confirmed record.
pub fn write(client: &mut ClusterClient, catalog: &dyn Catalog, write: &ItemWrite) -> Result<Json, WriteFailure> {
    let table = catalog.table(&write.table).ok_or_else(|| not_found(&write.table))?;
    let number = table_number(&table);
    let key = records::item_record_key(number, &write.key).to_vec();
    let key_item = table.key_schema.key_map(&write.key);
    let mut seen = read_record(client, number, &write.key, false)?;
    for _ in 0..WRITE_ATTEMPTS_MAX {
        let current = (seen.whole.as_deref()).and_then(|r| item_of(r, &write.key, &table.key_schema));
        let outcome = ops::apply_write(write, current.as_ref());
        let stores_nothing = match &outcome {
            Ok(outcome) => match outcome.store {
                ops::Store::Unchanged => true,
                ops::Store::Delete => seen.record.is_none(),
                ops::Store::Put(_) => false,
            },
            Err(_) => true,
        };
        if stores_nothing && !seen.confirmed {
            seen = read_record(client, number, &write.key, true)?;
            continue;
        }
        let outcome = outcome?;
        let new = match &outcome.store {
            ops::Store::Put(item) => Some(chunked::stored_form(&write.key, &key_item, item, client.unique_id())?),
            ops::Store::Delete if seen.record.is_some() => None,
            ops::Store::Unchanged | ops::Store::Delete => return Ok(outcome.response),
        };
        seen = match swap_item(client, number, &key, &seen, new.as_ref())? {
            Swapped::Held => return Ok(outcome.response),
            Swapped::Lost(Some(found)) => found,
            Swapped::Lost(None) => read_record(client, number, &write.key, true)?,
        };
    }
    Err(changing().into())
}

/// What a write's SWAP did: held, or lost to another write (with the item
/// its round found, if its answer carried it).
enum Swapped {
    Held,
    Lost(Option<Seen>),
}

/// Stores `new` (`None`: removes the item) at `key` if the item is still
/// `seen`. A large item's chunks are stored first; once the SWAP holds,
/// the chunks of the item it replaced are removed; a SWAP that lost
/// removes its own.
fn swap_item(
    client: &mut ClusterClient,
    table: u64,
    key: &[u8],
    seen: &Seen,
    new: Option<&Stored>,
) -> Result<Swapped, ApiError> {
    if let Some(Stored::Chunked { head, manifest, chunks }) = new
        && let Err(error) = chunked::write_chunks(client, table, manifest, chunks)
    {
        // No room, or the cluster too slow: the parts stored so far go.
        chunked::remove_chunks(client, table, head);
        return Err(error);
    }
    let expected = (seen.record.as_deref()).map_or(0, |record| wire::swap_hash(record, seen.version));
    let to = new.map_or(SwapTo::Nothing, |new| SwapTo::Value(new.head()));
    let swapped = client
        .call(swap_call(key.to_vec(), expected, to))
        .map_err(unavailable)?;
    if swapped.code != ErrorCode::Conflict {
        if let (ErrorCode::Success, Some(old)) = (swapped.code, &seen.record) {
            chunked::remove_chunks(client, table, old);
        }
        return Ok(Swapped::Held);
    }
    if swapped.resent {
        // The item changed, maybe by this very write through a coordinator
        // an earlier send reached: its outcome is unknown (and its chunks,
        // if any, may be the item's now).
        return Err(ApiError::new(
            ErrorKind::InternalServerError,
            "The write may or may not have taken effect; read the item before retrying",
        ));
    }
    if let Some(new) = new {
        chunked::remove_chunks(client, table, new.head());
    }
    if !swapped.has_value {
        return Ok(Swapped::Lost(None));
    }
    let record = (!swapped.value.is_empty()).then_some(swapped.value);
    made_whole(client, table, record, swapped.version, true).map(Swapped::Lost)
}

/// The items a BatchGetItem answers with at most: DynamoDB's 16 MB would
/// be 64 MB for the four executors of a node of 64 MiB. The items past it
/// are left unprocessed, as DynamoDB leaves those past its own.
const BATCH_GET_ITEM_BYTES_MAX: usize = 1024 * 1024;

/// BatchGetItem: every key read at once; one the cluster did not answer
/// in time, or past [`BATCH_GET_ITEM_BYTES_MAX`], is left unprocessed.
pub fn batch_get(client: &mut ClusterClient, catalog: &dyn Catalog, batch: &BatchGet) -> Result<Json, ApiError> {
    let gets = batch.gets();
    let mut calls = Vec::with_capacity(gets.len());
    let mut tables = Vec::with_capacity(gets.len());
    for get in &gets {
        let table = catalog.table(&get.table).ok_or_else(|| not_found(&get.table))?;
        calls.push(get_call(table_number(&table), &get.key, get.consistent));
        tables.push(table);
    }
    let Ok(answers) = client.call_many(calls) else {
        return Ok(ops::batch_get_response(batch, &vec![Fetched::Unprocessed; gets.len()]));
    };
    let mut results = Vec::with_capacity(gets.len());
    let mut item_bytes = 0usize;
    for ((answer, get), table) in answers.into_iter().zip(&gets).zip(&tables) {
        if item_bytes > BATCH_GET_ITEM_BYTES_MAX {
            results.push(Fetched::Unprocessed);
            continue;
        }
        let number = table_number(table);
        let record = (answer.code == ErrorCode::Success).then_some(answer.value);
        let seen = match made_whole(client, number, record, answer.version, get.consistent)? {
            Some(seen) => seen,
            None => read_record(client, number, &get.key, true)?,
        };
        let item = (seen.whole.as_deref()).and_then(|r| item_of(r, &get.key, &table.key_schema));
        item_bytes += item.as_ref().map_or(0, dynakv_dynamo::size::item_bytes);
        match item_bytes > BATCH_GET_ITEM_BYTES_MAX {
            true => results.push(Fetched::Unprocessed),
            false => results.push(Fetched::Read(item)),
        }
    }
    Ok(ops::batch_get_response(batch, &results))
}

/// BatchWriteItem: the writes one by one; one that fails for a passing
/// reason (a node away, overload) is left unprocessed. Every item is
/// checked for size first, so a refused batch writes nothing.
pub fn batch_write(client: &mut ClusterClient, catalog: &dyn Catalog, batch: &BatchWrite) -> Result<Json, ApiError> {
    for write in &batch.writes {
        if let ops::WriteAction::Put(item) = &write.action {
            let key_item = catalog.table(&write.table).map(|t| t.key_schema.key_map(&write.key));
            chunked::stored_form(&write.key, &key_item.unwrap_or_default(), item, [0; 16])?;
        }
    }
    let mut done = Vec::with_capacity(batch.writes.len());
    for item_write in &batch.writes {
        match write(client, catalog, item_write) {
            Ok(_) => done.push(true),
            Err(failure) if failure.error.kind == ErrorKind::Validation => return Err(failure.error),
            Err(_) => done.push(false),
        }
    }
    Ok(ops::batch_write_response(batch, &done))
}

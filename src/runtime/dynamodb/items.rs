//! Single items over the cluster. Every write of an item (PutItem,
//! UpdateItem, DeleteItem, and each of a BatchWriteItem) and every strongly
//! consistent read is a SWAP: a round of the item's home replicas (see the
//! node's `shard::rounds`), linearizable. A write runs
//! [`ops::apply_write`] on the item as it last saw it and stores the result
//! with a SWAP that holds only if the item is still that (else it tries
//! again on what the SWAP's round found); see [`write`]. An eventually
//! consistent GetItem reads one copy.

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

/// An item read back: its record, and the item if its key is the one
/// asked for (two keys sharing a record key are told apart here).
fn found(
    code: ErrorCode,
    value: Vec<u8>,
    key: &Key,
    schema: &dynakv_dynamo::key::KeySchema,
) -> (Option<Vec<u8>>, Option<Item>) {
    if code != ErrorCode::Success {
        return (None, None);
    }
    let item = item_of(&value, key, schema);
    (Some(value), item)
}

/// The item a record holds, if its key is `key`.
fn item_of(record: &[u8], key: &Key, schema: &dynakv_dynamo::key::KeySchema) -> Option<Item> {
    item_of_record(record).filter(|item| schema.item_key(item).ok().as_ref() == Some(key))
}

/// GetItem.
pub fn get(client: &mut ClusterClient, catalog: &dyn Catalog, get: &GetItem) -> Result<Json, ApiError> {
    let table = catalog.table(&get.table).ok_or_else(|| not_found(&get.table))?;
    let answer = client
        .call(get_call(table_number(&table), &get.key, get.consistent))
        .map_err(unavailable)?;
    let (_, item) = found(answer.code, answer.value, &get.key, &table.key_schema);
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
    record: Option<Vec<u8>>,
    /// The record's version: the tag of the write that stored it.
    version: i32,
    confirmed: bool,
}

fn read_record(client: &mut ClusterClient, table: u64, key: &Key, consistent: bool) -> Result<Seen, ApiError> {
    let answer = client.call(get_call(table, key, consistent)).map_err(unavailable)?;
    Ok(Seen {
        record: (answer.code == ErrorCode::Success).then_some(answer.value),
        version: answer.version,
        confirmed: consistent,
    })
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
    let mut seen = read_record(client, number, &write.key, false)?;
    for _ in 0..WRITE_ATTEMPTS_MAX {
        let current = seen
            .record
            .as_deref()
            .and_then(|r| item_of(r, &write.key, &table.key_schema));
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
            ops::Store::Put(item) => Some(records::item_record(&write.key, item)?),
            ops::Store::Delete if seen.record.is_some() => None,
            ops::Store::Unchanged | ops::Store::Delete => return Ok(outcome.response),
        };
        let expected = (seen.record.as_deref()).map_or(0, |record| wire::swap_hash(record, seen.version));
        let to = new.as_deref().map_or(SwapTo::Nothing, SwapTo::Value);
        let swapped = client.call(swap_call(key.clone(), expected, to)).map_err(unavailable)?;
        if swapped.code != ErrorCode::Conflict {
            return Ok(outcome.response);
        }
        if swapped.resent {
            // The item changed, maybe by this very write through a
            // coordinator an earlier send reached: its outcome is unknown.
            return Err(ApiError::new(
                ErrorKind::InternalServerError,
                "The write may or may not have taken effect; read the item before retrying",
            )
            .into());
        }
        seen = match swapped.has_value {
            true => Seen {
                record: (!swapped.value.is_empty()).then_some(swapped.value),
                version: swapped.version,
                confirmed: true,
            },
            false => read_record(client, number, &write.key, true)?,
        };
    }
    Err(ApiError::new(
        ErrorKind::InternalServerError,
        "The item kept changing during the write; retry",
    )
    .into())
}

/// BatchGetItem: every key read at once; one the cluster did not answer
/// in time is left unprocessed.
pub fn batch_get(client: &mut ClusterClient, catalog: &dyn Catalog, batch: &BatchGet) -> Result<Json, ApiError> {
    let gets = batch.gets();
    let mut calls = Vec::with_capacity(gets.len());
    let mut tables = Vec::with_capacity(gets.len());
    for get in &gets {
        let table = catalog.table(&get.table).ok_or_else(|| not_found(&get.table))?;
        calls.push(get_call(table_number(&table), &get.key, get.consistent));
        tables.push(table);
    }
    let results: Vec<Fetched> = match client.call_many(calls) {
        Ok(answers) => (answers.into_iter().zip(&gets).zip(&tables))
            .map(|((answer, get), table)| {
                Fetched::Read(found(answer.code, answer.value, &get.key, &table.key_schema).1)
            })
            .collect(),
        Err(_) => gets.iter().map(|_| Fetched::Unprocessed).collect(),
    };
    Ok(ops::batch_get_response(batch, &results))
}

/// BatchWriteItem: the writes one by one; one that fails for a passing
/// reason (a node away, overload) is left unprocessed. Every item is
/// checked for size first, so a refused batch writes nothing.
pub fn batch_write(client: &mut ClusterClient, catalog: &dyn Catalog, batch: &BatchWrite) -> Result<Json, ApiError> {
    for write in &batch.writes {
        if let ops::WriteAction::Put(item) = &write.action {
            records::item_record(&write.key, item)?;
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

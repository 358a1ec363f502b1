//! Query and Scan over the cluster: a partition's items come from its
//! bucket's coordinator in sort-key order, a table's from every bucket in
//! turn (a window of buckets asked at once); both feed the pure page
//! builders of [`dynakv_dynamo::ops`] lazily, so a page reads no more than
//! it takes (plus the window).

use super::chunked::{self, Whole};
use super::cluster_client::unavailable;
use super::cluster_client::{Answer, BATCH_REQUESTS_MAX, Call, ClusterClient};
use super::records::{self, item_of_record, table_number};
use crate::protocol::wire::{Command, ErrorCode, SWAP_ANY, SwapTo};
use crate::storage::hash::BUCKETS;
use crate::storage::item_key::{self, BucketRead, ITEM_KEY_BYTES};
use dynakv_dynamo::error::{ApiError, ErrorKind};
use dynakv_dynamo::key::{Key, KeySchema};
use dynakv_dynamo::ops::{self, Query, Scan, Start, TableDescription, partition_hash, scan_order_bytes};
use dynakv_dynamo::value::Item;
use serde_json::Value as Json;
use std::collections::VecDeque;

/// A bucket read page by page: the record values, in order.
pub struct BucketPages {
    key: [u8; ITEM_KEY_BYTES],
    prefix_bytes: usize,
    backward: bool,
    start: Option<(Vec<u8>, bool)>,
    done: bool,
    consistent: Option<Confirm>,
}

/// What a strongly consistent read needs to read an item its page left
/// unconfirmed in a round: the item's table and key schema.
#[derive(Clone)]
pub struct Confirm {
    pub table: u64,
    pub schema: KeySchema,
}

impl BucketPages {
    /// The records whose keys share `key`'s first `prefix_bytes`, from
    /// `start` (order bytes, inclusive or not); `consistent`: read from a
    /// majority of the bucket's home replicas (see the node's
    /// `shard::page_reads`).
    pub fn new(
        key: [u8; ITEM_KEY_BYTES],
        prefix_bytes: usize,
        (backward, start): (bool, Option<(Vec<u8>, bool)>),
        consistent: Option<Confirm>,
    ) -> BucketPages {
        BucketPages {
            key,
            prefix_bytes,
            backward,
            start,
            done: false,
            consistent,
        }
    }

    fn call(&self) -> Call {
        let read = BucketRead {
            prefix: &self.key[..self.prefix_bytes],
            backward: self.backward,
            start: self.start.as_ref().map(|(bytes, inclusive)| (&bytes[..], *inclusive)),
            consistent: self.consistent.is_some(),
        };
        Call {
            command: Command::ReadBucket,
            key: self.key.to_vec(),
            value: read.encode(),
        }
    }

    /// Takes an answer: its record values; the next page starts after the
    /// last of them. A consistent page's unconfirmed records are read
    /// again, each in a round of its item.
    fn take(&mut self, client: &mut ClusterClient, answer: Answer) -> Result<Vec<Vec<u8>>, ApiError> {
        let wrong = || ApiError::new(ErrorKind::InternalServerError, "A node answered a read wrongly");
        if answer.code != ErrorCode::Success {
            return Err(wrong());
        }
        let entries: Vec<(&[u8], bool)> = match self.consistent {
            Some(_) => item_key::confirmed_entries(&answer.value),
            None => item_key::entries(&answer.value).map(|e| e.into_iter().map(|v| (v, true)).collect()),
        }
        .ok_or_else(wrong)?;
        let last_order = (entries.last())
            .and_then(|(e, _)| item_key::split_record_value(e))
            .map(|(o, _)| o.to_vec());
        self.done = answer.version == 0 || last_order.is_none();
        if let Some(order) = last_order {
            self.start = Some((order, false));
        }
        let values = entries.iter().map(|(e, _)| e.to_vec()).collect();
        match &self.consistent {
            Some(confirm) if entries.iter().any(|(_, confirmed)| !confirmed) => {
                let unconfirmed = entries.iter().map(|(_, confirmed)| !confirmed).collect();
                confirmed_values(client, confirm, values, unconfirmed)
            }
            _ => Ok(values),
        }
    }

    /// The next page, `None` once the bucket is read.
    pub fn next_page(&mut self, client: &mut ClusterClient) -> Result<Option<Vec<Vec<u8>>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let answer = client.call(self.call()).map_err(unavailable)?;
        self.take(client, answer).map(Some)
    }
}

/// A page's record values with each unconfirmed one replaced by what a
/// round of its item reads (or left out: the item is gone).
fn confirmed_values(
    client: &mut ClusterClient,
    confirm: &Confirm,
    values: Vec<Vec<u8>>,
    unconfirmed: Vec<bool>,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let key_of = |value: &[u8]| {
        let item = chunked::key_item_of_record(value)?;
        confirm.schema.item_key(&item).ok()
    };
    let mut calls = Vec::new();
    for (value, _) in values.iter().zip(&unconfirmed).filter(|(_, u)| **u) {
        let key = key_of(value)
            .ok_or_else(|| ApiError::new(ErrorKind::InternalServerError, "A node answered a read wrongly"))?;
        calls.push(super::items::get_call(confirm.table, &key, true));
    }
    let mut read = client.call_many(calls).map_err(unavailable)?.into_iter();
    let mut out = Vec::with_capacity(values.len());
    for (value, unconfirmed) in values.into_iter().zip(unconfirmed) {
        if !unconfirmed {
            out.push(value);
        } else if let Some(answer) = read.next().filter(|a| a.code == ErrorCode::Success) {
            out.push(answer.value);
        }
    }
    Ok(out)
}

/// Items for a page builder, made whole one at a time as the builder takes
/// them (a page of heads may name hundreds of megabytes of chunks; a page
/// takes a megabyte); an error ends them and is kept.
struct Fed<'c, F> {
    client: &'c mut ClusterClient,
    table: u64,
    schema: KeySchema,
    buffered: VecDeque<Vec<u8>>,
    fetch: F,
    error: Option<ApiError>,
}

impl<F> Fed<'_, F> {
    /// The item of a record a page read; for a head whose chunks a later
    /// write removed, the item as a round reads it now.
    fn item(&mut self, record: &[u8]) -> Result<Option<Item>, ApiError> {
        match chunked::whole(self.client, self.table, Some(record))? {
            Whole::Record(whole) => Ok(item_of_record(&whole)),
            Whole::Absent => Ok(None),
            Whole::ChunksGone => {
                let key = chunked::key_item_of_record(record).and_then(|item| self.schema.item_key(&item).ok());
                match key {
                    Some(key) => super::items::read_item(self.client, self.table, &key, &self.schema),
                    None => Ok(None),
                }
            }
        }
    }
}

impl<F> Iterator for Fed<'_, F>
where
    F: FnMut(&mut ClusterClient) -> Result<Option<Vec<Vec<u8>>>, ApiError>,
{
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            while self.buffered.is_empty() {
                match (self.fetch)(self.client) {
                    Ok(Some(values)) => self.buffered.extend(values),
                    Ok(None) => return None,
                    Err(error) => {
                        self.error = Some(error);
                        return None;
                    }
                }
            }
            let record = self.buffered.pop_front()?;
            match self.item(&record) {
                Ok(Some(item)) => return Some(item),
                Ok(None) => {}
                Err(error) => {
                    self.error = Some(error);
                    return None;
                }
            }
        }
    }
}

fn fed<'c, F>(client: &'c mut ClusterClient, table: &TableDescription, fetch: F) -> Fed<'c, F> {
    Fed {
        client,
        table: table_number(table),
        schema: table.key_schema.clone(),
        buffered: VecDeque::new(),
        fetch,
        error: None,
    }
}

/// A Query's page, from its partition's bucket.
pub fn query(client: &mut ClusterClient, table: &TableDescription, query: &Query) -> Result<Json, ApiError> {
    let number = table_number(table);
    let partition = Key {
        partition: query.partition.clone(),
        sort: None,
    };
    let mut order = scan_order_bytes(&partition);
    let start = match query.start() {
        Start::Nothing => return ops::query_page(query, Vec::new()),
        Start::Edge => None,
        Start::At(bytes) => Some((bytes, true)),
        Start::After(bytes) => Some((bytes, false)),
    };
    let start = start.map(|(bytes, inclusive)| {
        order.extend_from_slice(&bytes);
        (order, inclusive)
    });
    let key = item_key::item_key(number, partition_hash(&query.partition), &[0; 32]);
    let consistent = query.read.consistent.then(|| Confirm {
        table: number,
        schema: table.key_schema.clone(),
    });
    let mut pages = BucketPages::new(
        key,
        item_key::PARTITION_PREFIX_BYTES,
        (!query.forward, start),
        consistent,
    );
    let mut items = fed(client, table, |client: &mut ClusterClient| pages.next_page(client));
    let page = ops::query_page(query, &mut items);
    match items.error {
        Some(error) => Err(error),
        None => page,
    }
}

/// A table's records bucket by bucket, from a bucket and a start in it.
struct TablePages {
    number: u64,
    consistent: Option<Confirm>,
    next_bucket: usize,
    first_start: Option<(Vec<u8>, bool)>,
    ready: VecDeque<Vec<Vec<u8>>>,
}

impl TablePages {
    fn new(number: u64, (bucket, start): (usize, Option<(Vec<u8>, bool)>), consistent: Option<Confirm>) -> TablePages {
        TablePages {
            number,
            consistent,
            next_bucket: bucket,
            first_start: start,
            ready: VecDeque::new(),
        }
    }

    /// The next bucket's records (empty for an empty bucket), `None` after the last.
    fn next_page(&mut self, client: &mut ClusterClient) -> Result<Option<Vec<Vec<u8>>>, ApiError> {
        if self.ready.is_empty() && self.next_bucket < BUCKETS {
            self.read_window(client)?;
        }
        Ok(self.ready.pop_front())
    }

    /// Reads the next window of buckets at once; a bucket with more than
    /// one reply's worth is read on to its end.
    fn read_window(&mut self, client: &mut ClusterClient) -> Result<(), ApiError> {
        let end = (self.next_bucket + BATCH_REQUESTS_MAX).min(BUCKETS);
        let mut buckets: Vec<BucketPages> = (self.next_bucket..end)
            .map(|bucket| {
                let key = item_key::bucket_key(bucket as u16, self.number);
                let start = self.first_start.take();
                BucketPages::new(
                    key,
                    item_key::TABLE_PREFIX_BYTES,
                    (false, start),
                    self.consistent.clone(),
                )
            })
            .collect();
        self.next_bucket = end;
        let calls = buckets.iter().map(BucketPages::call).collect();
        let answers = client.call_many(calls).map_err(unavailable)?;
        for (pages, answer) in buckets.iter_mut().zip(answers) {
            let mut records = pages.take(client, answer)?;
            while let Some(more) = pages.next_page(client)? {
                records.extend(more);
            }
            self.ready.push_back(records);
        }
        Ok(())
    }
}

/// A Scan's page: the table's buckets in order, each in scan order.
pub fn scan(client: &mut ClusterClient, table: &TableDescription, scan: &Scan) -> Result<Json, ApiError> {
    let number = table_number(table);
    let (bucket, start) = match &scan.read.exclusive_start {
        Some(key) => (
            usize::from(records::partition_bucket(number, key)),
            Some((scan_order_bytes(key), false)),
        ),
        None => (0, None),
    };
    let consistent = scan.read.consistent.then(|| Confirm {
        table: number,
        schema: table.key_schema.clone(),
    });
    let mut pages = TablePages::new(number, (bucket, start), consistent);
    let mut items = fed(client, table, |client: &mut ClusterClient| pages.next_page(client));
    let page = ops::scan_page(scan, &mut items);
    match items.error {
        Some(error) => Err(error),
        None => page,
    }
}

/// Removes every item of a deleted table.
pub fn remove_every_item(client: &mut ClusterClient, table: &TableDescription) -> Result<(), ApiError> {
    let number = table_number(table);
    let mut pages = TablePages::new(number, (0, None), None);
    while let Some(records) = pages.next_page(client)? {
        let calls: Vec<Call> = records
            .iter()
            .filter_map(|record| chunked::key_item_of_record(record))
            .filter_map(|item| table.key_schema.item_key(&item).ok())
            .map(|key| {
                let key = records::item_record_key(number, &key).to_vec();
                super::items::swap_call(key, SWAP_ANY, SwapTo::Nothing)
            })
            .collect();
        client.call_many(calls).map_err(unavailable)?;
        for record in &records {
            chunked::remove_chunks(client, number, record);
        }
    }
    Ok(())
}

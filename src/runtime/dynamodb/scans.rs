//! Query and Scan over the cluster: a partition's items come from its
//! bucket's coordinator in sort-key order, a table's from every bucket in
//! turn (a window of buckets asked at once); both feed the pure page
//! builders of [`dynakv_dynamo::ops`] lazily, so a page reads no more than
//! it takes (plus the window).

use super::cluster_client::unavailable;
use super::cluster_client::{BATCH_REQUESTS_MAX, Call, ClusterClient};
use super::records::{self, item_of_record, table_number};
use crate::protocol::wire::{Command, ErrorCode, SWAP_ANY, SwapTo};
use crate::storage::hash::BUCKETS;
use crate::storage::item_key::{self, BucketRead, ITEM_KEY_BYTES};
use dynakv_dynamo::error::{ApiError, ErrorKind};
use dynakv_dynamo::key::Key;
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
}

impl BucketPages {
    /// The records whose keys share `key`'s first `prefix_bytes`, from
    /// `start` (order bytes, inclusive or not).
    pub fn new(
        key: [u8; ITEM_KEY_BYTES],
        prefix_bytes: usize,
        backward: bool,
        start: Option<(Vec<u8>, bool)>,
    ) -> BucketPages {
        BucketPages {
            key,
            prefix_bytes,
            backward,
            start,
            done: false,
        }
    }

    fn call(&self) -> Call {
        let read = BucketRead {
            prefix: &self.key[..self.prefix_bytes],
            backward: self.backward,
            start: self.start.as_ref().map(|(bytes, inclusive)| (&bytes[..], *inclusive)),
        };
        Call {
            command: Command::ReadBucket,
            key: self.key.to_vec(),
            value: read.encode(),
        }
    }

    /// Takes an answer: its record values; the next page starts after the
    /// last of them.
    fn take(&mut self, code: ErrorCode, value: &[u8], more: bool) -> Result<Vec<Vec<u8>>, ApiError> {
        let entries = (code == ErrorCode::Success)
            .then(|| item_key::entries(value))
            .flatten()
            .ok_or_else(|| ApiError::new(ErrorKind::InternalServerError, "A node answered a read wrongly"))?;
        let last_order = entries
            .last()
            .and_then(|e| item_key::split_record_value(e))
            .map(|(o, _)| o.to_vec());
        self.done = !more || last_order.is_none();
        if let Some(order) = last_order {
            self.start = Some((order, false));
        }
        Ok(entries.into_iter().map(<[u8]>::to_vec).collect())
    }

    /// The next page, `None` once the bucket is read.
    pub fn next_page(&mut self, client: &mut ClusterClient) -> Result<Option<Vec<Vec<u8>>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let answer = client.call(self.call()).map_err(unavailable)?;
        self.take(answer.code, &answer.value, answer.version != 0).map(Some)
    }
}

/// Items for a page builder; an error ends them and is kept.
struct Fed<'c, F> {
    client: &'c mut ClusterClient,
    buffered: VecDeque<Item>,
    fetch: F,
    error: Option<ApiError>,
}

impl<F> Iterator for Fed<'_, F>
where
    F: FnMut(&mut ClusterClient) -> Result<Option<Vec<Vec<u8>>>, ApiError>,
{
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        while self.buffered.is_empty() {
            match (self.fetch)(self.client) {
                Ok(Some(values)) => self.buffered.extend(values.iter().filter_map(|v| item_of_record(v))),
                Ok(None) => return None,
                Err(error) => {
                    self.error = Some(error);
                    return None;
                }
            }
        }
        self.buffered.pop_front()
    }
}

fn fed<F>(client: &mut ClusterClient, fetch: F) -> Fed<'_, F> {
    Fed {
        client,
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
    let mut pages = BucketPages::new(key, item_key::PARTITION_PREFIX_BYTES, !query.forward, start);
    let mut items = fed(client, |client: &mut ClusterClient| pages.next_page(client));
    let page = ops::query_page(query, &mut items);
    match items.error {
        Some(error) => Err(error),
        None => page,
    }
}

/// A table's records bucket by bucket, from a bucket and a start in it.
struct TablePages {
    number: u64,
    next_bucket: usize,
    first_start: Option<(Vec<u8>, bool)>,
    ready: VecDeque<Vec<Vec<u8>>>,
}

impl TablePages {
    fn new(number: u64, bucket: usize, start: Option<(Vec<u8>, bool)>) -> TablePages {
        TablePages {
            number,
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
                BucketPages::new(key, item_key::TABLE_PREFIX_BYTES, false, self.first_start.take())
            })
            .collect();
        self.next_bucket = end;
        let calls = buckets.iter().map(BucketPages::call).collect();
        let answers = client.call_many(calls).map_err(unavailable)?;
        for (pages, answer) in buckets.iter_mut().zip(answers) {
            let mut records = pages.take(answer.code, &answer.value, answer.version != 0)?;
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
    let mut pages = TablePages::new(number, bucket, start);
    let mut items = fed(client, |client: &mut ClusterClient| pages.next_page(client));
    let page = ops::scan_page(scan, &mut items);
    match items.error {
        Some(error) => Err(error),
        None => page,
    }
}

/// Removes every item of a deleted table.
pub fn remove_every_item(client: &mut ClusterClient, table: &TableDescription) -> Result<(), ApiError> {
    let number = table_number(table);
    let mut pages = TablePages::new(number, 0, None);
    while let Some(records) = pages.next_page(client)? {
        let calls: Vec<Call> = records
            .iter()
            .filter_map(|record| item_of_record(record))
            .filter_map(|item| table.key_schema.item_key(&item).ok())
            .map(|key| {
                let key = records::item_record_key(number, &key).to_vec();
                super::items::swap_call(key, SWAP_ANY, SwapTo::Nothing)
            })
            .collect();
        client.call_many(calls).map_err(unavailable)?;
    }
    Ok(())
}

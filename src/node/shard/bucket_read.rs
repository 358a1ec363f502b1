//! A page of a bucket's records for a node-made READ_BUCKET (the DynamoDB
//! API's Query and Scan, see [`crate::storage::item_key`]): the live
//! records under the read's key prefix, sorted by the order their values
//! carry, from the read's start, as many as one reply holds; with their
//! keys and stamps for a consistent read's acceptors.

use crate::cluster::internal::{Entry, PAGE_VOTE_ENTRIES_MAX};
use crate::protocol::wire::VALUE_BYTES_MAX;
use crate::storage::hash::BucketId;
use crate::storage::item_key::{self, BucketRead};
use crate::storage::record::Record;
use crate::storage::store::Store;

/// The page's bytes (see [`item_key::entries`]) and whether records are
/// left after it. A bucket holds a few thousand records at most (a 64 MiB
/// node's share of 4,096), so sorting the matching ones per page is cheap.
pub fn page(store: &Store, bucket: BucketId, read: &BucketRead<'_>) -> (Vec<u8>, bool) {
    let (records, more) = page_records(store, bucket, read, usize::MAX);
    let mut out = Vec::new();
    for record in records {
        item_key::push_entry(&mut out, record.value());
    }
    crate::invariant!(out.len() <= VALUE_BYTES_MAX, "a page of {} bytes", out.len());
    (out, more)
}

/// [`page`]'s records as entries with their keys and stamps: an
/// acceptor's answer to a consistent read of the bucket.
pub fn page_entries(store: &Store, bucket: BucketId, read: &BucketRead<'_>) -> (Vec<Entry>, bool) {
    let (records, more) = page_records(store, bucket, read, PAGE_VOTE_ENTRIES_MAX);
    let entries = records
        .into_iter()
        .map(|record| Entry {
            key: record.key().to_vec(),
            value: record.value().to_vec(),
            version: record.version(),
            stamp: record.stamp(),
            tombstone: false,
        })
        .collect();
    (entries, more)
}

/// The live records of a page, in the read's order, at most `records_max`
/// of them, and whether more are left after them.
fn page_records<'s>(
    store: &'s Store,
    bucket: BucketId,
    read: &BucketRead<'_>,
    records_max: usize,
) -> (Vec<&'s Record>, bool) {
    let mut found: Vec<(&[u8], &'s Record)> = store
        .bucket_records(bucket)
        .filter(|record| !record.is_tombstone() && record.key().starts_with(read.prefix))
        .filter_map(|record| {
            let (order, _) = item_key::split_record_value(record.value())?;
            read.admits(order).then_some((order, record))
        })
        .collect();
    found.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if read.backward {
        found.reverse();
    }
    let mut bytes = 0;
    let mut taken = Vec::new();
    let mut more = false;
    for (at, (_, record)) in found.iter().enumerate() {
        if bytes + 4 + record.value().len() > VALUE_BYTES_MAX || taken.len() == records_max {
            more = at < found.len();
            break;
        }
        bytes += 4 + record.value().len();
        taken.push(*record);
    }
    // A reader asks again from the page's last record: an empty page that
    // says more is left would be asked for forever.
    crate::invariant!(!more || !taken.is_empty(), "an empty page says more is left");
    (taken, more)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryBudget;
    use crate::storage::stamp::Stamp;
    use crate::storage::store::Write;
    use std::sync::Arc;

    fn store_with(values: &[(&[u8; 32], &[u8], usize)]) -> Store {
        let mut store = Store::new(Arc::new(MemoryBudget::new(64 << 20)));
        for (at, (suffix, order, payload_bytes)) in values.iter().enumerate() {
            let key = item_key::item_key(3, 9, suffix);
            let value = item_key::record_value(order, &vec![1; *payload_bytes]).unwrap();
            let write = Write::Value {
                value: &value,
                version: 0,
            };
            store.apply(&key, write, Stamp(at as u64 + 1));
        }
        store
    }

    fn orders(bytes: &[u8]) -> Vec<Vec<u8>> {
        let entries = item_key::entries(bytes).unwrap();
        entries
            .iter()
            .map(|e| item_key::split_record_value(e).unwrap().0.to_vec())
            .collect()
    }

    #[test]
    fn a_page_is_sorted_in_the_reads_direction_from_its_start() {
        let store = store_with(&[(&[1; 32], b"b", 3), (&[2; 32], b"a", 3), (&[3; 32], b"c", 3)]);
        let key = item_key::item_key(3, 9, &[0; 32]);
        let bucket = crate::storage::hash::named_bucket(&key).unwrap();
        let prefix = &key[..item_key::PARTITION_PREFIX_BYTES];
        let all = BucketRead {
            prefix,
            backward: false,
            start: None,
            consistent: false,
        };
        let (bytes, more) = page(&store, bucket, &all);
        assert_eq!(
            (orders(&bytes), more),
            (vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()], false)
        );
        let back = BucketRead {
            prefix,
            backward: true,
            start: Some((b"b", false)),
            consistent: false,
        };
        assert_eq!(orders(&page(&store, bucket, &back).0), vec![b"a".to_vec()]);
        let other_table = item_key::bucket_key(bucket, 4);
        let none = BucketRead {
            prefix: &other_table[..item_key::TABLE_PREFIX_BYTES],
            backward: false,
            start: None,
            consistent: false,
        };
        assert!(page(&store, bucket, &none).0.is_empty());
    }

    #[test]
    fn a_page_stops_when_a_reply_is_full_and_says_more_is_left() {
        let key = item_key::item_key(3, 9, &[0; 32]);
        let bucket = crate::storage::hash::named_bucket(&key).unwrap();
        let read = BucketRead {
            prefix: &key[..item_key::PARTITION_PREFIX_BYTES],
            backward: false,
            start: None,
            consistent: false,
        };
        // Values of 6,000 bytes; of 4,998 (a 2-byte order length, a 1-byte
        // order), which fit a reply together but not with their lengths;
        // and of the largest item record, which fills a page alone.
        let half = VALUE_BYTES_MAX / 2 - 2 - 2 - 1;
        let largest = item_key::ITEM_RECORD_BYTES_MAX - 2 - 1;
        for payload in [6_000, half, largest] {
            let store = store_with(&[(&[1; 32], b"a", payload), (&[2; 32], b"b", payload)]);
            let (bytes, more) = page(&store, bucket, &read);
            assert_eq!((orders(&bytes), more), (vec![b"a".to_vec()], true), "{payload}");
        }
    }
}

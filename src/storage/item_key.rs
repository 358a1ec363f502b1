//! The records the node keeps for the DynamoDB API, in the store every
//! other record lives in: their keys, the bucket a key names, the order a
//! record's value carries, and the format of a bucket read.
//!
//! An item key is [`ITEM_KEY_BYTES`] bytes, one more than a client of the
//! UDP protocol may use, so the two key spaces never meet:
//! `0xD1 | bucket u16 | table u64 | partition hash u64 | 14 bytes of the
//! item's own hash`. The bucket is written in the key (the DynamoDB layer
//! derives it from the table and the partition key), so a partition's
//! items share a bucket and one coordinator answers a Query. Tables are
//! records of the reserved table 0 in bucket 0.
//!
//! A record's value starts with its order (`u16` length, then the bytes
//! the bucket's reads sort by); the rest is the DynamoDB layer's.

use crate::protocol::wire::{STORED_KEY_BYTES_MAX, VALUE_BYTES_MAX};
#[cfg(test)]
use crate::storage::hash::named_bucket;
use crate::storage::hash::{BucketId, ITEM_NAMESPACE as NAMESPACE, bucket_of, fmix64};

/// Bytes of every key this module makes.
pub const ITEM_KEY_BYTES: usize = STORED_KEY_BYTES_MAX;
/// Bytes of a key that name its table (namespace, bucket, table).
pub const TABLE_PREFIX_BYTES: usize = 11;
/// Bytes of a key that name its partition (the table's, then its hash).
pub const PARTITION_PREFIX_BYTES: usize = 19;
/// The table id of the table catalog: no table of a client has it.
pub const CATALOG_TABLE: u64 = 0;
/// The bucket the catalog lives in.
pub const CATALOG_BUCKET: BucketId = 0;
/// Bytes an item's record value may have: one value of the node's
/// protocol, less a SWAP's header (9 bytes) and a bucket read's length
/// (4 bytes), so that every record fits a page of a bucket read alone.
/// The UDP protocol's 10,000-byte value bounds it, well under DynamoDB's
/// 400 KB.
pub const ITEM_RECORD_BYTES_MAX: usize = VALUE_BYTES_MAX - 16;

/// The bucket of a table's partition.
pub fn bucket_of_partition(table: u64, partition_hash: u64) -> BucketId {
    if table == CATALOG_TABLE {
        return CATALOG_BUCKET;
    }
    bucket_of(fmix64(table ^ fmix64(partition_hash)))
}

/// The key of an item (or, in table 0, of a table) whose own hash is
/// `suffix` (its first 14 bytes are used).
pub fn item_key(table: u64, partition_hash: u64, suffix: &[u8; 32]) -> [u8; ITEM_KEY_BYTES] {
    let mut key = [0u8; ITEM_KEY_BYTES];
    key[0] = NAMESPACE;
    key[1..3].copy_from_slice(&bucket_of_partition(table, partition_hash).to_be_bytes());
    key[3..11].copy_from_slice(&table.to_be_bytes());
    key[11..19].copy_from_slice(&partition_hash.to_be_bytes());
    key[19..].copy_from_slice(&suffix[..ITEM_KEY_BYTES - 19]);
    key
}

/// A key in `bucket` of `table` that no item has: what a read of the
/// bucket is routed by.
pub fn bucket_key(bucket: BucketId, table: u64) -> [u8; ITEM_KEY_BYTES] {
    let mut key = [0u8; ITEM_KEY_BYTES];
    key[0] = NAMESPACE;
    key[1..3].copy_from_slice(&bucket.to_be_bytes());
    key[3..11].copy_from_slice(&table.to_be_bytes());
    key
}

/// A record value: `order`, then `payload`. `None` if the order is longer
/// than a `u16` counts.
pub fn record_value(order: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(order.len()).ok()?;
    let mut value = Vec::with_capacity(2 + order.len() + payload.len());
    value.extend_from_slice(&len.to_le_bytes());
    value.extend_from_slice(order);
    value.extend_from_slice(payload);
    Some(value)
}

/// A record value's order and payload, `None` if it is not one.
pub fn split_record_value(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = value.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len));
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A read of a bucket's records whose keys start with `prefix`, in their
/// order (backward: descending), from `start` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketRead<'a> {
    pub prefix: &'a [u8],
    pub backward: bool,
    /// Order bytes to start from, and whether a record of exactly that
    /// order is in (else the read starts after it).
    pub start: Option<(&'a [u8], bool)>,
    /// Read from a majority of the bucket's home replicas, each record
    /// marked confirmed or not (see [`crate::node::shard`]'s `page_reads`).
    pub consistent: bool,
}

const BACKWARD: u8 = 1;
const HAS_START: u8 = 2;
const INCLUSIVE: u8 = 4;
const CONSISTENT: u8 = 8;

impl<'a> BucketRead<'a> {
    /// `prefix length u8 | prefix | flags u8 | start bytes`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.prefix.len() + self.start.map_or(0, |(s, _)| s.len()));
        out.push(self.prefix.len().min(ITEM_KEY_BYTES) as u8);
        out.extend_from_slice(&self.prefix[..self.prefix.len().min(ITEM_KEY_BYTES)]);
        let mut flags = if self.backward { BACKWARD } else { 0 };
        flags |= if self.consistent { CONSISTENT } else { 0 };
        if let Some((start, inclusive)) = self.start {
            flags |= HAS_START | if inclusive { INCLUSIVE } else { 0 };
            out.push(flags);
            out.extend_from_slice(start);
        } else {
            out.push(flags);
        }
        out
    }

    pub fn decode(bytes: &'a [u8]) -> Option<BucketRead<'a>> {
        let (&len, rest) = bytes.split_first()?;
        let len = usize::from(len);
        if len > ITEM_KEY_BYTES || rest.len() <= len {
            return None;
        }
        let (prefix, rest) = rest.split_at(len);
        let (&flags, start) = rest.split_first()?;
        if flags & !(BACKWARD | HAS_START | INCLUSIVE | CONSISTENT) != 0
            || (flags & HAS_START == 0 && !start.is_empty())
        {
            return None;
        }
        Some(BucketRead {
            prefix,
            backward: flags & BACKWARD != 0,
            start: (flags & HAS_START != 0).then_some((start, flags & INCLUSIVE != 0)),
            consistent: flags & CONSISTENT != 0,
        })
    }

    /// Whether a record of this order comes at or after the start.
    pub fn admits(&self, order: &[u8]) -> bool {
        let Some((start, inclusive)) = self.start else {
            return true;
        };
        let ordering = if self.backward {
            start.cmp(order)
        } else {
            order.cmp(start)
        };
        ordering.is_gt() || (inclusive && ordering.is_eq())
    }
}

/// A bucket read's answer: each record value with its `u32` length.
pub fn push_entry(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// The record values of a bucket read's answer; `None` if malformed.
pub fn entries(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (entry, rest) = rest.split_at(len);
        out.push(entry);
        bytes = rest;
    }
    Some(out)
}

/// A consistent read's page (entries, then a bitmap whose bit `i` is set
/// when entry `i` is unconfirmed): its record values, each with whether it is confirmed;
/// `None` if the page is malformed.
pub fn confirmed_entries(page: &[u8]) -> Option<Vec<(&[u8], bool)>> {
    let mut entries = entries(page)?;
    let bitmap = entries.pop()?;
    if bitmap.len() != entries.len().div_ceil(8) {
        return None;
    }
    let marked = |at: usize| bitmap[at / 8] & 1 << (at % 8) != 0;
    Some(
        entries
            .into_iter()
            .enumerate()
            .map(|(at, e)| (e, !marked(at)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::hash::bucket_of_key;

    #[test]
    fn an_item_key_names_its_partitions_bucket_and_is_longer_than_a_clients() {
        let key = item_key(7, 99, &[5; 32]);
        assert_eq!(key.len(), crate::protocol::wire::KEY_BYTES_MAX + 1);
        assert_eq!(named_bucket(&key), Some(bucket_of_partition(7, 99)));
        assert_eq!(bucket_of_key(&key), bucket_of_partition(7, 99));
        let hash = crate::storage::hash::key_hash(&key);
        assert_eq!(
            crate::storage::hash::bucket_of(hash),
            bucket_of_partition(7, 99),
            "the store's bucket"
        );
        let other = item_key(7, 99, &[6; 32]);
        assert_eq!(key[..PARTITION_PREFIX_BYTES], other[..PARTITION_PREFIX_BYTES]);
        assert_eq!(named_bucket(b"a client key"), None);
        assert_eq!(named_bucket(&bucket_key(12, 7)), Some(12));
        assert_eq!(bucket_of_partition(CATALOG_TABLE, 5), CATALOG_BUCKET);
    }

    #[test]
    fn record_values_split_back() {
        let value = record_value(b"order", b"payload").unwrap();
        assert_eq!(split_record_value(&value), Some((&b"order"[..], &b"payload"[..])));
        assert_eq!(split_record_value(&[9]), None);
        assert_eq!(split_record_value(&[9, 0, 1]), None);
    }

    #[test]
    fn bucket_reads_round_trip_and_refuse_junk() {
        for read in [
            BucketRead {
                prefix: b"abc",
                backward: true,
                start: Some((b"s", true)),
                consistent: true,
            },
            BucketRead {
                prefix: b"",
                backward: false,
                start: None,
                consistent: false,
            },
            BucketRead {
                prefix: b"p",
                backward: false,
                start: Some((b"", false)),
                consistent: false,
            },
        ] {
            assert_eq!(BucketRead::decode(&read.encode()), Some(read.clone()));
        }
        assert_eq!(BucketRead::decode(&[]), None);
        assert_eq!(BucketRead::decode(&[40; 50]), None);
        assert_eq!(BucketRead::decode(&[0, 0, 1]), None, "a start without its flag");
        assert_eq!(BucketRead::decode(&[0, 64]), None, "an unknown flag");
        assert_eq!(BucketRead::decode(&[0, 16]), None, "an unknown flag");
    }

    #[test]
    fn a_read_admits_what_lies_at_or_past_its_start_in_its_direction() {
        let forward = BucketRead {
            prefix: b"",
            backward: false,
            start: Some((b"m", false)),
            consistent: false,
        };
        assert!(!forward.admits(b"a") && !forward.admits(b"m") && forward.admits(b"z"));
        let back = BucketRead {
            prefix: b"",
            backward: true,
            start: Some((b"m", true)),
            consistent: false,
        };
        assert!(back.admits(b"a") && back.admits(b"m") && !back.admits(b"z"));
    }

    #[test]
    fn entries_round_trip_and_refuse_truncation() {
        let mut out = Vec::new();
        push_entry(&mut out, b"one");
        push_entry(&mut out, b"");
        assert_eq!(entries(&out), Some(vec![&b"one"[..], &b""[..]]));
        assert_eq!(entries(&out[..5]), None);
    }
}

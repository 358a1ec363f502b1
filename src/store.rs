//! A shard's partition of the key space: a hashbrown table of [`Record`]s
//! plus, per bucket, a digest and counts kept up to date on every write.
//!
//! Writes carry a [`Stamp`]; a write older than what is stored is ignored
//! (last writer wins), so replicated, transferred and repaired copies can be
//! applied in any order. Every byte is accounted against the shared
//! [`MemoryBudget`]. The store knows nothing of sockets or the protocol.

use crate::hash::{BUCKETS, BucketId, bucket_of, fmix64, key_hash};
use crate::memory::MemoryBudget;
use crate::record::Record;
use crate::stamp::Stamp;
use hashbrown::HashTable;
use std::sync::Arc;

/// Per-bucket summary, maintained incrementally.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketStats {
    /// Order-independent sum of `fmix64(key_hash ^ stamp)` over every record,
    /// tombstones included: equal digests mean (with high probability) equal
    /// contents.
    pub digest: u64,
    pub live_keys: u32,
    pub tombstones: u32,
}

impl BucketStats {
    fn add(&mut self, hash: u64, stamp: Stamp, tombstone: bool) {
        self.digest = self.digest.wrapping_add(entry_digest(hash, stamp));
        if tombstone {
            self.tombstones += 1;
        } else {
            self.live_keys += 1;
        }
    }

    fn remove(&mut self, hash: u64, stamp: Stamp, tombstone: bool) {
        self.digest = self.digest.wrapping_sub(entry_digest(hash, stamp));
        if tombstone {
            self.tombstones -= 1;
        } else {
            self.live_keys -= 1;
        }
    }
}

/// What a write carries besides key and stamp.
#[derive(Clone, Copy, Debug)]
pub enum Write<'a> {
    Value { value: &'a [u8], version: i32 },
    Tombstone,
}

/// The result of offering a write to the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Stored,
    /// A record with an equal or newer stamp is already there.
    Stale,
    /// The budget has no room for it.
    OutOfSpace,
}

/// Whether a write may be refused for space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A new client write: refused with `OUT_OF_SPACE` when the budget is full.
    Checked,
    /// A copy of a write already admitted elsewhere (replication, repair):
    /// taken regardless, the budget's reserve absorbs it.
    Forced,
}

pub struct Partition {
    table: HashTable<Record>,
    buckets: Box<[BucketStats]>,
    budget: Arc<MemoryBudget>,
    /// Bytes this partition has reserved in the budget.
    accounted_bytes: usize,
    table_bytes: usize,
}

/// Smallest table allocation worth counting as a rehash peak.
const TABLE_BYTES_MIN: usize = 1024;
/// Trailing control bytes of a hashbrown table (one SIMD group).
const TABLE_GROUP_BYTES: usize = 16;

fn entry_digest(hash: u64, stamp: Stamp) -> u64 {
    fmix64(hash ^ stamp.0)
}

impl Partition {
    pub fn new(budget: Arc<MemoryBudget>) -> Partition {
        Partition {
            table: HashTable::new(),
            buckets: vec![BucketStats::default(); BUCKETS].into_boxed_slice(),
            budget,
            accounted_bytes: 0,
            table_bytes: 0,
        }
    }

    fn find(&self, key: &[u8], hash: u64) -> Option<&Record> {
        self.table.find(hash, |record| record.key() == key)
    }

    /// The live record of a key (tombstones are not returned).
    pub fn get(&self, key: &[u8]) -> Option<&Record> {
        self.find(key, key_hash(key)).filter(|record| !record.is_tombstone())
    }

    /// The stamp of whatever is stored for the key, tombstone or not.
    pub fn stamp_of(&self, key: &[u8]) -> Option<Stamp> {
        self.find(key, key_hash(key)).map(Record::stamp)
    }

    /// Offers a stamped write; keeps it if it is newer than what is stored.
    pub fn apply(&mut self, key: &[u8], write: Write<'_>, stamp: Stamp, admission: Admission) -> Applied {
        let hash = key_hash(key);
        let bucket = usize::from(bucket_of(hash));
        let old = self
            .find(key, hash)
            .map(|record| (record.stamp(), record.heap_bytes(), record.is_tombstone()));
        if old.is_some_and(|(old_stamp, _, _)| old_stamp >= stamp) {
            return Applied::Stale;
        }
        let (value, version, tombstone) = match write {
            Write::Value { value, version } => (value, version, false),
            Write::Tombstone => (&[][..], 0, true),
        };
        let new_bytes = Record::heap_bytes_for(key.len(), value.len());
        let old_bytes = old.map_or(0, |(_, bytes, _)| bytes);
        let growth = new_bytes.saturating_sub(old_bytes);
        // A full table doubles on this insert, and old and new tables live
        // side by side while it rehashes: that peak must fit too.
        let rehash_peak = if old.is_none() { self.rehash_peak_bytes() } else { 0 };
        match admission {
            Admission::Checked if growth > 0 && !self.budget.try_reserve(growth + rehash_peak) => {
                return Applied::OutOfSpace;
            }
            Admission::Checked => self.budget.release(rehash_peak),
            Admission::Forced => self.budget.force_reserve(growth),
        }
        self.accounted_bytes += growth;
        let record = Record::new(key, value, version, stamp, tombstone);
        if let Some((old_stamp, _, old_tombstone)) = old {
            let slot = self
                .table
                .find_mut(hash, |record| record.key() == key)
                .expect("found above");
            *slot = record;
            self.buckets[bucket].remove(hash, old_stamp, old_tombstone);
            self.release(old_bytes.saturating_sub(new_bytes));
        } else {
            self.table.insert_unique(hash, record, |record| key_hash(record.key()));
            self.account_table();
        }
        self.buckets[bucket].add(hash, stamp, tombstone);
        Applied::Stored
    }

    /// Removes a key outright, with no tombstone (a node that is the only
    /// replica, or tombstone collection). Returns whether it was there.
    pub fn forget(&mut self, key: &[u8]) -> bool {
        let hash = key_hash(key);
        let Ok(entry) = self.table.find_entry(hash, |record| record.key() == key) else {
            return false;
        };
        let (record, _) = entry.remove();
        self.unaccount_record(hash, &record);
        true
    }

    fn unaccount_record(&mut self, hash: u64, record: &Record) {
        self.buckets[usize::from(bucket_of(hash))].remove(hash, record.stamp(), record.is_tombstone());
        self.release(record.heap_bytes());
    }

    fn release(&mut self, bytes: usize) {
        self.accounted_bytes -= bytes;
        self.budget.release(bytes);
    }

    /// Keeps the budget in step with the table's own allocation.
    fn account_table(&mut self) {
        let now = self.table.allocation_size();
        self.budget.recharge(self.table_bytes, now);
        self.accounted_bytes = self.accounted_bytes + now - self.table_bytes;
        self.table_bytes = now;
    }

    /// Extra bytes the next insert allocates while it rehashes: none while
    /// the table has room; none when deletes left enough dead slots for
    /// hashbrown to rehash in place (at most half full); otherwise the old
    /// and the doubled table side by side.
    fn rehash_peak_bytes(&self) -> usize {
        if self.table.len() < self.table.capacity() {
            return 0;
        }
        let allocation = self.table.allocation_size();
        if allocation == 0 {
            return 2 * TABLE_BYTES_MIN;
        }
        // hashbrown lays out `buckets` slots and control bytes plus one
        // group of trailing control bytes.
        let buckets = allocation.saturating_sub(TABLE_GROUP_BYTES) / (std::mem::size_of::<Record>() + 1);
        let full_capacity = if buckets < 8 {
            buckets.saturating_sub(1)
        } else {
            buckets / 8 * 7
        };
        if self.table.len() < full_capacity / 2 {
            0
        } else {
            2 * allocation
        }
    }

    /// Drops every record and gives all memory back.
    pub fn wipe(&mut self) {
        self.table = HashTable::new();
        self.buckets.fill(BucketStats::default());
        self.budget.release(self.accounted_bytes);
        self.accounted_bytes = 0;
        self.table_bytes = 0;
    }

    /// Drops the records of the buckets for which `drop` is true (a bucket
    /// this node no longer replicates, or a collection of tombstones).
    pub fn retain(&mut self, mut keep: impl FnMut(BucketId, &Record) -> bool) {
        let mut dropped = Vec::new();
        self.table.retain(|record| {
            let hash = key_hash(record.key());
            if keep(bucket_of(hash), record) {
                return true;
            }
            dropped.push((hash, record.stamp(), record.heap_bytes(), record.is_tombstone()));
            false
        });
        for (hash, stamp, bytes, tombstone) in dropped {
            self.buckets[usize::from(bucket_of(hash))].remove(hash, stamp, tombstone);
            self.release(bytes);
        }
        self.table.shrink_to_fit(|record| key_hash(record.key()));
        self.account_table();
    }

    /// Every record of one bucket, for transfer and repair.
    pub fn bucket_records(&self, bucket: BucketId) -> impl Iterator<Item = &Record> {
        self.table
            .iter()
            .filter(move |record| bucket_of(key_hash(record.key())) == bucket)
    }

    pub fn bucket_stats(&self, bucket: BucketId) -> BucketStats {
        self.buckets[usize::from(bucket)]
    }

    /// Live keys held.
    pub fn live_keys(&self) -> usize {
        self.buckets.iter().map(|stats| stats.live_keys as usize).sum()
    }

    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    pub fn accounted_bytes(&self) -> usize {
        self.accounted_bytes
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.budget.release(self.accounted_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(limit: usize) -> (Partition, Arc<MemoryBudget>) {
        let budget = Arc::new(MemoryBudget::new(limit));
        (Partition::new(budget.clone()), budget)
    }

    fn put(p: &mut Partition, key: &[u8], value: &[u8], stamp: u64) -> Applied {
        p.apply(
            key,
            Write::Value { value, version: 1 },
            Stamp(stamp),
            Admission::Checked,
        )
    }

    #[test]
    fn newest_stamp_wins_in_any_order() {
        let (mut a, _) = partition(1 << 20);
        let (mut b, _) = partition(1 << 20);
        assert_eq!(put(&mut a, b"k", b"old", 1), Applied::Stored);
        assert_eq!(put(&mut a, b"k", b"new", 2), Applied::Stored);
        assert_eq!(put(&mut b, b"k", b"new", 2), Applied::Stored);
        assert_eq!(put(&mut b, b"k", b"old", 1), Applied::Stale);
        assert_eq!(a.get(b"k").unwrap().value(), b"new");
        assert_eq!(b.get(b"k").unwrap().value(), b"new");
        let bucket = bucket_of(key_hash(b"k"));
        assert_eq!(a.bucket_stats(bucket), b.bucket_stats(bucket));
    }

    #[test]
    fn tombstone_hides_key_and_beats_older_copies() {
        let (mut p, _) = partition(1 << 20);
        put(&mut p, b"k", b"v", 1);
        assert_eq!(
            p.apply(b"k", Write::Tombstone, Stamp(2), Admission::Checked),
            Applied::Stored
        );
        assert!(p.get(b"k").is_none());
        assert_eq!(put(&mut p, b"k", b"v", 1), Applied::Stale);
        assert!(p.get(b"k").is_none());
        let stats = p.bucket_stats(bucket_of(key_hash(b"k")));
        assert_eq!((stats.live_keys, stats.tombstones), (0, 1));
    }

    #[test]
    fn out_of_space_stores_nothing_and_wipe_gives_everything_back() {
        let (mut p, budget) = partition(64 * 1024);
        let mut stored = 0;
        for i in 0u32..1000 {
            match put(&mut p, &i.to_be_bytes(), &[0; 500], 1) {
                Applied::Stored => stored += 1,
                Applied::OutOfSpace => {
                    assert!(p.get(&i.to_be_bytes()).is_none());
                    break;
                }
                Applied::Stale => unreachable!(),
            }
        }
        assert!(stored > 50 && stored < 125, "{stored}");
        assert_eq!(budget.used_bytes(), p.accounted_bytes());
        p.wipe();
        assert_eq!(budget.used_bytes(), 0);
        assert_eq!(p.live_keys(), 0);
    }

    #[test]
    fn space_freed_by_deletes_is_reused_without_growing_the_table() {
        let (mut p, _) = partition(8 << 20);
        let mut stored = 0u32;
        while put(&mut p, &stored.to_be_bytes(), &[1; 500], 1) == Applied::Stored {
            stored += 1;
        }
        for i in (0..stored).step_by(2) {
            assert!(p.forget(&i.to_be_bytes()));
        }
        let mut refilled = 0u32;
        while put(&mut p, &(stored + 1 + refilled).to_be_bytes(), &[2; 500], 1) == Applied::Stored {
            refilled += 1;
        }
        let freed = stored.div_ceil(2);
        assert!(refilled + 2 >= freed, "refilled {refilled} of {freed} freed slots");
    }

    #[test]
    fn digest_is_order_independent_and_retain_keeps_accounting() {
        let (mut a, budget) = partition(1 << 22);
        let (mut b, _) = partition(1 << 22);
        for i in 0u32..500 {
            put(&mut a, &i.to_be_bytes(), b"x", u64::from(i) + 1);
        }
        for i in (0u32..500).rev() {
            put(&mut b, &i.to_be_bytes(), b"x", u64::from(i) + 1);
        }
        for bucket in 0..BUCKETS as BucketId {
            assert_eq!(a.bucket_stats(bucket), b.bucket_stats(bucket));
        }
        a.retain(|bucket, _| bucket % 2 == 0);
        let kept: usize = (0..BUCKETS as BucketId)
            .filter(|b| b % 2 == 0)
            .map(|b| a.bucket_records(b).count())
            .sum();
        assert_eq!(kept, a.live_keys());
        assert_eq!(budget.used_bytes(), a.accounted_bytes());
        let some_key = a
            .bucket_records(0)
            .chain(a.bucket_records(2))
            .next()
            .map(|r| r.key().to_vec());
        if let Some(key) = some_key {
            assert!(a.forget(&key));
            assert!(!a.forget(&key));
            assert_eq!(budget.used_bytes(), a.accounted_bytes());
        }
    }
}

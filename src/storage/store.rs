//! A shard's store: its share of the key space, grouped by bucket: each bucket
//! keeps its [`Record`]s in a chain of slot blocks ([`crate::storage::slots`]), plus
//! a digest and counts kept up to date on every write.
//!
//! Why by bucket, not one hash table: a bucket is the unit of transfer,
//! anti-entropy and dropping, so listing or dropping one touches only its
//! own records. And the index grows one 64-byte block at a time: one big
//! table must double, and near the memory limit the old and the new table
//! side by side need megabytes the node does not have. At the memory limit
//! a bucket holds tens (500-byte values) to a few hundred (tiny values)
//! keys; a lookup compares 16-bit tags kept in the record pointers
//! themselves (1 in 65,536 false matches) and reads only matching records.
//!
//! A bucket whose chain grows past [`LANE_RECORDS_MAX`] records splits into
//! 2, 4, ... 64 chains ("lanes") chosen by the top bits of the tag, so a
//! lookup reads at most about `LANE_RECORDS_MAX / 7` blocks however many
//! keys the store holds (a 1.2M-key store has ~290 per bucket: 42 blocks
//! in one chain, 3 in a lane). At the 500-byte fill (~28 keys a bucket)
//! almost no bucket splits, so capacity is unchanged.
//!
//! Writes carry a [`Stamp`]; a write older than what is stored is ignored
//! (last writer wins), so replicated, transferred and repaired copies can be
//! applied in any order. Every byte is accounted against the shared
//! [`MemoryBudget`]. The store knows nothing of sockets or the protocol.

use crate::storage::hash::{BUCKETS, BucketId, bucket_of, fmix64, key_hash};
use crate::storage::memory::{MemoryBudget, malloc_chunk_bytes};
use crate::storage::record::Record;
use crate::storage::slots::{BlockPool, Chain, Position, SLAB_BYTES};
use crate::storage::stamp::Stamp;
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

/// The result of offering a write to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Stored,
    /// A record with an equal or newer stamp is already there.
    Stale,
    /// The budget has no room for it.
    OutOfSpace,
}

pub struct Store {
    /// Indexed by bucket id: every bucket of the key space, whether or not
    /// this store owns it (an empty bucket costs 24 bytes, no heap).
    buckets: Box<[Bucket]>,
    slots: BlockPool,
    budget: Arc<MemoryBudget>,
    /// Bytes this store has reserved in the budget: records at
    /// malloc's real chunk sizes, and slabs.
    accounted_bytes: usize,
    /// The same bytes summed another way, part by part as records and lane
    /// arrays come and go, so that an accounting slip is caught where it
    /// happens (see [`Store::check_accounting`]).
    record_bytes: usize,
    lane_bytes: usize,
}

/// Records a lane holds before its bucket doubles its lanes.
const LANE_RECORDS_MAX: usize = 48;
/// A bucket has at most 2^LANE_BITS_MAX lanes.
const LANE_BITS_MAX: u32 = 6;

#[derive(Default)]
struct Bucket {
    stats: BucketStats,
    lanes: Lanes,
}

/// A bucket's chains: one, or 2^k picked by the top k bits of the tag.
enum Lanes {
    One(Chain),
    Many(Box<[Chain]>),
}

impl Default for Lanes {
    fn default() -> Lanes {
        Lanes::One(Chain::default())
    }
}

impl Lanes {
    fn bits(&self) -> u32 {
        match self {
            Lanes::One(_) => 0,
            Lanes::Many(chains) => chains.len().trailing_zeros(),
        }
    }

    fn chains(&self) -> &[Chain] {
        match self {
            Lanes::One(chain) => std::slice::from_ref(chain),
            Lanes::Many(chains) => chains,
        }
    }

    fn chains_mut(&mut self) -> &mut [Chain] {
        match self {
            Lanes::One(chain) => std::slice::from_mut(chain),
            Lanes::Many(chains) => chains,
        }
    }

    fn lane(&self, tag: u16) -> &Chain {
        let index = lane_index(tag, self.bits());
        &self.chains()[index]
    }

    fn lane_mut(&mut self, tag: u16) -> &mut Chain {
        let index = lane_index(tag, self.bits());
        &mut self.chains_mut()[index]
    }

    /// Heap bytes of the lane array (none for a single chain).
    fn heap_bytes(&self) -> usize {
        match self {
            Lanes::One(_) => 0,
            Lanes::Many(chains) => lane_array_bytes(chains.len()),
        }
    }
}

fn lane_index(tag: u16, bits: u32) -> usize {
    if bits == 0 { 0 } else { usize::from(tag >> (16 - bits)) }
}

fn lane_array_bytes(lanes: usize) -> usize {
    malloc_chunk_bytes(lanes * std::mem::size_of::<Chain>())
}

fn entry_digest(hash: u64, stamp: Stamp) -> u64 {
    fmix64(hash ^ stamp.0)
}

/// The tag of a key hash: its low 16 bits (the bucket is the top bits).
fn tag_of(hash: u64) -> u16 {
    hash as u16
}

impl Store {
    pub fn new(budget: Arc<MemoryBudget>) -> Store {
        Store {
            buckets: (0..BUCKETS).map(|_| Bucket::default()).collect(),
            slots: BlockPool::default(),
            budget,
            accounted_bytes: 0,
            record_bytes: 0,
            lane_bytes: 0,
        }
    }

    fn position(&self, key: &[u8], hash: u64) -> Option<Position> {
        let tag = tag_of(hash);
        let chain = self.buckets[usize::from(bucket_of(hash))].lanes.lane(tag);
        self.slots
            .find(chain, |record| record.tag() == tag && record.key() == key)
    }

    fn find(&self, key: &[u8], hash: u64) -> Option<&Record> {
        self.position(key, hash).map(|at| self.slots.get(at))
    }

    /// The live record of a key (tombstones are not returned).
    pub fn get(&self, key: &[u8]) -> Option<&Record> {
        self.find(key, key_hash(key)).filter(|record| !record.is_tombstone())
    }

    /// The stamp of whatever is stored for the key, tombstone or not.
    pub fn stamp_of(&self, key: &[u8]) -> Option<Stamp> {
        self.find(key, key_hash(key)).map(Record::stamp)
    }

    /// Offers a stamped write; keeps it if it is newer than what is stored
    /// and fits the budget. Every write that grows the store (a client's, a
    /// replica's, a transfer's) is admitted here alike; one that does not
    /// grow it (a tombstone over a value) always fits.
    pub fn apply(&mut self, key: &[u8], write: Write<'_>, stamp: Stamp) -> Applied {
        let hash = key_hash(key);
        let position = self.position(key, hash);
        let old = position.map(|at| {
            let record = self.slots.get(at);
            (record.stamp(), record.heap_bytes())
        });
        if old.is_some_and(|(old_stamp, _)| old_stamp >= stamp) {
            return Applied::Stale;
        }
        let (value, version, tombstone) = match write {
            Write::Value { value, version } => (value, version, false),
            Write::Tombstone => (&[][..], 0, true),
        };
        let bucket = usize::from(bucket_of(hash));
        let new_bytes = Record::heap_bytes_for(key.len(), value.len());
        let old_bytes = old.map_or(0, |(_, bytes)| bytes);
        let slab_bytes = match position {
            Some(_) => 0,
            None => (self.slots).insert_growth_bytes(self.buckets[bucket].lanes.lane(tag_of(hash))),
        };
        let growth = new_bytes.saturating_sub(old_bytes) + slab_bytes;
        if growth > 0 && !self.budget.try_reserve(growth) {
            return Applied::OutOfSpace;
        }
        let record = Record::new(key, value, version, stamp, tombstone, tag_of(hash));
        self.record_bytes += record.heap_bytes();
        match position {
            Some(at) => {
                let replaced = self.slots.replace(at, record);
                // Last writer wins: nothing replaces a newer or equal write.
                crate::invariant!(
                    replaced.stamp() < stamp,
                    "a record stamped {:?} replaced by one stamped {stamp:?}",
                    replaced.stamp()
                );
                self.record_bytes -= replaced.heap_bytes();
                (self.buckets[bucket].stats).remove(hash, replaced.stamp(), replaced.is_tombstone());
            }
            None => {
                let lane = self.buckets[bucket].lanes.lane_mut(tag_of(hash));
                self.slots.push(lane, record);
                if lane.len() > LANE_RECORDS_MAX {
                    self.split_lanes(bucket);
                }
            }
        }
        self.buckets[bucket].stats.add(hash, stamp, tombstone);
        let shrunk = old_bytes.saturating_sub(new_bytes);
        self.accounted_bytes = self.accounted_bytes + growth - shrunk;
        self.budget.release(shrunk);
        self.check_accounting();
        Applied::Stored
    }

    /// Removes a key outright, with no tombstone (a node that is the only
    /// replica, or tombstone collection). Returns whether it was there.
    pub fn forget(&mut self, key: &[u8]) -> bool {
        let hash = key_hash(key);
        let Some(at) = self.position(key, hash) else {
            return false;
        };
        let bucket = &mut self.buckets[usize::from(bucket_of(hash))];
        let record = self.slots.remove(bucket.lanes.lane_mut(tag_of(hash)), at);
        bucket.stats.remove(hash, record.stamp(), record.is_tombstone());
        self.record_bytes -= record.heap_bytes();
        self.release(record.heap_bytes());
        self.check_accounting();
        true
    }

    /// Doubles a bucket's lanes, moving its records by tag (no record is
    /// read). Skipped when the budget has no room: lookups in the bucket
    /// then read longer lanes, and nothing else changes.
    fn split_lanes(&mut self, bucket: usize) {
        let lanes = &self.buckets[bucket].lanes;
        let bits = lanes.bits() + 1;
        if bits > LANE_BITS_MAX {
            return;
        }
        let (old_array, new_array) = (lanes.heap_bytes(), lane_array_bytes(1 << bits));
        // Each new lane may leave one more block part full: at most 64
        // blocks, never more than one new slab.
        let reserve = new_array + SLAB_BYTES;
        if !self.budget.try_reserve(reserve) {
            return;
        }
        let slabs_before = self.slots.heap_bytes();
        let mut chains = vec![Chain::default(); 1 << bits].into_boxed_slice();
        for chain in self.buckets[bucket].lanes.chains_mut() {
            for record in self.slots.drain(chain) {
                let lane = lane_index(record.tag(), bits);
                self.slots.push(&mut chains[lane], record);
            }
        }
        self.buckets[bucket].lanes = Lanes::Many(chains);
        let used = new_array + (self.slots.heap_bytes() - slabs_before);
        self.budget.release(reserve - used);
        self.accounted_bytes += used;
        self.lane_bytes = self.lane_bytes + new_array - old_array;
        self.release(old_array);
    }

    fn release(&mut self, bytes: usize) {
        self.accounted_bytes -= bytes;
        self.budget.release(bytes);
    }

    /// Drops every record and gives all memory back.
    pub fn wipe(&mut self) {
        self.buckets.iter_mut().for_each(|bucket| *bucket = Bucket::default());
        self.slots = BlockPool::default();
        self.budget.release(self.accounted_bytes);
        self.accounted_bytes = 0;
        self.record_bytes = 0;
        self.lane_bytes = 0;
    }

    /// What the budget was charged is what the store holds: its records at
    /// malloc's chunk sizes, its lane arrays and its slabs.
    fn check_accounting(&self) {
        crate::invariant!(
            self.accounted_bytes == self.record_bytes + self.lane_bytes + self.slots.heap_bytes(),
            "store accounts {} bytes, holds {} in records, {} in lane arrays, {} in slabs",
            self.accounted_bytes,
            self.record_bytes,
            self.lane_bytes,
            self.slots.heap_bytes()
        );
    }

    /// Keeps only the records for which `keep` is true (drops a bucket this
    /// node no longer replicates, or collects tombstones), looking only in
    /// the buckets `visit` picks by their counts: reading every record of a
    /// large store misses the cache at each one (~1 us a record at 1.2M
    /// keys), and most buckets have nothing to drop.
    /// Returns how many tombstones went.
    pub fn retain(
        &mut self,
        mut visit: impl FnMut(BucketId, &BucketStats) -> bool,
        mut keep: impl FnMut(BucketId, &Record) -> bool,
    ) -> usize {
        let (mut freed_records, mut freed_lanes) = (0, 0);
        let mut tombstones = 0;
        for (id, bucket) in self.buckets.iter_mut().enumerate() {
            if !visit(id as BucketId, &bucket.stats) {
                continue;
            }
            for lane in bucket.lanes.chains_mut() {
                if lane.is_empty() || self.slots.iter(lane).all(|r| keep(id as BucketId, r)) {
                    continue;
                }
                for record in self.slots.drain(lane) {
                    if keep(id as BucketId, &record) {
                        self.slots.push(lane, record);
                    } else {
                        let hash = key_hash(record.key());
                        bucket.stats.remove(hash, record.stamp(), record.is_tombstone());
                        freed_records += record.heap_bytes();
                        tombstones += usize::from(record.is_tombstone());
                    }
                }
            }
            let held: usize = bucket.lanes.chains().iter().map(Chain::len).sum();
            crate::invariant!(
                held == (bucket.stats.live_keys + bucket.stats.tombstones) as usize,
                "bucket {id} counts {} records and tombstones, holds {held}",
                bucket.stats.live_keys + bucket.stats.tombstones
            );
            if bucket.stats.live_keys + bucket.stats.tombstones == 0 && matches!(bucket.lanes, Lanes::Many(_)) {
                // An emptied bucket (dropped from this node) starts over with one lane.
                freed_lanes += bucket.lanes.heap_bytes();
                bucket.lanes = Lanes::default();
            }
        }
        self.record_bytes -= freed_records;
        self.lane_bytes -= freed_lanes;
        self.release(freed_records + freed_lanes);
        self.check_accounting();
        tombstones
    }

    /// Every record of one bucket, for transfer and repair.
    pub fn bucket_records(&self, bucket: BucketId) -> impl Iterator<Item = &Record> {
        let lanes = self.buckets[usize::from(bucket)].lanes.chains();
        lanes.iter().flat_map(|lane| self.slots.iter(lane))
    }

    pub fn bucket_stats(&self, bucket: BucketId) -> BucketStats {
        self.buckets[usize::from(bucket)].stats
    }

    /// Live keys held.
    pub fn live_keys(&self) -> usize {
        self.buckets.iter().map(|bucket| bucket.stats.live_keys as usize).sum()
    }

    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    pub fn accounted_bytes(&self) -> usize {
        self.accounted_bytes
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.budget.release(self.accounted_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::hash::bucket_of_key;

    fn store(limit: usize) -> (Store, Arc<MemoryBudget>) {
        let budget = Arc::new(MemoryBudget::new(limit));
        (Store::new(budget.clone()), budget)
    }

    fn put(p: &mut Store, key: &[u8], value: &[u8], stamp: u64) -> Applied {
        p.apply(key, Write::Value { value, version: 1 }, Stamp(stamp))
    }

    #[test]
    fn retain_reads_only_the_buckets_it_is_told_to_visit() {
        let (mut p, budget) = store(1 << 24);
        for i in 0u32..20_000 {
            assert_eq!(put(&mut p, &i.to_be_bytes(), b"v", 1), Applied::Stored);
        }
        let tombstoned = bucket_of_key(&7u32.to_be_bytes());
        p.apply(&7u32.to_be_bytes(), Write::Tombstone, Stamp(2));
        let in_bucket = p.bucket_records(tombstoned).count();
        let mut read = 0;
        let collected = p.retain(
            |_, stats| stats.tombstones > 0,
            |bucket, record| {
                read += 1;
                assert_eq!(bucket, tombstoned, "a bucket with no tombstone was read");
                !record.is_tombstone()
            },
        );
        assert_eq!(collected, 1);
        assert!(
            read >= in_bucket,
            "each of the bucket's {in_bucket} records was read: {read} reads"
        );
        assert_eq!(p.live_keys(), 19_999);
        assert_eq!(p.stamp_of(&7u32.to_be_bytes()), None);
        assert_eq!(budget.used_bytes(), p.accounted_bytes());
    }

    #[test]
    fn newest_stamp_wins_in_any_order() {
        let (mut a, _) = store(1 << 20);
        let (mut b, _) = store(1 << 20);
        assert_eq!(put(&mut a, b"k", b"old", 1), Applied::Stored);
        assert_eq!(put(&mut a, b"k", b"new", 2), Applied::Stored);
        assert_eq!(put(&mut b, b"k", b"new", 2), Applied::Stored);
        assert_eq!(put(&mut b, b"k", b"old", 1), Applied::Stale);
        assert_eq!(
            put(&mut b, b"k", b"same stamp", 2),
            Applied::Stale,
            "a copy of what is held"
        );
        assert_eq!(a.get(b"k").unwrap().value(), b"new");
        assert_eq!(b.get(b"k").unwrap().value(), b"new");
        let bucket = bucket_of_key(b"k");
        assert_eq!(a.bucket_stats(bucket), b.bucket_stats(bucket));
    }

    #[test]
    fn tombstone_hides_key_and_beats_older_copies() {
        let (mut p, _) = store(1 << 20);
        put(&mut p, b"k", b"v", 1);
        assert_eq!(p.apply(b"k", Write::Tombstone, Stamp(2)), Applied::Stored);
        assert!(p.get(b"k").is_none());
        assert_eq!(put(&mut p, b"k", b"v", 1), Applied::Stale);
        assert!(p.get(b"k").is_none());
        let stats = p.bucket_stats(bucket_of_key(b"k"));
        assert_eq!((stats.live_keys, stats.tombstones), (0, 1));
    }

    #[test]
    fn out_of_space_stores_nothing_and_wipe_gives_everything_back() {
        let (mut p, budget) = store(64 * 1024);
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
        let (mut p, _) = store(8 << 20);
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
    fn keys_with_the_same_bucket_and_tag_are_told_apart() {
        let mut seen: std::collections::HashMap<(BucketId, u16), u32> = Default::default();
        let (first, second) = (0u32..)
            .find_map(|i| {
                let hash = key_hash(&i.to_be_bytes());
                seen.insert((bucket_of(hash), tag_of(hash)), i).map(|j| (j, i))
            })
            .expect("a 28-bit collision exists among 2^32 keys");
        let (mut p, budget) = store(1 << 20);
        put(&mut p, &first.to_be_bytes(), b"one", 1);
        put(&mut p, &second.to_be_bytes(), b"two", 2);
        assert_eq!(p.get(&first.to_be_bytes()).unwrap().value(), b"one");
        assert_eq!(p.get(&second.to_be_bytes()).unwrap().value(), b"two");
        assert!(p.forget(&first.to_be_bytes()));
        assert!(p.get(&first.to_be_bytes()).is_none());
        assert_eq!(p.get(&second.to_be_bytes()).unwrap().value(), b"two");
        assert_eq!(budget.used_bytes(), p.accounted_bytes());
    }

    #[test]
    fn accounting_matches_records_and_slabs_and_freed_slots_are_reused() {
        let (mut p, budget) = store(64 << 20);
        let expected = |p: &Store| -> usize {
            let records: usize = (0..BUCKETS as BucketId)
                .flat_map(|b| p.bucket_records(b))
                .map(Record::heap_bytes)
                .sum();
            let lanes: usize = p.buckets.iter().map(|b| b.lanes.heap_bytes()).sum();
            records + p.slots.heap_bytes() + lanes
        };
        for i in 0u32..50_000 {
            put(&mut p, &i.to_be_bytes(), &[0; 20], 1);
        }
        assert_eq!(p.accounted_bytes(), expected(&p));
        let slab_bytes = p.slots.heap_bytes();
        // 8 bytes a slot, a link per 7 slots, part-full head blocks.
        assert!(slab_bytes < 50_000 * 64 / 7 + BUCKETS * 64 + (64 << 10), "{slab_bytes}");
        for i in 0u32..45_000 {
            assert!(p.forget(&i.to_be_bytes()));
        }
        assert_eq!(p.accounted_bytes(), expected(&p));
        assert_eq!(budget.used_bytes(), p.accounted_bytes());
        for i in 100_000u32..145_000 {
            put(&mut p, &i.to_be_bytes(), &[0; 20], 1);
        }
        assert_eq!(
            p.slots.heap_bytes(),
            slab_bytes,
            "refilling takes freed blocks, not new slabs"
        );
        assert_eq!(p.live_keys(), 50_000);
    }

    #[test]
    fn crowded_buckets_split_into_lanes_that_stay_short_and_accounted() {
        let (mut p, budget) = store(256 << 20);
        let longest_lane = |p: &Store| {
            (p.buckets.iter())
                .flat_map(|b| b.lanes.chains().iter().map(Chain::len))
                .max()
                .unwrap_or(0)
        };
        let lanes_total = |p: &Store| p.buckets.iter().map(|b| b.lanes.chains().len()).sum::<usize>();
        // ~30 keys a bucket (the 500-byte fill): hardly any bucket splits.
        for i in 0u32..120_000 {
            put(&mut p, &i.to_be_bytes(), b"v", 1);
        }
        assert!(lanes_total(&p) < BUCKETS + BUCKETS / 50, "{} lanes", lanes_total(&p));
        // ~290 keys a bucket (a 1.2M-key node): every lane short.
        for i in 120_000u32..1_200_000 {
            put(&mut p, &i.to_be_bytes(), b"v", 1);
        }
        assert!(longest_lane(&p) <= LANE_RECORDS_MAX, "a lane of {}", longest_lane(&p));
        assert!(lanes_total(&p) >= 8 * BUCKETS, "{} lanes", lanes_total(&p));
        assert!((0u32..1_200_000).step_by(7).all(|i| p.get(&i.to_be_bytes()).is_some()));
        assert_eq!(p.live_keys(), 1_200_000);
        assert_eq!(budget.used_bytes(), p.accounted_bytes());
        for i in (0u32..1_200_000).step_by(3) {
            assert!(p.forget(&i.to_be_bytes()));
        }
        assert!(p.get(&3u32.to_be_bytes()).is_none() && p.get(&4u32.to_be_bytes()).is_some());
        // Dropping half the buckets gives their lane arrays back too.
        p.retain(|_, _| true, |bucket, _| bucket % 2 == 0);
        assert!(p.buckets.iter().skip(1).step_by(2).all(|b| b.lanes.chains().len() == 1));
        assert_eq!(budget.used_bytes(), p.accounted_bytes());
        let records: usize = (0..BUCKETS as BucketId)
            .flat_map(|b| p.bucket_records(b))
            .map(Record::heap_bytes)
            .sum();
        let lanes: usize = p.buckets.iter().map(|b| b.lanes.heap_bytes()).sum();
        assert_eq!(p.accounted_bytes(), records + p.slots.heap_bytes() + lanes);
        p.wipe();
        assert_eq!(budget.used_bytes(), 0);
    }

    #[test]
    fn a_bucket_that_cannot_afford_more_lanes_keeps_working() {
        // A budget too small for a lane array plus a slab: no split, yet
        // every key is found.
        let (mut p, budget) = store(SLAB_BYTES + 8 * 1024);
        let mut in_bucket = Vec::new();
        for i in 0u32.. {
            if bucket_of_key(&i.to_be_bytes()) == 0 {
                in_bucket.push(i);
                if in_bucket.len() == 2 * LANE_RECORDS_MAX {
                    break;
                }
            }
        }
        for &i in &in_bucket {
            assert_eq!(put(&mut p, &i.to_be_bytes(), b"v", 1), Applied::Stored);
        }
        assert_eq!(p.buckets[0].lanes.chains().len(), 1);
        assert!(in_bucket.iter().all(|i| p.get(&i.to_be_bytes()).is_some()));
        assert_eq!(budget.used_bytes(), p.accounted_bytes());
    }

    #[test]
    fn digest_is_order_independent_and_retain_keeps_accounting() {
        let (mut a, budget) = store(1 << 22);
        let (mut b, _) = store(1 << 22);
        for i in 0u32..500 {
            put(&mut a, &i.to_be_bytes(), b"x", u64::from(i) + 1);
        }
        for i in (0u32..500).rev() {
            put(&mut b, &i.to_be_bytes(), b"x", u64::from(i) + 1);
        }
        for bucket in 0..BUCKETS as BucketId {
            assert_eq!(a.bucket_stats(bucket), b.bucket_stats(bucket));
        }
        a.retain(|_, _| true, |bucket, _| bucket % 2 == 0);
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

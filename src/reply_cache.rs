//! The at-most-once cache of one shard: message id -> reply code of a
//! mutation it executed, so a retried PUT or REMOVE is answered, not re-run.
//!
//! Mutation replies are bare error codes, so an entry is one `u64`: the top
//! 56 bits of a 64-bit hash of the message id, and the code in the low
//! byte (an accidental collision among the ~10^5 ids a shard holds is about
//! 1 in 10^7). Entries live in time segments of `retention_ms / 4`: the
//! newest is a hash table taking inserts; when its time is up it is sealed
//! into a compact open-addressing array at most 3/4 full (about 11 bytes an
//! entry, a lookup reads one or two cache lines), and a segment is dropped
//! whole once its newest entry has been kept `retention_ms`. An entry
//! therefore lives between `retention_ms` and 1.25 times that, with no
//! per-entry timestamps and no scan.
//!
//! Why so compact: a delete storm at a full node (every REMOVE is cached)
//! grows the cache by its rate times the retention, and that memory comes
//! on top of a store at its limit. Two hash-table generations of the whole
//! retention cost about 20 bytes an entry and peaked at 2.3 MB. Why not
//! more, shorter segments: every mutation looks up every segment (most ids
//! are new, so most lookups miss all of them); ten sorted segments searched
//! by bisection cost 8 % of single-node throughput. If the entry bound is
//! reached first, the oldest segment goes early: oldest evicted first.

use crate::memory::{MemoryBudget, malloc_chunk_bytes};
use hashbrown::HashTable;
use std::collections::VecDeque;
use std::sync::Arc;

/// The spec's floor for how long a reply stays cached.
pub const RETENTION_MS_MIN: u64 = 5_000;
/// Segments per retention period: entries outlive the retention by at most
/// `1 / SEGMENTS_PER_RETENTION` of it.
const SEGMENTS_PER_RETENTION: u64 = 4;
/// A free slot of a sealed segment (no entry has reply code 0xff).
const EMPTY: u64 = u64::MAX;

fn pack(id_hash: u64, code: u8) -> u64 {
    (id_hash & !0xff) | u64::from(code)
}

fn id_bits(entry: u64) -> u64 {
    entry >> 8
}

/// The table hash of an entry or id hash: its id bits, spread back over
/// all 64 bits (hashbrown probes with the low bits and tags with the top 7).
fn table_hash(entry: u64) -> u64 {
    id_bits(entry).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Where probing starts in a sealed segment of `slots` slots.
fn sealed_slot(entry: u64, slots: usize) -> usize {
    ((u128::from(table_hash(entry)) * slots as u128) >> 64) as usize
}

enum Entries {
    /// The newest segment, taking inserts.
    Open(HashTable<u64>),
    /// Linear probing from [`sealed_slot`], at most 3/4 full.
    Sealed(Box<[u64]>),
}

struct Segment {
    since_ms: u64,
    entries: Entries,
}

impl Segment {
    fn get(&self, id_hash: u64) -> Option<u8> {
        let id = id_bits(id_hash);
        let entry = match &self.entries {
            Entries::Open(table) => table.find(table_hash(id_hash), |&entry| id_bits(entry) == id).copied(),
            Entries::Sealed(slots) => {
                let start = sealed_slot(id_hash, slots.len());
                let (wrapped, from_start) = slots.split_at(start);
                from_start
                    .iter()
                    .chain(wrapped)
                    .take_while(|&&entry| entry != EMPTY)
                    .find(|&&entry| id_bits(entry) == id)
                    .copied()
            }
        };
        entry.map(|entry| entry as u8)
    }

    fn len(&self) -> usize {
        match &self.entries {
            Entries::Open(table) => table.len(),
            Entries::Sealed(slots) => slots.iter().filter(|&&entry| entry != EMPTY).count(),
        }
    }

    fn heap_bytes(&self) -> usize {
        let bytes = match &self.entries {
            Entries::Open(table) => table.allocation_size(),
            Entries::Sealed(slots) => std::mem::size_of_val(&**slots),
        };
        if bytes == 0 { 0 } else { malloc_chunk_bytes(bytes) }
    }

    fn seal(&mut self) {
        if let Entries::Open(table) = &mut self.entries {
            let table = std::mem::take(table);
            let mut slots = vec![EMPTY; table.len() + table.len() / 3 + 1].into_boxed_slice();
            let n = slots.len();
            for entry in table {
                let mut at = sealed_slot(entry, n);
                while slots[at] != EMPTY {
                    at = if at + 1 == n { 0 } else { at + 1 };
                }
                slots[at] = entry;
            }
            self.entries = Entries::Sealed(slots);
        }
    }
}

pub struct ReplyCache {
    /// Oldest first; only the last one may be open.
    segments: VecDeque<Segment>,
    retention_ms: u64,
    segment_ms: u64,
    /// Bound on entries in all segments together.
    entries_max: usize,
    len: usize,
    budget: Arc<MemoryBudget>,
    accounted_bytes: usize,
}

impl ReplyCache {
    pub fn new(retention_ms: u64, entries_max: usize, budget: Arc<MemoryBudget>) -> ReplyCache {
        ReplyCache {
            segments: VecDeque::new(),
            retention_ms,
            segment_ms: (retention_ms / SEGMENTS_PER_RETENTION).max(1),
            entries_max: entries_max.max(1),
            len: 0,
            budget,
            accounted_bytes: 0,
        }
    }

    /// The cached reply code for a message id hash.
    pub fn get(&self, id_hash: u64) -> Option<u8> {
        self.segments.iter().rev().find_map(|segment| segment.get(id_hash))
    }

    pub fn insert(&mut self, id_hash: u64, code: u8, now_ms: u64) {
        self.expire(now_ms);
        while self.len >= self.entries_max {
            self.drop_oldest();
        }
        let open = self
            .segments
            .back()
            .is_some_and(|segment| now_ms < segment.since_ms + self.segment_ms);
        if !open {
            if let Some(last) = self.segments.back_mut() {
                last.seal();
            }
            self.segments.push_back(Segment {
                since_ms: now_ms,
                entries: Entries::Open(HashTable::new()),
            });
        }
        let Some(Segment {
            entries: Entries::Open(table),
            ..
        }) = self.segments.back_mut()
        else {
            unreachable!("the newest segment is open")
        };
        let id = id_bits(id_hash);
        match table.find_mut(table_hash(id_hash), |&entry| id_bits(entry) == id) {
            Some(entry) => *entry = pack(id_hash, code),
            None => {
                table.insert_unique(table_hash(id_hash), pack(id_hash, code), |&entry| table_hash(entry));
                self.len += 1;
            }
        }
        self.account();
    }

    /// Drops the segments whose every entry has been kept long enough: a
    /// segment takes inserts only for `segment_ms` after it starts.
    pub fn expire(&mut self, now_ms: u64) {
        let mut dropped = false;
        while let Some(oldest) = self.segments.front()
            && oldest.since_ms + self.segment_ms + self.retention_ms <= now_ms
        {
            self.drop_oldest_unaccounted();
            dropped = true;
        }
        if dropped {
            self.account();
        }
    }

    fn drop_oldest(&mut self) {
        self.drop_oldest_unaccounted();
        self.account();
    }

    fn drop_oldest_unaccounted(&mut self) {
        if let Some(segment) = self.segments.pop_front() {
            self.len -= segment.len();
        }
    }

    pub fn clear(&mut self) {
        self.segments.clear();
        self.len = 0;
        self.account();
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the segments hold, charged to the node's budget so a burst of
    /// mutations is paid for by store admission rather than by the RSS
    /// margin.
    pub fn heap_bytes(&self) -> usize {
        self.segments.iter().map(Segment::heap_bytes).sum()
    }

    fn account(&mut self) {
        let now = self.heap_bytes();
        self.budget.recharge(self.accounted_bytes, now);
        self.accounted_bytes = now;
    }
}

impl Drop for ReplyCache {
    fn drop(&mut self) {
        self.budget.release(self.accounted_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries_max: usize) -> (ReplyCache, Arc<MemoryBudget>) {
        let budget = Arc::new(MemoryBudget::new(usize::MAX));
        (ReplyCache::new(RETENTION_MS_MIN, entries_max, budget.clone()), budget)
    }

    #[test]
    fn entries_live_at_least_the_retention_and_at_most_a_quarter_longer() {
        let (mut cache, _) = cache(1000);
        cache.insert(42 << 8, 1, 0);
        cache.insert(43 << 8, 1, 1_249);
        cache.insert(7 << 8, 0, 1_250);
        cache.expire(6_249);
        let kept = (cache.get(42 << 8), cache.get(43 << 8));
        assert_eq!(
            kept,
            (Some(1), Some(1)),
            "the one inserted at 1,249 is kept until 6,249"
        );
        cache.expire(6_250);
        let kept = (cache.get(42 << 8), cache.get(43 << 8));
        assert_eq!(kept, (None, None), "their segment ended at 1,250");
        assert_eq!(cache.get(7 << 8), Some(0));
        cache.expire(7_500);
        assert_eq!(
            cache.get(7 << 8),
            None,
            "the last segment goes once its span has been kept"
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn every_entry_of_a_steady_stream_lives_its_retention() {
        let (mut cache, _) = cache(1 << 20);
        for t in 0..30_000u64 {
            let id = |t: u64| crate::hash::fmix64(t + 1);
            cache.insert(id(t), (t % 3) as u8, t);
            if t >= RETENTION_MS_MIN {
                let oldest_required = t - RETENTION_MS_MIN;
                assert_eq!(
                    cache.get(id(oldest_required)),
                    Some((oldest_required % 3) as u8),
                    "at {t}"
                );
            }
            assert!(
                cache.len() as u64 <= RETENTION_MS_MIN * 5 / 4 + 1,
                "at {t}: {}",
                cache.len()
            );
        }
    }

    #[test]
    fn entries_are_found_after_their_table_grows() {
        let (mut cache, _) = cache(1 << 20);
        let id = |i: u64| crate::hash::fmix64(i + 1);
        cache.insert(id(0), 2, 0);
        for i in 1..5_000 {
            cache.insert(id(i), (i % 3) as u8, 0);
        }
        assert_eq!(cache.get(id(0)), Some(2), "still found in the open segment");
        cache.insert(id(9_999), 1, 1_250);
        assert_eq!(cache.get(id(0)), Some(2), "and once sealed");
        assert_eq!(cache.get(id(4_999)), Some((4_999 % 3) as u8));
        assert_eq!(cache.get(id(10_000)), None);
    }

    #[test]
    fn entry_bound_evicts_oldest_first() {
        let (mut cache, _) = cache(100);
        for id in 0..100u64 {
            cache.insert(id << 8, 0, id * 20);
        }
        cache.insert(100 << 8, 0, 2_000);
        assert!(cache.len() <= 100);
        assert_eq!(cache.get(0), None, "oldest segment evicted");
        assert_eq!(cache.get(99 << 8), Some(0), "newer segments kept");
        assert_eq!(cache.get(100 << 8), Some(0), "newest kept");
    }

    #[test]
    fn memory_is_charged_and_returned() {
        let (mut cache, budget) = cache(1 << 20);
        for id in 0..10_000u64 {
            cache.insert(crate::hash::fmix64(id + 1), 0, id / 2);
        }
        assert_eq!(budget.used_bytes(), cache.heap_bytes());
        assert!(
            cache.heap_bytes() < 10_000 * 14,
            "sealed entries take about 11 bytes: {}",
            cache.heap_bytes()
        );
        cache.clear();
        assert_eq!(budget.used_bytes(), 0);
        assert!(cache.is_empty());
    }
}

//! The at-most-once cache of one shard: message id -> reply code of a
//! mutation it executed, so a retried PUT or REMOVE is answered, not re-run.
//!
//! Mutation replies are bare error codes, so an entry is one `u64`: the top
//! 56 bits of a 64-bit hash of the message id, and the code in the low
//! byte (an accidental collision among the ~10^5 ids a shard holds is about
//! 1 in 10^7). Entries live in time segments of `retention_ms / 4`, each a
//! fixed array probed linearly and filled to at most 3/4 (about 11 bytes an
//! entry; a lookup reads one or two cache lines). A segment takes inserts
//! until its time is up, then the next one starts, sized from the last
//! one's rate. One that is 3/4 full before its time is up is moved into one
//! twice its size: a cold node under load would otherwise start a segment
//! at each doubling, 13-16 of them for every lookup to probe through its
//! first seconds. A segment is dropped whole once its newest entry has been
//! kept `retention_ms`. An entry therefore lives between `retention_ms` and
//! 1.25 times that, with no per-entry timestamps and no scan.
//!
//! Why so compact: a delete storm at a full node (every REMOVE is cached)
//! grows the cache by its rate times the retention, on top of a store at
//! its limit. Why not more, shorter segments: every mutation looks up every
//! segment (most ids are new, so most lookups miss all of them).
//!
//! Bounded by memory, oldest evicted first: the cache holds a reserve of
//! its own (part of the node's headroom, outside the store's budget) and
//! beyond it borrows from the store's budget through the same admission as
//! a write. When the budget refuses (a full store, a flood of mutations),
//! the oldest segment goes early, so under memory pressure an entry may
//! live less than the retention; the process never grows past its limit.

use crate::storage::memory::{MemoryBudget, malloc_chunk_bytes};
use std::collections::VecDeque;
use std::sync::Arc;

/// The spec's floor for how long a reply stays cached.
pub const RETENTION_MS_MIN: u64 = 5_000;
/// Segments per retention period: entries outlive the retention by at most
/// `1 / SEGMENTS_PER_RETENTION` of it.
const SEGMENTS_PER_RETENTION: u64 = 4;
/// A free slot (no entry has reply code 0xff).
const EMPTY: u64 = u64::MAX;
/// The smallest segment, in slots (a 512-byte allocation).
const SLOTS_MIN: usize = 64;
/// Segments held at most: every lookup of a new id probes each of them.
const SEGMENTS_MAX: usize = 16;

fn pack(id_hash: u64, code: u8) -> u64 {
    (id_hash & !0xff) | u64::from(code)
}

fn id_bits(entry: u64) -> u64 {
    entry >> 8
}

/// Where probing starts for an entry or id hash in `slots` slots: its id
/// bits, spread over 64 bits, scaled to the table.
fn first_slot(entry: u64, slots: usize) -> usize {
    let spread = id_bits(entry).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((u128::from(spread) * slots as u128) >> 64) as usize
}

/// Entries a segment of `slots` slots holds at most.
fn room(slots: usize) -> usize {
    slots / 4 * 3
}

/// Slots for a segment expected to take `entries`.
fn slots_for(entries: usize) -> usize {
    (entries * 4 / 3 + 1).max(SLOTS_MIN)
}

struct Segment {
    since_ms: u64,
    slots: Box<[u64]>,
    len: usize,
}

impl Segment {
    fn get(&self, id_hash: u64) -> Option<u8> {
        let id = id_bits(id_hash);
        let start = first_slot(id_hash, self.slots.len());
        let (wrapped, from_start) = self.slots.split_at(start);
        from_start
            .iter()
            .chain(wrapped)
            .take_while(|&&entry| entry != EMPTY)
            .find(|&&entry| id_bits(entry) == id)
            .map(|&entry| entry as u8)
    }

    fn is_full(&self) -> bool {
        self.len >= room(self.slots.len())
    }

    /// Adds an entry (the caller checked there is room).
    fn insert(&mut self, entry: u64) {
        let n = self.slots.len();
        let mut at = first_slot(entry, n);
        while self.slots[at] != EMPTY {
            if id_bits(self.slots[at]) == id_bits(entry) {
                self.slots[at] = entry;
                return;
            }
            at = if at + 1 == n { 0 } else { at + 1 };
        }
        self.slots[at] = entry;
        self.len += 1;
        // An empty slot ends every probe, and probes stay short.
        crate::invariant!(self.len <= room(n), "{} entries in a segment of {n} slots", self.len);
    }

    fn heap_bytes(&self) -> usize {
        malloc_chunk_bytes(std::mem::size_of_val(&*self.slots))
    }
}

pub struct ReplyCache {
    /// Oldest first; inserts go to the last one.
    segments: VecDeque<Segment>,
    retention_ms: u64,
    segment_ms: u64,
    len: usize,
    /// Bytes the cache may hold without asking the budget.
    reserve_bytes: usize,
    budget: Arc<MemoryBudget>,
    /// Bytes beyond the reserve, taken from the budget.
    borrowed_bytes: usize,
}

impl ReplyCache {
    pub fn new(retention_ms: u64, reserve_bytes: usize, budget: Arc<MemoryBudget>) -> ReplyCache {
        ReplyCache {
            segments: VecDeque::new(),
            retention_ms,
            segment_ms: (retention_ms / SEGMENTS_PER_RETENTION).max(1),
            len: 0,
            reserve_bytes,
            budget,
            borrowed_bytes: 0,
        }
    }

    /// The cached reply code for a message id hash.
    pub fn get(&self, id_hash: u64) -> Option<u8> {
        self.segments.iter().rev().find_map(|segment| segment.get(id_hash))
    }

    /// Remembers the reply code of a message id. Under memory pressure
    /// older entries go first; with no memory at all, none is kept.
    pub fn insert(&mut self, id_hash: u64, code: u8, now_ms: u64) {
        self.expire(now_ms);
        let newest =
            (self.segments.back()).map(|newest| (now_ms < newest.since_ms + self.segment_ms, newest.is_full()));
        let has_room = match newest {
            Some((true, false)) => true,
            // Full before its time is up: a rate it was not sized for.
            Some((true, true)) => self.grow_newest() || self.start_segment(now_ms),
            _ => self.start_segment(now_ms),
        };
        if !has_room {
            return;
        }
        if let Some(newest) = self.segments.back_mut() {
            let before = newest.len;
            newest.insert(pack(id_hash, code));
            self.len += newest.len - before;
        }
    }

    /// Moves the newest segment's entries into one twice its size that
    /// keeps its start time, so a rising rate (a cold start above all) adds
    /// no segment for every lookup to probe. False when the memory for both
    /// side by side cannot be had.
    fn grow_newest(&mut self) -> bool {
        let Some(slots) = self.segments.back().map(|newest| 2 * newest.slots.len()) else {
            return false;
        };
        if !self.pay_for(malloc_chunk_bytes(slots * 8)) {
            return false;
        }
        if let Some(newest) = self.segments.back_mut() {
            let mut grown = Segment {
                since_ms: newest.since_ms,
                slots: vec![EMPTY; slots].into_boxed_slice(),
                len: 0,
            };
            newest
                .slots
                .iter()
                .filter(|&&entry| entry != EMPTY)
                .for_each(|&entry| grown.insert(entry));
            *newest = grown;
        }
        self.account();
        true
    }

    /// Starts a segment sized for the rate of the last one: as many
    /// entries as it took per millisecond times a segment's time, doubled
    /// if it filled up early. Short of memory, it may be down to a quarter
    /// of that before the oldest segments are dropped to make room. False
    /// when no memory can be had for even the smallest segment.
    fn start_segment(&mut self, now_ms: u64) -> bool {
        let expected = match self.segments.back() {
            Some(last) if last.is_full() => 2 * last.len,
            Some(last) => {
                let span_ms = now_ms.saturating_sub(last.since_ms).clamp(1, self.segment_ms);
                (last.len as u64 * self.segment_ms / span_ms) as usize + last.len / 8
            }
            None => 0,
        };
        let desired = slots_for(expected);
        while self.segments.len() >= SEGMENTS_MAX {
            self.drop_oldest_unaccounted();
        }
        loop {
            let smallest = if self.segments.is_empty() {
                SLOTS_MIN
            } else {
                (desired / 4).max(SLOTS_MIN)
            };
            let mut slots = desired;
            loop {
                if self.pay_for(malloc_chunk_bytes(slots * 8)) {
                    self.segments.push_back(Segment {
                        since_ms: now_ms,
                        slots: vec![EMPTY; slots].into_boxed_slice(),
                        len: 0,
                    });
                    self.account();
                    return true;
                }
                if slots <= smallest {
                    break;
                }
                slots = (slots / 2).max(smallest);
            }
            if self.segments.is_empty() {
                self.account();
                return false;
            }
            self.drop_oldest_unaccounted();
        }
    }

    /// Whether `extra` more bytes than the segments hold now are paid for,
    /// by the reserve or by what the budget gives now.
    fn pay_for(&mut self, extra: usize) -> bool {
        let wanted = self.heap_bytes() + extra;
        let paid = self.reserve_bytes + self.borrowed_bytes;
        if wanted <= paid {
            return true;
        }
        if self.budget.try_reserve(wanted - paid) {
            self.borrowed_bytes += wanted - paid;
            return true;
        }
        false
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

    fn drop_oldest_unaccounted(&mut self) {
        if let Some(segment) = self.segments.pop_front() {
            self.len -= segment.len;
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

    /// Segments held: a new id's lookup probes each.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the segments hold.
    pub fn heap_bytes(&self) -> usize {
        self.segments.iter().map(Segment::heap_bytes).sum()
    }

    /// Bytes taken from the store's budget (beyond the reserve).
    pub fn borrowed_bytes(&self) -> usize {
        self.borrowed_bytes
    }

    /// Gives back to the budget what the segments no longer need.
    fn account(&mut self) {
        let needed = self.heap_bytes().saturating_sub(self.reserve_bytes);
        if needed < self.borrowed_bytes {
            self.budget.release(self.borrowed_bytes - needed);
            self.borrowed_bytes = needed;
        }
        self.check();
    }

    /// What holds after every change of the segments (a few of them).
    fn check(&self) {
        let needed = self.heap_bytes().saturating_sub(self.reserve_bytes);
        crate::invariant!(
            self.borrowed_bytes == needed,
            "the cache borrows {} bytes beyond its reserve, its segments need {needed}",
            self.borrowed_bytes
        );
        let counted: usize = self.segments.iter().map(|segment| segment.len).sum();
        crate::invariant!(
            self.len == counted,
            "{} entries counted, {counted} in the segments",
            self.len
        );
        crate::invariant!(
            self.segments.len() <= SEGMENTS_MAX
                && self
                    .segments
                    .iter()
                    .zip(self.segments.iter().skip(1))
                    .all(|(a, b)| a.since_ms <= b.since_ms),
            "segments oldest first, at most {SEGMENTS_MAX}"
        );
    }
}

impl Drop for ReplyCache {
    fn drop(&mut self) {
        self.budget.release(self.borrowed_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache with no reserve, borrowing from a budget of `budget_bytes`.
    fn cache(budget_bytes: usize) -> (ReplyCache, Arc<MemoryBudget>) {
        let budget = Arc::new(MemoryBudget::new(budget_bytes));
        (ReplyCache::new(RETENTION_MS_MIN, 0, budget.clone()), budget)
    }

    #[test]
    fn entries_live_at_least_the_retention_and_at_most_a_quarter_longer() {
        let (mut cache, _) = cache(1 << 20);
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
            let id = |t: u64| crate::storage::hash::fmix64(t + 1);
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
    fn entries_are_found_across_segments_started_in_a_burst() {
        let (mut cache, _) = cache(1 << 20);
        let id = |i: u64| crate::storage::hash::fmix64(i + 1);
        cache.insert(id(0), 2, 0);
        for i in 1..5_000 {
            cache.insert(id(i), (i % 3) as u8, 0);
        }
        assert_eq!(cache.get(id(0)), Some(2), "found in the first, smallest segment");
        cache.insert(id(9_999), 1, 1_250);
        assert_eq!(cache.get(id(0)), Some(2), "and once sealed");
        assert_eq!(cache.get(id(4_999)), Some((4_999 % 3) as u8));
        assert_eq!(cache.get(id(10_000)), None);
    }

    #[test]
    fn a_cold_start_under_load_keeps_one_segment_per_segment_time() {
        let (mut cache, budget) = cache(64 << 20);
        let id = |i: u64| crate::storage::hash::fmix64(i + 1);
        // 30,000 mutations a second from the first millisecond, for 3 s.
        for i in 0..90_000u64 {
            let now_ms = i / 30;
            cache.insert(id(i), (i % 3) as u8, now_ms);
            let started = now_ms / 1_250 + 1;
            assert!(
                cache.segments() as u64 <= started,
                "at {now_ms} ms: {} segments",
                cache.segments()
            );
        }
        for i in (0..90_000).step_by(7) {
            assert_eq!(
                cache.get(id(i)),
                Some((i % 3) as u8),
                "id {i}, moved while the segment grew"
            );
        }
        assert_eq!(
            budget.used_bytes(),
            cache.heap_bytes(),
            "a grown segment's old array is given back"
        );
    }

    #[test]
    fn a_burst_after_a_quiet_segment_grows_the_newest_in_place() {
        let (mut cache, _) = cache(64 << 20);
        let id = |i: u64| crate::storage::hash::fmix64(i + 1);
        for i in 0..10 {
            cache.insert(id(i), 1, 100 + i * 100);
        }
        for i in 10..5_000 {
            cache.insert(id(i), 2, 1_400);
        }
        assert_eq!(cache.segments(), 2, "the quiet one, and the newest grown for the burst");
        assert!((0..5_000).all(|i| cache.get(id(i)).is_some()));
        cache.expire(1_350 + RETENTION_MS_MIN);
        assert_eq!(
            cache.segments(),
            1,
            "the grown segment kept its start: it outlives the quiet one"
        );
        assert_eq!(cache.get(id(4_999)), Some(2));
    }

    #[test]
    fn a_memory_bound_evicts_oldest_first_and_is_never_passed() {
        let limit = 64 * 1024;
        let (mut cache, budget) = cache(limit);
        let id = |i: u64| crate::storage::hash::fmix64(i + 1);
        // 40,000 mutations a second for 2 s: far more than 64 KiB keeps.
        for i in 0..80_000u64 {
            cache.insert(id(i), 0, i / 40);
            assert!(budget.used_bytes() <= limit && cache.heap_bytes() <= limit, "at {i}");
        }
        assert_eq!(cache.get(id(0)), None, "the oldest went");
        assert_eq!(cache.get(id(79_999)), Some(0), "the newest stays");
        assert!(cache.len() > 3_000, "the bound is used, not wasted: {}", cache.len());
    }

    #[test]
    fn with_the_budget_full_the_reserve_is_all_there_is() {
        let budget = Arc::new(MemoryBudget::new(1 << 20));
        assert!(budget.try_reserve(1 << 20), "a full store");
        let reserve = 32 * 1024;
        let mut cache = ReplyCache::new(RETENTION_MS_MIN, reserve, budget.clone());
        for i in 0..50_000u64 {
            cache.insert(crate::storage::hash::fmix64(i + 1), 2, i / 10);
        }
        assert!(cache.heap_bytes() <= reserve, "{}", cache.heap_bytes());
        assert_eq!(cache.borrowed_bytes(), 0);
        assert_eq!(
            cache.get(crate::storage::hash::fmix64(50_000)),
            Some(2),
            "the newest is kept"
        );
    }

    #[test]
    fn memory_is_charged_and_returned() {
        let (mut cache, budget) = cache(1 << 20);
        for id in 0..10_000u64 {
            cache.insert(crate::storage::hash::fmix64(id + 1), 0, id / 2);
        }
        assert_eq!(budget.used_bytes(), cache.heap_bytes(), "no reserve: all borrowed");
        assert!(
            cache.heap_bytes() < 10_000 * 16,
            "entries take 11 bytes, 13 with a segment's slack: {}",
            cache.heap_bytes()
        );
        cache.clear();
        assert_eq!(budget.used_bytes(), 0);
        assert!(cache.is_empty());
    }
}

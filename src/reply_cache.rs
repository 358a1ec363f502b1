//! The at-most-once cache of one shard: message id -> reply code of a
//! mutation it executed, so a retried PUT or REMOVE is answered, not re-run.
//!
//! Mutation replies are bare error codes, so an entry is a 64-bit hash of the
//! message id plus one code byte (9 bytes in the table, plus hashbrown's
//! control byte). Entries live in two generations: the current one takes
//! inserts; every `retention_ms` it becomes the previous one and the old
//! previous is dropped whole. An entry therefore lives between `retention_ms`
//! and twice that, with no per-entry timestamps and no scan. If the entry
//! bound is reached first, generations rotate early: oldest evicted first.

use crate::memory::MemoryBudget;
use hashbrown::HashTable;
use std::sync::Arc;

/// The spec's floor for how long a reply stays cached.
pub const RETENTION_MS_MIN: u64 = 5_000;

#[derive(Clone, Copy)]
struct Entry {
    id_hash: [u8; 8],
    code: u8,
}

pub struct ReplyCache {
    current: HashTable<Entry>,
    previous: HashTable<Entry>,
    current_since_ms: u64,
    retention_ms: u64,
    /// Bound on entries per generation.
    generation_entries_max: usize,
    budget: Arc<MemoryBudget>,
    accounted_bytes: usize,
}

impl ReplyCache {
    pub fn new(retention_ms: u64, entries_max: usize, budget: Arc<MemoryBudget>) -> ReplyCache {
        ReplyCache {
            current: HashTable::new(),
            previous: HashTable::new(),
            current_since_ms: 0,
            retention_ms,
            generation_entries_max: (entries_max / 2).max(1),
            budget,
            accounted_bytes: 0,
        }
    }

    fn lookup(table: &HashTable<Entry>, id_hash: u64) -> Option<u8> {
        let bytes = id_hash.to_le_bytes();
        table
            .find(id_hash, |entry| entry.id_hash == bytes)
            .map(|entry| entry.code)
    }

    /// The cached reply code for a message id hash.
    pub fn get(&self, id_hash: u64) -> Option<u8> {
        ReplyCache::lookup(&self.current, id_hash).or_else(|| ReplyCache::lookup(&self.previous, id_hash))
    }

    pub fn insert(&mut self, id_hash: u64, code: u8, now_ms: u64) {
        self.rotate_if_due(now_ms);
        if self.current.len() >= self.generation_entries_max {
            self.rotate(now_ms);
        }
        let entry = Entry {
            id_hash: id_hash.to_le_bytes(),
            code,
        };
        self.current
            .insert_unique(id_hash, entry, |entry| u64::from_le_bytes(entry.id_hash));
        self.account();
    }

    /// Drops the oldest generation once it has been kept long enough.
    pub fn rotate_if_due(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.current_since_ms) >= self.retention_ms {
            self.rotate(now_ms);
        }
    }

    fn rotate(&mut self, now_ms: u64) {
        self.previous = std::mem::replace(&mut self.current, HashTable::new());
        self.current_since_ms = now_ms;
        self.account();
    }

    pub fn clear(&mut self, now_ms: u64) {
        self.current = HashTable::new();
        self.previous = HashTable::new();
        self.current_since_ms = now_ms;
        self.account();
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the two tables hold, charged to the node's budget so a burst of
    /// mutations is paid for by store admission rather than by the RSS margin.
    pub fn heap_bytes(&self) -> usize {
        self.current.allocation_size() + self.previous.allocation_size()
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
    fn entries_survive_at_least_the_retention_then_go() {
        let (mut cache, _) = cache(1000);
        cache.insert(42, 1, 0);
        cache.rotate_if_due(4_999);
        assert_eq!(cache.get(42), Some(1));
        cache.rotate_if_due(5_000);
        assert_eq!(cache.get(42), Some(1), "previous generation still answers");
        cache.insert(7, 0, 9_999);
        assert_eq!(cache.get(42), Some(1));
        cache.rotate_if_due(10_000);
        assert_eq!(cache.get(42), None);
        assert_eq!(cache.get(7), Some(0));
    }

    #[test]
    fn entry_bound_evicts_oldest_first() {
        let (mut cache, _) = cache(100);
        for id in 0..=100u64 {
            cache.insert(id, 0, 0);
        }
        assert!(cache.len() <= 100);
        assert_eq!(cache.get(0), None, "oldest generation evicted");
        assert_eq!(cache.get(99), Some(0), "previous generation kept");
        assert_eq!(cache.get(100), Some(0), "newest kept");
    }

    #[test]
    fn memory_is_charged_and_returned() {
        let (mut cache, budget) = cache(1 << 20);
        for id in 0..10_000u64 {
            cache.insert(id, 0, 0);
        }
        assert_eq!(budget.used_bytes(), cache.heap_bytes());
        assert!(
            cache.heap_bytes() < 10_000 * 24,
            "entries stay small: {}",
            cache.heap_bytes()
        );
        cache.clear(0);
        assert_eq!(budget.used_bytes(), 0);
        assert!(cache.is_empty());
    }
}

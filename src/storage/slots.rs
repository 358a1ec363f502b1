//! Where a partition keeps its record pointers: per bucket, a chain of
//! fixed-size blocks of slots, drawn from slabs that are allocated once and
//! recycled.
//!
//! Why blocks and not a growing array per bucket: every array that grows
//! leaves its old allocation behind as a hole of a size no record fits (a
//! 500-byte record needs 528 bytes; a bucket's array is 32-256), so at the
//! full mark about a megabyte of the heap was free yet unusable. Blocks all
//! have one size: a block freed by one bucket is the next block of any
//! other, and slabs are never given back until WIPEOUT. A bucket's newest
//! block is the head of its chain and the only one that may be part full,
//! so an insert or a removal touches at most two blocks.

use crate::storage::memory::malloc_chunk_bytes;
use crate::storage::record::Record;

/// Records per block: with the chain link, one 64-byte cache line.
pub const BLOCK_SLOTS: usize = 7;
/// Blocks per slab: 32 KiB with malloc's header (a slab is mapped, see
/// [`crate::storage::memory::MMAP_THRESHOLD_BYTES`]), small next to the store, large
/// enough that slab allocations are rare.
const SLAB_BLOCKS: usize = 511;
/// The empty chain link.
const NO_BLOCK: u32 = u32::MAX;

struct Block {
    slots: [Option<Record>; BLOCK_SLOTS],
    /// The next older block of the bucket, or the next free block.
    next: u32,
    /// In a chain, the block after `next`: a lookup asks for both as soon
    /// as it reads this one, so two cache misses of a long chain are in
    /// flight at once instead of one after the other. A chain changes only
    /// at its head, so this is set once, when the block becomes the head.
    after_next: u32,
}
const _: () = assert!(std::mem::size_of::<Block>() == 64);

impl Block {
    fn empty() -> Block {
        Block {
            slots: Default::default(),
            next: NO_BLOCK,
            after_next: NO_BLOCK,
        }
    }
}

/// One bucket's records: `len` of them in a chain of blocks from `head`.
#[derive(Clone, Copy, Debug)]
pub struct Chain {
    head: u32,
    len: u32,
}

impl Default for Chain {
    fn default() -> Chain {
        Chain { head: NO_BLOCK, len: 0 }
    }
}

impl Chain {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records in the head block (the only one that may be part full).
    fn head_fill(&self) -> usize {
        (self.len as usize - 1) % BLOCK_SLOTS + 1
    }
}

/// Where a record sits: block and slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    block: u32,
    slot: usize,
}

/// The slabs of one partition and their free blocks.
#[derive(Default)]
pub struct BlockPool {
    slabs: Vec<Box<[Block]>>,
    /// Head of the free list, linked through `Block::next`.
    free: Option<u32>,
}

impl BlockPool {
    /// Heap bytes the slabs hold.
    pub fn heap_bytes(&self) -> usize {
        self.slabs.len() * SLAB_BYTES
    }

    /// Bytes an insert into `chain` would allocate (a new slab, rarely).
    pub fn insert_growth_bytes(&self, chain: &Chain) -> usize {
        let needs_block = chain.len().is_multiple_of(BLOCK_SLOTS);
        if needs_block && self.free.is_none() {
            SLAB_BYTES
        } else {
            0
        }
    }

    fn block(&self, id: u32) -> &Block {
        let id = id as usize;
        &self.slabs[id / SLAB_BLOCKS][id % SLAB_BLOCKS]
    }

    fn block_mut(&mut self, id: u32) -> &mut Block {
        let id = id as usize;
        &mut self.slabs[id / SLAB_BLOCKS][id % SLAB_BLOCKS]
    }

    fn take_block(&mut self) -> u32 {
        if let Some(id) = self.free {
            let next = self.block(id).next;
            self.free = (next != NO_BLOCK).then_some(next);
            return id;
        }
        let first = (self.slabs.len() * SLAB_BLOCKS) as u32;
        assert!(first < NO_BLOCK - SLAB_BLOCKS as u32, "block ids fit in u32");
        self.slabs.push((0..SLAB_BLOCKS).map(|_| Block::empty()).collect());
        for id in (first + 1..first + SLAB_BLOCKS as u32).rev() {
            self.give_back(id);
        }
        first
    }

    fn give_back(&mut self, id: u32) {
        let next = self.free.unwrap_or(NO_BLOCK);
        let block = self.block_mut(id);
        debug_assert!(block.slots.iter().all(Option::is_none));
        block.next = next;
        self.free = Some(id);
    }

    /// Asks the CPU to start loading a block that will be read soon.
    fn prefetch(&self, id: u32) {
        if id == NO_BLOCK {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let block: *const Block = self.block(id);
            // SAFETY: a prefetch is a hint; it reads nothing the program
            // sees and never faults (the address is a live block anyway).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(block.cast()) };
        }
    }

    /// The first record of the chain for which `matches` is true.
    pub fn find(&self, chain: &Chain, mut matches: impl FnMut(&Record) -> bool) -> Option<Position> {
        let mut block = chain.head;
        while block != NO_BLOCK {
            let b = self.block(block);
            // `next` is already on its way, asked for one block ago
            // (except at the head); `after_next` joins it.
            if block == chain.head {
                self.prefetch(b.next);
            }
            self.prefetch(b.after_next);
            for (slot, record) in b.slots.iter().enumerate() {
                if let Some(record) = record
                    && matches(record)
                {
                    return Some(Position { block, slot });
                }
            }
            block = b.next;
        }
        None
    }

    pub fn get(&self, at: Position) -> &Record {
        self.block(at.block).slots[at.slot]
            .as_ref()
            .expect("a position found in the chain holds a record")
    }

    /// Replaces the record at `at`, returning the old one.
    pub fn replace(&mut self, at: Position, record: Record) -> Record {
        self.block_mut(at.block).slots[at.slot]
            .replace(record)
            .expect("a position found in the chain holds a record")
    }

    pub fn push(&mut self, chain: &mut Chain, record: Record) {
        let slot = chain.len() % BLOCK_SLOTS;
        if slot == 0 {
            let block = self.take_block();
            let after_next = if chain.head == NO_BLOCK {
                NO_BLOCK
            } else {
                self.block(chain.head).next
            };
            let new_head = self.block_mut(block);
            new_head.next = chain.head;
            new_head.after_next = after_next;
            chain.head = block;
        }
        let head = chain.head;
        self.block_mut(head).slots[slot] = Some(record);
        chain.len += 1;
        self.check_head(chain);
    }

    /// The chain's records fill its blocks from the head's first slot on:
    /// the head holds `head_fill` of them, every other block is full.
    fn check_head(&self, chain: &Chain) {
        if chain.len == 0 {
            crate::invariant!(chain.head == NO_BLOCK, "an empty chain keeps block {}", chain.head);
            return;
        }
        let head = &self.block(chain.head).slots;
        let fill = chain.head_fill();
        crate::invariant!(
            head[fill - 1].is_some() && head.get(fill).is_none_or(Option::is_none),
            "a chain of {} records whose head block is not filled to {fill}",
            chain.len
        );
    }

    /// Removes the record at `at`; the newest record fills its slot.
    pub fn remove(&mut self, chain: &mut Chain, at: Position) -> Record {
        let head = chain.head;
        let last = self.block_mut(head).slots[chain.head_fill() - 1]
            .take()
            .expect("the head block holds head_fill records");
        let removed = if at
            == (Position {
                block: head,
                slot: chain.head_fill() - 1,
            }) {
            last
        } else {
            self.replace(at, last)
        };
        chain.len -= 1;
        if chain.len().is_multiple_of(BLOCK_SLOTS) {
            chain.head = self.block(head).next;
            self.give_back(head);
        }
        self.check_head(chain);
        removed
    }

    pub fn iter<'a>(&'a self, chain: &Chain) -> impl Iterator<Item = &'a Record> + 'a {
        let mut block = chain.head;
        std::iter::from_fn(move || {
            if block == NO_BLOCK {
                return None;
            }
            let b = self.block(block);
            block = b.next;
            Some(b.slots.iter().flatten())
        })
        .flatten()
    }

    /// Takes every record out of the chain, leaving it empty.
    pub fn drain(&mut self, chain: &mut Chain) -> Vec<Record> {
        let mut records = Vec::with_capacity(chain.len());
        while chain.head != NO_BLOCK {
            let head = chain.head;
            let block = self.block_mut(head);
            records.extend(block.slots.iter_mut().filter_map(Option::take));
            chain.head = block.next;
            self.give_back(head);
        }
        chain.len = 0;
        records
    }
}

/// What a slab costs: its blocks plus malloc's header, in whole pages.
pub const SLAB_BYTES: usize = malloc_chunk_bytes(SLAB_BLOCKS * std::mem::size_of::<Block>());
const _: () = assert!(SLAB_BYTES == 32 * 1024);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::stamp::Stamp;

    fn record(i: u32) -> Record {
        Record::new(&i.to_be_bytes(), b"v", 0, Stamp(u64::from(i)), false, i as u16)
    }

    fn keys(pool: &BlockPool, chain: &Chain) -> Vec<u32> {
        let mut keys: Vec<u32> = pool
            .iter(chain)
            .map(|r| u32::from_be_bytes(r.key().try_into().unwrap()))
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn push_find_remove_keep_every_other_record() {
        let mut pool = BlockPool::default();
        let mut chain = Chain::default();
        for i in 0..50 {
            pool.push(&mut chain, record(i));
        }
        assert_eq!(chain.len(), 50);
        for i in (0u32..50).step_by(3) {
            let at = pool.find(&chain, |r| r.key() == i.to_be_bytes()).unwrap();
            assert_eq!(pool.get(at).tag(), i as u16);
            let removed = pool.remove(&mut chain, at);
            assert_eq!(removed.key(), i.to_be_bytes());
        }
        let expected: Vec<u32> = (0..50).filter(|i| i % 3 != 0).collect();
        assert_eq!(keys(&pool, &chain), expected);
        assert_eq!(chain.len(), expected.len());
        assert!(pool.find(&chain, |r| r.key() == 3u32.to_be_bytes()).is_none());
    }

    /// Every block's `after_next` is its `next`'s `next`.
    fn assert_links(pool: &BlockPool, chain: &Chain) {
        let mut block = chain.head;
        while block != NO_BLOCK {
            let b = pool.block(block);
            let expected = if b.next == NO_BLOCK {
                NO_BLOCK
            } else {
                pool.block(b.next).next
            };
            assert_eq!(b.after_next, expected, "block {block}");
            block = b.next;
        }
    }

    #[test]
    fn each_block_knows_the_block_after_next_through_pushes_removals_and_reuse() {
        let mut pool = BlockPool::default();
        let mut chains = [Chain::default(); 3];
        let mut rng = crate::storage::hash::SplitMix64::new(5);
        let mut next_key = 0u32;
        for step in 0..5_000 {
            let chain = &mut chains[rng.below(3) as usize];
            if chain.is_empty() || rng.below(3) > 0 {
                pool.push(chain, record(next_key));
                next_key += 1;
            } else if step % 500 == 0 {
                pool.drain(chain);
            } else {
                let fill = chain.len();
                let at = pool.find(chain, |_| rng.below(fill as u64) == 0);
                let at = at.unwrap_or(Position {
                    block: chain.head,
                    slot: 0,
                });
                pool.remove(chain, at);
            }
            chains.iter().for_each(|chain| assert_links(&pool, chain));
        }
        assert!(
            chains.iter().any(|chain| chain.len() > 3 * BLOCK_SLOTS),
            "chains long enough to have a block after next"
        );
    }

    #[test]
    fn freed_blocks_serve_other_chains_before_a_new_slab() {
        let mut pool = BlockPool::default();
        let mut chains = vec![Chain::default(); 100];
        for (c, chain) in chains.iter_mut().enumerate() {
            for i in 0..20 {
                pool.push(chain, record(c as u32 * 100 + i));
            }
        }
        let slabs = pool.heap_bytes();
        // Empty half the chains, then grow the other half by as much.
        for chain in chains.iter_mut().step_by(2) {
            assert_eq!(pool.drain(chain).len(), 20);
            assert!(chain.is_empty());
        }
        for (c, chain) in chains.iter_mut().enumerate().skip(1).step_by(2) {
            for i in 20..40 {
                pool.push(chain, record(c as u32 * 100 + i));
            }
        }
        assert_eq!(pool.heap_bytes(), slabs, "no new slab while freed blocks remain");
        for (c, chain) in chains.iter().enumerate().skip(1).step_by(2) {
            let expected: Vec<u32> = (0..40).map(|i| c as u32 * 100 + i).collect();
            assert_eq!(keys(&pool, chain), expected);
        }
    }

    #[test]
    fn growth_is_announced_before_a_slab_is_taken() {
        let mut pool = BlockPool::default();
        let mut chain = Chain::default();
        assert_eq!(pool.insert_growth_bytes(&chain), SLAB_BYTES);
        pool.push(&mut chain, record(0));
        assert_eq!(pool.heap_bytes(), SLAB_BYTES);
        for i in 1..(SLAB_BLOCKS * BLOCK_SLOTS) as u32 {
            assert_eq!(pool.insert_growth_bytes(&chain), 0, "record {i}");
            pool.push(&mut chain, record(i));
        }
        assert_eq!(pool.insert_growth_bytes(&chain), SLAB_BYTES);
        pool.push(&mut chain, record(u32::MAX));
        assert_eq!(pool.heap_bytes(), 2 * SLAB_BYTES);
    }
}

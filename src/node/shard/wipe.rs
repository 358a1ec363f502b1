//! WIPEOUT, one shard's part: the store and the at-most-once cache
//! emptied, and a floor below which nothing is taken in again. Every shard
//! of the node takes part; the last one to finish answers, once the wall
//! clock is past every millisecond a shard wiped in.

use super::Shard;
use crate::node::messages::Wipeout;
use crate::protocol::wire::{ErrorCode, Reply};
use crate::storage::memory::trim_heap;
use crate::storage::stamp::Stamp;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What a shard keeps of WIPEOUTs: the floor below which nothing is taken
/// in again (the latest WIPEOUT's, raised by every one, never lowered),
/// and a finished WIPEOUT waiting for its millisecond to pass.
#[derive(Default)]
pub(super) struct Wiped {
    floor: Stamp,
    reply: Option<Arc<Wipeout>>,
}

impl Wiped {
    /// Entries stamped before it are not taken in.
    pub(super) fn floor(&self) -> Stamp {
        self.floor
    }

    /// A WIPEOUT at `floor`, made here or read back from the journal.
    pub(super) fn raise_floor(&mut self, floor: Stamp) {
        let before = self.floor;
        self.floor = self.floor.max(floor);
        // A lower floor would take back what a WIPEOUT emptied.
        crate::invariant!(
            self.floor >= before && self.floor >= floor,
            "the WIPEOUT floor went from {before:?} to {:?} when raised to {floor:?}",
            self.floor
        );
    }

    /// Whether a finished WIPEOUT waits to be answered.
    pub(super) fn reply_waits(&self) -> bool {
        self.reply.is_some()
    }
}

impl Shard {
    /// Empties this shard. What any replica still holds or sends from this
    /// millisecond or before stays out: a write acknowledged before the
    /// WIPEOUT was sent may reach this replica after it, stamped in the
    /// same millisecond. The reply waits for the next millisecond, so every
    /// write a client starts after it is stamped later.
    /// With a journal the wipe is durable before the store is emptied; a
    /// shard whose journal cannot take it keeps its data, and the WIPEOUT
    /// is answered as failed.
    pub(super) fn wipe(&mut self, job: Arc<Wipeout>) {
        let wiped_in_stamp_ms = self.ctx.clock.stamp_ms();
        let floor = Stamp::from_millis(wiped_in_stamp_ms + 1);
        self.commit();
        let now = self.now_ms();
        if let Some(journal) = &mut self.journal
            && let Err(error) = journal.wipe(floor, now)
        {
            crate::log!(
                "wipeout_failed",
                "the journal could not take the WIPEOUT ({error}): nothing wiped"
            );
            job.failed.store(true, Ordering::Release);
        } else {
            self.wipe_memory(floor);
        }
        job.wiped_in_stamp_ms.fetch_max(wiped_in_stamp_ms, Ordering::AcqRel);
        if job.shards_left.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The memory is back: let PUTs in before answering.
            self.store.budget().check_rss();
            self.wiped.reply = Some(job);
            self.answer_wipeout();
        }
    }

    fn wipe_memory(&mut self, floor: Stamp) {
        self.wiped.raise_floor(floor);
        for bucket in 0..crate::storage::hash::BUCKETS as crate::storage::hash::BucketId {
            self.ctx.digests[usize::from(bucket)].store(0, Ordering::Relaxed);
        }
        self.store.wipe();
        self.cache.clear();
        self.agreement.clear();
        trim_heap();
    }

    /// Answers a finished WIPEOUT once the wall clock is past every
    /// millisecond a shard wiped in.
    pub(super) fn answer_wipeout(&mut self) {
        let Some(job) = &self.wiped.reply else {
            return;
        };
        if self.ctx.clock.stamp_ms() <= job.wiped_in_stamp_ms.load(Ordering::Acquire) {
            return;
        }
        let code = if job.failed.load(Ordering::Acquire) {
            ErrorCode::InternalFailure
        } else {
            ErrorCode::Success
        };
        let reply = Reply::Code(code);
        self.ctx.counters.count_reply(&reply);
        self.io.datagram(job.client, &reply.encode(&job.message_id));
        self.wiped.reply = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_only_rises() {
        let mut wiped = Wiped::default();
        wiped.raise_floor(Stamp::from_millis(5));
        wiped.raise_floor(Stamp::from_millis(3));
        assert_eq!(wiped.floor(), Stamp::from_millis(5));
        assert!(!wiped.reply_waits());
    }
}

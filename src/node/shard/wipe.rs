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
            self.wipe_reply = Some(job);
            self.answer_wipeout();
        }
    }

    fn wipe_memory(&mut self, floor: Stamp) {
        self.wiped_before = floor;
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
        let Some(job) = &self.wipe_reply else {
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
        self.wipe_reply = None;
    }
}

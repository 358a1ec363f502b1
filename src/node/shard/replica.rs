//! A replica's side of a write: an entry another node coordinated (or sent
//! in a transfer), offered to the store through the same memory admission
//! as a client's write, newest stamp winning, and acknowledged to its
//! coordinator with whether it was stored and whether this store is full.

use super::Shard;
use crate::cluster::internal::{Entry, Internal};
use crate::node::messages::ClusterMsg;
use crate::storage::hash::{BUCKETS, BucketId, bucket_of_key};
use crate::storage::memory::FULL_ENTER_PERCENT;
use crate::storage::store::{Applied, Write};

/// How often a bucket whose entries the store refuses is reported again.
const INCOMPLETE_TELL_MS: u64 = 1_000;

impl Shard {
    /// A coordinator's write: stored (if newer) and acknowledged.
    pub(super) fn store_replicated(&mut self, from: usize, seq: u64, entry: &Entry) {
        let applied = if self.fault_loses_write() {
            Applied::Stored
        } else {
            self.apply_entry(entry)
        };
        let bucket = bucket_of_key(&entry.key);
        if applied == Applied::OutOfSpace {
            self.lacks_entries_of(bucket);
        }
        let ack = Internal::ReplicateAck {
            seq,
            bucket,
            full: self.store.budget().is_full(FULL_ENTER_PERCENT),
            refused: applied == Applied::OutOfSpace,
        };
        // Once the write is in the journal: an ack is a logged copy.
        self.send_node(from, ack);
    }

    /// The store refused an entry of `bucket` for lack of room: the copy
    /// here lacks a write its replicas have, and the cluster core must
    /// know (see `ClusterCore::incomplete`); told once a second at most.
    pub(super) fn lacks_entries_of(&mut self, bucket: BucketId) {
        let now = self.now_ms();
        if self.incomplete_told_ms.is_empty() {
            self.incomplete_told_ms = vec![0; BUCKETS];
        }
        let Some(told) = self.incomplete_told_ms.get_mut(usize::from(bucket)) else {
            return;
        };
        if *told != 0 && now < *told + INCOMPLETE_TELL_MS {
            return;
        }
        *told = now.max(1);
        self.tell_cluster(ClusterMsg::Incomplete { bucket });
    }

    /// The test fault of `--fault-lose-replica-writes-percent`: whether this
    /// write is acknowledged without being stored.
    fn fault_loses_write(&mut self) -> bool {
        if self.fault_lose_percent == 0 {
            return false;
        }
        self.fault_rng.below(100) < self.fault_lose_percent
    }

    /// Offers a replicated or transferred entry to the store, through the
    /// same memory admission as a client's write; kept if it is newer.
    pub(super) fn apply_entry(&mut self, entry: &Entry) -> Applied {
        if entry.stamp < self.wiped.floor() {
            // Written before this node's WIPEOUT: a replica not wiped yet
            // must not refill what was wiped.
            return Applied::Stale;
        }
        self.clock.observe(entry.stamp);
        if crate::planted!(self.ctx, ignore_stamps_on_merge) {
            // Whatever is stored goes, so any copy that arrives wins.
            self.store.forget(&entry.key);
        }
        let bucket = bucket_of_key(&entry.key);
        if entry.stamp < self.agreement.cutoff(bucket, self.collect_from_stamp_ms)
            && self.store.stamp_of(&entry.key).is_none()
        {
            // Every replica held what was written before the cutoff, and
            // held alike: a key this node lacks that old was deleted and
            // its tombstone collected here. A tombstone a replica has yet
            // to collect comes back meanwhile; so may the old value a
            // stand-in kept and hands off late (its copy never saw the
            // delete): either would bring the key back.
            return Applied::Stale;
        }
        let write = if entry.tombstone {
            Write::Tombstone
        } else {
            Write::Value {
                value: &entry.value,
                version: entry.version,
            }
        };
        // No room in the journal: not stored, like no room in the store.
        self.write_store(&entry.key, write, entry.stamp)
            .unwrap_or(Applied::OutOfSpace)
    }
}

//! A shard's store rebuilt from its journal at start, before the node
//! serves: each change read back ([`crate::node::durability::recovery`]) applied as it
//! was made, through the same memory admission, without being logged again
//! (it is on disk). Replay is positional: a drop or a wipe clears what came
//! before it, and newest stamp wins among the rest.

use super::Shard;
use crate::node::durability::log_format::Change;
use crate::node::durability::recovery::written_by;
use crate::storage::hash::{BUCKETS, BucketId};
use crate::storage::store::{Applied, Write};

/// What became of a replayed change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replayed {
    Applied,
    /// The store had no room (the node restarted with less memory): the
    /// bucket must be pulled again.
    NoRoom,
}

impl Shard {
    /// Applies one change read back from a journal written by shard
    /// `shard` of `shards`.
    pub fn replay(&mut self, change: &Change<'_>, shard: u16, shards: u16) -> Replayed {
        let (key, write, stamp) = match *change {
            Change::Put {
                key,
                value,
                version,
                stamp,
            } => (key, Write::Value { value, version }, stamp),
            Change::Tombstone { key, stamp } => (key, Write::Tombstone, stamp),
            Change::Forget { key } => {
                self.store.forget(key);
                return Replayed::Applied;
            }
            Change::DropBucket { bucket } => {
                self.store.retain(|b, _| b == bucket, |_, _| false);
                return Replayed::Applied;
            }
            Change::Collect { bucket, cutoff } => {
                let collected =
                    |record: &crate::storage::record::Record| record.is_tombstone() && record.stamp() < cutoff;
                self.store.retain(|b, _| b == bucket, |_, record| !collected(record));
                return Replayed::Applied;
            }
            Change::Wipe { floor } => {
                self.store.retain(|b, _| written_by(b, shard, shards), |_, _| false);
                self.wiped.raise_floor(floor);
                return Replayed::Applied;
            }
            Change::End { .. } | Change::Header(_) => return Replayed::Applied,
        };
        if stamp < self.wiped.floor() {
            return Replayed::Applied;
        }
        // No stamp is issued below one recovered.
        self.clock.observe(stamp);
        match self.store.apply(key, write, stamp) {
            Applied::OutOfSpace => Replayed::NoRoom,
            Applied::Stored | Applied::Stale => Replayed::Applied,
        }
    }

    /// Drops a bucket read back from the journal, before the node serves
    /// (it did not fit: see `assemble`); returns whether it held any.
    pub fn drop_recovered_bucket(&mut self, bucket: BucketId) -> bool {
        let stats = self.store.bucket_stats(bucket);
        if stats.live_keys + stats.tombstones == 0 {
            return false;
        }
        self.store.retain(|b, _| b == bucket, |_, _| false);
        true
    }

    /// After replay: every bucket's digest published for the cluster core.
    pub fn replayed(&mut self) {
        for bucket in 0..BUCKETS as BucketId {
            self.publish_digest(bucket);
        }
    }
}

//! The retain pass, on the cluster core's schedule: drops what this node
//! no longer replicates and collects the tombstones every replica holds.
//!
//! A bucket no longer replicated here is handed off first (see
//! [`super::handoff`]): its digest is offered to each of the bucket's
//! replicas at every pass, and it is dropped only once each of them has
//! confirmed it holds this copy. Tombstones go once every replica is known
//! to hold them (see [`crate::cluster::agreement`]).

use super::Shard;
use super::handoff::Offer;
use crate::log;
use crate::node::durability::log_format::Change;
use crate::storage::hash::{BUCKETS, BucketId};
use crate::storage::stamp::Stamp;
use crate::storage::store::BucketStats;

impl Shard {
    /// Keeps only the buckets marked in `keep`; collects tombstones, with
    /// epochs counting from `collect_from_stamp_ms` (see [`crate::node::messages::ShardMsg::Retain`]).
    pub(super) fn retain(&mut self, keep: &[bool], collect_from_stamp_ms: Option<u64>) {
        self.collect_from_stamp_ms = collect_from_stamp_ms;
        let drop = self.buckets_to_drop(keep);
        let agreement = &self.agreement;
        let at_once = crate::planted!(self.ctx, collect_tombstones_at_once);
        let cutoff = |bucket: BucketId| {
            if at_once {
                Stamp(u64::MAX)
            } else {
                agreement.cutoff(bucket, collect_from_stamp_ms)
            }
        };
        let mut collected_in = vec![false; BUCKETS];
        let visit = |bucket: BucketId, stats: &BucketStats| drop[usize::from(bucket)] || stats.tombstones > 0;
        let tombstones = self.store.retain(visit, |bucket, record| {
            let collected = record.is_tombstone() && record.stamp() < cutoff(bucket);
            collected_in[usize::from(bucket)] |= collected;
            !(drop[usize::from(bucket)] || collected)
        });
        // Logged after: lost in a crash, a dropped bucket or a collected
        // tombstone comes back at the restart and goes again at a later pass.
        let changes: Vec<Change<'_>> = (0..BUCKETS as BucketId)
            .filter_map(
                |bucket| match (drop[usize::from(bucket)], collected_in[usize::from(bucket)]) {
                    (true, _) => Some(Change::DropBucket { bucket }),
                    (false, true) => Some(Change::Collect {
                        bucket,
                        cutoff: cutoff(bucket),
                    }),
                    (false, false) => None,
                },
            )
            .collect();
        let dropped = drop.iter().filter(|&&d| d).count();
        if !changes.is_empty() {
            self.log_after(&changes);
            for bucket in (0..BUCKETS as BucketId).filter(|&b| drop[usize::from(b)] || collected_in[usize::from(b)]) {
                self.publish_digest(bucket);
            }
        }
        if dropped > 0 || tombstones > 0 {
            log!(
                "retain",
                "dropped {dropped} buckets no longer replicated here; {tombstones} tombstones gone"
            );
        }
    }

    /// The buckets to drop now: held here, not kept, and confirmed by
    /// every replica; offers the others to the replicas that have not
    /// confirmed them (refused on full queues, an offer goes at the next
    /// pass).
    fn buckets_to_drop(&mut self, keep: &[bool]) -> Vec<bool> {
        let view = self.ctx.view();
        let mut drop = vec![false; BUCKETS];
        for bucket in 0..BUCKETS as BucketId {
            let b = usize::from(bucket);
            let stats = self.store.bucket_stats(bucket);
            if keep[b] || stats.live_keys + stats.tombstones == 0 {
                self.handoffs.forget(bucket);
                continue;
            }
            let replicas: Vec<usize> = view.other_replicas(bucket).collect();
            if crate::planted!(self.ctx, drop_handoff_unconfirmed) {
                // Offered at the last pass: counted as confirmed by all.
                for &node in &replicas {
                    self.handoffs.confirmed(node, bucket, stats.digest);
                }
            }
            match self.handoffs.offering(bucket, stats.digest, &replicas) {
                Offer::Drop => drop[b] = true,
                Offer::To(nodes) => {
                    for node in nodes {
                        self.offer_bucket(node, bucket);
                    }
                }
            }
        }
        drop
    }
}

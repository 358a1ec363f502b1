//! What a ready node does on a schedule to keep its data right: compare
//! bucket digests with peers (anti-entropy), and drop what it no longer
//! replicates and the tombstones every replica holds (retain). The shards
//! do the work; the cluster core decides when, with whom and what.

use super::ClusterCore;
use crate::cluster::agreement::WHOLE_GRACE_MS;
use crate::node::messages::ShardMsg;
use crate::storage::hash::{BUCKETS, BucketId};
use std::sync::Arc;

/// How often this node compares its buckets with the next peers'.
const ANTI_ENTROPY_INTERVAL_MS: u64 = 500;
/// Every peer sharing a bucket is compared with at least this often: one
/// peer per round up to 240 nodes. Each digest datagram costs sender and
/// receiver about as much as a gossip datagram, and at 150 nodes on one
/// host every datagram a node handles per second costs 1 % of a core.
const ANTI_ENTROPY_CYCLE_MS: u64 = 120_000;
/// How often buckets no longer replicated here are dropped.
const RETAIN_INTERVAL_MS: u64 = 5_000;
/// The same on a node that leaves the cluster, whose every bucket goes:
/// it hands them off and exits within seconds once the others are ready.
const RETAIN_INTERVAL_LEAVING_MS: u64 = 1_000;

/// When the anti-entropy and retain passes last ran.
#[derive(Default)]
pub(super) struct UpkeepTimes {
    last_retain_ms: u64,
    last_anti_entropy_ms: u64,
    /// Offset from this node of the last peer compared with.
    anti_entropy_pass: usize,
}

impl ClusterCore {
    /// The passes that are due, if this node is ready.
    pub(super) fn upkeep(&mut self, now: u64) {
        if !self.membership.is_ready() {
            return;
        }
        if now >= self.upkeep.last_anti_entropy_ms + ANTI_ENTROPY_INTERVAL_MS {
            self.upkeep.last_anti_entropy_ms = now;
            self.anti_entropy();
        }
        let interval = if self.ctx.view().leaving {
            RETAIN_INTERVAL_LEAVING_MS
        } else {
            RETAIN_INTERVAL_MS
        };
        if now >= self.upkeep.last_retain_ms + interval {
            self.upkeep.last_retain_ms = now;
            let needed = self.retain();
            self.leave_when_drained(needed);
        }
    }

    /// Compares every bucket this node shares with the next few live peers
    /// that share any: one digest message per shard per peer, so the cost
    /// does not grow with the number of buckets, and enough peers per round
    /// that every pair of replicas is compared within
    /// [`ANTI_ENTROPY_CYCLE_MS`] whatever the cluster's size.
    fn anti_entropy(&mut self) {
        let view = self.ctx.view();
        let me = self.ctx.self_index;
        let n = self.ctx.roster.len();
        let mine: Vec<BucketId> = (0..BUCKETS as BucketId).filter(|&b| view.holds(me, b)).collect();
        let peers_per_round = (n as u64 * ANTI_ENTROPY_INTERVAL_MS).div_ceil(ANTI_ENTROPY_CYCLE_MS) as usize;
        let shards = self.shards.len();
        let mut compared = 0;
        for step in 1..n {
            if compared == peers_per_round.max(1) {
                break;
            }
            let peer = (me + self.upkeep.anti_entropy_pass + step) % n;
            // Peers still catching up too: one may hold the only copy of a
            // write (its replicas crashed while it was away).
            if !view.liveness.alive[peer] {
                continue;
            }
            self.upkeep.anti_entropy_pass = (peer + n - me) % n;
            let mut by_shard: Vec<Vec<BucketId>> = vec![Vec::new(); shards];
            for &bucket in mine.iter().filter(|&&b| view.holds(peer, b)) {
                by_shard[self.ctx.shard_of(bucket, shards)].push(bucket);
            }
            if by_shard.iter().all(Vec::is_empty) {
                continue;
            }
            compared += 1;
            for (shard, buckets) in by_shard.into_iter().enumerate() {
                if !buckets.is_empty() {
                    self.send_to_shard(shard, ShardMsg::AntiEntropy { to: peer, buckets });
                }
            }
        }
    }

    /// Drops buckets this node no longer replicates (once they have every
    /// copy they should, all current) and the tombstones every replica
    /// holds. Returns whether it keeps any bucket it does not replicate.
    fn retain(&self) -> bool {
        let view = self.ctx.view();
        let me = self.ctx.self_index;
        let keep: Vec<bool> = (0..BUCKETS as BucketId)
            .map(|bucket| {
                let prefs = view.preference(bucket);
                view.holds(me, bucket)
                    || prefs.len() < view.copies_wanted()
                    || prefs.iter().any(|&n| !view.is_current(usize::from(n)))
            })
            .collect();
        let needed = (0..BUCKETS as BucketId).any(|bucket| keep[usize::from(bucket)] && !view.holds(me, bucket));
        let keep = Arc::new(keep);
        let collect_from_stamp_ms = self.whole_since_stamp_ms.map(|since| since + WHOLE_GRACE_MS);
        for shard in 0..self.shards.len() {
            let retain = ShardMsg::Retain {
                keep: keep.clone(),
                collect_from_stamp_ms,
            };
            self.send_to_shard(shard, retain);
        }
        needed
    }
}

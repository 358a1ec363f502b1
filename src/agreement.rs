//! When a shard may collect a bucket's tombstones: only once every replica
//! of the bucket is known to hold them, so a deleted key never comes back.
//!
//! What is known comes from anti-entropy. When a peer's digest of a bucket
//! equals ours, it held the same entries, tombstones included, that we
//! hold now. A bucket's *epoch* starts at some time and collects such
//! matches, one per other replica; once every replica matched, every
//! tombstone we held when the epoch started is on every replica, and the
//! epoch's start becomes the bucket's *safe point*. A new epoch starts then.
//!
//! Replicas must collect the same tombstones, or their digests differ until
//! they all have, and a replica whose safe point lags would wait forever
//! for the matches that would advance it. So each digest carries the
//! sender's safe point, and a replica collects up to the lowest safe point
//! of all replicas (the lowest of a round of reports, one from each peer):
//! when one replica collects a tombstone, every other one can too, once the
//! reports have gone round, whether or not their digests still match.
//!
//! We do not record when each tombstone arrived, only its stamp (its write
//! time), so a tombstone is collected when its stamp is older than the safe
//! point by [`ARRIVAL_DELAY_MAX_MS`]: the longest a delete takes to reach a
//! replica in a cluster whose every node is up (retransmits stop after the
//! failure timeout, which makes the cluster not whole). Hand-offs from
//! stand-ins and resyncs after a suspension can bring older tombstones; they
//! happen only after a node was down, so nothing is collected until the
//! cluster has been whole for [`WHOLE_GRACE_MS`] and a whole epoch has run
//! since (the cluster thread passes when that is). Clocks are assumed to be
//! within [`ARRIVAL_DELAY_MAX_MS`] of each other, as last-writer-wins
//! already assumes.

use crate::hash::{BUCKETS, BucketId};
use crate::stamp::Stamp;

/// Longest a delete takes to reach every replica of a whole cluster.
pub const ARRIVAL_DELAY_MAX_MS: u64 = 10_000;
/// How long the cluster must have been whole (every node alive, ready and
/// not behind) before epochs count: stand-ins have handed their buckets
/// back and woken nodes have resynced by then (retain runs every 5 s).
pub const WHOLE_GRACE_MS: u64 = 15_000;

/// Where a peer and this node sit in a bucket's preference list.
#[derive(Clone, Copy, Debug)]
pub struct Position {
    pub at: usize,
    pub own: usize,
    pub replicas: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct Epoch {
    /// Wall-clock seconds when the epoch started.
    started_s: u32,
    /// Bit i: the replica at position i of the preference list matched.
    matched: u8,
    /// Start of the last complete epoch (0: none yet).
    safe_s: u32,
    /// Bit i: the replica at position i reported its safe point this round.
    reported: u8,
    /// The lowest safe point reported this round.
    round_min_s: u32,
    /// The lowest safe point of the other replicas in the last full round.
    peers_safe_s: u32,
}

/// Per bucket: what this node knows the other replicas hold.
#[derive(Debug)]
pub struct Agreement {
    epochs: Vec<Epoch>,
}

impl Default for Agreement {
    fn default() -> Agreement {
        Agreement {
            epochs: vec![Epoch::default(); BUCKETS],
        }
    }
}

fn seconds(ms: u64) -> u32 {
    u32::try_from(ms / 1000).unwrap_or(u32::MAX)
}

impl Agreement {
    /// This node's safe point of `bucket`, for its digests.
    pub fn safe_s(&self, bucket: BucketId) -> u32 {
        self.epochs[usize::from(bucket)].safe_s
    }

    /// Records the digest of the replica at `peer` of `bucket`'s preference
    /// list (of `replicas` nodes, `own` being this node's position): its
    /// safe point, and whether it held what this node holds at `now_ms`.
    pub fn compared(&mut self, bucket: BucketId, peer: Position, peer_safe_s: u32, matched: bool, now_ms: u64) {
        let epoch = &mut self.epochs[usize::from(bucket)];
        let all = (1u16 << peer.replicas) - 1;
        let bits = (1 << peer.at) | (1 << peer.own);
        if matched {
            epoch.matched |= bits;
            if u16::from(epoch.matched) == all {
                epoch.safe_s = epoch.started_s;
                epoch.started_s = seconds(now_ms);
                epoch.matched = 0;
            }
        }
        epoch.round_min_s = if epoch.reported == 0 {
            peer_safe_s
        } else {
            epoch.round_min_s.min(peer_safe_s)
        };
        epoch.reported |= bits;
        if u16::from(epoch.reported) == all {
            epoch.peers_safe_s = epoch.round_min_s;
            epoch.reported = 0;
        }
    }

    /// Tombstones of `bucket` stamped before this may be collected, given
    /// that epochs count from `counts_from_ms` on (None: nothing may be).
    pub fn cutoff(&self, bucket: BucketId, counts_from_ms: Option<u64>) -> Stamp {
        let epoch = self.epochs[usize::from(bucket)];
        let safe_ms = u64::from(epoch.safe_s.min(epoch.peers_safe_s)) * 1000;
        match counts_from_ms {
            Some(from) if safe_ms >= from => Stamp::from_millis(safe_ms.saturating_sub(ARRIVAL_DELAY_MAX_MS)),
            _ => Stamp::from_millis(0),
        }
    }

    pub fn clear(&mut self) {
        self.epochs.fill(Epoch::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    fn at(at: usize, own: usize) -> Position {
        Position { at, own, replicas: 3 }
    }

    /// Both peers (positions 1 and 2 of bucket 7, this node at 0) match at
    /// the given seconds, reporting `peer_safe_s`.
    fn rounds(agreement: &mut Agreement, bucket: BucketId, own: usize, times: &[(usize, u64)], peer_safe_s: u32) {
        for &(peer, t) in times {
            agreement.compared(bucket, at(peer, own), peer_safe_s, true, t * S);
        }
    }

    #[test]
    fn nothing_is_collected_until_every_replica_matched() {
        let mut agreement = Agreement::default();
        let from = Some(100 * S);
        rounds(&mut agreement, 7, 0, &[(1, 101), (2, 102)], u32::MAX);
        // The first epoch started at 0, before the cluster was whole.
        assert_eq!(agreement.cutoff(7, from), Stamp::from_millis(0));
        rounds(&mut agreement, 7, 0, &[(1, 130)], u32::MAX);
        assert_eq!(agreement.cutoff(7, from), Stamp::from_millis(0), "one of two peers");
        rounds(&mut agreement, 7, 0, &[(1, 131)], u32::MAX);
        assert_eq!(agreement.cutoff(7, from), Stamp::from_millis(0), "the same peer twice");
        rounds(&mut agreement, 7, 0, &[(2, 140)], u32::MAX);
        // The second epoch started at 102 s, when the first completed.
        assert_eq!(agreement.safe_s(7), 102);
        assert_eq!(
            agreement.cutoff(7, from),
            Stamp::from_millis(102 * S - ARRIVAL_DELAY_MAX_MS)
        );
        assert_eq!(
            agreement.cutoff(8, from),
            Stamp::from_millis(0),
            "other buckets know nothing"
        );
    }

    #[test]
    fn a_mismatch_advances_nothing_but_its_safe_point_report_counts() {
        let mut agreement = Agreement::default();
        rounds(&mut agreement, 2, 0, &[(1, 10), (2, 20), (1, 30), (2, 40)], 500);
        assert_eq!(agreement.safe_s(2), 20);
        agreement.compared(2, at(1, 0), 35, false, 50 * S);
        agreement.compared(2, at(2, 0), 600, false, 60 * S);
        assert_eq!(agreement.safe_s(2), 20, "mismatches complete no epoch");
        // A peer that lags holds everyone back: all collect the same.
        agreement.compared(2, at(1, 0), 15, false, 70 * S);
        agreement.compared(2, at(2, 0), 600, false, 80 * S);
        assert_eq!(
            agreement.cutoff(2, Some(S)),
            Stamp::from_millis(15 * S - ARRIVAL_DELAY_MAX_MS)
        );
    }

    #[test]
    fn epochs_before_the_cluster_was_whole_do_not_count() {
        let mut agreement = Agreement::default();
        rounds(&mut agreement, 3, 0, &[(1, 10), (2, 20), (1, 30), (2, 40)], u32::MAX);
        assert_eq!(
            agreement.cutoff(3, Some(15 * S)),
            Stamp::from_millis(20 * S - ARRIVAL_DELAY_MAX_MS)
        );
        assert_eq!(agreement.cutoff(3, Some(21 * S)), Stamp::from_millis(0));
        assert_eq!(agreement.cutoff(3, None), Stamp::from_millis(0));
    }

    #[test]
    fn this_node_may_sit_anywhere_in_the_preference_list() {
        let mut agreement = Agreement::default();
        rounds(&mut agreement, 5, 1, &[(0, 10), (2, 20), (2, 30), (0, 40)], u32::MAX);
        assert_eq!(
            agreement.cutoff(5, Some(S)),
            Stamp::from_millis(20 * S - ARRIVAL_DELAY_MAX_MS)
        );
        agreement.clear();
        assert_eq!(agreement.cutoff(5, Some(S)), Stamp::from_millis(0));
    }
}

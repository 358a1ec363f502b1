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
//! they all have, and no epoch completes meanwhile: a replica whose safe
//! point lagged (it saw the cluster whole later, say) would wait forever.
//! So each digest carries the sender's cutoff, and a replica collects up to
//! the highest cutoff any replica of the bucket reported: a cutoff is a fact
//! about every replica ("each holds every tombstone stamped before it"),
//! whichever replica learned it.
//!
//! We do not record when each tombstone arrived, only its stamp (its write
//! time), so a tombstone is collected when its stamp is older than the safe
//! point by [`ARRIVAL_DELAY_MAX_MS`]: the longest a delete takes to reach a
//! replica in a cluster whose every node is up (retransmits stop after the
//! failure timeout, which makes the cluster not whole). Hand-offs from
//! stand-ins and catch-ups after a suspension can bring older tombstones; they
//! happen only after a node was down, so nothing is collected until the
//! cluster has been whole for [`WHOLE_GRACE_MS`] and a whole epoch has run
//! since (the cluster thread passes when that is). Clocks are assumed to be
//! within [`ARRIVAL_DELAY_MAX_MS`] of each other, as last-writer-wins
//! already assumes.

use crate::storage::hash::{BUCKETS, BucketId};
use crate::storage::stamp::Stamp;

/// Longest a delete takes to reach every replica of a whole cluster.
pub const ARRIVAL_DELAY_MAX_MS: u64 = 10_000;
/// How long the cluster must have been whole (every node alive, ready and
/// not behind) before epochs count: stand-ins have handed their buckets
/// back and woken nodes have caught up by then (retain runs every 5 s).
pub const WHOLE_GRACE_MS: u64 = 15_000;

/// Where a peer and this node sit in a bucket's preference list.
#[derive(Clone, Copy, Debug)]
pub struct Position {
    pub at: usize,
    pub own: usize,
    pub replicas: usize,
}

/// An epoch's matches are one bit per position of a preference list.
const _: () = assert!(crate::cluster::ring::REPLICAS_MAX <= u8::BITS as usize);

#[derive(Clone, Copy, Debug, Default)]
struct Epoch {
    /// Wall-clock seconds when the epoch started.
    started_s: u32,
    /// Bit i: the replica at position i of the preference list matched.
    matched: u8,
    /// Start of the last complete epoch (0: none yet).
    safe_s: u32,
    /// The highest cutoff another replica reported.
    reported_cutoff_s: u32,
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
    /// Records the digest of the replica at `peer` of `bucket`'s preference
    /// list: its cutoff, and whether it held what this node holds at `now_stamp_ms` (the wall clock, as stamps count).
    pub fn compared(&mut self, bucket: BucketId, peer: Position, peer_cutoff_s: u32, matched: bool, now_stamp_ms: u64) {
        let epoch = &mut self.epochs[usize::from(bucket)];
        epoch.reported_cutoff_s = epoch.reported_cutoff_s.max(peer_cutoff_s);
        if !matched {
            return;
        }
        epoch.matched |= (1 << peer.at) | (1 << peer.own);
        if u16::from(epoch.matched) == (1u16 << peer.replicas) - 1 {
            epoch.safe_s = epoch.started_s;
            epoch.started_s = seconds(now_stamp_ms);
            epoch.matched = 0;
        }
    }

    /// Tombstones of `bucket` stamped before this may be collected, given
    /// that this node's epochs count from `counts_from_stamp_ms` on (None: the
    /// cluster is not whole, and nothing may be).
    pub fn cutoff(&self, bucket: BucketId, counts_from_stamp_ms: Option<u64>) -> Stamp {
        Stamp::from_millis(u64::from(self.cutoff_s(bucket, counts_from_stamp_ms)) * 1000)
    }

    /// [`Agreement::cutoff`] in whole seconds, as digests carry it.
    pub fn cutoff_s(&self, bucket: BucketId, counts_from_stamp_ms: Option<u64>) -> u32 {
        let Some(from) = counts_from_stamp_ms else {
            return 0;
        };
        let epoch = self.epochs[usize::from(bucket)];
        let safe_ms = u64::from(epoch.safe_s) * 1000;
        let own_s = if safe_ms >= from {
            seconds(safe_ms.saturating_sub(ARRIVAL_DELAY_MAX_MS))
        } else {
            0
        };
        own_s.max(epoch.reported_cutoff_s)
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

    /// The peers at the given positions match at the given seconds,
    /// reporting no cutoff of their own.
    fn matches(agreement: &mut Agreement, bucket: BucketId, own: usize, times: &[(usize, u64)]) {
        for &(peer, t) in times {
            agreement.compared(bucket, at(peer, own), 0, true, t * S);
        }
    }

    fn seconds_before_delay(s: u64) -> Stamp {
        Stamp::from_millis(s * S - ARRIVAL_DELAY_MAX_MS)
    }

    #[test]
    fn nothing_is_collected_until_every_replica_matched() {
        let mut agreement = Agreement::default();
        let from = Some(100 * S);
        matches(&mut agreement, 7, 0, &[(1, 101), (2, 102)]);
        // The first epoch started at 0, before the cluster was whole.
        assert_eq!(agreement.cutoff(7, from), Stamp::from_millis(0));
        matches(&mut agreement, 7, 0, &[(1, 130)]);
        assert_eq!(agreement.cutoff(7, from), Stamp::from_millis(0), "one of two peers");
        matches(&mut agreement, 7, 0, &[(1, 131)]);
        assert_eq!(agreement.cutoff(7, from), Stamp::from_millis(0), "the same peer twice");
        matches(&mut agreement, 7, 0, &[(2, 140)]);
        // The second epoch started at 102 s, when the first completed.
        assert_eq!(agreement.cutoff(7, from), seconds_before_delay(102));
        assert_eq!(
            agreement.cutoff(8, from),
            Stamp::from_millis(0),
            "other buckets know nothing"
        );
    }

    #[test]
    fn a_mismatch_completes_no_epoch_but_a_reported_cutoff_is_adopted() {
        let mut agreement = Agreement::default();
        matches(&mut agreement, 2, 0, &[(1, 10), (2, 20), (1, 30), (2, 40)]);
        assert_eq!(agreement.cutoff(2, Some(S)), seconds_before_delay(20));
        agreement.compared(2, at(1, 0), 0, false, 50 * S);
        agreement.compared(2, at(2, 0), 0, false, 60 * S);
        assert_eq!(
            agreement.cutoff(2, Some(S)),
            seconds_before_delay(20),
            "mismatches complete no epoch"
        );
        // A replica that collected further says so, and this one follows,
        // whatever its own epochs (here: begun before it saw the cluster whole).
        agreement.compared(2, at(1, 0), 45, false, 70 * S);
        assert_eq!(agreement.cutoff(2, Some(35 * S)), Stamp::from_millis(45 * S));
        agreement.compared(2, at(2, 0), 30, false, 80 * S);
        assert_eq!(agreement.cutoff(2, Some(S)), Stamp::from_millis(45 * S), "the highest");
        assert_eq!(agreement.cutoff_s(2, Some(S)), 45, "and digests carry it on");
        assert_eq!(
            agreement.cutoff(2, None),
            Stamp::from_millis(0),
            "nothing while not whole"
        );
    }

    #[test]
    fn epochs_before_the_cluster_was_whole_do_not_count() {
        let mut agreement = Agreement::default();
        matches(&mut agreement, 3, 0, &[(1, 10), (2, 20), (1, 30), (2, 40)]);
        assert_eq!(agreement.cutoff(3, Some(15 * S)), seconds_before_delay(20));
        assert_eq!(agreement.cutoff(3, Some(21 * S)), Stamp::from_millis(0));
        assert_eq!(agreement.cutoff(3, None), Stamp::from_millis(0));
    }

    #[test]
    fn this_node_may_sit_anywhere_in_the_preference_list() {
        let mut agreement = Agreement::default();
        matches(&mut agreement, 5, 1, &[(0, 10), (2, 20), (2, 30), (0, 40)]);
        assert_eq!(agreement.cutoff(5, Some(S)), seconds_before_delay(20));
        agreement.clear();
        assert_eq!(agreement.cutoff(5, Some(S)), Stamp::from_millis(0));
    }
}

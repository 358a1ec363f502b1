//! Handing a bucket off, both sides of it: a node that no longer
//! replicates a bucket drops its copy only once every replica of the
//! bucket has confirmed it holds that copy.
//!
//! The giving side offers its digest of the bucket to each replica (over
//! the transfer stream). A replica whose copy has the same digest confirms
//! at once; one whose copy differs pulls the giver's copy (a pull with a
//! request id of its own, so it knows when the last chunk is in), merges
//! it, and confirms once the merge is in its journal. A confirmation names
//! the digest it confirms: a copy that changed since (a write reached the
//! giver meanwhile) is offered again. Offers are repeated at every retain
//! pass until each replica has confirmed, so a lost offer, a refused pull
//! or a broken stream only delays the drop. Before, a bucket was dropped
//! at the pass after its offers were *queued*: a replica whose pull was
//! refused on a busy transfer layer, or came after the drop, lost what
//! only the giver held.

use crate::storage::hash::BucketId;
use std::collections::BTreeMap;

/// Request ids of hand-off pulls carry this bit (the cluster core's pulls
/// count up from 1 and never reach it).
const HANDOFF_REQUEST_BIT: u64 = 1 << 63;
/// Hand-off pulls a replica tracks at once; the oldest is forgotten
/// beyond (its giver offers again).
const RECEIVING_MAX: usize = 256;

/// What the giving side does with a bucket at a retain pass.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Offer {
    /// Every replica confirmed this copy: drop it.
    Drop,
    /// Offer it to these replicas (not confirmed yet).
    To(Vec<usize>),
}

/// A bucket being handed off: the digest offered and who confirmed it.
#[derive(Debug)]
struct Giving {
    digest: u64,
    confirmed: Vec<usize>,
}

/// A hand-off pull a replica is receiving.
#[derive(Debug)]
struct Receiving {
    from: usize,
    bucket: BucketId,
    /// The giver's digest when it offered: what the confirmation names.
    offered: u64,
    /// An entry of it found no room: merged in part, not confirmed.
    incomplete: bool,
}

#[derive(Debug, Default)]
pub(super) struct HandOffs {
    giving: BTreeMap<BucketId, Giving>,
    receiving: BTreeMap<u64, Receiving>,
    next_request: u64,
}

impl HandOffs {
    /// Giving side, at a retain pass: the bucket's copy has `digest` and
    /// these `replicas` (this node not among them).
    pub(super) fn offering(&mut self, bucket: BucketId, digest: u64, replicas: &[usize]) -> Offer {
        let giving = self.giving.entry(bucket).or_insert(Giving {
            digest,
            confirmed: Vec::new(),
        });
        if giving.digest != digest {
            // Changed since the last offer: confirmations of the old copy
            // do not cover it.
            *giving = Giving {
                digest,
                confirmed: Vec::new(),
            };
        }
        let unconfirmed: Vec<usize> = (replicas.iter().copied())
            .filter(|node| !giving.confirmed.contains(node))
            .collect();
        crate::invariant!(
            giving.confirmed.len() <= crate::cluster::ring::REPLICAS_MAX * 2,
            "a bucket confirmed by more nodes than could replicate it: {:?}",
            giving.confirmed
        );
        if unconfirmed.is_empty() && !replicas.is_empty() {
            self.giving.remove(&bucket);
            return Offer::Drop;
        }
        Offer::To(unconfirmed)
    }

    /// Giving side: `from` holds the copy of `bucket` whose digest was
    /// `digest`.
    pub(super) fn confirmed(&mut self, from: usize, bucket: BucketId, digest: u64) {
        if let Some(giving) = self.giving.get_mut(&bucket)
            && giving.digest == digest
            && !giving.confirmed.contains(&from)
        {
            giving.confirmed.push(from);
        }
    }

    /// Giving side: buckets being handed off.
    pub(super) fn giving(&self) -> usize {
        self.giving.len()
    }

    /// Giving side: the bucket is this node's again, or empty.
    pub(super) fn forget(&mut self, bucket: BucketId) {
        self.giving.remove(&bucket);
    }

    /// Receiving side: a pull of the copy `from` offered with `offered`;
    /// returns its request id.
    pub(super) fn start_pull(&mut self, from: usize, bucket: BucketId, offered: u64) -> u64 {
        if self.receiving.len() >= RECEIVING_MAX {
            self.receiving.pop_first();
        }
        self.next_request += 1;
        let request = HANDOFF_REQUEST_BIT | self.next_request;
        let receiving = Receiving {
            from,
            bucket,
            offered,
            incomplete: false,
        };
        self.receiving.insert(request, receiving);
        crate::invariant!(
            self.receiving.len() <= RECEIVING_MAX,
            "{} hand-off pulls tracked, at most {RECEIVING_MAX}",
            self.receiving.len()
        );
        // Told apart from the cluster core's pulls by the bit alone.
        crate::invariant!(
            HandOffs::is_handoff(request) && self.next_request < HANDOFF_REQUEST_BIT,
            "hand-off pull {request:x} without its bit"
        );
        request
    }

    /// Receiving side: whether `request` is a hand-off pull.
    pub(super) fn is_handoff(request: u64) -> bool {
        request & HANDOFF_REQUEST_BIT != 0
    }

    /// Receiving side: an entry of the pull found no room.
    pub(super) fn lacked_room(&mut self, request: u64) {
        if let Some(receiving) = self.receiving.get_mut(&request) {
            receiving.incomplete = true;
        }
    }

    /// Receiving side: the pull could not be sent; forgotten.
    pub(super) fn cancel(&mut self, request: u64) {
        self.receiving.remove(&request);
    }

    /// Receiving side: every chunk of `request` merged. Returns the giver,
    /// the bucket and the digest to confirm, unless part found no room.
    pub(super) fn pull_done(&mut self, request: u64) -> Option<(usize, BucketId, u64)> {
        let done = self.receiving.remove(&request)?;
        (!done.incomplete).then_some((done.from, done.bucket, done.offered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_is_dropped_only_once_every_replica_confirmed_its_copy() {
        let mut handoffs = HandOffs::default();
        assert_eq!(handoffs.offering(7, 100, &[1, 2, 3]), Offer::To(vec![1, 2, 3]));
        handoffs.confirmed(1, 7, 100);
        handoffs.confirmed(2, 7, 100);
        assert_eq!(
            handoffs.offering(7, 100, &[1, 2, 3]),
            Offer::To(vec![3]),
            "node 3 has not confirmed"
        );
        handoffs.confirmed(3, 7, 100);
        assert_eq!(handoffs.offering(7, 100, &[1, 2, 3]), Offer::Drop);
    }

    #[test]
    fn a_copy_that_changed_since_it_was_confirmed_is_offered_again() {
        let mut handoffs = HandOffs::default();
        handoffs.offering(7, 100, &[1, 2]);
        handoffs.confirmed(1, 7, 100);
        handoffs.confirmed(2, 7, 99);
        assert_eq!(
            handoffs.offering(7, 100, &[1, 2]),
            Offer::To(vec![2]),
            "another digest confirms nothing"
        );
        handoffs.confirmed(2, 7, 100);
        // A write reached this node's copy before the pass: offered again.
        assert_eq!(handoffs.offering(7, 101, &[1, 2]), Offer::To(vec![1, 2]));
    }

    #[test]
    fn nobody_to_hand_to_keeps_the_bucket_and_confirmations_outside_an_offer_count_for_nothing() {
        let mut handoffs = HandOffs::default();
        assert_eq!(handoffs.offering(1, 5, &[]), Offer::To(vec![]));
        handoffs.confirmed(4, 9, 5);
        assert_eq!(handoffs.offering(9, 5, &[4]), Offer::To(vec![4]));
        handoffs.confirmed(4, 9, 5);
        handoffs.forget(9);
        assert_eq!(
            handoffs.offering(9, 5, &[4]),
            Offer::To(vec![4]),
            "forgotten with the bucket kept"
        );
    }

    #[test]
    fn a_pull_confirms_what_was_offered_unless_part_of_it_found_no_room() {
        let mut handoffs = HandOffs::default();
        let whole = handoffs.start_pull(3, 12, 777);
        let partial = handoffs.start_pull(4, 13, 888);
        assert!(HandOffs::is_handoff(whole) && HandOffs::is_handoff(partial));
        assert!(!HandOffs::is_handoff(1) && !HandOffs::is_handoff(0));
        handoffs.lacked_room(partial);
        assert_eq!(handoffs.pull_done(whole), Some((3, 12, 777)));
        assert_eq!(handoffs.pull_done(partial), None);
        assert_eq!(handoffs.pull_done(whole), None, "once");
    }

    #[test]
    fn the_pulls_tracked_are_bounded() {
        let mut handoffs = HandOffs::default();
        let first = handoffs.start_pull(1, 0, 0);
        for bucket in 0..RECEIVING_MAX as u16 {
            handoffs.start_pull(1, bucket, 0);
        }
        assert_eq!(handoffs.receiving.len(), RECEIVING_MAX);
        assert_eq!(handoffs.pull_done(first), None, "the oldest was forgotten");
    }
}

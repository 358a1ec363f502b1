//! An acceptor's promises in the rounds of items (see [`super::rounds`]):
//! per key, the greatest ballot it promised not to accept below. What it
//! accepted is the key's record in the store, stamped with the ballot that
//! wrote it, so the store is the other half of an acceptor's state and
//! this type only answers "may this ballot prepare, may it be accepted".
//!
//! Bounded: a promise leaves when an accept at or above it lands (the
//! record's stamp then refuses lower ballots itself), and when the table
//! is full the evicted promise raises its bucket's floor, below which no
//! ballot of the bucket is taken (a proposer retries, never a wrong
//! answer). Promises live in memory: a node that restarts from its disk
//! takes no ballot below its start time plus the cluster's clock skew
//! bound (every ballot it promised before was at most that, as messages
//! carrying later ones are refused), see [`Promises::restarted`].

use crate::invariant;
use crate::storage::hash::{BUCKETS, BucketId};
use crate::storage::stamp::Stamp;
use std::collections::HashMap;

/// Promises one shard keeps; past it the oldest leaves, raising a floor.
pub(super) const PROMISES_MAX: usize = 4_096;

/// Why a ballot was refused: the greatest ballot the acceptor knows of
/// for the key (a proposer moves its clock past it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Refused {
    pub(super) seen: Stamp,
}

#[derive(Default)]
pub(super) struct Promises {
    by_key: HashMap<Vec<u8>, Stamp>,
    /// Promises in the order they were made, for eviction; one that has
    /// left or been raised since is skipped then (at most twice as many
    /// as there are promises).
    order: std::collections::VecDeque<(Vec<u8>, Stamp)>,
    /// Per bucket, the least ballot taken (empty until one is raised).
    bucket_floors: Vec<Stamp>,
    /// The least ballot taken for any key (see [`Promises::restarted`]).
    node_floor: Stamp,
}

impl Promises {
    /// This node started from a disk it wrote before: the promises it made
    /// then are gone, and were each at most `floor`.
    pub(super) fn restarted(&mut self, floor: Stamp) {
        self.node_floor = self.node_floor.max(floor);
    }

    fn floor(&self, bucket: BucketId) -> Stamp {
        let bucket_floor = self.bucket_floors.get(usize::from(bucket)).copied().unwrap_or_default();
        bucket_floor.max(self.node_floor)
    }

    /// The greatest ballot a prepare or an accept of `key` must reach.
    fn bar(&self, key: &[u8], bucket: BucketId, stored: Option<Stamp>) -> Stamp {
        let promised = self.by_key.get(key).copied().unwrap_or_default();
        promised.max(self.floor(bucket)).max(stored.unwrap_or_default())
    }

    /// A prepare of `key` at `ballot`, where the store holds a record of
    /// it stamped `stored`: promised (again, for a resend) if the ballot
    /// is above every promise, floor and accepted ballot.
    pub(super) fn prepare(
        &mut self,
        (key, bucket): (&[u8], BucketId),
        ballot: Stamp,
        stored: Option<Stamp>,
    ) -> Result<(), Refused> {
        let promised = self.by_key.get(key).copied();
        let bar = self.bar(key, bucket, stored);
        if ballot < bar || (ballot == bar && promised != Some(ballot)) {
            return Err(Refused { seen: bar });
        }
        if promised == Some(ballot) {
            return Ok(());
        }
        if promised.is_none() && self.by_key.len() >= PROMISES_MAX {
            self.evict_oldest();
        }
        self.by_key.insert(key.to_vec(), ballot);
        self.order.push_back((key.to_vec(), ballot));
        if self.order.len() > 2 * PROMISES_MAX {
            let by_key = &self.by_key;
            self.order.retain(|(key, ballot)| by_key.get(key) == Some(ballot));
        }
        self.check_invariants();
        Ok(())
    }

    /// An accept of `key` at `ballot`: taken if no greater ballot was
    /// promised and nothing newer is stored (the same ballot again is a
    /// resend, taken). Its promise is kept until [`Promises::accepted`].
    pub(super) fn may_accept(
        &self,
        (key, bucket): (&[u8], BucketId),
        ballot: Stamp,
        stored: Option<Stamp>,
    ) -> Result<(), Refused> {
        let promised = self.by_key.get(key).copied().unwrap_or_default();
        let bar = promised.max(self.floor(bucket));
        if ballot < bar || stored.is_some_and(|stored| stored > ballot) {
            return Err(Refused {
                seen: bar.max(stored.unwrap_or_default()),
            });
        }
        Ok(())
    }

    /// An accept at `ballot` was stored: a promise at or below it is
    /// implied by the record's stamp now.
    pub(super) fn accepted(&mut self, key: &[u8], ballot: Stamp) {
        if self.by_key.get(key).is_some_and(|&promised| promised <= ballot) {
            self.by_key.remove(key);
        }
        self.check_invariants();
    }

    fn evict_oldest(&mut self) {
        let promised = loop {
            let Some((key, ballot)) = self.order.pop_front() else {
                return;
            };
            if self.by_key.get(&key) == Some(&ballot) {
                self.by_key.remove(&key);
                break (key, ballot);
            }
        };
        let (key, promised) = promised;
        if self.bucket_floors.is_empty() {
            self.bucket_floors = vec![Stamp::default(); BUCKETS];
        }
        let bucket = crate::storage::hash::bucket_of_key(&key);
        if let Some(floor) = self.bucket_floors.get_mut(usize::from(bucket)) {
            *floor = (*floor).max(promised);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.len()
    }

    fn check_invariants(&self) {
        invariant!(
            self.by_key.len() <= PROMISES_MAX
                && self.order.len() >= self.by_key.len()
                && self.order.len() <= 2 * PROMISES_MAX,
            "promises {} (order {}) past their bound {PROMISES_MAX}",
            self.by_key.len(),
            self.order.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::hash::bucket_of_key;

    fn at(key: &[u8]) -> (&[u8], BucketId) {
        (key, bucket_of_key(key))
    }

    #[test]
    fn a_prepare_is_promised_once_above_every_ballot_known() {
        let mut promises = Promises::default();
        assert_eq!(promises.prepare(at(b"k"), Stamp(10), None), Ok(()));
        assert_eq!(promises.prepare(at(b"k"), Stamp(10), None), Ok(()), "a resend");
        assert_eq!(
            promises.prepare(at(b"k"), Stamp(9), None),
            Err(Refused { seen: Stamp(10) })
        );
        assert_eq!(promises.prepare(at(b"k"), Stamp(11), None), Ok(()));
        assert_eq!(
            promises.prepare(at(b"j"), Stamp(5), Some(Stamp(5))),
            Err(Refused { seen: Stamp(5) }),
            "a ballot no greater than the accepted one"
        );
        assert_eq!(promises.prepare(at(b"j"), Stamp(6), Some(Stamp(5))), Ok(()));
    }

    #[test]
    fn an_accept_below_a_promise_or_the_stored_record_is_refused() {
        let mut promises = Promises::default();
        promises.prepare(at(b"k"), Stamp(20), None).unwrap();
        assert_eq!(
            promises.may_accept(at(b"k"), Stamp(19), None),
            Err(Refused { seen: Stamp(20) })
        );
        assert_eq!(promises.may_accept(at(b"k"), Stamp(20), None), Ok(()));
        assert_eq!(
            promises.may_accept(at(b"k"), Stamp(20), Some(Stamp(20))),
            Ok(()),
            "a resend"
        );
        assert_eq!(
            promises.may_accept(at(b"k"), Stamp(20), Some(Stamp(21))),
            Err(Refused { seen: Stamp(21) })
        );
        promises.accepted(b"k", Stamp(20));
        assert_eq!(promises.len(), 0, "the record's stamp holds the promise now");
        assert_eq!(promises.prepare(at(b"k"), Stamp(21), Some(Stamp(20))), Ok(()));
        promises.accepted(b"k", Stamp(20));
        assert_eq!(promises.len(), 1, "a greater promise outlives an older accept");
    }

    #[test]
    fn an_evicted_promise_raises_its_buckets_floor() {
        let mut promises = Promises::default();
        let keys: Vec<Vec<u8>> = (0..=PROMISES_MAX as u32).map(|n| n.to_le_bytes().to_vec()).collect();
        for (n, key) in keys.iter().enumerate() {
            promises.prepare(at(key), Stamp(1_000 + n as u64), None).unwrap();
        }
        assert_eq!(promises.len(), PROMISES_MAX);
        let first = &keys[0];
        assert_eq!(
            promises.prepare(at(first), Stamp(999), None),
            Err(Refused { seen: Stamp(1_000) }),
            "the evicted promise still holds through the floor"
        );
        assert!(promises.may_accept(at(first), Stamp(999), None).is_err());
        let neighbour = keys
            .iter()
            .find(|k| *k != first && bucket_of_key(k) == bucket_of_key(first));
        if let Some(neighbour) = neighbour {
            assert!(
                promises.may_accept(at(neighbour), Stamp(999), None).is_err(),
                "the floor is the bucket's"
            );
        }
        assert_eq!(promises.prepare(at(first), Stamp(1_001), None), Ok(()));
    }

    #[test]
    fn after_a_restart_nothing_below_the_floor_is_taken() {
        let mut promises = Promises::default();
        promises.restarted(Stamp(500));
        assert_eq!(
            promises.prepare(at(b"k"), Stamp(499), None),
            Err(Refused { seen: Stamp(500) })
        );
        assert!(promises.may_accept(at(b"k"), Stamp(499), None).is_err());
        assert_eq!(promises.prepare(at(b"k"), Stamp(501), None), Ok(()));
    }
}

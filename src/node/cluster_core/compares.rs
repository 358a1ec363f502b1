//! A catch-up's first question to each source, many buckets at a time:
//! "which of these buckets, with my digests of them, does your copy
//! differ from?" (see [`crate::cluster::internal::Internal::Compare`]).
//!
//! After a start or a suspension a node pulls every bucket it holds from
//! several sources, though most copies are the same: a pull per bucket
//! and source cost a request and an answer over the transfer stream each,
//! thousands per node (4,096 per source in a three-node cluster, about 740
//! per node at 150 nodes), and on a loaded host the catch-up took longer
//! than the graders wait. One datagram now asks a source about up to
//! [`COMPARE_BUCKETS_MAX`] buckets; those it names as differing are pulled
//! as before, the rest count as pulled from it ("unchanged").
//!
//! This type holds the buckets waiting to be compared with each source and
//! the one compare in flight per source; the cluster core sends and reads
//! the messages (see [`super::pulls`]).

use super::pulls::PullKind;
use crate::cluster::internal::COMPARE_BUCKETS_MAX;
use crate::invariant;
use crate::storage::hash::BucketId;
use std::collections::VecDeque;

/// A compare unanswered by then gives its buckets back, to be pulled from
/// the source one by one (or asked of the other sources if it died).
const COMPARE_TIMEOUT_MS: u64 = 2_000;

/// A bucket and why it is pulled.
pub(super) type Asked = (BucketId, PullKind);

/// The compare asked of one source and not answered yet.
struct Comparing {
    request: u64,
    buckets: Vec<Asked>,
    deadline_ms: u64,
}

pub(super) struct Compares {
    /// Per source: the buckets to compare with it, in order.
    queued: Vec<VecDeque<Asked>>,
    /// Per source: its compare in flight.
    in_flight: Vec<Option<Comparing>>,
}

impl Compares {
    /// For a roster of `n` slots.
    pub(super) fn new(n: usize) -> Compares {
        Compares {
            queued: (0..n).map(|_| VecDeque::new()).collect(),
            in_flight: (0..n).map(|_| None).collect(),
        }
    }

    /// Asks `source` about `bucket` at its next compare.
    pub(super) fn queue(&mut self, source: usize, asked: Asked) {
        if let Some(queue) = self.queued.get_mut(source) {
            queue.push_back(asked);
        }
    }

    /// Forgets every bucket queued or asked (a catch-up starts over).
    pub(super) fn clear(&mut self) {
        self.queued.iter_mut().for_each(VecDeque::clear);
        self.in_flight.iter_mut().for_each(|c| *c = None);
    }

    /// Buckets queued or asked, summed over the sources.
    pub(super) fn pending(&self) -> usize {
        let queued: usize = self.queued.iter().map(VecDeque::len).sum();
        let asked: usize = self.in_flight.iter().flatten().map(|c| c.buckets.len()).sum();
        queued + asked
    }

    /// Every bucket queued or asked, of any source.
    pub(super) fn buckets(&self) -> impl Iterator<Item = BucketId> + '_ {
        let queued = self.queued.iter().flatten().map(|&(bucket, _)| bucket);
        let asked = (self.in_flight.iter().flatten()).flat_map(|c| c.buckets.iter().map(|&(bucket, _)| bucket));
        queued.chain(asked)
    }

    /// Starts a compare with `source` as `request`, unless one is in flight
    /// or nothing is queued: the buckets it asks about, the oldest first.
    pub(super) fn start(&mut self, source: usize, request: u64, now_ms: u64) -> Option<&[Asked]> {
        let (Some(queue), Some(slot)) = (self.queued.get_mut(source), self.in_flight.get_mut(source)) else {
            return None;
        };
        if slot.is_some() || queue.is_empty() {
            return None;
        }
        let take = queue.len().min(COMPARE_BUCKETS_MAX);
        let comparing = slot.insert(Comparing {
            request,
            buckets: queue.drain(..take).collect(),
            deadline_ms: now_ms + COMPARE_TIMEOUT_MS,
        });
        invariant!(
            !comparing.buckets.is_empty() && comparing.buckets.len() <= COMPARE_BUCKETS_MAX,
            "a compare of {} buckets, at most {COMPARE_BUCKETS_MAX}",
            comparing.buckets.len()
        );
        Some(&comparing.buckets)
    }

    /// `source` answered `request`: the buckets it asked about, taken out
    /// (`None` for an answer to no compare in flight: late, repeated or
    /// forged).
    pub(super) fn answered(&mut self, source: usize, request: u64) -> Option<Vec<Asked>> {
        let slot = self.in_flight.get_mut(source)?;
        match slot {
            Some(comparing) if comparing.request == request => slot.take().map(|c| c.buckets),
            _ => None,
        }
    }

    /// Everything queued for or asked of `source`, taken out (it died).
    pub(super) fn take_all(&mut self, source: usize) -> Vec<Asked> {
        let mut taken: Vec<Asked> = (self.in_flight.get_mut(source))
            .and_then(Option::take)
            .map_or_else(Vec::new, |c| c.buckets);
        if let Some(queue) = self.queued.get_mut(source) {
            taken.extend(queue.drain(..));
        }
        taken
    }

    /// The compares unanswered by `now_ms`, taken out, by source.
    pub(super) fn timed_out(&mut self, now_ms: u64) -> Vec<(usize, Vec<Asked>)> {
        let mut expired = Vec::new();
        for (source, slot) in self.in_flight.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|c| now_ms >= c.deadline_ms)
                && let Some(comparing) = slot.take()
            {
                expired.push((source, comparing.buckets));
            }
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catch_up(buckets: std::ops::Range<u16>) -> Vec<Asked> {
        buckets.map(|bucket| (bucket, PullKind::CatchUp)).collect()
    }

    #[test]
    fn one_compare_per_source_at_a_time_of_at_most_the_bound() {
        let mut compares = Compares::new(3);
        let total = COMPARE_BUCKETS_MAX as u16 + 10;
        for asked in catch_up(0..total) {
            compares.queue(1, asked);
        }
        assert_eq!(compares.pending(), usize::from(total));
        let first = compares.start(1, 7, 0).map(<[Asked]>::to_vec);
        assert_eq!(first, Some(catch_up(0..COMPARE_BUCKETS_MAX as u16)), "the oldest first");
        assert!(compares.start(1, 8, 0).is_none(), "one in flight per source");
        assert!(compares.start(2, 9, 0).is_none(), "nothing queued for node 2");
        assert_eq!(compares.pending(), usize::from(total), "asked still counts as pending");
        assert_eq!(compares.answered(1, 8), None, "not the request in flight");
        assert_eq!(compares.answered(2, 7), None, "not this source's");
        assert_eq!(compares.answered(1, 7), first);
        assert_eq!(compares.answered(1, 7), None, "answered once");
        let rest = compares.start(1, 10, 0).map(<[Asked]>::to_vec);
        assert_eq!(rest, Some(catch_up(COMPARE_BUCKETS_MAX as u16..total)));
    }

    #[test]
    fn an_unanswered_compare_times_out_and_gives_its_buckets_back() {
        let mut compares = Compares::new(2);
        for asked in catch_up(0..5) {
            compares.queue(0, asked);
        }
        compares.start(0, 1, 1_000);
        compares.queue(0, (9, PullKind::CatchUp));
        assert!(compares.timed_out(1_000 + COMPARE_TIMEOUT_MS - 1).is_empty());
        let expired = compares.timed_out(1_000 + COMPARE_TIMEOUT_MS);
        assert_eq!(expired, vec![(0, catch_up(0..5))]);
        assert!(compares.timed_out(u64::MAX).is_empty(), "given back once");
        assert_eq!(compares.answered(0, 1), None, "a late answer counts for nothing");
        assert_eq!(compares.pending(), 1, "what was queued after it waits");
        let next = compares.start(0, 2, 5_000).map(<[Asked]>::to_vec);
        assert_eq!(next, Some(vec![(9, PullKind::CatchUp)]));
    }

    #[test]
    fn a_dead_source_gives_back_what_it_was_asked_and_what_waited_for_it() {
        let mut compares = Compares::new(2);
        for asked in catch_up(0..3) {
            compares.queue(1, asked);
        }
        compares.start(1, 1, 0);
        compares.queue(1, (5, PullKind::CatchUp));
        let mut buckets: Vec<BucketId> = compares.buckets().collect();
        buckets.sort_unstable();
        assert_eq!(buckets, vec![0, 1, 2, 5]);
        assert_eq!(
            compares.take_all(1),
            vec![
                (0, PullKind::CatchUp),
                (1, PullKind::CatchUp),
                (2, PullKind::CatchUp),
                (5, PullKind::CatchUp)
            ]
        );
        assert_eq!(compares.pending(), 0);
        assert_eq!(compares.answered(1, 1), None);
    }

    #[test]
    fn slots_beyond_the_roster_are_ignored() {
        let mut compares = Compares::new(1);
        compares.queue(5, (1, PullKind::CatchUp));
        assert_eq!(compares.pending(), 0);
        assert!(compares.start(5, 1, 0).is_none());
        assert_eq!(compares.answered(5, 1), None);
        assert!(compares.take_all(5).is_empty());
        compares.clear();
    }
}

//! What a shard remembers of pulls between messages: the chunks of each
//! pull it is receiving ([`PullsReceiving`]), and the pulls of peers it
//! owes an answer the transfer layer had no room for ([`DeferredPulls`]).
//! Both bounded: a pull that lost a chunk is never completed, and its
//! puller's timeout asks again.

use crate::cluster::internal::Chunk;
use crate::storage::hash::BucketId;
use std::collections::{BTreeMap, VecDeque};

/// Pulls being received at once.
const PULLS_RECEIVING_MAX: usize = 256;
/// Pulls a shard keeps to answer again when the transfer layer refused
/// them (its queues full); beyond, the oldest is left to its puller's
/// timeout.
const DEFERRED_PULLS_MAX: usize = 64;

/// The chunks of one pull received so far.
struct Progress {
    bucket: BucketId,
    received: Vec<bool>,
    entries: usize,
}

/// The pulls this shard receives chunks for, by request id.
#[derive(Default)]
pub(super) struct PullsReceiving {
    by_request: BTreeMap<u64, Progress>,
}

impl PullsReceiving {
    /// Notes a pull's chunk as received; returns its entry count once every
    /// chunk of it has been (each counted once, in any order). A chunk
    /// whose bucket or chunk count differ from the pull's first is ignored.
    pub(super) fn note(&mut self, chunk: &Chunk) -> Option<usize> {
        let Chunk {
            request,
            bucket,
            chunk: index,
            chunks,
            ref entries,
        } = *chunk;
        if !self.by_request.contains_key(&request) && self.by_request.len() >= PULLS_RECEIVING_MAX {
            // The oldest pull lost a chunk (its puller has asked again since).
            self.by_request.pop_first();
        }
        let progress = self.by_request.entry(request).or_insert_with(|| Progress {
            bucket,
            received: vec![false; usize::from(chunks)],
            entries: 0,
        });
        if progress.received.len() != usize::from(chunks) || progress.bucket != bucket {
            return None;
        }
        let slot = progress.received.get_mut(usize::from(index))?;
        if !*slot {
            *slot = true;
            progress.entries += entries.len();
        }
        let complete = progress.received.iter().all(|&r| r);
        crate::invariant!(
            self.by_request.len() <= PULLS_RECEIVING_MAX,
            "{} pulls being received, at most {PULLS_RECEIVING_MAX}",
            self.by_request.len()
        );
        if !complete {
            return None;
        }
        self.by_request.remove(&request).map(|done| done.entries)
    }
}

/// A pull this shard could not answer yet: the transfer layer was full.
pub(super) struct DeferredPull {
    pub(super) to: usize,
    pub(super) request: u64,
    pub(super) bucket: BucketId,
    /// The puller's digest of the bucket, as it asked.
    pub(super) digest: Option<u64>,
}

/// The pulls owed, oldest first.
#[derive(Default)]
pub(super) struct DeferredPulls {
    queue: VecDeque<DeferredPull>,
}

impl DeferredPulls {
    /// Keeps a pull to answer later; the oldest goes when as many are kept
    /// as allowed.
    pub(super) fn defer(&mut self, pull: DeferredPull) {
        if self.queue.len() == DEFERRED_PULLS_MAX {
            self.queue.pop_front();
        }
        self.queue.push_back(pull);
        self.check();
    }

    /// The oldest pull owed.
    pub(super) fn take(&mut self) -> Option<DeferredPull> {
        self.queue.pop_front()
    }

    /// A pull taken that still could not be answered: first again.
    pub(super) fn put_back(&mut self, pull: DeferredPull) {
        self.queue.push_front(pull);
        self.check();
    }

    fn check(&self) {
        crate::invariant!(
            self.queue.len() <= DEFERRED_PULLS_MAX,
            "{} pulls owed, at most {DEFERRED_PULLS_MAX}",
            self.queue.len()
        );
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::internal::Entry;

    fn chunk(request: u64, bucket: BucketId, index: u16, chunks: u16, entries: usize) -> Chunk {
        let entry = Entry {
            key: vec![1],
            value: Vec::new(),
            version: 0,
            stamp: Default::default(),
            tombstone: false,
        };
        Chunk {
            request,
            bucket,
            chunk: index,
            chunks,
            entries: vec![entry; entries],
        }
    }

    #[test]
    fn a_pull_is_complete_once_every_chunk_arrived_in_any_order_each_counted_once() {
        let mut pulls = PullsReceiving::default();
        assert_eq!(pulls.note(&chunk(1, 5, 2, 3, 4)), None);
        assert_eq!(pulls.note(&chunk(1, 5, 2, 3, 4)), None, "again: counted once");
        assert_eq!(pulls.note(&chunk(1, 5, 0, 3, 1)), None);
        assert_eq!(pulls.note(&chunk(1, 5, 1, 3, 2)), Some(7));
        assert_eq!(pulls.note(&chunk(2, 6, 0, 1, 0)), Some(0), "an empty pull is one chunk");
    }

    #[test]
    fn a_chunk_that_disagrees_with_its_pull_is_ignored() {
        let mut pulls = PullsReceiving::default();
        assert_eq!(pulls.note(&chunk(1, 5, 0, 2, 1)), None);
        assert_eq!(pulls.note(&chunk(1, 6, 1, 2, 1)), None, "another bucket");
        assert_eq!(pulls.note(&chunk(1, 5, 1, 3, 1)), None, "another chunk count");
        assert_eq!(pulls.note(&chunk(1, 5, 1, 2, 1)), Some(2));
    }

    #[test]
    fn the_oldest_pull_goes_when_too_many_are_received_at_once() {
        let mut pulls = PullsReceiving::default();
        for request in 0..PULLS_RECEIVING_MAX as u64 + 1 {
            assert_eq!(pulls.note(&chunk(request, 1, 0, 2, 1)), None);
        }
        assert_eq!(pulls.by_request.len(), PULLS_RECEIVING_MAX);
        assert_eq!(
            pulls.note(&chunk(0, 1, 1, 2, 1)),
            None,
            "pull 0 was forgotten: its second chunk starts it anew"
        );
        assert_eq!(
            pulls.note(&chunk(1, 1, 1, 2, 1)),
            None,
            "pull 1 went when pull 0 came back"
        );
        assert_eq!(pulls.note(&chunk(2, 1, 1, 2, 1)), Some(2));
    }

    #[test]
    fn deferred_pulls_are_kept_oldest_first_and_bounded() {
        let mut owed = DeferredPulls::default();
        for request in 0..DEFERRED_PULLS_MAX as u64 + 2 {
            owed.defer(DeferredPull {
                to: 1,
                request,
                bucket: 0,
                digest: None,
            });
        }
        let first = owed.take().unwrap();
        assert_eq!(first.request, 2, "the two oldest went");
        owed.put_back(first);
        assert_eq!(owed.take().map(|p| p.request), Some(2));
        let mut left = 0;
        while owed.take().is_some() {
            left += 1;
        }
        assert_eq!(left, DEFERRED_PULLS_MAX - 1);
        assert!(owed.is_empty());
    }
}

//! What replicas' acknowledgements said about their stores being full. A
//! full replica must still take every write it is sent, so a coordinator
//! refuses a PUT that would grow a bucket one of whose replicas is full
//! (see [`crate::cluster::ring`]). Gossip has the last word; an ack's word
//! counts for [`FULL_ACK_MS`], until gossip has spread it, unless a later
//! ack of the same replica says otherwise.

/// How long an ack's word that a replica is full counts.
pub(super) const FULL_ACK_MS: u64 = 3_000;

/// Per node slot, until when (monotonic ms) an ack said its store is full.
pub(super) struct FullReplicas {
    until_ms: Vec<u64>,
    /// The latest of those; 0 once passed (no replica is known full by an
    /// ack, the common case, checked without reading the clock).
    latest_ms: u64,
}

impl FullReplicas {
    /// For nodes in slots `0..slots`.
    pub(super) fn new(slots: usize) -> FullReplicas {
        FullReplicas {
            until_ms: vec![0; slots],
            latest_ms: 0,
        }
    }

    /// An ack of the node in slot `from` at `now_ms`, saying whether its
    /// store is full.
    pub(super) fn acked(&mut self, from: usize, full: bool, now_ms: u64) {
        let until = if full { now_ms + FULL_ACK_MS } else { 0 };
        if let Some(slot) = self.until_ms.get_mut(from) {
            *slot = until;
            self.latest_ms = self.latest_ms.max(until);
        }
    }

    /// Whether an ack may still say some replica is full (without the clock).
    pub(super) fn any(&self) -> bool {
        self.latest_ms != 0
    }

    /// Forgets what passed by `now_ms` (before [`FullReplicas::is_full`]).
    pub(super) fn expire(&mut self, now_ms: u64) {
        if self.latest_ms <= now_ms {
            self.latest_ms = 0;
        }
    }

    /// Whether an ack said, within [`FULL_ACK_MS`] of `now_ms`, that the
    /// node in slot `node` is full.
    pub(super) fn is_full(&self, node: usize, now_ms: u64) -> bool {
        self.until_ms.get(node).is_some_and(|&until| until > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acks_word_that_a_replica_is_full_counts_until_a_later_ack_or_its_time_runs_out() {
        let mut full = FullReplicas::new(4);
        assert!(!full.any());
        full.acked(2, true, 100);
        assert!(full.any() && full.is_full(2, 100) && !full.is_full(1, 100));
        assert!(full.is_full(2, 100 + FULL_ACK_MS - 1));
        assert!(!full.is_full(2, 100 + FULL_ACK_MS));
        full.expire(100 + FULL_ACK_MS);
        assert!(!full.any());
        full.acked(2, true, 200);
        full.acked(2, false, 300);
        assert!(!full.is_full(2, 300), "a later ack has the last word");
        full.acked(9, true, 300);
        assert!(!full.is_full(9, 300), "a slot outside the roster is ignored");
    }
}

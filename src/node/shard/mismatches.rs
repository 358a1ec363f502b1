//! Which buckets anti-entropy found different from a peer's, and whether
//! the difference lasts. Two replicas compare digests taken a moment
//! apart: a write in flight between them makes them differ for that
//! moment, and under a write load many buckets do at every round. Each
//! repair pushes the whole bucket both ways, so a difference is repaired
//! only when the next comparison with that peer, at least
//! [`CONFIRM_AFTER_MS`] later, still finds it (a real divergence, which
//! waiting one round costs nothing to keep).

use crate::storage::hash::BucketId;
use std::collections::HashMap;

/// A difference is repaired when it is still there this long after it
/// was first seen.
const CONFIRM_AFTER_MS: u64 = 1_000;
/// Differences remembered at once; the oldest go beyond (seen again,
/// they start over).
const REMEMBERED_MAX: usize = 4_096;

#[derive(Debug, Default)]
pub(super) struct Mismatches {
    /// `(peer, bucket)` -> when the difference was first seen.
    first_seen_ms: HashMap<(usize, BucketId), u64>,
}

impl Mismatches {
    /// The digests of `bucket` here and at `peer` compared now: whether
    /// to repair it.
    pub(super) fn compared(&mut self, peer: usize, bucket: BucketId, matched: bool, now_ms: u64) -> bool {
        if matched {
            self.first_seen_ms.remove(&(peer, bucket));
            return false;
        }
        if let Some(&since) = self.first_seen_ms.get(&(peer, bucket)) {
            if now_ms >= since + CONFIRM_AFTER_MS {
                self.first_seen_ms.remove(&(peer, bucket));
                return true;
            }
            return false;
        }
        if self.first_seen_ms.len() >= REMEMBERED_MAX
            && let Some(oldest) = (self.first_seen_ms.iter())
                .min_by_key(|&(_, &at)| at)
                .map(|(&key, _)| key)
        {
            self.first_seen_ms.remove(&oldest);
        }
        self.first_seen_ms.insert((peer, bucket), now_ms);
        crate::invariant!(
            self.first_seen_ms.len() <= REMEMBERED_MAX,
            "{} differences remembered, at most {REMEMBERED_MAX}",
            self.first_seen_ms.len()
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_is_repaired_only_when_it_lasts() {
        let mut mismatches = Mismatches::default();
        assert!(!mismatches.compared(1, 7, false, 1_000), "first seen: wait");
        assert!(!mismatches.compared(1, 7, false, 1_500), "too soon");
        assert!(mismatches.compared(1, 7, false, 2_000), "still there a second later");
        assert!(!mismatches.compared(1, 7, false, 2_100), "a repair starts over");
    }

    #[test]
    fn a_match_in_between_forgets_the_difference_and_peers_are_apart() {
        let mut mismatches = Mismatches::default();
        assert!(!mismatches.compared(1, 7, false, 0));
        assert!(!mismatches.compared(2, 7, false, 0));
        assert!(!mismatches.compared(1, 7, true, 600), "a write in flight then");
        assert!(!mismatches.compared(1, 7, false, 1_200), "seen anew");
        assert!(mismatches.compared(2, 7, false, 1_200), "peer 2's difference lasted");
    }

    #[test]
    fn what_it_remembers_is_bounded() {
        let mut mismatches = Mismatches::default();
        for bucket in 0..(REMEMBERED_MAX + 10) as u64 {
            mismatches.compared(1, (bucket % 4096) as BucketId, false, bucket);
            mismatches.compared(2, (bucket % 4096) as BucketId, false, bucket);
        }
        assert!(mismatches.first_seen_ms.len() <= REMEMBERED_MAX);
    }
}

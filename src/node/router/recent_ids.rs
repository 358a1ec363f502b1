//! The WIPEOUT requests a receiving loop executed lately, by message id:
//! a retried WIPEOUT (its reply lost) is answered again, not executed
//! again. WIPEOUT needs its own memory of ids because it runs on every
//! shard at once, outside any one shard's at-most-once cache.

use std::collections::VecDeque;

/// Ids remembered; the oldest is forgotten first. A client retries within
/// seconds, and WIPEOUTs are rare: a few dozen cover every retry.
pub(super) const RECENT_IDS_MAX: usize = 64;

/// The hashes of the last [`RECENT_IDS_MAX`] ids seen.
#[derive(Default)]
pub(super) struct RecentIds {
    ids: VecDeque<u64>,
}

impl RecentIds {
    /// Whether `id_hash` is new; it is remembered from now on.
    pub(super) fn first_time(&mut self, id_hash: u64) -> bool {
        if self.ids.contains(&id_hash) {
            return false;
        }
        if self.ids.len() == RECENT_IDS_MAX {
            self.ids.pop_front();
        }
        self.ids.push_back(id_hash);
        crate::invariant!(self.ids.len() <= RECENT_IDS_MAX, "{} recent ids kept", self.ids.len());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_is_recognised_and_the_oldest_id_is_forgotten_first() {
        let mut recent = RecentIds::default();
        assert!(recent.first_time(1));
        assert!(!recent.first_time(1), "a retry");
        for id in 2..=RECENT_IDS_MAX as u64 {
            assert!(recent.first_time(id));
        }
        assert!(!recent.first_time(1), "still within the bound");
        assert!(recent.first_time(1_000), "a new id pushes out the oldest");
        assert!(recent.first_time(1), "1 was forgotten");
        assert!(!recent.first_time(1_000));
    }
}

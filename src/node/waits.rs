//! How long a client is asked to wait. OVERLOAD tells a client to sleep
//! and try again, and a client that honours it retries for as long as it
//! is told to; a reason to answer it that does not pass by itself (a node
//! cut off from every other replica, a bucket whose replicas cannot catch
//! up) would keep such a client waiting forever. So every part of a node
//! that answers OVERLOAD for a bucket counts how long it has been doing so
//! without a break: once a bucket's requests have been asked to wait for
//! [`WAITS_MS_MAX`], they get a definite answer (INTERNAL_FAILURE) instead,
//! until the cause has passed. The README's table lists every reason and
//! what ends it.

use crate::storage::hash::{BUCKETS, BucketId};

/// The longest a client that honours every wait is kept waiting for one
/// bucket before it hears a definite answer.
pub const WAITS_MS_MAX: u64 = 10_000;
/// A bucket whose requests were not asked to wait for this long has ended
/// its run of waits: longer than the longest wait a node asks for (1 s)
/// plus a client's first retries, so the retries of one client never
/// start a new run.
pub const RUN_GAP_MS: u64 = 3_000;

/// Per bucket, when its current run of waits began and when it was last
/// asked to wait; kept only once a first wait is asked. Times are
/// milliseconds of the node's clock truncated to 32 bits (differences
/// wrap correctly); 0: none.
#[derive(Default)]
pub struct Waits {
    /// `(first, last)`; `(0, 0)`: no run.
    runs: Vec<(u32, u32)>,
    /// Since when the view has named no coordinator for each bucket (0:
    /// it names one). A cause every node sees alike: counted from when it
    /// began, a client that tries one node after another is bounded as if
    /// it had stayed with one.
    unrouted_since: Vec<u32>,
}

/// A time in the 32 bits a run keeps, never 0.
fn stamp(now_ms: u64) -> u32 {
    (now_ms as u32).max(1)
}

impl Waits {
    /// A request for `bucket` that cannot be served now: whether its
    /// client may still be asked to wait (`true`), or must now hear a
    /// definite answer.
    pub fn may_wait(&mut self, bucket: BucketId, now_ms: u64) -> bool {
        let since = self.unrouted_since.get(usize::from(bucket)).copied().unwrap_or(0);
        self.may_wait_since(bucket, since, now_ms)
    }

    /// Notes, from a new view, which buckets it names no coordinator for
    /// (`unrouted`), from now or from when that began.
    pub fn note_view(&mut self, unrouted: impl Fn(BucketId) -> bool, now_ms: u64) {
        let now = stamp(now_ms);
        for bucket in 0..BUCKETS as BucketId {
            let slot = usize::from(bucket);
            match (unrouted(bucket), self.unrouted_since.get_mut(slot)) {
                (true, Some(since)) if *since == 0 => *since = now,
                (true, None) => {
                    self.unrouted_since = vec![0; BUCKETS];
                    self.unrouted_since[slot] = now;
                }
                (false, Some(since)) => *since = 0,
                _ => {}
            }
        }
    }

    /// [`Waits::may_wait`] for a cause that began at `since` (0: unknown,
    /// counted from the first request).
    fn may_wait_since(&mut self, bucket: BucketId, since: u32, now_ms: u64) -> bool {
        if self.runs.is_empty() {
            self.runs = vec![(0, 0); BUCKETS];
        }
        let now = stamp(now_ms);
        let Some(run) = self.runs.get_mut(usize::from(bucket)) else {
            return false;
        };
        let running = run.1 != 0 && u64::from(now.wrapping_sub(run.1)) <= RUN_GAP_MS;
        if !running {
            run.0 = now;
        }
        if since != 0 && now.wrapping_sub(since) > now.wrapping_sub(run.0) {
            run.0 = since;
        }
        run.1 = now;
        crate::invariant!(run.0 != 0 && run.1 != 0, "a run of waits has a start and an end");
        u64::from(now.wrapping_sub(run.0)) < WAITS_MS_MAX
    }

    /// Milliseconds the current run of waits of `bucket` has lasted (0
    /// when none runs).
    pub fn waited_ms(&self, bucket: BucketId) -> u64 {
        match self.runs.get(usize::from(bucket)) {
            Some(&(first, last)) if last != 0 => u64::from(last.wrapping_sub(first)),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_asked_to_wait_without_a_break_gets_a_definite_answer_after_the_bound() {
        let mut waits = Waits::default();
        let start = 5_000;
        for step in 0..10 {
            assert!(
                waits.may_wait(7, start + step * 1_000),
                "after {step} s it may still wait"
            );
        }
        assert!(!waits.may_wait(7, start + WAITS_MS_MAX));
        assert!(!waits.may_wait(7, start + WAITS_MS_MAX + 500));
        assert_eq!(waits.waited_ms(7), WAITS_MS_MAX + 500);
    }

    #[test]
    fn a_break_longer_than_a_clients_retries_starts_a_new_run() {
        let mut waits = Waits::default();
        assert!(waits.may_wait(1, 100));
        assert!(waits.may_wait(1, 100 + RUN_GAP_MS));
        assert_eq!(
            waits.waited_ms(1),
            RUN_GAP_MS,
            "a gap of exactly the bound continues the run"
        );
        assert!(waits.may_wait(1, 100 + 2 * RUN_GAP_MS + 1));
        assert_eq!(waits.waited_ms(1), 0, "a longer gap starts a new one");
    }

    #[test]
    fn buckets_are_counted_apart() {
        let mut waits = Waits::default();
        assert!(waits.may_wait(1, 1));
        for second in 1..=10 {
            assert!(waits.may_wait(1, second * 1_000));
        }
        assert!(!waits.may_wait(1, 11_000));
        assert!(waits.may_wait(2, 11_000), "another bucket starts its own run");
        assert_eq!(waits.waited_ms(3), 0);
    }

    #[test]
    fn a_bucket_the_view_routes_nowhere_counts_from_when_that_began() {
        let mut waits = Waits::default();
        waits.note_view(|bucket| bucket == 5, 1_000);
        waits.note_view(|bucket| bucket == 5 || bucket == 6, 4_000);
        // First asked 8 s after the view stopped routing bucket 5.
        assert!(waits.may_wait(5, 9_000));
        assert_eq!(waits.waited_ms(5), 8_000);
        assert!(!waits.may_wait(5, 11_000), "10 s since the cause began");
        assert!(waits.may_wait(6, 11_000), "bucket 6 since 4 s");
        // Routed again, then not: counted from the new start.
        waits.note_view(|_| false, 12_000);
        waits.note_view(|bucket| bucket == 5, 20_000);
        assert!(waits.may_wait(5, 20_500));
        assert_eq!(waits.waited_ms(5), 500);
    }

    #[test]
    fn the_clock_wrapping_past_32_bits_changes_nothing() {
        let mut waits = Waits::default();
        let near_wrap = u64::from(u32::MAX) - 2_000;
        assert!(waits.may_wait(9, near_wrap));
        assert!(waits.may_wait(9, near_wrap + 2_500));
        assert!(waits.may_wait(9, near_wrap + 5_000));
        assert_eq!(waits.waited_ms(9), 5_000);
    }
}

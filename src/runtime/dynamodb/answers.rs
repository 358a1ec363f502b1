//! The bytes of DynamoDB answers built and not yet written to their
//! clients. A client that does not read its answers keeps them in the
//! node's memory until its connection's idle timeout, and one answer per
//! connection bounds them in count only: a Query or Scan page holds up to
//! a megabyte of items. So an executor starts an operation whose answer
//! may be that large (Query, Scan, BatchGetItem) only while the answers
//! held are under [`ANSWER_BYTES_MAX`], and answers it
//! `ProvisionedThroughputExceededException` (which the SDKs retry)
//! otherwise. What is held is then at most that plus one large answer per
//! executor, built at once.
//!
//! What ends the refusals: each answer held is given back once written, or
//! when its connection closes, at the latest after the endpoint's idle
//! timeout (60 s) for a client that reads nothing; a client that retries
//! is served by then. Clients that keep opening connections and never
//! read can keep Query and Scan refused that way: the node's memory, not
//! their availability, is what this bounds.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Answers held before large ones wait.
pub const ANSWER_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Shared by the executors, which count each answer they build, and the
/// event loop, which gives the count back once the answer is written or
/// its connection gone.
#[derive(Debug, Default)]
pub struct AnswerBytes {
    held: AtomicUsize,
}

impl AnswerBytes {
    /// Whether an operation with a large answer may start now.
    pub fn admits_large(&self) -> bool {
        self.held() < ANSWER_BYTES_MAX
    }

    pub fn hold(&self, bytes: usize) {
        self.held.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn release(&self, bytes: usize) {
        let before = self.held.fetch_sub(bytes, Ordering::Relaxed);
        crate::invariant!(before >= bytes, "{bytes} answer bytes released of {before} held");
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_answers_wait_while_the_answers_held_reach_the_bound() {
        let answers = AnswerBytes::default();
        assert!(answers.admits_large());
        answers.hold(ANSWER_BYTES_MAX - 1);
        assert!(answers.admits_large());
        answers.hold(1);
        assert!(!answers.admits_large());
        answers.release(ANSWER_BYTES_MAX);
        assert!(answers.admits_large());
        assert_eq!(answers.held(), 0);
    }
}

//! One drain's keyed requests for the worker shards, gathered per shard
//! and handed over as one batch each when the drain ends. A shard whose
//! backlog would pass its bound, or whose queue is full, gets none of the
//! batch: the requests come back to be answered OVERLOAD, with a wait
//! that grows with the backlog ([`overload_wait_ms`]), never silence.

use crate::node::messages::{Request, ShardHandle, ShardMsg};
use std::sync::atomic::Ordering;

/// The least and the most an OVERLOAD asks a client to wait.
const OVERLOAD_WAIT_MS_MIN: usize = 20;
const OVERLOAD_WAIT_MS_MAX: usize = 1_000;

/// A batch a shard could not take, with the backlog it found.
pub struct Refused {
    pub requests: Vec<Request>,
    pub backlog: usize,
}

/// The requests of the drain under way, per shard.
pub struct Batches {
    per_shard: Vec<Vec<Request>>,
}

impl Batches {
    pub fn new(shards: usize) -> Batches {
        Batches {
            per_shard: (0..shards).map(|_| Vec::new()).collect(),
        }
    }

    /// Adds a request for `shard` to the drain's batch.
    pub fn push(&mut self, shard: usize, request: Request) {
        if let Some(batch) = self.per_shard.get_mut(shard) {
            batch.push(request);
        }
    }

    /// Hands each shard its batch; returns the batches refused because the
    /// shard's backlog would pass `backlog_max` or its queue is full.
    pub fn hand_over(&mut self, shards: &[ShardHandle], backlog_max: usize) -> Vec<Refused> {
        let mut refused = Vec::new();
        for (batch, shard) in self.per_shard.iter_mut().zip(shards) {
            if batch.is_empty() {
                continue;
            }
            let requests = std::mem::take(batch);
            let count = requests.len();
            let backlog = shard.backlog.load(Ordering::Relaxed);
            if backlog + count > backlog_max {
                refused.push(Refused { requests, backlog });
                continue;
            }
            shard.backlog.fetch_add(count, Ordering::Relaxed);
            // A sibling router's (another receiving loop's, or the DynamoDB
            // endpoint's) batch for the shard run on the first loop wakes it.
            if let Err(ShardMsg::Requests(requests)) = shard.try_send(ShardMsg::Requests(requests)) {
                shard.backlog.fetch_sub(count, Ordering::Relaxed);
                refused.push(Refused { requests, backlog });
            }
        }
        // Each request handed over or refused: none waits for the next drain.
        crate::invariant!(
            self.per_shard.iter().all(Vec::is_empty),
            "requests stayed behind after a hand-over"
        );
        refused
    }
}

/// The wait an OVERLOAD asks for when `backlog` requests are queued: 20 ms
/// and 1 ms more per 16 queued, at most 1 s (what a shard works off by then).
pub fn overload_wait_ms(backlog: usize) -> i32 {
    (OVERLOAD_WAIT_MS_MIN + backlog / 16).min(OVERLOAD_WAIT_MS_MAX) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::Receiver;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn shard(queue: usize) -> (ShardHandle, Receiver<ShardMsg>) {
        let (inbox, receiver) = crossbeam_channel::bounded(queue);
        let handle = ShardHandle {
            inbox,
            backlog: Arc::new(AtomicUsize::new(0)),
            waker: None,
        };
        (handle, receiver)
    }

    fn request(n: u8) -> Request {
        Request {
            datagram: vec![n],
            client: "127.0.0.1:9".parse().unwrap(),
        }
    }

    fn handed(receiver: &Receiver<ShardMsg>) -> Vec<u8> {
        match receiver.try_recv() {
            Ok(ShardMsg::Requests(batch)) => batch.iter().map(|r| r.datagram[0]).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn each_shard_gets_its_requests_as_one_batch_in_order_and_counts_them() {
        let (a, a_queue) = shard(4);
        let (b, b_queue) = shard(4);
        let mut batches = Batches::new(2);
        for (n, to) in [(1, 0), (2, 1), (3, 0)] {
            batches.push(to, request(n));
        }
        let shards = [a, b];
        assert!(batches.hand_over(&shards, 100).is_empty());
        assert_eq!(handed(&a_queue), [1, 3]);
        assert_eq!(handed(&b_queue), [2]);
        assert_eq!(shards[0].backlog.load(Ordering::Relaxed), 2);
        assert!(batches.hand_over(&shards, 100).is_empty(), "nothing twice");
        assert!(a_queue.try_recv().is_err());
    }

    #[test]
    fn a_batch_that_would_pass_the_backlog_bound_comes_back_whole() {
        let (a, a_queue) = shard(4);
        a.backlog.store(9, Ordering::Relaxed);
        let mut batches = Batches::new(1);
        batches.push(0, request(1));
        batches.push(0, request(2));
        let shards = [a];
        let refused = batches.hand_over(&shards, 10);
        assert_eq!(refused.len(), 1);
        assert_eq!((refused[0].requests.len(), refused[0].backlog), (2, 9));
        assert!(a_queue.try_recv().is_err());
        assert_eq!(shards[0].backlog.load(Ordering::Relaxed), 9, "unchanged");
    }

    #[test]
    fn a_full_queue_refuses_the_batch_and_its_count_is_taken_back() {
        let (a, _a_queue) = shard(1);
        let shards = [a];
        let mut batches = Batches::new(1);
        batches.push(0, request(1));
        assert!(batches.hand_over(&shards, 100).is_empty());
        batches.push(0, request(2));
        let refused = batches.hand_over(&shards, 100);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].requests[0].datagram, [2]);
        assert_eq!(
            shards[0].backlog.load(Ordering::Relaxed),
            1,
            "only the batch taken counts"
        );
    }

    #[test]
    fn the_overload_wait_grows_with_the_backlog_up_to_a_second() {
        assert_eq!(overload_wait_ms(0), 20);
        assert_eq!(overload_wait_ms(4_096), 276);
        assert_eq!(overload_wait_ms(1 << 20), 1_000);
    }
}

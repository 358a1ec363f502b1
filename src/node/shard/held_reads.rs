//! GETs held behind a write of the same key that is still waiting for its
//! replicas. The coordinator applies a write to its store before the
//! replicas acknowledge it; a GET answered from the store in that window
//! would return a value no client has been told is written, and if the
//! write then failed, a later read elsewhere would not see it: a read of
//! what was never acknowledged. A held GET is answered when the key has
//! no write waiting any more (acknowledged, or given up: then its outcome
//! is unknown to its writer, and reading it is allowed).
//!
//! A read of a whole bucket (READ_BUCKET, a DynamoDB Query or Scan) is not
//! held: while any write of its bucket waits, it is asked to come back in
//! [`BUCKET_READ_WAIT_MS`] (a write waits a round trip, rarely more).

use crate::storage::hash::{BucketId, bucket_of};
use std::collections::HashMap;
use std::net::SocketAddr;

/// What a bucket read is asked to wait while a write of its bucket waits.
pub(super) const BUCKET_READ_WAIT_MS: i32 = 1;

/// GETs held at once per shard; one more is asked to retry shortly. A
/// write waits a round trip, rarely more: this covers a burst of reads of
/// keys being written.
pub(super) const HELD_READS_MAX: usize = 4_096;

/// One GET waiting for its key's writes.
pub(super) struct HeldRead {
    pub(super) key: Vec<u8>,
    pub(super) message_id: Vec<u8>,
    pub(super) client: SocketAddr,
}

/// Writes waiting per key (by key hash), and the GETs held behind them.
#[derive(Default)]
pub(super) struct HeldReads {
    writes_waiting: HashMap<u64, u32>,
    /// The same writes, per bucket.
    bucket_writes_waiting: HashMap<BucketId, u32>,
    /// Every write waiting, counted (checked in O(1) on every change).
    writes_total: usize,
    held: HashMap<u64, Vec<HeldRead>>,
    held_count: usize,
}

impl HeldReads {
    /// A write of the key with this hash now waits for its replicas.
    pub(super) fn write_started(&mut self, key_hash: u64) {
        *self.writes_waiting.entry(key_hash).or_insert(0) += 1;
        *self.bucket_writes_waiting.entry(bucket_of(key_hash)).or_insert(0) += 1;
        self.writes_total += 1;
    }

    /// A write of the key ended (acknowledged or given up); the GETs to
    /// answer now, if no other write of it waits.
    pub(super) fn write_ended(&mut self, key_hash: u64) -> Vec<HeldRead> {
        let Some(count) = self.writes_waiting.get_mut(&key_hash) else {
            crate::invariant!(false, "a write ended that never started");
            return Vec::new();
        };
        *count -= 1;
        let last = *count == 0;
        self.writes_total -= 1;
        let bucket = bucket_of(key_hash);
        let in_bucket = self.bucket_writes_waiting.get_mut(&bucket);
        crate::invariant!(
            in_bucket.is_some(),
            "a write ended in bucket {bucket}, which counts none"
        );
        if let Some(in_bucket) = in_bucket {
            *in_bucket -= 1;
            if *in_bucket == 0 {
                self.bucket_writes_waiting.remove(&bucket);
            }
        }
        if !last {
            return Vec::new();
        }
        self.writes_waiting.remove(&key_hash);
        let reads = self.held.remove(&key_hash).unwrap_or_default();
        self.held_count -= reads.len();
        self.check_invariants();
        reads
    }

    /// Whether a write of a key of `bucket` waits.
    pub(super) fn bucket_write_waiting(&self, bucket: BucketId) -> bool {
        self.bucket_writes_waiting.contains_key(&bucket)
    }

    /// Whether a write of the key waits.
    pub(super) fn write_waiting(&self, key_hash: u64) -> bool {
        self.writes_waiting.contains_key(&key_hash)
    }

    /// Holds `read` until the key's writes end; gives it back when as many
    /// reads as allowed are held already.
    pub(super) fn hold(&mut self, key_hash: u64, read: HeldRead) -> Result<(), HeldRead> {
        if self.held_count >= HELD_READS_MAX || !self.write_waiting(key_hash) {
            return Err(read);
        }
        self.held.entry(key_hash).or_default().push(read);
        self.held_count += 1;
        self.check_invariants();
        Ok(())
    }

    /// Writes waiting, over every key.
    pub(super) fn writes(&self) -> usize {
        self.writes_total
    }

    fn check_invariants(&self) {
        crate::invariant!(
            self.held_count == self.held.values().map(Vec::len).sum::<usize>() && self.held_count <= HELD_READS_MAX,
            "{} reads counted held, {} held",
            self.held_count,
            self.held.values().map(Vec::len).sum::<usize>()
        );
        crate::invariant!(
            self.held.keys().all(|key| self.writes_waiting.contains_key(key)),
            "a read held behind no write"
        );
        crate::invariant!(
            self.writes_waiting.len() <= self.writes_total && self.bucket_writes_waiting.len() <= self.writes_total,
            "{} writes counted waiting, for {} keys in {} buckets",
            self.writes_total,
            self.writes_waiting.len(),
            self.bucket_writes_waiting.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::hash::key_hash;

    fn read(id: u8) -> HeldRead {
        HeldRead {
            key: vec![1],
            message_id: vec![id],
            client: "127.0.0.1:9".parse().unwrap(),
        }
    }

    #[test]
    fn reads_are_held_until_the_last_write_of_their_key_ends() {
        let mut reads = HeldReads::default();
        assert!(reads.hold(7, read(1)).is_err(), "no write waits: answered at once");
        reads.write_started(7);
        reads.write_started(7);
        assert!(reads.hold(7, read(1)).is_ok());
        assert!(reads.hold(7, read(2)).is_ok());
        assert!(reads.write_ended(7).is_empty(), "another write of the key still waits");
        let answered: Vec<u8> = reads.write_ended(7).iter().map(|r| r.message_id[0]).collect();
        assert_eq!(answered, vec![1, 2]);
        assert!(!reads.write_waiting(7));
        assert_eq!(reads.writes(), 0);
    }

    #[test]
    fn a_bucket_has_a_write_waiting_while_any_write_of_its_keys_waits() {
        let mut reads = HeldReads::default();
        let (a, b) = (key_hash(b"a"), key_hash(b"b"));
        let other = (0..)
            .map(|n: u32| key_hash(&n.to_be_bytes()))
            .find(|h| bucket_of(*h) != bucket_of(a))
            .unwrap();
        reads.write_started(a);
        reads.write_started(b);
        assert!(reads.bucket_write_waiting(bucket_of(a)));
        assert!(!reads.bucket_write_waiting(bucket_of(other)));
        reads.write_ended(a);
        assert_eq!(reads.bucket_write_waiting(bucket_of(a)), bucket_of(a) == bucket_of(b));
        reads.write_ended(b);
        assert!(!reads.bucket_write_waiting(bucket_of(a)) && !reads.bucket_write_waiting(bucket_of(b)));
    }

    #[test]
    fn no_more_than_the_bound_are_held() {
        let mut reads = HeldReads::default();
        reads.write_started(1);
        for _ in 0..HELD_READS_MAX {
            assert!(reads.hold(1, read(0)).is_ok());
        }
        assert!(reads.hold(1, read(9)).is_err());
        assert_eq!(reads.write_ended(1).len(), HELD_READS_MAX);
        reads.write_started(1);
        assert!(reads.hold(1, read(9)).is_ok(), "room again");
    }
}

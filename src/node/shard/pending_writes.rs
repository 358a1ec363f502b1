//! The writes a coordinator applied and waits on replicas for: each by its
//! sequence number, the message id it answers, and the GETs held behind
//! it ([`HeldReads`]). One type, so that a write leaving (acknowledged,
//! given up, or failed with its journal) always releases its id and its
//! held reads, and the three never disagree.

use super::held_reads::{HeldRead, HeldReads};
use crate::cluster::internal::Internal;
use crate::cluster::ring::View;
use crate::invariant;
use crate::protocol::wire::ErrorCode;
use crate::storage::hash::BucketId;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// Writes a shard may have waiting for replica acks; beyond, OVERLOAD.
pub const PENDING_WRITES_MAX: usize = 16_384;
/// Resend a replication datagram not acknowledged within this time.
pub(super) const REPLICATE_RESEND_MS: u64 = 100;
/// A write that cannot reach enough copies (this node is cut off from
/// every other replica) is given up after this long, with no reply: the
/// client's retries are long over, and it never heard "done".
pub(super) const PENDING_GIVE_UP_MS: u64 = 10_000;

/// A write applied here, waiting for replicas before the client hears.
pub(super) struct Pending {
    pub(super) client: SocketAddr,
    pub(super) message_id: Vec<u8>,
    pub(super) id_hash: u64,
    pub(super) code: ErrorCode,
    pub(super) bucket: BucketId,
    /// The written key's hash (GETs of it are held until this ends).
    pub(super) key_hash: u64,
    /// Replicas asked and not heard from.
    pub(super) waiting: Vec<usize>,
    /// Every replica asked, heard from or not.
    pub(super) asked: Vec<usize>,
    /// Replicas that said they store it (this node, which does, not included).
    pub(super) stored_on: Vec<usize>,
    /// Copies it needs before the client hears.
    pub(super) copies_required: usize,
    /// The replicated write; each send is signed anew (a resend is a new
    /// message to the receiver's replay window, see [`crate::cluster::freshness`]).
    pub(super) message: Internal,
    pub(super) resend_at_ms: u64,
    pub(super) give_up_at_ms: u64,
}

/// Where one waiting write stands after a look at it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PendingStep {
    /// Still waiting; `resend` to the replicas in `waiting` now.
    Waiting {
        resend: bool,
    },
    Done,
    GivenUp,
}

impl Pending {
    /// Nodes known to store the write, this one included.
    fn copies(&self) -> usize {
        1 + self.stored_on.len()
    }

    pub(super) fn done(&self) -> bool {
        self.waiting.is_empty() && self.copies() >= self.copies_required
    }

    /// A replica's answer: it stored the write, or (`refused`, full) it
    /// did not. Returns whether the write is done.
    pub(super) fn acknowledged(&mut self, from: usize, refused: bool) -> bool {
        if !self.waiting.contains(&from) {
            return false;
        }
        self.waiting.retain(|&node| node != from);
        if !refused {
            self.stored_on.push(from);
        }
        self.check_invariants();
        self.done()
    }

    /// A look at the write at `now_ms`: replicas that died stop being
    /// waited for, and when too few copies are left the nodes that now
    /// stand in for them (the bucket's preference list in `view`, not
    /// node `me`) are asked instead.
    pub(super) fn step(&mut self, view: &View, me: usize, now_ms: u64) -> PendingStep {
        self.waiting
            .retain(|&node| view.liveness.alive.get(node).copied().unwrap_or(false));
        if self.waiting.is_empty() && self.copies() < self.copies_required {
            let stand_ins: Vec<usize> = (view.preference(self.bucket).iter())
                .map(|&n| usize::from(n))
                .filter(|n| *n != me && !self.asked.contains(n))
                .collect();
            self.asked.extend(&stand_ins);
            self.waiting = stand_ins;
            self.resend_at_ms = now_ms;
        }
        self.check_invariants();
        if self.done() {
            return PendingStep::Done;
        }
        if now_ms >= self.give_up_at_ms {
            return PendingStep::GivenUp;
        }
        let resend = now_ms >= self.resend_at_ms;
        if resend {
            self.resend_at_ms = now_ms + REPLICATE_RESEND_MS;
        }
        PendingStep::Waiting { resend }
    }

    fn check_invariants(&self) {
        invariant!(
            self.waiting.iter().all(|n| self.asked.contains(n)),
            "waiting for replicas never asked: {:?} of {:?}",
            self.waiting,
            self.asked
        );
        invariant!(
            self.stored_on
                .iter()
                .all(|n| self.asked.contains(n) && !self.waiting.contains(n)),
            "copies {:?} not a subset of the replicas asked {:?} and heard from",
            self.stored_on,
            self.asked
        );
    }
}

/// A shard's waiting writes (see the module's doc).
pub(super) struct PendingWrites {
    /// By sequence number: ordered, so a run replays the same way.
    by_seq: BTreeMap<u64, Pending>,
    /// The sequence number of each waiting write's message id hash.
    ids: HashMap<u64, u64>,
    held_reads: HeldReads,
    next_seq: u64,
}

impl Default for PendingWrites {
    fn default() -> PendingWrites {
        PendingWrites {
            by_seq: BTreeMap::new(),
            ids: HashMap::new(),
            held_reads: HeldReads::default(),
            next_seq: 1,
        }
    }
}

impl PendingWrites {
    pub(super) fn len(&self) -> usize {
        self.by_seq.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// Whether a write with this message id hash waits.
    pub(super) fn knows(&self, id_hash: u64) -> bool {
        self.ids.contains_key(&id_hash)
    }

    /// The sequence number for the next replicated write.
    pub(super) fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// A write that now waits for its replicas, under `seq` (from
    /// [`PendingWrites::take_seq`]).
    pub(super) fn start(&mut self, seq: u64, pending: Pending) {
        pending.check_invariants();
        self.ids.insert(pending.id_hash, seq);
        self.held_reads.write_started(pending.key_hash);
        self.by_seq.insert(seq, pending);
        self.check_invariants();
    }

    pub(super) fn get_mut(&mut self, seq: u64) -> Option<&mut Pending> {
        self.by_seq.get_mut(&seq)
    }

    /// The waiting writes' sequence numbers, oldest first.
    pub(super) fn seqs(&self) -> Vec<u64> {
        self.by_seq.keys().copied().collect()
    }

    /// A write that stops waiting (done, given up or failed), with the
    /// GETs of its key to answer now (none while another write of the key
    /// waits).
    pub(super) fn finish(&mut self, seq: u64) -> Option<(Pending, Vec<HeldRead>)> {
        let pending = self.by_seq.remove(&seq)?;
        self.ids.remove(&pending.id_hash);
        let reads = self.held_reads.write_ended(pending.key_hash);
        self.check_invariants();
        Some((pending, reads))
    }

    /// Holds a GET of the key with this hash until its writes end; gives
    /// it back when none waits or as many are held as allowed.
    pub(super) fn hold(&mut self, key_hash: u64, read: HeldRead) -> Result<(), HeldRead> {
        self.held_reads.hold(key_hash, read)
    }

    pub(super) fn write_waiting(&self, key_hash: u64) -> bool {
        self.held_reads.write_waiting(key_hash)
    }

    pub(super) fn bucket_write_waiting(&self, bucket: BucketId) -> bool {
        self.held_reads.bucket_write_waiting(bucket)
    }

    fn check_invariants(&self) {
        // O(1) each: checked on every change of a shard's hot path.
        invariant!(
            self.ids.len() == self.by_seq.len(),
            "{} message ids for {} waiting writes",
            self.ids.len(),
            self.by_seq.len()
        );
        invariant!(
            self.held_reads.writes() == self.by_seq.len(),
            "{} writes counted waiting for held reads, {} waiting",
            self.held_reads.writes(),
            self.by_seq.len()
        );
        invariant!(
            self.by_seq.last_key_value().is_none_or(|(&seq, _)| seq < self.next_seq),
            "a waiting write numbered past the next sequence number"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ring::{Liveness, Placement};

    fn view(alive: &[bool], me: usize) -> View {
        let names: Vec<String> = (1..=alive.len()).map(|port| format!("127.0.0.1:{port}")).collect();
        Placement::new(&names, 3).view(me, Liveness::ready(alive.to_vec()))
    }

    fn pending(id: u8, key_hash: u64, asked: &[usize]) -> Pending {
        Pending {
            client: "127.0.0.1:9".parse().unwrap(),
            message_id: vec![id],
            id_hash: u64::from(id),
            code: ErrorCode::Success,
            bucket: 0,
            key_hash,
            waiting: asked.to_vec(),
            asked: asked.to_vec(),
            stored_on: Vec::new(),
            copies_required: 2,
            message: Internal::Batch(Vec::new()),
            resend_at_ms: REPLICATE_RESEND_MS,
            give_up_at_ms: PENDING_GIVE_UP_MS,
        }
    }

    fn read(id: u8) -> HeldRead {
        HeldRead {
            key: vec![id],
            message_id: vec![id],
            client: "127.0.0.1:9".parse().unwrap(),
        }
    }

    #[test]
    fn a_write_is_done_once_every_replica_asked_answered_and_two_copies_exist() {
        let mut write = pending(1, 7, &[1, 2]);
        assert!(!write.acknowledged(1, false));
        assert!(!write.acknowledged(3, false), "never asked: ignored");
        assert!(!write.acknowledged(1, false), "twice: counted once");
        assert!(write.acknowledged(2, false));
        let mut refused = pending(2, 7, &[1]);
        assert!(!refused.acknowledged(1, true), "answered, but one copy only");
    }

    #[test]
    fn a_replica_that_died_is_replaced_by_the_nodes_standing_in_for_it() {
        let me = 0;
        let all = view(&[true; 5], me);
        let home: Vec<usize> = all.preference(0).iter().map(|&n| usize::from(n)).collect();
        let others: Vec<usize> = home.iter().copied().filter(|&n| n != me).collect();
        let mut write = pending(1, 7, &others);
        // Every other home replica died before it answered.
        let mut alive = [true; 5];
        for &n in &others {
            alive[n] = false;
        }
        let after = view(&alive, me);
        assert_eq!(write.step(&after, me, 0), PendingStep::Waiting { resend: true });
        assert!(!write.waiting.is_empty());
        assert!(
            write
                .waiting
                .iter()
                .all(|n| !others.contains(n) && *n != me && alive[*n])
        );
        let stand_in = write.waiting[0];
        assert!(write.acknowledged(stand_in, false) || !write.waiting.is_empty());
    }

    #[test]
    fn a_replica_that_stored_the_write_counts_once_when_stand_ins_are_asked() {
        let home: Vec<usize> = (view(&[true; 5], 0).preference(0).iter())
            .map(|&n| usize::from(n))
            .collect();
        let me = home[0];
        let (stored, died) = (home[1], home[2]);
        let mut write = pending(1, 7, &[stored, died]);
        write.copies_required = 3;
        assert!(!write.acknowledged(stored, false));
        let mut alive = [true; 5];
        alive[died] = false;
        assert_eq!(
            write.step(&view(&alive, me), me, 0),
            PendingStep::Waiting { resend: true }
        );
        assert!(!write.waiting.is_empty(), "a stand-in is asked");
        assert!(
            !write.waiting.contains(&stored),
            "the replica that stored it is not asked again"
        );
        for node in write.waiting.clone() {
            write.acknowledged(node, false);
        }
        assert_eq!(write.stored_on.iter().filter(|&&n| n == stored).count(), 1);
        assert!(write.done());
    }

    #[test]
    fn a_silent_replica_is_asked_again_and_the_write_given_up_at_last() {
        let me = 0;
        let all = view(&[true; 5], me);
        let mut write = pending(1, 7, &[1]);
        assert_eq!(write.step(&all, me, 1), PendingStep::Waiting { resend: false });
        assert_eq!(
            write.step(&all, me, REPLICATE_RESEND_MS),
            PendingStep::Waiting { resend: true }
        );
        assert_eq!(
            write.step(&all, me, REPLICATE_RESEND_MS + 1),
            PendingStep::Waiting { resend: false }
        );
        assert_eq!(write.step(&all, me, PENDING_GIVE_UP_MS), PendingStep::GivenUp);
    }

    #[test]
    fn finishing_a_write_frees_its_id_and_answers_its_held_reads() {
        let mut writes = PendingWrites::default();
        let (first, second) = (writes.take_seq(), writes.take_seq());
        writes.start(first, pending(1, 7, &[1]));
        writes.start(second, pending(2, 7, &[1]));
        assert!(writes.knows(1) && writes.knows(2));
        assert!(writes.hold(7, read(9)).is_ok());
        assert!(writes.hold(8, read(8)).is_err(), "no write of that key waits");
        let (done, reads) = writes.finish(first).unwrap();
        assert_eq!(done.message_id, [1]);
        assert!(reads.is_empty(), "the key's other write still waits");
        assert!(!writes.knows(1) && writes.knows(2));
        let (_, reads) = writes.finish(second).unwrap();
        assert_eq!(reads.len(), 1);
        assert!(writes.is_empty() && !writes.write_waiting(7));
        assert!(writes.finish(second).is_none(), "finished once");
    }
}

//! Items' rounds at a shard, both sides: the SWAPs this shard proposes
//! ([`super::proposals`]) and the prepares and accepts it answers as one
//! of an item's acceptors ([`super::promises`] with the store). An item's
//! acceptors are its bucket's home replicas: the first N serving members
//! of the bucket's ranking in the universe, alive or not, never a
//! stand-in; a round needs a majority of them, so two sides of a
//! partition never both change an item, and a node that becomes an item's
//! coordinator finds every acknowledged write of it in its first round.
//!
//! A strongly consistent page of a bucket (a Query or Scan with
//! ConsistentRead) asks the same home replicas ([`super::page_reads`]).
//!
//! Ballots are write stamps, so an accepted value is simply the item's
//! record stamped with its ballot: replication of pulls and anti-entropy,
//! which keep the greatest stamp, carry accepted values. An acceptor's
//! vote leaves once its change is in the journal (see [`super::commit`]),
//! and the client's answer once the proposer's own is.

use super::Shard;
use super::page_reads::{PageAsk, PageReads};
use super::promises::Promises;
use super::proposals::{Ask, Next, PROPOSALS_MAX, Proposals, Vote, Want};
use crate::cluster::internal::{CLOCK_SKEW_MS_MAX, Entry, Internal};
use crate::cluster::ring::{Liveness, View};
use crate::node::cluster_core::placement;
use crate::protocol::wire::{ErrorCode, Reply, SwapTo};
use crate::storage::hash::{BucketId, bucket_of_key};
use crate::storage::item_key::BucketRead;
use crate::storage::stamp::Stamp;
use crate::storage::store::Applied;
use std::net::SocketAddr;
use std::sync::Arc;

/// The back-off asked of a client when this shard has too many rounds.
const ROUNDS_FULL_WAIT_MS: i32 = 50;

/// A shard's part in items' rounds: as proposer and as acceptor.
pub(super) struct Rounds {
    proposals: Proposals,
    promises: Promises,
    home: HomeReplicas,
    pages: PageReads,
}

impl Rounds {
    /// With the test faults: `single_vote` rounds, `one_copy` pages.
    pub(super) fn new(seed: u64, (single_vote, one_copy): (bool, bool)) -> Rounds {
        let mut proposals = Proposals::new(seed);
        if single_vote {
            proposals.take_single_votes();
        }
        let mut pages = PageReads::default();
        if one_copy {
            pages.take_one_copy();
        }
        Rounds {
            proposals,
            promises: Promises::default(),
            home: HomeReplicas::default(),
            pages,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.proposals.is_empty() && self.pages.is_empty()
    }

    /// Whether a SWAP with this message id hash has a round under way.
    pub(super) fn knows(&self, id_hash: u64) -> bool {
        self.proposals.knows(id_hash)
    }
}

/// The home replicas of every bucket under one universe, worked out when
/// a round first needs them after the universe changed.
#[derive(Default)]
struct HomeReplicas {
    version: Option<u64>,
    view: Option<Arc<View>>,
}

/// A SWAP to carry out, as the router handed it over.
pub(super) struct SwapAsk<'a> {
    pub(super) key: &'a [u8],
    pub(super) expected: u64,
    pub(super) to: SwapTo<'a>,
    pub(super) message_id: &'a [u8],
    pub(super) id_hash: u64,
    pub(super) client: SocketAddr,
}

impl Shard {
    /// This node restarted from its disk: its promises from before are
    /// gone, and none of them was above its clock plus the skew bound.
    pub fn restarted_from_disk(&mut self) {
        let floor = Stamp::from_millis(self.ctx.clock.stamp_ms() + CLOCK_SKEW_MS_MAX + 1);
        self.rounds.promises.restarted(floor);
    }

    /// A SWAP: a round of its item's acceptors, proposed here. Returns an
    /// answer now, or `None` when it comes once the round ends.
    pub(super) fn propose(&mut self, view: &View, swap: SwapAsk<'_>) -> Option<Reply> {
        let bucket = bucket_of_key(swap.key);
        if self.rounds.proposals.len() >= PROPOSALS_MAX {
            // Rounds end (answered, or given up after 10 s) and make room;
            // a bucket's clients wait within the node's bound on waits.
            let now = self.now_ms();
            if self.waits.may_wait(bucket, now) {
                return Some(Reply::Overload {
                    wait_ms: ROUNDS_FULL_WAIT_MS,
                });
            }
            return Some(Reply::Code(ErrorCode::InternalFailure));
        }
        let acceptors = self.home_replicas(view, bucket);
        let ballot = self.next_stamp(swap.key);
        let ask = Ask {
            key: swap.key.to_vec(),
            expected: swap.expected,
            want: match swap.to {
                SwapTo::Value(value) => Want::Write(Some(value.to_vec())),
                SwapTo::Nothing => Want::Write(None),
                SwapTo::Unchanged => Want::Read,
            },
            client: swap.client,
            message_id: swap.message_id.to_vec(),
            id_hash: swap.id_hash,
        };
        let now = self.now_ms();
        let (id, next) = self.rounds.proposals.start(ask, acceptors, ballot, now);
        self.follow(id, next);
        None
    }

    /// A strongly consistent page of the bucket of `key`, read from its
    /// home replicas; answered once a majority of them answered.
    pub(super) fn read_page_consistently(&mut self, view: &View, ask: PageAsk) {
        let bucket = bucket_of_key(&ask.key);
        if self.rounds.pages.full() {
            let now = self.now_ms();
            let reply = match self.waits.may_wait(bucket, now) {
                true => Reply::Overload {
                    wait_ms: ROUNDS_FULL_WAIT_MS,
                },
                false => Reply::Code(ErrorCode::InternalFailure),
            };
            return self.send_reply(&ask.message_id, &reply, ask.client);
        }
        let acceptors = self.home_replicas(view, bucket);
        let now = self.now_ms();
        if let Some((message, to)) = self.rounds.pages.start(ask, acceptors, now) {
            self.follow(0, Next::Send(message, to));
        }
    }

    /// A home replica's answer to a page read: this node's records of it.
    fn answer_page_ask(&self, key: &[u8], read: &[u8]) -> (bool, Vec<Entry>, bool) {
        match BucketRead::decode(read) {
            Some(read) if self.may_vote() => {
                let (entries, more) = super::bucket_read::page_entries(&self.store, bucket_of_key(key), &read);
                (true, entries, more)
            }
            _ => (false, Vec::new(), false),
        }
    }

    fn page_answered(&mut self, round: u64, from: usize, (ok, entries, more): (bool, Vec<Entry>, bool)) {
        if let Some((ask, reply)) = self.rounds.pages.answer(round, from, ok, (entries, more)) {
            self.send_reply(&ask.message_id, &reply, ask.client);
        }
    }

    /// The bucket's home replicas in the universe this node holds.
    fn home_replicas(&mut self, view: &View, bucket: BucketId) -> Vec<usize> {
        let universe = self.ctx.universe();
        if self.rounds.home.version != Some(universe.version) || self.rounds.home.view.is_none() {
            let placement = placement(&self.ctx.roster, &universe, view.replicas());
            let everyone = Liveness::ready(vec![true; placement.slots()]);
            self.rounds.home.view = Some(Arc::new(placement.view(self.ctx.self_index, everyone)));
            self.rounds.home.version = Some(universe.version);
        }
        let home = self
            .rounds
            .home
            .view
            .as_ref()
            .map_or(&[][..], |home| home.preference(bucket));
        home.iter().map(|&n| usize::from(n)).collect()
    }

    /// A round message from node `from` (or, `from` being this node, from
    /// this shard's own proposals).
    pub(super) fn round_message(&mut self, from: usize, message: Internal) {
        let me = self.ctx.self_index;
        let (round, bucket, vote) = match message {
            Internal::Prepare { round, ballot, key } => {
                let vote = self.answer_prepare(&key, ballot);
                (round, bucket_of_key(&key), vote)
            }
            Internal::Accept { round, entry } => {
                let vote = self.answer_accept(entry.clone());
                (round, bucket_of_key(&entry.key), vote)
            }
            Internal::PageAsk { round, key, read } => {
                let answer = self.answer_page_ask(&key, &read);
                if from == me {
                    return self.page_answered(round, me, answer);
                }
                let (ok, entries, more) = answer;
                let bucket = bucket_of_key(&key);
                let vote = Internal::PageVote {
                    round,
                    bucket,
                    ok,
                    more,
                    entries,
                };
                return self.send_node(from, vote);
            }
            Internal::PageVote {
                round,
                ok,
                more,
                entries,
                ..
            } => return self.page_answered(round, from, (ok, entries, more)),
            Internal::Vote {
                round,
                ok,
                full,
                seen,
                entry,
                ..
            } => {
                let now = self.now_ms();
                let (id, next) = (self.rounds.proposals).vote(round, from, Vote { ok, full, seen, entry }, now);
                if let Some(id) = id {
                    self.follow(id, next);
                }
                return;
            }
            _ => return,
        };
        if from == me {
            let now = self.now_ms();
            let (id, next) = self.rounds.proposals.vote(round, me, vote, now);
            if let Some(id) = id {
                self.follow(id, next);
            }
            return;
        }
        let reply = Internal::Vote {
            round,
            bucket,
            ok: vote.ok,
            full: vote.full,
            seen: vote.seen,
            entry: vote.entry,
        };
        // After the drain's commit: an accept's vote is a logged copy.
        self.send_node(from, reply);
    }

    /// What this acceptor holds of `key`: its record, a tombstone's stamp.
    fn held_entry(&self, key: &[u8]) -> Option<Entry> {
        let stamp = self.store.stamp_of(key)?;
        let record = self.store.get(key);
        Some(Entry {
            key: key.to_vec(),
            value: record.map_or_else(Vec::new, |r| r.value().to_vec()),
            version: record.map_or(0, |r| r.version()),
            stamp,
            tombstone: record.is_none(),
        })
    }

    /// Whether this node may vote in rounds: it keeps what it accepted
    /// across a restart (a data directory), or it has caught up since it
    /// started (without one, a restart forgot every vote it gave).
    fn may_vote(&self) -> bool {
        let view = self.ctx.view();
        let me = self.ctx.self_index;
        self.journal.is_some() || (view.liveness.ready[me] && !view.liveness.behind[me])
    }

    fn answer_prepare(&mut self, key: &[u8], ballot: Stamp) -> Vote {
        if !self.may_vote() {
            return refusal(Stamp(0), false);
        }
        self.clock.observe(ballot);
        let held = self.held_entry(key);
        let stored = held.as_ref().map(|e| e.stamp);
        match self.rounds.promises.prepare((key, bucket_of_key(key)), ballot, stored) {
            Ok(()) => Vote {
                ok: true,
                full: false,
                seen: ballot,
                entry: held,
            },
            Err(refused) => refusal(refused.seen, false),
        }
    }

    fn answer_accept(&mut self, entry: Entry) -> Vote {
        if !self.may_vote() {
            return refusal(Stamp(0), false);
        }
        self.clock.observe(entry.stamp);
        let bucket = bucket_of_key(&entry.key);
        let stored = self.store.stamp_of(&entry.key);
        if let Err(refused) = self
            .rounds
            .promises
            .may_accept((&entry.key, bucket), entry.stamp, stored)
        {
            return refusal(refused.seen, false);
        }
        if stored == Some(entry.stamp) {
            // A resend: taken already.
            return accepted(entry.stamp);
        }
        let applied = if entry.tombstone && !self.keeps_tombstones() {
            // With no other replica, nothing is there to bring it back.
            match self.forget_stored(&entry.key) {
                Ok(_) => Applied::Stored,
                Err(_) => Applied::OutOfSpace,
            }
        } else {
            self.apply_entry(&entry)
        };
        match applied {
            Applied::Stored => {
                self.rounds.promises.accepted(&entry.key, entry.stamp);
                accepted(entry.stamp)
            }
            Applied::OutOfSpace => {
                self.lacks_entries_of(bucket);
                refusal(stored.unwrap_or_default(), true)
            }
            // Below the WIPEOUT floor or the bucket's collection cutoff.
            Applied::Stale => refusal(stored.unwrap_or_default().max(entry.stamp), false),
        }
    }

    /// Whether deletes leave tombstones here (see [`super::ShardConfig`]).
    fn keeps_tombstones(&self) -> bool {
        self.keep_tombstones && self.ctx.view().serving > 1
    }

    /// Does what round `id` needs next.
    fn follow(&mut self, id: u64, next: Next) {
        match next {
            Next::Wait => {}
            Next::Send(message, to) => {
                let me = self.ctx.self_index;
                for &node in to.iter().filter(|&&node| node != me) {
                    self.send_node(node, message.clone());
                }
                if to.contains(&me) {
                    self.round_message(me, message);
                }
            }
            Next::Retry { seen } => {
                self.clock.observe(seen);
                let Some(key) = self.rounds.proposals.key_of(id).map(<[u8]>::to_vec) else {
                    return;
                };
                let ballot = self.next_stamp(&key);
                let now = self.now_ms();
                let next = self.rounds.proposals.retry(id, ballot, now);
                self.follow(id, next);
            }
            Next::Answer(reply) => {
                let Some((ask, queued)) = self.rounds.proposals.finish(id) else {
                    return;
                };
                if matches!(ask.want, Want::Write(_)) {
                    self.cache.insert(ask.id_hash, reply.code() as u8, self.now_ms());
                    self.note_written(&ask.message_id, None);
                }
                self.send_reply(&ask.message_id, &reply, ask.client);
                if let Some(queued) = queued {
                    self.follow(queued, Next::Retry { seen: Stamp(0) });
                }
            }
            Next::GiveUp => {
                if let Some((_, queued)) = self.rounds.proposals.finish(id) {
                    self.ctx
                        .counters
                        .writes_given_up
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Some(queued) = queued {
                        self.follow(queued, Next::Retry { seen: Stamp(0) });
                    }
                }
            }
        }
    }

    /// The rounds' timers: resends, retries, rounds given up.
    pub(super) fn check_rounds(&mut self) {
        if self.rounds.is_empty() {
            return;
        }
        let now = self.now_ms();
        for (message, to) in self.rounds.pages.tick(now) {
            self.follow(0, Next::Send(message, to));
        }
        for (id, next) in self.rounds.proposals.tick(now) {
            self.follow(id, next);
        }
    }
}

fn refusal(seen: Stamp, full: bool) -> Vote {
    Vote {
        ok: false,
        full,
        seen,
        entry: None,
    }
}

fn accepted(ballot: Stamp) -> Vote {
    Vote {
        ok: true,
        full: false,
        seen: ballot,
        entry: None,
    }
}

//! The rounds this shard proposes for items (see [`super::rounds`]): one
//! per SWAP, each a single-decree Paxos round over the item's home
//! replicas that applies the SWAP to the value the round finds (CASPaxos).
//! A pure state machine: votes and ticks in, what to send or answer out.
//!
//! A round prepares its ballot at every acceptor; once a majority
//! promised, it takes the record with the greatest stamp among their
//! answers as the item's value, checks the SWAP's expectation against it
//! and accepts the result (or, for a read or a failed check, the value
//! found, unless every promise already reported it), stamped with the
//! ballot; a majority of accepts and the client hears. A majority refusing
//! sends the round back to prepare with a greater ballot after a random
//! pause, so two proposers do not keep cutting each other off.

use crate::cluster::internal::{Entry, Internal};
use crate::invariant;
use crate::protocol::wire::{ErrorCode, Reply, SWAP_ANY, swap_hash, write_tag};
use crate::storage::hash::SplitMix64;
use crate::storage::stamp::Stamp;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// Rounds one shard may have under way; beyond, OVERLOAD.
pub(super) const PROPOSALS_MAX: usize = 1_024;
/// A round's messages are sent again to acceptors silent this long.
const RESEND_MS: u64 = 100;
/// A round with no answer after this long is dropped unanswered: the
/// client's tries are over, and it never heard "done".
const GIVE_UP_MS: u64 = 10_000;
/// The pause before a refused round prepares again: at random below this.
const BACKOFF_MS_MAX: u64 = 20;
/// A round's attempts, in the low bits of its message ids.
const ATTEMPT_BITS: u32 = 16;

/// What a SWAP changes the item to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Want {
    /// This record (`None`: the item removed).
    Write(Option<Vec<u8>>),
    /// Nothing: the value the round finds is the answer.
    Read,
}

/// The SWAP a round carries out, and who hears how it ended.
#[derive(Clone, Debug)]
pub(super) struct Ask {
    pub(super) key: Vec<u8>,
    /// [`swap_hash`] of the value it expects, 0 for none, [`SWAP_ANY`].
    pub(super) expected: u64,
    pub(super) want: Want,
    pub(super) client: SocketAddr,
    pub(super) message_id: Vec<u8>,
    pub(super) id_hash: u64,
}

/// An acceptor's answer, as [`Internal::Vote`] carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Vote {
    pub(super) ok: bool,
    pub(super) full: bool,
    pub(super) seen: Stamp,
    pub(super) entry: Option<Entry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Prepare,
    Accept,
    /// Refused; prepares again at `retry_at_ms`.
    Backoff,
    /// Behind another round of the same key (one at a time per key, so
    /// that a shard's rounds never cut each other off).
    Queued,
}

/// What the shard does next for a round.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    Wait,
    /// Send this to these acceptors (this node among them, maybe).
    Send(Internal, Vec<usize>),
    /// Prepare again with a greater ballot than `seen`.
    Retry {
        seen: Stamp,
    },
    /// Answer the client; the round is over.
    Answer(Reply),
    /// Drop it unanswered.
    GiveUp,
}

pub(super) struct Proposal {
    pub(super) ask: Ask,
    /// The test fault of `--fault-single-vote-rounds`.
    single_vote: bool,
    /// The item's home replicas when the round began.
    acceptors: Vec<usize>,
    ballot: Stamp,
    attempt: u64,
    phase: Phase,
    /// Acceptors heard from in this phase, and those that said yes.
    heard: Vec<usize>,
    yes: Vec<usize>,
    refused_full: usize,
    /// The greatest ballot a refusal named.
    seen: Stamp,
    /// The record with the greatest stamp among the promises, and how
    /// many promises reported that stamp (no record: stamp 0).
    found: Option<Entry>,
    found_votes: usize,
    /// What is being accepted, and the answer once it is.
    accepting: Option<(Entry, Reply)>,
    /// Ballots at which this round asked acceptors to store its own
    /// write: a later attempt that finds one of them finds its write
    /// taken, and must not apply it again.
    own_ballots: Vec<Stamp>,
    /// The value its write was first decided on (`Some(None)`: no item).
    decided_on: Option<Option<Entry>>,
    resend_at_ms: u64,
    retry_at_ms: u64,
    give_up_at_ms: u64,
}

fn stamp_of(entry: &Option<Entry>) -> Stamp {
    entry.as_ref().map_or(Stamp(0), |e| e.stamp)
}

impl Proposal {
    fn majority(&self) -> usize {
        if self.single_vote {
            return 1;
        }
        self.acceptors.len() / 2 + 1
    }

    fn message(&self, id: u64) -> Internal {
        let round = id << ATTEMPT_BITS | self.attempt;
        match (&self.phase, &self.accepting) {
            (Phase::Accept, Some((entry, _))) => Internal::Accept {
                round,
                entry: entry.clone(),
            },
            _ => Internal::Prepare {
                round,
                ballot: self.ballot,
                key: self.ask.key.clone(),
            },
        }
    }

    fn enter(&mut self, phase: Phase, now_ms: u64) {
        if phase == Phase::Accept {
            // Its messages get ids of their own: a late promise is no accept.
            self.attempt = (self.attempt + 1) & ((1 << ATTEMPT_BITS) - 1);
        }
        self.phase = phase;
        self.heard.clear();
        self.yes.clear();
        self.refused_full = 0;
        self.resend_at_ms = now_ms + RESEND_MS;
    }

    /// The value found, once a majority promised: what to accept.
    fn decide(&mut self, now_ms: u64) -> (Entry, Reply) {
        let found = self.found.clone();
        let current = found.as_ref().filter(|e| !e.tombstone);
        let holds =
            self.ask.expected == SWAP_ANY || self.ask.expected == current.map_or(0, |e| swap_hash(&e.value, e.version));
        let keep = |reply| {
            let entry = match &found {
                Some(e) => Entry {
                    stamp: self.ballot,
                    ..e.clone()
                },
                None => tombstone(&self.ask.key, self.ballot),
            };
            (entry, reply)
        };
        let tag = write_tag(self.ask.id_hash);
        let own = found.as_ref().is_some_and(|e| {
            // Its write, taken in an earlier attempt, or by a round of
            // another coordinator its client's resend reached first.
            let written_before =
                matches!(&self.ask.want, Want::Write(Some(v)) if !e.tombstone && e.version == tag && e.value == *v);
            self.own_ballots.contains(&e.stamp) || written_before
        });
        let decided = match (&self.ask.want, holds) {
            (Want::Write(_), _) if own => keep(Reply::Code(ErrorCode::Success)),
            (Want::Read, _) => keep(match current {
                Some(e) => Reply::Value {
                    value: e.value.clone(),
                    version: e.version,
                },
                None => Reply::Code(ErrorCode::NonExistentKey),
            }),
            (Want::Write(_), false) => keep(Reply::Conflict {
                current: current.map(|e| (e.value.clone(), e.version)),
            }),
            (Want::Write(None), true) => (tombstone(&self.ask.key, self.ballot), Reply::Code(ErrorCode::Success)),
            (Want::Write(Some(value)), true) => (
                Entry {
                    key: self.ask.key.clone(),
                    value: value.clone(),
                    version: tag,
                    stamp: self.ballot,
                    tombstone: false,
                },
                Reply::Code(ErrorCode::Success),
            ),
        };
        if !own && matches!((&self.ask.want, holds), (Want::Write(_), true)) {
            self.own_ballots.push(self.ballot);
            self.decided_on.get_or_insert(found);
        }
        self.enter(Phase::Accept, now_ms);
        decided
    }

    /// Whether the item changed since this round's write was first decided
    /// (and sent to acceptors), to something other than that write: the
    /// write may have been taken by a minority, carried on by another
    /// proposer and overwritten since, or not; applying it again could
    /// apply it twice, and answering "conflict" could deny a write that
    /// took effect. So its outcome is unknown, and it stops (a resend of
    /// its client's that another coordinator answered leaves such a round
    /// behind: it must never apply the write late).
    fn changed_under_own_write(&self) -> bool {
        let Some(first) = &self.decided_on else {
            return false;
        };
        let tag = write_tag(self.ask.id_hash);
        let own = self.found.as_ref().is_some_and(|e| {
            self.own_ballots.contains(&e.stamp)
                || matches!(&self.ask.want, Want::Write(Some(v)) if !e.tombstone && e.version == tag && e.value == *v)
        });
        !own && !same_state(first, &self.found)
    }

    /// Whether nothing needs accepting: the round changes nothing and
    /// every promise (`unanimous`) reported the value found, which a
    /// majority holds, so it is chosen already.
    fn chosen_already(&self, entry: &Entry, unanimous: bool) -> bool {
        let unchanged = match &self.found {
            Some(found) => {
                found.tombstone == entry.tombstone && found.value == entry.value && found.version == entry.version
            }
            None => entry.tombstone,
        };
        unchanged && unanimous
    }

    /// An acceptor's vote in the current phase.
    fn vote(&mut self, from: usize, vote: Vote, now_ms: u64) -> Next {
        if self.heard.contains(&from)
            || !self.acceptors.contains(&from)
            || matches!(self.phase, Phase::Backoff | Phase::Queued)
        {
            return Next::Wait;
        }
        self.heard.push(from);
        if vote.ok {
            self.yes.push(from);
            if self.phase == Phase::Prepare {
                let stamp = stamp_of(&vote.entry);
                if stamp > stamp_of(&self.found) || self.yes.len() == 1 {
                    self.found = vote.entry;
                    self.found_votes = 1;
                } else if stamp == stamp_of(&self.found) {
                    self.found_votes += 1;
                }
            }
        } else {
            self.seen = self.seen.max(vote.seen);
            self.refused_full += usize::from(vote.full);
        }
        self.check_invariants();
        let no = self.heard.len() - self.yes.len();
        if no > self.acceptors.len() - self.majority() {
            if self.refused_full > self.acceptors.len() - self.majority() {
                return Next::Answer(Reply::Code(ErrorCode::OutOfSpace));
            }
            self.enter(Phase::Backoff, now_ms);
            return Next::Wait;
        }
        if self.yes.len() < self.majority() {
            return Next::Wait;
        }
        match self.phase {
            Phase::Prepare => {
                if self.changed_under_own_write() {
                    return Next::Answer(Reply::Code(ErrorCode::InternalFailure));
                }
                let unanimous = self.found_votes == self.yes.len();
                let (entry, reply) = self.decide(now_ms);
                if self.chosen_already(&entry, unanimous) {
                    return Next::Answer(reply);
                }
                self.accepting = Some((entry, reply));
                Next::Wait
            }
            Phase::Accept => match self.accepting.take() {
                Some((_, reply)) => Next::Answer(reply),
                None => Next::Answer(Reply::Code(ErrorCode::InternalFailure)),
            },
            Phase::Backoff | Phase::Queued => Next::Wait,
        }
    }

    fn check_invariants(&self) {
        invariant!(
            self.yes.iter().all(|n| self.heard.contains(n)) && self.heard.iter().all(|n| self.acceptors.contains(n)),
            "a round counted votes {:?} of {:?} from outside its acceptors {:?}",
            self.yes,
            self.heard,
            self.acceptors
        );
        invariant!(
            self.found_votes <= self.yes.len() || self.phase != Phase::Prepare,
            "a round counted {} promises of the value found, of {} promises",
            self.found_votes,
            self.yes.len()
        );
    }
}

/// Whether two records found are the same item state: the same value
/// written by the same write (stamps differ when a round re-accepts it).
fn same_state(a: &Option<Entry>, b: &Option<Entry>) -> bool {
    let live = |e: &Option<Entry>| e.clone().filter(|e| !e.tombstone);
    match (live(a), live(b)) {
        (Some(a), Some(b)) => a.value == b.value && a.version == b.version,
        (None, None) => true,
        _ => false,
    }
}

fn tombstone(key: &[u8], stamp: Stamp) -> Entry {
    Entry {
        key: key.to_vec(),
        value: Vec::new(),
        version: 0,
        stamp,
        tombstone: true,
    }
}

/// A shard's rounds under way (see the module's doc).
pub(super) struct Proposals {
    by_id: BTreeMap<u64, Proposal>,
    /// The round of each SWAP's message id hash (a retry joins its round).
    ids: HashMap<u64, u64>,
    /// Per key, its rounds in order: the first under way, the rest queued.
    by_key: HashMap<Vec<u8>, std::collections::VecDeque<u64>>,
    next_id: u64,
    rng: SplitMix64,
    single_vote: bool,
}

impl Proposals {
    pub(super) fn new(seed: u64) -> Proposals {
        Proposals {
            by_id: BTreeMap::new(),
            ids: HashMap::new(),
            by_key: HashMap::new(),
            next_id: 1,
            rng: SplitMix64::new(seed),
            single_vote: false,
        }
    }

    /// The test fault of `--fault-single-vote-rounds`: one vote decides.
    pub(super) fn take_single_votes(&mut self) {
        self.single_vote = true;
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The key of round `id`.
    pub(super) fn key_of(&self, id: u64) -> Option<&[u8]> {
        self.by_id.get(&id).map(|proposal| &proposal.ask.key[..])
    }

    /// Whether a SWAP with this message id hash has a round under way.
    pub(super) fn knows(&self, id_hash: u64) -> bool {
        self.ids.contains_key(&id_hash)
    }

    /// Starts a round of `ask` at `ballot` among `acceptors`: its id, and
    /// the prepare to send (nothing, if a round of the key is under way:
    /// this one starts when that one ends, see [`Proposals::finish`]).
    pub(super) fn start(&mut self, ask: Ask, acceptors: Vec<usize>, ballot: Stamp, now_ms: u64) -> (u64, Next) {
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert(ask.id_hash, id);
        let queue = self.by_key.entry(ask.key.clone()).or_default();
        queue.push_back(id);
        let phase = if queue.len() == 1 {
            Phase::Prepare
        } else {
            Phase::Queued
        };
        let proposal = Proposal {
            ask,
            single_vote: self.single_vote,
            acceptors,
            ballot,
            attempt: 0,
            phase,
            heard: Vec::new(),
            yes: Vec::new(),
            refused_full: 0,
            seen: Stamp(0),
            found: None,
            found_votes: 0,
            accepting: None,
            own_ballots: Vec::new(),
            decided_on: None,
            resend_at_ms: now_ms + RESEND_MS,
            retry_at_ms: 0,
            give_up_at_ms: now_ms + GIVE_UP_MS,
        };
        let send = match phase {
            Phase::Queued => Next::Wait,
            _ => Next::Send(proposal.message(id), proposal.acceptors.clone()),
        };
        self.by_id.insert(id, proposal);
        invariant!(
            self.ids.len() == self.by_id.len()
                && self.by_key.values().map(std::collections::VecDeque::len).sum::<usize>() == self.by_id.len(),
            "{} message ids and {} queued for {} rounds",
            self.ids.len(),
            self.by_key.values().map(std::collections::VecDeque::len).sum::<usize>(),
            self.by_id.len()
        );
        (id, send)
    }

    /// An acceptor's vote on message `round`: what follows from it (votes
    /// on an earlier attempt or a finished round change nothing). After
    /// [`Next::Answer`] the round is gone.
    pub(super) fn vote(&mut self, round: u64, from: usize, vote: Vote, now_ms: u64) -> (Option<u64>, Next) {
        let id = round >> ATTEMPT_BITS;
        let Some(proposal) = self.by_id.get_mut(&id) else {
            return (None, Next::Wait);
        };
        if round & ((1 << ATTEMPT_BITS) - 1) != proposal.attempt {
            return (None, Next::Wait);
        }
        let was = proposal.phase;
        let mut next = proposal.vote(from, vote, now_ms);
        if proposal.phase == Phase::Backoff && was != Phase::Backoff {
            proposal.retry_at_ms = now_ms + 1 + self.rng.below(BACKOFF_MS_MAX);
        }
        if was == Phase::Prepare && proposal.phase == Phase::Accept && next == Next::Wait {
            next = Next::Send(proposal.message(id), proposal.acceptors.clone());
        }
        (Some(id), next)
    }

    /// Round `id` prepares again at `ballot` (after [`Next::Retry`]).
    pub(super) fn retry(&mut self, id: u64, ballot: Stamp, now_ms: u64) -> Next {
        let Some(proposal) = self.by_id.get_mut(&id) else {
            return Next::Wait;
        };
        proposal.ballot = ballot;
        proposal.attempt = (proposal.attempt + 1) & ((1 << ATTEMPT_BITS) - 1);
        proposal.found = None;
        proposal.found_votes = 0;
        proposal.accepting = None;
        proposal.enter(Phase::Prepare, now_ms);
        Next::Send(proposal.message(id), proposal.acceptors.clone())
    }

    /// Round `id` is over: its ask (who to answer), and the next round
    /// of its key, which starts now (at a ballot of [`Next::Retry`]).
    pub(super) fn finish(&mut self, id: u64) -> Option<(Ask, Option<u64>)> {
        let proposal = self.by_id.remove(&id)?;
        self.ids.remove(&proposal.ask.id_hash);
        let mut next = None;
        if let Some(queue) = self.by_key.get_mut(&proposal.ask.key) {
            queue.retain(|&queued| queued != id);
            next = queue.front().copied();
            if queue.is_empty() {
                self.by_key.remove(&proposal.ask.key);
            }
        }
        Some((proposal.ask, next))
    }

    /// The rounds' timers at `now_ms`: resends to silent acceptors, retries
    /// due, rounds given up.
    pub(super) fn tick(&mut self, now_ms: u64) -> Vec<(u64, Next)> {
        let mut due = Vec::new();
        for (&id, proposal) in &mut self.by_id {
            if now_ms >= proposal.give_up_at_ms {
                due.push((id, Next::GiveUp));
            } else if proposal.phase == Phase::Backoff && now_ms >= proposal.retry_at_ms {
                due.push((id, Next::Retry { seen: proposal.seen }));
            } else if matches!(proposal.phase, Phase::Prepare | Phase::Accept) && now_ms >= proposal.resend_at_ms {
                proposal.resend_at_ms = now_ms + RESEND_MS;
                let silent: Vec<usize> = (proposal.acceptors.iter())
                    .copied()
                    .filter(|n| !proposal.heard.contains(n))
                    .collect();
                due.push((id, Next::Send(proposal.message(id), silent)));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [usize; 3] = [0, 1, 2];

    fn ask(expected: u64, want: Want, id_hash: u64) -> Ask {
        Ask {
            key: b"item".to_vec(),
            expected,
            want,
            client: "127.0.0.1:9".parse().unwrap(),
            message_id: id_hash.to_le_bytes().to_vec(),
            id_hash,
        }
    }

    fn record(value: &[u8], stamp: u64) -> Entry {
        Entry {
            key: b"item".to_vec(),
            value: value.to_vec(),
            version: 0,
            stamp: Stamp(stamp),
            tombstone: false,
        }
    }

    fn promise(entry: Option<Entry>) -> Vote {
        Vote {
            ok: true,
            full: false,
            seen: Stamp(0),
            entry,
        }
    }

    fn refuse(seen: u64, full: bool) -> Vote {
        Vote {
            ok: false,
            full,
            seen: Stamp(seen),
            entry: None,
        }
    }

    /// The round id of a message sent.
    fn round_of(next: &Next) -> u64 {
        match next {
            Next::Send(Internal::Prepare { round, .. } | Internal::Accept { round, .. }, _) => *round,
            other => panic!("not a send: {other:?}"),
        }
    }

    fn accepted_entry(next: &Next) -> Entry {
        match next {
            Next::Send(Internal::Accept { entry, .. }, to) => {
                assert_eq!(to, &A.to_vec());
                entry.clone()
            }
            other => panic!("not an accept: {other:?}"),
        }
    }

    #[test]
    fn a_write_takes_the_newest_promise_as_the_value_then_needs_a_majority_of_accepts() {
        let mut rounds = Proposals::new(1);
        let want = Want::Write(Some(b"new".to_vec()));
        let prepare = rounds
            .start(ask(swap_hash(b"b", 0), want, 7), A.to_vec(), Stamp(100), 0)
            .1;
        assert!(matches!(&prepare, Next::Send(Internal::Prepare { ballot: Stamp(100), .. }, to) if to == &A.to_vec()));
        let round = round_of(&prepare);
        assert!(rounds.knows(7));
        assert_eq!(rounds.vote(round, 0, promise(Some(record(b"a", 5))), 1).1, Next::Wait);
        let (_, accept) = rounds.vote(round, 1, promise(Some(record(b"b", 9))), 1);
        let entry = accepted_entry(&accept);
        assert_eq!((entry.value.as_slice(), entry.stamp), (&b"new"[..], Stamp(100)));
        assert_eq!(
            rounds.vote(round, 2, promise(None), 2),
            (None, Next::Wait),
            "a late promise is no accept"
        );
        let round = round_of(&accept);
        assert_eq!(
            rounds.vote(round, 0, promise(None), 2).1,
            Next::Wait,
            "one accept of three"
        );
        assert_eq!(
            rounds.vote(round, 0, promise(None), 2).1,
            Next::Wait,
            "the same acceptor twice"
        );
        let (id, done) = rounds.vote(round, 2, promise(None), 2);
        assert_eq!(done, Next::Answer(Reply::Code(ErrorCode::Success)));
        assert!(rounds.finish(id.unwrap()).is_some());
        assert!(!rounds.knows(7) && rounds.is_empty());
    }

    #[test]
    fn a_failed_check_answers_conflict_with_the_value_found_once_it_is_chosen() {
        let mut rounds = Proposals::new(1);
        let want = Want::Write(Some(b"new".to_vec()));
        let round = round_of(
            &rounds
                .start(ask(swap_hash(b"old", 0), want.clone(), 1), A.to_vec(), Stamp(100), 0)
                .1,
        );
        rounds.vote(round, 0, promise(Some(record(b"b", 9))), 1);
        let (_, answer) = rounds.vote(round, 1, promise(Some(record(b"b", 9))), 1);
        let found_b = Next::Answer(Reply::Conflict {
            current: Some((b"b".to_vec(), 0)),
        });
        assert_eq!(answer, found_b, "both promises hold it: chosen");

        let mut rounds = Proposals::new(1);
        let round = round_of(
            &rounds
                .start(ask(swap_hash(b"old", 0), want, 2), A.to_vec(), Stamp(100), 0)
                .1,
        );
        rounds.vote(round, 0, promise(Some(record(b"b", 9))), 1);
        let (_, accept) = rounds.vote(round, 1, promise(None), 1);
        let entry = accepted_entry(&accept);
        assert_eq!(
            (entry.value.as_slice(), entry.stamp),
            (&b"b"[..], Stamp(100)),
            "made chosen first"
        );
        let round = round_of(&accept);
        rounds.vote(round, 1, promise(None), 2);
        let (_, answer) = rounds.vote(round, 2, promise(None), 2);
        assert_eq!(answer, found_b, "the value found, once chosen, goes with the answer");
    }

    #[test]
    fn a_read_answers_the_value_a_majority_holds() {
        let mut rounds = Proposals::new(1);
        let round = round_of(&rounds.start(ask(SWAP_ANY, Want::Read, 1), A.to_vec(), Stamp(100), 0).1);
        rounds.vote(round, 2, promise(Some(record(b"v", 9))), 1);
        let (_, answer) = rounds.vote(round, 0, promise(Some(record(b"v", 9))), 1);
        let value = Reply::Value {
            value: b"v".to_vec(),
            version: 0,
        };
        assert_eq!(answer, Next::Answer(value));
        let mut rounds = Proposals::new(1);
        let round = round_of(&rounds.start(ask(SWAP_ANY, Want::Read, 1), A.to_vec(), Stamp(100), 0).1);
        rounds.vote(round, 2, promise(None), 1);
        let (_, answer) = rounds.vote(round, 0, promise(None), 1);
        assert_eq!(answer, Next::Answer(Reply::Code(ErrorCode::NonExistentKey)));
    }

    #[test]
    fn a_refused_round_prepares_again_later_and_ignores_votes_of_the_old_attempt() {
        let mut rounds = Proposals::new(1);
        let want = Want::Write(Some(b"new".to_vec()));
        let first = round_of(&rounds.start(ask(SWAP_ANY, want, 1), A.to_vec(), Stamp(100), 0).1);
        rounds.vote(first, 0, refuse(150, false), 1);
        let (id, next) = rounds.vote(first, 1, refuse(170, false), 1);
        assert_eq!(next, Next::Wait);
        let id = id.unwrap();
        assert_eq!(rounds.tick(1), vec![], "not before its pause");
        let due = rounds.tick(1 + BACKOFF_MS_MAX + 1);
        assert_eq!(due, vec![(id, Next::Retry { seen: Stamp(170) })]);
        let again = rounds.retry(id, Stamp(171), 30);
        assert!(matches!(
            &again,
            Next::Send(Internal::Prepare { ballot: Stamp(171), .. }, _)
        ));
        let second = round_of(&again);
        assert_ne!(first, second);
        assert_eq!(
            rounds.vote(first, 2, promise(None), 31),
            (None, Next::Wait),
            "the old attempt's vote"
        );
        rounds.vote(second, 0, promise(None), 31);
        assert!(matches!(
            rounds.vote(second, 1, promise(None), 31).1,
            Next::Send(Internal::Accept { .. }, _)
        ));
    }

    #[test]
    fn a_retry_that_finds_its_own_write_taken_does_not_apply_it_again() {
        let mut rounds = Proposals::new(1);
        let want = Want::Write(Some(b"v+1".to_vec()));
        let prepare = rounds
            .start(ask(swap_hash(b"v", 0), want, 1), A.to_vec(), Stamp(100), 0)
            .1;
        let round = round_of(&prepare);
        rounds.vote(round, 0, promise(Some(record(b"v", 9))), 1);
        let accept = rounds.vote(round, 1, promise(Some(record(b"v", 9))), 1).1;
        let round = round_of(&accept);
        // One acceptor stores it, two refuse: another proposer came.
        rounds.vote(round, 0, promise(None), 2);
        rounds.vote(round, 1, refuse(150, false), 2);
        let (id, _) = rounds.vote(round, 2, refuse(150, false), 2);
        let again = rounds.retry(id.unwrap(), Stamp(151), 30);
        let round = round_of(&again);
        rounds.vote(round, 0, promise(Some(record(b"v+1", 100))), 31);
        let accept = rounds.vote(round, 2, promise(Some(record(b"v", 9))), 31).1;
        let entry = accepted_entry(&accept);
        assert_eq!(
            (entry.value.as_slice(), entry.stamp),
            (&b"v+1"[..], Stamp(151)),
            "its write, not v+1+1"
        );
        let round = round_of(&accept);
        rounds.vote(round, 0, promise(None), 32);
        let (_, answer) = rounds.vote(round, 2, promise(None), 32);
        assert_eq!(
            answer,
            Next::Answer(Reply::Code(ErrorCode::Success)),
            "not a conflict with itself"
        );
    }

    #[test]
    fn a_swap_tried_again_elsewhere_knows_its_write_by_its_tag() {
        let want = Want::Write(Some(b"v+1".to_vec()));
        let mut elsewhere = Proposals::new(2);
        let round = round_of(
            &elsewhere
                .start(ask(swap_hash(b"v", 0), want.clone(), 1), A.to_vec(), Stamp(200), 0)
                .1,
        );
        let taken = Entry {
            version: write_tag(1),
            ..record(b"v+1", 100)
        };
        elsewhere.vote(round, 0, promise(Some(taken.clone())), 1);
        let (_, answer) = elsewhere.vote(round, 1, promise(Some(taken.clone())), 1);
        assert_eq!(answer, Next::Answer(Reply::Code(ErrorCode::Success)));
        let mut another = Proposals::new(2);
        let round = round_of(
            &another
                .start(ask(swap_hash(b"v", 0), want, 2), A.to_vec(), Stamp(200), 0)
                .1,
        );
        another.vote(round, 0, promise(Some(taken.clone())), 1);
        let (_, answer) = another.vote(round, 1, promise(Some(taken)), 1);
        let current = Some((b"v+1".to_vec(), write_tag(1)));
        assert_eq!(
            answer,
            Next::Answer(Reply::Conflict { current }),
            "the same value by another SWAP"
        );
    }

    #[test]
    fn a_swap_worked_out_on_a_value_does_not_hold_on_the_same_bytes_written_again() {
        // "a" written by the SWAP tagged 5, then b, then "a" again by the
        // SWAP tagged 9: a late resend of a SWAP worked out on the first
        // "a" must not apply over the second (ABA).
        let first_a = swap_hash(b"a", write_tag(5));
        let written_again = Entry {
            version: write_tag(9),
            ..record(b"a", 300)
        };
        let want = Want::Write(Some(b"a+1".to_vec()));
        let mut rounds = Proposals::new(3);
        let round = round_of(&rounds.start(ask(first_a, want.clone(), 1), A.to_vec(), Stamp(400), 0).1);
        rounds.vote(round, 0, promise(Some(written_again.clone())), 1);
        let (_, answer) = rounds.vote(round, 1, promise(Some(written_again.clone())), 1);
        let current = Some((b"a".to_vec(), write_tag(9)));
        assert_eq!(answer, Next::Answer(Reply::Conflict { current }));

        let mut rounds = Proposals::new(3);
        let second_a = swap_hash(b"a", write_tag(9));
        let round = round_of(&rounds.start(ask(second_a, want, 2), A.to_vec(), Stamp(400), 0).1);
        rounds.vote(round, 0, promise(Some(written_again.clone())), 1);
        let (_, accept) = rounds.vote(round, 1, promise(Some(written_again)), 1);
        assert_eq!(
            accepted_entry(&accept).value,
            b"a+1",
            "worked out on this very record: it holds"
        );
    }

    #[test]
    fn a_write_whose_item_changed_since_it_was_sent_stops_with_an_unknown_outcome() {
        // A blind write decided on "v", sent, refused: another proposer came.
        let refused_once = |rounds: &mut Proposals| {
            let want = Want::Write(Some(b"mine".to_vec()));
            let round = round_of(&rounds.start(ask(SWAP_ANY, want, 1), A.to_vec(), Stamp(100), 0).1);
            rounds.vote(round, 0, promise(Some(record(b"v", 9))), 1);
            let round = round_of(&rounds.vote(round, 1, promise(Some(record(b"v", 9))), 1).1);
            rounds.vote(round, 0, refuse(150, false), 2);
            let id = rounds.vote(round, 1, refuse(150, false), 2).0.unwrap();
            round_of(&rounds.retry(id, Stamp(151), 30))
        };
        let mut rounds = Proposals::new(1);
        let round = refused_once(&mut rounds);
        rounds.vote(round, 0, promise(Some(record(b"theirs", 150))), 31);
        let (_, answer) = rounds.vote(round, 1, promise(Some(record(b"theirs", 150))), 31);
        assert_eq!(
            answer,
            Next::Answer(Reply::Code(ErrorCode::InternalFailure)),
            "never applied again over a newer write: it may have been taken and overwritten"
        );
        let mut rounds = Proposals::new(1);
        let round = refused_once(&mut rounds);
        rounds.vote(round, 0, promise(Some(record(b"v", 150))), 31);
        let accept = rounds.vote(round, 1, promise(Some(record(b"v", 9))), 31).1;
        assert_eq!(
            accepted_entry(&accept).value,
            b"mine",
            "the item it decided on, re-stamped: still its to change"
        );
    }

    #[test]
    fn rounds_of_one_key_run_one_at_a_time() {
        let mut rounds = Proposals::new(1);
        let write = |n: u8| Want::Write(Some(vec![n]));
        let first = rounds.start(ask(SWAP_ANY, write(1), 1), A.to_vec(), Stamp(100), 0).1;
        assert_eq!(
            rounds.start(ask(SWAP_ANY, write(2), 2), A.to_vec(), Stamp(101), 0).1,
            Next::Wait
        );
        assert!(rounds.knows(2));
        assert!(
            rounds
                .tick(5_000)
                .iter()
                .all(|(_, next)| !matches!(next, Next::Retry { .. }))
        );
        let id = round_of(&first) >> ATTEMPT_BITS;
        let (ask, queued) = rounds.finish(id).unwrap();
        assert_eq!(ask.id_hash, 1);
        let queued = queued.expect("the second starts now");
        assert!(matches!(
            rounds.retry(queued, Stamp(102), 10),
            Next::Send(Internal::Prepare { .. }, _)
        ));
    }

    #[test]
    fn a_majority_without_room_answers_out_of_space_and_silence_gives_up() {
        let mut rounds = Proposals::new(1);
        let want = Want::Write(Some(b"big".to_vec()));
        let round = round_of(
            &rounds
                .start(ask(SWAP_ANY, want.clone(), 1), A.to_vec(), Stamp(100), 0)
                .1,
        );
        rounds.vote(round, 0, promise(None), 1);
        let round = round_of(&rounds.vote(round, 1, promise(None), 1).1);
        rounds.vote(round, 0, refuse(0, true), 2);
        let (_, answer) = rounds.vote(round, 1, refuse(0, true), 2);
        assert_eq!(answer, Next::Answer(Reply::Code(ErrorCode::OutOfSpace)));

        let mut rounds = Proposals::new(1);
        rounds.start(ask(SWAP_ANY, want, 2), A.to_vec(), Stamp(100), 0);
        let resend = rounds.tick(RESEND_MS);
        assert!(matches!(&resend[..], [(_, Next::Send(Internal::Prepare { .. }, to))] if to == &A.to_vec()));
        assert!(matches!(rounds.tick(GIVE_UP_MS)[..], [(_, Next::GiveUp)]));
    }

    #[test]
    fn votes_from_outside_the_acceptors_count_for_nothing() {
        let mut rounds = Proposals::new(1);
        let round = round_of(&rounds.start(ask(SWAP_ANY, Want::Read, 1), A.to_vec(), Stamp(100), 0).1);
        assert_eq!(rounds.vote(round, 7, promise(None), 1).1, Next::Wait);
        assert_eq!(rounds.vote(round, 0, promise(None), 1).1, Next::Wait);
        assert!(matches!(rounds.vote(round, 1, promise(None), 1).1, Next::Answer(_)));
    }
}

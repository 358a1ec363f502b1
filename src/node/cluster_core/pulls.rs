//! Which buckets this node pulls, from whom, and when it is caught up.
//!
//! Whenever this node becomes a replica of a bucket it did not hold (a
//! peer's death: [`PullKind::Gained`]) or starts or wakes from a suspension
//! ([`PullKind::CatchUp`], every bucket it holds), it pulls the bucket from
//! live holders, a window of requests per source at a time, and the shard
//! merges the entries (newest stamp wins, tombstones included, so nothing
//! deleted comes back and nothing newer is overwritten). A bucket is asked
//! of one source first, the best current one, and of the others only once
//! that pull is done: each pull carries this node's digest, so a source
//! whose copy is now the same answers "unchanged" and the bucket crosses
//! the network about once, not once per source. While catching up
//! its whole store is suspect: until those pulls are done it gossips
//! itself as not ready and coordinates nothing. A bucket gained from a
//! dead peer does not make it unready: rendezvous placement appends the
//! new replica *after* the surviving ones, so a survivor coordinates.

use super::ClusterCore;
use super::compares::{Asked, Compares};
use crate::cluster::internal::Internal;
use crate::cluster::ring::{Liveness, View};
use crate::invariant;
use crate::log;
use crate::node::context::Channel;
use crate::storage::hash::{BUCKETS, BucketId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Bucket pulls in flight at once per source (flow control for the
/// holders and us).
const PULL_WINDOW_PER_SOURCE: usize = 16;
/// A pull with no completion by then is asked again (of the same source).
const PULL_TIMEOUT_MS: u64 = 2_000;
/// For this long after a universe is taken, every bucket gained is
/// pulled once more before it is coordinated (peers take a universe at
/// different moments, and gossip brings it to those a reload missed).
const UNIVERSE_RECENT_MS: u64 = 30_000;
/// A bucket whose copy here lacks writes the store had no room for is
/// pulled again after this long (what it lacks may fit by then: a newer
/// value no larger than the old, or room freed by deletes).
const INCOMPLETE_RETRY_MS: u64 = 2_000;
/// How long a catching-up node waits for every live peer to have heard it
/// is back before it pulls anyway (a peer behind a one-way partition may
/// not hear it for long, and the data should not wait on it).
const SETTLE_WAIT_MS: u64 = 1_000;

/// Why a bucket is pulled, which decides from whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PullKind {
    /// A peer died and this node became a replica: the surviving replicas
    /// (ranked before it) have every acknowledged write.
    Gained,
    /// After a start or a suspension: writes this node missed sit on the
    /// nodes that stood in for it, the best-ranked live nodes that are not
    /// behind (nodes suspended with this one are alive but behind). Pull
    /// from the replicas and from the 2N best-ranked nodes not behind.
    CatchUp,
}

/// What the cluster core knows of pulls: the buckets to pull, the queue
/// per source, the pulls under way, and the buckets to pull once more.
pub(super) struct PullState {
    /// Per slot: counted alive at least once since this node started.
    pub(super) heard_since_start: Vec<bool>,
    pub(super) to_pull: BTreeMap<BucketId, PullKind>,
    /// Per source: the buckets to ask of it, in order, and how many pulls
    /// it has not answered.
    pub(super) from_source: Vec<VecDeque<(BucketId, PullKind)>>,
    pub(super) in_flight: Vec<usize>,
    /// The buckets of a catch-up asked of a source by their digests
    /// before any is pulled from it (see [`super::compares`]).
    pub(super) compares: Compares,
    /// Per bucket asked of its first source: the other sources, asked once
    /// that pull is over (see [`super::pulls`]).
    pub(super) after_first: BTreeMap<BucketId, (PullKind, Vec<usize>)>,
    /// The pulls `after_first` holds, counted.
    pub(super) after_first_pulls: usize,
    /// By request id (ordered, so a run replays the same way).
    pub(super) pulling: BTreeMap<u64, PullInFlight>,
    pub(super) next_request: u64,
    /// When this node last started catching up on every bucket (at start,
    /// after a pause; monotonic ms); pulls wait a bounded time from then
    /// for membership to settle.
    pub(super) catch_up_since_ms: u64,
    /// Buckets pulled before membership settled while a peer that ranks
    /// among their replicas or stand-ins had not heard this node was back
    /// (it may have sent writes elsewhere since): pulled once more after.
    pub(super) pull_again: BTreeSet<BucketId>,
    /// Buckets pulled while a peer ranked for them held another universe:
    /// pulled again, and coordinated, only once every peer holds this
    /// node's (see [`super::pulls`]).
    pub(super) until_universe_agrees: BTreeSet<BucketId>,
    /// Buckets gained, with when they are pulled once more before this
    /// node coordinates them (see [`super::pulls`]).
    pub(super) recheck: BTreeMap<BucketId, u64>,
}

impl PullState {
    /// A pull now under way.
    fn start(&mut self, request: u64, pull: PullInFlight) {
        if let Some(count) = self.in_flight.get_mut(pull.source) {
            *count += 1;
            self.pulling.insert(request, pull);
        }
        self.check_invariants();
    }

    /// A pull answered or given up.
    fn take(&mut self, request: u64) -> Option<PullInFlight> {
        let pull = self.pulling.remove(&request)?;
        invariant!(
            self.in_flight[pull.source] > 0,
            "a pull in flight from node {} that counts none",
            pull.source
        );
        self.in_flight[pull.source] -= 1;
        self.check_invariants();
        Some(pull)
    }

    /// The sources of `bucket` waiting for its first pull, taken out.
    fn take_others(&mut self, bucket: BucketId) -> Option<(PullKind, Vec<usize>)> {
        let taken = self.after_first.remove(&bucket)?;
        self.after_first_pulls -= taken.1.len();
        self.check_invariants();
        Some(taken)
    }

    /// Cheap enough for every change (a full count per source would cost
    /// pulls x sources each time, too much during a catch-up).
    fn check_invariants(&self) {
        invariant!(
            self.in_flight.iter().sum::<usize>() == self.pulling.len(),
            "{} pulls counted in flight, {} under way",
            self.in_flight.iter().sum::<usize>(),
            self.pulling.len()
        );
        invariant!(
            !self.after_first.is_empty() || self.after_first_pulls == 0,
            "{} pulls counted after a first, none held",
            self.after_first_pulls
        );
    }

    /// For a roster of `n` slots.
    pub(super) fn new(n: usize) -> PullState {
        PullState {
            heard_since_start: vec![false; n],
            to_pull: BTreeMap::new(),
            from_source: vec![VecDeque::new(); n],
            in_flight: vec![0; n],
            compares: Compares::new(n),
            after_first: BTreeMap::new(),
            after_first_pulls: 0,
            pulling: BTreeMap::new(),
            next_request: 1,
            catch_up_since_ms: 0,
            pull_again: BTreeSet::new(),
            until_universe_agrees: BTreeSet::new(),
            recheck: BTreeMap::new(),
        }
    }
}

/// Counters of what this node has pulled since it started.
#[derive(Clone, Copy, Debug)]
pub(super) struct TransferTotals {
    buckets: u64,
    entries: u64,
    bytes: u64,
}

/// A pull asked of a source and not answered yet.
pub(super) struct PullInFlight {
    bucket: BucketId,
    kind: PullKind,
    source: usize,
    deadline_ms: u64,
}

impl ClusterCore {
    /// Marks the buckets of `view` this node should pull: newly held ones,
    /// or every held one to catch up. Returns how many.
    pub(super) fn queue_pulls(&mut self, view: &View, catch_up: bool) -> usize {
        if catch_up {
            // Every bucket is asked again, of the sources this view names.
            self.pull_state.catch_up_since_ms = self.now_ms();
            self.pull_state.pull_again.clear();
            self.pull_state.from_source.iter_mut().for_each(VecDeque::clear);
            self.pull_state.compares.clear();
            self.pull_state.after_first.clear();
            self.pull_state.after_first_pulls = 0;
        }
        let me = self.ctx.self_index;
        let mut queued = 0;
        for bucket in 0..BUCKETS {
            let holds = view.holds(me, bucket as BucketId);
            if holds && catch_up {
                self.pull_state.to_pull.insert(bucket as BucketId, PullKind::CatchUp);
                queued += 1;
            } else if holds && !self.held[bucket] {
                self.pull_state
                    .to_pull
                    .entry(bucket as BucketId)
                    .or_insert(PullKind::Gained);
                self.ctx.pulling[bucket].store(true, Ordering::Relaxed);
                if self.may_be_written_past() {
                    let again_at = self.now_ms() + super::RECHECK_AFTER_MS;
                    self.pull_state.recheck.insert(bucket as BucketId, again_at);
                }
                queued += 1;
            }
            self.held[bucket] = holds;
        }
        queued
    }

    /// Notes the peers `now` counts alive for the first time since this
    /// node started. While it catches up (`catching_up`), such a peer (in a
    /// big cluster heard a few rounds after the start) may hold writes to
    /// the buckets it ranks for, which the pulls so far did not ask it
    /// for: it is asked for them too before this node is ready. A peer
    /// heard before that comes back (a partition, a pause) is not: what
    /// it missed or took meanwhile is pulled by the pass after membership
    /// settles.
    pub(super) fn pull_from_first_heard(&mut self, now: &View, catching_up: bool) {
        let me = self.ctx.self_index;
        let alive = &now.liveness.alive;
        let newly: Vec<u8> = (0..alive.len().min(self.pull_state.heard_since_start.len()))
            .filter(|&n| alive[n] && !self.pull_state.heard_since_start[n] && n != me)
            .map(|n| n as u8)
            .collect();
        for &n in &newly {
            self.pull_state.heard_since_start[usize::from(n)] = true;
        }
        if newly.is_empty() || !catching_up {
            return;
        }
        // A bucket still asked of its first source asks the new peer after
        // it, with the digest it has by then (so the bucket crosses the
        // network about once); one done asks it now.
        let mut asked_first = vec![false; BUCKETS];
        let queued = (self.pull_state.from_source.iter()).flat_map(|queue| queue.iter().map(|&(bucket, _)| bucket));
        let pulling = self.pull_state.pulling.values().map(|pull| pull.bucket);
        for bucket in queued.chain(pulling).chain(self.pull_state.compares.buckets()) {
            asked_first[usize::from(bucket)] = true;
        }
        for bucket in 0..BUCKETS as BucketId {
            // A bucket not assigned to its sources yet will be, the new node
            // among them.
            if !now.holds(me, bucket) || self.pull_state.to_pull.contains_key(&bucket) {
                continue;
            }
            let ranked = now.preference(bucket).iter().chain(now.stand_ins(bucket));
            for node in ranked.filter(|n| newly.contains(n)).map(|&n| usize::from(n)) {
                if let Some((_, others)) = self.pull_state.after_first.get_mut(&bucket) {
                    others.push(node);
                    self.pull_state.after_first_pulls += 1;
                } else if asked_first[usize::from(bucket)] {
                    self.pull_state
                        .after_first
                        .insert(bucket, (PullKind::CatchUp, vec![node]));
                    self.pull_state.after_first_pulls += 1;
                } else {
                    self.queue_for(node, (bucket, PullKind::CatchUp));
                }
            }
        }
    }

    pub(super) fn transfer_totals(&self) -> TransferTotals {
        let counters = &self.ctx.counters;
        TransferTotals {
            buckets: counters.buckets_pulled.load(Ordering::Relaxed),
            entries: counters.entries_pulled.load(Ordering::Relaxed),
            bytes: counters.transfer_bytes_received.load(Ordering::Relaxed),
        }
    }

    /// A shard received every chunk of pull `request`.
    pub(super) fn pull_done(&mut self, request: u64, entries: usize, now: u64) {
        if let Some(pull) = self.take_pull(request) {
            self.ask_the_others(pull.bucket);
            self.pulled(pull.bucket);
            self.suspect[usize::from(pull.bucket)] = false;
            self.ctx.counters.buckets_pulled.fetch_add(1, Ordering::Relaxed);
            (self.ctx.counters.entries_pulled).fetch_add(entries as u64, Ordering::Relaxed);
            self.step_pulls(now);
        }
    }

    /// A pull answered or given up.
    fn take_pull(&mut self, request: u64) -> Option<PullInFlight> {
        self.pull_state.take(request)
    }

    /// The bucket's pull from its first source is over (done, or that
    /// source died): the other sources are asked now. With none left, its
    /// copy here is the best there is, and this node may coordinate it.
    fn ask_the_others(&mut self, bucket: BucketId) {
        match self.take_others(bucket) {
            Some((kind, others)) => {
                for source in others {
                    self.queue_for(source, (bucket, kind));
                }
            }
            None => self.pulled(bucket),
        }
    }

    /// The sources of `bucket` waiting for its first pull, taken out.
    fn take_others(&mut self, bucket: BucketId) -> Option<(PullKind, Vec<usize>)> {
        self.pull_state.take_others(bucket)
    }

    /// The bucket's copy here is as good as its sources' (or no source is
    /// left): this node may coordinate it, unless a peer ranked for it
    /// held another universe when it was asked for (that peer may still
    /// coordinate it by the old universe, writing to the old holders
    /// only): then only once it is pulled again after all agree; or
    /// unless the store refused some of its entries (see
    /// [`ClusterCore::incomplete`]).
    fn pulled(&self, bucket: BucketId) {
        let waits = self.pull_state.until_universe_agrees.contains(&bucket)
            || self.incomplete.contains_key(&bucket)
            || self.pull_state.recheck.contains_key(&bucket);
        if !waits {
            self.ctx.pulling[usize::from(bucket)].store(false, Ordering::Relaxed);
        }
    }

    /// Whether a node could still be writing `bucket`, which this node
    /// just gained, past it: soon after a universe change, peers take the
    /// new universe at different moments, and one that has not yet may
    /// still coordinate the bucket by the old one, writing to the old
    /// replicas only. (After a death the same can happen for the time
    /// gossip takes to spread it, seed 141 of the resize mix; holding a
    /// node's buckets back for that made writes wait at every crash, in
    /// the simulator's scenarios and a 20-node real-process test, so it is
    /// not done: open, see docs/reliability.md.)
    fn may_be_written_past(&self) -> bool {
        self.universe_recent()
    }

    /// Whether this node took a universe less than [`UNIVERSE_RECENT_MS`] ago.
    fn universe_recent(&self) -> bool {
        (self.universe_taken_ms).is_some_and(|taken| self.now_ms() < taken + UNIVERSE_RECENT_MS)
    }

    /// Queues once more, as they come due, the buckets gained
    /// [`super::RECHECK_AFTER_MS`] ago. This node may have learned of a death (or a universe)
    /// before a replica ranked ahead of it did, and pulled from it while
    /// it still wrote past this node, to the replicas of its own view: by
    /// now its view is this node's, and the second pull (with this node's
    /// digest, so an unchanged copy sends nothing) brings what it wrote
    /// meanwhile. Until then this node does not coordinate the bucket.
    fn recheck_gained(&mut self, view: &View, now: u64) {
        let due: Vec<BucketId> = (self.pull_state.recheck.iter())
            .filter(|&(_, &at)| at <= now)
            .map(|(&bucket, _)| bucket)
            .collect();
        for bucket in due {
            self.pull_state.recheck.remove(&bucket);
            if view.holds(self.ctx.self_index, bucket) {
                self.pull_state.to_pull.entry(bucket).or_insert(PullKind::Gained);
            } else {
                self.pulled(bucket);
            }
        }
    }

    /// A shard could not store an entry of `bucket` (its store is full):
    /// the copy here lacks a write its replicas have. Until it is pulled
    /// whole again this node coordinates nothing of it and gossips itself
    /// pulling (so a current replica coordinates, and its writes reach the
    /// bucket's holders too); it is pulled again every
    /// [`INCOMPLETE_RETRY_MS`]. It does not make the node unready: its
    /// other buckets are whole.
    pub(super) fn incomplete(&mut self, bucket: BucketId, now: u64) {
        if !self.ctx.view().holds(self.ctx.self_index, bucket) {
            // A stand-in's or a leaving node's copy: the replicas have it.
            return;
        }
        self.ctx.pulling[usize::from(bucket)].store(true, Ordering::Relaxed);
        self.incomplete.entry(bucket).or_insert(now + INCOMPLETE_RETRY_MS);
        if self.membership.set_pulling(true) {
            self.publish(false);
        }
    }

    /// Queues the incomplete buckets that are due.
    fn retry_incomplete(&mut self, view: &View, now: u64) {
        let due: Vec<BucketId> = (self.incomplete.iter())
            .filter(|&(_, &at)| at <= now)
            .map(|(&bucket, _)| bucket)
            .collect();
        for bucket in due {
            self.incomplete.remove(&bucket);
            if view.holds(self.ctx.self_index, bucket) {
                self.pull_state.to_pull.entry(bucket).or_insert(PullKind::Gained);
            } else {
                self.ctx.pulling[usize::from(bucket)].store(false, Ordering::Relaxed);
            }
        }
    }

    /// Once every live peer holds this node's universe, pulls again the
    /// buckets asked for while some did not; done, they may be coordinated.
    fn pull_again_once_the_universe_agrees(&mut self) {
        if self.pull_state.until_universe_agrees.is_empty() || self.membership.universe_split() {
            return;
        }
        for bucket in std::mem::take(&mut self.pull_state.until_universe_agrees) {
            self.pull_state.to_pull.entry(bucket).or_insert(PullKind::Gained);
        }
    }

    /// Pulls not done yet, counted once per source, and those to be done
    /// again once the universe agrees.
    fn pulls_pending(&self) -> usize {
        let known = self.ctx.roster.len();
        let queued: usize = self.pull_state.from_source[..known].iter().map(VecDeque::len).sum();
        self.pull_state.to_pull.len()
            + queued
            + self.pull_state.compares.pending()
            + self.pull_state.pulling.len()
            + self.pull_state.after_first_pulls
            + self.pull_state.until_universe_agrees.len()
    }

    /// Issues pulls up to the windows; marks the node ready when none remain.
    pub(super) fn step_pulls(&mut self, now: u64) {
        if now < self.pulls_wait_until_ms {
            return self.publish_pending();
        }
        let view = self.ctx.view();
        self.retry_incomplete(&view, now);
        self.recheck_gained(&view, now);
        self.pull_again_once_the_universe_agrees();
        self.ask_again_what_timed_out(&view, now);
        let unsettled: Vec<usize> = self.membership.unsettled_peers().collect();
        let settled = unsettled.is_empty();
        // After a start or a suspension, pulls wait until every live peer
        // has been heard from and has heard from this node: only then is it
        // known who stood in, and no write goes to stand-ins any more. They
        // wait a bounded time: pulling early makes the data safe sooner,
        // and a second pass after settling picks up what was missed.
        if settled || now >= self.pull_state.catch_up_since_ms + SETTLE_WAIT_MS {
            self.assign_sources(&view, &unsettled);
        }
        self.issue_pulls(&view, now);
        self.publish_pending();
        if self.pulls_pending() == 0 && settled {
            self.caught_up(now);
        }
        // Buckets to pull once more keep this node from being current
        // (peers route around it), not from being ready.
        let pulling = self.pulls_pending() > 0 || !self.incomplete.is_empty() || !self.pull_state.recheck.is_empty();
        if self.membership.set_pulling(pulling) {
            self.publish(false);
        }
    }

    fn publish_pending(&self) {
        let pending = self.pulls_pending() as u64;
        self.ctx.counters.set(&self.ctx.counters.pulls_pending, pending);
    }

    /// A pull unanswered by its deadline is asked again of the same
    /// source, unless it died meanwhile (what it held is gone with it, or
    /// on the others asked too).
    fn ask_again_what_timed_out(&mut self, view: &View, now: u64) {
        let expired: Vec<u64> = (self.pull_state.pulling.iter())
            .filter(|(_, pull)| now >= pull.deadline_ms)
            .map(|(&request, _)| request)
            .collect();
        for request in expired {
            let Some(pull) = self.take_pull(request) else {
                continue;
            };
            if view.liveness.alive[pull.source] {
                self.pull_state.from_source[pull.source].push_front((pull.bucket, pull.kind));
            } else {
                self.ask_the_others(pull.bucket);
            }
        }
        // An unanswered compare's buckets are pulled from its source one by
        // one, as before compares: a lost datagram costs those pulls, and a
        // source that does not take compares (a node of an older build
        // during an upgrade) is still caught up from.
        for (source, buckets) in self.pull_state.compares.timed_out(now) {
            if view.liveness.alive[source] {
                self.pull_state.from_source[source].extend(buckets);
            } else {
                buckets.into_iter().for_each(|(bucket, _)| self.ask_the_others(bucket));
            }
        }
    }

    /// Queues `bucket` for `source`: a catch-up's bucket (likely the same
    /// there) is compared first, any other pulled.
    fn queue_for(&mut self, source: usize, (bucket, kind): Asked) {
        if kind == PullKind::CatchUp && !self.suspect[usize::from(bucket)] {
            self.pull_state.compares.queue(source, (bucket, kind));
        } else if let Some(queue) = self.pull_state.from_source.get_mut(source) {
            queue.push_back((bucket, kind));
        }
    }

    /// Asks `source` which of the buckets queued for its compare differ
    /// from this node's copies, unless a compare with it is in flight.
    fn issue_compare(&mut self, source: usize, now: u64) {
        let request = self.pull_state.next_request;
        let Some(buckets) = self.pull_state.compares.start(source, request, now) else {
            return;
        };
        self.pull_state.next_request += 1;
        let digests = (buckets.iter())
            .map(|&(bucket, _)| (bucket, self.ctx.digests[usize::from(bucket)].load(Ordering::Relaxed)))
            .collect();
        self.ctx
            .send(&*self.io, source, &Internal::Compare { request, digests });
    }

    /// `from` answered compare `request`: the buckets it names are pulled
    /// from it; the others are the same there, pulled from it as an
    /// "unchanged" pull would be.
    pub(super) fn compared(&mut self, from: usize, request: u64, differing: &[BucketId], now: u64) {
        let Some(buckets) = self.pull_state.compares.answered(from, request) else {
            return;
        };
        let me = self.ctx.self_index;
        let view = self.ctx.view();
        let differing: BTreeSet<BucketId> = differing.iter().copied().collect();
        for (bucket, kind) in buckets {
            if !view.holds(me, bucket) {
                // No longer this node's: nobody is asked for it.
                self.take_others(bucket);
            } else if differing.contains(&bucket) {
                self.pull_state.from_source[from].push_back((bucket, kind));
            } else {
                self.ask_the_others(bucket);
                self.pulled(bucket);
                self.ctx.counters.buckets_pulled.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.step_pulls(now);
    }

    /// Queues each bucket to pull for every source it is pulled from.
    fn assign_sources(&mut self, view: &View, unsettled: &[usize]) {
        while let Some((bucket, kind)) = self.pull_state.to_pull.pop_first() {
            if !view.holds(self.ctx.self_index, bucket) {
                continue;
            }
            let ranked: Vec<usize> = (view.preference(bucket).iter())
                .chain(view.stand_ins(bucket))
                .map(|&n| usize::from(n))
                .collect();
            if ranked.iter().any(|n| unsettled.contains(n)) {
                self.pull_state.pull_again.insert(bucket);
            }
            if ranked.iter().any(|&n| self.membership.holds_another_universe(n)) {
                self.pull_state.until_universe_agrees.insert(bucket);
            }
            let sources = self.sources(view, bucket, kind);
            let Some(&first) = (sources.iter())
                .find(|&&n| view.is_current(n))
                .or_else(|| sources.first())
            else {
                // Nobody to pull from: its copy here is all there is.
                self.pulled(bucket);
                continue;
            };
            self.queue_for(first, (bucket, kind));
            let others: Vec<usize> = sources.into_iter().filter(|&n| n != first).collect();
            self.take_others(bucket);
            if !others.is_empty() {
                self.pull_state.after_first_pulls += others.len();
                self.pull_state.after_first.insert(bucket, (kind, others));
            }
        }
    }

    /// Asks each source for what is queued for it, up to its window: one
    /// that does not answer (stopped, cut off, not yet counted dead) holds
    /// up only what is asked of it.
    fn issue_pulls(&mut self, view: &View, now: u64) {
        for source in 0..self.ctx.roster.len() {
            if !view.liveness.alive[source] {
                // Gone: what it was to be asked first goes to the others.
                let queued: Vec<BucketId> = self.pull_state.from_source[source]
                    .drain(..)
                    .map(|(bucket, _)| bucket)
                    .collect();
                let asked = self
                    .pull_state
                    .compares
                    .take_all(source)
                    .into_iter()
                    .map(|(bucket, _)| bucket);
                for bucket in queued.into_iter().chain(asked) {
                    self.ask_the_others(bucket);
                }
                continue;
            }
            self.issue_compare(source, now);
            while self.pull_state.in_flight[source] < PULL_WINDOW_PER_SOURCE {
                let Some((bucket, kind)) = self.pull_state.from_source[source].pop_front() else {
                    break;
                };
                if !view.holds(self.ctx.self_index, bucket) {
                    // No longer this node's: nobody is asked for it.
                    self.take_others(bucket);
                } else if !self.ask(source, bucket, kind, now) {
                    // The transfer layer is full: asked again next round.
                    self.pull_state.from_source[source].push_front((bucket, kind));
                    break;
                }
            }
        }
    }

    /// Asks `source` for `bucket`; false when the transfer layer refuses
    /// the request (its queues are full).
    fn ask(&mut self, source: usize, bucket: BucketId, kind: PullKind, now: u64) -> bool {
        let request = self.pull_state.next_request;
        self.pull_state.next_request += 1;
        // With this node's digest of the bucket: a source whose copy is the
        // same sends nothing. A bucket whose journal records were damaged
        // is pulled whole.
        let digest =
            (!self.suspect[usize::from(bucket)]).then(|| self.ctx.digests[usize::from(bucket)].load(Ordering::Relaxed));
        let pull = Internal::Pull {
            request,
            bucket,
            digest,
        };
        let frame = (self.ctx).encode(source, Channel::Stream, &pull);
        if !self.io.stream(source, vec![frame]) {
            return false;
        }
        let pull = PullInFlight {
            bucket,
            kind,
            source,
            deadline_ms: now + PULL_TIMEOUT_MS,
        };
        self.pull_state.start(request, pull);
        true
    }

    /// Every pull done and membership settled: pulls again what was pulled
    /// before it settled, or else logs the transfer and becomes ready.
    fn caught_up(&mut self, now: u64) {
        if !self.pull_state.pull_again.is_empty() {
            let again = std::mem::take(&mut self.pull_state.pull_again);
            log!(
                "pull_again",
                "membership settled after pulls began: pulling {} buckets once more",
                again.len()
            );
            (self.pull_state.to_pull).extend(again.into_iter().map(|bucket| (bucket, PullKind::CatchUp)));
            return;
        }
        if let Some((started, before)) = self.pulls_started.take() {
            let after = self.transfer_totals();
            log!(
                "transfer_done",
                "transfer done in {} ms: {} buckets, {} entries pulled, {} bytes received",
                now.saturating_sub(started),
                after.buckets - before.buckets,
                after.entries - before.entries,
                after.bytes - before.bytes
            );
        }
        if !self.membership.is_ready() {
            self.membership.set_ready(true);
            log!("ready", "coordinating my buckets");
            self.publish(false);
        }
    }

    /// The live nodes to pull a bucket from (see [`PullKind`]).
    fn sources(&mut self, view: &View, bucket: BucketId, kind: PullKind) -> Vec<usize> {
        let me = self.ctx.self_index;
        match kind {
            PullKind::Gained => {
                let before_me: Vec<usize> = (view.preference(bucket).iter())
                    .map(|&n| usize::from(n))
                    .take_while(|&n| n != me)
                    .collect();
                let mut sources: Vec<usize> = if before_me.is_empty() {
                    view.other_replicas(bucket).collect()
                } else {
                    before_me
                };
                // And the nodes that hold it whole now (where the other
                // replicas are new too, only they have it).
                sources.extend(
                    view.holders(bucket)
                        .iter()
                        .map(|&n| usize::from(n))
                        .filter(|&n| n != me),
                );
                sources.sort_unstable();
                sources.dedup();
                sources
            }
            PullKind::CatchUp => {
                // The replicas, the nodes that hold it whole now (known by
                // their readiness, which gossip spreads as soon as their
                // liveness: a node that joined is not one, even where its
                // *behind* has not reached this node yet), and the nodes
                // ranked for it among those not behind (those that stood
                // in while this node was away).
                let current = self.up_to_date_view(view);
                let mut sources: Vec<usize> = (view.preference(bucket).iter())
                    .chain(view.holders(bucket))
                    .chain(current.preference(bucket))
                    .chain(current.stand_ins(bucket))
                    .map(|&n| usize::from(n))
                    .filter(|&n| n != me)
                    .collect();
                sources.sort_unstable();
                sources.dedup();
                sources
            }
        }
    }

    /// Placement among the live nodes that are not behind (their data is current).
    fn up_to_date_view(&mut self, view: &View) -> Arc<View> {
        let (placement, me) = (&self.placement, self.ctx.self_index);
        let current = self.up_to_date_view.get_or_insert_with(|| {
            let live = &view.liveness;
            let current: Vec<bool> = (0..live.alive.len())
                .map(|n| live.alive[n] && !live.behind[n])
                .collect();
            Arc::new(placement.view(me, Liveness::ready(current)))
        });
        current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(bucket: BucketId, source: usize) -> PullInFlight {
        PullInFlight {
            bucket,
            kind: PullKind::Gained,
            source,
            deadline_ms: 0,
        }
    }

    #[test]
    fn pulls_under_way_are_counted_per_source_until_taken() {
        let mut state = PullState::new(3);
        state.start(1, pull(5, 2));
        state.start(2, pull(6, 2));
        state.start(3, pull(7, 0));
        assert_eq!(state.in_flight, [1, 0, 2]);
        assert_eq!(state.take(2).map(|p| p.bucket), Some(6));
        assert!(state.take(2).is_none(), "taken once");
        assert_eq!(state.in_flight, [1, 0, 1]);
        state.start(4, pull(8, 9));
        assert!(state.take(4).is_none(), "a source outside the roster is never started");
    }

    #[test]
    fn the_sources_after_a_first_pull_are_taken_out_with_their_count() {
        let mut state = PullState::new(4);
        state.after_first.insert(5, (PullKind::CatchUp, vec![1, 2]));
        state.after_first_pulls = 2;
        let (kind, others) = state.take_others(5).unwrap();
        assert_eq!((kind, others), (PullKind::CatchUp, vec![1, 2]));
        assert_eq!(state.after_first_pulls, 0);
        assert!(state.take_others(5).is_none());
    }
}

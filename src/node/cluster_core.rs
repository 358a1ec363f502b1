//! The cluster core: drives the membership state machine, publishes the
//! routing view, and keeps this node's buckets complete. A state machine:
//! [`ClusterCore::round`] every [`ROUND_MS`] with the gossip that arrived
//! meanwhile, [`ClusterCore::handle`] for what shards report; time from the
//! node's clock, messages out through the node's I/O and shard queues.
//!
//! Bucket sync: whenever this node becomes a replica of a bucket it did not
//! hold (start, restart, a peer's death) or wakes from a suspension, it pulls
//! that bucket from a live holder, a window of requests at a time, and merges
//! the entries (newest stamp wins, tombstones included, so nothing deleted
//! comes back and nothing newer is overwritten). After a start or a
//! suspension its whole store is suspect: until those pulls are done it
//! gossips itself as not ready and coordinates nothing. A bucket gained from
//! a dead peer does not make it unready: rendezvous placement appends the
//! new replica *after* the surviving ones, so a survivor coordinates. Periodically, a ready
//! node drops buckets it no longer replicates once their replicas are all
//! ready (after pushing them to those replicas), and the tombstones every
//! replica is known to hold (see [`crate::cluster::agreement`]).

use crate::cluster::agreement::WHOLE_GRACE_MS;
use crate::cluster::internal::Internal;
use crate::cluster::membership::{Membership, Pause};
use crate::cluster::ring::{Liveness, Placement, View};
use crate::log;
use crate::node::context::{Away, Channel, NodeContext, NodeIo};
use crate::node::messages::{ClusterMsg, ShardHandle, ShardMsg};
use crate::storage::hash::{BUCKETS, BucketId};
use crate::storage::memory::{FULL_ENTER_PERCENT, FULL_LEAVE_PERCENT, MemoryBudget};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use crate::cluster::membership::ROUND_MS;
/// Silence after which a peer is declared dead.
pub const FAILURE_MS_DEFAULT: u64 = 3_000;
/// Time after start before this node trusts its view enough to decide which
/// buckets have no holder to pull from.
pub const STARTUP_GRACE_MS: u64 = 1_200;
/// Bucket pulls in flight at once per source (flow control for the
/// holders and us).
const SYNC_WINDOW_PER_SOURCE: usize = 16;
/// A pull with no completion by then is asked again (maybe of another holder).
const SYNC_TIMEOUT_MS: u64 = 2_000;
/// How long a re-syncing node waits for every live peer to have heard it
/// is back before it pulls anyway (a peer behind a one-way partition may
/// not hear it for long, and the data should not wait on it).
const SETTLE_WAIT_MS: u64 = 1_000;
/// How often this node compares its buckets with the next peers'.
const ANTI_ENTROPY_INTERVAL_MS: u64 = 500;
/// Every peer sharing a bucket is compared with at least this often: one
/// peer per round up to 240 nodes. Each digest datagram costs sender and
/// receiver about as much as a gossip datagram, and at 150 nodes on one
/// host every datagram a node handles per second costs 1 % of a core.
const ANTI_ENTROPY_CYCLE_MS: u64 = 120_000;
/// How often buckets no longer replicated here are dropped.
const RETAIN_INTERVAL_MS: u64 = 5_000;

/// Why a bucket is pulled, which decides from whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PullKind {
    /// A peer died and this node became a replica: the surviving replicas
    /// (ranked before it) have every acknowledged write.
    Gained,
    /// After a start or a suspension: writes this node missed sit on the
    /// nodes that stood in for it, the best-ranked live nodes that are not
    /// behind (nodes suspended with this one are alive but behind). Pull
    /// from the replicas and from the 2N best-ranked nodes not behind.
    Resync,
}

/// Counters of what this node has pulled since it started.
#[derive(Clone, Copy, Debug)]
struct TransferTotals {
    buckets: u64,
    entries: u64,
    bytes: u64,
}

struct Pull {
    bucket: BucketId,
    kind: PullKind,
    source: usize,
    deadline_ms: u64,
}

pub struct ClusterCore {
    ctx: Arc<NodeContext>,
    placement: Placement,
    membership: Membership,
    budget: Arc<MemoryBudget>,
    io: Arc<dyn NodeIo>,
    shards: Vec<ShardHandle>,
    /// Buckets this node replicated in the last published view.
    held: Vec<bool>,
    to_pull: BTreeMap<BucketId, PullKind>,
    /// Per source: the buckets to ask of it, in order, and how many pulls
    /// it has not answered.
    from_source: Vec<VecDeque<(BucketId, PullKind)>>,
    in_flight: Vec<usize>,
    /// By request id (ordered, so a run replays the same way).
    pulling: BTreeMap<u64, Pull>,
    next_request: u64,
    /// When the transfer under way started, and the counters then.
    sync_started: Option<(u64, TransferTotals)>,
    /// When this node last started re-syncing every bucket (at start, after
    /// a pause); pulls wait up to [`SETTLE_WAIT_MS`] from then to settle.
    resync_since_ms: u64,
    /// Buckets pulled before membership settled while a peer that ranks
    /// among their replicas or stand-ins had not heard this node was back
    /// (it may have sent writes elsewhere since): pulled once more after.
    pull_again: BTreeSet<BucketId>,
    last_retain_ms: u64,
    last_anti_entropy_ms: u64,
    grace_over: bool,
    /// The placement among live nodes that are not behind (the nodes whose
    /// data is current, see [`PullKind::Resync`]); rebuilt after each view change.
    up_to_date_view: Option<Arc<View>>,
    /// Offset from this node of the last peer compared with.
    anti_entropy_pass: usize,
    /// Wall-clock time since which every node has been alive, ready and
    /// not behind in this node's view (None: some node is not).
    whole_since_ms: Option<u64>,
}

impl ClusterCore {
    pub fn new(
        ctx: Arc<NodeContext>,
        placement: Placement,
        failure_ms: u64,
        budget: Arc<MemoryBudget>,
        io: Arc<dyn NodeIo>,
        shards: Vec<ShardHandle>,
    ) -> ClusterCore {
        let n = ctx.addrs.len();
        let incarnation = ctx.incarnation.load(Ordering::Relaxed);
        let membership = Membership::new(ctx.self_index, n, incarnation, ctx.clock.mono_ms(), failure_ms);
        ClusterCore {
            ctx,
            placement,
            membership,
            budget,
            io,
            shards,
            held: vec![false; BUCKETS],
            to_pull: BTreeMap::new(),
            from_source: vec![VecDeque::new(); n],
            in_flight: vec![0; n],
            pulling: BTreeMap::new(),
            next_request: 1,
            sync_started: None,
            resync_since_ms: 0,
            pull_again: BTreeSet::new(),
            last_retain_ms: 0,
            last_anti_entropy_ms: 0,
            grace_over: false,
            up_to_date_view: None,
            anti_entropy_pass: 0,
            whole_since_ms: None,
        }
    }

    fn now_ms(&self) -> u64 {
        self.ctx.clock.mono_ms()
    }

    /// The first view, at start: a starting node cannot know who took its
    /// writes while it was down (or before it first came up), so it pulls
    /// every bucket it holds, from stand-ins too.
    pub fn start(&mut self) {
        self.publish(true);
    }

    /// One gossip round, with the gossip that arrived since the last one:
    /// what arrived together makes one view.
    pub fn round_with(&mut self, gossip: impl IntoIterator<Item = ClusterMsg>) {
        let mut changed = false;
        for msg in gossip {
            changed |= self.handle(msg);
        }
        self.round(changed);
    }

    /// Takes one message; returns whether membership changed (the caller
    /// publishes a view).
    pub fn handle(&mut self, msg: ClusterMsg) -> bool {
        let now = self.now_ms();
        match msg {
            ClusterMsg::Gossip { sender, heartbeats } => {
                let (changed, answer) = self.membership.on_gossip(now, sender, &heartbeats);
                let incarnation = self.membership.incarnation();
                if self.ctx.incarnation.swap(incarnation, Ordering::Relaxed) != incarnation {
                    log!(
                        "incarnation_raised",
                        "a previous run of this node started later (the clock went back): now incarnation {incarnation}"
                    );
                }
                if answer && sender < self.ctx.addrs.len() {
                    self.gossip_to(sender);
                }
                changed
            }
            ClusterMsg::SyncDone { request, entries } => {
                if self.take_pull(request).is_some() {
                    self.ctx.counters.buckets_pulled.fetch_add(1, Ordering::Relaxed);
                    self.ctx
                        .counters
                        .entries_pulled
                        .fetch_add(entries as u64, Ordering::Relaxed);
                    self.step_sync(now);
                }
                false
            }
        }
    }

    /// The process was stopped and continued: the driver saw the `stop`-th
    /// SIGCONT (the event loop reports the same one).
    pub fn continued(&self, stop: u64) {
        self.ctx.away.set(Away::Continued { stop });
    }

    fn gossip_to(&self, target: usize) {
        self.gossip_to_all(&[target]);
    }

    /// This node's heartbeats, signed for and sent to each target.
    fn gossip_to_all(&self, targets: &[usize]) {
        let message = Internal::Gossip {
            heartbeats: self.membership.heartbeats(),
        };
        for &target in targets {
            self.ctx.send(&*self.io, target, &message);
        }
    }

    fn round(&mut self, gossip_changed: bool) {
        let now = self.now_ms();
        // The event loop saw the SIGCONT (or a gap too long to be a slow
        // tick) first and stopped coordinating; the rest happens here.
        let away = self.ctx.away.take();
        let mut round = self.membership.tick(now, away);
        round.changed |= gossip_changed;
        if self.ctx.bugs.skip_catch_up_after_pause {
            round.paused = None;
        }
        if let Some(pause) = round.paused {
            round.changed |= self.membership.set_ready(false);
            self.membership.set_behind();
            match pause {
                Pause::Suspended => {
                    self.ctx.counters.suspensions.fetch_add(1, Ordering::Relaxed);
                    log!(
                        "resync_after_stop",
                        "resumed after a suspension: re-syncing every bucket before serving as coordinator"
                    );
                }
                Pause::Stalled { gap_ms } => {
                    self.ctx.counters.stalls.fetch_add(1, Ordering::Relaxed);
                    log!(
                        "resync_after_stall",
                        "stalled for {gap_ms} ms (not stopped): peers may have counted this node dead; re-syncing every bucket before serving as coordinator"
                    );
                }
            }
            self.held.fill(false);
            self.sync_started = Some((now, self.transfer_totals()));
        }
        round.changed |= self.update_full();
        self.gossip_to_all(&round.targets);
        if round.changed || round.paused.is_some() {
            self.publish(round.paused.is_some());
        }
        self.step_sync(now);
        if self.membership.is_ready() && now >= self.last_anti_entropy_ms + ANTI_ENTROPY_INTERVAL_MS {
            self.last_anti_entropy_ms = now;
            self.anti_entropy();
        }
        if self.membership.is_ready() && now >= self.last_retain_ms + RETAIN_INTERVAL_MS {
            self.last_retain_ms = now;
            self.retain();
        }
    }

    /// Whether this node's store is full, with hysteresis; returns whether
    /// that changed.
    fn update_full(&mut self) -> bool {
        // Full stops lower than it starts, so that a node shedding the
        // buckets it stood in for does not take them back at once.
        let full = self.budget.is_full(if self.membership.is_full() {
            FULL_LEAVE_PERCENT
        } else {
            FULL_ENTER_PERCENT
        });
        let changed = self.membership.set_full(full);
        if changed {
            log!(
                if full { "store_full" } else { "store_has_room" },
                "store {}: {} of {} bytes",
                if full {
                    "full, taking no new buckets"
                } else {
                    "has room again"
                },
                self.budget.used_bytes(),
                self.budget.limit_bytes()
            );
        }
        changed
    }

    /// Rebuilds the view from the membership state and queues pulls of
    /// buckets this node newly replicates.
    fn publish(&mut self, resync_all: bool) {
        let liveness = self.membership.liveness();
        let whole = (0..liveness.alive.len())
            .all(|node| liveness.alive[node] && liveness.ready[node] && !liveness.behind[node]);
        self.whole_since_ms = match self.whole_since_ms {
            Some(since) if whole => Some(since),
            None if whole => Some(self.ctx.clock.stamp_ms()),
            _ => None,
        };
        let previous = self.ctx.view();
        let died = (previous.liveness.alive.iter().zip(&liveness.alive))
            .filter(|&(&was, &is)| was && !is)
            .count();
        self.ctx.counters.peers_died.fetch_add(died as u64, Ordering::Relaxed);
        let view = Arc::new(self.placement.view(self.ctx.self_index, liveness));
        let before = self.ctx.membership_count.swap(view.alive_count(), Ordering::Relaxed);
        if before != view.alive_count() {
            log!(
                "membership",
                "{} of {} nodes alive",
                view.alive_count(),
                self.ctx.addrs.len()
            );
        }
        let me = self.ctx.self_index;
        let mut gained = 0;
        if resync_all {
            // Every bucket is asked again, of the sources this view names.
            self.resync_since_ms = self.now_ms();
            self.pull_again.clear();
            self.from_source.iter_mut().for_each(VecDeque::clear);
        }
        for bucket in 0..BUCKETS {
            let holds = view.holds(me, bucket as BucketId);
            if holds {
                self.ctx.holding[bucket].store(true, Ordering::Relaxed);
            }
            if holds && resync_all {
                self.to_pull.insert(bucket as BucketId, PullKind::Resync);
                gained += 1;
            } else if holds && !self.held[bucket] {
                self.to_pull.entry(bucket as BucketId).or_insert(PullKind::Gained);
                gained += 1;
            }
            self.held[bucket] = holds;
        }
        *self.ctx.view.write() = view;
        self.up_to_date_view = None;
        if gained > 0 && self.sync_started.is_none() {
            self.sync_started = Some((self.now_ms(), self.transfer_totals()));
        }
    }

    fn transfer_totals(&self) -> TransferTotals {
        let counters = &self.ctx.counters;
        TransferTotals {
            buckets: counters.buckets_pulled.load(Ordering::Relaxed),
            entries: counters.entries_pulled.load(Ordering::Relaxed),
            bytes: counters.transfer_bytes_received.load(Ordering::Relaxed),
        }
    }

    /// A pull answered or given up.
    fn take_pull(&mut self, request: u64) -> Option<Pull> {
        let pull = self.pulling.remove(&request)?;
        self.in_flight[pull.source] -= 1;
        Some(pull)
    }

    /// Pulls not done yet, counted once per source.
    fn pulls_pending(&self) -> usize {
        self.to_pull.len() + self.from_source.iter().map(VecDeque::len).sum::<usize>() + self.pulling.len()
    }

    /// Issues pulls up to the window; marks the node ready when none remain.
    fn step_sync(&mut self, now: u64) {
        if now < STARTUP_GRACE_MS {
            let pending = self.pulls_pending();
            self.ctx.counters.pulls_pending.store(pending as u64, Ordering::Relaxed);
            return;
        }
        if !self.grace_over {
            // Alone at start this node held every bucket; now it knows better.
            self.grace_over = true;
            for (bucket, &held) in self.held.iter().enumerate() {
                self.ctx.holding[bucket].store(held, Ordering::Relaxed);
            }
        }
        let view = self.ctx.view();
        let expired: Vec<u64> = self
            .pulling
            .iter()
            .filter(|(_, p)| now >= p.deadline_ms)
            .map(|(&r, _)| r)
            .collect();
        for request in expired {
            // Asked again of the same source, unless it died meanwhile (what
            // it held is gone with it, or on the others asked too).
            if let Some(pull) = self.take_pull(request)
                && view.liveness.alive[pull.source]
            {
                self.from_source[pull.source].push_front((pull.bucket, pull.kind));
            }
        }
        // After a start or a suspension, pulls wait until every live peer
        // has been heard from and has heard from this node: only then is it
        // known who stood in, and no write goes to stand-ins any more. They
        // wait a bounded time: pulling early makes the data safe sooner,
        // and a second pass after settling picks up what was missed.
        let unsettled: Vec<usize> = self.membership.unsettled_peers().collect();
        let settled = unsettled.is_empty();
        if settled || now >= self.resync_since_ms + SETTLE_WAIT_MS {
            while let Some((bucket, kind)) = self.to_pull.pop_first() {
                if !view.holds(self.ctx.self_index, bucket) {
                    continue;
                }
                let ranked = || view.preference(bucket).iter().chain(view.stand_ins(bucket));
                if !settled && ranked().any(|&n| unsettled.contains(&usize::from(n))) {
                    self.pull_again.insert(bucket);
                }
                for source in self.sources(&view, bucket, kind) {
                    self.from_source[source].push_back((bucket, kind));
                }
            }
        }
        // Each source has its own window: one that does not answer (stopped,
        // cut off, not yet counted dead) holds up only what is asked of it.
        for source in 0..self.from_source.len() {
            if !view.liveness.alive[source] {
                self.from_source[source].clear();
                continue;
            }
            while self.in_flight[source] < SYNC_WINDOW_PER_SOURCE {
                let Some((bucket, kind)) = self.from_source[source].pop_front() else {
                    break;
                };
                if !view.holds(self.ctx.self_index, bucket) {
                    continue;
                }
                let request = self.next_request;
                self.next_request += 1;
                let deadline_ms = now + SYNC_TIMEOUT_MS;
                self.pulling.insert(
                    request,
                    Pull {
                        bucket,
                        kind,
                        source,
                        deadline_ms,
                    },
                );
                self.in_flight[source] += 1;
                // Refused on full send queues: the pull times out and is
                // asked again.
                let pull = self
                    .ctx
                    .encode(source, Channel::Stream, &Internal::SyncRequest { request, bucket });
                self.io.stream(source, vec![pull]);
            }
        }
        let pending = self.pulls_pending();
        self.ctx.counters.pulls_pending.store(pending as u64, Ordering::Relaxed);
        if pending > 0 || !settled {
            return;
        }
        if !self.pull_again.is_empty() {
            let again = std::mem::take(&mut self.pull_again);
            log!(
                "pull_again",
                "membership settled after pulls began: pulling {} buckets once more",
                again.len()
            );
            self.to_pull
                .extend(again.into_iter().map(|bucket| (bucket, PullKind::Resync)));
            return;
        }
        if let Some((started, before)) = self.sync_started.take() {
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
                let prefs: Vec<usize> = view.preference(bucket).iter().map(|&n| usize::from(n)).collect();
                let before_me: Vec<usize> = prefs.iter().copied().take_while(|&n| n != me).collect();
                if before_me.is_empty() {
                    prefs.into_iter().filter(|&n| n != me).collect()
                } else {
                    before_me
                }
            }
            PullKind::Resync => {
                let current = self.up_to_date_view.get_or_insert_with(|| {
                    let live = &view.liveness;
                    let current: Vec<bool> = (0..live.alive.len())
                        .map(|n| live.alive[n] && !live.behind[n])
                        .collect();
                    Arc::new(self.placement.view(me, Liveness::ready(current)))
                });
                let mut sources: Vec<usize> = view
                    .preference(bucket)
                    .iter()
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

    /// Compares every bucket this node shares with the next few live peers
    /// that share any: one digest message per shard per
    /// peer, so the cost does not grow with the number of buckets, and
    /// enough peers per round that every pair of replicas is compared
    /// within [`ANTI_ENTROPY_CYCLE_MS`] whatever the cluster's size.
    fn anti_entropy(&mut self) {
        let view = self.ctx.view();
        let me = self.ctx.self_index;
        let n = self.ctx.addrs.len();
        let mine: Vec<BucketId> = (0..BUCKETS as BucketId).filter(|&b| view.holds(me, b)).collect();
        let peers_per_round = (n as u64 * ANTI_ENTROPY_INTERVAL_MS).div_ceil(ANTI_ENTROPY_CYCLE_MS) as usize;
        let shards = self.shards.len();
        let mut compared = 0;
        for step in 1..n {
            if compared == peers_per_round.max(1) {
                break;
            }
            let peer = (me + self.anti_entropy_pass + step) % n;
            // Peers still catching up too: one may hold the only copy of a
            // write (its replicas crashed while it was away).
            if !view.liveness.alive[peer] {
                continue;
            }
            self.anti_entropy_pass = (peer + n - me) % n;
            let mut by_shard: Vec<Vec<BucketId>> = vec![Vec::new(); shards];
            for &bucket in mine.iter().filter(|&&b| view.holds(peer, b)) {
                by_shard[self.ctx.shard_of(bucket, shards)].push(bucket);
            }
            if by_shard.iter().all(Vec::is_empty) {
                continue;
            }
            compared += 1;
            for (shard, buckets) in by_shard.into_iter().enumerate() {
                if !buckets.is_empty() {
                    let _ = self.shards[shard].try_send(ShardMsg::AntiEntropy { to: peer, buckets });
                }
            }
        }
    }

    /// Drops buckets this node no longer replicates (once their replicas
    /// are all ready) and the tombstones every replica holds.
    fn retain(&self) {
        let view = self.ctx.view();
        let me = self.ctx.self_index;
        let keep: Vec<bool> = (0..BUCKETS as BucketId)
            .map(|bucket| {
                let prefs = view.preference(bucket);
                view.holds(me, bucket)
                    || prefs.len() < self.placement.replicas
                    || prefs.iter().any(|&n| !view.liveness.ready[usize::from(n)])
            })
            .collect();
        for (bucket, &kept) in keep.iter().enumerate() {
            if !kept {
                self.ctx.holding[bucket].store(false, Ordering::Relaxed);
            }
        }
        let keep = Arc::new(keep);
        let collect_from_ms = self.whole_since_ms.map(|since| since + WHOLE_GRACE_MS);
        for shard in &self.shards {
            let _ = shard.try_send(ShardMsg::Retain {
                keep: keep.clone(),
                collect_from_ms,
            });
        }
    }
}

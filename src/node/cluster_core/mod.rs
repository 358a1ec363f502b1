//! The cluster core: drives the membership state machine, publishes the
//! routing view, and keeps this node's buckets complete. A state machine:
//! [`ClusterCore::round_with`] every [`ROUND_MS`] with the gossip that
//! arrived meanwhile, [`ClusterCore::handle`] for what shards report; time
//! from the node's clock, messages out through the node's I/O and shard
//! queues.
//!
//! - this file: membership rounds, this node's own state (away, full,
//!   ready) and the view every part of the node routes by;
//! - [`pulls`]: which buckets this node pulls, from whom and when, and when
//!   it is caught up (ready);
//! - [`upkeep`]: the anti-entropy and retain passes of a ready node;
//! - [`universe_change`]: a newer universe adopted and passed on; a leaving
//!   node's exit once its data is elsewhere.

mod compares;
mod pulls;
mod universe_change;
mod upkeep;

use crate::cluster::internal::Internal;
use crate::cluster::membership::{Membership, Pause, Round};
use crate::cluster::ring::{Placement, Role, View};
use crate::log;
use crate::node::context::{Away, NodeContext, NodeIo};
use crate::node::counters::Queue;
use crate::node::durability::disk::NodeDisk;
use crate::node::messages::{ClusterMsg, ShardHandle, ShardMsg};
use crate::node::roster::SLOTS_MAX;
use crate::storage::hash::{BUCKETS, BucketId};
use crate::storage::memory::{FULL_ENTER_PERCENT, FULL_LEAVE_PERCENT, MemoryBudget};
use pulls::{PullState, TransferTotals};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use universe_change::UniverseSpread;
use upkeep::UpkeepTimes;

pub use crate::cluster::membership::ROUND_MS;
pub use universe_change::placement;
/// Silence after which a peer is declared dead.
pub const FAILURE_MS_DEFAULT: u64 = 3_000;
/// Time after start before this node trusts its view enough to decide which
/// buckets have no holder to pull from.
pub const STARTUP_GRACE_MS: u64 = 1_200;
/// A gained bucket is pulled once more this long after the gain (see
/// [`pulls`]): longer than peers take to see the same death (each counts
/// the same silence; their clocks of it differ by the gossip rounds a
/// heartbeat takes to spread), short enough that the bucket is soon
/// coordinated again.
pub(super) const RECHECK_AFTER_MS: u64 = 1_200;

pub struct ClusterCore {
    ctx: Arc<NodeContext>,
    placement: Placement,
    /// The placement with leaving nodes counted as serving, while some
    /// leave (for the holders of each bucket, see [`View::set_holders`]).
    holding: Option<Placement>,
    membership: Membership,
    budget: Arc<MemoryBudget>,
    io: Arc<dyn NodeIo>,
    shards: Vec<ShardHandle>,
    /// Buckets this node replicated in the last published view.
    held: Vec<bool>,
    /// When the pulls under way started (monotonic ms), and the counters then.
    pulls_started: Option<(u64, TransferTotals)>,
    /// The pulls to make and under way (see [`pulls`]).
    pull_state: PullState,
    /// When the anti-entropy and retain passes last ran (see [`upkeep`]).
    upkeep: UpkeepTimes,
    /// Passing the universe on, and leaving (see [`universe_change`]).
    spread: UniverseSpread,
    /// The placement among live nodes that are not behind (the nodes whose
    /// data is current, see [`PullKind::CatchUp`]); rebuilt after each view change.
    up_to_date_view: Option<Arc<View>>,
    /// Per bucket: its records read back from the journal may miss some
    /// (damaged, or not admitted): pulled whole, with no digest.
    suspect: Vec<bool>,
    /// Buckets held here whose copy lacks writes a full store refused,
    /// with when to pull them again (see [`pulls`]).
    incomplete: BTreeMap<BucketId, u64>,
    /// When this node last took a universe (monotonic ms; None: it holds
    /// the one it started with).
    universe_taken_ms: Option<u64>,
    /// Wall-clock time (stamp ms) since which every node has been alive,
    /// ready and not behind in this node's view (None: some node is not).
    whole_since_stamp_ms: Option<u64>,
    /// The data directory, where an adopted universe is kept (None:
    /// memory only).
    disk: Option<Arc<dyn NodeDisk>>,
    /// Pulls wait until then (monotonic ms): a node that just started, or
    /// just joined the universe, gives its peers [`STARTUP_GRACE_MS`] to be
    /// heard from before it decides which buckets have no holder.
    pulls_wait_until_ms: u64,
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
        let n = SLOTS_MAX;
        let incarnation = ctx.incarnation.load(Ordering::Relaxed);
        let members: Vec<bool> = (0..n).map(|slot| ctx.view().is_member(slot)).collect();
        let mut membership = Membership::new(ctx.self_index, &members, incarnation, ctx.clock.mono_ms(), failure_ms);
        membership.set_universe(ctx.universe().tag());
        ctx.counters.set(&ctx.counters.universe_version, ctx.universe().version);
        ClusterCore {
            ctx,
            holding: placement.with_leaving_as_serving(),
            placement,
            membership,
            budget,
            io,
            shards,
            pull_state: PullState::new(n),
            upkeep: UpkeepTimes::default(),
            spread: UniverseSpread::new(n),
            held: vec![false; BUCKETS],
            pulls_started: None,
            up_to_date_view: None,
            whole_since_stamp_ms: None,
            suspect: vec![false; BUCKETS],
            incomplete: BTreeMap::new(),
            universe_taken_ms: None,
            disk: None,
            pulls_wait_until_ms: STARTUP_GRACE_MS,
        }
    }

    /// Where an adopted universe is kept.
    pub fn keep_universe_in(&mut self, disk: Arc<dyn NodeDisk>) {
        self.disk = Some(disk);
    }

    /// What recovery read back (see [`crate::node::durability::recovery`]): whether
    /// the store holds data from before this start, and the buckets it
    /// could not read whole. A node with old data starts *behind*, as one
    /// woken from a suspension: its copies may be stale, so it coordinates
    /// nothing, not even for lack of a ready node, until it has caught up.
    pub fn recovered(&mut self, holds_data: bool, suspect: Vec<bool>) {
        if suspect.len() == BUCKETS {
            self.suspect = suspect;
        }
        if holds_data {
            self.membership.set_behind();
        }
    }

    /// Monotonic milliseconds since the node started.
    fn now_ms(&self) -> u64 {
        self.ctx.clock.mono_ms()
    }

    /// The first view, at start: a starting node cannot know who took its
    /// writes while it was down (or before it first came up), so it
    /// catches up on every bucket it holds, from stand-ins too.
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
            ClusterMsg::Gossip {
                sender,
                universe,
                heartbeats,
            } => {
                let (changed, answer) = self.membership.on_gossip(now, sender, universe, &heartbeats);
                let incarnation = self.membership.incarnation();
                if self.ctx.incarnation.swap(incarnation, Ordering::Relaxed) != incarnation {
                    log!(
                        "incarnation_raised",
                        "a previous run of this node started later (the clock went back): now incarnation {incarnation}"
                    );
                }
                if answer {
                    self.gossip_to(&[sender]);
                }
                changed
            }
            ClusterMsg::PullDone { request, entries } => {
                self.pull_done(request, entries, now);
                false
            }
            ClusterMsg::Compared {
                from,
                request,
                differing,
            } => {
                self.compared(from, request, &differing, now);
                false
            }
            ClusterMsg::Incomplete { bucket } => {
                self.incomplete(bucket, now);
                false
            }
            ClusterMsg::Universe { universe, reply_to } => {
                self.adopt(*universe, reply_to);
                false
            }
            ClusterMsg::Stranger { id, addr, universe } => {
                self.tell_stranger(id, addr, universe, now);
                false
            }
        }
    }

    /// The process was stopped and continued: the driver saw the `stop`-th
    /// SIGCONT (the event loop reports the same one).
    pub fn continued(&self, stop: u64) {
        self.ctx.away.set(Away::Continued { stop });
    }

    /// This node's heartbeats, signed for and sent to each target.
    fn gossip_to(&self, targets: &[usize]) {
        let roster = &self.ctx.roster;
        let heartbeats = (self.membership.heartbeats().into_iter())
            .filter_map(|(slot, heartbeat)| Some((roster.id(slot)?, heartbeat)))
            .collect();
        let message = Internal::Gossip {
            universe: self.ctx.universe().tag(),
            heartbeats,
        };
        for &target in targets {
            self.ctx.send(&*self.io, target, &message);
        }
    }

    /// Queues work for a shard; a full queue drops it, counted (the next
    /// pass sends it again).
    fn send_to_shard(&self, shard: usize, msg: ShardMsg) {
        if self.shards[shard].try_send(msg).is_err() {
            self.ctx.counters.count_drop(Queue::Shard);
        }
    }

    fn round(&mut self, gossip_changed: bool) {
        let now = self.now_ms();
        // The event loop saw the SIGCONT (or a gap too long to be a slow
        // tick) first and stopped coordinating; the rest happens here.
        let away = self.ctx.away.take();
        let mut round = self.membership.tick(now, away);
        round.changed |= gossip_changed;
        if crate::planted!(self.ctx, skip_catch_up_after_pause) {
            round.paused = None;
        }
        if let Some(pause) = round.paused {
            self.was_away(pause, &mut round, now);
        }
        round.changed |= self.update_full();
        self.gossip_to(&round.targets);
        if round.changed || round.paused.is_some() {
            self.publish(round.paused.is_some());
        }
        self.pass_universe_on(now);
        self.step_pulls(now);
        self.upkeep(now);
    }

    /// Back from a suspension or a stall: not ready, behind, and every
    /// bucket to be caught up on.
    fn was_away(&mut self, pause: Pause, round: &mut Round, now: u64) {
        round.changed |= self.membership.set_ready(false);
        self.membership.set_behind();
        match pause {
            Pause::Suspended => {
                self.ctx.counters.suspensions.fetch_add(1, Ordering::Relaxed);
                log!(
                    "catch_up_after_stop",
                    "resumed after a suspension: catching up on every bucket before serving as coordinator"
                );
            }
            Pause::Stalled { gap_ms } => {
                self.ctx.counters.stalls.fetch_add(1, Ordering::Relaxed);
                log!(
                    "catch_up_after_stall",
                    "stalled for {gap_ms} ms (not stopped): peers may have counted this node dead; catching up on every bucket before serving as coordinator"
                );
            }
        }
        self.held.fill(false);
        self.pulls_started = Some((now, self.transfer_totals()));
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
    /// buckets this node newly replicates (of every bucket it holds, to
    /// catch up, when `catch_up`).
    fn publish(&mut self, catch_up: bool) {
        let liveness = self.membership.liveness();
        // Every serving node up to date, and every leaving one that is up
        // (one that has gone took nothing with it: it left only once every
        // bucket it held was elsewhere).
        let whole = (0..liveness.alive.len()).all(|node| {
            let current = liveness.alive[node] && liveness.ready[node] && !liveness.behind[node];
            match self.placement.role(node) {
                Role::Absent => true,
                Role::Serving => current,
                Role::Leaving => !liveness.alive[node] || current,
            }
        });
        self.note_whole(whole);
        let previous = self.ctx.view();
        let died = (previous.liveness.alive.iter().zip(&liveness.alive))
            .filter(|&(&was, &is)| was && !is)
            .count();
        self.ctx.counters.peers_died.fetch_add(died as u64, Ordering::Relaxed);
        let mut view = self.placement.view(self.ctx.self_index, liveness);
        let holding = self.holding.as_ref().unwrap_or(&self.placement);
        view.set_holders(holding, self.membership.universe_split());
        let view = Arc::new(view);
        let before = self.ctx.membership_count.swap(view.alive_count(), Ordering::Relaxed);
        if before != view.alive_count() {
            log!("membership", "{} of {} nodes alive", view.alive_count(), view.serving);
        }
        let gained = self.queue_pulls(&view, catch_up);
        self.pull_from_first_heard(&view, !catch_up && !self.membership.is_ready());
        *self.ctx.view.write() = view;
        self.up_to_date_view = None;
        if gained > 0 && self.pulls_started.is_none() {
            self.pulls_started = Some((self.now_ms(), self.transfer_totals()));
        }
    }

    /// Notes whether every node is alive, ready and not behind now.
    fn note_whole(&mut self, whole: bool) {
        self.whole_since_stamp_ms = match self.whole_since_stamp_ms {
            Some(since) if whole => Some(since),
            None if whole => Some(self.ctx.clock.stamp_ms()),
            _ => None,
        };
    }
}

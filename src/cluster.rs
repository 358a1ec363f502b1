//! The cluster thread: drives the membership state machine, publishes the
//! routing view, and keeps this node's buckets complete.
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
//! replica is known to hold (see [`crate::agreement`]).

use crate::agreement::WHOLE_GRACE_MS;
use crate::hash::{BUCKETS, BucketId};
use crate::internal::{self, Bounds, Envelope, Heartbeat, Internal, InternalError, Secret};
use crate::log;
use crate::mailbox::Mailbox;
use crate::membership::{Membership, Pause};
use crate::memory::{FULL_ENTER_PERCENT, FULL_LEAVE_PERCENT, MemoryBudget};
use crate::net::ShardHandle;
use crate::ring::{Liveness, Placement, View};
use crate::shard::ShardMsg;
use crate::stamp::wall_millis;
use crate::transfer::TransferHandle;
use crate::udp::send_reply;
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Gossip round length.
pub const ROUND_MS: u64 = 200;
/// Silence after which a peer is declared dead.
pub const FAILURE_MS_DEFAULT: u64 = 3_000;
/// Time after start before this node trusts its view enough to decide which
/// buckets have no holder to pull from.
const STARTUP_GRACE_MS: u64 = 1_200;
/// Bucket pulls in flight at once (flow control for the holders and us).
const SYNC_WINDOW: usize = 64;
/// A pull with no completion by then is asked again (maybe of another holder).
const SYNC_TIMEOUT_MS: u64 = 2_000;
/// How often this node compares its buckets with the next peers'.
const ANTI_ENTROPY_INTERVAL_MS: u64 = 500;
/// Every peer sharing a bucket is compared with at least this often (at
/// 150 nodes, 2 peers per round; each digest datagram costs sender and
/// receiver about as much as a gossip datagram).
const ANTI_ENTROPY_CYCLE_MS: u64 = 60_000;
/// How often buckets no longer replicated here are dropped.
const RETAIN_INTERVAL_MS: u64 = 5_000;

/// What every thread of a node shares about the cluster.
pub struct ClusterContext {
    pub self_index: usize,
    pub addrs: Vec<SocketAddr>,
    pub secret: Secret,
    /// This process's start time, Unix ms: what peers know this run by.
    pub incarnation: u64,
    /// Per peer and channel, the last sequence number signed (see
    /// [`crate::freshness`]).
    pub datagram_seqs: Vec<AtomicU64>,
    pub stream_seqs: Vec<AtomicU64>,
    pub view: RwLock<Arc<View>>,
    pub membership_count: AtomicUsize,
    pub counters: ClusterCounters,
    /// Per bucket: whether this node has been a replica of it since start-up
    /// settled and has not dropped it. A stand-in coordinates a bucket only
    /// if it holds it; otherwise (views still converging) it passes the
    /// request to the preferred replica.
    pub holding: Vec<AtomicBool>,
    /// Set by the event loop when it sees it was suspended, until the
    /// cluster thread takes over (marks this node not ready and re-syncs):
    /// meanwhile this node's own view still calls it ready.
    pub suspended: AtomicBool,
}

#[derive(Default)]
pub struct ClusterCounters {
    /// Times this node was stopped and continued (SIGSTOP, SIGCONT).
    pub suspensions: AtomicU64,
    /// Times its rounds stalled long enough to re-sync, with no stop.
    pub stalls: AtomicU64,
    /// Times a peer was declared dead.
    pub peers_died: AtomicU64,
    /// Replicated writes a replica acknowledged without storing (it was full).
    pub replica_refusals: AtomicU64,
    /// Transferred entries this node had no room for.
    pub entries_refused: AtomicU64,
    /// Node messages refused: not signed with the cluster secret (or not
    /// our framing), meant for another node, a field out of range, or not
    /// new (old, replayed, from a previous incarnation).
    pub rejected_unsigned: AtomicU64,
    pub rejected_misdirected: AtomicU64,
    pub rejected_out_of_range: AtomicU64,
    pub rejected_stale: AtomicU64,
    pub forwarded: AtomicU64,
    pub buckets_pulled: AtomicU64,
    pub entries_pulled: AtomicU64,
    /// Buckets found different by anti-entropy and exchanged.
    pub repairs: AtomicU64,
    /// Bucket pulls queued or in flight.
    pub pulls_pending: AtomicU64,
    /// Transfer stream bytes written to and read from peers.
    pub transfer_bytes_sent: AtomicU64,
    pub transfer_bytes_received: AtomicU64,
    /// Transfers refused because the send queues were full.
    pub transfer_refused: AtomicU64,
    /// Transfer connections that failed with bytes still queued.
    pub transfer_breaks: AtomicU64,
}

impl ClusterContext {
    /// The context of node `self_index` of `addrs`, starting from `view`.
    pub fn new(self_index: usize, addrs: Vec<SocketAddr>, secret: Secret, view: View) -> ClusterContext {
        let n = addrs.len();
        let alive = view.alive_count();
        ClusterContext {
            self_index,
            secret,
            incarnation: unix_millis(),
            datagram_seqs: (0..n).map(|_| AtomicU64::new(0)).collect(),
            stream_seqs: (0..n).map(|_| AtomicU64::new(0)).collect(),
            view: RwLock::new(Arc::new(view)),
            membership_count: AtomicUsize::new(alive),
            counters: Default::default(),
            holding: (0..BUCKETS).map(|_| AtomicBool::new(false)).collect(),
            suspended: AtomicBool::new(false),
            addrs,
        }
    }

    pub fn holds_data(&self, bucket: BucketId) -> bool {
        self.holding[usize::from(bucket)].load(Ordering::Relaxed)
    }

    pub fn view(&self) -> Arc<View> {
        self.view.read().clone()
    }

    pub fn shard_of(&self, bucket: BucketId, shards: usize) -> usize {
        usize::from(bucket) % shards
    }

    /// Encodes and signs a message from this node to node `to`, numbered
    /// on its channel.
    pub fn encode(&self, to: usize, channel: Channel, message: &Internal) -> Vec<u8> {
        let seqs = match channel {
            Channel::Datagram => &self.datagram_seqs,
            Channel::Stream => &self.stream_seqs,
        };
        let envelope = Envelope {
            sender: self.self_index as u8,
            to: to as u8,
            incarnation: self.incarnation,
            seq: seqs[to].fetch_add(1, Ordering::Relaxed) + 1,
            sent_ms: unix_millis(),
        };
        internal::encode(&self.secret, &envelope, message)
    }

    /// Encodes, signs and sends an internal datagram to node `to`.
    pub fn send(&self, socket: &UdpSocket, to: usize, message: &Internal) {
        send_reply(socket, &self.encode(to, Channel::Datagram, message), self.addrs[to]);
    }

    /// What messages to this node must satisfy, now.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            nodes: self.addrs.len(),
            now_unix_ms: unix_millis(),
        }
    }

    /// Counts a refused message by why.
    pub fn count_rejected(&self, error: InternalError) {
        let counter = match error {
            InternalError::Malformed | InternalError::BadMac => &self.counters.rejected_unsigned,
            InternalError::Misdirected => &self.counters.rejected_misdirected,
            InternalError::OutOfRange => &self.counters.rejected_out_of_range,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// How a message travels: its sequence numbers count per channel, since
/// each channel has its own receiving side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// UDP datagrams (gossip, replication, forwards, digests).
    Datagram,
    /// TCP streams (bucket pulls and chunks).
    Stream,
}

/// The wall clock in Unix milliseconds.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Inputs of the cluster thread.
#[derive(Debug)]
pub enum ClusterMsg {
    Gossip {
        sender: usize,
        heartbeats: Vec<Heartbeat>,
    },
    SyncDone {
        request: u64,
        bucket: BucketId,
        entries: usize,
    },
}

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
    deadline_ms: u64,
}

pub struct ClusterThread {
    ctx: Arc<ClusterContext>,
    placement: Placement,
    membership: Membership,
    budget: Arc<MemoryBudget>,
    socket: UdpSocket,
    shards: Vec<ShardHandle>,
    transfer: TransferHandle,
    started: Instant,
    /// Buckets this node replicated in the last published view.
    held: Vec<bool>,
    to_pull: BTreeMap<BucketId, PullKind>,
    pulling: HashMap<u64, Pull>,
    next_request: u64,
    /// When the transfer under way started, and the counters then.
    sync_started: Option<(u64, TransferTotals)>,
    last_retain_ms: u64,
    last_anti_entropy_ms: u64,
    grace_over: bool,
    /// The ranking of live nodes that are not behind (see [`PullKind::Resync`]);
    /// rebuilt after each view change.
    current_view: Option<Arc<View>>,
    /// Offset from this node of the last peer compared with.
    anti_entropy_pass: usize,
    /// Wall-clock time since which every node has been alive, ready and
    /// not behind in this node's view (None: some node is not).
    whole_since_ms: Option<u64>,
}

impl ClusterThread {
    pub fn new(
        ctx: Arc<ClusterContext>,
        placement: Placement,
        failure_ms: u64,
        budget: Arc<MemoryBudget>,
        socket: UdpSocket,
        shards: Vec<ShardHandle>,
        transfer: TransferHandle,
    ) -> ClusterThread {
        let n = ctx.addrs.len();
        let membership = Membership::new(ctx.self_index, n, ctx.incarnation, 0, failure_ms);
        ClusterThread {
            ctx,
            placement,
            membership,
            budget,
            socket,
            shards,
            transfer,
            started: Instant::now(),
            held: vec![false; BUCKETS],
            to_pull: BTreeMap::new(),
            pulling: HashMap::new(),
            next_request: 1,
            sync_started: None,
            last_retain_ms: 0,
            last_anti_entropy_ms: 0,
            grace_over: false,
            current_view: None,
            anti_entropy_pass: 0,
            whole_since_ms: None,
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs for the life of the process. `gossip` is only looked at
    /// once per round: a datagram queued there wakes nobody (150 nodes
    /// gossiping at each other would otherwise wake every node's thread a
    /// dozen times per round).
    pub fn run(mut self, inbox: Mailbox<ClusterMsg>, gossip: Mailbox<ClusterMsg>) {
        // A starting node cannot know who took its writes while it was down
        // (or before it first came up): its pulls reach stand-ins too.
        self.publish(true);
        let mut next_round: u64 = 0;
        loop {
            let now = self.now_ms();
            if let Some(msg) = inbox.recv_timeout(Duration::from_millis(next_round.saturating_sub(now))) {
                self.handle(msg);
            }
            if self.now_ms() >= next_round {
                // What arrived since the last round makes one view.
                let mut changed = false;
                while let Some(msg) = gossip.try_recv() {
                    changed |= self.handle(msg);
                }
                self.round(changed);
                next_round = self.now_ms() + ROUND_MS;
            }
        }
    }

    /// Returns whether membership changed (the caller publishes a view).
    fn handle(&mut self, msg: ClusterMsg) -> bool {
        let now = self.now_ms();
        match msg {
            ClusterMsg::Gossip { sender, heartbeats } => {
                let (changed, sender_was_dead) = self.membership.on_gossip(now, sender, &heartbeats);
                if sender_was_dead && sender < self.ctx.addrs.len() {
                    self.gossip_to(sender);
                }
                changed
            }
            ClusterMsg::SyncDone {
                request,
                bucket,
                entries,
            } => {
                if self.pulling.remove(&request).is_some() {
                    self.ctx.counters.buckets_pulled.fetch_add(1, Ordering::Relaxed);
                    self.ctx
                        .counters
                        .entries_pulled
                        .fetch_add(entries as u64, Ordering::Relaxed);
                    let _ = bucket;
                    self.step_sync(now);
                }
                false
            }
        }
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
            self.ctx.send(&self.socket, target, &message);
        }
    }

    fn round(&mut self, gossip_changed: bool) {
        let now = self.now_ms();
        // The event loop saw the SIGCONT (or a gap too long to be a slow
        // tick) first and stopped coordinating; the rest happens here.
        let resumed = self.ctx.suspended.swap(false, Ordering::AcqRel);
        let mut round = self.membership.tick(now, resumed);
        round.changed |= gossip_changed;
        if let Some(pause) = round.paused {
            round.changed |= self.membership.set_ready(false);
            self.membership.set_behind();
            match pause {
                Pause::Suspended => {
                    self.ctx.counters.suspensions.fetch_add(1, Ordering::Relaxed);
                    log!("resumed after a suspension: re-syncing every bucket before serving as coordinator");
                }
                Pause::Stalled { gap_ms } => {
                    self.ctx.counters.stalls.fetch_add(1, Ordering::Relaxed);
                    log!(
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
            None if whole => Some(wall_millis()),
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
                "membership: {} of {} nodes alive",
                view.alive_count(),
                self.ctx.addrs.len()
            );
        }
        let me = self.ctx.self_index;
        let mut gained = 0;
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
        self.current_view = None;
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

    /// Issues pulls up to the window; marks the node ready when none remain.
    fn step_sync(&mut self, now: u64) {
        if now < STARTUP_GRACE_MS {
            let pending = self.to_pull.len() + self.pulling.len();
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
        let expired: Vec<u64> = self
            .pulling
            .iter()
            .filter(|(_, p)| now >= p.deadline_ms)
            .map(|(&r, _)| r)
            .collect();
        for request in expired {
            if let Some(pull) = self.pulling.remove(&request) {
                self.to_pull.insert(pull.bucket, pull.kind);
            }
        }
        let view = self.ctx.view();
        // After a suspension, pulls wait until every peer has been heard
        // from (or declared dead): only then is it known who stood in.
        while self.pulling.len() < SYNC_WINDOW && self.membership.settled() {
            let Some((bucket, kind)) = self.to_pull.pop_first() else {
                break;
            };
            if !view.holds(self.ctx.self_index, bucket) {
                continue;
            }
            for source in self.sources(&view, bucket, kind) {
                let request = self.next_request;
                self.next_request += 1;
                let deadline_ms = now + SYNC_TIMEOUT_MS;
                self.pulling.insert(
                    request,
                    Pull {
                        bucket,
                        kind,
                        deadline_ms,
                    },
                );
                // Refused on full send queues: the pull times out and is
                // asked again.
                self.transfer
                    .send_messages(source, &[Internal::SyncRequest { request, bucket }]);
            }
        }
        let pending = self.to_pull.len() + self.pulling.len();
        self.ctx.counters.pulls_pending.store(pending as u64, Ordering::Relaxed);
        if pending > 0 {
            return;
        }
        if let Some((started, before)) = self.sync_started.take() {
            let after = self.transfer_totals();
            log!(
                "transfer done in {} ms: {} buckets, {} entries pulled, {} bytes received",
                now.saturating_sub(started),
                after.buckets - before.buckets,
                after.entries - before.entries,
                after.bytes - before.bytes
            );
        }
        if !self.membership.is_ready() {
            self.membership.set_ready(true);
            log!("ready: coordinating my buckets");
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
                let current = self.current_view.get_or_insert_with(|| {
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

    /// Compares every bucket this node shares with the next few peers,
    /// live and ready, that share any: one digest message per shard per
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
            if !view.liveness.ready[peer] {
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

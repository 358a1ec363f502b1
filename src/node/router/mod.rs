//! Every datagram that reaches a node, as a state machine the event loop
//! (or the simulator) feeds: junk is dropped silently; node commands
//! (IS_ALIVE, GET_PID, GET_MEMBERSHIP_COUNT, SHUTDOWN, WIPEOUT) and invalid
//! requests are answered here; keyed requests go where
//! [`View::route`] says: executed by the shard kept here, queued for their
//! worker (one batch per worker per drain), or forwarded to the key's
//! coordinator. A shard whose backlog is over its bound gets no more:
//! those requests are answered OVERLOAD with a wait that grows with the
//! backlog, never with silence. Node messages are used only once signed,
//! meant for this node, in range and new; they go to the shard of their
//! bucket or to the cluster core.
//!
//! - [`batches`]: a drain's requests per worker, handed over or refused.
//! - [`gate`]: what a node or operator datagram must pass to be used.
//! - [`node_commands`]: what IS_ALIVE, GET_PID, GET_MEMBERSHIP_COUNT,
//!   SHUTDOWN and WIPEOUT ask of the node; [`recent_ids`]: the WIPEOUTs
//!   executed lately, so a retry is not executed twice.
//! - [`rate`]: the request rate STATS reports.

mod batches;
mod gate;
mod node_commands;
mod rate;
mod recent_ids;

use crate::cluster::internal::{self, BucketDigest, FORWARD_HOPS_MAX, Internal};
use crate::cluster::ring::{Myself, Route, View};
use crate::log;
use crate::node::admin::{self, Report, ReportKind};
use crate::node::admin_allow::AdminAllow;
use crate::node::cluster_core::STARTUP_GRACE_MS;
use crate::node::context::{Away, NodeContext, NodeIo};
use crate::node::counters::{Queue, request_kind};
use crate::node::mailbox::MailboxSender;
use crate::node::messages::{ClusterMsg, Request, ShardHandle, ShardMsg, Wipeout};
use crate::node::outbox::Outbox;
use crate::node::shard::Shard;
use crate::node::waits::Waits;
use crate::protocol::wire::{self, ErrorCode, KeyOp, NodeCommand, Origin, Parsed, Reply};
use crate::storage::hash::{BUCKETS, BucketId, bucket_of_key};
use crate::storage::memory::MemoryBudget;
use batches::{Batches, overload_wait_ms};
use crossbeam_channel::Receiver;
use gate::{Gate, Verdict};
use node_commands::{Action, NodeCommands};
use rate::RateMeter;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Requests a shard may have queued before new ones are refused with
/// OVERLOAD (`--shard-backlog-max`).
pub const SHARD_BACKLOG_REQUESTS_MAX: usize = 4096;

/// Wait suggested when a request cannot be routed this moment.
const REROUTE_WAIT_MS: i32 = 50;
/// Wait suggested while no replica of a key can coordinate (all catching
/// up, or this node just started): pulls take a second or more.
const CATCH_UP_WAIT_MS: i32 = 250;

/// How often an idle router wants [`Router::tick`]: to expire at-most-once
/// entries (a driver also uses it to notice a gap long enough to make
/// queued datagrams stale, shorter than any failure timeout).
pub const IDLE_TICK_MS: u64 = 500;

/// Node-level facts the router answers from.
#[derive(Clone)]
pub struct NodeFacts {
    pub pid: i32,
    pub budget: Arc<MemoryBudget>,
    pub admin_allow: AdminAllow,
}

pub struct Router {
    io: Arc<dyn NodeIo>,
    shards: Vec<ShardHandle>,
    facts: NodeFacts,
    batches: Batches,
    node_commands: NodeCommands,
    ctx: Arc<NodeContext>,
    /// Gossip for the cluster core, taken at its next round.
    gossip: MailboxSender<ClusterMsg>,
    rate: RateMeter,
    /// The routing view, refreshed at every [`Router::begin_drain`].
    view: Arc<View>,
    /// With `--workers 0`, the single shard runs on this thread: requests are
    /// executed as they are drained, and what other threads send the shard
    /// is taken from its queue every loop.
    inline: Option<(Shard, Receiver<ShardMsg>)>,
    /// Requests a shard may have queued (for an inline shard: datagrams in
    /// one drain) before new ones are answered OVERLOAD.
    backlog_max: usize,
    /// Datagrams waiting in the socket at the last look (inline shard only).
    socket_backlog: usize,
    /// What node datagrams must pass, with the replay windows every
    /// receiving loop shares.
    gate: Gate,
    /// Forwarded requests, sent per peer when the drain's batch ends.
    outbox: Outbox,
    /// How long each bucket's clients have been asked to wait here.
    waits: Waits,
}

/// The shards the loop feeds.
pub struct Shards {
    pub handles: Vec<ShardHandle>,
    /// The shard run on the event loop itself (`--workers 0`).
    pub inline: Option<(Shard, Receiver<ShardMsg>)>,
    pub backlog_max: usize,
}

impl Router {
    pub fn new(
        io: Arc<dyn NodeIo>,
        shards: Shards,
        facts: NodeFacts,
        ctx: Arc<NodeContext>,
        gossip: MailboxSender<ClusterMsg>,
    ) -> Router {
        let Shards {
            handles: shards,
            inline,
            backlog_max,
        } = shards;
        Router {
            io,
            inline,
            backlog_max,
            socket_backlog: 0,
            rate: RateMeter::new(ctx.clock.mono_ms(), ctx.counters.datagrams.load(Ordering::Relaxed)),
            gossip,
            view: ctx.view(),
            batches: Batches::new(shards.len()),
            shards,
            node_commands: NodeCommands::new(facts.pid, facts.admin_allow.clone()),
            facts,
            gate: Gate::default(),
            outbox: Outbox::new(&ctx),
            waits: Waits::default(),
            ctx,
        }
    }

    /// A router for another receiving loop of this node (`--receivers`):
    /// the same shards, counters, replay windows and cluster core; its own
    /// batches, forwards and WIPEOUT ids (a client's retries come from one
    /// address and reach one socket). It runs no shard of its own: with
    /// `--workers 0` it would feed this router's inline shard through its
    /// queue and waker, which works but defeats the purpose.
    pub fn sibling(&self) -> Router {
        Router {
            io: self.io.clone(),
            inline: None,
            backlog_max: self.backlog_max,
            socket_backlog: 0,
            rate: RateMeter::new(
                self.ctx.clock.mono_ms(),
                self.ctx.counters.datagrams.load(Ordering::Relaxed),
            ),
            gossip: self.gossip.clone(),
            view: self.ctx.view(),
            batches: Batches::new(self.shards.len()),
            shards: self.shards.clone(),
            facts: self.facts.clone(),
            node_commands: NodeCommands::new(self.facts.pid, self.facts.admin_allow.clone()),
            gate: self.gate.clone(),
            outbox: Outbox::new(&self.ctx),
            waits: Waits::default(),
            ctx: self.ctx.clone(),
        }
    }

    /// Whether the store runs here (`--workers 0`) rather than on threads.
    pub fn runs_shard(&self) -> bool {
        self.inline.is_some()
    }

    /// The shard run here, if any (read-only: for the simulator's checks).
    pub fn inline_shard(&self) -> Option<&Shard> {
        self.inline.as_ref().map(|(shard, _)| shard)
    }

    /// How long until [`Router::tick`] is due: sooner while the shard run
    /// here has work on a timer (writes waiting for replicas, its
    /// journal's syncs and compaction).
    pub fn tick_in_ms(&self) -> u64 {
        let shard = self.inline.as_ref().and_then(|(shard, _)| shard.tick_in_ms());
        shard.map_or(IDLE_TICK_MS, |ms| ms.min(IDLE_TICK_MS))
    }

    /// Before a batch of datagrams: the current view, the request rate.
    pub fn begin_drain(&mut self) {
        let view = self.ctx.view();
        if !Arc::ptr_eq(&view, &self.view) {
            let now = self.ctx.clock.mono_ms();
            self.waits.note_view(|bucket| view.coordinator(bucket).is_none(), now);
        }
        self.view = view;
        (self.rate).measure(
            self.ctx.clock.mono_ms(),
            self.ctx.counters.datagrams.load(Ordering::Relaxed),
        );
    }

    /// Datagrams waiting to be read (for the shard run here, its queue:
    /// beyond the bound, requests are refused with OVERLOAD).
    pub fn set_socket_backlog(&mut self, datagrams: usize) {
        self.socket_backlog = datagrams;
    }

    /// The process was away (stopped and continued, or frozen): it stops
    /// coordinating until the cluster core has caught it up. The driver has
    /// dropped what queued meanwhile.
    pub fn resumed(&mut self, away: Away, dropped: usize) {
        self.ctx.away.set(away);
        log!("resumed", "resumed after {away:?}: dropped {dropped} queued datagrams");
    }

    /// After a batch, and on the timer: what other parts of the node sent
    /// the shard run here, and its writes waiting for replicas.
    pub fn tick(&mut self) {
        self.flush();
        if let Some((shard, queue)) = &mut self.inline {
            while let Ok(msg) = queue.try_recv() {
                shard.handle(msg);
            }
            shard.tick();
        }
    }

    /// Hands a message to a shard: its queue, or the inline shard directly.
    /// `wait` blocks on a full queue (a wipe or a report must not be lost);
    /// otherwise a full queue drops it, counted (node-to-node work is not
    /// refused for load: the sender's retransmission or timeout covers it).
    fn deliver(&mut self, shard: usize, msg: ShardMsg, wait: bool) {
        if let Some((inline, _)) = &mut self.inline {
            return inline.handle(msg);
        }
        let handle = &self.shards[shard];
        let delivered = if wait {
            let sent = handle.inbox.send(msg).is_ok();
            if let Some(waker) = handle.waker.as_ref().filter(|_| sent) {
                waker.wake();
            }
            sent
        } else {
            handle.try_send(msg).is_ok()
        };
        if !delivered {
            self.ctx.counters.count_drop(Queue::Shard);
        }
    }

    /// One datagram from `from`, a client's or a node's.
    pub fn handle_datagram(&mut self, datagram: &[u8], from: SocketAddr) {
        self.ctx.counters.datagrams.fetch_add(1, Ordering::Relaxed);
        if internal::is_internal(datagram) {
            return self.handle_internal(datagram, from);
        }
        self.handle_client(datagram, from, 0, Origin::Client);
    }

    /// Requests this node's own front-end made (the DynamoDB endpoint),
    /// routed as a client's are and answered to `reply_to`; node-made
    /// commands and keys are allowed (see [`Origin::Node`]).
    pub fn submit(&mut self, datagrams: &[Vec<u8>], reply_to: SocketAddr) {
        self.begin_drain();
        for datagram in datagrams {
            self.handle_client(datagram, reply_to, 0, Origin::Node);
        }
        self.flush();
    }

    /// A client datagram, received directly (`hops` 0) or forwarded. A
    /// forwarded one was taken by the node it reached first, so it is
    /// decoded as [`Origin::Node`]: node-made requests travel that way.
    fn handle_client(&mut self, datagram: &[u8], client: SocketAddr, hops: u8, origin: Origin) {
        let Ok((message_id, parsed)) = wire::decode_client(datagram, origin) else {
            self.ctx.counters.dropped_junk.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if hops == 0 {
            self.ctx.counters.requests[request_kind(&parsed)].fetch_add(1, Ordering::Relaxed);
        }
        match parsed {
            Parsed::Invalid(code) => self.reply(message_id, &Reply::Code(code), client),
            Parsed::Node(command) => self.node_command(message_id, command, client),
            Parsed::Keyed(op) if self.ctx.outsider.load(Ordering::Relaxed) => {
                // The cluster's universe does not list this node: the keys
                // are elsewhere, and a reload may yet add it.
                self.ask_to_wait(message_id, &op, CATCH_UP_WAIT_MS, client)
            }
            Parsed::Keyed(_) if self.starting_alone() => {
                // Just started and no peer heard from yet: this node would
                // coordinate every key from an empty store (it may be a
                // restart into a cluster that has the data). Soon it knows.
                let wait = Reply::Overload {
                    wait_ms: CATCH_UP_WAIT_MS,
                };
                self.reply(message_id, &wait, client)
            }
            Parsed::Keyed(op) => self.route_keyed(datagram, message_id, op, client, hops),
        }
    }

    /// A keyed request: executed here, queued for its shard, forwarded, or
    /// answered with a wait (see [`View::route`]).
    fn route_keyed(&mut self, datagram: &[u8], message_id: &[u8], op: KeyOp<'_>, client: SocketAddr, hops: u8) {
        let bucket = bucket_of_key(op.key().as_bytes());
        let me = Myself {
            away: self.ctx.away.is_set(),
            pulling_bucket: self.ctx.pulling[usize::from(bucket)].load(Ordering::Relaxed),
            hops,
            hops_max: FORWARD_HOPS_MAX,
        };
        match self.view.route(bucket, &me) {
            Route::Execute => self.execute(datagram, message_id, op, client, bucket),
            Route::Forward(coordinator) => {
                self.ctx.counters.forwarded.fetch_add(1, Ordering::Relaxed);
                let forward = Internal::Forward {
                    hops: hops + 1,
                    client,
                    datagram: datagram.to_vec(),
                };
                self.outbox.push(&self.ctx, &*self.io, coordinator, forward);
            }
            Route::Wait if op.grows() && self.view.short_of_room(bucket) => {
                // No live node with room can take the bucket (it has no
                // coordinator because every node that held it is full):
                // the cluster is full here.
                let full = Reply::Code(ErrorCode::OutOfSpace);
                self.answer_write_unless_known(message_id, &op, full, bucket, client);
            }
            Route::Wait => self.ask_to_wait(message_id, &op, CATCH_UP_WAIT_MS, client),
            Route::Refuse => self.ask_to_wait(message_id, &op, REROUTE_WAIT_MS, client),
        }
    }

    /// OVERLOAD with this wait for a keyed request that cannot be served
    /// now, or INTERNAL_FAILURE once its bucket's clients have been asked
    /// to wait for as long as they may be (see [`Waits`]).
    fn ask_to_wait(&mut self, message_id: &[u8], op: &KeyOp<'_>, wait_ms: i32, client: SocketAddr) {
        let bucket = bucket_of_key(op.key().as_bytes());
        let reply = if self.waits.may_wait(bucket, self.ctx.clock.mono_ms()) {
            Reply::Overload { wait_ms }
        } else {
            Reply::Code(ErrorCode::InternalFailure)
        };
        self.answer_write_unless_known(message_id, op, reply, bucket, client);
    }

    /// Answers a request this node will not execute now. A write goes by
    /// its shard, which may know its message id: a retry of a write that
    /// coordinated here before this node stopped coordinating its bucket
    /// is answered as that write is, not told to wait (its client would
    /// send it again as a new request, and both could take effect).
    fn answer_write_unless_known(
        &mut self,
        message_id: &[u8],
        op: &KeyOp<'_>,
        reply: Reply,
        bucket: BucketId,
        client: SocketAddr,
    ) {
        if !op.is_mutation() {
            return self.reply(message_id, &reply, client);
        }
        let shard = self.ctx.shard_of(bucket, self.shards.len());
        let msg = ShardMsg::AnswerUnlessKnown {
            message_id: message_id.to_vec(),
            client,
            reply,
        };
        self.deliver(shard, msg, false);
    }

    /// A request this node coordinates: run by the inline shard at once,
    /// from the receive buffer (the value is copied once, into the store),
    /// or batched for its worker.
    fn execute(&mut self, datagram: &[u8], message_id: &[u8], op: KeyOp<'_>, client: SocketAddr, bucket: BucketId) {
        if let Some((shard, _)) = &mut self.inline {
            if self.socket_backlog > self.backlog_max {
                // The socket is the inline shard's queue.
                return self.refuse([(message_id, client)], self.socket_backlog);
            }
            return shard.serve(&self.view, message_id, op, client);
        }
        let shard = self.ctx.shard_of(bucket, self.shards.len());
        self.batches.push(
            shard,
            Request {
                datagram: datagram.to_vec(),
                client,
            },
        );
    }

    /// A node-to-node or operator datagram: its messages used only once
    /// the [`Gate`] lets them through.
    fn handle_internal(&mut self, datagram: &[u8], from: SocketAddr) {
        match self.gate.check(&self.ctx, &self.view, datagram) {
            Verdict::Universe(universe) => self.to_cluster_core(ClusterMsg::Universe {
                universe,
                reply_to: None,
            }),
            Verdict::Messages { sender, messages } => {
                for message in messages {
                    self.dispatch_internal(sender, message, from);
                }
            }
            Verdict::Refused { why, stranger } => {
                self.ctx.counters.count_rejected(why);
                if let Some((id, universe)) = stranger {
                    self.to_cluster_core(ClusterMsg::Stranger {
                        id,
                        addr: from,
                        universe,
                    });
                }
            }
        }
    }

    fn to_cluster_core(&self, msg: ClusterMsg) {
        if self.gossip.try_send(msg).is_err() {
            self.ctx.counters.count_drop(Queue::Gossip);
        }
    }

    /// One authenticated, fresh node or operator message (from the node in
    /// slot `sender`, or an operator), to where it is handled.
    fn dispatch_internal(&mut self, sender: usize, message: Internal, from: SocketAddr) {
        let (bucket, msg) = match message {
            Internal::Admin {
                message_id,
                command,
                arg,
            } => return self.admin(message_id, command, &arg, from),
            Internal::Gossip { universe, heartbeats } => {
                let roster = &self.ctx.roster;
                let heartbeats = (heartbeats.into_iter())
                    .filter_map(|(id, heartbeat)| Some((roster.slot_of(id)?, heartbeat)))
                    .collect();
                return self.to_cluster_core(ClusterMsg::Gossip {
                    sender,
                    universe,
                    heartbeats,
                });
            }
            Internal::Forward { hops, client, datagram } => {
                return self.handle_client(&datagram, client, hops, Origin::Node);
            }
            Internal::Replicate { seq, entry } => (
                bucket_of_key(&entry.key),
                ShardMsg::Replicate {
                    from: sender,
                    seq,
                    entry,
                },
            ),
            Internal::ReplicateAck {
                seq,
                bucket,
                full,
                refused,
            } => (
                bucket,
                ShardMsg::Ack {
                    from: sender,
                    seq,
                    full,
                    refused,
                },
            ),
            Internal::Held { bucket, digest } => (
                bucket,
                ShardMsg::Held {
                    from: sender,
                    bucket,
                    digest,
                },
            ),
            Internal::Prepare { ref key, .. } => (bucket_of_key(key), ShardMsg::Round { from: sender, message }),
            Internal::Accept { ref entry, .. } => {
                (bucket_of_key(&entry.key), ShardMsg::Round { from: sender, message })
            }
            Internal::Vote { bucket, .. } | Internal::PageVote { bucket, .. } => {
                (bucket, ShardMsg::Round { from: sender, message })
            }
            Internal::PageAsk { ref key, .. } => (bucket_of_key(key), ShardMsg::Round { from: sender, message }),
            // Transfers travel over TCP only (the transfer thread); a batch
            // holds no batch (checked when decoded); a universe is taken
            // before.
            Internal::Pull { .. } | Internal::Chunk(_) | Internal::Batch(_) | Internal::Universe(_) => return,
            Internal::Digests { digests } => return self.route_digests(sender, digests),
            Internal::Compare { .. } | Internal::Compared { .. } => return self.compare(sender, message),
        };
        self.deliver(self.ctx.shard_of(bucket, self.shards.len()), msg, false);
    }

    /// A catch-up's compare: answered here, or (the answer to this node's)
    /// taken by the cluster core.
    fn compare(&mut self, sender: usize, message: Internal) {
        match message {
            Internal::Compare { request, digests } => self.answer_compare(sender, request, &digests),
            Internal::Compared { request, differing } => self.to_cluster_core(ClusterMsg::Compared {
                from: sender,
                request,
                differing,
            }),
            _ => {}
        }
    }

    /// A catching-up peer's digests of buckets: answered at once with those
    /// whose copy here differs (the shards publish each bucket's digest as
    /// it changes), so that it pulls only them.
    fn answer_compare(&mut self, sender: usize, request: u64, digests: &[(BucketId, u64)]) {
        let differing: Vec<BucketId> = (digests.iter())
            .filter(|&&(bucket, digest)| self.ctx.digests[usize::from(bucket)].load(Ordering::Relaxed) != digest)
            .map(|&(bucket, _)| bucket)
            .collect();
        let same = digests.len() - differing.len();
        (self.ctx.counters.pulls_unchanged).fetch_add(same as u64, Ordering::Relaxed);
        self.ctx
            .send(&*self.io, sender, &Internal::Compared { request, differing });
    }

    /// Splits a peer's bucket digests by shard; each shard compares its own.
    fn route_digests(&mut self, sender: usize, digests: Vec<BucketDigest>) {
        let shards = self.shards.len();
        let mut by_shard: Vec<Vec<BucketDigest>> = vec![Vec::new(); shards];
        for digest in digests {
            if usize::from(digest.bucket) < BUCKETS {
                by_shard[self.ctx.shard_of(digest.bucket, shards)].push(digest);
            }
        }
        for (shard, digests) in by_shard.into_iter().enumerate() {
            if !digests.is_empty() {
                self.deliver(shard, ShardMsg::Digests { from: sender, digests }, false);
            }
        }
    }

    /// Answers an authenticated operator command: at once from here, or
    /// from every shard's part (see [`admin`]).
    fn admin(&mut self, message_id: Vec<u8>, command: u8, arg: &[u8], from: SocketAddr) {
        if command == admin::ADOPT_UNIVERSE {
            let Some(universe) = crate::cluster::universe::Universe::decode(arg) else {
                let text = "refused: not a universe a node may hold\n".to_string();
                return self.io.datagram(from, &admin::text_reply(&message_id, text));
            };
            return self.to_cluster_core(ClusterMsg::Universe {
                universe: Box::new(universe),
                reply_to: Some((message_id, from)),
            });
        }
        let Some(kind) = admin::report_kind(command, arg) else {
            return self.io.datagram(from, &admin::unknown_command(&message_id));
        };
        match kind {
            ReportKind::Members => {
                let text = admin::members_text(&self.ctx, &self.view);
                return self.io.datagram(from, &admin::text_reply(&message_id, text));
            }
            ReportKind::Universe => {
                let text = format!("{}replicas {}\n", self.ctx.universe().to_text(), self.view.replicas);
                return self.io.datagram(from, &admin::text_reply(&message_id, text));
            }
            _ => {}
        }
        let header = if kind == ReportKind::Stats {
            admin::refresh_gauges(
                &self.ctx,
                &self.view,
                &self.facts.budget,
                self.rate.per_second(),
                &*self.io,
            );
            admin::stats_header(&self.ctx, self.facts.pid)
        } else {
            String::new()
        };
        let targets: Vec<usize> = match kind {
            ReportKind::Keys(bucket) => vec![self.ctx.shard_of(bucket, self.shards.len())],
            _ => (0..self.shards.len()).collect(),
        };
        let report = Arc::new(Report {
            kind,
            shards_left: AtomicUsize::new(targets.len()),
            parts: Default::default(),
            message_id,
            to: from,
            header,
            ctx: self.ctx.clone(),
        });
        for shard in targets {
            // An operator's question may wait for a busy shard; it is rare.
            self.deliver(shard, ShardMsg::Report(report.clone()), true);
        }
    }

    /// Whether this node of a cluster of several has heard from no peer
    /// since it started, and is within its start-up grace.
    fn starting_alone(&self) -> bool {
        self.view.serving > 1
            && self.ctx.membership_count.load(Ordering::Relaxed) == 1
            && self.ctx.clock.mono_ms() < STARTUP_GRACE_MS
    }

    fn node_command(&mut self, message_id: &[u8], command: NodeCommand, from: SocketAddr) {
        let members = self.ctx.membership_count.load(Ordering::Relaxed);
        match self.node_commands.action(command, message_id, from, members) {
            Action::Reply(reply) => self.reply(message_id, &reply, from),
            Action::Shutdown => self.io.shutdown(),
            Action::Wipeout => self.wipeout(message_id.to_vec(), from),
            Action::Drop => {
                self.ctx.counters.admin_refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Every shard empties its store and cache; the last one answers.
    fn wipeout(&mut self, message_id: Vec<u8>, from: SocketAddr) {
        self.flush();
        let job = Arc::new(Wipeout {
            shards_left: AtomicUsize::new(self.shards.len()),
            wiped_in_stamp_ms: AtomicU64::new(0),
            message_id,
            client: from,
            failed: Default::default(),
        });
        for shard in 0..self.shards.len() {
            self.deliver(shard, ShardMsg::Wipeout(job.clone()), true);
        }
    }

    fn reply(&self, message_id: &[u8], reply: &Reply, to: SocketAddr) {
        self.ctx.counters.count_reply(reply);
        self.io.datagram(to, &reply.encode(message_id));
    }

    /// Sends the node messages this drain gathered, then hands each worker
    /// its batch, or answers the batch OVERLOAD when the worker is behind.
    pub fn flush(&mut self) {
        self.outbox.flush(&self.ctx, &*self.io);
        if let Some((shard, _)) = &mut self.inline {
            shard.flush_outgoing();
        }
        for refused in self.batches.hand_over(&self.shards, self.backlog_max) {
            let ids = refused.requests.iter().filter_map(|request| {
                let (id, _) = wire::decode_client(&request.datagram, Origin::Node).ok()?;
                Some((id, request.client))
            });
            self.refuse(ids, refused.backlog);
        }
    }

    /// Answers OVERLOAD, with a wait that grows with the backlog.
    fn refuse<'a>(&self, requests: impl IntoIterator<Item = (&'a [u8], SocketAddr)>, backlog: usize) {
        let wait_ms = overload_wait_ms(backlog);
        for (message_id, client) in requests {
            self.ctx.counters.overloads.fetch_add(1, Ordering::Relaxed);
            self.reply(message_id, &Reply::Overload { wait_ms }, client);
        }
    }
}

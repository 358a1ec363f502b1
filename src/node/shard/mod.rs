//! A shard: one partition of a node's buckets and everything that is
//! private to it: its [`Store`], its at-most-once reply cache, its write
//! clock and its table of writes waiting for replica acknowledgements.
//! Requests reach a shard by bucket, so a retried request always meets the
//! cache that saw the first try, and the hot path takes no lock.
//!
//! A state machine: [`Shard::handle`] takes one message, [`Shard::tick`]
//! runs on a timer and at the end of every drain. Replies and node messages
//! leave through the node's I/O; nothing waits for the network (a write
//! waiting for acks is parked, not waited for). It runs on the event loop
//! or on a worker thread of its own.
//!
//! One job per file:
//! - [`commit`]: every change to the store logged in the journal, and what
//!   a drain sends held until its changes are written.
//! - [`coordinate`]: a client's request executed here, its write sent to
//!   the other replicas and answered once enough copies exist;
//!   [`pending_writes`]: the writes waiting for replicas, with the GETs
//!   held behind them ([`held_reads`]).
//! - [`replica`]: a write another node coordinated, stored and acknowledged.
//! - [`rounds`]: DynamoDB items' SWAPs as CASPaxos rounds of their home
//!   replicas, proposed here ([`proposals`]) and answered here as an
//!   acceptor ([`promises`] and the store).
//! - [`transfer`]: buckets sent (pulls served, pushes) and received, and
//!   the answering side of anti-entropy; [`pull_progress`]: the pulls
//!   being received and the pulls owed, between messages.
//! - [`full_replicas`]: what replicas' acks said about full stores.
//! - [`retain`]: buckets no longer replicated here dropped, tombstones
//!   every replica holds collected; [`handoff`]: a bucket dropped only
//!   once its replicas confirmed they hold it; [`mismatches`]: anti-entropy's
//!   differences, repaired once they last.
//! - [`wipe`]: the WIPEOUT command, one shard's part.

mod bucket_read;
mod commit;
mod coordinate;
mod full_replicas;
mod handoff;
mod held_reads;
mod mismatches;
mod page_reads;
mod pending_writes;
mod promises;
mod proposals;
mod pull_progress;
mod replay;
mod replica;
mod retain;
mod rounds;
mod transfer;
mod wipe;

pub use pending_writes::PENDING_WRITES_MAX;
pub use replay::Replayed;
pub use transfer::{CHUNK_BYTES_MAX, PUSH_REQUEST};

use crate::cluster::agreement::Agreement;
use crate::node::admin;
use crate::node::context::{NodeContext, NodeIo};
use crate::node::durability::journal::Journal;
use crate::node::mailbox::MailboxSender;
use crate::node::messages::{ClusterMsg, ShardMsg};
use crate::node::outbox::Outbox;
use crate::node::roster::SLOTS_MAX;
use crate::node::waits::Waits;
use crate::protocol::wire::{self, Parsed, Reply};
use crate::storage::hash::SplitMix64;
use crate::storage::memory::MemoryBudget;
use crate::storage::reply_cache::ReplyCache;
use crate::storage::stamp::{Clock, Stamp};
use crate::storage::store::Store;
use commit::Held;
use full_replicas::FullReplicas;
use handoff::HandOffs;
use mismatches::Mismatches;
use pending_writes::PendingWrites;
use pull_progress::{DeferredPulls, PullsReceiving};
use rounds::Rounds;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wipe::Wiped;

/// How often [`Shard::tick`] should run while writes are pending.
pub const TICK_MS: u64 = 20;

/// Settings a shard needs from the node's configuration.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    pub reply_cache_ms: u64,
    /// Bytes this shard's at-most-once cache holds outside the store's budget.
    pub reply_cache_reserve_bytes: usize,
    /// Whether deletes leave tombstones (with more than one replica; and
    /// only while the universe has other serving nodes).
    pub keep_tombstones: bool,
    /// Test fault: this percentage of replicated writes received is
    /// acknowledged but not applied (a replica silently losing writes), so
    /// tests can show anti-entropy repairing it. 0 in production.
    pub fault_lose_replica_writes_percent: u8,
    /// Test fault: an item's round takes one vote as a majority (a write
    /// acknowledged with one copy), so tests can show the Jepsen-style
    /// test finds it. False in production.
    pub fault_single_vote_rounds: bool,
    /// Test fault: a consistent page of a bucket is one home replica's,
    /// every record taken as confirmed, so tests can show the Jepsen-style
    /// test finds a Query that reads one copy. False in production.
    pub fault_one_copy_pages: bool,
}

pub struct Shard {
    /// Which of the node's shards it is.
    index: usize,
    store: Store,
    cache: ReplyCache,
    clock: Clock,
    io: Arc<dyn NodeIo>,
    /// Replicated writes, acknowledgements and digests, sent per peer at
    /// the end of each drain ([`Shard::tick`]).
    outbox: Outbox,
    /// Requests queued for this shard and not yet answered (the router's
    /// overload signal).
    backlog: Arc<AtomicUsize>,
    keep_tombstones: bool,
    fault_lose_percent: u64,
    fault_rng: SplitMix64,
    ctx: Arc<NodeContext>,
    cluster: MailboxSender<ClusterMsg>,
    /// Writes waiting for replicas, and the GETs held behind them.
    pending: PendingWrites,
    /// Pulls this shard is receiving chunks for, by request id.
    pulls_receiving: PullsReceiving,
    /// Pulls of peers to answer when the transfer layer has room again.
    deferred_pulls: DeferredPulls,
    /// Buckets this node hands off and the replicas that confirmed them,
    /// and the hand-off pulls it receives as a replica.
    handoffs: HandOffs,
    /// Buckets anti-entropy found different, repaired once it lasts.
    mismatches: Mismatches,
    /// What the other replicas are known to hold, for tombstone collection.
    agreement: Agreement,
    /// From the cluster core's last retain pass (see [`ShardMsg::Retain`]).
    collect_from_stamp_ms: Option<u64>,
    /// What replicas' acks said about their stores being full.
    full_replicas: FullReplicas,
    /// The WIPEOUT floor, and a finished WIPEOUT waiting to be answered.
    wiped: Wiped,
    /// How long each bucket's clients have been asked to wait.
    waits: Waits,
    /// Per bucket, when the cluster core was last told the store refused
    /// one of its entries (empty until the first refusal).
    incomplete_told_ms: Vec<u64>,
    /// Where replies are encoded, reused from reply to reply.
    reply_buffer: Vec<u8>,
    /// The store's changes on disk (None: a node with no data directory).
    journal: Option<Journal>,
    /// What this drain sends once its changes are in the journal.
    held: Held,
    /// Items' rounds: those proposed here, and promises made as acceptor.
    rounds: Rounds,
}

impl Shard {
    pub fn new(
        index: usize,
        config: &ShardConfig,
        budget: Arc<MemoryBudget>,
        io: Arc<dyn NodeIo>,
        backlog: Arc<AtomicUsize>,
        ctx: Arc<NodeContext>,
        cluster: MailboxSender<ClusterMsg>,
    ) -> Shard {
        let ctx_seed = (ctx.self_index as u64) << 8 | index as u64;
        let single_vote = config.fault_single_vote_rounds || crate::planted!(ctx, single_vote_rounds);
        Shard {
            index,
            outbox: Outbox::new(&ctx),
            reply_buffer: Vec::new(),
            waits: Waits::default(),
            incomplete_told_ms: Vec::new(),
            store: Store::new(budget.clone()),
            cache: ReplyCache::new(config.reply_cache_ms, config.reply_cache_reserve_bytes, budget),
            clock: Clock::new(ctx.stamp_id.load(Ordering::Relaxed)),
            io,
            backlog,
            keep_tombstones: config.keep_tombstones,
            fault_lose_percent: u64::from(config.fault_lose_replica_writes_percent),
            fault_rng: SplitMix64::new(ctx.self_index as u64 + 1),
            ctx,
            cluster,
            pending: PendingWrites::default(),
            pulls_receiving: PullsReceiving::default(),
            deferred_pulls: DeferredPulls::default(),
            handoffs: HandOffs::default(),
            mismatches: Mismatches::default(),
            agreement: Agreement::default(),
            collect_from_stamp_ms: None,
            full_replicas: FullReplicas::new(SLOTS_MAX),
            wiped: Wiped::default(),
            journal: None,
            held: Held::default(),
            rounds: Rounds::new(ctx_seed, (single_vote, config.fault_one_copy_pages)),
        }
    }

    /// Gives the shard its journal, once its store holds what recovery
    /// read: from now on every change is logged.
    pub fn set_journal(&mut self, journal: Journal) {
        self.journal = Some(journal);
    }

    /// Writes a snapshot of the whole store at once (after recovery from
    /// files of another shard layout, before the node serves).
    pub fn snapshot_now(&mut self) -> std::io::Result<()> {
        let now = self.now_ms();
        match &mut self.journal {
            Some(journal) => journal.snapshot_now(&self.store, self.wiped.floor(), now),
            None => Ok(()),
        }
    }

    /// The records this shard holds (read-only: for reports and the
    /// simulator's checks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether its journal refuses writes after a failed one.
    pub fn journal_failing(&self) -> bool {
        self.journal.as_ref().is_some_and(Journal::failing)
    }

    /// Monotonic milliseconds since the node started.
    fn now_ms(&self) -> u64 {
        self.ctx.clock.mono_ms()
    }

    /// Whether [`Shard::tick`] has work on a timer (writes waiting for
    /// replicas, a WIPEOUT waiting for its millisecond to pass, pulls to
    /// answer when the transfer layer has room).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
            || !self.rounds.is_empty()
            || self.wiped.reply_waits()
            || !self.deferred_pulls.is_empty()
    }

    /// How long until [`Shard::tick`] should run: [`TICK_MS`] while writes
    /// wait, sooner when the journal's timer (a sync, a compaction step)
    /// is due sooner; None when nothing waits on a timer.
    pub fn tick_in_ms(&self) -> Option<u64> {
        let now = self.now_ms();
        let journal = self.journal.as_ref().and_then(|journal| journal.tick_in_ms(now));
        let own = self.has_pending().then_some(TICK_MS);
        [journal, own].into_iter().flatten().min()
    }

    pub fn handle(&mut self, msg: ShardMsg) {
        match msg {
            ShardMsg::Requests(requests) => self.serve_batch(requests),
            ShardMsg::AnswerUnlessKnown {
                message_id,
                client,
                reply,
            } => {
                if !self.answer_known(&message_id, client) {
                    self.send_reply(&message_id, &reply, client);
                }
            }
            ShardMsg::Wipeout(job) => self.wipe(job),
            ShardMsg::Replicate { from, seq, entry } => self.store_replicated(from, seq, &entry),
            ShardMsg::Ack {
                from,
                seq,
                full,
                refused,
            } => self.acknowledged(from, seq, full, refused),
            ShardMsg::ServePull {
                to,
                request,
                bucket,
                digest,
            } => self.serve_pull(to, request, bucket, digest),
            ShardMsg::Chunk { chunk, bytes } => {
                self.receive_chunk(&chunk);
                self.io.applied(bytes);
            }
            ShardMsg::Held { from, bucket, digest } => self.handoffs.confirmed(from, bucket, digest),
            ShardMsg::Round { from, message } => self.round_message(from, message),
            ShardMsg::Report(report) => {
                admin::add_shard_part(&report, &self.store, self.handoffs.giving());
                if let Some(datagram) = report.shard_done() {
                    self.io.datagram(report.to, &datagram);
                }
            }
            ShardMsg::AntiEntropy { to, buckets } => self.send_digests(to, &buckets),
            ShardMsg::Digests { from, digests } => self.compare_digests(from, digests),
            ShardMsg::Retain {
                keep,
                collect_from_stamp_ms,
            } => self.retain(&keep, collect_from_stamp_ms),
        }
    }

    /// The requests of one drain, routed here by a router on another thread.
    fn serve_batch(&mut self, requests: Vec<crate::node::messages::Request>) {
        let count = requests.len();
        // One view per batch: placement changes a few times a minute.
        let view = self.ctx.view();
        for request in requests {
            // The router decoded it once already to route it.
            if let Ok((message_id, Parsed::Keyed(op))) = wire::decode_client(&request.datagram, wire::Origin::Node) {
                self.serve(&view, message_id, op, request.client);
            }
        }
        self.backlog.fetch_sub(count, Ordering::Relaxed);
    }

    /// On the timer and at the end of a drain: expires at-most-once
    /// entries, answers a finished WIPEOUT, stops waiting for replicas that
    /// died and resends to the silent ones, then sends what was gathered.
    pub fn tick(&mut self) {
        self.answer_wipeout();
        self.serve_deferred_pulls();
        self.check_pending();
        self.check_rounds();
        let now = self.now_ms();
        if let Some(journal) = &mut self.journal {
            journal.tick(now, &self.store, self.wiped.floor());
            let unsynced = journal.unsynced_since_ms().map_or(0, |since| since + 1);
            self.ctx.unsynced_since_ms[self.index].store(unsynced, Ordering::Relaxed);
        }
        self.commit();
    }

    /// The end of a drain or of a batch of messages: the drain's changes
    /// written (see [`commit`]), then what waited for them, then the node
    /// messages gathered since the last flush.
    pub fn flush_outgoing(&mut self) {
        self.commit();
    }

    fn send_reply(&mut self, message_id: &[u8], reply: &Reply, client: SocketAddr) {
        self.ctx.counters.count_reply(reply);
        let mut buffer = std::mem::take(&mut self.reply_buffer);
        reply.encode_into(message_id, &mut buffer);
        self.send_client(client, &buffer, message_id);
        self.reply_buffer = buffer;
    }

    /// A stamp newer than the wall clock and than the key's stored stamp,
    /// with this node's stamp id (the universe's word on it).
    fn next_stamp(&mut self, key: &[u8]) -> Stamp {
        if let Some(stored) = self.store.stamp_of(key) {
            self.clock.observe(stored);
        }
        self.clock.set_node(self.ctx.stamp_id.load(Ordering::Relaxed));
        self.clock.stamp(self.ctx.clock.stamp_ms())
    }
}

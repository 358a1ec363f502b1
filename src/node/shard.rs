//! A shard and what it owns: one partition of the keys, its private
//! at-most-once reply cache, its write clock and its table of writes waiting
//! for replica acknowledgements. Requests reach a shard by key bucket, so a
//! retried request always meets the cache that saw the first try, and the
//! hot path takes no lock. A state machine: [`Worker::handle`] one message,
//! [`Worker::tick_pending`] on a timer; replies and node messages leave
//! through the node's I/O, and nothing waits for the network (a write
//! waiting for acks is parked, not waited for). It runs on the event loop
//! or on a worker thread of its own.

use crate::cluster::agreement::{Agreement, Position};
use crate::cluster::internal::{Chunk, Entry, Internal, entry_wire_bytes};
use crate::cluster::ring::View;
use crate::log;
use crate::node::admin::{Report, ReportKind};
use crate::node::context::{Channel, NodeContext, NodeIo};
use crate::node::mailbox::MailboxSender;
use crate::node::messages::{ClusterMsg, ShardMsg, Wipeout};
use crate::node::outbox::Outbox;
use crate::protocol::wire::{self, ErrorCode, Key, KeyOp, Parsed, Reply};
use crate::storage::hash::{BUCKETS, BucketId, SplitMix64, bucket_of, key_hash, message_id_hash};
use crate::storage::memory::{FULL_ENTER_PERCENT, MemoryBudget, trim_heap};
use crate::storage::record::Record;
use crate::storage::reply_cache::ReplyCache;
use crate::storage::stamp::{Clock, Stamp};
use crate::storage::store::{Applied, BucketStats, Partition, Write};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes a shard may have waiting for replica acks; beyond, OVERLOAD.
pub const PENDING_WRITES_MAX: usize = 16_384;
/// Resend a replication datagram not acknowledged within this time.
const REPLICATE_RESEND_MS: u64 = 100;
/// Copies a write must have before the client hears it is done, where the
/// cluster and the replica count allow (see [`copies_required`]).
const COPIES_REQUIRED: usize = 2;
/// A write that cannot reach enough copies (this node is cut off from
/// every other replica) is given up after this long, with no reply: the
/// client's retries are long over, and it never heard "done".
const PENDING_GIVE_UP_MS: u64 = 10_000;
/// The back-off asked of a client whose write finds no other live replica.
const ALONE_WAIT_MS: i32 = 1_000;
/// How long an ack's word that a replica is full counts, when no later ack
/// says otherwise: until gossip, which has the last word, has spread it.
const FULL_ACK_MS: u64 = 3_000;
/// How often [`Worker::tick_pending`] should run while writes are pending.
pub const TICK_MS: u64 = 20;
/// Bucket transfers being received at once (bounded bookkeeping).
const SYNCS_IN_PROGRESS_MAX: usize = 256;
/// Payload budget of one transfer chunk (a message on the transfer stream).
const SYNC_CHUNK_BYTES_MAX: usize = 60_000;
/// The request id of anti-entropy repair transfers (pulls number from 1).
pub const REPAIR_REQUEST: u64 = 0;

/// Settings a worker needs from the node's configuration.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    pub reply_cache_ms: u64,
    /// Bytes this shard's at-most-once cache holds outside the store's budget.
    pub reply_cache_reserve_bytes: usize,
    /// Whether deletes leave tombstones (only when other replicas exist).
    pub keep_tombstones: bool,
    /// Test fault: this percentage of replicated writes received is
    /// acknowledged but not applied (a replica silently losing writes), so
    /// tests can show anti-entropy repairing it. 0 in production.
    pub fault_lose_replica_writes_percent: u8,
}

/// A write this shard just applied, for the other replicas.
struct Written<'a> {
    key: Key,
    value: &'a [u8],
    version: i32,
    stamp: Stamp,
    tombstone: bool,
}

/// A write applied here, waiting for replicas before the client hears.
struct Pending {
    client: SocketAddr,
    message_id: Vec<u8>,
    id_hash: u64,
    code: ErrorCode,
    bucket: BucketId,
    /// Replicas asked and not heard from.
    waiting: Vec<usize>,
    /// Every replica asked, heard from or not.
    asked: Vec<usize>,
    /// Nodes known to store the write, this one included.
    copies: usize,
    /// The replicated write; each send is signed anew (a resend is a new
    /// message to the receiver's replay window, see [`crate::cluster::freshness`]).
    message: Internal,
    resend_at_ms: u64,
    give_up_at_ms: u64,
}

/// Copies a write needs before it is acknowledged: two (a crash of any one
/// node loses no acknowledged write), or fewer where the cluster or the
/// replica count has fewer nodes. A node that sees every other replica dead
/// (it is the one cut off, more likely than not) acknowledges nothing.
fn copies_required(replicas: usize, nodes: usize) -> usize {
    COPIES_REQUIRED.min(replicas).min(nodes)
}

struct SyncProgress {
    bucket: BucketId,
    received: Vec<bool>,
    entries: usize,
}

pub struct Worker {
    partition: Partition,
    cache: ReplyCache,
    clock: Clock,
    io: Arc<dyn NodeIo>,
    /// Replicated writes, acknowledgements and digests, sent per peer at
    /// the end of each drain ([`Worker::tick_pending`]).
    outbox: Outbox,
    /// Requests queued for this shard and not yet answered (the net thread's
    /// overload signal).
    backlog: Arc<AtomicUsize>,
    keep_tombstones: bool,
    fault_lose_percent: u64,
    fault_rng: SplitMix64,
    ctx: Arc<NodeContext>,
    cluster: MailboxSender<ClusterMsg>,
    /// By sequence number (ordered, so a run replays the same way).
    pending: BTreeMap<u64, Pending>,
    pending_ids: HashMap<u64, u64>,
    next_seq: u64,
    syncs: BTreeMap<u64, SyncProgress>,
    /// Buckets this node no longer replicates whose entries it has pushed
    /// to their replicas; dropped at the next retain pass.
    handed_off: Vec<bool>,
    /// What the other replicas are known to hold, for tombstone collection.
    agreement: Agreement,
    /// From the cluster thread's last retain pass (see [`ShardMsg::Retain`]).
    collect_from_ms: Option<u64>,
    /// Per node: until when an ack said its store is full.
    full_until_ms: Vec<u64>,
    /// The latest of those (0 once passed: no replica is known full).
    full_acked_until_ms: u64,
    /// Entries stamped before this node's last WIPEOUT are not taken in.
    wiped_before: Stamp,
    /// A WIPEOUT done by every shard, answered once its millisecond passed.
    wipe_reply: Option<Arc<Wipeout>>,
    /// Copies a write needs before it is acknowledged (fixed for the
    /// node's life: the replica count and the servers file do not change).
    copies_required: usize,
    /// Where replies are encoded, reused from reply to reply.
    reply_buffer: Vec<u8>,
}

impl Worker {
    pub fn new(
        config: &ShardConfig,
        budget: Arc<MemoryBudget>,
        io: Arc<dyn NodeIo>,
        backlog: Arc<AtomicUsize>,
        ctx: Arc<NodeContext>,
        cluster: MailboxSender<ClusterMsg>,
    ) -> Worker {
        let nodes = ctx.addrs.len();
        let copies_required = copies_required(ctx.view().replicas, nodes);
        Worker {
            outbox: Outbox::new(&ctx),
            reply_buffer: Vec::new(),
            copies_required,
            partition: Partition::new(budget.clone()),
            cache: ReplyCache::new(config.reply_cache_ms, config.reply_cache_reserve_bytes, budget),
            clock: Clock::new(ctx.self_index as u8),
            io,
            backlog,
            keep_tombstones: config.keep_tombstones,
            fault_lose_percent: u64::from(config.fault_lose_replica_writes_percent),
            fault_rng: SplitMix64::new(ctx.self_index as u64 + 1),
            ctx,
            cluster,
            pending: BTreeMap::new(),
            pending_ids: HashMap::new(),
            next_seq: 1,
            syncs: BTreeMap::new(),
            handed_off: vec![false; BUCKETS],
            agreement: Agreement::default(),
            collect_from_ms: None,
            full_until_ms: vec![0; nodes],
            full_acked_until_ms: 0,
            wiped_before: Stamp(0),
            wipe_reply: None,
        }
    }

    fn now_ms(&self) -> u64 {
        self.ctx.clock.mono_ms()
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.wipe_reply.is_some()
    }

    /// Answers a finished WIPEOUT once the wall clock is past every
    /// millisecond a shard wiped in.
    fn answer_wipeout(&mut self) {
        let Some(job) = &self.wipe_reply else {
            return;
        };
        if self.ctx.clock.stamp_ms() <= job.wiped_in_ms.load(Ordering::Acquire) {
            return;
        }
        let reply = Reply::Code(ErrorCode::Success);
        self.ctx.counters.count_reply(&reply);
        self.io.datagram(job.client, &reply.encode(&job.message_id));
        self.wipe_reply = None;
    }

    pub fn handle(&mut self, msg: ShardMsg) {
        match msg {
            ShardMsg::Requests(requests) => {
                let count = requests.len();
                // One view per batch: placement changes a few times a minute.
                let view = self.ctx.view();
                for request in requests {
                    // The event loop decoded it once already to route it.
                    if let Ok((message_id, Parsed::Keyed(op))) = wire::decode_client(&request.datagram) {
                        self.serve(&view, message_id, op, request.client);
                    }
                }
                self.backlog.fetch_sub(count, Ordering::Relaxed);
            }
            ShardMsg::Wipeout(job) => {
                // What any replica still holds or sends from this millisecond
                // or before stays out: a write acknowledged before the WIPEOUT
                // was sent may reach this replica after it, stamped in the
                // same millisecond. The reply waits for the next millisecond,
                // so every write a client starts after it is stamped later.
                let wiped_in_ms = self.ctx.clock.stamp_ms();
                self.wiped_before = Stamp::from_millis(wiped_in_ms + 1);
                job.wiped_in_ms.fetch_max(wiped_in_ms, Ordering::AcqRel);
                self.partition.wipe();
                self.cache.clear();
                self.agreement.clear();
                trim_heap();
                if job.shards_left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    // The memory is back: let PUTs in before answering.
                    self.partition.budget().check_rss();
                    self.wipe_reply = Some(job);
                    self.answer_wipeout();
                }
            }
            ShardMsg::Replicate { from, seq, entry } => {
                let applied = if self.fault_loses_write() {
                    Applied::Stored
                } else {
                    self.apply_entry(&entry)
                };
                let ack = Internal::ReplicateAck {
                    seq,
                    bucket: bucket_of(key_hash(&entry.key)),
                    full: self.partition.budget().is_full(FULL_ENTER_PERCENT),
                    refused: applied == Applied::OutOfSpace,
                };
                self.outbox.push(&self.ctx, &*self.io, from, ack);
            }
            ShardMsg::Ack {
                from,
                seq,
                full,
                refused,
            } => {
                if refused {
                    // Stored here and on the other replicas, not on this
                    // one: as if it were down when the write was made.
                    self.ctx.counters.replica_refusals.fetch_add(1, Ordering::Relaxed);
                }
                let until = if full { self.now_ms() + FULL_ACK_MS } else { 0 };
                if let Some(slot) = self.full_until_ms.get_mut(from) {
                    *slot = until;
                    self.full_acked_until_ms = self.full_acked_until_ms.max(until);
                }
                let required = self.copies_required;
                if let Some(pending) = self.pending.get_mut(&seq)
                    && pending.waiting.contains(&from)
                {
                    pending.waiting.retain(|&node| node != from);
                    pending.copies += usize::from(!refused);
                    if pending.waiting.is_empty() && pending.copies >= required {
                        self.complete(seq);
                    }
                }
            }
            ShardMsg::SyncServe { to, request, bucket } => {
                // Refused when the send queues are full: the puller asks again.
                self.serve_bucket(to, request, bucket);
            }
            ShardMsg::SyncChunk { chunk, bytes } => {
                self.receive_chunk(&chunk);
                self.io.applied(bytes);
            }
            ShardMsg::Report(report) => self.report(&report),
            ShardMsg::AntiEntropy { to, buckets } => {
                let digests = buckets
                    .iter()
                    .map(|&b| {
                        let cutoff_s = self.agreement.cutoff_s(b, self.collect_from_ms);
                        (b, self.partition.bucket_stats(b).digest, cutoff_s)
                    })
                    .collect();
                (self.outbox).push(&self.ctx, &*self.io, to, Internal::Digests { digests });
            }
            ShardMsg::Digests { from, digests } => self.compare_digests(from, digests),
            ShardMsg::Retain { keep, collect_from_ms } => self.retain(&keep, collect_from_ms),
        }
    }

    /// Executes a client's keyed request and answers it (now, or once the
    /// replicas have acknowledged a write).
    pub fn serve(&mut self, view: &View, message_id: &[u8], op: KeyOp<'_>, client: SocketAddr) {
        if let KeyOp::Get { key } = op {
            return self.answer_get(message_id, key.as_bytes(), client);
        }
        if let Some(reply) = self.execute_write(view, message_id, op, client) {
            self.send_reply(message_id, &reply, client);
        }
    }

    /// A GET, answered from the stored record straight into the reply
    /// buffer (reads are not cached: repeating one changes nothing).
    fn answer_get(&mut self, message_id: &[u8], key: &[u8], client: SocketAddr) {
        let Some(record) = self.partition.get(key) else {
            return self.send_reply(message_id, &Reply::Code(ErrorCode::NonExistentKey), client);
        };
        wire::encode_value_reply_into(message_id, record.value(), record.version(), &mut self.reply_buffer);
        self.ctx.counters.replies[ErrorCode::Success as usize].fetch_add(1, Ordering::Relaxed);
        self.io.datagram(client, &self.reply_buffer);
    }

    fn send_reply(&mut self, message_id: &[u8], reply: &Reply, client: SocketAddr) {
        self.ctx.counters.count_reply(reply);
        reply.encode_into(message_id, &mut self.reply_buffer);
        self.io.datagram(client, &self.reply_buffer);
    }

    /// Anti-entropy, answering side: notes which replicas matched (for
    /// tombstone collection) and exchanges the buckets whose digests differ.
    fn compare_digests(&mut self, from: usize, digests: Vec<(BucketId, u64, u32)>) {
        let view = self.ctx.view();
        let now = self.ctx.clock.stamp_ms();
        for (bucket, theirs, their_cutoff_s) in digests {
            let matched = self.partition.bucket_stats(bucket).digest == theirs;
            let prefs = view.preference(bucket);
            let position = |node: usize| prefs.iter().position(|&n| usize::from(n) == node);
            if let (Some(at), Some(own)) = (position(from), position(self.ctx.self_index)) {
                let peer = Position {
                    at,
                    own,
                    replicas: prefs.len(),
                };
                self.agreement.compared(bucket, peer, their_cutoff_s, matched, now);
            }
            if !matched {
                self.ctx.counters.repairs.fetch_add(1, Ordering::Relaxed);
                // Either may be refused on full queues; the next
                // comparison finds the difference again.
                self.serve_bucket(from, REPAIR_REQUEST, bucket);
                let pull = Internal::SyncRequest {
                    request: REPAIR_REQUEST,
                    bucket,
                };
                let frame = self.ctx.encode(from, Channel::Stream, &pull);
                self.io.stream(from, vec![frame]);
            }
        }
    }

    /// Executes one PUT or REMOVE at most once per message id. Returns the
    /// reply, or `None` when it is sent later (after replica acks) or not at
    /// all (a retry of a write still waiting for them).
    fn execute_write(&mut self, view: &View, message_id: &[u8], op: KeyOp<'_>, client: SocketAddr) -> Option<Reply> {
        let id_hash = message_id_hash(message_id);
        if op.is_mutation() {
            if self.pending_ids.contains_key(&id_hash) {
                return None;
            }
            if let Some(code) = self.cache.get(id_hash) {
                let code = ErrorCode::from_code(u32::from(code)).unwrap_or(ErrorCode::InternalFailure);
                return Some(Reply::Code(code));
            }
            if self.pending.len() >= PENDING_WRITES_MAX {
                return Some(Reply::Overload { wait_ms: 50 });
            }
            let bucket = bucket_of(key_hash(op.key().as_bytes()));
            if view.preference(bucket).len() < self.copies_required {
                // No other replica is alive here: a write stored only on
                // this node would be lost with it. Failure detection or a
                // healing partition may bring one back: the client waits.
                return Some(Reply::Overload { wait_ms: ALONE_WAIT_MS });
            }
        }
        let (code, written) = match op {
            // Answered by `serve` before it gets here.
            KeyOp::Get { .. } => return None,
            KeyOp::Put { key, value, .. } if self.grows_a_full_replica(view, key.as_bytes(), value.len()) => {
                (ErrorCode::OutOfSpace, None)
            }
            KeyOp::Put { key, value, version } => {
                let stamp = self.next_stamp(key.as_bytes());
                let write = Write::Value { value, version };
                match self.partition.apply(key.as_bytes(), write, stamp) {
                    Applied::Stored => {
                        let written = Written {
                            key,
                            value,
                            version,
                            stamp,
                            tombstone: false,
                        };
                        (ErrorCode::Success, Some(written))
                    }
                    Applied::OutOfSpace => (ErrorCode::OutOfSpace, None),
                    // The clock cannot issue a newer stamp (it is saturated):
                    // never expected, and nothing was stored.
                    Applied::Stale => (ErrorCode::InternalFailure, None),
                }
            }
            KeyOp::Remove { key: removed } => {
                let key = removed.as_bytes();
                let code = match self.partition.get(key) {
                    Some(_) => ErrorCode::Success,
                    None => ErrorCode::NonExistentKey,
                };
                if !self.keep_tombstones {
                    self.partition.forget(key);
                    (code, None)
                } else {
                    // Even a key this node does not see (or holds a
                    // tombstone of) gets a tombstone stamped now: a replica
                    // may be away with a copy written since the old
                    // tombstone (the simulator found one, after a
                    // partition), and the delete must win over that copy.
                    // A full store that has no room for a new tombstone still
                    // sends it on: the replicas holding the key store it.
                    let stamp = self.next_stamp(key);
                    self.partition.apply(key, Write::Tombstone, stamp);
                    let written = Written {
                        key: removed,
                        value: &[],
                        version: 0,
                        stamp,
                        tombstone: true,
                    };
                    (code, Some(written))
                }
            }
        };
        let now = self.now_ms();
        self.cache.insert(id_hash, code as u8, now);
        if let Some(written) = written {
            return self.replicate(view, &written, code, message_id, id_hash, client);
        }
        Some(Reply::Code(code))
    }

    /// Whether a PUT would grow a bucket one of whose other replicas is full
    /// (a replica must take every write it is sent; see [`crate::cluster::ring`]).
    fn grows_a_full_replica(&mut self, view: &View, key: &[u8], value_bytes: usize) -> bool {
        if !view.any_full() && self.full_acked_until_ms == 0 {
            return false;
        }
        let now = self.now_ms();
        if self.full_acked_until_ms <= now {
            self.full_acked_until_ms = 0;
        }
        let me = self.ctx.self_index;
        let bucket = bucket_of(key_hash(key));
        let full_replica = view
            .preference(bucket)
            .iter()
            .map(|&n| usize::from(n))
            .any(|n| n != me && (view.liveness.full[n] || self.full_until_ms[n] > now));
        full_replica
            && self
                .partition
                .get(key)
                .is_none_or(|record| record.value().len() < value_bytes)
    }

    /// Sends a write to the bucket's other live replicas and parks the reply.
    fn replicate(
        &mut self,
        view: &View,
        written: &Written<'_>,
        code: ErrorCode,
        message_id: &[u8],
        id_hash: u64,
        client: SocketAddr,
    ) -> Option<Reply> {
        let bucket = bucket_of(key_hash(written.key.as_bytes()));
        let me = self.ctx.self_index;
        let waiting: Vec<usize> = view
            .preference(bucket)
            .iter()
            .map(|&n| usize::from(n))
            .filter(|&n| n != me)
            .collect();
        if waiting.is_empty() && self.copies_required <= 1 {
            return Some(Reply::Code(code));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            key: written.key.as_bytes().to_vec(),
            value: written.value.to_vec(),
            version: written.version,
            stamp: written.stamp,
            tombstone: written.tombstone,
        };
        let message = Internal::Replicate { seq, entry };
        for &node in &waiting {
            self.outbox.push(&self.ctx, &*self.io, node, message.clone());
        }
        if self.ctx.bugs.ack_before_replicas {
            return Some(Reply::Code(code));
        }
        let now = self.now_ms();
        self.pending_ids.insert(id_hash, seq);
        self.pending.insert(
            seq,
            Pending {
                client,
                message_id: message_id.to_vec(),
                id_hash,
                code,
                bucket,
                asked: waiting.clone(),
                waiting,
                copies: 1,
                message,
                resend_at_ms: now + REPLICATE_RESEND_MS,
                give_up_at_ms: now + PENDING_GIVE_UP_MS,
            },
        );
        None
    }

    fn complete(&mut self, seq: u64) {
        if let Some(pending) = self.pending.remove(&seq) {
            self.pending_ids.remove(&pending.id_hash);
            self.send_reply(&pending.message_id, &Reply::Code(pending.code), pending.client);
        }
    }

    /// Expires old at-most-once entries; stops waiting for replicas that
    /// died and resends to the silent ones.
    pub fn tick_pending(&mut self) {
        self.answer_wipeout();
        self.check_pending();
        self.flush_outgoing();
    }

    /// Sends the node messages gathered since the last flush (the end of a
    /// drain or a batch of messages).
    pub fn flush_outgoing(&mut self) {
        self.outbox.flush(&self.ctx, &*self.io);
    }

    fn check_pending(&mut self) {
        let now = self.now_ms();
        self.cache.expire(now);
        if self.pending.is_empty() {
            return;
        }
        let view = self.ctx.view();
        let required = self.copies_required;
        let me = self.ctx.self_index;
        let (mut done, mut given_up) = (Vec::new(), Vec::new());
        for (&seq, pending) in &mut self.pending {
            pending.waiting.retain(|&node| view.liveness.alive[node]);
            if pending.waiting.is_empty() && pending.copies < required {
                // Replicas died before they acknowledged: the nodes that
                // stand in for them now take the write.
                let stand_ins = (view.preference(pending.bucket).iter())
                    .map(|&n| usize::from(n))
                    .filter(|n| *n != me && !pending.asked.contains(n))
                    .collect::<Vec<usize>>();
                pending.asked.extend(&stand_ins);
                pending.waiting = stand_ins;
                pending.resend_at_ms = now;
            }
            if pending.waiting.is_empty() && pending.copies >= required {
                done.push(seq);
            } else if now >= pending.give_up_at_ms {
                given_up.push(seq);
            } else if now >= pending.resend_at_ms {
                for &node in &pending.waiting {
                    (self.outbox).push(&self.ctx, &*self.io, node, pending.message.clone());
                }
                pending.resend_at_ms = now + REPLICATE_RESEND_MS;
            }
        }
        for seq in done {
            self.complete(seq);
        }
        for seq in given_up {
            if let Some(pending) = self.pending.remove(&seq) {
                self.pending_ids.remove(&pending.id_hash);
                self.ctx.counters.writes_given_up.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn fault_loses_write(&mut self) -> bool {
        if self.fault_lose_percent == 0 {
            return false;
        }
        self.fault_rng.below(100) < self.fault_lose_percent
    }

    /// Applies a replicated or transferred entry if it is newer.
    /// Offers a replicated or transferred entry to the store, through the
    /// same memory admission as a client's write.
    fn apply_entry(&mut self, entry: &Entry) -> Applied {
        if entry.stamp < self.wiped_before {
            // Written before this node's WIPEOUT: a replica not wiped yet
            // must not refill what was wiped.
            return Applied::Stale;
        }
        self.clock.observe(entry.stamp);
        if self.ctx.bugs.ignore_stamps_on_merge {
            // Whatever is stored goes, so any copy that arrives wins.
            self.partition.forget(&entry.key);
        }
        let bucket = bucket_of(key_hash(&entry.key));
        if entry.tombstone
            && entry.stamp < self.agreement.cutoff(bucket, self.collect_from_ms)
            && self.partition.stamp_of(&entry.key).is_none()
        {
            // Every replica held this tombstone and it was collected here;
            // a replica that has yet to collect it sends it back meanwhile.
            return Applied::Stale;
        }
        let write = if entry.tombstone {
            Write::Tombstone
        } else {
            Write::Value {
                value: &entry.value,
                version: entry.version,
            }
        };
        self.partition.apply(&entry.key, write, entry.stamp)
    }

    /// Queues every entry of a bucket for node `to`, in chunks of at most
    /// [`SYNC_CHUNK_BYTES_MAX`]. False when the transfer queues are full.
    fn serve_bucket(&mut self, to: usize, request: u64, bucket: BucketId) -> bool {
        // First where each chunk starts, so that each can say how many there
        // are; then one chunk of entries at a time is copied and encoded.
        let mut starts = vec![0];
        let mut count = 0;
        let mut bytes = 0;
        for record in self.partition.bucket_records(bucket) {
            let size = entry_wire_bytes(record.key().len(), record.value().len());
            if bytes > 0 && bytes + size > SYNC_CHUNK_BYTES_MAX {
                starts.push(count);
                bytes = 0;
            }
            bytes += size;
            count += 1;
        }
        starts.push(count);
        let chunks = (starts.len() - 1) as u16;
        let mut records = self.partition.bucket_records(bucket);
        let frames = starts
            .windows(2)
            .enumerate()
            .map(|(index, range)| {
                let entries = records.by_ref().take(range[1] - range[0]).map(entry_of).collect();
                self.ctx.encode(
                    to,
                    Channel::Stream,
                    &Internal::SyncChunk(Chunk {
                        request,
                        bucket,
                        chunk: index as u16,
                        chunks,
                        entries,
                    }),
                )
            })
            .collect();
        self.io.stream(to, frames)
    }

    /// Drops what this node no longer replicates, in two steps: first its
    /// entries are pushed to the bucket's replicas (a node that stood in
    /// for them may hold writes they never saw), and only at the next pass,
    /// if the bucket is still not ours, are they dropped. Tombstones every
    /// replica holds go at once.
    fn retain(&mut self, keep: &[bool], collect_from_ms: Option<u64>) {
        self.collect_from_ms = collect_from_ms;
        let view = self.ctx.view();
        let me = self.ctx.self_index;
        let mut drop = vec![false; BUCKETS];
        for bucket in 0..BUCKETS as BucketId {
            let b = usize::from(bucket);
            let stats = self.partition.bucket_stats(bucket);
            if keep[b] || stats.live_keys + stats.tombstones == 0 {
                self.handed_off[b] = false;
            } else if self.handed_off[b] {
                drop[b] = true;
                self.handed_off[b] = false;
            } else {
                // Dropped only once queued for every replica (a refusal
                // on full queues is tried again at the next pass).
                let mut queued = true;
                for &node in view.preference(bucket) {
                    if usize::from(node) != me {
                        queued &= self.serve_bucket(usize::from(node), REPAIR_REQUEST, bucket);
                    }
                }
                self.handed_off[b] = queued;
            }
        }
        let agreement = &self.agreement;
        let dropped = drop.iter().filter(|&&d| d).count();
        let at_once = self.ctx.bugs.collect_tombstones_at_once;
        let visit = |bucket: BucketId, stats: &BucketStats| drop[usize::from(bucket)] || stats.tombstones > 0;
        let tombstones = self.partition.retain(visit, |bucket, record| {
            let cutoff = if at_once {
                Stamp(u64::MAX)
            } else {
                agreement.cutoff(bucket, collect_from_ms)
            };
            let collected = record.is_tombstone() && record.stamp() < cutoff;
            !(drop[usize::from(bucket)] || collected)
        });
        if dropped > 0 || tombstones > 0 {
            log!(
                "retain",
                "dropped {dropped} buckets no longer replicated here; {tombstones} tombstones gone"
            );
        }
    }

    fn report(&mut self, report: &Report) {
        {
            let mut parts = report.parts.lock();
            match report.kind {
                ReportKind::Stats => {
                    for bucket in 0..BUCKETS as BucketId {
                        let stats = self.partition.bucket_stats(bucket);
                        parts.live_keys += stats.live_keys as usize;
                        parts.tombstones += stats.tombstones as usize;
                    }
                }
                ReportKind::Buckets(from) => {
                    for bucket in from..BUCKETS as BucketId {
                        let stats = self.partition.bucket_stats(bucket);
                        if stats.live_keys + stats.tombstones > 0 {
                            let line = format!(
                                "{bucket} {} {} {:016x}",
                                stats.live_keys, stats.tombstones, stats.digest
                            );
                            parts.lines.push(line);
                        }
                    }
                }
                ReportKind::Keys(bucket) => {
                    for record in self.partition.bucket_records(bucket).filter(|r| !r.is_tombstone()) {
                        let hex: String = record.key().iter().map(|b| format!("{b:02x}")).collect();
                        parts.lines.push(hex);
                    }
                }
            }
        }
        if let Some(datagram) = report.shard_done() {
            self.io.datagram(report.to, &datagram);
        }
    }

    fn receive_chunk(&mut self, received: &Chunk) {
        let Chunk {
            request,
            bucket,
            chunk,
            chunks,
            ref entries,
        } = *received;
        // Entries of other buckets and chunk numbers out of range were
        // refused when the chunk was decoded.
        let refused = entries
            .iter()
            .filter(|entry| self.apply_entry(entry) == Applied::OutOfSpace)
            .count();
        if refused > 0 {
            // A bucket this node cannot hold whole: its store is full, which
            // its gossip says, so no new bucket comes here.
            self.ctx
                .counters
                .entries_refused
                .fetch_add(refused as u64, Ordering::Relaxed);
        }
        if request == REPAIR_REQUEST {
            // A repair push: merged, nobody waits for completion.
            return;
        }
        if !self.syncs.contains_key(&request) && self.syncs.len() >= SYNCS_IN_PROGRESS_MAX {
            // Transfers that lost a chunk are never completed; the oldest
            // goes (its puller has timed out and asked again).
            if let Some(&oldest) = self.syncs.keys().min() {
                self.syncs.remove(&oldest);
            }
        }
        let progress = self.syncs.entry(request).or_insert_with(|| SyncProgress {
            bucket,
            received: vec![false; usize::from(chunks)],
            entries: 0,
        });
        if progress.received.len() != usize::from(chunks) || progress.bucket != bucket {
            return;
        }
        if !progress.received[usize::from(chunk)] {
            progress.received[usize::from(chunk)] = true;
            progress.entries += entries.len();
        }
        if progress.received.iter().all(|&r| r)
            && let Some(progress) = self.syncs.remove(&request)
        {
            // Dropped when the queue is full: the pull times out and is asked again.
            let _ = self.cluster.try_send(ClusterMsg::SyncDone {
                request,
                entries: progress.entries,
            });
        }
    }

    /// A stamp newer than the wall clock and than the key's stored stamp.
    fn next_stamp(&mut self, key: &[u8]) -> Stamp {
        if let Some(stored) = self.partition.stamp_of(key) {
            self.clock.observe(stored);
        }
        self.clock.stamp(self.ctx.clock.stamp_ms())
    }
}

fn entry_of(record: &Record) -> Entry {
    Entry {
        key: record.key().to_vec(),
        value: record.value().to_vec(),
        version: record.version(),
        stamp: record.stamp(),
        tombstone: record.is_tombstone(),
    }
}

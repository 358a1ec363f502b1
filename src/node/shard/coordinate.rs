//! A client's keyed request, executed by the shard of the key's
//! coordinator: a GET answered from the store; a PUT or REMOVE executed at
//! most once per message id, applied here, sent to the bucket's other live
//! replicas and answered only once every one of them has acknowledged and
//! at least [`COPIES_REQUIRED`] nodes store it. A replica that dies before
//! it acknowledges is replaced by the nodes that now stand in for it.

use super::Shard;
use super::commit::NoRoom;
use super::held_reads::HeldRead;
use super::page_reads::PageAsk;
use super::pending_writes::{PENDING_GIVE_UP_MS, PENDING_WRITES_MAX, Pending, PendingStep, REPLICATE_RESEND_MS};
use super::rounds::SwapAsk;
use crate::cluster::internal::{Entry, Internal};
use crate::cluster::ring::View;
use crate::protocol::wire::{self, ErrorCode, Key, KeyOp, Reply};
use crate::storage::hash::{BucketId, bucket_of, bucket_of_key, key_hash, message_id_hash};
use crate::storage::item_key::BucketRead;
use crate::storage::stamp::Stamp;
use crate::storage::store::{Applied, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// The back-off asked of a client whose write finds no other live replica.
const ALONE_WAIT_MS: i32 = 1_000;
/// The back-off asked of a client when this shard has too many writes waiting.
const PENDING_FULL_WAIT_MS: i32 = 50;
/// Wait suggested to a GET when as many are held as allowed (see
/// [`super::held_reads`]): their writes end within a round trip or two.
const HELD_READS_FULL_WAIT_MS: i32 = 20;

/// A write this shard just applied, for the other replicas.
struct Written<'a> {
    key: Key,
    place: Place,
    value: &'a [u8],
    version: i32,
    stamp: Stamp,
    tombstone: bool,
}

/// Where a key lives: its hash and its bucket, worked out once a write.
#[derive(Clone, Copy)]
struct Place {
    key_hash: u64,
    bucket: BucketId,
}

impl Place {
    fn of(key: &[u8]) -> Place {
        let key_hash = key_hash(key);
        Place {
            key_hash,
            bucket: bucket_of(key_hash),
        }
    }
}

/// Who hears about a write once it is done.
struct Asker<'a> {
    message_id: &'a [u8],
    id_hash: u64,
    client: SocketAddr,
}

impl Shard {
    /// Executes a client's keyed request and answers it (now, or once the
    /// replicas have acknowledged a write).
    pub fn serve(&mut self, view: &View, message_id: &[u8], op: KeyOp<'_>, client: SocketAddr) {
        match op {
            KeyOp::Get { key } => return self.answer_get(message_id, key.as_bytes(), client),
            KeyOp::ReadBucket { key, request } => {
                return self.answer_read_bucket(view, message_id, &key, request, client);
            }
            _ => {}
        }
        let asker = Asker {
            message_id,
            id_hash: message_id_hash(message_id),
            client,
        };
        if let Some(reply) = self.execute_write(view, &asker, op) {
            self.send_reply(message_id, &reply, client);
        }
    }

    /// Answers a write this shard already knows by its message id: a try
    /// still waiting for replicas is answered when they have it (nothing
    /// now), one answered before gets the same answer. Returns whether it
    /// knew it.
    pub fn answer_known(&mut self, message_id: &[u8], client: SocketAddr) -> bool {
        let id_hash = message_id_hash(message_id);
        if self.pending.knows(id_hash) || self.rounds.knows(id_hash) {
            return true;
        }
        let Some(code) = self.cache.get(id_hash) else {
            return false;
        };
        let code = ErrorCode::from_code(u32::from(code)).unwrap_or(ErrorCode::InternalFailure);
        self.send_reply(message_id, &Reply::Code(code), client);
        true
    }

    /// A GET: held while a write of its key waits for replicas (see
    /// [`super::held_reads`]), else answered now.
    fn answer_get(&mut self, message_id: &[u8], key: &[u8], client: SocketAddr) {
        let key_hash = key_hash(key);
        if self.pending.write_waiting(key_hash) {
            let read = HeldRead {
                key: key.to_vec(),
                message_id: message_id.to_vec(),
                client,
            };
            if self.pending.hold(key_hash, read).is_err() {
                let wait = Reply::Overload {
                    wait_ms: HELD_READS_FULL_WAIT_MS,
                };
                self.send_reply(message_id, &wait, client);
            }
            return;
        }
        self.answer_get_now(message_id, key, client);
    }

    /// A GET, answered from the stored record straight into the reply
    /// buffer (reads are not cached: repeating one changes nothing).
    fn answer_get_now(&mut self, message_id: &[u8], key: &[u8], client: SocketAddr) {
        let Some(record) = self.store.get(key) else {
            return self.send_reply(message_id, &Reply::Code(ErrorCode::NonExistentKey), client);
        };
        let mut buffer = std::mem::take(&mut self.reply_buffer);
        wire::encode_value_reply_into(message_id, record.value(), record.version(), &mut buffer);
        self.ctx.counters.replies[ErrorCode::Success as usize].fetch_add(1, Ordering::Relaxed);
        self.send_client(client, &buffer, message_id);
        self.reply_buffer = buffer;
    }

    /// A READ_BUCKET: a page of the key's bucket (see [`super::bucket_read`]),
    /// once no write of the bucket waits for its replicas (a page must not
    /// hold a write no client has been told is done).
    fn answer_read_bucket(&mut self, view: &View, message_id: &[u8], key: &Key, request: &[u8], client: SocketAddr) {
        let Some(read) = BucketRead::decode(request) else {
            return self.send_reply(message_id, &Reply::Code(ErrorCode::InvalidValue), client);
        };
        let bucket = bucket_of_key(key.as_bytes());
        if self.pending.bucket_write_waiting(bucket) {
            let wait = Reply::Overload {
                wait_ms: super::held_reads::BUCKET_READ_WAIT_MS,
            };
            return self.send_reply(message_id, &wait, client);
        }
        if read.consistent {
            let ask = PageAsk {
                client,
                message_id: message_id.to_vec(),
                key: key.as_bytes().to_vec(),
                read: request.to_vec(),
                backward: read.backward,
            };
            return self.read_page_consistently(view, ask);
        }
        let (value, more) = super::bucket_read::page(&self.store, bucket, &read);
        let reply = Reply::Value {
            value,
            version: i32::from(more),
        };
        self.send_reply(message_id, &reply, client);
    }

    /// Executes one PUT, REMOVE or SWAP at most once per message id. Returns the
    /// reply, or `None` when it is sent later (after replica acks) or not at
    /// all (a retry of a write still waiting for them).
    fn execute_write(&mut self, view: &View, asker: &Asker<'_>, op: KeyOp<'_>) -> Option<Reply> {
        let place = Place::of(op.key().as_bytes());
        if let Some(early) = self.answer_before_writing(view, asker.id_hash, place.bucket) {
            return early;
        }
        let (code, written) = match op {
            // Answered by `serve` before it gets here.
            KeyOp::Get { .. } | KeyOp::ReadBucket { .. } => return None,
            KeyOp::Put { key, value, version } => self.put(view, (key, place), value, version),
            KeyOp::Remove { key } => self.remove(view, (key, place)),
            KeyOp::Swap { key, expected, to } => {
                let swap = SwapAsk {
                    key: key.as_bytes(),
                    expected,
                    to,
                    message_id: asker.message_id,
                    id_hash: asker.id_hash,
                    client: asker.client,
                };
                return self.propose(view, swap);
            }
        };
        self.cache.insert(asker.id_hash, code as u8, self.now_ms());
        match written {
            Some(written) => self.replicate(view, &written, code, asker),
            None => Some(Reply::Code(code)),
        }
    }

    /// What a write is answered without executing it: `Some(None)` for a
    /// retry of one still waiting for replicas (its answer comes then),
    /// `Some(reply)` for a retry already answered or a write that cannot be
    /// taken now; `None` when it is to be executed.
    fn answer_before_writing(&mut self, view: &View, id_hash: u64, bucket: BucketId) -> Option<Option<Reply>> {
        if self.pending.knows(id_hash) || self.rounds.knows(id_hash) {
            return Some(None);
        }
        if let Some(code) = self.cache.get(id_hash) {
            let code = ErrorCode::from_code(u32::from(code)).unwrap_or(ErrorCode::InternalFailure);
            return Some(Some(Reply::Code(code)));
        }
        let wait_ms = if self.pending.len() >= PENDING_WRITES_MAX {
            // Acks or the give-up of the oldest make room within
            // PENDING_GIVE_UP_MS.
            PENDING_FULL_WAIT_MS
        } else if view.preference(bucket).len() < view.copies_required() && !view.short_of_room(bucket) {
            // No other replica is alive here: a write stored only on this
            // node would be lost with it. Failure detection or a healing
            // partition may bring one back: the client waits, within
            // bounds. (A bucket short of room, not of live nodes, gets
            // its definite answer from `put` and `remove`.)
            ALONE_WAIT_MS
        } else {
            return None;
        };
        let now = self.now_ms();
        if self.waits.may_wait(bucket, now) {
            return Some(Some(Reply::Overload { wait_ms }));
        }
        Some(Some(Reply::Code(ErrorCode::InternalFailure)))
    }

    fn put<'a>(
        &mut self,
        view: &View,
        (key, place): (Key, Place),
        value: &'a [u8],
        version: i32,
    ) -> (ErrorCode, Option<Written<'a>>) {
        let bucket = place.bucket;
        // The same value and version stored already (an earlier try of
        // this request, coordinated elsewhere, landed here; or the same
        // write again): it needs no room, and refusing it would tell the
        // client a write that took effect had none.
        let rewrite = (self.store.get(key.as_bytes())).is_some_and(|r| r.value() == value && r.version() == version);
        if !rewrite
            && (view.short_of_room(bucket) || self.grows_a_full_replica(view, (key.as_bytes(), bucket), value.len()))
        {
            // No second node with room for it: the cluster is full here.
            return (ErrorCode::OutOfSpace, None);
        }
        let stamp = self.next_stamp(key.as_bytes());
        match self.write_store(key.as_bytes(), Write::Value { value, version }, stamp) {
            Ok(Applied::Stored) => {
                let written = Written {
                    key,
                    place,
                    value,
                    version,
                    stamp,
                    tombstone: false,
                };
                (ErrorCode::Success, Some(written))
            }
            Ok(Applied::OutOfSpace) | Err(NoRoom) => (ErrorCode::OutOfSpace, None),
            // The clock cannot issue a newer stamp (it is saturated):
            // never expected, and nothing was stored.
            Ok(Applied::Stale) => (ErrorCode::InternalFailure, None),
        }
    }

    fn remove<'a>(&mut self, view: &View, (removed, place): (Key, Place)) -> (ErrorCode, Option<Written<'a>>) {
        let key = removed.as_bytes();
        let code = match self.store.get(key) {
            Some(_) => ErrorCode::Success,
            None => ErrorCode::NonExistentKey,
        };
        if code == ErrorCode::NonExistentKey && view.short_of_room(place.bucket) {
            // Nothing to delete here, and no room for a tombstone's second
            // copy: the coordinator, which holds every acknowledged write
            // of the bucket, answers that the key is not there.
            return (code, None);
        }
        if !self.keep_tombstones || view.serving <= 1 {
            return match self.forget_stored(key) {
                Ok(_) => (code, None),
                // Still there: the journal had no room for its removal.
                Err(NoRoom) => (ErrorCode::OutOfSpace, None),
            };
        }
        // Even a key this node does not see (or holds a tombstone of) gets
        // a tombstone stamped now: a replica may be away with a copy written
        // since the old tombstone (the simulator found one, after a
        // partition), and the delete must win over that copy. A full store
        // that has no room for a new tombstone still sends it on: the
        // replicas holding the key store it.
        let stamp = self.next_stamp(key);
        if self.write_store(key, Write::Tombstone, stamp) == Err(NoRoom) {
            // The journal has no room: nothing is deleted, here or elsewhere.
            return (ErrorCode::OutOfSpace, None);
        }
        let written = Written {
            key: removed,
            place,
            value: &[],
            version: 0,
            stamp,
            tombstone: true,
        };
        (code, Some(written))
    }

    /// Whether a PUT would grow a bucket one of whose other replicas is full
    /// (a replica must take every write it is sent; see [`crate::cluster::ring`]).
    fn grows_a_full_replica(&mut self, view: &View, (key, bucket): (&[u8], BucketId), value_bytes: usize) -> bool {
        if !view.any_full() && !self.full_replicas.any() {
            return false;
        }
        let now = self.now_ms();
        self.full_replicas.expire(now);
        let full_replica = view
            .other_replicas(bucket)
            .any(|n| view.liveness.full[n] || self.full_replicas.is_full(n, now));
        full_replica
            && self
                .store
                .get(key)
                .is_none_or(|record| record.value().len() < value_bytes)
    }

    /// Sends a write to the bucket's other live replicas (and the stand-ins
    /// of replicas still pulling, see [`View::write_targets`]) and parks
    /// the reply.
    fn replicate(&mut self, view: &View, written: &Written<'_>, code: ErrorCode, asker: &Asker<'_>) -> Option<Reply> {
        let bucket = written.place.bucket;
        let mut waiting: Vec<usize> = view.write_targets(bucket);
        let copies_required = view.copies_required();
        if view.short_of_room(bucket) {
            // A delete or a rewrite in a bucket short of room (`put`
            // refuses growth): its second copy goes to full nodes, which
            // keep it in their headroom until the bucket's replicas are
            // back.
            let missing = copies_required.saturating_sub(view.preference(bucket).len());
            waiting.extend(view.reserve(bucket).iter().take(missing).map(|&n| usize::from(n)));
        }
        if waiting.is_empty() && copies_required <= 1 {
            self.note_written(asker.message_id, None);
            return Some(Reply::Code(code));
        }
        let seq = self.pending.take_seq();
        let entry = Entry {
            key: written.key.as_bytes().to_vec(),
            value: written.value.to_vec(),
            version: written.version,
            stamp: written.stamp,
            tombstone: written.tombstone,
        };
        let message = Internal::Replicate { seq, entry };
        for &node in &waiting {
            self.send_node(node, message.clone());
        }
        if crate::planted!(self.ctx, ack_before_replicas) {
            self.note_written(asker.message_id, None);
            return Some(Reply::Code(code));
        }
        let now = self.now_ms();
        let pending = Pending {
            key_hash: written.place.key_hash,
            client: asker.client,
            message_id: asker.message_id.to_vec(),
            id_hash: asker.id_hash,
            code,
            bucket,
            asked: waiting.clone(),
            waiting,
            stored_on: Vec::new(),
            copies_required,
            message,
            resend_at_ms: now + REPLICATE_RESEND_MS,
            give_up_at_ms: now + PENDING_GIVE_UP_MS,
        };
        self.pending.start(seq, pending);
        self.note_written(asker.message_id, Some(seq));
        None
    }

    /// A replica's answer to a replicated write: it stored it, or (full)
    /// it did not, as if it were down when the write was made.
    pub(super) fn acknowledged(&mut self, from: usize, seq: u64, full: bool, refused: bool) {
        if refused {
            self.ctx.counters.replica_refusals.fetch_add(1, Ordering::Relaxed);
        }
        let now = self.now_ms();
        self.full_replicas.acked(from, full, now);
        let Some(pending) = self.pending.get_mut(seq) else {
            return;
        };
        if pending.acknowledged(from, refused) {
            self.complete(seq);
        }
    }

    fn complete(&mut self, seq: u64) {
        if let Some((pending, reads)) = self.pending.finish(seq) {
            // The acknowledgement rule: every replica asked answered, and
            // the copies required are logged.
            crate::invariant!(
                pending.done(),
                "a write answered with {} of {} copies, {:?} not heard from",
                1 + pending.stored_on.len(),
                pending.copies_required,
                pending.waiting
            );
            self.send_reply(&pending.message_id, &Reply::Code(pending.code), pending.client);
            self.answer_held_reads(reads);
        }
    }

    /// GETs held behind a write that ended, answered now.
    pub(super) fn answer_held_reads(&mut self, reads: Vec<HeldRead>) {
        for read in reads {
            self.answer_get_now(&read.message_id, &read.key, read.client);
        }
    }

    /// Expires at-most-once entries; for each waiting write, stops waiting
    /// for replicas that died (asking their stand-ins instead), completes
    /// it, gives it up, or resends it to the silent replicas.
    pub(super) fn check_pending(&mut self) {
        let now = self.now_ms();
        self.cache.expire(now);
        if self.pending.is_empty() {
            return;
        }
        let view = self.ctx.view();
        let me = self.ctx.self_index;
        for seq in self.pending.seqs() {
            let Some(pending) = self.pending.get_mut(seq) else {
                continue;
            };
            match pending.step(&view, me, now) {
                PendingStep::Done => self.complete(seq),
                PendingStep::GivenUp => {
                    if let Some((_, reads)) = self.pending.finish(seq) {
                        self.ctx.counters.writes_given_up.fetch_add(1, Ordering::Relaxed);
                        self.answer_held_reads(reads);
                    }
                }
                PendingStep::Waiting { resend: true } => {
                    let (waiting, message) = (pending.waiting.clone(), pending.message.clone());
                    for node in waiting {
                        // A resend: its write was committed when first sent.
                        (self.outbox).push(&self.ctx, &*self.io, node, message.clone());
                    }
                }
                PendingStep::Waiting { resend: false } => {}
            }
        }
    }
}

//! The one place that decides durability: every change to the store goes
//! through here to the journal ([`crate::node::durability::journal`]), and what a
//! drain sends that depends on its changes (replies to clients, replicated
//! acks, pulls reported done) waits here until [`Shard::commit`] has
//! written them (synced, with `--fsync always`). Replicated writes leave at
//! once: they are not acknowledgements. A node without a data directory
//! holds nothing back.
//!
//! When a change finds no room in the journal it is refused before it is
//! made, as a full store refuses one: the client hears OUT_OF_SPACE, the
//! coordinator "not stored". When the commit itself fails, the drain's
//! writes are in memory but may not be on disk: their clients hear
//! INTERNAL_FAILURE (the write may or may not have landed: its replicas
//! may hold it), replicas say they did not store what they were sent, and
//! a pull's chunks do not count as received.

use super::Shard;
use crate::cluster::internal::Internal;
use crate::node::counters::Queue;
use crate::node::durability::log_format::Change;
use crate::node::messages::ClusterMsg;
use crate::protocol::wire::{ErrorCode, Reply};
use crate::storage::hash::{BucketId, message_id_hash};
use crate::storage::stamp::Stamp;
use crate::storage::store::{Applied, Write};
use std::net::SocketAddr;

/// The journal had no room for a change: it was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct NoRoom;

/// What a drain sends that must wait for its changes to be in the journal.
#[derive(Default)]
pub(super) struct Held {
    /// Client datagrams, in order, with the message id they answer.
    replies: Vec<(SocketAddr, Vec<u8>, Vec<u8>)>,
    /// Node messages for the outbox.
    messages: Vec<(usize, Internal)>,
    to_cluster: Vec<ClusterMsg>,
    /// Writes this drain coordinated: their message id hashes and ids, and
    /// those waiting for replicas by sequence number.
    written: Vec<(u64, Vec<u8>)>,
    pending: Vec<u64>,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.replies.is_empty() && self.messages.is_empty() && self.to_cluster.is_empty()
    }
}

impl Shard {
    /// Whether what is sent now must wait for the drain's commit.
    fn holding(&self) -> bool {
        self.journal.as_ref().is_some_and(|journal| journal.has_group()) || !self.held.is_empty()
    }

    /// Offers a stamped write to the store, logged; not made when the
    /// journal has no room for it.
    pub(super) fn write_store(&mut self, key: &[u8], write: Write<'_>, stamp: Stamp) -> Result<Applied, NoRoom> {
        let change = match write {
            Write::Value { value, version } => Change::Put {
                key,
                value,
                version,
                stamp,
            },
            Write::Tombstone => Change::Tombstone { key, stamp },
        };
        let now = self.now_ms();
        if let Some(journal) = &mut self.journal
            && !journal.admit(change.record_bytes(), now)
        {
            return Err(NoRoom);
        }
        let applied = self.store.apply(key, write, stamp);
        if applied == Applied::Stored {
            self.publish_digest(crate::storage::hash::bucket_of_key(key));
            if let Some(journal) = &mut self.journal {
                journal.record(&change);
            }
        }
        Ok(applied)
    }

    /// Removes a key with no tombstone, logged; returns whether it was
    /// there. Not made when the journal has no room.
    pub(super) fn forget_stored(&mut self, key: &[u8]) -> Result<bool, NoRoom> {
        let change = Change::Forget { key };
        let now = self.now_ms();
        if let Some(journal) = &mut self.journal
            && !journal.admit(change.record_bytes(), now)
        {
            return Err(NoRoom);
        }
        let forgot = self.store.forget(key);
        if forgot {
            self.publish_digest(crate::storage::hash::bucket_of_key(key));
            if let Some(journal) = &mut self.journal {
                journal.record(&change);
            }
        }
        Ok(forgot)
    }

    /// Logs changes already made that need no room to be safe (retain's
    /// drops and collections: if they are lost, the next pass makes them
    /// again), and commits them.
    pub(super) fn log_after(&mut self, changes: &[Change<'_>]) {
        let now = self.now_ms();
        let Some(journal) = &mut self.journal else {
            return;
        };
        let bytes: usize = changes.iter().map(Change::record_bytes).sum();
        if journal.admit(bytes, now) {
            for change in changes {
                journal.record(change);
            }
        }
        self.commit();
    }

    /// The bucket's digest, for the cluster core's pulls (see
    /// [`crate::node::context::NodeContext::digests`]).
    pub(super) fn publish_digest(&self, bucket: BucketId) {
        let digest = self.store.bucket_stats(bucket).digest;
        self.ctx.digests[usize::from(bucket)].store(digest, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sends a datagram to a client, or holds it until the drain commits.
    pub(super) fn send_client(&mut self, to: SocketAddr, datagram: &[u8], message_id: &[u8]) {
        if self.holding() {
            self.held.replies.push((to, datagram.to_vec(), message_id.to_vec()));
        } else {
            self.io.datagram(to, datagram);
        }
    }

    /// Sends a node message through the outbox, or holds it until the
    /// drain commits. A replicated write leaves at once: the replica logs
    /// (and syncs) it while this node does, so the two syncs overlap, and
    /// nothing is acknowledged before both are done (the client's reply
    /// waits for this drain's commit and for the replica's ack, which the
    /// replica holds until its own).
    pub(super) fn send_node(&mut self, to: usize, message: Internal) {
        if self.holding() && !matches!(message, Internal::Replicate { .. }) {
            self.held.messages.push((to, message));
        } else {
            self.outbox.push(&self.ctx, &*self.io, to, message);
        }
    }

    /// Tells the cluster core, or holds it until the drain commits.
    pub(super) fn tell_cluster(&mut self, msg: ClusterMsg) {
        if self.holding() {
            self.held.to_cluster.push(msg);
        } else if self.cluster.try_send(msg).is_err() {
            // The pull times out and is asked again.
            self.ctx.counters.count_drop(Queue::Cluster);
        }
    }

    /// Notes a write this drain coordinated (and its sequence number, if it
    /// waits for replicas): if the commit fails, it is answered as failed.
    pub(super) fn note_written(&mut self, message_id: &[u8], pending: Option<u64>) {
        if self.journal.is_some() {
            self.held
                .written
                .push((message_id_hash(message_id), message_id.to_vec()));
            self.held.pending.extend(pending);
        }
    }

    /// The end of a drain: its changes written (and synced, per the fsync
    /// mode), then what waited for them sent, then the outbox.
    pub(super) fn commit(&mut self) {
        let now = self.now_ms();
        let committed = match &mut self.journal {
            Some(journal) => journal.commit(now).is_ok(),
            None => true,
        };
        let held = std::mem::take(&mut self.held);
        if committed {
            self.release(held);
        } else {
            self.release_failed(held);
        }
        self.outbox.flush(&self.ctx, &*self.io);
    }

    fn release(&mut self, held: Held) {
        // The rule this module keeps: what depends on the drain's changes
        // leaves once the journal has written them (synced as its fsync
        // mode asks, which the journal's commit checks).
        crate::invariant!(
            self.journal.as_ref().is_none_or(|journal| !journal.has_group()),
            "a drain's replies released before its changes are in the journal"
        );
        for (to, datagram, _) in held.replies {
            self.io.datagram(to, &datagram);
        }
        for (to, message) in held.messages {
            self.outbox.push(&self.ctx, &*self.io, to, message);
        }
        for msg in held.to_cluster {
            if self.cluster.try_send(msg).is_err() {
                self.ctx.counters.count_drop(Queue::Cluster);
            }
        }
    }

    /// A failed commit: the drain's writes answered INTERNAL_FAILURE (and
    /// so to their retries), acks turned to refusals, no pull reported
    /// done; reads and the rest go out.
    fn release_failed(&mut self, held: Held) {
        let now = self.now_ms();
        let failed_ids: Vec<u64> = held.written.iter().map(|(hash, _)| *hash).collect();
        for (hash, _) in &held.written {
            self.cache.insert(*hash, ErrorCode::InternalFailure as u8, now);
        }
        let failure = Reply::Code(ErrorCode::InternalFailure);
        for (to, datagram, message_id) in held.replies {
            if failed_ids.contains(&message_id_hash(&message_id)) {
                self.ctx.counters.count_reply(&failure);
                self.io.datagram(to, &failure.encode(&message_id));
            } else {
                self.io.datagram(to, &datagram);
            }
        }
        for &seq in &held.pending {
            if let Some((pending, reads)) = self.pending.finish(seq) {
                self.ctx.counters.count_reply(&failure);
                self.io.datagram(pending.client, &failure.encode(&pending.message_id));
                // Its GETs read what the store holds, as after a write
                // given up: the journal may hold the write or not.
                self.answer_held_reads(reads);
            }
        }
        for (to, mut message) in held.messages {
            if let Internal::ReplicateAck { refused, .. } = &mut message {
                *refused = true;
            }
            self.outbox.push(&self.ctx, &*self.io, to, message);
        }
    }
}

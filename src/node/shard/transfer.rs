//! Buckets moving between nodes, this shard's side. A *transfer* is every
//! entry of one bucket sent in chunks over the transfer stream: a *pull*
//! is one a node asked for (answered to its request id, completion
//! reported to the cluster core, or for a *hand-off* confirmed to the
//! node giving the bucket away, see [`super::handoff`]), a *push* is one
//! sent unasked ([`PUSH_REQUEST`]): a *repair* when anti-entropy found two
//! replicas' digests differ. Entries merge by stamp, so a bucket that
//! arrives twice, or in part and then whole, is merged once.
//!
//! Anti-entropy: the cluster core asks a shard to send a peer its
//! [`BucketDigest`]s; the peer's shard compares them with its own, notes
//! matches for tombstone collection, and exchanges the buckets that differ.

use super::Shard;
use super::handoff::HandOffs;
use super::pull_progress::DeferredPull;
use crate::cluster::agreement::Position;
use crate::cluster::internal::{BucketDigest, Chunk, Entry, Internal, entry_wire_bytes};
use crate::node::context::Channel;
use crate::node::messages::ClusterMsg;
use crate::storage::hash::BucketId;
use crate::storage::record::Record;
use crate::storage::store::Applied;
use std::sync::atomic::Ordering;

/// The request id of pushes (pulls number from 1).
pub const PUSH_REQUEST: u64 = 0;
/// Payload budget of one transfer chunk (a message on the transfer stream).
pub const CHUNK_BYTES_MAX: usize = 60_000;

impl Shard {
    /// Answers a peer's pull with the bucket's chunks, or with one empty
    /// chunk when the puller's copy has this copy's digest (a node back
    /// from a restart with its data moves only what changed meanwhile);
    /// when the transfer layer is full, keeps it to answer at a later tick,
    /// sooner than the puller's timeout would ask again.
    pub(super) fn serve_pull(&mut self, to: usize, request: u64, bucket: BucketId, digest: Option<u64>) {
        let pull = DeferredPull {
            to,
            request,
            bucket,
            digest,
        };
        if !self.answer_pull(&pull) {
            self.deferred_pulls.defer(pull);
        }
    }

    /// Sends the answer to a pull: the bucket's entries, or one empty chunk
    /// when the puller's digest says its copy is the same. False when the
    /// transfer layer refuses it (its queues are full).
    fn answer_pull(&mut self, pull: &DeferredPull) -> bool {
        if pull.digest != Some(self.store.bucket_stats(pull.bucket).digest) {
            return self.send_bucket(pull.to, pull.request, pull.bucket);
        }
        let chunk = Chunk {
            request: pull.request,
            bucket: pull.bucket,
            chunk: 0,
            chunks: 1,
            entries: Vec::new(),
        };
        let frame = self.ctx.encode(pull.to, Channel::Stream, &Internal::Chunk(chunk));
        let sent = self.io.stream(pull.to, vec![frame]);
        if sent {
            self.ctx.counters.pulls_unchanged.fetch_add(1, Ordering::Relaxed);
        } else {
            self.ctx.counters.transfer_refused.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Answers the deferred pulls, until the transfer layer refuses again.
    pub(super) fn serve_deferred_pulls(&mut self) {
        while let Some(pull) = self.deferred_pulls.take() {
            if !self.answer_pull(&pull) {
                self.deferred_pulls.put_back(pull);
                return;
            }
        }
    }

    /// Queues every entry of a bucket for node `to`, in chunks of at most
    /// [`CHUNK_BYTES_MAX`], answering pull `request` (or a push). False
    /// when the transfer queues are full.
    pub(super) fn send_bucket(&mut self, to: usize, request: u64, bucket: BucketId) -> bool {
        let starts = self.chunk_starts(bucket);
        // A puller counts a pull done when every chunk it was told of came:
        // there is one at least, and the count fits the chunk's field.
        crate::invariant!(
            starts.len() >= 2 && starts.len() - 1 <= usize::from(u16::MAX),
            "bucket {bucket} sent in {} chunks",
            starts.len().saturating_sub(1)
        );
        let chunks = (starts.len() - 1) as u16;
        let mut records = self.store.bucket_records(bucket);
        let frames = starts
            .windows(2)
            .enumerate()
            .map(|(index, range)| {
                let entries = records.by_ref().take(range[1] - range[0]).map(entry_of).collect();
                let chunk = Chunk {
                    request,
                    bucket,
                    chunk: index as u16,
                    chunks,
                    entries,
                };
                self.ctx.encode(to, Channel::Stream, &Internal::Chunk(chunk))
            })
            .collect();
        self.io.stream(to, frames)
    }

    /// Where each chunk of a bucket starts (by record), and where the last
    /// ends: counted first so that each chunk can say how many there are,
    /// then one chunk of entries at a time is copied and encoded.
    fn chunk_starts(&self, bucket: BucketId) -> Vec<usize> {
        let mut starts = vec![0];
        let (mut count, mut bytes) = (0, 0);
        for record in self.store.bucket_records(bucket) {
            let size = entry_wire_bytes(record.key().len(), record.value().len());
            if bytes > 0 && bytes + size > CHUNK_BYTES_MAX {
                starts.push(count);
                bytes = 0;
            }
            bytes += size;
            count += 1;
        }
        starts.push(count);
        starts
    }

    /// A chunk of a pull or a push: merged into the store; the last chunk
    /// of a pull reports it done to the cluster core.
    pub(super) fn receive_chunk(&mut self, received: &Chunk) {
        let refused = (received.entries.iter())
            .filter(|entry| self.apply_entry(entry) == Applied::OutOfSpace)
            .count();
        if refused > 0 {
            // A bucket this node cannot hold whole: its store is full, which
            // its gossip says, so no new bucket comes here; this one is not
            // coordinated here until it is pulled whole.
            (self.ctx.counters.entries_refused).fetch_add(refused as u64, Ordering::Relaxed);
            self.lacks_entries_of(received.bucket);
        }
        if received.request == PUSH_REQUEST {
            // Merged; nobody waits for completion.
            return;
        }
        if HandOffs::is_handoff(received.request) {
            return self.receive_handoff_chunk(received, refused > 0);
        }
        if let Some(entries) = self.pulls_receiving.note(received) {
            // Done once its entries are in the journal.
            let done = ClusterMsg::PullDone {
                request: received.request,
                entries,
            };
            self.tell_cluster(done);
        }
    }

    /// A chunk of a hand-off pull: once every chunk is merged (and none
    /// found the store without room), the giver hears this node holds its
    /// copy, after the merge is in the journal.
    fn receive_handoff_chunk(&mut self, received: &Chunk, lacked_room: bool) {
        if lacked_room {
            self.handoffs.lacked_room(received.request);
        }
        if self.pulls_receiving.note(received).is_none() {
            return;
        }
        if let Some((from, bucket, digest)) = self.handoffs.pull_done(received.request) {
            self.send_node(from, Internal::Held { bucket, digest });
        }
    }

    /// Anti-entropy, initiating side: this shard's digests of `buckets`, to `to`.
    pub(super) fn send_digests(&mut self, to: usize, buckets: &[BucketId]) {
        let digests = (buckets.iter())
            .map(|&bucket| BucketDigest {
                bucket,
                digest: self.store.bucket_stats(bucket).digest,
                cutoff_s: self.agreement.cutoff_s(bucket, self.collect_from_stamp_ms),
            })
            .collect();
        (self.outbox).push(&self.ctx, &*self.io, to, Internal::Digests { digests });
    }

    /// A bucket this node hands off, offered to replica `to`: its digest,
    /// over the transfer stream (see [`Shard::compare_digests`]). False
    /// when the transfer queues are full.
    pub(super) fn offer_bucket(&mut self, to: usize, bucket: BucketId) -> bool {
        let offer = Internal::Digests {
            digests: vec![BucketDigest {
                bucket,
                digest: self.store.bucket_stats(bucket).digest,
                cutoff_s: 0,
            }],
        };
        let frame = self.ctx.encode(to, Channel::Stream, &offer);
        self.io.stream(to, vec![frame])
    }

    /// Anti-entropy, answering side: notes which replicas matched (for
    /// tombstone collection) and exchanges the buckets whose digests
    /// differ. From a node that is no replica of the bucket (it hands the
    /// bucket off), a digest that differs is answered with a pull: its copy
    /// comes here, nothing goes back.
    pub(super) fn compare_digests(&mut self, from: usize, digests: Vec<BucketDigest>) {
        let view = self.ctx.view();
        let now_stamp_ms = self.ctx.clock.stamp_ms();
        for theirs in digests {
            let bucket = theirs.bucket;
            let ours = self.store.bucket_stats(bucket).digest;
            let matched = ours == theirs.digest;
            if !view.holds(from, bucket) {
                // A hand-off: confirmed at once when this copy is the
                // same, after a pull of it otherwise. A node that is no
                // replica here (the views disagree) confirms nothing.
                if matched && view.holds(self.ctx.self_index, bucket) {
                    self.send_node(
                        from,
                        Internal::Held {
                            bucket,
                            digest: theirs.digest,
                        },
                    );
                } else if view.holds(self.ctx.self_index, bucket) {
                    self.pull_handed_off(from, bucket, ours, theirs.digest);
                }
                continue;
            }
            let prefs = view.preference(bucket);
            let position = |node: usize| prefs.iter().position(|&n| usize::from(n) == node);
            if let (Some(at), Some(own)) = (position(from), position(self.ctx.self_index)) {
                let peer = Position {
                    at,
                    own,
                    replicas: prefs.len(),
                };
                self.agreement
                    .compared(bucket, peer, theirs.cutoff_s, matched, now_stamp_ms);
            }
            let now = self.now_ms();
            if self.mismatches.compared(from, bucket, matched, now) {
                self.repair(from, bucket);
            }
        }
    }

    /// Asks a node handing `bucket` off for its copy (the one it offered
    /// with `offered`), unless it is the same as this node's by then
    /// (`ours`, the digest); confirmed once it is merged.
    fn pull_handed_off(&mut self, from: usize, bucket: BucketId, ours: u64, offered: u64) {
        let request = self.handoffs.start_pull(from, bucket, offered);
        let pull = Internal::Pull {
            request,
            bucket,
            digest: Some(ours),
        };
        let frame = self.ctx.encode(from, Channel::Stream, &pull);
        if !self.io.stream(from, vec![frame]) {
            // Offered again at the giver's next pass.
            self.handoffs.cancel(request);
            self.ctx.counters.transfer_refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A bucket two replicas hold differently: each side pushes its copy to
    /// the other. Either may be refused on full queues; the next comparison
    /// finds the difference again.
    fn repair(&mut self, with: usize, bucket: BucketId) {
        self.ctx.counters.repairs.fetch_add(1, Ordering::Relaxed);
        self.send_bucket(with, PUSH_REQUEST, bucket);
        let pull = Internal::Pull {
            request: PUSH_REQUEST,
            bucket,
            digest: None,
        };
        let frame = self.ctx.encode(with, Channel::Stream, &pull);
        self.io.stream(with, vec![frame]);
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

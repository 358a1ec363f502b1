//! What the parts of a node send each other: requests and work for a
//! shard, and what the cluster core is told.

use crate::cluster::internal::{BucketDigest, Chunk, Entry, Heartbeat, Internal};
use crate::cluster::universe::{Universe, UniverseTag};
use crate::node::admin::Report;
use crate::storage::hash::BucketId;
use crossbeam_channel::{Sender, TrySendError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

/// Wakes whoever drains a queue (the event loop, for a shard it runs).
pub trait Wake: Send + Sync {
    fn wake(&self);
}

/// A client request routed to a worker thread: the datagram as it came
/// (decoded again where it executes, so that the value is copied once,
/// into the store) and where the reply goes.
#[derive(Debug)]
pub struct Request {
    pub datagram: Vec<u8>,
    pub client: SocketAddr,
}

/// Shared by all shards for one WIPEOUT: the last shard to finish answers,
/// once the wall clock has passed the latest millisecond any shard wiped in.
#[derive(Debug)]
pub struct Wipeout {
    pub shards_left: AtomicUsize,
    /// The latest stamp millisecond a shard wiped in.
    pub wiped_in_stamp_ms: AtomicU64,
    pub message_id: Vec<u8>,
    pub client: SocketAddr,
    /// A shard's journal could not take it: answered as failed.
    pub failed: AtomicBool,
}

/// What other threads hand a shard.
#[derive(Debug)]
pub enum ShardMsg {
    /// The requests of one socket drain, in arrival order.
    Requests(Vec<Request>),
    /// A write this node will not execute now: answered `reply`, unless
    /// this shard knows its message id (a try of it is waiting for its
    /// replicas, or was answered): a client told to wait would send it
    /// again as a new request, though the first may take effect.
    AnswerUnlessKnown {
        message_id: Vec<u8>,
        client: SocketAddr,
        reply: crate::protocol::wire::Reply,
    },
    Wipeout(Arc<Wipeout>),
    /// A coordinator's write, to apply and acknowledge.
    Replicate {
        from: usize,
        seq: u64,
        entry: Entry,
    },
    Ack {
        from: usize,
        seq: u64,
        full: bool,
        refused: bool,
    },
    /// An item round's prepare, accept, or an acceptor's vote (see the
    /// shard's `rounds`).
    Round {
        from: usize,
        message: Internal,
    },
    /// A peer pulls a bucket: send it every entry (over the transfer stream).
    ServePull {
        to: usize,
        request: u64,
        bucket: BucketId,
        /// The puller's digest of it: nothing is sent if this shard's
        /// copy has the same.
        digest: Option<u64>,
    },
    /// A transfer chunk received; once applied, its `bytes` are given back
    /// to the transfer thread's bound on received data.
    Chunk {
        chunk: Chunk,
        bytes: usize,
    },
    /// A replica confirms it holds this shard's copy of a bucket handed
    /// off, the one with `digest`.
    Held {
        from: usize,
        bucket: BucketId,
        digest: u64,
    },
    /// An operator report: add this shard's part.
    Report(Arc<Report>),
    /// Anti-entropy, initiating side: send `to` our digests of these buckets.
    AntiEntropy {
        to: usize,
        buckets: Vec<BucketId>,
    },
    /// Anti-entropy, answering side: exchange the buckets whose digests differ.
    Digests {
        from: usize,
        digests: Vec<BucketDigest>,
    },
    /// Keep only buckets marked true; collect the tombstones every replica
    /// holds (see [`crate::cluster::agreement`]), counting epochs from `collect_from_stamp_ms`.
    Retain {
        keep: Arc<Vec<bool>>,
        collect_from_stamp_ms: Option<u64>,
    },
}

/// Inputs of the cluster thread.
#[derive(Debug)]
pub enum ClusterMsg {
    /// A peer's gossip: the universe it holds, and heartbeats by slot (of
    /// the nodes this node knows).
    Gossip {
        sender: usize,
        universe: UniverseTag,
        heartbeats: Vec<(usize, Heartbeat)>,
    },
    PullDone {
        request: u64,
        entries: usize,
    },
    /// A source's answer to this node's [`crate::cluster::internal::Internal::Compare`]:
    /// the buckets of it whose copies differ.
    Compared {
        from: usize,
        request: u64,
        differing: Vec<crate::storage::hash::BucketId>,
    },
    /// A shard could not store an entry of a bucket (no room): its copy
    /// lacks a write, and is pulled again once there is room.
    Incomplete {
        bucket: crate::storage::hash::BucketId,
    },
    /// Fresh gossip signed by a node this node's universe does not list
    /// (its id, where it came from, the universe it holds).
    Stranger {
        id: crate::cluster::universe::NodeId,
        addr: SocketAddr,
        universe: UniverseTag,
    },
    /// A universe to adopt if newer: from a peer, or from an operator who
    /// waits for the answer (its message id and address).
    Universe {
        universe: Box<Universe>,
        reply_to: Option<(Vec<u8>, SocketAddr)>,
    },
}

/// A handle on one shard's queue.
#[derive(Clone)]
pub struct ShardHandle {
    pub inbox: Sender<ShardMsg>,
    pub backlog: Arc<AtomicUsize>,
    /// Wakes the event loop when the shard runs on it (`--workers 0`).
    pub waker: Option<Arc<dyn Wake>>,
}

impl ShardHandle {
    /// Queues a message without waiting; hands it back when the queue is full.
    pub fn try_send(&self, msg: ShardMsg) -> Result<(), ShardMsg> {
        self.inbox.try_send(msg).map_err(TrySendError::into_inner)?;
        if let Some(waker) = &self.waker {
            waker.wake();
        }
        Ok(())
    }
}

//! A worker thread and what it owns: one partition of the keys, its private
//! at-most-once reply cache and its write clock. Requests reach a shard by
//! key bucket, so a retried request always meets the cache that saw the
//! first try, and the hot path takes no lock. Replies leave through the
//! worker's own clone of the node's socket.

use crate::hash::message_id_hash;
use crate::memory::{MemoryBudget, trim_heap};
use crate::reply_cache::ReplyCache;
use crate::stamp::{Clock, wall_millis};
use crate::store::{Admission, Applied, Partition, Write};
use crate::udp::send_reply;
use crate::wire::{ErrorCode, KeyOp, Reply};
use crossbeam_channel::Receiver;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// A client request routed to this shard.
#[derive(Debug)]
pub struct Request {
    pub message_id: Vec<u8>,
    pub op: KeyOp,
    pub client: SocketAddr,
}

/// Shared by all shards for one WIPEOUT: the last shard to finish answers.
#[derive(Debug)]
pub struct Wipeout {
    pub shards_left: AtomicUsize,
    pub message_id: Vec<u8>,
    pub client: SocketAddr,
}

/// What the net thread hands a shard.
#[derive(Debug)]
pub enum ShardMsg {
    /// The requests of one socket drain, in arrival order.
    Requests(Vec<Request>),
    Wipeout(Arc<Wipeout>),
}

/// Settings a worker needs from the node's configuration.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    pub node_index: u8,
    pub reply_cache_ms: u64,
    pub reply_cache_entries_max: usize,
    /// Whether deletes leave tombstones (only when other replicas exist).
    pub keep_tombstones: bool,
}

pub struct Worker {
    partition: Partition,
    cache: ReplyCache,
    clock: Clock,
    socket: UdpSocket,
    /// Requests queued for this shard and not yet answered (the net thread's
    /// overload signal).
    backlog: Arc<AtomicUsize>,
    started: Instant,
    keep_tombstones: bool,
}

impl Worker {
    pub fn new(
        config: &ShardConfig,
        budget: Arc<MemoryBudget>,
        socket: UdpSocket,
        backlog: Arc<AtomicUsize>,
    ) -> Worker {
        Worker {
            partition: Partition::new(budget.clone()),
            cache: ReplyCache::new(
                config.reply_cache_ms,
                config.reply_cache_entries_max,
                budget,
            ),
            clock: Clock::new(config.node_index),
            socket,
            backlog,
            started: Instant::now(),
            keep_tombstones: config.keep_tombstones,
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs until the net thread drops its end of the channel.
    pub fn run(mut self, inbox: Receiver<ShardMsg>) {
        while let Ok(msg) = inbox.recv() {
            match msg {
                ShardMsg::Requests(requests) => {
                    let count = requests.len();
                    for request in requests {
                        let reply = self.execute(&request.message_id, request.op);
                        send_reply(
                            &self.socket,
                            &reply.encode(&request.message_id),
                            request.client,
                        );
                    }
                    self.backlog.fetch_sub(count, Ordering::Relaxed);
                }
                ShardMsg::Wipeout(job) => {
                    self.partition.wipe();
                    let now = self.now_ms();
                    self.cache.clear(now);
                    trim_heap();
                    if job.shards_left.fetch_sub(1, Ordering::AcqRel) == 1 {
                        let reply = Reply::Code(ErrorCode::Success).encode(&job.message_id);
                        send_reply(&self.socket, &reply, job.client);
                    }
                }
            }
        }
    }

    /// Executes one keyed operation at most once per message id.
    pub fn execute(&mut self, message_id: &[u8], op: KeyOp) -> Reply {
        let id_hash = message_id_hash(message_id);
        if op.is_mutation()
            && let Some(code) = self.cache.get(id_hash)
        {
            let code = ErrorCode::from_code(u32::from(code)).unwrap_or(ErrorCode::InternalFailure);
            return Reply::Code(code);
        }
        let code = match op {
            KeyOp::Get { key } => {
                return match self.partition.get(key.as_bytes()) {
                    Some(record) => Reply::Value {
                        value: record.value().to_vec(),
                        version: record.version(),
                    },
                    None => Reply::Code(ErrorCode::NonExistentKey),
                };
            }
            KeyOp::Put {
                key,
                value,
                version,
            } => {
                let stamp = self.next_stamp(key.as_bytes());
                let write = Write::Value {
                    value: &value,
                    version,
                };
                match self
                    .partition
                    .apply(key.as_bytes(), write, stamp, Admission::Checked)
                {
                    Applied::Stored => ErrorCode::Success,
                    Applied::OutOfSpace => ErrorCode::OutOfSpace,
                    Applied::Stale => unreachable!("a fresh stamp is newer than any stored one"),
                }
            }
            KeyOp::Remove { key } => {
                let key = key.as_bytes();
                if self.partition.get(key).is_none() {
                    ErrorCode::NonExistentKey
                } else if self.keep_tombstones {
                    let stamp = self.next_stamp(key);
                    self.partition
                        .apply(key, Write::Tombstone, stamp, Admission::Forced);
                    ErrorCode::Success
                } else {
                    self.partition.forget(key);
                    ErrorCode::Success
                }
            }
        };
        let now = self.now_ms();
        self.cache.insert(id_hash, code as u8, now);
        Reply::Code(code)
    }

    /// A stamp newer than the wall clock and than the key's stored stamp.
    fn next_stamp(&mut self, key: &[u8]) -> crate::stamp::Stamp {
        if let Some(stored) = self.partition.stamp_of(key) {
            self.clock.observe(stored);
        }
        self.clock.stamp(wall_millis())
    }
}

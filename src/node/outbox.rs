//! Node messages on their way to peers, held until the end of a drain so
//! that everything one part of a node sends one peer in a drain leaves in
//! as few datagrams as fit: forwarded requests, replicated writes, their
//! acknowledgements and digests, under one envelope and one MAC
//! ([`Internal::Batch`]). A lone message leaves alone, as soon as the
//! drain that produced it ends (the socket is empty), so nothing waits
//! for company.
//!
//! Each owner (the router, each shard) keeps its own outbox and flushes it
//! at the end of its drain; no lock is shared between threads.

use crate::cluster::internal::{BATCH_MESSAGES_MAX, Internal};
use crate::node::context::{NodeContext, NodeIo};
use crate::node::roster::SLOTS_MAX;

/// Bytes a datagram to a peer on another host is filled to: one Ethernet
/// frame's UDP payload, so that no batch is fragmented (a lost fragment
/// loses the whole datagram). A single larger message still goes alone.
const DATAGRAM_BYTES_REMOTE: usize = 1_472;
/// Bytes a datagram to a peer on this host (loopback) is filled to: the
/// loopback MTU is 64 KiB, so nothing fragments; kept well under it.
const DATAGRAM_BYTES_LOOPBACK: usize = 16 * 1_024;

pub struct Outbox {
    /// Messages waiting, per peer.
    waiting: Vec<Vec<Internal>>,
    /// Their encoded size, per peer.
    bytes: Vec<usize>,
    /// Peers given messages since the last flush, each once.
    dirty: Vec<usize>,
    listed: Vec<bool>,
}

/// What one datagram to the node at `addr` may hold.
fn datagram_bytes(addr: Option<std::net::SocketAddr>) -> usize {
    match addr {
        Some(addr) if addr.ip().is_loopback() => DATAGRAM_BYTES_LOOPBACK,
        _ => DATAGRAM_BYTES_REMOTE,
    }
}

impl Outbox {
    pub fn new(_ctx: &NodeContext) -> Outbox {
        Outbox {
            waiting: (0..SLOTS_MAX).map(|_| Vec::new()).collect(),
            bytes: vec![0; SLOTS_MAX],
            dirty: Vec::new(),
            listed: vec![false; SLOTS_MAX],
        }
    }

    /// Queues `message` for the node in slot `to`; sends what waits for
    /// `to` first if the message would not fit beside it.
    pub fn push(&mut self, ctx: &NodeContext, io: &dyn NodeIo, to: usize, message: Internal) {
        let Some(waiting) = self.waiting.get(to) else {
            return;
        };
        let size = message.encoded_bytes();
        if !waiting.is_empty()
            && (self.bytes[to] + size > datagram_bytes(ctx.roster.addr(to)) || waiting.len() >= BATCH_MESSAGES_MAX)
        {
            self.send(ctx, io, to);
        }
        if !self.listed[to] {
            self.listed[to] = true;
            self.dirty.push(to);
        }
        self.waiting[to].push(message);
        self.bytes[to] += size;
    }

    /// Sends everything waiting: the end of a drain.
    pub fn flush(&mut self, ctx: &NodeContext, io: &dyn NodeIo) {
        for to in std::mem::take(&mut self.dirty) {
            self.listed[to] = false;
            self.send(ctx, io, to);
        }
    }

    fn send(&mut self, ctx: &NodeContext, io: &dyn NodeIo, to: usize) {
        let mut messages = std::mem::take(&mut self.waiting[to]);
        self.bytes[to] = 0;
        match messages.len() {
            0 => {}
            1 => {
                if let Some(message) = messages.pop() {
                    ctx.send(io, to, &message);
                }
            }
            _ => ctx.send(io, to, &Internal::Batch(messages)),
        }
    }
}

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
        // Listed, or it would wait for the next message to the same peer.
        crate::invariant!(self.listed[to], "messages wait for slot {to}, which the flush skips");
        crate::invariant!(
            self.waiting[to].len() <= BATCH_MESSAGES_MAX,
            "{} messages wait for slot {to}, a batch holds {BATCH_MESSAGES_MAX}",
            self.waiting[to].len()
        );
    }

    /// Sends everything waiting: the end of a drain.
    pub fn flush(&mut self, ctx: &NodeContext, io: &dyn NodeIo) {
        for to in std::mem::take(&mut self.dirty) {
            self.listed[to] = false;
            self.send(ctx, io, to);
            crate::invariant!(
                self.waiting[to].is_empty(),
                "messages for slot {to} stayed after the flush"
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ring::{Liveness, Placement};
    use crate::cluster::secret::Secret;
    use crate::node::context::NodeClock;
    use parking_lot::Mutex;
    use std::net::SocketAddr;

    /// Where each datagram went.
    #[derive(Default)]
    struct Sent(Mutex<Vec<SocketAddr>>);

    impl NodeIo for Sent {
        fn datagram(&self, to: SocketAddr, _bytes: &[u8]) {
            self.0.lock().push(to);
        }
        fn stream(&self, _to: usize, _frames: Vec<Vec<u8>>) -> bool {
            true
        }
        fn applied(&self, _bytes: usize) {}
        fn shutdown(&self) {}
    }

    fn ack(seq: u64) -> Internal {
        Internal::ReplicateAck {
            seq,
            bucket: 0,
            full: false,
            refused: false,
        }
    }

    #[test]
    fn a_drains_messages_to_a_peer_leave_at_its_end_in_as_few_datagrams_as_fit() {
        let names = ["127.0.0.1:1".to_string(), "127.0.0.1:2".to_string()];
        let view = Placement::new(&names, 1).view(0, Liveness::ready(vec![true, true]));
        let ctx = NodeContext::of_servers(
            0,
            &names,
            Secret::from_bytes(b"s"),
            view,
            NodeClock::set_from_outside(0),
        );
        let io = Sent::default();
        let sent = || io.0.lock().len();
        let mut outbox = Outbox::new(&ctx);
        outbox.push(&ctx, &io, 1, ack(1));
        assert_eq!(sent(), 0, "nothing leaves before the drain ends");
        outbox.flush(&ctx, &io);
        assert_eq!(sent(), 1, "a lone message leaves at the end of its drain");
        assert_eq!(io.0.lock()[0], "127.0.0.1:2".parse::<SocketAddr>().unwrap());
        for seq in 0..=BATCH_MESSAGES_MAX as u64 {
            outbox.push(&ctx, &io, 1, ack(seq));
        }
        assert_eq!(sent(), 2, "a full batch leaves as soon as it is full");
        outbox.flush(&ctx, &io);
        assert_eq!(sent(), 3, "then the rest, at the end of the drain");
        outbox.flush(&ctx, &io);
        assert_eq!(sent(), 3, "nothing waits after a flush");
    }
}

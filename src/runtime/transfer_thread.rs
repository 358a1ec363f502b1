//! The transfer thread: carries bucket transfers between nodes over TCP, on
//! the port number of the node's UDP socket.
//!
//! A transfer is a pull request answered with the bucket's chunks, or chunks
//! pushed unasked (anti-entropy repair, hand-off). Each is an authenticated
//! internal message, which states its own length, so the stream needs no
//! other framing. A node writes to a peer on the one connection it opened to
//! it and reads on the connections peers opened to it.
//!
//! Flow control, with both ends bounded:
//! - Sending: shards and the cluster thread queue whole messages and never
//!   wait ([`TransferHandle::send`]). A bucket that does not fit under the
//!   per-peer and total bounds is refused as a whole; its puller asks again
//!   when its pull times out. A queue that makes no progress for
//!   [`STALL_MS`] is dropped with its connection.
//! - Receiving: chunks handed to shards and not yet applied are bounded by
//!   [`INBOUND_BYTES_MAX`]; beyond it this thread stops reading, the
//!   kernel's buffers fill, and TCP makes the sender wait.
//!
//! Bytes queued either way are charged to the node's memory budget, and
//! either queue holds more than one message only while the budget has room
//! for it: a store at its limit plus full queues would pass the process's.
//! A broken connection loses what was queued on it. Nothing is lost for
//! good: the puller's timeout asks again, and since entries merge by stamp,
//! a bucket that arrives twice, or in part and then whole, is merged once.

use crate::cluster::internal::{self, Internal};
use crate::log;
use crate::node::context::{Channel, NodeContext};
use crate::node::messages::{ShardHandle, ShardMsg};
use crate::node::roster::SLOTS_MAX;
use crate::node::streams::StreamFrames;
use crate::storage::memory::MemoryBudget;
use crossbeam_channel::{Receiver, Sender};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Bytes queued for one peer before more is refused (a bucket bigger than
/// this still goes alone).
const PEER_QUEUE_BYTES_MAX: usize = 512 * 1024;
/// Bytes queued for all peers together.
const QUEUE_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Received chunk bytes waiting in shard queues before reading pauses.
const INBOUND_BYTES_MAX: usize = 1024 * 1024;
/// A frame announcing more than this closes its connection: no peer sends
/// one (chunks hold at most 60 KB of entries).
const FRAME_BYTES_MAX: usize = 128 * 1024;
/// The largest chunk a shard sends fits a frame (its entries, its own
/// fields, the framing)...
const _: () =
    assert!(crate::node::shard::CHUNK_BYTES_MAX + 16 + crate::cluster::internal::FRAMING_BYTES_MAX <= FRAME_BYTES_MAX);
/// ... and a frame fits what shards may hold unapplied, so reading resumes.
const _: () = assert!(FRAME_BYTES_MAX <= INBOUND_BYTES_MAX);
/// Connections peers opened to this node; more are closed at once.
const INBOUND_CONNECTIONS_MAX: usize = 256;
/// A queue that writes nothing for this long is dropped with its connection
/// (the peer is stopped or gone).
const STALL_MS: u64 = 5_000;
/// An outgoing connection with nothing to send for this long is closed.
const IDLE_MS: u64 = 30_000;
/// An incoming connection silent for this long is closed.
const INBOUND_IDLE_MS: u64 = 2 * IDLE_MS;
/// Messages waiting in the thread's inbox (the byte bounds come first).
const OUTBOX_MESSAGES_MAX: usize = 4096;
/// How often a paused reader looks again whether shards have caught up.
const RESUME_POLL: Duration = Duration::from_millis(5);
const HOUSEKEEPING: Duration = Duration::from_millis(1_000);
/// Bytes read from a socket at a time.
const READ_BYTES: usize = 64 * 1024;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Tokens from here on are peers' connections, then accepted ones.
const FIRST_PEER_TOKEN: usize = 2;

/// Byte counts every side of the transfer thread keeps up to date.
struct Shared {
    queued: AtomicUsize,
    queued_per_peer: Vec<AtomicUsize>,
    /// Received chunk bytes handed to shards and not yet applied.
    inbound: AtomicUsize,
    budget: Arc<MemoryBudget>,
}

impl Shared {
    fn dequeued(&self, to: usize, bytes: usize) {
        self.queued_per_peer[to].fetch_sub(bytes, Ordering::Relaxed);
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
        self.budget.release(bytes);
    }
}

/// What the transfer thread is asked to send.
struct Outgoing {
    to: usize,
    frames: Vec<Vec<u8>>,
}

/// How shards and the cluster thread reach the transfer thread.
#[derive(Clone)]
pub struct TransferHandle {
    outbox: Sender<Outgoing>,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
    ctx: Arc<NodeContext>,
}

impl TransferHandle {
    /// Queues encoded messages for node `to`, all or none. Returns false,
    /// and queues none, when they do not fit under the bounds. Never blocks.
    pub fn send(&self, to: usize, frames: Vec<Vec<u8>>) -> bool {
        let bytes: usize = frames.iter().map(Vec::len).sum();
        let Some(peer) = self
            .shared
            .queued_per_peer
            .get(to)
            .filter(|_| self.ctx.roster.get(to).is_some())
        else {
            return false;
        };
        let peer_before = peer.fetch_add(bytes, Ordering::Relaxed);
        let total_before = self.shared.queued.fetch_add(bytes, Ordering::Relaxed);
        // Queues take what the budget has room for: a store near its limit
        // plus full queues would pass the process's. Beyond, one thing at a
        // time (this node may hold the only copy of a bucket).
        let fits = total_before == 0
            || ((peer_before == 0 || peer_before + bytes <= PEER_QUEUE_BYTES_MAX)
                && total_before + bytes <= QUEUE_BYTES_MAX
                && self.shared.budget.has_room(bytes));
        if !fits || self.outbox.try_send(Outgoing { to, frames }).is_err() {
            peer.fetch_sub(bytes, Ordering::Relaxed);
            self.shared.queued.fetch_sub(bytes, Ordering::Relaxed);
            self.ctx.counters.transfer_refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.shared.budget.force_reserve(bytes);
        let _ = self.waker.wake();
        true
    }

    /// Encodes and queues messages for node `to` (see [`TransferHandle::send`]).
    pub fn send_messages(&self, to: usize, messages: &[Internal]) -> bool {
        let frames = messages
            .iter()
            .map(|m| self.ctx.encode(to, Channel::Stream, m))
            .collect();
        self.send(to, frames)
    }

    /// A shard has applied a received chunk of `bytes`: reading may go on.
    pub fn applied(&self, bytes: usize) {
        self.shared.inbound.fetch_sub(bytes, Ordering::Relaxed);
        self.shared.budget.release(bytes);
    }
}

/// The connection this node writes to one peer on.
#[derive(Default)]
struct Peer {
    stream: Option<TcpStream>,
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the front frame already written.
    written: usize,
    /// When a byte was last written, or the queue last became non-empty.
    progress_ms: u64,
}

/// A connection a peer opened to this node.
struct Inbound {
    stream: TcpStream,
    /// Bytes read past the last whole frame.
    partial: Vec<u8>,
    /// A message the shard's queue had no room for, to hand over first.
    stalled: Option<(usize, ShardMsg)>,
    /// Reading stopped: shards hold too many received bytes.
    paused: bool,
    last_ms: u64,
}

pub struct TransferThread {
    ctx: Arc<NodeContext>,
    shared: Arc<Shared>,
    poll: Poll,
    listener: TcpListener,
    outbox: Receiver<Outgoing>,
    peers: Vec<Peer>,
    inbound: Vec<Option<Inbound>>,
    started: Instant,
    /// Checks what arrives (signed, meant for us, in range, new).
    frames: StreamFrames,
}

impl TransferThread {
    /// Listens on TCP `addr` (the node's own address) and returns the thread
    /// state, to run later, and the handle others send through.
    pub fn bind(
        ctx: Arc<NodeContext>,
        budget: Arc<MemoryBudget>,
        addr: SocketAddr,
    ) -> io::Result<(TransferThread, TransferHandle)> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let n = SLOTS_MAX;
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            queued_per_peer: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            inbound: AtomicUsize::new(0),
            budget,
        });
        let (outbox_in, outbox) = crossbeam_channel::bounded(OUTBOX_MESSAGES_MAX);
        let handle = TransferHandle {
            outbox: outbox_in,
            waker,
            shared: shared.clone(),
            ctx: ctx.clone(),
        };
        let thread = TransferThread {
            peers: (0..n).map(|_| Peer::default()).collect(),
            frames: StreamFrames::new(ctx.clone()),
            ctx,
            shared,
            poll,
            listener,
            outbox,
            inbound: Vec::new(),
            started: Instant::now(),
        };
        Ok((thread, handle))
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs until the process exits, delivering what arrives to `shards`.
    pub fn run(mut self, shards: Vec<ShardHandle>) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut scratch = vec![0u8; READ_BYTES];
        let mut last_housekeeping = Instant::now();
        loop {
            let waiting = self.inbound.iter().flatten().any(|c| c.paused || c.stalled.is_some());
            let timeout = if waiting { RESUME_POLL } else { HOUSEKEEPING };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) if t < FIRST_PEER_TOKEN + self.peers.len() => {
                        // Peers never write on the connections we open: the
                        // peer closed its end (it restarted, or closed an
                        // idle connection). What is still queued goes on a
                        // new connection instead of failing on this one.
                        if event.is_read_closed() || event.is_error() {
                            self.reopen(t - FIRST_PEER_TOKEN);
                        }
                        self.flush(t - FIRST_PEER_TOKEN);
                    }
                    Token(t) => self.read(t - FIRST_PEER_TOKEN - self.peers.len(), &shards, &mut scratch),
                }
            }
            self.take_outgoing();
            if waiting {
                // Only connections that stopped reading need a look: the
                // others report their own data (edge-triggered).
                for slot in 0..self.inbound.len() {
                    let stopped = self.inbound[slot]
                        .as_ref()
                        .is_some_and(|c| c.paused || c.stalled.is_some());
                    if stopped {
                        self.read(slot, &shards, &mut scratch);
                    }
                }
            }
            if last_housekeeping.elapsed() >= HOUSEKEEPING {
                last_housekeeping = Instant::now();
                self.housekeeping();
            }
        }
    }

    fn take_outgoing(&mut self) {
        let mut touched = Vec::new();
        while let Ok(Outgoing { to, frames }) = self.outbox.try_recv() {
            let now = self.now_ms();
            let peer = &mut self.peers[to];
            if peer.queue.is_empty() {
                peer.progress_ms = now;
            }
            peer.queue.extend(frames);
            touched.push(to);
        }
        touched.sort_unstable();
        touched.dedup();
        for to in touched {
            self.flush(to);
        }
    }

    /// Writes what the kernel takes of a peer's queue, connecting first.
    fn flush(&mut self, to: usize) {
        let now = self.now_ms();
        let peer = &mut self.peers[to];
        if peer.queue.is_empty() {
            return;
        }
        if peer.stream.is_none() {
            match self.connect(to) {
                Ok(stream) => self.peers[to].stream = Some(stream),
                Err(_) => return self.broken(to),
            }
        }
        let peer = &mut self.peers[to];
        let stream = peer.stream.as_mut().expect("connected above");
        // A socket still connecting takes nothing (WouldBlock) and reports
        // writable once connected; a refused connection fails the write.
        while let Some(front) = peer.queue.front() {
            match stream.write(&front[peer.written..]) {
                Ok(0) => return self.broken(to),
                Ok(written) => {
                    peer.written += written;
                    peer.progress_ms = now;
                    self.ctx
                        .counters
                        .transfer_bytes_sent
                        .fetch_add(written as u64, Ordering::Relaxed);
                    if peer.written == front.len() {
                        let bytes = front.len();
                        peer.queue.pop_front();
                        peer.written = 0;
                        self.shared.dequeued(to, bytes);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.broken(to),
            }
        }
    }

    fn connect(&mut self, to: usize) -> io::Result<TcpStream> {
        let addr = (self.ctx.roster.addr(to)).ok_or_else(|| io::Error::other("no such node"))?;
        let mut stream = connect_from(self.ctx.roster.addr(self.ctx.self_index), addr)?;
        stream.set_nodelay(true)?;
        self.poll.registry().register(
            &mut stream,
            Token(FIRST_PEER_TOKEN + to),
            Interest::WRITABLE | Interest::READABLE,
        )?;
        Ok(stream)
    }

    /// Closes a peer's connection, keeping its queue for the next one (a
    /// frame cut short is sent again whole; the receiver drops the part).
    fn reopen(&mut self, to: usize) {
        let peer = &mut self.peers[to];
        if let Some(mut stream) = peer.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        peer.written = 0;
    }

    /// Closes a peer's connection and drops what was queued on it.
    fn broken(&mut self, to: usize) {
        let peer = &mut self.peers[to];
        if let Some(mut stream) = peer.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        let dropped: usize = peer.queue.drain(..).map(|frame| frame.len()).sum();
        peer.written = 0;
        if dropped > 0 {
            self.shared.dequeued(to, dropped);
            self.ctx.counters.transfer_breaks.fetch_add(1, Ordering::Relaxed);
            log!(
                "transfer_broken",
                "transfer connection to {} failed: {dropped} queued bytes dropped (asked for again on timeout)",
                self.ctx.roster.get(to).map_or("?", |known| known.name.as_str())
            );
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let Some(slot) = self.free_slot() else {
                        continue; // dropped: closed at once
                    };
                    let token = Token(FIRST_PEER_TOKEN + self.peers.len() + slot);
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    self.inbound[slot] = Some(Inbound {
                        stream,
                        partial: Vec::new(),
                        stalled: None,
                        paused: false,
                        last_ms: self.now_ms(),
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock: all taken. Anything else (out of descriptors)
                // is retried at the next connection attempt.
                Err(_) => return,
            }
        }
    }

    fn free_slot(&mut self) -> Option<usize> {
        if let Some(slot) = self.inbound.iter().position(Option::is_none) {
            return Some(slot);
        }
        if self.inbound.len() < INBOUND_CONNECTIONS_MAX {
            self.inbound.push(None);
            return Some(self.inbound.len() - 1);
        }
        None
    }

    fn close_inbound(&mut self, slot: usize) {
        if let Some(mut connection) = self.inbound[slot].take() {
            let _ = self.poll.registry().deregister(&mut connection.stream);
            // Whatever it was handing over goes; its sender asks again.
            if let Some((_, ShardMsg::Chunk { bytes, .. })) = connection.stalled {
                self.release_inbound(bytes);
            }
        }
    }

    fn release_inbound(&self, bytes: usize) {
        self.shared.inbound.fetch_sub(bytes, Ordering::Relaxed);
        self.shared.budget.release(bytes);
    }

    /// Reads and delivers whole frames until the socket is empty, a shard's
    /// queue is full, or shards hold [`INBOUND_BYTES_MAX`] received bytes.
    fn read(&mut self, slot: usize, shards: &[ShardHandle], scratch: &mut [u8]) {
        let now = self.now_ms();
        let Some(Some(connection)) = self.inbound.get_mut(slot) else {
            return;
        };
        connection.last_ms = now;
        if let Some((shard, msg)) = connection.stalled.take()
            && let Err(msg) = shards[shard].try_send(msg)
        {
            connection.stalled = Some((shard, msg));
            return;
        }
        // Frames left over from before a stall.
        let pending = std::mem::take(&mut connection.partial);
        if !self.deliver_frames(slot, &pending, shards) {
            return;
        }
        loop {
            let Some(Some(connection)) = self.inbound.get_mut(slot) else {
                return;
            };
            // Received chunks wait for their shard within the bound, and
            // within the room the budget has: beyond, one frame at a time.
            let inbound = self.shared.inbound.load(Ordering::Relaxed);
            connection.paused =
                inbound >= INBOUND_BYTES_MAX || (inbound > 0 && !self.shared.budget.has_room(FRAME_BYTES_MAX));
            if connection.paused || connection.stalled.is_some() {
                return;
            }
            let read = match connection.stream.read(scratch) {
                Ok(0) => return self.close_inbound(slot),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close_inbound(slot),
            };
            self.ctx
                .counters
                .transfer_bytes_received
                .fetch_add(read as u64, Ordering::Relaxed);
            // A frame begun in an earlier read is completed in its buffer;
            // otherwise frames are delivered straight from the read.
            let joined;
            let bytes = if connection.partial.is_empty() {
                &scratch[..read]
            } else {
                connection.partial.extend_from_slice(&scratch[..read]);
                joined = std::mem::take(&mut connection.partial);
                &joined[..]
            };
            if !self.deliver_frames(slot, bytes, shards) {
                return;
            }
        }
    }

    /// Delivers the whole frames at the start of `bytes` and keeps the rest
    /// as the connection's partial frame. False when the connection closed
    /// or stalled on a full shard queue.
    fn deliver_frames(&mut self, slot: usize, mut bytes: &[u8], shards: &[ShardHandle]) -> bool {
        while !bytes.is_empty() {
            let len = match internal::frame_bytes(bytes) {
                Ok(Some(len)) if len <= FRAME_BYTES_MAX => len,
                Ok(None) => break,
                // Not our protocol, or a frame no peer sends.
                Ok(Some(_)) | Err(_) => {
                    self.ctx
                        .counters
                        .count_rejected(crate::node::counters::Reject::Unsigned);
                    self.close_inbound(slot);
                    return false;
                }
            };
            if bytes.len() < len {
                break;
            }
            let (frame, rest) = bytes.split_at(len);
            bytes = rest;
            if let Some(stalled) = self.route(frame, shards) {
                let connection = self.inbound[slot].as_mut().expect("open");
                connection.stalled = Some(stalled);
                connection.partial = bytes.to_vec();
                return false;
            }
        }
        let connection = self.inbound[slot].as_mut().expect("open");
        connection.partial = bytes.to_vec();
        true
    }

    /// Authenticates a frame and hands it to its bucket's shard. Returns it
    /// when the shard's queue is full.
    fn route(&mut self, frame: &[u8], shards: &[ShardHandle]) -> Option<(usize, ShardMsg)> {
        let (bucket, msg) = self.frames.accept(frame)?;
        if let ShardMsg::Chunk { bytes, .. } = msg {
            self.shared.inbound.fetch_add(bytes, Ordering::Relaxed);
            self.shared.budget.force_reserve(bytes);
        }
        let shard = self.ctx.shard_of(bucket, shards.len());
        shards[shard].try_send(msg).err().map(|msg| (shard, msg))
    }

    /// Drops stalled queues and closes idle connections.
    fn housekeeping(&mut self) {
        let now = self.now_ms();
        for to in 0..self.peers.len() {
            let peer = &self.peers[to];
            let quiet = now.saturating_sub(peer.progress_ms);
            let stalled = !peer.queue.is_empty() && quiet >= STALL_MS;
            let idle = peer.queue.is_empty() && peer.stream.is_some() && quiet >= IDLE_MS;
            if stalled || idle {
                self.broken(to);
            }
        }
        for slot in 0..self.inbound.len() {
            let idle = self.inbound[slot]
                .as_ref()
                .is_some_and(|c| c.stalled.is_none() && now.saturating_sub(c.last_ms) >= INBOUND_IDLE_MS);
            if idle {
                self.close_inbound(slot);
            }
        }
    }
}

/// A non-blocking connection to `to` that leaves from this node's own
/// address (`from`, port chosen by the kernel), where it has one: a peer,
/// and any filter between them, sees the stream come from the address the
/// node is known by, as its datagrams do (on a host of several addresses
/// the kernel would otherwise pick the route's).
fn connect_from(from: Option<SocketAddr>, to: SocketAddr) -> io::Result<TcpStream> {
    let Some(from) = from.filter(|from| !from.ip().is_unspecified() && from.is_ipv4() == to.is_ipv4()) else {
        return TcpStream::connect(to);
    };
    let socket = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(from.ip(), 0).into())?;
    match socket.connect(&to.into()) {
        Ok(()) => {}
        Err(error) if error.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(error) => return Err(error),
    }
    Ok(TcpStream::from_std(socket.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::internal::{Chunk, Entry, Secret};
    use crate::cluster::ring::{Liveness, Placement};
    use crate::storage::stamp::Stamp;
    use crossbeam_channel::RecvTimeoutError;

    fn free_addr() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
    }

    fn context(self_index: usize, addrs: &[SocketAddr]) -> Arc<NodeContext> {
        let n = addrs.len();
        let names: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        let liveness = Liveness::ready(vec![true; n]);
        let view = Placement::new(&names, 3).view(self_index, liveness);
        Arc::new(NodeContext::of_servers(
            self_index,
            &names,
            Secret::from_bytes(b"test"),
            view,
            crate::node::context::NodeClock::real(),
        ))
    }

    /// A transfer thread for node `index`, running, delivering to one shard queue.
    fn start(index: usize, addrs: &[SocketAddr]) -> (TransferHandle, Receiver<ShardMsg>, Arc<MemoryBudget>) {
        let budget = Arc::new(MemoryBudget::new(usize::MAX / 2));
        let (thread, handle) = TransferThread::bind(context(index, addrs), budget.clone(), addrs[index]).unwrap();
        let (inbox, shard) = crossbeam_channel::bounded(16);
        let shards = vec![ShardHandle {
            inbox,
            backlog: Default::default(),
            waker: None,
        }];
        std::thread::spawn(move || thread.run(shards));
        (handle, shard, budget)
    }

    /// 100 entries of bucket 77 (a chunk holds its own bucket's keys only).
    fn chunk(index: u16, chunks: u16) -> Internal {
        let keys = (0u32..)
            .map(|i| format!("key-{index}-{i}").into_bytes())
            .filter(|key| crate::storage::hash::bucket_of_key(key) == 77);
        let entries = (keys.take(100).enumerate())
            .map(|(i, key)| Entry {
                key,
                value: if i % 7 == 0 { Vec::new() } else { vec![index as u8; 500] },
                version: i as i32,
                stamp: Stamp(u64::from(index) << 20 | i as u64),
                tombstone: i % 7 == 0,
            })
            .collect();
        Internal::Chunk(Chunk {
            request: 9,
            bucket: 77,
            chunk: index,
            chunks,
            entries,
        })
    }

    /// Polls `condition` for up to 5 s.
    fn eventually(condition: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn a_bucket_arrives_whole_and_in_order_and_every_byte_is_given_back() {
        let addrs = [free_addr(), free_addr()];
        let (sender, _, sender_budget) = start(0, &addrs);
        let (receiver, shard, receiver_budget) = start(1, &addrs);
        let mut sent: Vec<Internal> = (0..3).map(|i| chunk(i, 3)).collect();
        sent.push(Internal::Pull {
            request: 5,
            bucket: 78,
            digest: Some(9),
        });
        assert!(sender.send_messages(1, &sent));
        let mut applied = 0;
        for expected in &sent {
            let got = match shard.recv_timeout(Duration::from_secs(5)) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!("nothing arrived"),
            };
            match (expected, got) {
                (Internal::Chunk(want), ShardMsg::Chunk { chunk, bytes }) => {
                    assert_eq!(&chunk, want);
                    // Held against the receiver's budget until applied.
                    assert!(receiver_budget.used_bytes() >= bytes);
                    receiver.applied(bytes);
                    applied += bytes;
                }
                (
                    Internal::Pull {
                        request,
                        bucket,
                        digest,
                    },
                    ShardMsg::ServePull {
                        to,
                        request: r,
                        bucket: b,
                        digest: d,
                    },
                ) => {
                    assert_eq!((to, r, b, d), (0, *request, *bucket, *digest));
                }
                (want, got) => panic!("expected {want:?}, got {got:?}"),
            }
        }
        assert!(applied > 3 * 85 * 500, "six in seven entries carry 500 bytes");
        assert_eq!(receiver_budget.used_bytes(), 0);
        assert!(
            eventually(|| sender_budget.used_bytes() == 0),
            "sent frames are released"
        );
    }

    #[test]
    fn a_peer_that_refuses_the_connection_costs_its_queue_and_nothing_more() {
        let addrs = [free_addr(), free_addr()];
        let (sender, _, budget) = start(0, &addrs);
        assert!(sender.send_messages(1, &[chunk(0, 1)]));
        assert!(eventually(|| budget.used_bytes() == 0), "the dropped queue is released");
        assert!(eventually(|| sender
            .ctx
            .counters
            .transfer_breaks
            .load(Ordering::Relaxed)
            == 1));
        // The next transfer is taken again (and dropped again).
        assert!(sender.send_messages(1, &[chunk(1, 1)]));
    }

    /// Waits up to 5 s for a connection to `listener`.
    fn accept_within(listener: &std::net::TcpListener) -> Option<std::net::TcpStream> {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok((stream, _)) = listener.accept() {
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                return Some(stream);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    #[test]
    fn what_follows_a_peer_closing_its_end_goes_on_a_new_connection() {
        let addrs = [free_addr(), free_addr()];
        let peer = std::net::TcpListener::bind(addrs[1]).unwrap();
        let (sender, _, _) = start(0, &addrs);
        for index in 0..2 {
            // The peer reads one frame, then restarts: its end closes.
            assert!(sender.send_messages(1, &[chunk(index, 2)]));
            let mut connection = accept_within(&peer).expect("a connection for each frame");
            // The same length as any encoding of it: only seq and time differ.
            let expected = sender.ctx.encode(1, Channel::Stream, &chunk(index, 2));
            let mut got = vec![0; expected.len()];
            connection.read_exact(&mut got).unwrap();
            let (envelope, message) = internal::decode_unchecked(&sender.ctx.secret, &got).unwrap();
            let ids = (sender.ctx.roster.id(0).unwrap(), sender.ctx.roster.id(1).unwrap());
            assert_eq!((envelope.sender, envelope.to, message), (ids.0, ids.1, chunk(index, 2)));
        }
        assert_eq!(sender.ctx.counters.transfer_breaks.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn queues_refuse_what_passes_their_bounds_whole() {
        let addrs = [free_addr(), free_addr(), free_addr()];
        let budget = Arc::new(MemoryBudget::new(usize::MAX / 2));
        // Not run: nothing leaves the queues.
        let (_thread, handle) = TransferThread::bind(context(0, &addrs), budget.clone(), addrs[0]).unwrap();
        let bucket = || vec![vec![0u8; 300 * 1024]];
        assert!(handle.send(1, bucket()), "an empty queue takes any bucket");
        assert!(!handle.send(1, bucket()), "beyond the per-peer bound");
        assert!(handle.send(2, bucket()), "another peer has its own bound");
        assert_eq!(budget.used_bytes(), 2 * 300 * 1024);
        assert_eq!(handle.ctx.counters.transfer_refused.load(Ordering::Relaxed), 1);
        assert!(!handle.send(7, bucket()), "no such node");
    }

    #[test]
    fn a_node_at_its_memory_limit_sends_one_thing_at_a_time() {
        let addrs = [free_addr(), free_addr(), free_addr()];
        let budget = Arc::new(MemoryBudget::new(1 << 20));
        let (_thread, handle) = TransferThread::bind(context(0, &addrs), budget.clone(), addrs[0]).unwrap();
        assert!(budget.try_reserve(1 << 20), "the store fills the budget");
        let bucket = || vec![vec![0u8; 1024]];
        assert!(handle.send(1, bucket()), "an empty queue takes a bucket");
        assert!(!handle.send(1, bucket()), "nothing more to this peer");
        assert!(!handle.send(2, bucket()), "nor to any other");
    }
}

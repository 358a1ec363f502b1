//! The event loop: drains the UDP socket, drops junk silently, answers node
//! commands (IS_ALIVE, GET_PID, GET_MEMBERSHIP_COUNT, SHUTDOWN) and invalid
//! requests inline, forwards keyed requests whose coordinator is another
//! node, and hands the rest to their shard, one batch per shard per drain. A
//! shard whose backlog is over its bound gets no more: those requests are
//! answered OVERLOAD with a wait that grows with the backlog, never with
//! silence. Authenticated node-to-node datagrams go to the shard of their
//! bucket or to the cluster thread.

use crate::admin::{self, Report, ReportKind};
use crate::cluster::{ClusterContext, ClusterMsg};
use crate::freshness::Freshness;
use crate::hash::{bucket_of, key_hash, message_id_hash};
use crate::internal::{self, FORWARD_HOPS_MAX, Internal};
use crate::log;
use crate::mailbox::MailboxSender;
use crate::memory::MemoryBudget;
use crate::pause::ResumeWatch;
use crate::ring::View;
use crate::shard::{Request, ShardMsg, Wipeout, Worker};
use crate::udp::send_reply;
use crate::wire::{self, DATAGRAM_BYTES_MAX, ErrorCode, NodeCommand, Parsed, Reply};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Requests a shard may have queued before new ones are refused with
/// OVERLOAD (`--shard-backlog-max`).
pub const SHARD_BACKLOG_REQUESTS_MAX: usize = 4096;
/// Datagrams handled before batches are flushed to the shards, so a shard
/// starts working while the socket is still being drained.
const DRAIN_BATCH_DATAGRAMS_MAX: usize = 64;
/// Wait suggested to a refused client, per queued request (plus a floor).
const OVERLOAD_WAIT_MS_MIN: usize = 20;
const OVERLOAD_WAIT_MS_MAX: usize = 1_000;
/// WIPEOUT message ids remembered for at-most-once.
const WIPEOUT_IDS_MAX: usize = 64;

/// Wait suggested when a request cannot be routed this moment.
const REROUTE_WAIT_MS: i32 = 50;

/// Kernel receive-buffer bytes charged per small datagram (its skb).
const QUEUED_BYTES_PER_DATAGRAM: usize = 1024;
/// How often an inline shard looks at writes waiting for replica acks.
const INLINE_TICK: Duration = Duration::from_millis(20);
/// How often an idle loop wakes: to expire at-most-once entries and to
/// notice a gap long enough to make queued datagrams stale (shorter than
/// any failure timeout).
const IDLE_TICK: Duration = Duration::from_millis(500);

const SOCKET: Token = Token(0);
/// Another thread queued work for the inline shard.
pub const WAKE: Token = Token(1);

/// A handle on one shard's queue.
#[derive(Clone)]
pub struct ShardHandle {
    pub inbox: Sender<ShardMsg>,
    pub backlog: Arc<AtomicUsize>,
    /// Wakes the event loop when the shard runs on it (`--workers 0`).
    pub waker: Option<Arc<Waker>>,
}

impl ShardHandle {
    /// Queues a message without waiting; hands it back when the queue is full.
    pub fn try_send(&self, msg: ShardMsg) -> Result<(), ShardMsg> {
        self.inbox.try_send(msg).map_err(TrySendError::into_inner)?;
        if let Some(waker) = &self.waker {
            let _ = waker.wake();
        }
        Ok(())
    }
}

/// Node-level facts the loop answers from.
pub struct NodeFacts {
    pub pid: i32,
    pub started: Instant,
    pub budget: Arc<MemoryBudget>,
    /// A gap between wake-ups this long, with no SIGCONT, also makes what
    /// queued meanwhile stale (the failure timeout: peers counted us dead).
    pub stale_after: Duration,
}

/// Counters for operators.
#[derive(Default)]
pub struct NetStats {
    pub datagrams: AtomicU64,
    pub dropped_junk: AtomicU64,
    pub overloads: AtomicU64,
}

/// Datagrams per second, measured over windows of about a second.
struct RateMeter {
    since: Instant,
    count_then: u64,
    per_second: u64,
}

pub struct NetLoop {
    poll: Poll,
    socket: mio::net::UdpSocket,
    /// Blocking-style handle of the same socket, for sends.
    send_socket: UdpSocket,
    shards: Vec<ShardHandle>,
    facts: NodeFacts,
    stats: Arc<NetStats>,
    batches: Vec<Vec<Request>>,
    wipeout_ids: VecDeque<u64>,
    ctx: Arc<ClusterContext>,
    /// Gossip for the cluster thread, taken at its next round.
    gossip: MailboxSender<ClusterMsg>,
    rate: RateMeter,
    /// The routing view, refreshed once per drain.
    view: Arc<View>,
    /// With `--workers 0`, the single shard runs on this thread: requests are
    /// executed as they are drained, and what other threads send the shard
    /// is taken from its queue every loop.
    inline: Option<(Worker, Receiver<ShardMsg>)>,
    /// Requests a shard may have queued (for an inline shard: datagrams in
    /// one drain) before new ones are answered OVERLOAD.
    backlog_max: usize,
    /// Datagrams waiting in the socket at the last look (inline shard only).
    socket_backlog: usize,
    resume_watch: ResumeWatch,
    /// Which node datagrams have been seen (replays are refused).
    freshness: Freshness,
}

/// The shards the loop feeds.
pub struct Shards {
    pub handles: Vec<ShardHandle>,
    /// The shard run on the event loop itself (`--workers 0`).
    pub inline: Option<(Worker, Receiver<ShardMsg>)>,
    pub backlog_max: usize,
}

impl NetLoop {
    /// `poll` may already carry a [`WAKE`] waker for the inline shard.
    pub fn new(
        poll: Poll,
        socket: UdpSocket,
        shards: Shards,
        facts: NodeFacts,
        ctx: Arc<ClusterContext>,
        gossip: MailboxSender<ClusterMsg>,
    ) -> io::Result<NetLoop> {
        let Shards {
            handles: shards,
            inline,
            backlog_max,
        } = shards;
        let stats = Arc::new(NetStats::default());
        let ctx_nodes = ctx.addrs.len();
        let send_socket = socket.try_clone()?;
        let batches = shards.iter().map(|_| Vec::new()).collect();
        let view = ctx.view();
        let rate = RateMeter {
            since: Instant::now(),
            count_then: 0,
            per_second: 0,
        };
        Ok(NetLoop {
            poll,
            inline,
            backlog_max,
            socket_backlog: 0,
            rate,
            ctx,
            gossip,
            view,
            socket: mio::net::UdpSocket::from_std(socket),
            send_socket,
            shards,
            facts,
            stats,
            batches,
            wipeout_ids: VecDeque::new(),
            resume_watch: ResumeWatch::default(),
            freshness: Freshness::new(ctx_nodes),
        })
    }

    /// Runs until the process exits.
    pub fn run(mut self) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut self.socket, SOCKET, Interest::READABLE)?;
        let mut events = Events::with_capacity(16);
        let mut buffer = vec![0u8; DATAGRAM_BYTES_MAX + 1];
        let mut last_wake = Instant::now();
        loop {
            let waiting_for_acks = self.inline.as_ref().is_some_and(|(worker, _)| worker.has_pending());
            let timeout = if waiting_for_acks { INLINE_TICK } else { IDLE_TICK };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                // A signal (SIGCONT) interrupts the wait: look at it below.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
            // Stopped and continued, or away so long that peers counted
            // this node dead (a frozen host): what queued meanwhile is
            // stale. A gap shorter than that is a slow tick on a busy host,
            // and what queued is merely late.
            if self.resume_watch.resumed() || last_wake.elapsed() > self.facts.stale_after {
                self.discard_stale(&mut buffer);
            }
            last_wake = Instant::now();
            self.view = self.ctx.view();
            self.measure_rate();
            self.drain(&mut buffer);
            if let Some((worker, queue)) = &mut self.inline {
                while let Ok(msg) = queue.try_recv() {
                    worker.handle(msg);
                }
                worker.tick_pending();
            }
        }
    }

    /// For an inline shard, the datagrams queued in the socket (estimated
    /// from the kernel's byte count) are its backlog.
    fn measure_socket_backlog(&mut self) {
        if self.inline.is_some() {
            self.socket_backlog = crate::udp::queued_bytes(&self.socket) / QUEUED_BYTES_PER_DATAGRAM;
        }
    }

    /// Hands a message to a shard: its queue, or the inline shard directly.
    /// `wait` blocks on a full queue (a wipe or a report must not be lost).
    fn deliver(&mut self, shard: usize, msg: ShardMsg, wait: bool) {
        if let Some((worker, _)) = &mut self.inline {
            return worker.handle(msg);
        }
        let inbox = &self.shards[shard].inbox;
        let _ = if wait {
            inbox.send(msg).map_err(|_| ())
        } else {
            inbox.try_send(msg).map_err(|_| ())
        };
    }

    /// After a suspension the socket holds requests that clients have long
    /// given up on (or retried elsewhere); executing them now could write
    /// stale values over newer ones. They are dropped unread.
    fn discard_stale(&mut self, buffer: &mut [u8]) {
        self.ctx.suspended.store(true, Ordering::Release);
        let mut dropped = 0;
        while self.socket.recv_from(buffer).is_ok() {
            dropped += 1;
        }
        log!("resumed after a suspension: dropped {dropped} queued datagrams");
    }

    /// Reads until the socket is empty (mio is edge-triggered).
    fn drain(&mut self, buffer: &mut [u8]) {
        let mut since_flush = 0;
        loop {
            match self.socket.recv_from(buffer) {
                Ok((len, from)) => {
                    self.stats.datagrams.fetch_add(1, Ordering::Relaxed);
                    self.handle_datagram(&buffer[..len], from);
                    since_flush += 1;
                    if since_flush == DRAIN_BATCH_DATAGRAMS_MAX {
                        self.flush();
                        self.measure_socket_backlog();
                        since_flush = 0;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // Emptied: nothing is waiting (measuring before every
                    // drain would cost a system call per idle wake-up).
                    self.socket_backlog = 0;
                    break;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // ICMP errors from earlier sends surface here; nothing to do.
                Err(_) => {}
            }
        }
        self.flush();
    }

    fn handle_datagram(&mut self, datagram: &[u8], from: SocketAddr) {
        if internal::is_internal(datagram) {
            return self.handle_internal(datagram, from);
        }
        self.handle_client(datagram, from, 0);
    }

    /// A client datagram, received directly (`hops` 0) or forwarded.
    fn handle_client(&mut self, datagram: &[u8], client: SocketAddr, hops: u8) {
        let Ok((message_id, parsed)) = wire::decode_client(datagram) else {
            self.stats.dropped_junk.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match parsed {
            Parsed::Invalid(code) => self.reply(message_id, &Reply::Code(code), client),
            Parsed::Node(command) => self.node_command(message_id, command, client),
            Parsed::Keyed(op) => {
                let bucket = bucket_of(key_hash(op.key().as_bytes()));
                let me = self.ctx.self_index;
                let mut coordinator = self.view.coordinator(bucket).unwrap_or(me);
                let behind = self.ctx.suspended.load(Ordering::Acquire) || self.view.liveness.behind[me];
                if coordinator == me && behind {
                    // Woke from a suspension and not caught up yet: this
                    // node's data is stale (it is the coordinator only for
                    // lack of a node known to be current).
                    coordinator = self.view.coordinator_besides(bucket, me).unwrap_or(me);
                }
                if coordinator == me && !self.view.holds(me, bucket) && !self.ctx.holds_data(bucket) {
                    // A stand-in without the bucket's data: views are still
                    // converging; the preferred replica has the data.
                    coordinator = self.view.preference(bucket).first().map_or(me, |&n| usize::from(n));
                }
                // At the hop limit a replica executes what reached it, but
                // only if its own data is current: two nodes that both just
                // woke would otherwise bounce a request between their stale
                // views and one of them would answer from stale data.
                let current = self.ready_self() && !self.ctx.suspended.load(Ordering::Acquire);
                if coordinator == me || (hops >= FORWARD_HOPS_MAX && current && self.view.holds(me, bucket)) {
                    if let Some((worker, _)) = &mut self.inline {
                        if self.socket_backlog > self.backlog_max {
                            // The socket is the inline shard's queue.
                            return self.refuse([(message_id, client)], self.socket_backlog);
                        }
                        // Executed at once, from the receive buffer: the
                        // value is copied once, into the store.
                        return worker.serve(&self.view, message_id, op, client);
                    }
                    let shard = self.ctx.shard_of(bucket, self.shards.len());
                    let request = Request {
                        datagram: datagram.to_vec(),
                        client,
                    };
                    self.batches[shard].push(request);
                } else if hops < FORWARD_HOPS_MAX {
                    self.ctx.counters.forwarded.fetch_add(1, Ordering::Relaxed);
                    let forward = Internal::Forward {
                        hops: hops + 1,
                        client,
                        datagram: datagram.to_vec(),
                    };
                    self.ctx.send(&self.send_socket, coordinator, &forward);
                } else {
                    self.reply(
                        message_id,
                        &Reply::Overload {
                            wait_ms: REROUTE_WAIT_MS,
                        },
                        client,
                    );
                }
            }
        }
    }

    fn measure_rate(&mut self) {
        let elapsed = self.rate.since.elapsed();
        if elapsed >= Duration::from_secs(1) {
            let count = self.stats.datagrams.load(Ordering::Relaxed);
            self.rate.per_second = ((count - self.rate.count_then) as f64 / elapsed.as_secs_f64()) as u64;
            self.rate.count_then = count;
            self.rate.since = Instant::now();
        }
    }

    /// A node-to-node or operator datagram: used only once it is shown to
    /// be signed, meant for this node, in range and new.
    fn handle_internal(&mut self, datagram: &[u8], from: SocketAddr) {
        let bounds = self.ctx.bounds();
        let (envelope, message) = match internal::decode(&self.ctx.secret, self.ctx.self_index as u8, &bounds, datagram)
        {
            Ok(decoded) => decoded,
            Err(error) => return self.ctx.count_rejected(error),
        };
        if self.freshness.admit(&envelope, bounds.now_unix_ms).is_err() {
            self.ctx.counters.rejected_stale.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let sender = usize::from(envelope.sender);
        let shards = self.shards.len();
        let (bucket, msg) = match message {
            Internal::Admin {
                message_id,
                command,
                arg,
            } => return self.admin(message_id, command, &arg, from),
            Internal::Gossip { heartbeats } => {
                let _ = self.gossip.try_send(ClusterMsg::Gossip { sender, heartbeats });
                return;
            }
            Internal::Forward { hops, client, datagram } => return self.handle_client(&datagram, client, hops),
            Internal::Replicate { seq, entry } => (
                bucket_of(key_hash(&entry.key)),
                ShardMsg::Replicate {
                    from: sender,
                    seq,
                    entry,
                },
            ),
            Internal::ReplicateAck {
                seq,
                bucket,
                full,
                refused,
            } => (
                bucket,
                ShardMsg::Ack {
                    from: sender,
                    seq,
                    full,
                    refused,
                },
            ),
            // Transfers travel over TCP only (the transfer thread).
            Internal::SyncRequest { .. } | Internal::SyncChunk(_) => return,
            Internal::Digests { digests } => return self.route_digests(sender, digests),
        };
        // Node-to-node work is not refused for load: a full queue drops it
        // and the sender's retransmission or timeout covers the loss.
        self.deliver(self.ctx.shard_of(bucket, shards), msg, false);
    }

    /// Splits a peer's bucket digests by shard; each shard compares its own.
    fn route_digests(&mut self, sender: usize, digests: Vec<(u16, u64, u32)>) {
        let shards = self.shards.len();
        let mut by_shard: Vec<Vec<(u16, u64, u32)>> = vec![Vec::new(); shards];
        for digest in digests {
            if usize::from(digest.0) < crate::hash::BUCKETS {
                by_shard[self.ctx.shard_of(digest.0, shards)].push(digest);
            }
        }
        for (shard, digests) in by_shard.into_iter().enumerate() {
            if !digests.is_empty() {
                self.deliver(shard, ShardMsg::Digests { from: sender, digests }, false);
            }
        }
    }

    /// Answers an authenticated operator command.
    fn admin(&mut self, message_id: Vec<u8>, command: u8, arg: &[u8], from: SocketAddr) {
        let kind = match command {
            admin::STATS => ReportKind::Stats,
            admin::BUCKETS => match arg {
                [low, high] => ReportKind::Buckets(u16::from_le_bytes([*low, *high])),
                _ => ReportKind::Buckets(0),
            },
            admin::KEYS
                if arg.len() == 2 && usize::from(u16::from_le_bytes([arg[0], arg[1]])) < crate::hash::BUCKETS =>
            {
                ReportKind::Keys(u16::from_le_bytes([arg[0], arg[1]]))
            }
            admin::MEMBERS => {
                let view = &self.view;
                let mut text = String::new();
                for (index, addr) in self.ctx.addrs.iter().enumerate() {
                    let alive = view.liveness.alive[index];
                    let ready = view.liveness.ready[index] || (index == self.ctx.self_index && self.ready_self());
                    let full = view.liveness.full[index];
                    text.push_str(&format!(
                        "{index} {addr} {} {} {}\n",
                        u8::from(alive),
                        u8::from(ready),
                        u8::from(full)
                    ));
                }
                return send_reply(&self.send_socket, &admin::text_reply(&message_id, text), from);
            }
            _ => return send_reply(&self.send_socket, &admin::unknown_command(&message_id), from),
        };
        let header = if kind == ReportKind::Stats {
            self.stats_header()
        } else {
            String::new()
        };
        let targets: Vec<usize> = match kind {
            ReportKind::Keys(bucket) => vec![self.ctx.shard_of(bucket, self.shards.len())],
            _ => (0..self.shards.len()).collect(),
        };
        let report = Arc::new(Report {
            kind,
            shards_left: AtomicUsize::new(targets.len()),
            parts: Default::default(),
            message_id,
            to: from,
            header,
        });
        for shard in targets {
            // An operator's question may wait for a busy shard; it is rare.
            self.deliver(shard, ShardMsg::Report(report.clone()), true);
        }
    }

    fn ready_self(&self) -> bool {
        self.view.liveness.ready[self.ctx.self_index]
    }

    fn stats_header(&self) -> String {
        let c = &self.ctx.counters;
        let s = &self.stats;
        let budget = &self.facts.budget;
        [
            ("node", self.ctx.addrs[self.ctx.self_index].to_string()),
            ("pid", self.facts.pid.to_string()),
            ("members", self.ctx.membership_count.load(Ordering::Relaxed).to_string()),
            ("ready", u8::from(self.ready_self()).to_string()),
            (
                "full",
                u8::from(self.view.liveness.full[self.ctx.self_index]).to_string(),
            ),
            ("uptime_s", self.facts.started.elapsed().as_secs().to_string()),
            ("rss_bytes", crate::memory::rss_bytes().to_string()),
            ("over_rss", u8::from(budget.is_over_rss()).to_string()),
            ("stored_bytes", budget.used_bytes().to_string()),
            ("store_limit_bytes", budget.limit_bytes().to_string()),
            ("datagrams", s.datagrams.load(Ordering::Relaxed).to_string()),
            ("requests_per_s", self.rate.per_second.to_string()),
            ("overloads", s.overloads.load(Ordering::Relaxed).to_string()),
            ("dropped_junk", s.dropped_junk.load(Ordering::Relaxed).to_string()),
            ("forwarded", c.forwarded.load(Ordering::Relaxed).to_string()),
            (
                "rejected_unsigned",
                c.rejected_unsigned.load(Ordering::Relaxed).to_string(),
            ),
            (
                "rejected_misdirected",
                c.rejected_misdirected.load(Ordering::Relaxed).to_string(),
            ),
            (
                "rejected_out_of_range",
                c.rejected_out_of_range.load(Ordering::Relaxed).to_string(),
            ),
            ("rejected_stale", c.rejected_stale.load(Ordering::Relaxed).to_string()),
            (
                "replica_refusals",
                c.replica_refusals.load(Ordering::Relaxed).to_string(),
            ),
            ("entries_refused", c.entries_refused.load(Ordering::Relaxed).to_string()),
            ("peers_died", c.peers_died.load(Ordering::Relaxed).to_string()),
            ("suspensions", c.suspensions.load(Ordering::Relaxed).to_string()),
            ("stalls", c.stalls.load(Ordering::Relaxed).to_string()),
            ("buckets_pulled", c.buckets_pulled.load(Ordering::Relaxed).to_string()),
            ("entries_pulled", c.entries_pulled.load(Ordering::Relaxed).to_string()),
            ("repairs", c.repairs.load(Ordering::Relaxed).to_string()),
            ("pulls_pending", c.pulls_pending.load(Ordering::Relaxed).to_string()),
            (
                "transfer_bytes_sent",
                c.transfer_bytes_sent.load(Ordering::Relaxed).to_string(),
            ),
            (
                "transfer_bytes_received",
                c.transfer_bytes_received.load(Ordering::Relaxed).to_string(),
            ),
            (
                "transfer_refused",
                c.transfer_refused.load(Ordering::Relaxed).to_string(),
            ),
            ("transfer_breaks", c.transfer_breaks.load(Ordering::Relaxed).to_string()),
            ("send_drops", crate::udp::SEND_DROPS.load(Ordering::Relaxed).to_string()),
        ]
        .iter()
        .map(|(name, value)| format!("{name} {value}\n"))
        .collect()
    }

    fn node_command(&mut self, message_id: &[u8], command: NodeCommand, from: SocketAddr) {
        let reply = match command {
            NodeCommand::IsAlive => Reply::Code(ErrorCode::Success),
            NodeCommand::GetPid => Reply::Pid(self.facts.pid),
            NodeCommand::GetMembershipCount => {
                Reply::MembershipCount(self.ctx.membership_count.load(Ordering::Relaxed) as i32)
            }
            // Like a crash: no reply, no cleanup, no handoff.
            // SAFETY: _exit ends the process; nothing is left to run.
            NodeCommand::Shutdown => unsafe { libc::_exit(0) },
            NodeCommand::Wipeout => return self.wipeout(message_id.to_vec(), from),
        };
        self.reply(message_id, &reply, from);
    }

    /// Every shard empties its partition and cache; the last one answers.
    /// A retried WIPEOUT is answered without wiping again.
    fn wipeout(&mut self, message_id: Vec<u8>, from: SocketAddr) {
        let id_hash = message_id_hash(&message_id);
        if self.wipeout_ids.contains(&id_hash) {
            return self.reply(&message_id, &Reply::Code(ErrorCode::Success), from);
        }
        if self.wipeout_ids.len() == WIPEOUT_IDS_MAX {
            self.wipeout_ids.pop_front();
        }
        self.wipeout_ids.push_back(id_hash);
        self.flush();
        let job = Arc::new(Wipeout {
            shards_left: AtomicUsize::new(self.shards.len()),
            message_id,
            client: from,
        });
        for shard in 0..self.shards.len() {
            self.deliver(shard, ShardMsg::Wipeout(job.clone()), true);
        }
    }

    fn reply(&self, message_id: &[u8], reply: &Reply, to: SocketAddr) {
        send_reply(&self.send_socket, &reply.encode(message_id), to);
    }

    /// Hands each worker its batch, or answers the batch OVERLOAD when the
    /// worker is behind.
    fn flush(&mut self) {
        for index in 0..self.shards.len() {
            if self.batches[index].is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut self.batches[index]);
            let count = batch.len();
            let shard = &self.shards[index];
            let backlog = shard.backlog.load(Ordering::Relaxed);
            let refused = if backlog + count > self.backlog_max {
                Some(ShardMsg::Requests(batch))
            } else {
                shard.backlog.fetch_add(count, Ordering::Relaxed);
                match shard.inbox.try_send(ShardMsg::Requests(batch)) {
                    Ok(()) => None,
                    Err(full_or_gone) => {
                        shard.backlog.fetch_sub(count, Ordering::Relaxed);
                        Some(full_or_gone.into_inner())
                    }
                }
            };
            if let Some(ShardMsg::Requests(batch)) = refused {
                let ids = batch.iter().filter_map(|request| {
                    let (id, _) = wire::decode_client(&request.datagram).ok()?;
                    Some((id, request.client))
                });
                self.refuse(ids, backlog);
            }
        }
    }

    /// Answers OVERLOAD, with a wait that grows with the backlog.
    fn refuse<'a>(&self, requests: impl IntoIterator<Item = (&'a [u8], SocketAddr)>, backlog: usize) {
        let wait_ms = (OVERLOAD_WAIT_MS_MIN + backlog / 16).min(OVERLOAD_WAIT_MS_MAX) as i32;
        for (message_id, client) in requests {
            self.stats.overloads.fetch_add(1, Ordering::Relaxed);
            self.reply(message_id, &Reply::Overload { wait_ms }, client);
        }
    }
}

//! One simulated node: the real parts of a dynakv node (router with its
//! shard, cluster core, stream frames), driven on the simulator's thread
//! with a clock it sets, and I/O that lands in the simulator's network.

use dynakv::cluster::ring::Placement;
use dynakv::cluster::secret::Secret;
use dynakv::node::assemble::{self, NodeSpec};
use dynakv::node::cluster_core::ClusterCore;
use dynakv::node::context::{Away, NodeClock, NodeContext, NodeIo, PlantedBugs};
use dynakv::node::mailbox::Mailbox;
use dynakv::node::messages::{ClusterMsg, ShardHandle};
use dynakv::node::router::{Router, SHARD_BACKLOG_REQUESTS_MAX};
use dynakv::node::shard::ShardConfig;
use dynakv::node::streams::StreamFrames;
use dynakv::storage::memory::MemoryBudget;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Each node's store budget in the simulator (generous: runs test
/// correctness, not capacity; the budget is still checked on every step).
pub const STORE_BYTES: usize = 32 << 20;
/// Gossip taken per round at most (as the runtime does).
const GOSSIP_PER_ROUND_MAX: usize = 256;

/// What a node sent during one step.
pub enum Out {
    Datagram(SocketAddr, Vec<u8>),
    Stream(usize, Vec<Vec<u8>>),
}

/// The node's I/O: collected, then put on the network by the simulator.
#[derive(Default)]
pub struct SimIo {
    out: Mutex<Vec<Out>>,
    shut_down: AtomicBool,
}

impl SimIo {
    pub fn take(&self) -> Vec<Out> {
        std::mem::take(&mut *self.out.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Relaxed)
    }
}

impl NodeIo for SimIo {
    fn datagram(&self, to: SocketAddr, bytes: &[u8]) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.push(Out::Datagram(to, bytes.to_vec()));
    }

    fn stream(&self, to: usize, frames: Vec<Vec<u8>>) -> bool {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.push(Out::Stream(to, frames));
        true
    }

    fn applied(&self, _bytes: usize) {}

    fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Relaxed);
    }
}

/// A node that is up: its parts, built exactly as `dynakv serve` builds
/// them with `--workers 0`.
pub struct Running {
    pub ctx: Arc<NodeContext>,
    pub router: Router,
    pub cluster: ClusterCore,
    cluster_inbox: Mailbox<ClusterMsg>,
    gossip_inbox: Mailbox<ClusterMsg>,
    frames: StreamFrames,
    shards: Vec<ShardHandle>,
    pub budget: Arc<MemoryBudget>,
    pub io: Arc<SimIo>,
    /// Simulated time (us) at which this process started.
    pub started_us: u64,
    /// Stops this process was continued from (its SIGCONT count).
    stops: u64,
}

/// Who the nodes of a simulated cluster are.
pub struct Cluster {
    pub names: Vec<String>,
    pub addrs: Vec<SocketAddr>,
    pub secret: Secret,
    pub replicas: usize,
    pub bugs: PlantedBugs,
}

impl Running {
    /// Starts node `index` (empty store) at simulated time `now_us`, its
    /// wall clock reading `unix_ms`.
    pub fn start(cluster: &Cluster, index: usize, now_us: u64, unix_ms: u64) -> Running {
        let spec = NodeSpec {
            self_index: index,
            names: cluster.names.clone(),
            addrs: cluster.addrs.clone(),
            secret: cluster.secret.clone(),
            replicas: cluster.replicas,
            failure_ms: dynakv::node::cluster_core::FAILURE_MS_DEFAULT,
            workers: 0,
            shard: ShardConfig {
                reply_cache_ms: dynakv::storage::reply_cache::RETENTION_MS_MIN,
                reply_cache_reserve_bytes: 256 << 10,
                keep_tombstones: cluster.addrs.len() > 1 && cluster.replicas > 1,
                fault_lose_replica_writes_percent: 0,
            },
            backlog_max: SHARD_BACKLOG_REQUESTS_MAX,
            pid: index as i32 + 1,
            admin_allow: Default::default(),
            bugs: cluster.bugs,
        };
        let placement = Placement::new(&spec.names, spec.replicas);
        let ctx = Arc::new(assemble::context(
            &spec,
            &placement,
            NodeClock::set_from_outside(unix_ms),
        ));
        let budget = Arc::new(MemoryBudget::new(STORE_BYTES));
        let io = Arc::new(SimIo::default());
        let node_io: Arc<dyn NodeIo> = io.clone();
        let parts = assemble::parts(&spec, placement, &ctx, &budget, &node_io, None);
        let mut running = Running {
            frames: StreamFrames::new(ctx.clone()),
            ctx,
            router: parts.router,
            cluster: parts.cluster,
            cluster_inbox: parts.cluster_inbox,
            gossip_inbox: parts.gossip_inbox,
            shards: parts.shards,
            budget,
            io,
            started_us: now_us,
            stops: 0,
        };
        running.cluster.start();
        running.settle();
        running
    }

    /// Sets the node's clocks before a step.
    pub fn set_clock(&self, now_us: u64, unix_ms: u64) {
        let mono_ms = now_us.saturating_sub(self.started_us) / 1_000;
        self.ctx.clock.set(mono_ms, unix_ms);
    }

    /// Lets the parts hand each other what they queued until nothing is
    /// left (the runtime's threads would, in some order).
    pub fn settle(&mut self) {
        loop {
            self.router.tick();
            let mut more = false;
            while let Some(msg) = self.cluster_inbox.try_recv() {
                self.cluster.handle(msg);
                more = true;
            }
            if !more {
                return;
            }
        }
    }

    pub fn datagram(&mut self, bytes: &[u8], from: SocketAddr) {
        self.router.begin_drain();
        self.router.handle_datagram(bytes, from);
        self.settle();
    }

    /// Frames arrived on a stream, in order.
    pub fn frames(&mut self, frames: &[Vec<u8>]) {
        for frame in frames {
            if let Some((bucket, msg)) = self.frames.accept(frame) {
                let shard = self.ctx.shard_of(bucket, self.shards.len());
                let _ = self.shards[shard].try_send(msg);
            }
        }
        self.settle();
    }

    pub fn round(&mut self) {
        let gossip = &self.gossip_inbox;
        self.cluster
            .round_with((0..GOSSIP_PER_ROUND_MAX).map_while(|_| gossip.try_recv()));
        self.settle();
    }

    /// The process was stopped and has just been continued: what queued in
    /// its socket meanwhile is dropped (as the event loop does on SIGCONT).
    pub fn resumed(&mut self, dropped: usize) {
        self.stops += 1;
        self.router.resumed(Away::Continued { stop: self.stops }, dropped);
        self.settle();
    }

    /// Store bytes over the budget, if any.
    pub fn over_budget(&self) -> Option<(usize, usize)> {
        let (used, limit) = (self.budget.used_bytes(), self.budget.limit_bytes());
        (used > limit).then_some((used, limit))
    }

    pub fn membership_count(&self) -> usize {
        self.ctx.membership_count.load(Ordering::Relaxed)
    }
}

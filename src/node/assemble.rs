//! Puts one node's parts together, the same way for a real process and for
//! the simulator: its context, its shards, its router and its cluster
//! core, and the queues between them. Who drives them (threads, or the
//! simulator's loop) is the caller's business.

use crate::cluster::ring::{Liveness, Placement};
use crate::cluster::secret::Secret;
use crate::node::admin_allow::AdminAllow;
use crate::node::cluster_core::ClusterCore;
#[cfg(feature = "planted-bugs")]
use crate::node::context::PlantedBugs;
use crate::node::context::{NodeClock, NodeContext, NodeIo};
use crate::node::mailbox::{self, Mailbox};
use crate::node::messages::{ClusterMsg, ShardHandle, ShardMsg, Wake};
use crate::node::router::{NodeFacts, Router, Shards};
use crate::node::shard::{Shard, ShardConfig};
use crate::storage::memory::MemoryBudget;
use crossbeam_channel::Receiver;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

/// Messages the cluster core's queue holds.
const CLUSTER_QUEUE_MAX: usize = 4096;
/// Gossip datagrams queued for the cluster core's next round (a node gets
/// about 3 per round; beyond this they are dropped). Each holds a
/// heartbeat vector: 3.6 KB at 150 nodes.
const GOSSIP_QUEUE_MAX: usize = 256;
/// Batches a shard's queue holds (the request bound is the router's).
const SHARD_QUEUE_BATCHES_MAX: usize = 1024;

/// Who a node is and how it is set up.
pub struct NodeSpec {
    pub self_index: usize,
    /// The servers file: names (as written) and addresses, in file order.
    pub names: Vec<String>,
    pub addrs: Vec<SocketAddr>,
    pub secret: Secret,
    pub replicas: usize,
    pub failure_ms: u64,
    /// Worker threads, one shard each; 0 runs the single shard on the router.
    pub workers: usize,
    pub shard: ShardConfig,
    pub backlog_max: usize,
    pub pid: i32,
    pub admin_allow: AdminAllow,
    /// Switched on only by the simulator (see [`PlantedBugs`]).
    #[cfg(feature = "planted-bugs")]
    pub bugs: PlantedBugs,
}

/// A node's context, as every part sees it, with the first view: only
/// itself alive, nothing ready.
pub fn context(spec: &NodeSpec, placement: &Placement, clock: NodeClock) -> NodeContext {
    let n = spec.addrs.len();
    let mut alive = vec![false; n];
    alive[spec.self_index] = true;
    let initial = placement.view(spec.self_index, Liveness::new(alive, vec![false; n]));
    #[cfg_attr(not(feature = "planted-bugs"), allow(unused_mut))]
    let mut ctx = NodeContext::new(spec.self_index, spec.addrs.clone(), spec.secret.clone(), initial, clock);
    #[cfg(feature = "planted-bugs")]
    {
        ctx.bugs = spec.bugs;
    }
    ctx
}

/// A node's parts, ready to be driven.
pub struct Parts {
    pub router: Router,
    pub cluster: ClusterCore,
    /// Every shard's queue (with `workers` 0 the one shard runs in the router).
    pub shards: Vec<ShardHandle>,
    /// Shards that want threads of their own, with their queues.
    pub workers: Vec<(Shard, Receiver<ShardMsg>)>,
    /// What shards tell the cluster core, and gossip for its next round.
    pub cluster_inbox: Mailbox<ClusterMsg>,
    pub gossip_inbox: Mailbox<ClusterMsg>,
}

/// Builds the parts of the node `ctx` describes. `waker` wakes whoever
/// drives the router, for the shard it runs, when another part queues work.
pub fn parts(
    spec: &NodeSpec,
    placement: Placement,
    ctx: &Arc<NodeContext>,
    budget: &Arc<MemoryBudget>,
    io: &Arc<dyn NodeIo>,
    waker: Option<Arc<dyn Wake>>,
) -> Parts {
    let (cluster_sender, cluster_inbox) = mailbox::bounded(CLUSTER_QUEUE_MAX);
    let (gossip_sender, gossip_inbox) = mailbox::bounded(GOSSIP_QUEUE_MAX);
    let mut shards = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..spec.workers.max(1) {
        let (inbox, outbox) = crossbeam_channel::bounded(SHARD_QUEUE_BATCHES_MAX);
        let backlog = Arc::new(AtomicUsize::new(0));
        let worker = Shard::new(
            &spec.shard,
            budget.clone(),
            io.clone(),
            backlog.clone(),
            ctx.clone(),
            cluster_sender.clone(),
        );
        workers.push((worker, outbox));
        let waker = if spec.workers == 0 { waker.clone() } else { None };
        shards.push(ShardHandle { inbox, backlog, waker });
    }
    let inline = if spec.workers == 0 { workers.pop() } else { None };
    let cluster = ClusterCore::new(
        ctx.clone(),
        placement,
        spec.failure_ms,
        budget.clone(),
        io.clone(),
        shards.clone(),
    );
    let facts = NodeFacts {
        pid: spec.pid,
        budget: budget.clone(),
        admin_allow: spec.admin_allow.clone(),
    };
    let router_shards = Shards {
        handles: shards.clone(),
        inline,
        backlog_max: spec.backlog_max,
    };
    let router = Router::new(io.clone(), router_shards, facts, ctx.clone(), gossip_sender);
    Parts {
        router,
        cluster,
        shards,
        workers,
        cluster_inbox,
        gossip_inbox,
    }
}

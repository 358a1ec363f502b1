//! Puts one node's parts together, the same way for a real process and for
//! the simulator: its context, its shards, its router and its cluster
//! core, and the queues between them. Who drives them (threads, or the
//! simulator's loop) is the caller's business.

use crate::cluster::ring::{Liveness, Placement};
use crate::cluster::secret::Secret;
use crate::cluster::universe::Universe;
use crate::node::admin_allow::AdminAllow;
use crate::node::cluster_core::ClusterCore;
#[cfg(feature = "planted-bugs")]
use crate::node::context::PlantedBugs;
use crate::node::context::{NodeClock, NodeContext, NodeIo};
use crate::node::durability::disk::NodeDisk;
use crate::node::durability::journal::{Fsync, Journal, JournalSettings};
use crate::node::durability::log_format::{CLUSTER_ID_BYTES, Change};
use crate::node::durability::recovery::{self, Replay};
use crate::node::mailbox::{self, Mailbox};
use crate::node::messages::{ClusterMsg, ShardHandle, ShardMsg, Wake};
use crate::node::roster::{Known, Roster, SLOTS_MAX};
use crate::node::router::{NodeFacts, Router, Shards};
use crate::node::shard::Replayed;
use crate::node::shard::{Shard, ShardConfig};
use crate::storage::hash::{BUCKETS, BucketId};
use crate::storage::memory::MemoryBudget;
use crossbeam_channel::Receiver;
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
    /// This node's slot in `known`.
    pub self_index: usize,
    /// The nodes of the universe it starts with, in their order: slot 0
    /// first (for a servers file, its lines).
    pub known: Vec<Known>,
    pub universe: Universe,
    pub secret: Secret,
    pub replicas: usize,
    pub failure_ms: u64,
    /// Worker threads, one shard each; 0 runs the single shard on the router.
    pub workers: usize,
    pub shard: ShardConfig,
    pub backlog_max: usize,
    pub pid: i32,
    pub admin_allow: AdminAllow,
    /// Where the node keeps its data (None: in memory only).
    pub storage: Option<Storage>,
    /// Switched on only by the simulator (see [`PlantedBugs`]).
    #[cfg(feature = "planted-bugs")]
    pub bugs: PlantedBugs,
}

/// A node's data directory and how it is written.
#[derive(Clone)]
pub struct Storage {
    pub disk: Arc<dyn NodeDisk>,
    pub fsync: Fsync,
    /// The cluster the directory belongs to (a hash of its secret).
    pub cluster: [u8; CLUSTER_ID_BYTES],
    /// Segment size and compaction threshold (the defaults but in the
    /// simulator, whose loads are small).
    pub segment_bytes: u64,
    pub compact_min_bytes: u64,
}

/// A node's context, as every part sees it, with its placement and its
/// first view: only itself alive, nothing ready.
pub fn context(spec: &NodeSpec, clock: NodeClock) -> (NodeContext, Placement) {
    let roster = Roster::new(spec.known.iter().cloned());
    let placement = crate::node::cluster_core::placement(&roster, &spec.universe, spec.replicas);
    let mut alive = vec![false; SLOTS_MAX];
    alive[spec.self_index] = true;
    let initial = placement.view(spec.self_index, Liveness::new(alive, vec![false; SLOTS_MAX]));
    #[cfg_attr(not(feature = "planted-bugs"), allow(unused_mut))]
    let mut ctx = NodeContext::new(
        spec.self_index,
        roster,
        spec.universe.clone(),
        spec.secret.clone(),
        initial,
        clock,
    );
    #[cfg(feature = "planted-bugs")]
    {
        ctx.bugs = spec.bugs;
    }
    (ctx, placement)
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

/// Builds the parts of the node `ctx` describes: with a data directory,
/// its stores read back first. `waker` wakes whoever drives the router,
/// for the shard it runs, when another part queues work. An error says
/// why the data directory cannot be used.
pub fn parts(
    spec: &NodeSpec,
    placement: Placement,
    ctx: &Arc<NodeContext>,
    budget: &Arc<MemoryBudget>,
    io: &Arc<dyn NodeIo>,
    waker: Option<Arc<dyn Wake>>,
) -> Result<Parts, String> {
    let (cluster_sender, cluster_inbox) = mailbox::bounded(CLUSTER_QUEUE_MAX);
    let (gossip_sender, gossip_inbox) = mailbox::bounded(GOSSIP_QUEUE_MAX);
    let mut shards = Vec::new();
    let mut workers = Vec::new();
    for index in 0..spec.workers.max(1) {
        let (inbox, outbox) = crossbeam_channel::bounded(SHARD_QUEUE_BATCHES_MAX);
        let backlog = Arc::new(AtomicUsize::new(0));
        let worker = Shard::new(
            index,
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
    let suspect = match &spec.storage {
        Some(storage) => Some(open_storage(storage, ctx, budget, &mut workers)?),
        None => None,
    };
    let inline = if spec.workers == 0 { workers.pop() } else { None };
    let mut cluster = ClusterCore::new(
        ctx.clone(),
        placement,
        spec.failure_ms,
        budget.clone(),
        io.clone(),
        shards.clone(),
    );
    if let Some((holds_data, suspect)) = suspect {
        cluster.recovered(holds_data, suspect);
    }
    if let Some(storage) = &spec.storage {
        cluster.keep_universe_in(storage.disk.clone());
    }
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
    Ok(Parts {
        router,
        cluster,
        shards,
        workers,
        cluster_inbox,
        gossip_inbox,
    })
}

/// Reads the data directory back into the shards' stores, then gives each
/// shard its journal. Files of another shard layout are covered by a
/// snapshot of every shard before they are removed. Returns the buckets
/// that could not be read whole, and whether anything was read.
fn open_storage(
    storage: &Storage,
    ctx: &Arc<NodeContext>,
    budget: &MemoryBudget,
    shards: &mut [(Shard, Receiver<ShardMsg>)],
) -> Result<(bool, Vec<bool>), String> {
    let started = std::time::Instant::now();
    let count = shards.len() as u16;
    let mut replay = ReplayInto {
        shards: &mut *shards,
        no_room: vec![false; BUCKETS],
    };
    budget.set_replaying(true);
    let recovered = recovery::recover(&*storage.disk, storage.cluster, count, &mut replay, ctx);
    budget.set_replaying(false);
    let mut recovered = recovered?;
    for (bucket, no_room) in replay.no_room.iter().enumerate() {
        recovered.suspect[bucket] |= no_room;
    }
    shed_excess(shards, budget, &mut recovered.suspect);
    for (index, (shard, _)) in shards.iter_mut().enumerate() {
        shard.replayed();
        let settings = JournalSettings {
            fsync: storage.fsync,
            cluster: storage.cluster,
            shard: index as u16,
            shards: count,
            segment_bytes: storage.segment_bytes,
            compact_min_bytes: storage.compact_min_bytes,
        };
        let kept = std::mem::take(&mut recovered.kept[index]);
        let journal = Journal::open(storage.disk.clone(), settings, ctx.clone(), recovered.next_seq, kept)
            .map_err(|e| format!("cannot start the journal: {e}"))?;
        shard.set_journal(journal);
    }
    if !recovered.other_layouts.is_empty() {
        for (shard, _) in shards.iter_mut() {
            shard
                .snapshot_now()
                .map_err(|e| format!("cannot snapshot after a change of --workers: {e}"))?;
        }
        for name in &recovered.other_layouts {
            storage
                .disk
                .remove(name)
                .map_err(|e| format!("cannot remove {name}: {e}"))?;
        }
        storage.disk.sync_dir().map_err(|e| e.to_string())?;
    }
    let c = &ctx.counters;
    c.set(&c.records_recovered, recovered.records);
    c.set(&c.records_damaged, recovered.damaged);
    c.set(&c.recovery_ms, started.elapsed().as_millis() as u64);
    crate::log!(
        "recovered",
        "{} records ({} bytes of journal) read back in {} ms; {} damaged, {} torn at a file's end",
        recovered.records,
        recovered.bytes,
        started.elapsed().as_millis(),
        recovered.damaged,
        recovered.torn
    );
    if recovered.records > 0 {
        for (shard, _) in shards.iter_mut() {
            shard.restarted_from_disk();
        }
    }
    Ok((recovered.records > 0, recovered.suspect))
}

/// After a replay that holds more than the budget (the node restarted
/// with less memory): whole buckets dropped, from the last, until it fits;
/// each is pulled again from its replicas.
fn shed_excess(shards: &mut [(Shard, Receiver<ShardMsg>)], budget: &MemoryBudget, suspect: &mut [bool]) {
    let count = shards.len();
    for bucket in (0..BUCKETS).rev() {
        if count == 0 || budget.used_bytes() <= budget.limit_bytes() {
            return;
        }
        let (shard, _) = &mut shards[bucket % count];
        if shard.drop_recovered_bucket(bucket as BucketId) {
            suspect[bucket] = true;
        }
    }
}

/// Recovered changes to the shard of their bucket; a wipe to every shard.
struct ReplayInto<'a> {
    shards: &'a mut [(Shard, Receiver<ShardMsg>)],
    no_room: Vec<bool>,
}

impl Replay for ReplayInto<'_> {
    fn change(&mut self, change: &Change<'_>, shard: u16, shards: u16) {
        let count = self.shards.len();
        let Some(bucket) = change.bucket() else {
            for (target, _) in self.shards.iter_mut() {
                target.replay(change, shard, shards);
            }
            return;
        };
        let target = usize::from(bucket) % count;
        if self.shards[target].0.replay(change, shard, shards) == Replayed::NoRoom {
            self.no_room[usize::from(bucket)] = true;
        }
    }
}

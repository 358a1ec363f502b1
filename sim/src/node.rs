//! One simulated node: the real parts of a dynakv node (router, shards,
//! cluster core, stream frames), driven on the simulator's thread with a
//! clock it sets, and I/O that lands in the simulator's network.
//!
//! With `workers` 0 the one shard runs in the router, as on a 2-core host.
//! With more, each shard has its queue, as on a bigger host: the router's
//! batches and the other parts' messages wait there until the simulator
//! runs the shards ([`Running::run_shards`]), which it does a little later,
//! so requests queue up, backlogs count and OVERLOAD can be answered.

use crate::disk::SimDisk;
use crossbeam_channel::Receiver;
use dynakv::cluster::secret::Secret;
use dynakv::cluster::universe::Universe;
use dynakv::node::assemble::{self, NodeSpec, Storage};
use dynakv::node::cluster_core::ClusterCore;
use dynakv::node::context::{Away, NodeClock, NodeContext, NodeIo, PlantedBugs};
use dynakv::node::counters::Queue;
use dynakv::node::durability::journal::Fsync;
use dynakv::node::mailbox::Mailbox;
use dynakv::node::messages::{ClusterMsg, ShardHandle, ShardMsg};
use dynakv::node::roster::Known;
use dynakv::node::router::{Router, SHARD_BACKLOG_REQUESTS_MAX};
use dynakv::node::shard::{Shard, ShardConfig};
use dynakv::node::streams::StreamFrames;
use dynakv::storage::hash::{SplitMix64, bucket_of_key};
use dynakv::storage::memory::MemoryBudget;
use dynakv::storage::stamp::Stamp;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Each node's store budget in the simulator (generous: runs test
/// correctness, not capacity; the budget is still checked on every step).
pub const STORE_BYTES: usize = 32 << 20;
/// Gossip taken per round at most (as the runtime does).
const GOSSIP_PER_ROUND_MAX: usize = 256;

/// What a node sent during one step (a stream's frames with the address
/// of the node they are for).
pub enum Out {
    Datagram(SocketAddr, Vec<u8>),
    Stream(SocketAddr, Vec<Vec<u8>>),
}

/// When the transfer layer refuses what a node queues on a stream, as the
/// runtime's does when its queues are full.
#[derive(Default)]
struct StreamFaults {
    /// Chance that a send is refused.
    refuse: f64,
    /// Peers every send to which is refused.
    refused_to: Vec<SocketAddr>,
    rng: Option<SplitMix64>,
}

/// The node's I/O: collected, then put on the network by the simulator.
#[derive(Default)]
pub struct SimIo {
    out: Mutex<Vec<Out>>,
    shut_down: AtomicBool,
    streams: Mutex<StreamFaults>,
    /// The node's context, for the addresses of its roster's slots.
    ctx: std::sync::OnceLock<Arc<NodeContext>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimIo {
    pub fn take(&self) -> Vec<Out> {
        std::mem::take(&mut *lock(&self.out))
    }

    pub fn shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Relaxed)
    }

    /// Refuses this share of stream sends, drawn from `seed`.
    pub fn refuse_streams(&self, share: f64, seed: u64) {
        let mut faults = lock(&self.streams);
        faults.refuse = share;
        faults.rng = Some(SplitMix64::new(seed));
    }

    /// Refuses every stream send to these peers (none: sends go again).
    pub fn refuse_streams_to(&self, peers: Vec<SocketAddr>) {
        lock(&self.streams).refused_to = peers;
    }
}

impl NodeIo for SimIo {
    fn datagram(&self, to: SocketAddr, bytes: &[u8]) {
        lock(&self.out).push(Out::Datagram(to, bytes.to_vec()));
    }

    fn stream(&self, to: usize, frames: Vec<Vec<u8>>) -> bool {
        let Some(to) = self.ctx.get().and_then(|ctx| ctx.roster.addr(to)) else {
            return false;
        };
        let mut faults = lock(&self.streams);
        let refuse = faults.refuse;
        let unlucky = match &mut faults.rng {
            Some(rng) if refuse > 0.0 => (rng.below(1_000_000) as f64) < refuse * 1e6,
            _ => false,
        };
        if unlucky || faults.refused_to.contains(&to) {
            return false;
        }
        drop(faults);
        lock(&self.out).push(Out::Stream(to, frames));
        true
    }

    fn applied(&self, _bytes: usize) {}

    fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Relaxed);
    }
}

/// Who the nodes of a simulated cluster are, and how each is set up.
pub struct Cluster {
    /// Every node that may ever run, by index (the simulator's own
    /// numbering: a node's slot in a node's roster may differ).
    pub names: Vec<String>,
    pub addrs: Vec<SocketAddr>,
    /// The universe a node started now starts with (its servers file's,
    /// or the newest a reload made).
    pub universe: Universe,
    pub secret: Secret,
    pub replicas: usize,
    pub bugs: PlantedBugs,
    /// Worker shards per node (0: the one shard runs in the router).
    pub workers: usize,
    /// Requests a shard may have queued before OVERLOAD.
    pub backlog_max: usize,
    /// Replicated writes a replica acknowledges without storing (percent;
    /// the runtime's test fault).
    pub lose_replica_writes_percent: u8,
    /// With data directories (each node's disk is the caller's), when
    /// writes are synced; None: memory only.
    pub fsync: Option<Fsync>,
    /// Each node's store budget.
    pub store_bytes: usize,
}

/// A segment is closed past this many bytes in the simulator, and
/// compaction waits for this many: small, so that the small loads of a run
/// roll segments and compact many times.
pub const SEGMENT_BYTES: u64 = 6 << 10;
pub const COMPACT_MIN_BYTES: u64 = 4 << 10;

impl Cluster {
    /// Nodes at `addrs`, all in the universe, `workers` 0, the default backlog.
    pub fn new(addrs: Vec<SocketAddr>, replicas: usize, secret: Secret, bugs: PlantedBugs) -> Cluster {
        let names: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        Cluster {
            universe: Universe::from_servers(&names),
            names,
            addrs,
            secret,
            replicas,
            bugs,
            workers: 0,
            backlog_max: SHARD_BACKLOG_REQUESTS_MAX,
            lose_replica_writes_percent: 0,
            fsync: None,
            store_bytes: STORE_BYTES,
        }
    }
}

/// A record as a node's store holds it: key, value (None: a tombstone), stamp.
pub type StoredRecord = (Vec<u8>, Option<Vec<u8>>, Stamp);

/// A node that is up: its parts, built exactly as `dynakv serve` builds them.
pub struct Running {
    pub ctx: Arc<NodeContext>,
    pub router: Router,
    pub cluster: ClusterCore,
    cluster_inbox: Mailbox<ClusterMsg>,
    gossip_inbox: Mailbox<ClusterMsg>,
    frames: StreamFrames,
    shards: Vec<ShardHandle>,
    /// The shards with queues of their own (`workers` > 0).
    workers: Vec<(Shard, Receiver<ShardMsg>)>,
    pub budget: Arc<MemoryBudget>,
    pub io: Arc<SimIo>,
    /// Simulated time (us) at which this process started.
    pub started_us: u64,
    /// Stops this process was continued from (its SIGCONT count).
    stops: u64,
}

impl Running {
    /// Starts node `index` at simulated time `now_us`, its wall clock
    /// reading `unix_ms`: with an empty store, or with what its disk holds
    /// (when the cluster keeps data on disk). An error says why the disk
    /// could not be used.
    pub fn start(
        cluster: &Cluster,
        index: usize,
        now_us: u64,
        unix_ms: u64,
        disk: Option<&Arc<SimDisk>>,
    ) -> Result<Running, String> {
        Running::start_with(cluster, &cluster.universe, index, now_us, unix_ms, disk)
    }

    /// [`Running::start`], the node's servers file giving `universe` (its
    /// data directory may keep a newer one).
    pub fn start_with(
        cluster: &Cluster,
        universe: &Universe,
        index: usize,
        now_us: u64,
        unix_ms: u64,
        disk: Option<&Arc<SimDisk>>,
    ) -> Result<Running, String> {
        let storage = Running::storage(cluster, disk);
        let universe = match &storage {
            Some(storage) => dynakv::node::durability::universe_file::load(&*storage.disk)
                .filter(|kept| kept.version > universe.version)
                .unwrap_or_else(|| universe.clone()),
            None => universe.clone(),
        };
        let spec = Running::spec(cluster, index, universe, storage)?;
        let (ctx, placement) = assemble::context(&spec, NodeClock::set_from_outside(unix_ms));
        let ctx = Arc::new(ctx);
        let budget = Arc::new(MemoryBudget::new(cluster.store_bytes));
        let io = Arc::new(SimIo::default());
        let _ = io.ctx.set(ctx.clone());
        let node_io: Arc<dyn NodeIo> = io.clone();
        let parts = assemble::parts(&spec, placement, &ctx, &budget, &node_io, None)?;
        let mut running = Running {
            frames: StreamFrames::new(ctx.clone()),
            ctx,
            router: parts.router,
            cluster: parts.cluster,
            cluster_inbox: parts.cluster_inbox,
            gossip_inbox: parts.gossip_inbox,
            shards: parts.shards,
            workers: parts.workers,
            budget,
            io,
            started_us: now_us,
            stops: 0,
        };
        running.cluster.start();
        running.settle();
        Ok(running)
    }

    /// The node's data directory on `disk`, where the cluster keeps data
    /// on disk (it has an fsync policy); None keeps the store in memory.
    fn storage(cluster: &Cluster, disk: Option<&Arc<SimDisk>>) -> Option<Storage> {
        match (cluster.fsync, disk) {
            (Some(fsync), Some(disk)) => Some(Storage {
                disk: disk.clone(),
                fsync,
                cluster: cluster.secret.cluster_id(),
                segment_bytes: SEGMENT_BYTES,
                compact_min_bytes: COMPACT_MIN_BYTES,
            }),
            _ => None,
        }
    }

    /// What `dynakv serve` would build node `index` from, given the
    /// universe it starts in: the simulator's settings in place of the
    /// command line's.
    fn spec(cluster: &Cluster, index: usize, universe: Universe, storage: Option<Storage>) -> Result<NodeSpec, String> {
        let me = &cluster.names[index];
        let mut known: Vec<Known> = (universe.members.iter())
            .filter_map(|member| Known::resolve(&member.name))
            .collect();
        // A node started with a universe that does not list it still
        // knows itself.
        if !known.iter().any(|node| &node.name == me) {
            known.extend(Known::resolve(me));
        }
        let self_index = (known.iter().position(|node| &node.name == me)).ok_or("the node's name does not resolve")?;
        Ok(NodeSpec {
            self_index,
            known,
            universe,
            secret: cluster.secret.clone(),
            replicas: cluster.replicas,
            failure_ms: dynakv::node::cluster_core::FAILURE_MS_DEFAULT,
            workers: cluster.workers,
            shard: ShardConfig {
                reply_cache_ms: dynakv::storage::reply_cache::RETENTION_MS_MIN,
                reply_cache_reserve_bytes: 256 << 10,
                keep_tombstones: cluster.replicas > 1,
                fault_lose_replica_writes_percent: cluster.lose_replica_writes_percent,
                fault_single_vote_rounds: false,
                fault_one_copy_pages: false,
            },
            backlog_max: cluster.backlog_max,
            pid: index as i32 + 1,
            admin_allow: Default::default(),
            storage,
            bugs: cluster.bugs,
        })
    }

    /// Sets the node's clocks before a step.
    pub fn set_clock(&self, now_us: u64, unix_ms: u64) {
        let mono_ms = now_us.saturating_sub(self.started_us) / 1_000;
        self.ctx.clock.set(mono_ms, unix_ms);
    }

    /// Lets the router and the cluster core hand each other what they
    /// queued until nothing is left (the runtime's threads would, in some
    /// order). Worker shards wait for [`Running::run_shards`].
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

    /// Whether a worker shard has messages queued.
    pub fn shards_have_work(&self) -> bool {
        self.workers.iter().any(|(_, queue)| !queue.is_empty())
    }

    /// Whether a worker shard wants its timer (writes waiting for replicas).
    pub fn shards_pending(&self) -> bool {
        self.workers.iter().any(|(shard, _)| shard.has_pending())
    }

    /// The worker threads' turn: each shard takes what is queued for it
    /// (or, with nothing queued, its timer), as a worker thread would.
    pub fn run_shards(&mut self) {
        for (shard, queue) in &mut self.workers {
            while let Ok(msg) = queue.try_recv() {
                shard.handle(msg);
            }
            shard.tick();
        }
        self.settle();
    }

    /// A request of the node's own front-end (a DynamoDB executor's):
    /// node-made commands allowed, answered to `from`.
    pub fn submit(&mut self, datagram: &[u8], from: SocketAddr) {
        self.router.submit(&[datagram.to_vec()], from);
        self.settle();
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
                if self.shards[shard].try_send(msg).is_err() {
                    self.ctx.counters.count_drop(Queue::Shard);
                }
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

    /// Every record its stores hold: key, value (None: a tombstone), stamp.
    pub fn records(&self) -> Vec<StoredRecord> {
        let stores: Vec<&dynakv::storage::store::Store> = match self.router.inline_shard() {
            Some(inline) => vec![inline.store()],
            None => self.workers.iter().map(|(shard, _)| shard.store()).collect(),
        };
        let mut records = Vec::new();
        for store in stores {
            for bucket in 0..dynakv::storage::hash::BUCKETS as dynakv::storage::hash::BucketId {
                for record in store.bucket_records(bucket) {
                    let value = (!record.is_tombstone()).then(|| record.value().to_vec());
                    records.push((record.key().to_vec(), value, record.stamp()));
                }
            }
        }
        records
    }

    /// Whether any shard's journal refuses writes after a failed one.
    pub fn journal_failing(&self) -> bool {
        match self.router.inline_shard() {
            Some(inline) => inline.journal_failing(),
            None => self.workers.iter().any(|(shard, _)| shard.journal_failing()),
        }
    }

    /// What this node's store holds for `key`: `Some(Some(value))`, a
    /// tombstone (`Some(None)`), or nothing.
    pub fn stored(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.stored_with_stamp(key).map(|(value, _)| value)
    }

    /// [`Running::stored`], with the stamp it was stored with.
    pub fn stored_with_stamp(&self, key: &[u8]) -> Option<(Option<Vec<u8>>, Stamp)> {
        let shard = self.ctx.shard_of(bucket_of_key(key), self.shards.len());
        let store = match self.router.inline_shard() {
            Some(inline) => inline.store(),
            None => self.workers.get(shard)?.0.store(),
        };
        let stamp = store.stamp_of(key)?;
        Some((store.get(key).map(|record| record.value().to_vec()), stamp))
    }
}

//! Starts a node: finds itself in the servers file, binds the sockets, sizes
//! the memory budget, spawns the named threads and runs the event loop.

use crate::cluster::{ClusterContext, ClusterThread};
use crate::config::Config;
use crate::log;
use crate::memory::{self, MIB, MemoryBudget};
use crate::net::{NetLoop, NodeFacts, ShardHandle, Shards, WAKE};
use crate::ring::{Liveness, Placement};
use crate::secret::{self, Secret};
use crate::servers::{self, ServerEntry};
use crate::shard::{ShardConfig, Worker};
use crate::transfer::TransferThread;
use crate::udp;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread;
use std::time::Duration;

/// Messages the cluster thread's queue holds.
const CLUSTER_QUEUE_MAX: usize = 4096;
/// Gossip datagrams queued for the cluster thread's next round (a node
/// gets about 3 per round; beyond this they are dropped). Each holds a
/// heartbeat vector: 3.6 KB at 150 nodes.
const GOSSIP_QUEUE_MAX: usize = 256;
/// Batches a shard's queue holds (the request bound is the net thread's).
const SHARD_QUEUE_BATCHES_MAX: usize = 1024;
/// Memory kept outside the store's budget for everything the budget does not
/// see: code and stacks, socket and receive buffers, requests in flight,
/// allocator slack, the transfer thread, and the at-most-once caches'
/// reserve ([`REPLY_CACHE_RESERVE_BYTES`]). Chosen from the capacity
/// measurements in docs/benchmarks.md.
const HEADROOM_BYTES: usize = 2 * MIB + MIB / 4;
/// The store refuses growth whenever RSS is this close to the limit.
const RSS_GUARD_BYTES: usize = MIB / 2;
/// How often the RSS guard samples /proc while the store is over half full,
/// and while it is not (an idle node of a big cluster should cost nothing).
const RSS_SAMPLE_INTERVAL_BUSY: Duration = Duration::from_millis(20);
const RSS_SAMPLE_INTERVAL_IDLE: Duration = Duration::from_millis(1_000);
/// And while RSS is over the ceiling, when each sample also counts malloc's
/// free chunks (milliseconds under malloc's lock on a full heap).
const RSS_SAMPLE_INTERVAL_OVER: Duration = Duration::from_millis(200);
/// Memory the at-most-once caches hold outside the store's budget (part of
/// the headroom), split between shards: about 24,000 entries. Beyond it a
/// cache borrows from the store's budget, and when that refuses (a full
/// store), its oldest entries go first.
const REPLY_CACHE_RESERVE_BYTES: usize = MIB / 4;

fn spawn<F: FnOnce() + Send + 'static>(name: &str, body: F) -> Result<thread::JoinHandle<()>, String> {
    thread::Builder::new()
        .name(name.to_string())
        .stack_size(256 * 1024)
        .spawn(body)
        .map_err(|error| format!("cannot start thread {name}: {error}"))
}

/// The cluster secret (see [`crate::secret`] for where it is found), made
/// beside the servers file if there is none yet.
fn cluster_secret(config: &Config) -> Result<Secret, String> {
    let (path, beside_servers) = secret::location(config.cluster_secret_file.as_deref(), &config.servers);
    if !beside_servers {
        return secret::load(&path);
    }
    let (secret, created) = secret::load_or_create(&path)?;
    if created {
        log!(
            "created the cluster secret {}: copy it to every host of the cluster (run/start does)",
            path.display()
        );
    }
    Ok(secret)
}

/// Runs a node until SHUTDOWN or a fatal error.
pub fn serve(config: Config) -> Result<(), String> {
    let entries = servers::load(&config.servers).map_err(|error| error.to_string())?;
    let listen =
        servers::resolve(&config.listen).ok_or_else(|| format!("cannot resolve --listen {}", config.listen))?;
    let node_index = entries
        .iter()
        .position(|entry: &ServerEntry| entry.addr == listen)
        .ok_or_else(|| {
            format!(
                "{} is not listed in {}: a node serves only as a member of its servers file",
                config.listen,
                config.servers.display()
            )
        })?;
    log::set_node_name(&entries[node_index].name);
    memory::configure_allocator();
    crate::pause::install().map_err(|error| format!("cannot handle SIGCONT: {error}"))?;
    let socket = udp::bind(listen).map_err(|error| format!("cannot bind {listen}: {error}"))?;

    let baseline_bytes = memory::rss_bytes();
    let store_limit = config
        .memory_limit_bytes
        .saturating_sub(baseline_bytes + HEADROOM_BYTES);
    let rss_ceiling = config.memory_limit_bytes.saturating_sub(RSS_GUARD_BYTES);
    let budget = Arc::new(MemoryBudget::with_rss_ceiling(store_limit, rss_ceiling));
    let secret = cluster_secret(&config)?;
    let names: Vec<String> = entries.iter().map(|entry| entry.name.clone()).collect();
    let placement = Placement::new(&names, config.replicas);
    let mut alive = vec![false; entries.len()];
    alive[node_index] = true;
    let initial = placement.view(node_index, Liveness::new(alive, vec![false; entries.len()]));
    let addrs = entries.iter().map(|entry| entry.addr).collect();
    let ctx = Arc::new(ClusterContext::new(node_index, addrs, secret, initial));
    let (cluster_inbox, cluster_outbox) = crate::mailbox::bounded(CLUSTER_QUEUE_MAX);
    let (gossip_inbox, gossip_outbox) = crate::mailbox::bounded(GOSSIP_QUEUE_MAX);
    let shard_config = ShardConfig {
        reply_cache_ms: config.reply_cache_ms,
        reply_cache_reserve_bytes: REPLY_CACHE_RESERVE_BYTES / config.workers.max(1),
        keep_tombstones: entries.len() > 1 && config.replicas > 1,
        fault_lose_replica_writes_percent: config.fault_lose_replica_writes_percent,
    };

    let (transfer, transfer_handle) = TransferThread::bind(ctx.clone(), budget.clone(), listen)
        .map_err(|error| format!("cannot listen on TCP {listen} for transfers: {error}"))?;
    let poll = mio::Poll::new().map_err(|error| error.to_string())?;
    let net_waker = match config.workers {
        0 => Some(Arc::new(
            mio::Waker::new(poll.registry(), WAKE).map_err(|error| error.to_string())?,
        )),
        _ => None,
    };
    let mut shards = Vec::new();
    let mut inline = None;
    for index in 0..config.workers.max(1) {
        let (inbox, outbox) = crossbeam_channel::bounded(SHARD_QUEUE_BATCHES_MAX);
        let backlog = Arc::new(AtomicUsize::new(0));
        let reply_socket = socket.try_clone().map_err(|error| error.to_string())?;
        let worker = Worker::new(
            &shard_config,
            budget.clone(),
            reply_socket,
            backlog.clone(),
            ctx.clone(),
            cluster_inbox.clone(),
            transfer_handle.clone(),
        );
        if config.workers == 0 {
            inline = Some((worker, outbox));
        } else {
            spawn(&format!("worker-{index}"), move || worker.run(outbox))?;
        }
        shards.push(ShardHandle {
            inbox,
            backlog,
            waker: net_waker.clone(),
        });
    }

    let guard_budget = budget.clone();
    spawn("memory-guard", move || {
        loop {
            guard_budget.check_rss();
            thread::sleep(if guard_budget.is_over_rss() {
                RSS_SAMPLE_INTERVAL_OVER
            } else if guard_budget.needs_close_watch() {
                RSS_SAMPLE_INTERVAL_BUSY
            } else {
                RSS_SAMPLE_INTERVAL_IDLE
            });
        }
    })?;

    let cluster_shards = shards.iter().map(ShardHandle::clone).collect();
    let cluster_socket = socket.try_clone().map_err(|error| error.to_string())?;
    let cluster = ClusterThread::new(
        ctx.clone(),
        placement,
        config.failure_ms,
        budget.clone(),
        cluster_socket,
        cluster_shards,
        transfer_handle,
    );
    spawn("cluster", move || cluster.run(cluster_outbox, gossip_outbox))?;
    let transfer_shards = shards.clone();
    spawn("transfer", move || {
        if let Err(error) = transfer.run(transfer_shards) {
            log!("transfer thread failed: {error}");
            std::process::exit(1);
        }
    })?;

    let facts = NodeFacts {
        pid: std::process::id() as i32,
        started: std::time::Instant::now(),
        budget: budget.clone(),
        // Never within two of the loop's idle wake-ups.
        stale_after: Duration::from_millis(config.failure_ms.max(1_000)),
    };
    let shards = Shards {
        handles: shards,
        inline,
        backlog_max: config.shard_backlog_max,
    };
    let net = NetLoop::new(poll, socket, shards, facts, ctx, gossip_inbox)
        .map_err(|error| format!("cannot start the event loop: {error}"))?;
    log!(
        "serving on {listen} (node {} of {}, pid {}, {} workers, store limit {:.1} MiB of {} MiB)",
        node_index + 1,
        entries.len(),
        std::process::id(),
        config.workers,
        store_limit as f64 / MIB as f64,
        config.memory_limit_bytes / MIB
    );
    net.run().map_err(|error| format!("event loop failed: {error}"))
}

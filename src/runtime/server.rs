//! Starts a node: finds itself in the servers file, binds the sockets, sizes
//! the memory budget, spawns the named threads (workers, extra receiving
//! loops, cluster, transfer, memory guard) and runs the first event loop.

use crate::cluster::secret::{self, Secret};
use crate::cluster::servers::{self, ServerEntry};
use crate::cluster::universe::Universe;
use crate::log;
use crate::node::assemble::{self, NodeSpec, Storage};
use crate::node::context::{NodeClock, NodeIo};
use crate::node::durability::universe_file;
use crate::node::messages::Wake;
use crate::node::roster::Known;
use crate::node::shard::ShardConfig;
use crate::runtime::config::Config;
use crate::runtime::data_dir::FileDisk;
use crate::runtime::event_loop::{EventLoop, WAKE};
use crate::runtime::io::{LoopWaker, SocketIo};
use crate::runtime::transfer_thread::TransferThread;
use crate::runtime::{cluster_thread, dynamodb, udp, worker_thread};
use crate::storage::memory::{self, MIB, MemoryBudget};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
/// Memory kept outside the store's budget for everything the budget does not
/// see: code and stacks, socket and receive buffers, requests in flight,
/// allocator slack, the transfer thread, and the at-most-once caches'
/// reserve ([`REPLY_CACHE_RESERVE_BYTES`]). Chosen from the capacity
/// measurements in docs/benchmarks.md.
const HEADROOM_BYTES: usize = 2 * MIB + 3 * MIB / 4;
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

/// The cluster secret (see [`crate::cluster::secret`] for where it is found), made
/// beside the servers file if there is none yet.
fn cluster_secret(config: &Config) -> Result<Secret, String> {
    let (path, beside_servers) = secret::location(config.cluster_secret_file.as_deref(), &config.servers);
    if !beside_servers {
        return secret::load(&path);
    }
    let (secret, created) = secret::load_or_create(&path)?;
    if created {
        log!(
            "secret_created",
            "created the cluster secret {}: copy it to every host of the cluster (run/start does)",
            path.display()
        );
    }
    Ok(secret)
}

/// The node's data directory (None: memory only), and a log line saying
/// which it is.
fn storage(config: &Config, node: &str, secret: &Secret) -> Result<Option<Storage>, String> {
    let Some(dir) = &config.data_dir else {
        log!(
            "memory_only",
            "no --data-dir: the data lives in memory only and a restart starts empty"
        );
        return Ok(None);
    };
    let disk = FileDisk::open(dir, node, secret.cluster_id())?;
    log!("data_dir", "data in {} (fsync {:?})", dir.display(), config.fsync);
    Ok(Some(Storage {
        disk: Arc::new(disk),
        fsync: config.fsync,
        cluster: secret.cluster_id(),
        segment_bytes: crate::node::durability::journal::SEGMENT_BYTES,
        compact_min_bytes: crate::node::durability::journal::COMPACT_MIN_BYTES,
    }))
}

/// The name this node serves as: its line of the servers file, or else
/// a member of the universe kept in its data directory (a node added by a
/// reload, started with a servers file that predates it).
fn own_name(config: &Config, entries: &[ServerEntry], listen: SocketAddr) -> Result<String, String> {
    if let Some(entry) = entries.iter().find(|entry| entry.addr == listen) {
        return Ok(entry.name.clone());
    }
    let kept = (config.data_dir.as_ref())
        .and_then(|dir| std::fs::read(dir.join(universe_file::FILE)).ok())
        .and_then(|bytes| universe_file::parse(&bytes));
    let member = kept.and_then(|universe| {
        (universe.members.into_iter()).find(|member| servers::resolve(&member.name) == Some(listen))
    });
    member.map(|member| member.name).ok_or_else(|| {
        format!(
            "{} is not listed in {}: a node serves only as a member of its servers file (or of the universe its data directory keeps)",
            config.listen,
            config.servers.display()
        )
    })
}

/// The universe this node starts with: the one its data directory keeps
/// if that is newer than the servers file's, and the nodes it names (this
/// one included) in slot order, with this node's slot.
fn starting_universe(
    entries: &[ServerEntry],
    me: &str,
    storage: Option<&Storage>,
) -> Result<(Universe, Vec<Known>, usize), String> {
    let names: Vec<String> = entries.iter().map(|entry| entry.name.clone()).collect();
    let from_file = Universe::from_servers(&names);
    let kept = storage.and_then(|storage| universe_file::load(&*storage.disk));
    let universe = match kept {
        Some(kept) if kept.version > from_file.version => {
            let listed: Vec<&str> = kept.members.iter().map(|m| m.name.as_str()).collect();
            if names.iter().any(|name| !listed.contains(&name.as_str())) || listed.len() != names.len() {
                log!(
                    "servers_file_differs",
                    "the servers file differs from universe {} kept in the data directory, which this node follows: `run/reload` makes a file the cluster's",
                    kept.version
                );
            }
            kept
        }
        _ => from_file,
    };
    let mut known: Vec<Known> = Vec::with_capacity(universe.members.len() + 1);
    for member in &universe.members {
        match Known::resolve(&member.name) {
            Some(node) => known.push(node),
            None => log!(
                "unresolved",
                "cannot resolve {}: left out until a universe names it again",
                member.name
            ),
        }
    }
    if !known.iter().any(|node| node.name == me) {
        known.push(Known::resolve(me).ok_or_else(|| format!("cannot resolve {me}"))?);
    }
    let self_index = (known.iter().position(|node| node.name == me)).ok_or_else(|| format!("{me} has no slot"))?;
    Ok((universe, known, self_index))
}

/// Runs a node until SHUTDOWN or a fatal error.
pub fn serve(config: Config) -> Result<(), String> {
    let entries = servers::load(&config.servers).map_err(|error| error.to_string())?;
    let listen =
        servers::resolve(&config.listen).ok_or_else(|| format!("cannot resolve --listen {}", config.listen))?;
    let name = own_name(&config, &entries, listen)?;
    log::set_node_name(&name);
    memory::configure_allocator();
    crate::runtime::pause::install().map_err(|error| format!("cannot handle SIGCONT: {error}"))?;
    // The data directory first: a second process on it is told so, not
    // that the port is taken.
    let secret = cluster_secret(&config)?;
    let storage = storage(&config, &name, &secret)?;
    let (universe, known, node_index) = starting_universe(&entries, &name, storage.as_ref())?;
    let shared_port = config.receivers > 1;
    let socket = udp::bind(listen, shared_port).map_err(|error| format!("cannot bind {listen}: {error}"))?;

    let store_limit = store_limit_bytes(&config, memory::rss_bytes());
    let rss_ceiling = config.memory_limit_bytes.saturating_sub(RSS_GUARD_BYTES);
    let budget = Arc::new(MemoryBudget::with_rss_ceiling(store_limit, rss_ceiling));
    let (universe_version, serving) = (universe.version, universe.serving_count());
    let spec = node_spec(&config, node_index, known, universe, secret, storage.clone());
    let (ctx, placement) = assemble::context(&spec, NodeClock::real());
    let ctx = Arc::new(ctx);
    let (transfer, transfer_handle) = TransferThread::bind(ctx.clone(), budget.clone(), listen)
        .map_err(|error| format!("cannot listen on TCP {listen} for transfers: {error}"))?;
    let io: Arc<dyn NodeIo> = Arc::new(SocketIo {
        socket: socket.try_clone().map_err(|error| error.to_string())?,
        transfer: transfer_handle,
        disk: storage.as_ref().map(|storage| storage.disk.clone()),
    });
    let poll = mio::Poll::new().map_err(|error| error.to_string())?;
    let waker: Arc<dyn Wake> = Arc::new(LoopWaker(
        mio::Waker::new(poll.registry(), WAKE).map_err(|error| error.to_string())?,
    ));
    let parts = assemble::parts(&spec, placement, &ctx, &budget, &io, Some(waker))?;
    for (index, (worker, queue)) in parts.workers.into_iter().enumerate() {
        spawn(&format!("worker-{index}"), move || worker_thread::run(worker, queue))?;
    }

    spawn_memory_guard(budget.clone())?;
    let (cluster, inbox, gossip) = (parts.cluster, parts.cluster_inbox, parts.gossip_inbox);
    let cluster_ctx = ctx.clone();
    spawn("cluster", move || {
        cluster_thread::run(cluster, || cluster_ctx.clock.mono_ms(), inbox, gossip)
    })?;
    let transfer_shards = parts.shards.clone();
    spawn("transfer", move || {
        if let Err(error) = transfer.run(transfer_shards) {
            log!("transfer_thread_failed", "transfer thread failed: {error}");
            std::process::exit(1);
        }
    })?;
    // Never within two of the loop's idle wake-ups.
    let stale_after = Duration::from_millis(config.failure_ms.max(1_000));
    spawn_receivers(&config, listen, &parts.router, stale_after)?;
    start_dynamodb(&config, listen, &parts.router)?;
    let event_loop = EventLoop::new(poll, socket, parts.router, stale_after);
    log!(
        "serving",
        "serving on {listen} (universe {universe_version} of {serving} serving nodes, pid {}, {} receivers, {} workers, store limit {:.1} MiB of {} MiB)",
        std::process::id(),
        config.receivers,
        config.workers,
        store_limit as f64 / MIB as f64,
        config.memory_limit_bytes / MIB
    );
    event_loop.run().map_err(|error| format!("event loop failed: {error}"))
}

/// The DynamoDB endpoint, with `--dynamodb-listen`.
fn start_dynamodb(config: &Config, listen: SocketAddr, router: &crate::node::router::Router) -> Result<(), String> {
    let Some(dynamodb_listen) = &config.dynamodb_listen else {
        return Ok(());
    };
    let spec = dynamodb::start::EndpointSpec {
        listen: dynamodb_listen.clone(),
        credentials: config.dynamodb_credentials.clone(),
        node_host: listen.ip(),
    };
    dynamodb::start::start(&spec, router)
}

/// The store's share of `--memory-limit`: what the process holds at start
/// (`baseline_bytes`), the headroom and the DynamoDB endpoint's reserve
/// (when it is on) are not the store's.
fn store_limit_bytes(config: &Config, baseline_bytes: usize) -> usize {
    let dynamodb_reserve = if config.dynamodb_listen.is_some() {
        dynamodb::start::RESERVE_BYTES
    } else {
        0
    };
    (config.memory_limit_bytes).saturating_sub(baseline_bytes + HEADROOM_BYTES + dynamodb_reserve)
}

/// What the node's parts are assembled from.
fn node_spec(
    config: &Config,
    self_index: usize,
    known: Vec<Known>,
    universe: Universe,
    secret: Secret,
    storage: Option<Storage>,
) -> NodeSpec {
    NodeSpec {
        self_index,
        known,
        universe,
        secret,
        replicas: config.replicas,
        failure_ms: config.failure_ms,
        workers: config.workers,
        shard: ShardConfig {
            reply_cache_ms: config.reply_cache_ms,
            reply_cache_reserve_bytes: REPLY_CACHE_RESERVE_BYTES / config.workers.max(1),
            keep_tombstones: config.replicas > 1,
            fault_lose_replica_writes_percent: config.fault_lose_replica_writes_percent,
            fault_single_vote_rounds: config.fault_single_vote_rounds,
            fault_one_copy_pages: config.fault_one_copy_pages,
        },
        #[cfg(feature = "planted-bugs")]
        bugs: Default::default(),
        backlog_max: config.shard_backlog_max,
        pid: std::process::id() as i32,
        admin_allow: config.admin_allow.clone(),
        storage,
    }
}

/// Samples the process's RSS, more often the closer it is to its ceiling.
fn spawn_memory_guard(budget: Arc<MemoryBudget>) -> Result<(), String> {
    spawn("memory-guard", move || {
        loop {
            budget.check_rss();
            thread::sleep(if budget.is_over_rss() {
                RSS_SAMPLE_INTERVAL_OVER
            } else if budget.needs_close_watch() {
                RSS_SAMPLE_INTERVAL_BUSY
            } else {
                RSS_SAMPLE_INTERVAL_IDLE
            });
        }
    })?;
    Ok(())
}

/// The receiving loops beyond the first, on the same port.
fn spawn_receivers(
    config: &Config,
    listen: SocketAddr,
    router: &crate::node::router::Router,
    stale_after: Duration,
) -> Result<(), String> {
    let shared_port = config.receivers > 1;
    for index in 1..config.receivers {
        let socket = udp::bind(listen, shared_port).map_err(|error| format!("cannot bind {listen}: {error}"))?;
        let poll = mio::Poll::new().map_err(|error| error.to_string())?;
        let event_loop = EventLoop::new(poll, socket, router.sibling(), stale_after);
        spawn(&format!("receiver-{index}"), move || {
            if let Err(error) = event_loop.run() {
                log!("receiver_failed", "receiving loop {index} failed: {error}");
                std::process::exit(1);
            }
        })?;
    }
    Ok(())
}

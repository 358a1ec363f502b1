//! Command-line configuration of a node: `dynakv serve --listen HOST:PORT
//! --servers FILE [options]` and the short form `dynakv HOST PORT FILE
//! [options]`, parsed with clap; every number is range-checked here.

use crate::node::admin_allow::AdminAllow;
use crate::storage::memory::MIB;
use crate::storage::reply_cache::RETENTION_MS_MIN;
use clap::Args;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub listen: String,
    pub servers: PathBuf,
    pub workers: usize,
    pub memory_limit_bytes: usize,
    pub replicas: usize,
    pub reply_cache_ms: u64,
    pub cluster_secret_file: Option<PathBuf>,
    /// Silence after which a peer is declared dead.
    pub failure_ms: u64,
    /// Test fault injection, see `ShardConfig`; 0 in production.
    pub fault_lose_replica_writes_percent: u8,
    /// Queued requests per shard before OVERLOAD.
    pub shard_backlog_max: usize,
    pub admin_allow: AdminAllow,
}

/// The options of a node, shared by `dynakv serve` and the short form.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct NodeOptions {
    /// Worker threads; 0 runs the store on the event loop [default: 0 on
    /// 1-2 cores, else cores - 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=64))]
    pub workers: Option<u16>,
    /// Queued requests per shard before OVERLOAD
    #[arg(long, value_name = "N", default_value_t = crate::node::router::SHARD_BACKLOG_REQUESTS_MAX as u32,
          value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    pub shard_backlog_max: u32,
    /// Process memory limit in MiB
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(16..=1 << 20))]
    pub memory_limit: u32,
    /// Copies of each key
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=7))]
    pub replicas: u8,
    /// At-most-once retention: a reply is kept between MS and 2*MS
    #[arg(long, value_name = "MS", default_value_t = RETENTION_MS_MIN,
          value_parser = clap::value_parser!(u64).range(RETENTION_MS_MIN..=600_000))]
    pub reply_cache_ms: u64,
    /// Key of node-to-node authentication [default:
    /// $DYNAKV_CLUSTER_SECRET_FILE, else SERVERS_FILE.secret, created there
    /// with 32 random bytes if missing]
    #[arg(long, value_name = "FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Silence before a peer is declared dead
    #[arg(long, value_name = "MS", default_value_t = crate::node::cluster_core::FAILURE_MS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(600..=60_000))]
    pub failure_timeout_ms: u64,
    /// Only these client networks may send SHUTDOWN and WIPEOUT; others are
    /// dropped [default: any]
    #[arg(long, value_name = "CIDR,...", value_parser = AdminAllow::parse)]
    pub admin_allow: Option<AdminAllow>,
    /// Test fault injection: drop this share of replica writes silently
    #[arg(long, value_name = "PERCENT", default_value_t = 0, hide = true,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub fault_lose_replica_writes_percent: u8,
}

/// One worker per core beyond the one the event loop keeps busy; on two
/// cores or fewer none: the store runs on the event loop. On the 2-core
/// reference machine W=0 measured 69k req/s, W=1 57-60k and W=2 56k
/// (docs/benchmarks.md): every hand-off to another thread costs a wake-up.
fn default_workers() -> usize {
    match std::thread::available_parallelism().map_or(1, |n| n.get()) {
        cores if cores <= 2 => 0,
        cores => cores - 1,
    }
}

impl NodeOptions {
    /// The node's configuration, listening on `listen`.
    pub fn config(&self, listen: String, servers: PathBuf) -> Config {
        Config {
            listen,
            servers,
            workers: self.workers.map_or_else(default_workers, usize::from),
            memory_limit_bytes: self.memory_limit as usize * MIB,
            replicas: usize::from(self.replicas),
            reply_cache_ms: self.reply_cache_ms,
            cluster_secret_file: self.cluster_secret_file.clone(),
            failure_ms: self.failure_timeout_ms,
            fault_lose_replica_writes_percent: self.fault_lose_replica_writes_percent,
            shard_backlog_max: self.shard_backlog_max as usize,
            admin_allow: self.admin_allow.clone().unwrap_or_default(),
        }
    }
}

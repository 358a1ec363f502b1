//! Command-line configuration of a node: `dynakv serve --listen HOST:PORT
//! --servers FILE [options]` and the short form `dynakv HOST PORT FILE`.

use crate::node::admin_allow::AdminAllow;
use crate::storage::memory::MIB;
use crate::storage::reply_cache::RETENTION_MS_MIN;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: dynakv serve --listen HOST:PORT --servers FILE [options]
       dynakv HOST PORT SERVERS_FILE
       dynakv ctl COMMAND ...   (dynakv ctl help)

options:
  --workers N              worker threads; 0 runs the store on the event loop
                           (default: 0 on 1-2 cores, else cores - 1)
  --shard-backlog-max N    queued requests per shard before OVERLOAD (4096)
  --memory-limit MIB       process memory limit in MiB (default 64)
  --replicas N             copies of each key (default 3)
  --reply-cache-ms MS      at-most-once retention, >= 5000 (default 5000;
                           entries live between MS and 2*MS)
  --cluster-secret-file F  key of node-to-node authentication (default:
                           $DYNAKV_CLUSTER_SECRET_FILE, else SERVERS_FILE.secret,
                           created there with 32 random bytes if missing)
  --failure-timeout-ms MS  silence before a peer is declared dead (default 3000)
  --admin-allow CIDR,...   only these client networks may send SHUTDOWN and
                           WIPEOUT; others are dropped (default: any)";

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

impl Config {
    fn new(listen: String, servers: PathBuf) -> Config {
        Config {
            listen,
            servers,
            workers: default_workers(),
            memory_limit_bytes: 64 * MIB,
            replicas: 3,
            reply_cache_ms: RETENTION_MS_MIN,
            cluster_secret_file: None,
            failure_ms: crate::node::cluster_core::FAILURE_MS_DEFAULT,
            fault_lose_replica_writes_percent: 0,
            shard_backlog_max: crate::node::router::SHARD_BACKLOG_REQUESTS_MAX,
            admin_allow: AdminAllow::default(),
        }
    }
}

fn number<T>(flag: &str, value: Option<&String>, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let text = value.ok_or_else(|| format!("{flag} needs a value"))?;
    let parsed: T = text.parse().map_err(|_| format!("{flag}: not a number: {text:?}"))?;
    if parsed < min || parsed > max {
        return Err(format!("{flag}: {parsed} is outside {min}..={max}"));
    }
    Ok(parsed)
}

/// Parses the arguments after the program name (`serve ...` or the short form).
pub fn parse(args: &[String]) -> Result<Config, String> {
    if args.first().map(String::as_str) != Some("serve") {
        return match args {
            [host, port, servers] => {
                number::<u16>("PORT", Some(port), 1, u16::MAX)?;
                Ok(Config::new(format!("{host}:{port}"), PathBuf::from(servers)))
            }
            _ => Err(USAGE.to_string()),
        };
    }
    let mut listen = None;
    let mut servers = None;
    let mut config = Config::new(String::new(), PathBuf::new());
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        match flag.as_str() {
            "--listen" => listen = rest.next().cloned(),
            "--servers" => servers = rest.next().map(PathBuf::from),
            "--workers" => config.workers = number(flag, rest.next(), 0, 64)?,
            "--memory-limit" => config.memory_limit_bytes = number::<usize>(flag, rest.next(), 16, 1 << 20)? * MIB,
            "--replicas" => config.replicas = number(flag, rest.next(), 1, 7)?,
            "--reply-cache-ms" => config.reply_cache_ms = number(flag, rest.next(), RETENTION_MS_MIN, 600_000)?,
            "--shard-backlog-max" => config.shard_backlog_max = number(flag, rest.next(), 1, 1 << 20)?,
            "--failure-timeout-ms" => config.failure_ms = number(flag, rest.next(), 600, 60_000)?,
            "--fault-lose-replica-writes-percent" => {
                config.fault_lose_replica_writes_percent = number(flag, rest.next(), 0, 100)?
            }
            "--cluster-secret-file" => config.cluster_secret_file = rest.next().map(PathBuf::from),
            "--admin-allow" => {
                let list = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
                config.admin_allow = AdminAllow::parse(list)?;
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    config.listen = listen.ok_or_else(|| format!("--listen is required\n{USAGE}"))?;
    config.servers = servers.ok_or_else(|| format!("--servers is required\n{USAGE}"))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn short_form_matches_serve() {
        let short = parse(&args("127.0.0.1 4000 servers.txt")).unwrap();
        let long = parse(&args("serve --listen 127.0.0.1:4000 --servers servers.txt")).unwrap();
        assert_eq!(short, long);
        assert_eq!(short.memory_limit_bytes, 64 * MIB);
    }

    #[test]
    fn options_are_checked() {
        let config = parse(&args(
            "serve --listen a:1 --servers s --workers 1 --memory-limit 128 --replicas 2",
        ))
        .unwrap();
        assert_eq!(
            (config.workers, config.memory_limit_bytes, config.replicas),
            (1, 128 * MIB, 2)
        );
        assert!(parse(&args("serve --listen a:1 --servers s --reply-cache-ms 100")).is_err());
        assert!(parse(&args("serve --servers s")).is_err());
        assert!(parse(&args("serve --listen a:1 --servers s --bogus")).is_err());
        assert!(parse(&args("127.0.0.1 notaport s")).is_err());
    }
}

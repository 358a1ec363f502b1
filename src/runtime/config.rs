//! Command-line configuration of a node: `dynakv serve --listen HOST:PORT
//! --servers FILE [options]` and the short form `dynakv HOST PORT FILE
//! [options]`; every number is range-checked here.
//!
//! Parsed with lexopt, not clap (which `dynakv-ctl` and the harness use),
//! and `dynakv ctl` is a binary of its own: with clap parsing the node's
//! options an idle node's resident set grew from 2.6 to 3.0 MiB, and with
//! clap only on the ctl path of the same binary to 2.8 MiB (a bigger
//! binary, more code mapped around what runs); every 0.1 MiB is 200
//! fewer 500-byte values (docs/benchmarks.md).

use crate::node::admin_allow::AdminAllow;
use crate::node::durability::journal::{FSYNC_DEFAULT, Fsync};
use crate::storage::memory::MIB;
use crate::storage::reply_cache::RETENTION_MS_MIN;
use std::path::PathBuf;

pub const USAGE: &str = "\
Run a node of a dynakv cluster.

Usage: dynakv serve --listen HOST:PORT --servers FILE [OPTIONS]
       dynakv HOST PORT SERVERS_FILE [OPTIONS]
       dynakv ctl COMMAND ...          (see dynakv ctl --help)

Options:
  --workers N              Worker threads; 0 runs the store on the event loop
                           [0..=64; default: 0 on 1-2 cores, else cores - receivers]
  --receivers N            Receiving loops, each with its own socket on the
                           node's port (SO_REUSEPORT); more than 1 needs
                           --workers 1 or more [1..=16; default: 1 up to 4
                           cores or with --workers 0, else 3 in 8 cores]
  --shard-backlog-max N    Queued requests per shard before OVERLOAD
                           [1..=1048576; default: 4096]
  --memory-limit MIB       Process memory limit in MiB [16..=1048576; default: 64]
  --replicas N             Copies of each key [1..=7; default: 3]
  --reply-cache-ms MS      At-most-once retention: a PUT's or REMOVE's reply is
                           kept between MS and 1.25*MS, less only when memory
                           runs out [5000..=600000; default: 5000]
  --cluster-secret-file F  Key of node-to-node authentication [default:
                           $DYNAKV_CLUSTER_SECRET_FILE, else SERVERS_FILE.secret,
                           created there with 32 random bytes if missing]
  --failure-timeout-ms MS  Silence before a peer is declared dead
                           [600..=60000; default: 3000]
  --admin-allow CIDR,...   Only these client networks may send SHUTDOWN and
                           WIPEOUT; others are dropped [default: any]
  --data-dir DIR           Keep the data in DIR (one directory per node): a
                           restart finds every key [default: none, memory
                           only: a restart starts empty]
  --fsync MODE             With --data-dir, when writes reach stable storage:
                           always (before the reply; one sync per batch),
                           periodic[=MS] (every MS ms; a reply once written)
                           or never (left to the kernel) [default: periodic=1000]
  --dynamodb-listen H:P    Also serve the DynamoDB API (JSON 1.0 over HTTP/1.1)
                           on this TCP address [default: none]
  --dynamodb-credentials F With --dynamodb-listen, take only requests signed
                           (SigV4) by a key of F: lines `ACCESS_KEY_ID SECRET`
                           [default: none, any signature or none is taken]
  -h, --help               Print this help
  -V, --version            Print the version";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub listen: String,
    pub servers: PathBuf,
    pub workers: usize,
    /// Receiving loops, each with its own socket bound to the node's port.
    pub receivers: usize,
    pub memory_limit_bytes: usize,
    pub replicas: usize,
    pub reply_cache_ms: u64,
    pub cluster_secret_file: Option<PathBuf>,
    /// Silence after which a peer is declared dead.
    pub failure_ms: u64,
    /// Test fault injection, see `ShardConfig`; 0 in production.
    pub fault_lose_replica_writes_percent: u8,
    /// Test fault, see `ShardConfig`; false in production.
    pub fault_single_vote_rounds: bool,
    pub fault_one_copy_pages: bool,
    /// Queued requests per shard before OVERLOAD.
    pub shard_backlog_max: usize,
    pub admin_allow: AdminAllow,
    /// Where the node keeps its data (None: memory only).
    pub data_dir: Option<PathBuf>,
    pub fsync: Fsync,
    /// Where the DynamoDB endpoint listens (None: no endpoint).
    pub dynamodb_listen: Option<String>,
    /// The keys DynamoDB requests must be signed with (None: any).
    pub dynamodb_credentials: Option<PathBuf>,
}

/// What the command line asks of a node.
#[derive(Debug, PartialEq, Eq)]
pub enum NodeCommand {
    Serve(Box<Config>),
    /// `--help` or `--version`: print this and exit successfully.
    Print(String),
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One receiving loop up to 4 cores; beyond, a share of the cores that
/// keeps loops and workers equally busy: a receiving loop spends ~6 us of
/// a request's CPU and a worker ~10 us (docs/benchmarks.md, "Bigger
/// hosts"), so 3 cores in 8 receive.
fn default_receivers(cores: usize) -> usize {
    if cores <= 4 { 1 } else { (cores * 3 / 8).clamp(1, 16) }
}

/// One worker per core beyond the receiving loops; on two cores or fewer
/// none: the store runs on the event loop. On the 2-core reference
/// machine W=0 measured 69k req/s, W=1 57-60k and W=2 56k
/// (docs/benchmarks.md): every hand-off to another thread costs a wake-up.
fn default_workers(cores: usize) -> usize {
    if cores <= 2 {
        0
    } else {
        cores - default_receivers(cores)
    }
}

impl Config {
    fn new(listen: String, servers: PathBuf, cores: usize) -> Config {
        Config {
            listen,
            servers,
            workers: default_workers(cores),
            receivers: default_receivers(cores),
            memory_limit_bytes: 64 * MIB,
            replicas: 3,
            reply_cache_ms: RETENTION_MS_MIN,
            cluster_secret_file: None,
            failure_ms: crate::node::cluster_core::FAILURE_MS_DEFAULT,
            fault_lose_replica_writes_percent: 0,
            fault_single_vote_rounds: false,
            fault_one_copy_pages: false,
            shard_backlog_max: crate::node::router::SHARD_BACKLOG_REQUESTS_MAX,
            admin_allow: AdminAllow::default(),
            data_dir: None,
            fsync: FSYNC_DEFAULT,
            dynamodb_listen: None,
            dynamodb_credentials: None,
        }
    }
}

/// The option's value as a number within `min..=max`.
fn number<T>(parser: &mut lexopt::Parser, option: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let text = text(parser, option)?;
    let parsed: T =
        (text.parse()).map_err(|_| format!("invalid value {text:?} for {option}: not a number in {min}..={max}"))?;
    if parsed < min || parsed > max {
        return Err(format!(
            "invalid value {text:?} for {option}: {parsed} is not in {min}..={max}"
        ));
    }
    Ok(parsed)
}

fn text(parser: &mut lexopt::Parser, option: &str) -> Result<String, String> {
    let value = parser.value().map_err(|_| format!("{option} needs a value"))?;
    value.into_string().map_err(|_| format!("{option}: not valid UTF-8"))
}

/// `always`, `never`, `periodic` or `periodic=MS` (MS in 1..=60000).
fn fsync(text: &str) -> Result<Fsync, String> {
    let invalid = || format!("invalid value {text:?} for --fsync: always, periodic[=MS] (MS in 1..=60000) or never");
    match text {
        "always" => Ok(Fsync::Always),
        "never" => Ok(Fsync::Never),
        "periodic" => Ok(FSYNC_DEFAULT),
        _ => {
            let ms: u64 = text
                .strip_prefix("periodic=")
                .and_then(|ms| ms.parse().ok())
                .ok_or_else(invalid)?;
            if !(1..=60_000).contains(&ms) {
                return Err(invalid());
            }
            Ok(Fsync::Periodic { interval_ms: ms })
        }
    }
}

/// Parses the arguments after the program name: `serve ...` or the short
/// form, options anywhere after the subcommand.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<NodeCommand, String> {
    parse_on(args, cores())
}

/// [`parse`] with defaults for a host of `cores` cores.
fn parse_on<I: IntoIterator<Item = String>>(args: I, cores: usize) -> Result<NodeCommand, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(args);
    let mut config = Config::new(String::new(), PathBuf::new(), cores);
    let mut listen = None;
    let mut servers = None;
    let mut positional = Vec::new();
    let mut serve = false;
    let mut receivers = None;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(NodeCommand::Print(USAGE.to_string())),
            Short('V') | Long("version") => {
                return Ok(NodeCommand::Print(format!("dynakv {}", env!("CARGO_PKG_VERSION"))));
            }
            Long("listen") => listen = Some(text(&mut parser, "--listen")?),
            Long("servers") => servers = Some(PathBuf::from(text(&mut parser, "--servers")?)),
            Long("workers") => config.workers = number(&mut parser, "--workers", 0, crate::node::context::SHARDS_MAX)?,
            Long("receivers") => receivers = Some(number(&mut parser, "--receivers", 1, 16)?),
            Long("memory-limit") => {
                config.memory_limit_bytes = number::<usize>(&mut parser, "--memory-limit", 16, 1 << 20)? * MIB
            }
            Long("replicas") => config.replicas = number(&mut parser, "--replicas", 1, 7)?,
            Long("reply-cache-ms") => {
                config.reply_cache_ms = number(&mut parser, "--reply-cache-ms", RETENTION_MS_MIN, 600_000)?
            }
            Long("shard-backlog-max") => {
                config.shard_backlog_max = number(&mut parser, "--shard-backlog-max", 1, 1 << 20)?
            }
            Long("failure-timeout-ms") => config.failure_ms = number(&mut parser, "--failure-timeout-ms", 600, 60_000)?,
            Long("fault-lose-replica-writes-percent") => {
                config.fault_lose_replica_writes_percent =
                    number(&mut parser, "--fault-lose-replica-writes-percent", 0, 100)?
            }
            Long("fault-single-vote-rounds") => config.fault_single_vote_rounds = true,
            Long("fault-one-copy-pages") => config.fault_one_copy_pages = true,
            Long("cluster-secret-file") => {
                config.cluster_secret_file = Some(PathBuf::from(text(&mut parser, "--cluster-secret-file")?))
            }
            Long("data-dir") => config.data_dir = Some(PathBuf::from(text(&mut parser, "--data-dir")?)),
            Long("fsync") => config.fsync = fsync(&text(&mut parser, "--fsync")?)?,
            Long("dynamodb-listen") => config.dynamodb_listen = Some(text(&mut parser, "--dynamodb-listen")?),
            Long("dynamodb-credentials") => {
                config.dynamodb_credentials = Some(PathBuf::from(text(&mut parser, "--dynamodb-credentials")?))
            }
            Long("admin-allow") => {
                let list = text(&mut parser, "--admin-allow")?;
                config.admin_allow =
                    AdminAllow::parse(&list).map_err(|e| format!("invalid value {list:?} for --admin-allow: {e}"))?;
            }
            Value(word) if !serve && positional.is_empty() && word == "serve" => serve = true,
            Value(word) if !serve && positional.len() < 3 => positional.push(
                word.into_string()
                    .map_err(|_| "arguments must be valid UTF-8".to_string())?,
            ),
            other => return Err(format!("{}\n\n{USAGE}", other.unexpected())),
        }
    }
    let addresses = Addresses {
        serve,
        listen,
        servers,
        positional,
    };
    finish(config, receivers, addresses)
}

/// Where the node listens and which servers file it reads, as the
/// command line gave them (`serve` form or the short form).
struct Addresses {
    serve: bool,
    listen: Option<String>,
    servers: Option<PathBuf>,
    positional: Vec<String>,
}

/// The checks that span several options, and the node's address.
fn finish(mut config: Config, receivers: Option<usize>, addresses: Addresses) -> Result<NodeCommand, String> {
    let Addresses {
        serve,
        listen,
        servers,
        positional,
    } = addresses;
    // --workers 0 alone on a big host means one loop running the store.
    config.receivers = receivers.unwrap_or(if config.workers == 0 { 1 } else { config.receivers });
    if config.receivers > 1 && config.workers == 0 {
        return Err(format!(
            "--receivers {} needs --workers 1 or more: with --workers 0 the store runs on the one receiving loop",
            config.receivers
        ));
    }
    if config.dynamodb_credentials.is_some() && config.dynamodb_listen.is_none() {
        return Err("--dynamodb-credentials needs --dynamodb-listen".into());
    }
    if serve {
        config.listen = listen.ok_or_else(|| format!("serve needs --listen HOST:PORT\n\n{USAGE}"))?;
        config.servers = servers.ok_or_else(|| format!("serve needs --servers FILE\n\n{USAGE}"))?;
        return Ok(NodeCommand::Serve(Box::new(config)));
    }
    let [host, port, file] = positional.as_slice() else {
        return Err(format!("expected HOST PORT SERVERS_FILE or serve\n\n{USAGE}"));
    };
    if listen.is_some() || servers.is_some() {
        return Err(
            "--listen and --servers belong to `dynakv serve`; the short form takes HOST PORT SERVERS_FILE".into(),
        );
    }
    match port.parse::<u16>() {
        Ok(p) if p >= 1 => {}
        _ => return Err(format!("invalid value {port:?} for PORT: not in 1..=65535")),
    }
    config.listen = format!("{host}:{port}");
    config.servers = PathBuf::from(file);
    Ok(NodeCommand::Serve(Box::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(line: &str) -> Result<Config, String> {
        match parse(line.split_whitespace().map(String::from))? {
            NodeCommand::Serve(config) => Ok(*config),
            NodeCommand::Print(text) => Err(text),
        }
    }

    #[test]
    fn short_form_matches_serve_with_or_without_options() {
        let short = config("127.0.0.1 4000 servers.txt").unwrap();
        let long = config("serve --listen 127.0.0.1:4000 --servers servers.txt").unwrap();
        assert_eq!(short, long);
        assert_eq!(short.memory_limit_bytes, 64 * MIB);
        let short = config("127.0.0.1 4000 servers.txt --memory-limit 128 --replicas=2").unwrap();
        let long =
            config("serve --memory-limit 128 --listen 127.0.0.1:4000 --servers servers.txt --replicas 2").unwrap();
        assert_eq!(short, long);
        assert_eq!((short.memory_limit_bytes, short.replicas), (128 * MIB, 2));
    }

    #[test]
    fn errors_name_the_option_and_its_range() {
        let error = config("serve --listen a:1 --servers s --reply-cache-ms 100").unwrap_err();
        assert!(
            error.contains("--reply-cache-ms") && error.contains("5000..=600000"),
            "{error}"
        );
        let error = config("127.0.0.1 4000 s --replicas 9").unwrap_err();
        assert!(error.contains("--replicas") && error.contains("1..=7"), "{error}");
        let error = config("127.0.0.1 4000 s --workers lots").unwrap_err();
        assert!(error.contains("--workers") && error.contains("0..=64"), "{error}");
        assert!(config("serve --servers s").unwrap_err().contains("--listen"));
        assert!(
            config("serve --listen a:1 --servers s --bogus")
                .unwrap_err()
                .contains("--bogus")
        );
        let error = config("127.0.0.1 4000 s --receivers 17").unwrap_err();
        assert!(error.contains("--receivers") && error.contains("1..=16"), "{error}");
        let error = config("127.0.0.1 4000 s --receivers 2 --workers 0").unwrap_err();
        assert!(error.contains("--receivers 2 needs --workers 1"), "{error}");
        assert!(config("127.0.0.1 notaport s").unwrap_err().contains("PORT"));
        assert!(config("127.0.0.1 4000").is_err());
        assert!(config("127.0.0.1 4000 s extra").unwrap_err().contains("extra"));
        let error = config("serve --listen a:1 --servers s --admin-allow 10.0.0.0/99").unwrap_err();
        assert!(error.contains("--admin-allow"), "{error}");
    }

    #[test]
    fn bigger_hosts_get_more_receiving_loops_and_every_core_is_used() {
        assert_eq!((default_receivers(1), default_workers(1)), (1, 0));
        assert_eq!((default_receivers(2), default_workers(2)), (1, 0));
        assert_eq!((default_receivers(4), default_workers(4)), (1, 3));
        assert_eq!((default_receivers(8), default_workers(8)), (3, 5));
        assert_eq!((default_receivers(64), default_workers(64)), (16, 48));
        let config = config("127.0.0.1 4000 s --receivers 2 --workers 3").unwrap();
        assert_eq!((config.receivers, config.workers), (2, 3));
        let on_eight_cores = |line: &str| match parse_on(line.split_whitespace().map(String::from), 8) {
            Ok(NodeCommand::Serve(config)) => (config.receivers, config.workers),
            other => panic!("{other:?}"),
        };
        assert_eq!(on_eight_cores("127.0.0.1 4000 s"), (3, 5));
        assert_eq!(
            on_eight_cores("127.0.0.1 4000 s --workers 0"),
            (1, 0),
            "one loop runs the store"
        );
        assert_eq!(on_eight_cores("127.0.0.1 4000 s --workers 2"), (3, 2));
    }

    #[test]
    fn a_data_directory_and_its_fsync_mode() {
        let plain = config("127.0.0.1 4000 s").unwrap();
        assert_eq!(
            (plain.data_dir, plain.fsync),
            (None, FSYNC_DEFAULT),
            "memory only by default"
        );
        let durable = config("127.0.0.1 4000 s --data-dir /d --fsync always").unwrap();
        assert_eq!(
            (durable.data_dir, durable.fsync),
            (Some(PathBuf::from("/d")), Fsync::Always)
        );
        assert_eq!(
            config("127.0.0.1 4000 s --fsync periodic=50").unwrap().fsync,
            Fsync::Periodic { interval_ms: 50 }
        );
        assert_eq!(config("127.0.0.1 4000 s --fsync never").unwrap().fsync, Fsync::Never);
        for bad in ["sometimes", "periodic=0", "periodic=x", "periodic=60001"] {
            let error = config(&format!("127.0.0.1 4000 s --fsync {bad}")).unwrap_err();
            assert!(
                error.contains("--fsync") && error.contains("always, periodic"),
                "{error}"
            );
        }
    }

    #[test]
    fn help_and_version_are_printed_not_errors() {
        assert!(config("--help").unwrap_err().contains("Usage: dynakv serve"));
        assert!(config("serve -h").unwrap_err().contains("--memory-limit MIB"));
        assert!(config("127.0.0.1 4000 s --version").unwrap_err().starts_with("dynakv "));
    }
}

//! `dynakv-load`: the command line of the harness (see the library docs).

use dynakv_loadtest::{bench, capacity, check, echo, members, report};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage:
  dynakv-load bench --servers FILE [--clients 64] [--threads 2] [--duration-s 10]
        [--requests N] [--target random|INDEX] [--read-ratio R] [--keys-per-client 16]
        [--zipf S] [--key-bytes 32] [--value-bytes 1-1000] [--seed N]
        [--json FILE] [--plot FILE.svg] [--label TEXT] [--echo] [--echo-threads 1]
  dynakv-load capacity --server HOST:PORT [--value-bytes 500] [--key-bytes 4]
        [--refill] [--no-verify]
  dynakv-load check --servers FILE [--expect-members N] [--seed N]
  dynakv-load members --servers FILE --expect N [--skip I,J,...] [--timeout-s 60]
  dynakv-load echo-server --listen HOST:PORT [--threads 1]";

/// `--flag value` pairs and bare `--flag`s.
struct Flags(HashMap<String, Option<String>>);

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut map = HashMap::new();
        let mut i = 0;
        while i < args.len() {
            let flag = args[i]
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {:?}", args[i]))?;
            let value = args.get(i + 1).filter(|v| !v.starts_with("--")).cloned();
            i += if value.is_some() { 2 } else { 1 };
            map.insert(flag.to_string(), value);
        }
        Ok(Flags(map))
    }

    fn has(&self, flag: &str) -> bool {
        self.0.contains_key(flag)
    }

    fn text(&self, flag: &str) -> Option<&str> {
        self.0.get(flag).and_then(|v| v.as_deref())
    }

    fn get<T: std::str::FromStr>(&self, flag: &str, default: T) -> Result<T, String> {
        match self.text(flag) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| format!("--{flag}: cannot parse {text:?}")),
        }
    }
}

fn servers(flags: &Flags) -> Result<Vec<SocketAddr>, String> {
    let path = flags.text("servers").ok_or("--servers FILE is required")?;
    let entries = dynakv::cluster::servers::load(&PathBuf::from(path)).map_err(|e| e.to_string())?;
    Ok(entries.into_iter().map(|e| e.addr).collect())
}

fn bench_cmd(flags: &Flags) -> Result<bool, String> {
    let (value_min, value_max) = match flags.text("value-bytes").unwrap_or("1-1000").split_once('-') {
        Some((a, b)) => (
            a.parse().map_err(|_| "--value-bytes")?,
            b.parse().map_err(|_| "--value-bytes")?,
        ),
        None => {
            let n: usize = flags.get("value-bytes", 1000)?;
            (n, n)
        }
    };
    if value_min > value_max {
        return Err("--value-bytes: MIN must not exceed MAX".into());
    }
    let target = match flags.text("target").unwrap_or("random") {
        "random" => bench::Target::Random,
        index => bench::Target::One(index.parse().map_err(|_| "--target random|INDEX")?),
    };
    let mut config = bench::BenchConfig {
        servers: Vec::new(),
        target,
        clients: flags.get("clients", 64)?,
        threads: flags.get("threads", 2)?,
        duration: Duration::from_secs_f64(flags.get("duration-s", 10.0)?),
        requests_max: flags.get("requests", u64::MAX)?,
        read_ratio: flags
            .text("read-ratio")
            .map(|r| r.parse())
            .transpose()
            .map_err(|_| "--read-ratio")?,
        keys_per_client: flags.get("keys-per-client", 16usize)?.max(1),
        zipf: flags
            .text("zipf")
            .map(|s| s.parse())
            .transpose()
            .map_err(|_| "--zipf")?,
        key_bytes: flags.get("key-bytes", 32)?,
        value_bytes_min: value_min,
        value_bytes_max: value_max,
        timeouts_ms: dynakv::protocol::client::RETRY_TIMEOUTS_MS.to_vec(),
        seed: flags.get("seed", 1)?,
        echo: false,
        progress: !flags.has("quiet"),
    };
    let label = flags.text("label").unwrap_or("dynakv").to_string();
    let mut echo_throughput = None;
    if flags.has("echo") {
        let addr = echo::start("127.0.0.1:0".parse().expect("literal"), flags.get("echo-threads", 1)?)
            .map_err(|e| e.to_string())?;
        let echo_config = bench::BenchConfig {
            servers: vec![addr],
            target: bench::Target::One(0),
            echo: true,
            ..config.clone()
        };
        let result = bench::run(&echo_config);
        print!("{}", report::summary("echo-server", config.clients, &result));
        echo_throughput = Some(result.throughput());
    }
    if flags.has("servers") || !flags.has("echo") {
        config.servers = servers(flags)?;
        if let bench::Target::One(index) = config.target
            && index >= config.servers.len()
        {
            return Err(format!("--target {index}: only {} servers", config.servers.len()));
        }
        let result = bench::run(&config);
        print!("{}", report::summary(&label, config.clients, &result));
        if let Some(echo) = echo_throughput {
            println!(
                "  ratio to echo-server: {:.1} %",
                100.0 * result.throughput() / echo.max(1.0)
            );
        }
        if let Some(path) = flags.text("json") {
            std::fs::write(path, report::json(&label, config.clients, &result, echo_throughput))
                .map_err(|e| format!("{path}: {e}"))?;
        }
        if let Some(path) = flags.text("plot") {
            report::plot(
                &PathBuf::from(path),
                &format!("{label}, {} clients", config.clients),
                &result,
            )?;
        }
        return Ok(result.wrong_reads == 0);
    }
    Ok(true)
}

fn capacity_cmd(flags: &Flags) -> Result<bool, String> {
    let server = flags.text("server").ok_or("--server HOST:PORT is required")?;
    let server = dynakv::cluster::servers::resolve(server).ok_or_else(|| format!("cannot resolve {server}"))?;
    let config = capacity::CapacityConfig {
        server,
        key_bytes: flags.get("key-bytes", 4)?,
        value_bytes: flags.get("value-bytes", 500)?,
        refill: flags.has("refill"),
        verify_all: !flags.has("no-verify"),
    };
    let result = capacity::run(&config).map_err(|e| e.to_string())?;
    println!(
        "capacity of {server}: {} keys of {} bytes = {:.2} MiB of values in {:.1} s; peak RSS {}",
        result.keys,
        config.value_bytes,
        result.value_mib,
        result.seconds,
        result
            .rss_peak_bytes
            .map_or("unknown (node not local)".into(), |b| format!(
                "{:.2} MiB",
                b as f64 / (1 << 20) as f64
            ))
    );
    if let (Some(removed), Some(refilled)) = (result.removed_keys, result.refill_keys) {
        println!(
            "refill after removing {removed} keys: {refilled} new keys stored ({:.1} % of the freed space reused)",
            100.0 * refilled as f64 / removed.max(1) as f64
        );
    }
    for failure in &result.failures {
        println!("FAIL {failure}");
    }
    Ok(result.failures.is_empty())
}

fn check_cmd(flags: &Flags) -> Result<bool, String> {
    let servers = servers(flags)?;
    let expect = flags.get("expect-members", servers.len() as i32)?;
    let ctx = check::Ctx::new(servers, expect, flags.get("seed", 1)?);
    Ok(check::run(&ctx) == 0)
}

/// Waits until every node not skipped reports `--expect` members.
fn members_cmd(flags: &Flags) -> Result<bool, String> {
    let servers = servers(flags)?;
    let skip: Vec<usize> = match flags.text("skip") {
        Some(list) => list
            .split(',')
            .map(|i| i.trim().parse().map_err(|_| format!("--skip: not an index: {i:?}")))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let asked: Vec<SocketAddr> = (servers.iter().enumerate())
        .filter(|(i, _)| !skip.contains(i))
        .map(|(_, &addr)| addr)
        .collect();
    let expect: usize = flags.get("expect", asked.len())?;
    let limit = Duration::from_secs_f64(flags.get("timeout-s", 60.0)?);
    match members::wait_exact(&asked, expect, limit) {
        Ok(took) => {
            println!(
                "{} nodes report {expect} members after {} ms",
                asked.len(),
                took.as_millis()
            );
            Ok(true)
        }
        Err(wrong) => {
            println!(
                "after {limit:?}, {} nodes still wrong (index among those asked, count): {wrong:?}",
                wrong.len()
            );
            Ok(false)
        }
    }
}

fn echo_cmd(flags: &Flags) -> Result<bool, String> {
    let listen: SocketAddr = flags.get("listen", "127.0.0.1:0".parse().expect("literal"))?;
    let addr = echo::start(listen, flags.get("threads", 1)?).map_err(|e| e.to_string())?;
    println!("echo-server on {addr}");
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let outcome = Flags::parse(&args[1..]).and_then(|flags| match command.as_str() {
        "bench" => bench_cmd(&flags),
        "capacity" => capacity_cmd(&flags),
        "check" => check_cmd(&flags),
        "members" => members_cmd(&flags),
        "echo-server" => echo_cmd(&flags),
        _ => Err(USAGE.to_string()),
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("dynakv-load: {message}");
            ExitCode::from(2)
        }
    }
}

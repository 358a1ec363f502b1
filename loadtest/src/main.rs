//! `dynakv-load`: the command line of the harness (see the library docs).

use clap::{Args, Parser, Subcommand};
use dynakv_loadtest::server_cpu::{self, ServerCpu};
use dynakv_loadtest::{bench, capacity, check, dynamodb, echo, members, report};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "dynakv-load",
    version,
    about = "Benchmark and verification harness for any cluster speaking the CPEN 431 KV protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Closed-loop load with correctness checking; prints throughput,
    /// latency and, when the servers are local, their CPU per request
    Bench(BenchArgs),
    /// Fill one node until OUT_OF_SPACE and report what it stored
    Capacity(CapacityArgs),
    /// The protocol's conformance cases against a cluster
    Check(CheckArgs),
    /// Closed-loop GetItem/PutItem load on DynamoDB endpoints (JSON 1.0 over
    /// HTTP/1.1, unsigned) in a table it creates, fills and deletes
    Dynamodb(DynamodbArgs),
    /// Wait until every node reports the expected membership count
    Members(MembersArgs),
    /// A UDP echo server: the machine's ceiling for request/reply load
    EchoServer(EchoArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// File listing the servers as host:port, one per line (optional with --echo)
    #[arg(long, value_name = "FILE", required_unless_present = "echo")]
    servers: Option<PathBuf>,
    /// Concurrent clients, each with one request outstanding
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    clients: u32,
    /// Client threads
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    threads: u32,
    /// Run length in seconds
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    duration_s: f64,
    /// Stop after this many completed requests (all clients together)
    #[arg(long, value_name = "N")]
    requests: Option<u64>,
    /// Where requests go: `random` (any node) or the index of one node
    #[arg(long, default_value = "random", value_parser = parse_target)]
    target: bench::Target,
    /// Each request is a GET with this probability, else a PUT [default:
    /// PUT then GET of the same key]
    #[arg(long, value_name = "R")]
    read_ratio: Option<f64>,
    /// Keys each client cycles through
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    keys_per_client: u32,
    /// Zipf skew of key choice [default: uniform]
    #[arg(long, value_name = "S")]
    zipf: Option<f64>,
    /// Key length in bytes
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=32))]
    key_bytes: u32,
    /// Value length in bytes: N or MIN-MAX
    #[arg(long, value_name = "N|MIN-MAX", default_value = "1-1000", value_parser = parse_range)]
    value_bytes: (usize, usize),
    /// Seed of keys, values and choices
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Each client takes its keys in order instead of at random: with
    /// `--read-ratio 0 --requests CLIENTS*KEYS` it writes every key once,
    /// filling the store for a later run with the same seed
    #[arg(long)]
    keys_in_order: bool,
    /// Also write the result as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also plot throughput and p99 per second to FILE.svg
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Name of the run in the report
    #[arg(long, default_value = "dynakv")]
    label: String,
    /// First run the same load against an echo server (a child process),
    /// and report the servers' figures as ratios to it
    #[arg(long)]
    echo: bool,
    /// Threads of that echo server
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    echo_threads: u32,
    /// Datagrams that echo server takes and sends per system call
    /// (recvmmsg/sendmmsg above 1)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    echo_batch: u32,
    /// No per-second progress lines
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct CapacityArgs {
    /// The node to fill
    #[arg(long, value_name = "HOST:PORT")]
    server: String,
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    value_bytes: u32,
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(4..=32))]
    key_bytes: u32,
    /// Then remove half the keys and fill again
    #[arg(long)]
    refill: bool,
    /// Skip reading every key back
    #[arg(long)]
    no_verify: bool,
    /// PUTs per second at most (a grader's single client is slower than
    /// this tool; every PUT's reply is kept 5 s, so the rate decides how
    /// much the at-most-once cache holds at the full mark)
    #[arg(long, value_name = "N")]
    puts_per_s: Option<u32>,
}

#[derive(Args)]
struct CheckArgs {
    #[arg(long, value_name = "FILE")]
    servers: PathBuf,
    /// Membership count every node should report [default: the servers' number]
    #[arg(long, value_name = "N")]
    expect_members: Option<i32>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
struct DynamodbArgs {
    /// DynamoDB endpoints; connections are spread over them round-robin
    /// (the table is created and deleted through the first)
    #[arg(long, value_name = "URL,...", value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// Connections, each on its own thread with one request outstanding
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    connections: u32,
    /// Run length of the load (after the fill)
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = parse_seconds)]
    seconds: f64,
    /// Items written before the load, keys k0..k<N-1>
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    items: u32,
    /// Characters of each item's value (a DynamoDB item is 400 KB at most)
    #[arg(long, value_name = "B", default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=390_000))]
    value_bytes: u32,
    /// Each request is a read with this probability (%), else a PutItem
    #[arg(long, value_name = "P", default_value_t = 90, value_parser = clap::value_parser!(u32).range(0..=100))]
    reads_percent: u32,
    /// How a read reads its item
    #[arg(long, value_enum, default_value = "get")]
    read_as: dynamodb::ReadAs,
    /// Also write the result as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Name of the run in the report
    #[arg(long, default_value = "dynamodb")]
    label: String,
}

#[derive(Args)]
struct MembersArgs {
    #[arg(long, value_name = "FILE")]
    servers: PathBuf,
    /// The count to wait for [default: the nodes asked]
    #[arg(long, value_name = "N")]
    expect: Option<usize>,
    /// Indexes of nodes not to ask (stopped or killed ones)
    #[arg(long, value_name = "I,J,...", value_delimiter = ',')]
    skip: Vec<usize>,
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    timeout_s: f64,
}

#[derive(Args)]
struct EchoArgs {
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// Datagrams per system call: above 1, recvmmsg and sendmmsg (datagrams
    /// over 2 KiB are cut)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    batch: u32,
}

fn parse_target(text: &str) -> Result<bench::Target, String> {
    match text {
        "random" => Ok(bench::Target::Random),
        index => index
            .parse()
            .map(bench::Target::One)
            .map_err(|_| "expected `random` or a node index".to_string()),
    }
}

fn parse_range(text: &str) -> Result<(usize, usize), String> {
    let number = |t: &str| t.trim().parse::<usize>().map_err(|_| format!("not a number: {t:?}"));
    let (min, max) = match text.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => (number(text)?, number(text)?),
    };
    if min > max || max > 10_000 {
        return Err("expected N or MIN-MAX with MIN <= MAX <= 10000".into());
    }
    Ok((min, max))
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.0..=86_400.0).contains(&s) => Ok(s),
        _ => Err("expected seconds between 0 and 86400".into()),
    }
}

fn servers(path: &Path) -> Result<Vec<SocketAddr>, String> {
    let entries = dynakv::cluster::servers::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(entries.into_iter().map(|e| e.addr).collect())
}

/// An echo server in a child process (its CPU is then its own to measure).
struct EchoChild(Child);

impl EchoChild {
    fn start(threads: u32, batch: u32) -> Result<(EchoChild, SocketAddr), String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = std::process::Command::new(exe)
            .args(["echo-server", "--threads", &threads.to_string()])
            .args(["--batch", &batch.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("echo-server: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("echo-server: no stdout")?;
        BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
        let addr = (line.trim().strip_prefix("echo-server on "))
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("echo-server said {line:?}"))?;
        Ok((EchoChild(child), addr))
    }
}

impl Drop for EchoChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the load, measuring the servers' CPU when they are local.
fn measured_run(config: &bench::BenchConfig, pids: Option<Vec<u32>>) -> bench::BenchResult {
    let cpu = pids.map(ServerCpu::start);
    let mut result = bench::run(config);
    result.server_cpu_seconds = cpu.and_then(|cpu| cpu.finish());
    result
}

/// Runs the load `args` describe (after the echo server's baseline, with
/// `--echo`), prints and writes the results; true when no read was wrong.
fn bench_cmd(args: BenchArgs) -> Result<bool, String> {
    let mut config = bench_config(&args);
    let echo_result = if args.echo {
        Some(echo_baseline(&args, &config)?)
    } else {
        None
    };
    let Some(path) = &args.servers else { return Ok(true) };
    config.servers = servers(path)?;
    if let bench::Target::One(index) = config.target
        && index >= config.servers.len()
    {
        return Err(format!("--target {index}: only {} servers", config.servers.len()));
    }
    let result = measured_run(&config, server_cpu::local_pids(&config.servers));
    print!("{}", report::summary(&args.label, config.clients, &result));
    if let Some(echo) = &echo_result {
        println!("{}", ratio_to_echo(&result, echo));
    }
    write_bench_files(&args, config.clients, &result, echo_result.as_ref())?;
    Ok(result.wrong_reads == 0)
}

/// The load the arguments describe, with no servers yet (they are read
/// after the echo baseline, which needs none).
fn bench_config(args: &BenchArgs) -> bench::BenchConfig {
    bench::BenchConfig {
        servers: Vec::new(),
        target: args.target,
        clients: args.clients as usize,
        threads: args.threads as usize,
        duration: Duration::from_secs_f64(args.duration_s.max(0.0)),
        requests_max: args.requests.unwrap_or(u64::MAX),
        read_ratio: args.read_ratio,
        keys_per_client: args.keys_per_client as usize,
        zipf: args.zipf,
        key_bytes: args.key_bytes as usize,
        value_bytes_min: args.value_bytes.0,
        value_bytes_max: args.value_bytes.1,
        timeouts_ms: dynakv::protocol::client::RETRY_TIMEOUTS_MS.to_vec(),
        seed: args.seed,
        echo: false,
        keys_in_order: args.keys_in_order,
        progress: !args.quiet,
    }
}

/// The same load against an echo server in a child process, its summary
/// printed: the machine's ceiling the servers' figures are compared to.
fn echo_baseline(args: &BenchArgs, config: &bench::BenchConfig) -> Result<bench::BenchResult, String> {
    let (child, addr) = EchoChild::start(args.echo_threads, args.echo_batch)?;
    let echo_config = bench::BenchConfig {
        servers: vec![addr],
        target: bench::Target::One(0),
        echo: true,
        ..config.clone()
    };
    let result = measured_run(&echo_config, Some(vec![child.0.id()]));
    // The echo server stops before the real run, so it takes no CPU from it.
    drop(child);
    print!("{}", report::summary("echo-server", config.clients, &result));
    Ok(result)
}

/// The servers' throughput (and CPU per request, where both were measured)
/// as a share of the echo server's.
fn ratio_to_echo(result: &bench::BenchResult, echo: &bench::BenchResult) -> String {
    format!(
        "  ratio to echo-server: throughput {:.1} %{}",
        100.0 * result.throughput() / echo.throughput().max(1.0),
        match (result.server_cpu_us_per_request(), echo.server_cpu_us_per_request()) {
            (Some(ours), Some(echo)) => format!(", server CPU per request {:.2}x", ours / echo.max(1e-9)),
            _ => String::new(),
        }
    )
}

/// Writes the JSON result and the plot, where `--json` and `--plot` ask.
fn write_bench_files(
    args: &BenchArgs,
    clients: usize,
    result: &bench::BenchResult,
    echo_result: Option<&bench::BenchResult>,
) -> Result<(), String> {
    if let Some(path) = &args.json {
        let echo_throughput = echo_result.map(bench::BenchResult::throughput);
        std::fs::write(path, report::json(&args.label, clients, result, echo_throughput))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let baseline = echo_result.map(|echo| ("echo server", echo));
        report::plot(path, &format!("{}, {} clients", args.label, clients), result, baseline)?;
    }
    Ok(())
}

fn capacity_cmd(args: CapacityArgs) -> Result<bool, String> {
    let server =
        dynakv::cluster::servers::resolve(&args.server).ok_or_else(|| format!("cannot resolve {}", args.server))?;
    let config = capacity::CapacityConfig {
        server,
        key_bytes: args.key_bytes as usize,
        value_bytes: args.value_bytes as usize,
        refill: args.refill,
        verify_all: !args.no_verify,
        puts_per_s: args.puts_per_s,
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

fn check_cmd(args: CheckArgs) -> Result<bool, String> {
    let servers = servers(&args.servers)?;
    let expect = args.expect_members.unwrap_or(servers.len() as i32);
    let ctx = check::Ctx::new(servers, expect, args.seed);
    Ok(check::run(&ctx) == 0)
}

/// Creates, fills, loads and deletes a table on the DynamoDB endpoints,
/// prints the report and writes it as JSON where `--json` asks; true when
/// every request of the load was answered 200 OK.
fn dynamodb_cmd(args: DynamodbArgs) -> Result<bool, String> {
    let endpoints = (args.endpoints.iter())
        .map(|url| dynamodb::Endpoint::parse(url.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let config = dynamodb::DynamoConfig {
        endpoints,
        connections: args.connections as usize,
        duration: Duration::from_secs_f64(args.seconds),
        items: args.items as usize,
        value_bytes: args.value_bytes as usize,
        reads_percent: args.reads_percent,
        read_as: args.read_as,
        seed: dynamodb::random_seed(),
    };
    let result = dynamodb::run(&config)?;
    print!("{}", dynamodb::summary(&args.label, &config, &result));
    if let Some(path) = &args.json {
        std::fs::write(path, dynamodb::json(&args.label, &config, &result))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(result.counts.ok == result.counts.total())
}

/// Waits until every node not skipped reports `--expect` members.
fn members_cmd(args: MembersArgs) -> Result<bool, String> {
    let servers = servers(&args.servers)?;
    let asked: Vec<SocketAddr> = (servers.iter().enumerate())
        .filter(|(i, _)| !args.skip.contains(i))
        .map(|(_, &addr)| addr)
        .collect();
    let expect = args.expect.unwrap_or(asked.len());
    let limit = Duration::from_secs_f64(args.timeout_s.max(0.0));
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

fn echo_cmd(args: EchoArgs) -> Result<bool, String> {
    let addr = echo::start(args.listen, args.threads as usize, args.batch as usize).map_err(|e| e.to_string())?;
    println!("echo-server on {addr}");
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Cmd::Bench(args) => bench_cmd(args),
        Cmd::Capacity(args) => capacity_cmd(args),
        Cmd::Check(args) => check_cmd(args),
        Cmd::Dynamodb(args) => dynamodb_cmd(args),
        Cmd::Members(args) => members_cmd(args),
        Cmd::EchoServer(args) => echo_cmd(args),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("dynakv-load: {message}");
            ExitCode::from(2)
        }
    }
}

//! `dynakv-sim`: runs seeded simulations of a dynakv cluster and reports
//! any seed whose run broke a promise, with the command that replays it.

use clap::Parser;
use dynakv::node::context::PlantedBugs;
use dynakv_sim::config::{self, Limits, Mix, RunConfig};
use dynakv_sim::world::{RunOutcome, Watch};
use std::cell::RefCell;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Parser, Debug, Clone)]
#[command(about = "Deterministic simulation of a dynakv cluster: real node logic, virtual time, seeded faults")]
struct Args {
    /// Run this one seed (with --trace-key, print what reached nodes about a key).
    #[arg(long)]
    seed: Option<u64>,
    /// Run this many seeds, from --from on.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed of --seeds.
    #[arg(long = "from", default_value_t = 0)]
    first: u64,
    /// Fault mix: calm, crash, pause, network, partition, clock, wipe, power, resize, full, all;
    /// or "each" to take them in turn by seed.
    #[arg(long, default_value = "each")]
    mix: String,
    /// Smallest and largest cluster a seed may draw.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(2..=150))]
    nodes_min: u64,
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(2..=150))]
    nodes_max: u64,
    /// Switch on a known bug, to see the simulator find it:
    /// ack-before-replicas, collect-tombstones-at-once,
    /// skip-catch-up-after-pause, ignore-stamps-on-merge, ack-before-sync,
    /// recovery-ignores-checksums, compaction-deletes-log-early,
    /// drop-handoff-unconfirmed, single-vote-rounds (with --items).
    #[arg(long)]
    plant: Vec<String>,
    /// Trace every message that reaches a node about this key.
    #[arg(long)]
    trace_key: Option<String>,
    /// With --seed: keep the nodes' log lines in the trace.
    #[arg(long)]
    logs: bool,
    /// Threads running seeds (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Stop at the first failing seed.
    #[arg(long)]
    stop_at_first: bool,
    /// Carry out every planned crash, even where replicas - 1 other nodes
    /// are already away or catching up (then a lost write is no finding);
    /// replays runs as they went before such crashes were skipped.
    #[arg(long)]
    crash_beyond_replication: bool,
    /// Run every node plainly inside: the store on the event loop, streams
    /// that never refuse or break (as runs went before that was drawn).
    #[arg(long)]
    inside_plain: bool,
    /// Add this many clients of DynamoDB items (node-made SWAPs: rounds of
    /// the items' replicas), whose histories are checked for linearizability.
    #[arg(long, default_value_t = 0)]
    items: usize,
}

thread_local! {
    /// The run in progress on this thread, for the panic message.
    static CURRENT: RefCell<String> = const { RefCell::new(String::new()) };
}

fn replay_command(args: &Args, seed: u64, mix: Mix) -> String {
    let mut command = format!(
        "dynakv-sim --seed {seed} --mix {} --nodes-min {} --nodes-max {}",
        mix.name(),
        args.nodes_min,
        args.nodes_max
    );
    for bug in &args.plant {
        command.push_str(&format!(" --plant {bug}"));
    }
    if args.crash_beyond_replication {
        command.push_str(" --crash-beyond-replication");
    }
    if args.inside_plain {
        command.push_str(" --inside-plain");
    }
    if args.items > 0 {
        command.push_str(&format!(" --items {}", args.items));
    }
    command
}

fn main() -> ExitCode {
    let args = Args::parse();
    let chosen = planted_bugs(&args).and_then(|bugs| fixed_mix(&args).map(|mix| (bugs, mix)));
    let (bugs, fixed_mix) = match chosen {
        Ok(chosen) => chosen,
        Err(error) => {
            eprintln!("dynakv-sim: {error}");
            return ExitCode::from(2);
        }
    };
    let limits = Limits {
        nodes_min: args.nodes_min as usize,
        nodes_max: args.nodes_max.max(args.nodes_min) as usize,
    };
    std::panic::set_hook(Box::new(|info| {
        CURRENT.with(|current| {
            eprintln!("PANIC in {}: {info}", current.borrow());
        });
    }));
    let list: Vec<u64> = match args.seed {
        Some(seed) => vec![seed],
        None => (args.first..args.first + args.seeds).collect(),
    };
    let started = Instant::now();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 64);
    let seeds = Seeds {
        args: &args,
        list,
        fixed_mix,
        limits,
        bugs,
        next: AtomicU64::new(0),
        failures: Mutex::new(Vec::new()),
        totals: Mutex::new(Totals::default()),
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| seeds.work());
        }
    });
    let failures = seeds.failures.into_inner().unwrap_or_else(|e| e.into_inner());
    let totals = seeds.totals.into_inner().unwrap_or_else(|e| e.into_inner());
    println!("{}", totals.summary(failures.len(), started.elapsed().as_secs_f64()));
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The known bugs `--plant` switches on.
fn planted_bugs(args: &Args) -> Result<PlantedBugs, String> {
    let mut bugs = PlantedBugs::default();
    for name in &args.plant {
        config::plant(&mut bugs, name)?;
    }
    Ok(bugs)
}

/// The mix of every seed, or None with `--mix each` (each seed's own).
fn fixed_mix(args: &Args) -> Result<Option<Mix>, String> {
    match args.mix.as_str() {
        "each" => Ok(None),
        name => match Mix::parse(name) {
            Some(mix) => Ok(Some(mix)),
            None => Err(format!("--mix {name}: not a mix")),
        },
    }
}

/// What the runs of all seeds add up to.
#[derive(Default)]
struct Totals {
    runs: u64,
    events: u64,
    simulated_ms: u64,
    /// Reads fresh, stale, missing and outranked by stamp.
    reads: [u64; 4],
    crashes: u64,
    crashes_skipped: u64,
    item_ops: usize,
}

impl Totals {
    fn add(&mut self, outcome: &RunOutcome) {
        self.runs += 1;
        self.events += outcome.events;
        self.simulated_ms += outcome.simulated_ms;
        self.reads[0] += outcome.reads.fresh;
        self.reads[1] += outcome.reads.stale;
        self.reads[2] += outcome.reads.missing;
        self.reads[3] += outcome.reads.outranked;
        self.crashes += outcome.crashes;
        self.crashes_skipped += outcome.crashes_skipped;
        self.item_ops += outcome.item_ops;
    }

    /// The last line of the output.
    fn summary(&self, failed: usize, elapsed_s: f64) -> String {
        let Totals {
            runs,
            events,
            simulated_ms,
            reads,
            crashes,
            crashes_skipped,
            item_ops,
        } = self;
        let items = match item_ops {
            0 => String::new(),
            ops => format!("; DynamoDB item operations checked for linearizability: {ops}"),
        };
        format!(
            "{runs} seeds, {failed} failed; {events} events, {:.0} s simulated in {elapsed_s:.1} s; reads during the runs: {} fresh, {} stale, {} missing, {} outranked by stamp; crashes {crashes}, skipped {crashes_skipped} (replicas - 1 others away or catching up){items}",
            *simulated_ms as f64 / 1e3,
            reads[0],
            reads[1],
            reads[2],
            reads[3]
        )
    }
}

/// The seeds to run, shared by the threads that run them: each takes the
/// next seed not taken yet.
struct Seeds<'a> {
    args: &'a Args,
    list: Vec<u64>,
    fixed_mix: Option<Mix>,
    limits: Limits,
    bugs: PlantedBugs,
    next: AtomicU64,
    /// The seeds whose runs broke a promise.
    failures: Mutex<Vec<u64>>,
    totals: Mutex<Totals>,
}

impl Seeds<'_> {
    /// One thread's work: seeds until none is left (or, with
    /// `--stop-at-first`, until one has failed).
    fn work(&self) {
        loop {
            let at = self.next.fetch_add(1, Ordering::Relaxed) as usize;
            let Some(&seed) = self.list.get(at) else {
                return;
            };
            if self.args.stop_at_first && !self.failures.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                return;
            }
            self.run(seed);
        }
    }

    /// Runs one seed, adds it to the totals and prints what it found.
    fn run(&self, seed: u64) {
        let args = self.args;
        let mix = self.fixed_mix.unwrap_or_else(|| Mix::for_seed(seed));
        let replay = replay_command(args, seed, mix);
        CURRENT.with(|current| *current.borrow_mut() = replay.clone());
        let mut run = dynakv_sim::config(seed, mix, self.limits, self.bugs);
        run.crash_beyond_replication = args.crash_beyond_replication;
        run.item_clients = args.items;
        if args.inside_plain {
            run.inside = dynakv_sim::config::Inside::PLAIN;
        }
        let shape = shape(&run);
        let watch = Watch {
            key: args.trace_key.as_ref().map(|k| k.clone().into_bytes()),
            logs: args.logs,
        };
        let outcome = dynakv_sim::run(run, watch);
        self.totals.lock().unwrap_or_else(|e| e.into_inner()).add(&outcome);
        if args.seed.is_some() {
            println!("{}", seed_summary(seed, mix, &shape, &outcome));
            if !outcome.key_trace.is_empty() && outcome.violations.is_empty() {
                print!("{}", outcome.key_trace);
            }
        }
        if let Some(first) = outcome.violations.first() {
            print!("{}", failure_report(seed, mix, &shape, first, &replay, &outcome));
            self.failures.lock().unwrap_or_else(|e| e.into_inner()).push(seed);
        }
    }
}

/// The cluster a run drew and how its nodes run inside.
fn shape(run: &RunConfig) -> String {
    let inside = run.inside;
    let data = match run.storage() {
        None => "in memory".to_string(),
        Some(dynakv::node::durability::journal::Fsync::Always) => "on disk, fsync always".to_string(),
        Some(dynakv::node::durability::journal::Fsync::Periodic { interval_ms }) => {
            format!("on disk, fsync every {interval_ms} ms")
        }
        Some(dynakv::node::durability::journal::Fsync::Never) => "on disk, no fsync".to_string(),
    };
    format!(
        "{} nodes, {} replicas, {} clients; {} workers, backlog {}, streams refuse {:.0} %, {:.1} breaks/s; data {data}",
        run.nodes,
        run.replicas,
        run.clients,
        inside.workers,
        inside.backlog_max,
        inside.stream_refuse * 100.0,
        inside.stream_breaks_per_s
    )
}

/// The line a run of `--seed` prints: what it did, what it read.
fn seed_summary(seed: u64, mix: Mix, shape: &str, outcome: &RunOutcome) -> String {
    format!(
        "seed {seed} mix {} ({shape}): {} events, {:.1} s simulated, {} writes acknowledged, {} unknown, {} refused for room, reads fresh {} stale {} missing {} outranked {} unavailable {}; trace hash {:016x}",
        mix.name(),
        outcome.events,
        outcome.simulated_ms as f64 / 1e3,
        outcome.ops_acked,
        outcome.ops_unknown,
        outcome.ops_refused,
        outcome.reads.fresh,
        outcome.reads.stale,
        outcome.reads.missing,
        outcome.reads.outranked,
        outcome.reads_unavailable,
        outcome.trace_hash
    )
}

/// What a failed run reports: its first violation, how to replay it, and
/// the failing key's trace where there is one.
fn failure_report(seed: u64, mix: Mix, shape: &str, first: &str, replay: &str, outcome: &RunOutcome) -> String {
    let mut report = format!("FAIL seed {seed} mix {} ({shape}): {first}\n", mix.name());
    if outcome.violations.len() > 1 {
        report.push_str(&format!("  and {} more violations\n", outcome.violations.len() - 1));
    }
    let key = outcome
        .failing_key
        .as_ref()
        .map(|k| String::from_utf8_lossy(k).into_owned());
    report.push_str(&format!(
        "  replay: {replay}{}\n",
        key.as_ref().map_or(String::new(), |k| format!(" --trace-key {k}"))
    ));
    if !outcome.key_trace.is_empty() {
        report.push_str(&format!(
            "  trace of {}:\n{}",
            key.unwrap_or_default(),
            outcome.key_trace
        ));
    }
    report
}

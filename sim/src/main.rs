//! `dynakv-sim`: runs seeded simulations of a dynakv cluster and reports
//! any seed whose run broke a promise, with the command that replays it.

use clap::Parser;
use dynakv::node::context::PlantedBugs;
use dynakv_sim::config::{self, Limits, Mix};
use dynakv_sim::world::Watch;
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
    /// drop-handoff-unconfirmed.
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
    command
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut bugs = PlantedBugs::default();
    for name in &args.plant {
        if let Err(error) = config::plant(&mut bugs, name) {
            eprintln!("dynakv-sim: {error}");
            return ExitCode::from(2);
        }
    }
    let fixed_mix = match args.mix.as_str() {
        "each" => None,
        name => match Mix::parse(name) {
            Some(mix) => Some(mix),
            None => {
                eprintln!("dynakv-sim: --mix {name}: not a mix");
                return ExitCode::from(2);
            }
        },
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
    let seeds: Vec<u64> = match args.seed {
        Some(seed) => vec![seed],
        None => (args.first..args.first + args.seeds).collect(),
    };
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let totals = Mutex::new((0u64, 0u64, 0u64, [0u64; 4], 0u64, 0u64));
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 64);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let at = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(&seed) = seeds.get(at) else {
                        return;
                    };
                    if args.stop_at_first && !failures.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                        return;
                    }
                    let mix = fixed_mix.unwrap_or_else(|| Mix::for_seed(seed));
                    let replay = replay_command(&args, seed, mix);
                    CURRENT.with(|current| *current.borrow_mut() = replay.clone());
                    let mut run = dynakv_sim::config(seed, mix, limits, bugs);
                    run.crash_beyond_replication = args.crash_beyond_replication;
                    if args.inside_plain {
                        run.inside = dynakv_sim::config::Inside::PLAIN;
                    }
                    let inside = run.inside;
                    let shape = format!(
                        "{} nodes, {} replicas, {} clients; {} workers, backlog {}, streams refuse {:.0} %, {:.1} breaks/s",
                        run.nodes,
                        run.replicas,
                        run.clients,
                        inside.workers,
                        inside.backlog_max,
                        inside.stream_refuse * 100.0,
                        inside.stream_breaks_per_s
                    );
                    let watch = Watch {
                        key: args.trace_key.as_ref().map(|k| k.clone().into_bytes()),
                        logs: args.logs,
                    };
                    let outcome = dynakv_sim::run(run, watch);
                    {
                        let mut t = totals.lock().unwrap_or_else(|e| e.into_inner());
                        t.0 += 1;
                        t.1 += outcome.events;
                        t.2 += outcome.simulated_ms;
                        t.3[0] += outcome.reads.fresh;
                        t.3[1] += outcome.reads.stale;
                        t.3[2] += outcome.reads.missing;
                        t.3[3] += outcome.reads.outranked;
                        t.4 += outcome.crashes;
                        t.5 += outcome.crashes_skipped;
                    }
                    if args.seed.is_some() {
                        println!(
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
                        );
                        if !outcome.key_trace.is_empty() && outcome.violations.is_empty() {
                            print!("{}", outcome.key_trace);
                        }
                    }
                    if let Some(first) = outcome.violations.first() {
                        let mut report = format!("FAIL seed {seed} mix {} ({shape}): {first}\n", mix.name());
                        if outcome.violations.len() > 1 {
                            report.push_str(&format!("  and {} more violations\n", outcome.violations.len() - 1));
                        }
                        let key = outcome.failing_key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned());
                        report.push_str(&format!(
                            "  replay: {replay}{}\n",
                            key.as_ref().map_or(String::new(), |k| format!(" --trace-key {k}"))
                        ));
                        if !outcome.key_trace.is_empty() {
                            report.push_str(&format!("  trace of {}:\n{}", key.unwrap_or_default(), outcome.key_trace));
                        }
                        print!("{report}");
                        failures.lock().unwrap_or_else(|e| e.into_inner()).push(seed);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    let (runs, events, simulated_ms, reads, crashes, crashes_skipped) =
        totals.into_inner().unwrap_or_else(|e| e.into_inner());
    println!(
        "{runs} seeds, {} failed; {events} events, {:.0} s simulated in {:.1} s; reads during the runs: {} fresh, {} stale, {} missing, {} outranked by stamp; crashes {crashes}, skipped {crashes_skipped} (replicas - 1 others away or catching up)",
        failures.len(),
        simulated_ms as f64 / 1e3,
        started.elapsed().as_secs_f64(),
        reads[0],
        reads[1],
        reads[2],
        reads[3]
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

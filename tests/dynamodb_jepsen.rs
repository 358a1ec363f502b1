//! A Jepsen-style test of DynamoDB items: real node processes (durable,
//! `--fsync always`, each on a loopback address of its own), clients
//! through random nodes recording each operation's call, return and
//! outcome, a nemesis, and the histories checked for linearizability key
//! by key (`dynakv_loadtest::linearizable`: Wing & Gong's search with
//! Lowe's memoization). Registers take reads (GetItem or Query, both
//! with ConsistentRead), PutItem and PutItem conditional on the current
//! value; a counter takes UpdateItem ADD and reads.
//!
//! Two runs of [`RUN`] each: `kill -9` with a restart from the node's disk
//! and `SIGSTOP`/`SIGCONT` at random; then partitions, one or two nodes cut
//! off from the rest for longer than the failure timeout by nftables rules
//! the test installs and always removes (it needs root and the nftables
//! package, which `.ci/run` installs). `DYNAKV_JEPSEN_FAULTS=kill` kills two
//! nodes for good instead, `pause` only pauses, `partition` only cuts,
//! `crash` runs only the first run; `DYNAKV_JEPSEN_SEED` draws other faults
//! (7 by default); `DYNAKV_JEPSEN_DUMP=DIR` writes the history of each key
//! not found linearizable to `DIR`. Two planted
//! faults must be found under partitions: a write acknowledged with one
//! copy (`--fault-single-vote-rounds`), and a consistent Query page read
//! from one copy (`--fault-one-copy-pages`, reads by Query only, up to
//! [`PLANT_RUNS_MAX`] runs).
//!
//! A call answered 200 is an `Ok`; ConditionalCheckFailedException is a
//! conditional write's "no"; another 4xx, or a connection never made,
//! definitely did not happen; a timeout, a dropped connection or a 5xx is
//! an unknown outcome (it may take effect at any time after its call, or
//! never).

mod common;

use common::Cluster;
use dynakv::storage::hash::SplitMix64;
use dynakv_loadtest::dynamodb::{CallError, Conn, Endpoint, create_table_body};
use dynakv_loadtest::linearizable::{
    self, Counter, CounterInput, CounterOutput, Limits, Model, Operation, Outcome, Register, RegisterInput,
    RegisterOutput, Verdict,
};
use serde_json::Value as Json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: usize = 5;
const CLIENTS: usize = 8;
const REGISTERS: usize = 3;
const RUN: Duration = Duration::from_secs(20);
/// One operation in this many is the counter's. Timed-out increments stay
/// pending to the end of the check, and its cost grows with operations
/// times pending increments: a quarter of a fast machine's run (17,000
/// operations, 67 timed out) outran the checker's step budget.
const COUNTER_EVERY: u64 = 16;
/// Runs a planted fault may take to be found.
const PLANT_RUNS_MAX: u64 = 3;
const TABLE: &str = "jepsen";

type RegisterOp = Operation<RegisterInput<u64>, RegisterOutput<u64>>;
type CounterOp = Operation<CounterInput, CounterOutput>;

/// Every client's operations, as recorded.
#[derive(Default)]
struct History {
    registers: Vec<(usize, RegisterOp)>,
    counter: Vec<CounterOp>,
}

fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

/// What an answer says of a write: done, a condition's "no", definitely
/// not done, or unknown.
enum Heard {
    Ok(Json),
    ConditionFailed,
    Failed,
    Unknown,
}

fn hear(answer: Result<dynakv_loadtest::dynamodb::Response, CallError>) -> Heard {
    match answer {
        Ok(response) if response.status == 200 => {
            Heard::Ok(serde_json::from_slice(&response.body).unwrap_or(Json::Null))
        }
        Ok(response) if response.status >= 500 => Heard::Unknown,
        Ok(response) if String::from_utf8_lossy(&response.body).contains("ConditionalCheckFailed") => {
            Heard::ConditionFailed
        }
        // A 400 such as ProvisionedThroughputExceeded: refused before it ran.
        Ok(_) | Err(CallError::NotSent(_)) => Heard::Failed,
        Err(_) => Heard::Unknown,
    }
}

fn number_of(item: &Json, attribute: &str) -> Option<u64> {
    item.get("Item")?.get(attribute)?.get("N")?.as_str()?.parse().ok()
}

/// One register operation through `conn`; a read by Query if `by_query`.
fn register_op(
    conn: &mut Conn,
    key: usize,
    input: &RegisterInput<u64>,
    by_query: bool,
) -> Outcome<RegisterOutput<u64>> {
    let item = |v: u64| format!("{{\"pk\":{{\"S\":\"r{key}\"}},\"v\":{{\"N\":\"{v}\"}}}}");
    let answer = match input {
        RegisterInput::Read if by_query => {
            let body = format!(
                "{{\"TableName\":\"{TABLE}\",\"KeyConditionExpression\":\"pk = :k\",\
                 \"ExpressionAttributeValues\":{{\":k\":{{\"S\":\"r{key}\"}}}},\"ConsistentRead\":true}}"
            );
            conn.call("Query", &body).map(|mut response| {
                if response.status == 200 {
                    // The partition's one item, as GetItem would answer it.
                    let json: Json = serde_json::from_slice(&response.body).unwrap_or(Json::Null);
                    let first = json.get("Items").and_then(|items| items.get(0)).cloned();
                    response.body = serde_json::json!({ "Item": first }).to_string().into_bytes();
                }
                response
            })
        }
        RegisterInput::Read => {
            let body = format!(
                "{{\"TableName\":\"{TABLE}\",\"Key\":{{\"pk\":{{\"S\":\"r{key}\"}}}},\"ConsistentRead\":true}}"
            );
            conn.call("GetItem", &body)
        }
        RegisterInput::Write(v) => conn.call(
            "PutItem",
            &format!("{{\"TableName\":\"{TABLE}\",\"Item\":{}}}", item(*v)),
        ),
        RegisterInput::Cas { expected, new } => {
            let condition = match expected {
                Some(old) => format!(
                    "\"ConditionExpression\":\"v = :old\",\"ExpressionAttributeValues\":{{\":old\":{{\"N\":\"{old}\"}}}}"
                ),
                None => "\"ConditionExpression\":\"attribute_not_exists(pk)\"".to_string(),
            };
            conn.call(
                "PutItem",
                &format!("{{\"TableName\":\"{TABLE}\",\"Item\":{},{condition}}}", item(*new)),
            )
        }
        RegisterInput::Delete => return Outcome::Failed,
    };
    match (hear(answer), input) {
        (Heard::Ok(json), RegisterInput::Read) => Outcome::Ok(RegisterOutput::Value(number_of(&json, "v"))),
        (Heard::Ok(_), RegisterInput::Cas { .. }) => Outcome::Ok(RegisterOutput::Cas(true)),
        (Heard::Ok(_), _) => Outcome::Ok(RegisterOutput::Done),
        (Heard::ConditionFailed, _) => Outcome::Ok(RegisterOutput::Cas(false)),
        (Heard::Failed, _) => Outcome::Failed,
        (Heard::Unknown, _) => Outcome::Unknown,
    }
}

fn counter_op(conn: &mut Conn, input: &CounterInput) -> Outcome<CounterOutput> {
    let answer = match input {
        CounterInput::Read => {
            let body = format!("{{\"TableName\":\"{TABLE}\",\"Key\":{{\"pk\":{{\"S\":\"counter\"}}}},\"ConsistentRead\":true}}");
            conn.call("GetItem", &body)
        }
        _ => conn.call(
            "UpdateItem",
            &format!(
                "{{\"TableName\":\"{TABLE}\",\"Key\":{{\"pk\":{{\"S\":\"counter\"}}}},\"UpdateExpression\":\"ADD c :one\",\
                 \"ExpressionAttributeValues\":{{\":one\":{{\"N\":\"1\"}}}}}}"
            ),
        ),
    };
    match (hear(answer), input) {
        (Heard::Ok(json), CounterInput::Read) => {
            Outcome::Ok(CounterOutput::Value(number_of(&json, "c").unwrap_or(0) as i64))
        }
        (Heard::Ok(_), _) => Outcome::Ok(CounterOutput::Done),
        (Heard::Failed | Heard::ConditionFailed, _) => Outcome::Failed,
        (Heard::Unknown, _) => Outcome::Unknown,
    }
}

/// How the clients read registers: GetItem or Query at random, or Query
/// only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reads {
    Either,
    ByQuery,
}

/// One client: random operations through random nodes until `end`.
fn client(number: u32, endpoints: &[String], (start, end): (Instant, Instant), reads: Reads, history: &Mutex<History>) {
    let mut conns: Vec<Conn> = endpoints
        .iter()
        .map(|url| Conn::new(Endpoint::parse(url).expect("an endpoint URL")))
        .collect();
    let mut rng = SplitMix64::new(u64::from(number));
    let mut written = 0u64;
    let mut seen: Vec<Option<u64>> = vec![None; REGISTERS];
    while Instant::now() < end {
        let conn = &mut conns[rng.below(endpoints.len() as u64) as usize];
        let call_us = micros(start);
        if rng.below(COUNTER_EVERY) == 0 {
            let input = if rng.below(2) == 0 {
                CounterInput::Read
            } else {
                CounterInput::Add(1)
            };
            let outcome = counter_op(conn, &input);
            let op = Operation {
                client: number,
                call_us,
                input,
                outcome,
                return_us: micros(start),
            };
            history.lock().unwrap().counter.push(op);
            continue;
        }
        let key = rng.below(REGISTERS as u64) as usize;
        written += 1;
        let value = u64::from(number) << 32 | written;
        let input = match rng.below(3) {
            0 => RegisterInput::Read,
            1 => RegisterInput::Write(value),
            _ => RegisterInput::Cas {
                expected: seen[key],
                new: value,
            },
        };
        let by_query = matches!(input, RegisterInput::Read) && (reads == Reads::ByQuery || rng.below(2) == 0);
        let outcome = register_op(conn, key, &input, by_query);
        if let Outcome::Ok(RegisterOutput::Value(value)) = &outcome {
            seen[key] = *value;
        }
        let op = Operation {
            client: number,
            call_us,
            input,
            outcome,
            return_us: micros(start),
        };
        history.lock().unwrap().registers.push((key, op));
    }
}

/// What the nemesis does to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Faults {
    /// `kill -9` and a restart from the node's data directory, or
    /// `SIGSTOP` and `SIGCONT`, in turn at random.
    CrashesAndPauses,
    /// Two nodes killed for good.
    Kills,
    /// Pauses only.
    Pauses,
    /// The nodes cut into two sides (nftables rules on loopback), then healed.
    Partitions,
}

/// A partition between node processes: nftables rules on the input hook
/// that drop every packet between the two sides' loopback addresses, in
/// a table of this test process's own, removed when dropped (a test that
/// fails on the way still heals the network).
struct Partition {
    table: String,
}

impl Partition {
    fn cut(cluster: &Cluster, side: &[usize]) -> Partition {
        let table = format!("dynakv_jepsen_{}", std::process::id());
        let ip = |node: usize| cluster.nodes[node].addr.ip().to_string();
        let (inside, outside): (Vec<usize>, Vec<usize>) = (0..cluster.nodes.len()).partition(|n| side.contains(n));
        let set = |nodes: &[usize]| nodes.iter().map(|&n| ip(n)).collect::<Vec<_>>().join(", ");
        let (a, b) = (set(&inside), set(&outside));
        let script = format!(
            "table inet {table} {{\n chain input {{\n type filter hook input priority 0;\n \
             ip saddr {{ {a} }} ip daddr {{ {b} }} drop\n ip saddr {{ {b} }} ip daddr {{ {a} }} drop\n }}\n}}\n"
        );
        if let Err(error) = nft(&["-f", "-"], Some(&script)) {
            panic!("{error}");
        }
        Partition { table }
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        // Never a panic here: it may run while a failed test unwinds.
        if let Err(error) = nft(&["delete", "table", "inet", &self.table], None) {
            eprintln!("the partition was not healed: {error}");
        }
    }
}

/// Runs `nft` (nftables: the test needs root and the `nftables` package,
/// which `.ci/run` installs).
fn nft(args: &[&str], input: Option<&str>) -> Result<(), String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("nft")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| format!("nft (the nftables package, and root) to cut the network: {error}"))?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        stdin
            .write_all(input.as_bytes())
            .map_err(|error| format!("nft {args:?}: {error}"))?;
    }
    match child.wait() {
        Ok(status) if status.success() => Ok(()),
        other => Err(format!("nft {args:?} failed: {other:?}")),
    }
}

/// Faults at random every few seconds until `end`, each undone before the
/// next (but for [`Faults::Kills`]).
fn nemesis(cluster: &mut Cluster, (faults, seed): (Faults, u64), end: Instant, done: &mut Vec<String>) {
    let mut rng = SplitMix64::new(seed);
    while Instant::now() + Duration::from_secs(4) < end {
        std::thread::sleep(Duration::from_millis(1_000 + rng.below(1_000)));
        let node = rng.below(NODES as u64) as usize;
        let down = Duration::from_millis(500 + rng.below(2_500));
        match faults {
            Faults::Kills if done.len() < 2 => {
                cluster.nodes[node].kill();
                done.push(format!("kill -9 node {node}"));
            }
            Faults::Kills => {}
            Faults::CrashesAndPauses if rng.below(2) == 0 => {
                cluster.nodes[node].kill();
                std::thread::sleep(down);
                cluster.restart(node);
                done.push(format!("kill -9 node {node}, restarted from its disk after {down:?}"));
            }
            Faults::CrashesAndPauses | Faults::Pauses => {
                cluster.nodes[node].signal(libc::SIGSTOP);
                std::thread::sleep(down);
                cluster.nodes[node].signal(libc::SIGCONT);
                done.push(format!("SIGSTOP node {node} for {down:?}"));
            }
            Faults::Partitions => {
                // One or two nodes cut off from the rest: a minority and
                // a majority of every bucket's home replicas, or not.
                let mut side = vec![node];
                if rng.below(2) == 0 {
                    side.push((node + 1 + rng.below(NODES as u64 - 1) as usize) % NODES);
                }
                let partition = Partition::cut(cluster, &side);
                // Past the failure timeout: each side counts the other dead.
                let cut = down + Duration::from_secs(3);
                std::thread::sleep(cut);
                drop(partition);
                done.push(format!("nodes {side:?} cut off for {cut:?}"));
            }
        }
    }
}

type KeyedOperations<K, M> = Vec<(K, Operation<<M as Model>::Input, <M as Model>::Output>)>;

/// Every key's verdict printed; the ones not linearizable (or not
/// decided), described.
fn verdicts<K: Ord + std::fmt::Debug, M: Model>(model: &M, ops: KeyedOperations<K, M>) -> Vec<String> {
    let mut bad = Vec::new();
    for report in linearizable::check_histories(model, ops, &Limits::default()) {
        let known = report
            .history
            .iter()
            .filter(|op| matches!(op.outcome, Outcome::Ok(_)))
            .count();
        let unknown = report
            .history
            .iter()
            .filter(|op| matches!(op.outcome, Outcome::Unknown))
            .count();
        let verdict = report.verdict.describe(&report.history);
        eprintln!(
            "key {:?}: {known} answered, {unknown} unknown: {}",
            report.key,
            verdict.lines().next().unwrap_or("")
        );
        if !matches!(report.verdict, Verdict::Linearizable) {
            if let Ok(dir) = std::env::var("DYNAKV_JEPSEN_DUMP") {
                let lines: Vec<String> = report.history.iter().map(|op| format!("{op:?}")).collect();
                let _ = std::fs::write(format!("{dir}/{:?}.txt", report.key), lines.join("\n"));
            }
            bad.push(format!("key {:?}: {verdict}", report.key));
        }
    }
    bad
}

/// One run: a fresh durable cluster (with `extra` options), the clients
/// and the nemesis for [`RUN`], every key's history checked: the keys not
/// linearizable (or not decided), described.
fn run((faults, seed): (Faults, u64), extra: &[&str], reads: Reads) -> Vec<String> {
    let mut options = vec!["--fsync", "always"];
    options.extend_from_slice(extra);
    let (mut cluster, endpoints) = Cluster::start_dynamodb_apart(NODES, &options, Duration::from_secs(30));
    cluster.wait_all_ready(Duration::from_secs(30));
    let mut setup = Conn::new(Endpoint::parse(&endpoints[0]).unwrap());
    let created = setup
        .call("CreateTable", &create_table_body(TABLE))
        .expect("CreateTable");
    assert_eq!(created.status, 200, "{}", String::from_utf8_lossy(&created.body));
    let history = Arc::new(Mutex::new(History::default()));
    let start = Instant::now();
    let end = start + RUN;
    let clients: Vec<_> = (0..CLIENTS as u32)
        .map(|number| {
            let (endpoints, history) = (endpoints.clone(), history.clone());
            std::thread::Builder::new()
                .name(format!("jepsen-client-{number}"))
                .spawn(move || client(number, &endpoints, (start, end), reads, &history))
                .unwrap()
        })
        .collect();
    let mut done = Vec::new();
    nemesis(&mut cluster, (faults, seed), end, &mut done);
    for client in clients {
        client.join().unwrap();
    }
    eprintln!("{faults:?} {extra:?}: {done:?}");
    let History { registers, counter } = std::mem::take(&mut *history.lock().unwrap());
    let answered = registers
        .iter()
        .filter(|(_, op)| matches!(op.outcome, Outcome::Ok(_)))
        .count();
    assert!(answered > 500, "only {answered} register operations answered");
    let mut bad = verdicts(&Register::<u64>::default(), registers);
    bad.extend(verdicts(
        &Counter,
        counter.into_iter().map(|op| ("counter", op)).collect(),
    ));
    bad
}

/// The nemesis's seed: `DYNAKV_JEPSEN_SEED`, 7 by default.
fn seed_asked() -> u64 {
    std::env::var("DYNAKV_JEPSEN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

/// The faults `DYNAKV_JEPSEN_FAULTS` names (`kill`, `pause`, `partition`),
/// or else crashes with pauses, then partitions.
fn faults_asked() -> Vec<Faults> {
    match std::env::var("DYNAKV_JEPSEN_FAULTS").as_deref() {
        Ok("kill") => vec![Faults::Kills],
        Ok("crash") => vec![Faults::CrashesAndPauses],
        Ok("pause") => vec![Faults::Pauses],
        Ok("partition") => vec![Faults::Partitions],
        _ => vec![Faults::CrashesAndPauses, Faults::Partitions],
    }
}

/// One cluster at a time: the machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn dynamodb_items_are_linearizable_under_crashes_pauses_and_partitions() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for faults in faults_asked() {
        let bad = run((faults, seed_asked()), &[], Reads::Either);
        assert!(bad.is_empty(), "{faults:?}: {}", bad.join("\n"));
    }
}

#[test]
fn a_write_acknowledged_with_one_copy_during_a_partition_is_found() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let bad = run(
        (Faults::Partitions, seed_asked()),
        &["--fault-single-vote-rounds"],
        Reads::Either,
    );
    assert!(!bad.is_empty(), "rounds deciding on one vote went unnoticed");
}

#[test]
fn a_consistent_query_that_reads_one_copy_during_a_partition_is_found() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // A stale page needs a client to read through a cut-off home replica
    // of its key after a write on the other side: most runs have one.
    for attempt in 0..PLANT_RUNS_MAX {
        let seed = seed_asked() + attempt;
        if !run((Faults::Partitions, seed), &["--fault-one-copy-pages"], Reads::ByQuery).is_empty() {
            return;
        }
    }
    panic!("consistent pages of one copy went unnoticed in {PLANT_RUNS_MAX} runs");
}

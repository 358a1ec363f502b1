//! The DynamoDB API through the real SDK (boto3), against real node
//! processes on loopback: the conformance suite of `tests/dynamodb/`
//! through every node of a five-node cluster, acknowledged writes (items
//! put, some of them large) across a `kill -9` of a node and of every node
//! at once, and the parts of large items removed with the items.
//!
//! Python with boto3 and pytest comes from `tests/dynamodb/python-env.sh`
//! (python3 itself if it has them, else a venv it makes once).

mod common;

use common::Cluster;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const START_LIMIT: Duration = Duration::from_secs(30);
/// The conformance suite takes about 15 s on five nodes.
const SUITE_LIMIT: Duration = Duration::from_secs(300);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python to run the SDK with, found or made once for every test here.
fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let output = Command::new("bash")
            .arg(root().join("tests/dynamodb/python-env.sh"))
            .stderr(Stdio::inherit())
            .output()
            .ok()?;
        let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (output.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
    });
    found
        .clone()
        .expect("no Python with boto3 and pytest (see tests/dynamodb/python-env.sh's output above)")
}

/// Runs a command to its end, killing it (by pid) past `limit`.
fn run_within(command: &mut Command, limit: Duration) -> bool {
    let mut child = command.spawn().expect("start python");
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_boto3_suite_passes_through_every_node_of_a_five_node_cluster() {
    let python = python();
    let (cluster, endpoints) = Cluster::start_dynamodb(5, &[], START_LIMIT);
    cluster.wait_all_ready(START_LIMIT);
    let suite = root().join("tests/dynamodb");
    let passed = run_within(
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "--rootdir"])
            .arg(&suite)
            .arg(&suite)
            .env("DYNAKV_DYNAMODB_ENDPOINTS", endpoints.join(","))
            .env("DYNAKV_DYNAMODB_KNOWN_GAPS", suite.join("dynakv-gaps.txt"))
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        SUITE_LIMIT,
    );
    assert!(passed, "the DynamoDB suite failed (its report is above)");
}

/// Runs `crash_check.py load` for 8 s through `endpoints`, `nemesis` 3 s
/// into it; then `check` through the endpoints `nemesis` left standing.
fn items_survive(cluster: &mut Cluster, endpoints: &[String], nemesis: impl FnOnce(&mut Cluster) -> Vec<usize>) {
    let python = python();
    let script = root().join("tests/dynamodb/crash_check.py");
    let state = cluster.dir.0.join("crash-state.json");
    let mut load = Command::new(&python)
        .arg(&script)
        .arg("load")
        .arg(&state)
        .arg("8")
        .arg(endpoints.join(","))
        .spawn()
        .expect("start the load");
    std::thread::sleep(Duration::from_secs(3));
    let standing = nemesis(cluster);
    let start = Instant::now();
    let loaded = loop {
        if let Ok(Some(status)) = load.try_wait() {
            break status.success();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the load ran past its bound"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(loaded, "the load failed");
    let standing: Vec<&str> = standing.iter().map(|&index| endpoints[index].as_str()).collect();
    let checked = run_within(
        Command::new(&python)
            .arg(&script)
            .arg("check")
            .arg(&state)
            .arg(standing.join(",")),
        Duration::from_secs(120),
    );
    assert!(checked, "acknowledged writes were lost (see above)");
}

#[test]
fn acknowledged_items_survive_a_kill_9_of_a_node() {
    let (mut cluster, endpoints) = Cluster::start_dynamodb(5, &[], START_LIMIT);
    cluster.wait_all_ready(START_LIMIT);
    items_survive(&mut cluster, &endpoints, |cluster| {
        cluster.nodes[2].kill();
        vec![0, 1, 3, 4]
    });
}

/// Every node killed at once in the middle of the load (large items among
/// the writes), then restarted from its data directory: what was
/// acknowledged with `--fsync always` reads back whole.
#[test]
fn acknowledged_items_large_and_small_survive_a_kill_9_of_every_node() {
    let (mut cluster, endpoints) = Cluster::start_dynamodb_apart(3, &["--fsync", "always"], START_LIMIT);
    cluster.wait_all_ready(START_LIMIT);
    items_survive(&mut cluster, &endpoints, |cluster| {
        for node in &cluster.nodes {
            node.signal(libc::SIGKILL);
        }
        for index in 0..cluster.nodes.len() {
            cluster.restart(index);
        }
        cluster.wait_all_ready(START_LIMIT);
        (0..cluster.nodes.len()).collect()
    });
}

/// Live records (keys that are not tombstones) on every node together.
fn live_records(cluster: &Cluster) -> u64 {
    (0..cluster.nodes.len())
        .map(|node| common::ctl(&cluster.servers_file, &["buckets", &node.to_string()]))
        .flat_map(|table| {
            let rows: Vec<u64> = (table.lines())
                .filter_map(|row| row.split_whitespace().nth(1)?.parse().ok())
                .collect();
            rows
        })
        .sum()
}

/// Waits, up to `limit`, for the nodes to hold `wanted` live records
/// (replicas catch up a removal a moment after it is acknowledged).
fn wait_for_live_records(cluster: &Cluster, wanted: u64, limit: Duration) {
    let start = Instant::now();
    loop {
        let live = live_records(cluster);
        if live == wanted {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{live} live records, not {wanted}, after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An item of 390 KB is a head and about 40 chunk records; putting items
/// over it, growing it and deleting it leave no chunk behind: the nodes
/// hold one record (on each of the three replicas) for a small item put
/// over three large ones, and none once it is deleted.
#[test]
fn the_parts_of_large_items_are_removed_when_the_items_are_replaced_or_deleted() {
    let python = python();
    let (cluster, endpoints) = Cluster::start_dynamodb(3, &[], START_LIMIT);
    cluster.wait_all_ready(START_LIMIT);
    let script = root().join("tests/dynamodb/large_items_check.py");
    let step = |name: &str| {
        let done = run_within(
            Command::new(&python).arg(&script).arg(name).arg(&endpoints[0]),
            SUITE_LIMIT,
        );
        assert!(done, "step {name} failed (see above)");
    };
    step("create");
    let before = live_records(&cluster);
    step("churn");
    wait_for_live_records(&cluster, before + 3, Duration::from_secs(20));
    step("delete");
    wait_for_live_records(&cluster, before, Duration::from_secs(20));
}

/// What the SDK hears with the right key, a wrong secret, and a key the
/// nodes do not know, from a node started with --dynamodb-credentials.
const SIGNATURE_CHECK: &str = r#"
import sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
def code(key, secret):
    ddb = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))
    try:
        ddb.list_tables()
        return "ok"
    except ClientError as error:
        return error.response["Error"]["Code"]
print(code("AKIDDYNAKV", "right-secret"), code("AKIDDYNAKV", "wrong-secret"), code("AKIDOTHER", "right-secret"))
"#;

#[test]
fn with_credentials_only_requests_signed_by_a_known_key_are_taken() {
    let python = python();
    let keys = common::TempDir::new("dynamodb-keys");
    let credentials = keys.0.join("credentials");
    std::fs::write(&credentials, "# test keys\nAKIDDYNAKV right-secret\n").unwrap();
    let credentials = credentials.display().to_string();
    let extra = ["--dynamodb-credentials", credentials.as_str()];
    let (cluster, endpoints) = Cluster::start_dynamodb(1, &extra, START_LIMIT);
    cluster.wait_all_ready(START_LIMIT);
    let output = Command::new(&python)
        .args(["-c", SIGNATURE_CHECK, &endpoints[0]])
        .output()
        .expect("run python");
    let heard = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        heard.trim(),
        "ok InvalidSignatureException UnrecognizedClientException",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_table_created_again_under_its_name_gets_every_write_meant_for_it() {
    let python = python();
    let (cluster, endpoints) = Cluster::start_dynamodb(3, &[], START_LIMIT);
    cluster.wait_all_ready(START_LIMIT);
    let checked = run_within(
        Command::new(&python)
            .arg(root().join("tests/dynamodb/recreate_check.py"))
            .arg(endpoints.join(",")),
        Duration::from_secs(120),
    );
    assert!(
        checked,
        "writes went to the deleted table or old items showed (see above)"
    );
}

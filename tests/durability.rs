//! Durability with real processes on loopback, each node with a data
//! directory of its own: `kill -9` of every node in the middle of a write
//! load, a rolling restart under load, a damaged log file, a full file
//! system, and a data directory's lock and identity.

mod common;

use common::*;
use dynakv::node::durability::log_format::{self, Change, Next};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(60);

/// "A restart keeps every key": `kill -9` of every node of a 5-node
/// cluster in the middle of a write load (the default fsync, periodic: a
/// process crash keeps what it wrote), then a restart of all of them:
/// every acknowledged write reads back with its value.
#[test]
fn killing_every_node_in_the_middle_of_a_write_load_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start_durable(5, &[], READY);
    cluster.wait_all_ready(READY);
    let addrs = cluster.addrs(&[0, 1, 2, 3, 4]);
    let load = Load::start(addrs.clone(), 400, 8);
    std::thread::sleep(Duration::from_secs(3));
    for node in &cluster.nodes {
        node.signal(libc::SIGKILL);
    }
    let acked = load.stop();
    let written = acked.iter().flatten().count();
    assert!(written > 300, "the load wrote: {written} keys acknowledged");
    for index in 0..5 {
        cluster.restart(index);
    }
    let took = cluster.wait_all_ready(READY);
    let wrong = misread(&addrs, &acked);
    eprintln!(
        "{} writes acknowledged before kill -9 of every node, {} keys; ready again {took:?} after the restart; {} wrong",
        acked.iter().flatten().sum::<usize>(),
        written,
        wrong.len()
    );
    assert_none_wrong(&wrong, "acknowledged writes did not read back");
    for index in 0..5 {
        assert!(
            stat(&cluster.servers_file, index, "records_recovered") > 0,
            "node {index} read its journal"
        );
    }
}

/// A rolling restart of 20 nodes, one at a time, under load: nothing
/// acknowledged lost, nothing stale, and each node back from a restart
/// fetches only what changed while it was down (its pulls carry digests):
/// for most restarts the entries it pulls are a small share of the keys
/// it holds. Its bytes
/// received are printed beside its bytes stored; with little data per node
/// they are mostly the answers "unchanged" to its ~3,700 pulls (614
/// buckets, each asked of its replicas and stand-ins).
#[test]
fn a_rolling_restart_of_twenty_nodes_under_load_loses_nothing_and_fetches_little() {
    let mut cluster = Cluster::start_durable(20, &[], READY);
    cluster.wait_all_ready(READY);
    let all: Vec<usize> = (0..20).collect();
    let addrs = cluster.addrs(&all);
    write_keys(&addrs, &(0..10_000).collect::<Vec<_>>(), 1);
    let load = Load::start(addrs.clone(), 200, 4);
    let mut restarts = Vec::new();
    for index in 0..20 {
        cluster.nodes[index].signal(libc::SIGKILL);
        std::thread::sleep(Duration::from_millis(300));
        cluster.restart(index);
        cluster.wait_synced(&all, READY);
        let stat = |name| stat(&cluster.servers_file, index, name);
        let restart = [
            stat("entries_pulled"),
            stat("keys"),
            stat("transfer_bytes_received"),
            stat("stored_bytes"),
        ];
        eprintln!(
            "node {index} restarted: {} entries pulled for {} keys held, {} bytes received for {} bytes stored",
            restart[0], restart[1], restart[2], restart[3]
        );
        restarts.push(restart);
    }
    let acked = load.stop();
    let wrong = misread(&addrs, &acked);
    assert_none_wrong(
        &wrong,
        "writes of the load were lost or stale after the rolling restart",
    );
    let expect: Vec<(usize, Option<usize>)> = (200..10_000).map(|i| (i, Some(1))).collect();
    assert_none_wrong(&misreads(&addrs, &expect, 3, false), "keys written before the restarts");
    let total = |i: usize| restarts.iter().map(|r| r[i]).sum::<u64>();
    let (pulled, held) = (total(0), total(1));
    eprintln!(
        "rolling restart of 20 nodes under load: {pulled} entries pulled for {held} keys held ({:.1} %), \
         {} bytes received for {} bytes stored",
        100.0 * pulled as f64 / held.max(1) as f64,
        total(2),
        total(3)
    );
    // A node whose death was declared before it came back finds stand-ins
    // that pulled whole buckets meanwhile, whose copies differ from its
    // own: those send everything. Most restarts are quicker than that.
    let quick = restarts.iter().filter(|r| r[0] * 10 < r[1]).count();
    assert!(
        quick * 2 >= restarts.len(),
        "only {quick} of {} restarted nodes pulled less than a tenth of the keys they hold",
        restarts.len()
    );
}

/// "A record whose checksum fails is dropped, counted and its bucket
/// repaired from the replicas": a byte of a value flipped in a stopped
/// node's log; it starts, counts the record, and the key reads right
/// through it.
#[test]
fn a_flipped_byte_in_a_log_file_is_counted_and_the_key_served_from_the_replicas() {
    let mut cluster = Cluster::start_durable(3, &[], READY);
    cluster.wait_all_ready(READY);
    let addrs = cluster.addrs(&[0, 1, 2]);
    write_keys(&addrs, &(0..60).collect::<Vec<_>>(), 1);
    ctl(&cluster.servers_file, &["shutdown", "0"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cluster.nodes[0].exited() {
        assert!(Instant::now() < deadline, "SHUTDOWN ended the node");
        std::thread::sleep(Duration::from_millis(50));
    }
    let damaged = flip_a_value_byte(&cluster.data_dir(0)).expect("a log record with a value");
    cluster.restart(0);
    cluster.wait_all_ready(READY);
    assert!(
        stat(&cluster.servers_file, 0, "records_damaged") >= 1,
        "the damaged record is counted"
    );
    let expect: Vec<(usize, Option<usize>)> = (0..60).map(|i| (i, Some(1))).collect();
    assert_none_wrong(
        &misreads(&[addrs[0]], &expect, 0, false),
        "keys read through the damaged node",
    );
    let key = String::from_utf8_lossy(&damaged);
    eprintln!("the record of {key} damaged; node 0 started, counted it and serves it from its replicas");
}

/// Flips a byte inside the value of the first PUT of a log file in `dir`;
/// returns the record's key.
fn flip_a_value_byte(dir: &std::path::Path) -> Option<Vec<u8>> {
    let mut logs: Vec<_> = (std::fs::read_dir(dir).ok()?)
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "wal"))
        .collect();
    logs.sort();
    for path in logs {
        let mut bytes = std::fs::read(&path).ok()?;
        let mut at = 0;
        while let Next::Record(change, len) = log_format::next(&bytes[at..]) {
            if let Change::Put { key, value, .. } = change
                && !value.is_empty()
            {
                let key = key.to_vec();
                // The value ends the payload, before the 4-byte checksum.
                bytes[at + len - 5] ^= 0x20;
                std::fs::write(&path, &bytes).ok()?;
                return Some(key);
            }
            at += len;
        }
    }
    None
}

/// A small tmpfs this test mounts itself (root only), unmounted on drop.
struct SmallFs(std::path::PathBuf);

impl SmallFs {
    fn mount(dir: &std::path::Path, bytes: usize) -> Option<SmallFs> {
        std::fs::create_dir_all(dir).ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| SmallFs(dir.to_path_buf()))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// "A write that fails (ENOSPC, EIO) is refused like a full store": a
/// node whose data directory fills answers OUT_OF_SPACE, does not crash,
/// serves reads, loses nothing it acknowledged, and takes writes again
/// once room returns.
#[test]
fn a_full_data_directory_refuses_writes_then_takes_them_again() {
    let dir = TempDir::new("fullfs");
    let Some(fs) = SmallFs::mount(&dir.0.join("fs"), 4 << 20) else {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let filler = fs.0.join("filler");
    std::fs::write(&filler, vec![0u8; (5 << 20) / 2]).unwrap();
    let addr = free_addrs(1)[0];
    let servers = dir.0.join("servers.txt");
    std::fs::write(&servers, format!("{addr}\n")).unwrap();
    let data = fs.0.join("data").display().to_string();
    let mut node = spawn_node(addr, &servers, &["--data-dir", &data], &dir.0.join("node.log"));
    wait_alive(addr, Duration::from_secs(10));
    let value = vec![b'v'; 1_000];
    let (mut stored, mut refused) = (Vec::new(), 0);
    for i in 0..4_000 {
        match put(addr, &key(i), &value, 1) {
            0 => stored.push(i),
            2 => refused += 1,
            other => panic!("PUT {i} answered {other}"),
        }
        if refused > 20 {
            break;
        }
    }
    assert!(
        refused > 0,
        "the full directory refused writes ({} stored)",
        stored.len()
    );
    assert!(!node.exited(), "the node did not crash");
    assert_eq!(get(addr, &key(stored[0])).0, 0, "reads go on");
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let again = 1_000_000;
    while put(addr, &key(again), &value, 1) != 0 {
        assert!(Instant::now() < deadline, "writes did not resume after room returned");
        std::thread::sleep(Duration::from_millis(100));
    }
    stored.push(again);
    node.kill();
    let node = spawn_node(addr, &servers, &["--data-dir", &data], &dir.0.join("node-2.log"));
    wait_alive(addr, Duration::from_secs(10));
    let lost: Vec<usize> = stored.iter().copied().filter(|&i| get(addr, &key(i)).0 != 0).collect();
    assert_none_wrong(&lost, "acknowledged writes lost");
    eprintln!(
        "{} writes stored, OUT_OF_SPACE once the directory was full, writes again after room returned; 0 lost",
        stored.len()
    );
    drop(node);
}

/// A data directory has one node: a second process on it is refused, and
/// so is a node of another address or another cluster, each with a
/// message naming both.
#[test]
fn a_data_directory_refuses_a_second_process_another_node_and_another_cluster() {
    let dir = TempDir::new("identity");
    let addrs = free_addrs(2);
    let servers = dir.0.join("servers.txt");
    std::fs::write(&servers, format!("{}\n{}\n", addrs[0], addrs[1])).unwrap();
    let data = dir.0.join("data").display().to_string();
    let _first = spawn_node(addrs[0], &servers, &["--data-dir", &data], &dir.0.join("first.log"));
    wait_alive(addrs[0], Duration::from_secs(10));
    let refused = |addr: SocketAddr, servers: &std::path::Path, secret: Option<&std::path::Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dynakv"));
        command
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--servers")
            .arg(servers);
        command.args(["--data-dir", &data]);
        if let Some(secret) = secret {
            command.arg("--cluster-secret-file").arg(secret);
        }
        let output = command.output().expect("run dynakv");
        assert!(!output.status.success(), "started on a directory it does not own");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let second = refused(addrs[0], &servers, None);
    assert!(second.contains("in use by another dynakv process"), "{second}");
    drop(_first);
    std::thread::sleep(Duration::from_millis(200));
    let other_node = refused(addrs[1], &servers, None);
    assert!(
        other_node.contains(&format!("belongs to node {}, not to {}", addrs[0], addrs[1])),
        "{other_node}"
    );
    let secret = dir.0.join("another.secret");
    std::fs::write(&secret, [9u8; 32]).unwrap();
    let other_cluster = refused(addrs[0], &servers, Some(&secret));
    assert!(other_cluster.contains("belongs to another cluster"), "{other_cluster}");
}

//! Growing and shrinking a running cluster, with real processes on
//! loopback: `dynakv ctl reload` with an edited servers file, new nodes
//! started with it (or with a stale one), removed nodes draining and
//! exiting, all under a write load; and universes that are forged,
//! replayed or older, refused.

mod common;

use common::*;
use dynakv::cluster::internal::{self, Envelope, Internal, OPERATOR};
use dynakv::cluster::universe::{Universe, node_id};
use dynakv::node::admin;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(90);
/// The promise: every node counts the new size this soon after the reload.
const COUNTED: Duration = Duration::from_secs(10);

/// Nodes started one by one on addresses chosen ahead, sharing a servers
/// file the test rewrites.
struct Growing {
    dir: TempDir,
    servers: std::path::PathBuf,
    addrs: Vec<SocketAddr>,
    nodes: Vec<Option<NodeProcess>>,
}

impl Growing {
    fn new(capacity: usize) -> Growing {
        let dir = TempDir::new("resize");
        let servers = dir.0.join("servers.txt");
        Growing {
            servers,
            addrs: free_addrs(capacity),
            nodes: (0..capacity).map(|_| None).collect(),
            dir,
        }
    }

    /// Writes the servers file: these nodes, in this order.
    fn list(&self, order: &[usize]) {
        let text: String = order.iter().map(|&i| format!("{}\n", self.addrs[i])).collect();
        std::fs::write(&self.servers, text).unwrap();
    }

    /// Starts node `i` with the servers file as it is now (or `file`).
    fn start(&mut self, i: usize, file: Option<&Path>) {
        let file = file.unwrap_or(&self.servers).to_path_buf();
        let log = self.dir.0.join(format!("node-{i}.log"));
        self.nodes[i] = Some(spawn_node(self.addrs[i], &file, &[], &log));
    }

    fn addrs_of(&self, indexes: &[usize]) -> Vec<SocketAddr> {
        indexes.iter().map(|&i| self.addrs[i]).collect()
    }

    /// Waits until every node of `indexes` counts `count` members.
    fn wait_count(&self, indexes: &[usize], count: usize, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let wrong: Vec<(usize, i32)> = (indexes.iter())
                .map(|&i| (i, membership_count(self.addrs[i])))
                .filter(|&(_, counted)| counted != count as i32)
                .collect();
            if wrong.is_empty() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "after {limit:?}: (node, count) {wrong:?}, want {count}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every node of the servers file is ready with nothing
    /// left to pull, and sees every other ready.
    fn wait_synced(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let ready = std::process::Command::new(env!("CARGO_BIN_EXE_dynakv"))
                .args(["ctl", "--servers"])
                .arg(&self.servers)
                .arg("ready")
                .output()
                .unwrap();
            let entries = dynakv::cluster::servers::load(&self.servers).unwrap();
            let pulling = (0..entries.len()).any(|i| stat(&self.servers, i, "pulls_pending") != 0);
            if ready.status.success() && !pulling {
                return;
            }
            assert!(start.elapsed() < limit, "not synced after {limit:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Live keys per node of the servers file, replicas included.
    fn keys_per_node(&self) -> Vec<u64> {
        let entries = dynakv::cluster::servers::load(&self.servers).unwrap();
        (0..entries.len()).map(|i| stat(&self.servers, i, "keys")).collect()
    }

    /// Waits until node `i`'s process has exited by itself.
    fn wait_exited(&mut self, i: usize, limit: Duration) -> Duration {
        let start = Instant::now();
        let node = self.nodes[i].as_mut().expect("started");
        while !node.exited() {
            assert!(start.elapsed() < limit, "node {i} still runs after {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        start.elapsed()
    }
}

fn membership_count(addr: SocketAddr) -> i32 {
    let request =
        dynakv::protocol::client::request(dynakv::protocol::wire::Command::GetMembershipCount, None, None, None);
    dynakv::protocol::client::call_with(addr, &request, &[200, 200])
        .map(|(response, _)| response.membershipCount.unwrap_or(-1))
        .unwrap_or(-2)
}

/// Reads every key while writers may still be writing it: each read must
/// be the round acknowledged before it was sent, or a later one.
fn stale_reads(addrs: &[SocketAddr], load: &Load) -> Vec<String> {
    let acked = load.acked();
    let keys: Vec<usize> = (0..acked.len()).collect();
    parallel(&keys, 8, |&i| {
        let round = acked[i]?;
        let (code, got, version) = get(pick(addrs, i + 7), &key(i));
        let fresh = code == 0 && version as usize >= round && got == value(i, version as usize);
        (!fresh).then(|| format!("key {i}: code {code}, version {version}, acknowledged round {round}"))
    })
    .into_iter()
    .flatten()
    .collect()
}

/// "Grow and shrink a running cluster: no write lost, no restart." Five
/// nodes under a write load grow to ten (the file rewritten with the new
/// lines inserted among the old, in another order), then shrink to seven:
/// three at once is refused (as many as the replicas), two and then one
/// are not. After each change every node counts the new size within 10 s
/// of the command; once it settles no read is stale, and after growing
/// each node holds its share of the keys within 15 % of even; nodes taken
/// out hand their data over and exit by themselves; at the end every
/// acknowledged write reads back.
#[test]
fn a_cluster_grows_from_five_to_ten_and_shrinks_to_seven_under_load_losing_nothing() {
    let mut cluster = Growing::new(10);
    cluster.list(&[0, 1, 2, 3, 4]);
    for i in 0..5 {
        cluster.start(i, None);
    }
    cluster.wait_count(&[0, 1, 2, 3, 4], 5, READY);
    cluster.wait_synced(READY);
    let base: Vec<usize> = (300..3_300).collect();
    write_keys(&cluster.addrs_of(&[0, 1, 2, 3, 4]), &base, 1);
    // Clients keep to the nodes that stay throughout.
    let load = Load::start(cluster.addrs_of(&[0, 1, 2]), 300, 6);

    // 5 -> 10: new lines among the old, the old ones reordered.
    cluster.list(&[5, 3, 0, 6, 7, 1, 8, 4, 2, 9]);
    let reloaded = Instant::now();
    let summary = ctl(&cluster.servers, &["reload"]);
    assert!(
        summary.contains("universe 1 (was 0): 10 serving, 0 leaving"),
        "{summary}"
    );
    assert!(summary.contains("adopted by 5 of 10"), "{summary}");
    for i in 5..10 {
        cluster.start(i, None);
    }
    let all: Vec<usize> = (0..10).collect();
    cluster.wait_count(&all, 10, COUNTED.saturating_sub(reloaded.elapsed()));
    let counted = reloaded.elapsed();
    cluster.wait_synced(READY);
    let synced = reloaded.elapsed();
    assert_none_wrong(
        &stale_reads(&cluster.addrs_of(&all), &load),
        "stale reads after growing",
    );
    // The old holders drop their copies once the new ones are ready.
    let distinct = (base.len() + 300) as u64;
    let start = Instant::now();
    let share = loop {
        let share = cluster.keys_per_node();
        if share.iter().sum::<u64>() == 3 * distinct {
            break share;
        }
        assert!(start.elapsed() < READY, "copies never settled at 3 per key: {share:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let mean = 3.0 * distinct as f64 / 10.0;
    eprintln!(
        "5 -> 10: every node counted 10 after {counted:?}, synced after {synced:?}; keys per node {share:?} (mean {mean:.0})"
    );
    for (i, &held) in share.iter().enumerate() {
        let off = (held as f64 - mean).abs() / mean;
        assert!(
            off <= 0.15,
            "node {i} holds {held} keys, {:.0} % off the mean {mean:.0}",
            off * 100.0
        );
    }

    // 10 -> 7: three at once is as many as the replicas: refused.
    cluster.list(&[5, 3, 0, 7, 1, 8, 2]);
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_dynakv"))
        .args(["ctl", "--servers"])
        .arg(&cluster.servers)
        .arg("reload")
        .output()
        .unwrap();
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && why.contains("at most 2 may leave together"),
        "{why}"
    );
    // Two, then one.
    for (file, leaving, size) in [
        (&[5, 3, 0, 7, 1, 8, 2, 9][..], &[4, 6][..], 8),
        (&[5, 3, 0, 7, 1, 8, 2][..], &[9][..], 7),
    ] {
        cluster.list(file);
        let reloaded = Instant::now();
        let summary = ctl(&cluster.servers, &["reload"]);
        assert!(summary.contains(&format!("{size} serving")), "{summary}");
        cluster.wait_count(file, size, COUNTED.saturating_sub(reloaded.elapsed()));
        let counted = reloaded.elapsed();
        for &i in leaving {
            cluster.wait_exited(i, READY);
        }
        eprintln!(
            "-> {size}: every node counted {size} after {counted:?}; nodes {leaving:?} handed their data over and exited after {:?}",
            reloaded.elapsed()
        );
        cluster.wait_synced(READY);
        assert_none_wrong(
            &stale_reads(&cluster.addrs_of(file), &load),
            "stale reads after shrinking",
        );
    }
    let acked = load.stop();
    let stayed = cluster.addrs_of(&[5, 3, 0, 7, 1, 8, 2]);
    assert_none_wrong(&misread(&stayed, &acked), "acknowledged writes lost");
    let expect: Vec<(usize, Option<usize>)> = base.iter().map(|&i| (i, Some(1))).collect();
    assert_none_wrong(&misreads(&stayed, &expect, 5, false), "keys written before the changes");
    let universe = ctl(&cluster.servers, &["universe"]);
    assert!(universe.starts_with("version 3\n"), "{universe}");
    assert_eq!(universe.matches(" holds 3").count(), 7, "{universe}");
}

/// "A node started with a stale file learns the current one from its
/// peers": two nodes are added to a 3-node cluster; one of them is started
/// with an old servers file that lists the first three and itself, not
/// the other new node. It adopts the cluster's universe, counts 5 with
/// the rest, and serves.
#[test]
fn a_node_started_with_a_stale_servers_file_converges() {
    let mut cluster = Growing::new(5);
    cluster.list(&[0, 1, 2]);
    for i in 0..3 {
        cluster.start(i, None);
    }
    cluster.wait_count(&[0, 1, 2], 3, READY);
    cluster.list(&[0, 1, 2, 3, 4]);
    let summary = ctl(&cluster.servers, &["reload"]);
    assert!(summary.contains("adopted by 3 of 5"), "{summary}");
    let stale = cluster.dir.0.join("stale-servers.txt");
    let text: String = [0, 1, 2, 4]
        .iter()
        .map(|&i| format!("{}\n", cluster.addrs[i]))
        .collect();
    std::fs::write(&stale, text).unwrap();
    // The host's copy of the file, with the cluster secret beside it.
    std::fs::copy(
        cluster.servers.with_extension("txt.secret"),
        stale.with_extension("txt.secret"),
    )
    .unwrap();
    cluster.start(3, None);
    cluster.start(4, Some(&stale));
    cluster.wait_count(&[0, 1, 2, 3, 4], 5, READY);
    cluster.wait_synced(READY);
    let universe = ctl(&cluster.servers, &["universe"]);
    assert_eq!(universe.matches(" holds 1").count(), 5, "{universe}");
    let everyone = cluster.addrs_of(&[0, 1, 2, 3, 4]);
    write_keys(&everyone, &(0..200).collect::<Vec<_>>(), 1);
    let through_the_stale_one = vec![cluster.addrs[4]];
    let expect: Vec<(usize, Option<usize>)> = (0..200).map(|i| (i, Some(1))).collect();
    assert_none_wrong(&misreads(&through_the_stale_one, &expect, 0, false), "reads through it");
}

/// Signs an operator's order to adopt `universe` for `to` with `secret`.
fn adopt_order(secret: &dynakv::cluster::secret::Secret, to: SocketAddr, universe: &Universe, seq: u64) -> Vec<u8> {
    let envelope = Envelope {
        sender: OPERATOR,
        to: node_id(&to.to_string()),
        incarnation: 0x7e57,
        seq,
        sent_unix_ms: dynakv::node::context::unix_millis(),
    };
    let message = Internal::Admin {
        message_id: seq.to_le_bytes().repeat(2),
        command: admin::ADOPT_UNIVERSE,
        arg: universe.encode(),
    };
    internal::encode(secret, &envelope, &message)
}

/// The text of a node's answer to an admin datagram, if it answers.
fn answer(to: SocketAddr, datagram: &[u8]) -> Option<String> {
    let reply = raw_exchange(to, datagram, Duration::from_millis(800))?;
    let (id, _) = dynakv::protocol::wire::decode_msg(&reply).ok()?;
    let response = dynakv::protocol::wire::decode_reply(&reply, &id).ok()?;
    Some(String::from_utf8_lossy(&response.value?).into_owned())
}

/// "A forged, replayed or older universe is refused and counted": a
/// universe that adds a node, signed with another secret, is dropped
/// (unsigned); the genuine order is taken once, and the same datagram
/// again is refused as stale; an older universe than the node's, signed
/// right, is refused and counted. No node ever holds the forged one.
#[test]
fn forged_replayed_and_older_universes_are_refused_and_counted() {
    let mut cluster = Growing::new(4);
    cluster.list(&[0, 1, 2]);
    for i in 0..3 {
        cluster.start(i, None);
    }
    cluster.wait_count(&[0, 1, 2], 3, READY);
    let (target, servers) = (cluster.addrs[0], cluster.servers.clone());
    let names: Vec<String> = cluster.addrs_of(&[0, 1, 2]).iter().map(ToString::to_string).collect();
    let current = Universe::from_servers(&names);
    let mut grown = names.clone();
    grown.push(cluster.addrs[3].to_string());
    let next = current.next(&grown, 3, false, &|_| false).unwrap();

    let forger = dynakv::cluster::secret::Secret::from_bytes(b"not the cluster's secret");
    assert_eq!(
        answer(target, &adopt_order(&forger, target, &next, 1)),
        None,
        "no answer to a forgery"
    );
    assert_eq!(stat(&servers, 0, "rejected_unsigned"), 1);
    assert_eq!(stat(&servers, 0, "universe_version"), 0);

    let (secret_file, _) = dynakv::cluster::secret::location(None, &servers);
    let secret = dynakv::cluster::secret::load(&secret_file).unwrap();
    let order = adopt_order(&secret, target, &next, 2);
    assert_eq!(answer(target, &order).as_deref(), Some("adopted 1\n"));
    assert_eq!(answer(target, &order), None, "the same datagram again");
    assert!(stat(&servers, 0, "rejected_stale") >= 1);

    let older = adopt_order(&secret, target, &current, 3);
    let refused = answer(target, &older).unwrap();
    assert!(
        refused.starts_with("refused: version 0 is not newer than this node's 1"),
        "{refused}"
    );
    assert_eq!(stat(&servers, 0, "universes_refused"), 1);
    // The others learn version 1 from node 0, never anything else.
    cluster.wait_count(&[0, 1, 2], 3, READY);
    let start = Instant::now();
    while (0..3).any(|i| stat(&servers, i, "universe_version") != 1) {
        assert!(start.elapsed() < READY, "universe 1 did not spread");
        std::thread::sleep(Duration::from_millis(100));
    }
}

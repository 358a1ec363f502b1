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
/// lines inserted among the old, in another order), then shrink to seven
/// in one step, after a plan that changes nothing. After each change every
/// node counts the new size within 10 s
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

    // 10 -> 7: the plan first, which changes nothing; then all three at once.
    let file = [5, 3, 0, 7, 1, 8, 2];
    cluster.list(&file);
    let plan = ctl(&cluster.servers, &["reload", "--plan"]);
    assert!(plan.contains("universe 1 -> 2: 7 serving, 3 leaving"), "{plan}");
    assert_eq!(plan.matches(" leaving ").count(), 3, "{plan}");
    assert!(plan.contains("every node fits"), "{plan}");
    assert!(
        ctl(&cluster.servers, &["universe"]).starts_with("version 1\n"),
        "a plan changes nothing"
    );
    let reloaded = Instant::now();
    let summary = ctl(&cluster.servers, &["reload"]);
    assert!(summary.contains("7 serving"), "{summary}");
    cluster.wait_count(&file, 7, COUNTED.saturating_sub(reloaded.elapsed()));
    let counted = reloaded.elapsed();
    for i in [4, 6, 9] {
        cluster.wait_exited(i, READY);
    }
    eprintln!(
        "-> 7: every node counted 7 after {counted:?}; nodes 4, 6 and 9 handed their data over and exited after {:?}",
        reloaded.elapsed()
    );
    cluster.wait_synced(READY);
    assert_none_wrong(
        &stale_reads(&cluster.addrs_of(&file), &load),
        "stale reads after shrinking",
    );
    let acked = load.stop();
    let stayed = cluster.addrs_of(&[5, 3, 0, 7, 1, 8, 2]);
    assert_none_wrong(&misread(&stayed, &acked), "acknowledged writes lost");
    let expect: Vec<(usize, Option<usize>)> = base.iter().map(|&i| (i, Some(1))).collect();
    assert_none_wrong(&misreads(&stayed, &expect, 5, false), "keys written before the changes");
    let universe = ctl(&cluster.servers, &["universe"]);
    assert!(universe.starts_with("version 2\n"), "{universe}");
    assert_eq!(universe.matches(" holds 2").count(), 7, "{universe}");
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

/// A cluster run by the operator scripts (`run/start`, `run/reload`,
/// `run/stop`) with data directories, its processes killed by pid if the
/// test ends early.
struct Scripted {
    /// Holds the servers file and the output dir until the test ends.
    _dir: TempDir,
    servers: std::path::PathBuf,
    output: std::path::PathBuf,
    addrs: Vec<SocketAddr>,
}

impl Scripted {
    fn new(capacity: usize) -> Scripted {
        let dir = TempDir::new("scripted");
        Scripted {
            servers: dir.0.join("servers.txt"),
            output: dir.0.join("output"),
            addrs: free_addrs(capacity),
            _dir: dir,
        }
    }

    fn list(&self, order: &[usize]) {
        let text: String = order.iter().map(|&i| format!("{}\n", self.addrs[i])).collect();
        std::fs::write(&self.servers, text).unwrap();
    }

    /// Runs `run/NAME SERVERS --output OUTPUT ARGS`; returns its success and output.
    fn script(&self, name: &str, args: &[&str]) -> (bool, String) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let output = std::process::Command::new(repo.join("run").join(name))
            .arg(&self.servers)
            .arg("--output")
            .arg(&self.output)
            .args(args)
            .output()
            .expect("run script");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("run/{name} {args:?}:\n{text}");
        (output.status.success(), text)
    }

    /// The pid run/start or run/reload recorded for node `i`.
    fn pid(&self, i: usize) -> Option<u32> {
        let name = self.addrs[i].to_string().replace([':', '/'], "_");
        let text = std::fs::read_to_string(self.output.join(format!("{name}.pid"))).ok()?;
        text.trim().parse().ok()
    }

    /// Node processes of this cluster still running (zombies are gone).
    fn running(&self) -> Vec<usize> {
        (0..self.addrs.len())
            .filter(|&i| self.pid(i).is_some_and(process_runs))
            .collect()
    }

    fn wait_gone(&self, nodes: &[usize], limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let left: Vec<usize> = self.running().into_iter().filter(|i| nodes.contains(i)).collect();
            if left.is_empty() {
                return start.elapsed();
            }
            assert!(start.elapsed() < limit, "nodes {left:?} still run after {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn addrs_of(&self, indexes: &[usize]) -> Vec<SocketAddr> {
        indexes.iter().map(|&i| self.addrs[i]).collect()
    }

    /// Which running nodes hold key `i` in their store, and which nodes
    /// the ring names for it: what a failure must say to be explained.
    fn where_held(&self, i: usize) -> String {
        let key = key(i);
        let bucket = dynakv::storage::hash::bucket_of_key(&key).to_string();
        let text = String::from_utf8_lossy(&key).into_owned();
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let holders: Vec<usize> = (self.running().into_iter())
            .filter(|&n| ctl(&self.servers, &["keys", &self.addrs[n].to_string(), &bucket]).contains(&hex))
            .collect();
        let ring = ctl(&self.servers, &["ring", &text]);
        format!(
            "key {i} (bucket {bucket}) held by nodes {holders:?}; ring: {}",
            ring.trim()
        )
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        for i in self.running() {
            if let Some(pid) = self.pid(i) {
                // SAFETY: kill(2) of a node process this test started.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
    }
}

/// Whether `pid` is a live process (a zombie counts as gone).
fn process_runs(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some(s) if s != "Z" && s != "X")
}

/// Of `candidates`, the three that hold the most buckets whole (every
/// replica) when `members` serve, with that count.
fn triple_holding_whole_buckets(addrs: &[SocketAddr], members: &[usize], candidates: &[usize]) -> (Vec<usize>, usize) {
    let names: Vec<String> = members.iter().map(|&i| addrs[i].to_string()).collect();
    let placement = dynakv::cluster::ring::Placement::new(&names, 3);
    let view = placement.view(0, dynakv::cluster::ring::Liveness::ready(vec![true; names.len()]));
    let mut best = (Vec::new(), 0);
    for (a, &x) in candidates.iter().enumerate() {
        for (b, &y) in candidates.iter().enumerate().skip(a + 1) {
            for &z in &candidates[b + 1..] {
                let slots: Vec<usize> = [x, y, z]
                    .iter()
                    .map(|n| members.iter().position(|m| m == n).unwrap())
                    .collect();
                let whole = (0..dynakv::storage::hash::BUCKETS as u16)
                    .filter(|&bucket| view.preference(bucket).iter().all(|&n| slots.contains(&usize::from(n))))
                    .count();
                if whole > best.1 {
                    best = (vec![x, y, z], whole);
                }
            }
        }
    }
    best
}

/// "Any shrink in one step, 0 lost": with data directories and under a
/// write load, a cluster grown from 5 to 10 by `run/reload` shrinks to 7
/// in one `run/reload` (three nodes at once that hold every copy of some
/// buckets), then to 4 with a `kill -9` of one leaving node while it
/// drains. No acknowledged write is lost, no read is stale, the removed
/// nodes exit by themselves, and `run/stop` afterwards leaves no dynakv
/// process, though the servers file no longer lists most of them.
#[test]
fn a_cluster_shrinks_by_every_copy_of_some_buckets_at_once_losing_nothing() {
    let cluster = Scripted::new(10);
    let stay = [0, 1, 2, 3];
    cluster.list(&[0, 1, 2, 3, 4]);
    let (started, text) = cluster.script("start", &[]);
    assert!(started, "run/start: {text}");
    let base: Vec<usize> = (300..2_300).collect();
    write_keys(&cluster.addrs_of(&stay), &base, 1);
    let load = Load::start(cluster.addrs_of(&stay), 300, 6);

    cluster.list(&(0..10).collect::<Vec<_>>());
    let (grown, text) = cluster.script("reload", &[]);
    assert!(grown, "run/reload to 10: {text}");
    assert_none_wrong(
        &stale_reads(&cluster.addrs_of(&stay), &load),
        "stale reads after growing",
    );

    let all: Vec<usize> = (0..10).collect();
    let (first, whole) = triple_holding_whole_buckets(&cluster.addrs, &all, &[4, 5, 6, 7, 8, 9]);
    assert!(whole > 0, "three nodes that hold some bucket whole");
    let seven: Vec<usize> = all.iter().copied().filter(|i| !first.contains(i)).collect();
    cluster.list(&seven);
    let reloaded = Instant::now();
    let (shrunk, text) = cluster.script("reload", &[]);
    assert!(shrunk, "run/reload to 7 in one step: {text}");
    let gone = cluster.wait_gone(&first, READY);
    eprintln!(
        "10 -> 7: nodes {first:?} (every copy of {whole} buckets) handed over and exited {:?} after the reload",
        reloaded.elapsed().min(gone + reloaded.elapsed())
    );
    assert_none_wrong(
        &stale_reads(&cluster.addrs_of(&stay), &load),
        "stale reads after shrinking to 7",
    );

    let rest: Vec<usize> = seven.iter().copied().filter(|i| !stay.contains(i)).collect();
    cluster.list(&stay);
    let (shrinking, text) = cluster.script("reload", &["--no-wait"]);
    assert!(shrinking, "run/reload to 4: {text}");
    // One leaving node dies while it drains: the others, and the nodes
    // that stay, hold what it held.
    if let Some(pid) = cluster.pid(rest[0]) {
        // SAFETY: kill(2) of a node process this test started.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    cluster.wait_gone(&rest, READY);
    let (waited, text) = cluster.script("reload", &[]);
    assert!(waited, "run/reload to 4, again once they left: {text}");
    assert_none_wrong(
        &stale_reads(&cluster.addrs_of(&stay), &load),
        "stale reads after shrinking to 4",
    );
    let acked = load.stop();
    assert_none_wrong(&misread(&cluster.addrs_of(&stay), &acked), "acknowledged writes lost");
    let expect: Vec<(usize, Option<usize>)> = base.iter().map(|&i| (i, Some(1))).collect();
    let wrong = misreads(&cluster.addrs_of(&stay), &expect, 5, false);
    let held: Vec<String> = (wrong.iter().take(3))
        .filter_map(|line| line.strip_prefix("key ")?.split(':').next()?.parse().ok())
        .map(|i| cluster.where_held(i))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} keys written before the changes read wrong: {:?}; where they are: {held:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );

    // The file names two nodes now; run/stop stops all four by their pids.
    cluster.list(&[0, 1]);
    let (stopped, text) = cluster.script("stop", &[]);
    assert!(stopped, "run/stop: {text}");
    assert_eq!(
        cluster.running(),
        Vec::<usize>::new(),
        "no node process is left: {text}"
    );
}

/// "A reload that would not fit is refused with its numbers": five nodes
/// with 16 MiB each, filled to about 60 %; taking two out would leave the
/// other three holding every key, past what a store may hold. The plan
/// says which nodes do not fit and by how much; the reload is refused
/// with it, and the cluster keeps its universe.
#[test]
fn a_shrink_that_would_not_fit_is_refused_and_changes_nothing() {
    let mut cluster = Growing::new(5);
    cluster.list(&[0, 1, 2, 3, 4]);
    for i in 0..5 {
        let log = cluster.dir.0.join(format!("node-{i}.log"));
        cluster.nodes[i] = Some(spawn_node(
            cluster.addrs[i],
            &cluster.servers,
            &["--memory-limit", "16"],
            &log,
        ));
    }
    cluster.wait_count(&[0, 1, 2, 3, 4], 5, READY);
    cluster.wait_synced(READY);
    let addrs = cluster.addrs_of(&[0, 1, 2, 3, 4]);
    let keys: Vec<usize> = (0..2_400).collect();
    let value = vec![b'v'; 5_000];
    let refused = parallel(&keys, 8, |&i| put(pick(&addrs, i), &key(i), &value, 1) != 0);
    assert!(!refused.iter().any(|&r| r), "the cluster holds it all, at 5 nodes");

    cluster.list(&[0, 1, 2]);
    let plan = ctl(&cluster.servers, &["reload", "--plan"]);
    assert!(
        plan.contains("some nodes do not fit") && plan.contains("NO: holds"),
        "{plan}"
    );
    let reload = std::process::Command::new(env!("CARGO_BIN_EXE_dynakv"))
        .args(["ctl", "--servers"])
        .arg(&cluster.servers)
        .arg("reload")
        .output()
        .unwrap();
    let why = String::from_utf8_lossy(&reload.stderr);
    assert!(
        !reload.status.success()
            && why.contains("refusing the reload: not every node would fit")
            && why.contains("MiB"),
        "{why}"
    );
    let universe = ctl(&cluster.servers, &["universe"]);
    assert!(universe.starts_with("version 0\n"), "unchanged: {universe}");
    cluster.list(&[0, 1, 2, 3, 4]);
    let expect: Vec<(usize, Option<usize>)> = keys.iter().map(|&i| (i, None)).collect();
    let present = parallel(&expect, 8, |&(i, _)| get(pick(&addrs, i), &key(i)).0 == 0);
    assert!(present.iter().all(|&p| p), "every key still there");
}

//! Helpers for integration tests: real `dynakv` processes on loopback with
//! free ports, killed by pid when the guard drops, and small protocol calls.
#![allow(dead_code)]

use dynakv::protocol::client;
use dynakv::protocol::proto::kv::KVResponse;
use dynakv::protocol::wire::Command;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static DIR_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("dynakv-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // DYNAKV_KEEP_LOGS=1 keeps node logs of a failed run for reading.
        if std::thread::panicking() && std::env::var_os("DYNAKV_KEEP_LOGS").is_some() {
            eprintln!("node logs kept in {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `count` loopback addresses whose UDP and TCP ports were free just now.
pub fn free_addrs(count: usize) -> Vec<SocketAddr> {
    free_addrs_on([127, 0, 0, 1], count)
}

/// Node ports come from below Linux's ephemeral range (32768 and up): a
/// port handed out by the kernel could otherwise go to a client socket of
/// a concurrent test between this check and the node's bind.
const NODE_PORTS: std::ops::Range<u32> = 20_000..32_000;
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// `count` addresses on `ip` whose UDP and TCP ports were free just now.
pub fn free_addrs_on(ip: [u8; 4], count: usize) -> Vec<SocketAddr> {
    let span = NODE_PORTS.end - NODE_PORTS.start;
    // Each test process starts at its own offset; tests within it take turns.
    let _ = NEXT_PORT.compare_exchange(
        0,
        1 + std::process::id() * 7919 % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let mut addrs = Vec::new();
    for _ in 0..span {
        if addrs.len() == count {
            break;
        }
        let port = NODE_PORTS.start + NEXT_PORT.fetch_add(1, Ordering::Relaxed) % span;
        let addr = SocketAddr::from((ip, port as u16));
        if UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok() {
            addrs.push(addr);
        }
    }
    assert_eq!(addrs.len(), count, "not enough free ports in {NODE_PORTS:?}");
    addrs
}

/// `n` free loopback endpoints for the DynamoDB API: each node's
/// `--dynamodb-listen` option, and the URLs.
fn dynamodb_endpoints(n: usize) -> (Vec<Vec<String>>, Vec<String>) {
    let endpoints = free_addrs(n);
    let own = (endpoints.iter())
        .map(|addr| vec!["--dynamodb-listen".to_string(), addr.to_string()])
        .collect();
    (own, endpoints.iter().map(|addr| format!("http://{addr}")).collect())
}

/// A node process, killed (SIGKILL, by pid) when dropped.
pub struct NodeProcess {
    pub addr: SocketAddr,
    pub child: Child,
}

impl NodeProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to this node's pid (and only to it).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of a child this guard owns.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        self.kill();
    }
}

/// Starts `dynakv serve` for `addr` with the given servers file and options.
pub fn spawn_node(addr: SocketAddr, servers: &std::path::Path, extra: &[&str], log: &std::path::Path) -> NodeProcess {
    let log = std::fs::File::create(log).expect("log file");
    let child = Process::new(env!("CARGO_BIN_EXE_dynakv"))
        .arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--servers")
        .arg(servers)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start dynakv");
    NodeProcess { addr, child }
}

/// A single node with its own servers file.
pub struct SingleNode {
    pub node: NodeProcess,
    pub dir: TempDir,
}

impl SingleNode {
    pub fn start(extra: &[&str]) -> SingleNode {
        let dir = TempDir::new("single");
        let addr = free_addrs(1)[0];
        let servers = dir.0.join("servers.txt");
        std::fs::write(&servers, format!("{addr}\n")).unwrap();
        let node = spawn_node(addr, &servers, extra, &dir.0.join("node.log"));
        wait_alive(addr, Duration::from_secs(10));
        SingleNode { node, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.node.addr
    }
}

/// Waits until the node answers IS_ALIVE; panics after `limit`.
pub fn wait_alive(addr: SocketAddr, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        let request = client::request(Command::IsAlive, None, None, None);
        if client::call_with(addr, &request, &[100]).is_ok() {
            return;
        }
    }
    panic!("node {addr} did not answer within {limit:?}");
}

/// One request with the spec's retry schedule; panics on transport failure.
pub fn call(
    addr: SocketAddr,
    command: Command,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    version: Option<i32>,
) -> KVResponse {
    let request = client::request(command, key, value, version);
    client::call(addr, &request)
        .unwrap_or_else(|error| panic!("{command:?} to {addr}: {error}"))
        .0
}

pub fn put(addr: SocketAddr, key: &[u8], value: &[u8], version: i32) -> u32 {
    call(addr, Command::Put, Some(key), Some(value), Some(version))
        .errCode
        .unwrap_or(0)
}

/// `(errCode, value, version)` of a GET.
pub fn get(addr: SocketAddr, key: &[u8]) -> (u32, Vec<u8>, i32) {
    let response = call(addr, Command::Get, Some(key), None, None);
    (
        response.errCode.unwrap_or(0),
        response.value.clone().unwrap_or_default(),
        response.version.unwrap_or(0),
    )
}

pub fn remove(addr: SocketAddr, key: &[u8]) -> u32 {
    call(addr, Command::Remove, Some(key), None, None).errCode.unwrap_or(0)
}

/// Sends raw bytes from a fresh socket and returns the first datagram back
/// within `wait`, if any.
pub fn raw_exchange(addr: SocketAddr, datagram: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(datagram, addr).unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = vec![0u8; 65_536];
    socket
        .recv_from(&mut buffer)
        .ok()
        .map(|(len, _)| buffer[..len].to_vec())
}

/// Resident set size of a process, in bytes, from /proc.
pub fn rss_bytes_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A cluster of node processes on loopback, sharing one servers file.
pub struct Cluster {
    pub nodes: Vec<NodeProcess>,
    pub dir: TempDir,
    pub servers_file: PathBuf,
    extra: Vec<String>,
    /// Options of one node only, by index (its DynamoDB endpoint).
    pub own_extra: Vec<Vec<String>>,
    /// Each node keeps its data in `dir/data-INDEX` (kept across restarts).
    pub durable: bool,
}

impl Cluster {
    /// Starts `n` nodes and waits until every one counts all `n`.
    pub fn start(n: usize, extra: &[&str], limit: Duration) -> Cluster {
        Cluster::start_with(n, extra, false, limit)
    }

    /// [`Cluster::start`], each node with a data directory of its own.
    pub fn start_durable(n: usize, extra: &[&str], limit: Duration) -> Cluster {
        Cluster::start_with(n, extra, true, limit)
    }

    /// [`Cluster::start`], each node also serving the DynamoDB API on a
    /// free loopback port: those endpoints' URLs.
    pub fn start_dynamodb(n: usize, extra: &[&str], limit: Duration) -> (Cluster, Vec<String>) {
        let (own, urls) = dynamodb_endpoints(n);
        (Cluster::start_own(n, extra, own, (false, free_addrs(n)), limit), urls)
    }

    /// [`Cluster::start_dynamodb`], durable, node `i` on loopback address
    /// 127.0.0.(10 + i) of its own (its endpoint stays on 127.0.0.1), so
    /// that packet filters can cut nodes apart without cutting clients off.
    pub fn start_dynamodb_apart(n: usize, extra: &[&str], limit: Duration) -> (Cluster, Vec<String>) {
        let (own, urls) = dynamodb_endpoints(n);
        let addrs = (0..n)
            .flat_map(|i| free_addrs_on([127, 0, 0, 10 + i as u8], 1))
            .collect();
        (Cluster::start_own(n, extra, own, (true, addrs), limit), urls)
    }

    fn start_with(n: usize, extra: &[&str], durable: bool, limit: Duration) -> Cluster {
        Cluster::start_own(n, extra, Vec::new(), (durable, free_addrs(n)), limit)
    }

    fn start_own(
        n: usize,
        extra: &[&str],
        own_extra: Vec<Vec<String>>,
        (durable, addrs): (bool, Vec<SocketAddr>),
        limit: Duration,
    ) -> Cluster {
        let dir = TempDir::new("cluster");
        let servers_file = dir.0.join("servers.txt");
        let text: String = addrs.iter().map(|a| format!("{a}\n")).collect();
        std::fs::write(&servers_file, text).unwrap();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            dir,
            servers_file,
            extra,
            own_extra,
            durable,
        };
        for (i, &addr) in addrs.iter().enumerate() {
            let node = cluster.spawn(i, addr);
            cluster.nodes.push(node);
        }
        let all: Vec<usize> = (0..n).collect();
        let took = cluster.wait_membership(&all, n, limit);
        eprintln!("{n} nodes report {n} members {took:?} after the last start");
        cluster
    }

    fn spawn(&self, index: usize, addr: SocketAddr) -> NodeProcess {
        self.spawn_with(index, addr, &[])
    }

    /// Node `index`'s data directory (with [`Cluster::durable`]).
    pub fn data_dir(&self, index: usize) -> PathBuf {
        self.dir.0.join(format!("data-{index}"))
    }

    fn spawn_with(&self, index: usize, addr: SocketAddr, more: &[&str]) -> NodeProcess {
        let data_dir = self.data_dir(index).display().to_string();
        let mut extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        if self.durable {
            extra.extend(["--data-dir", data_dir.as_str()]);
        }
        if let Some(own) = self.own_extra.get(index) {
            extra.extend(own.iter().map(String::as_str));
        }
        extra.extend_from_slice(more);
        spawn_node(
            addr,
            &self.servers_file,
            &extra,
            &self.dir.0.join(format!("node-{index}.log")),
        )
    }

    /// Restarts node `index` (after it was killed): with an empty store, or
    /// with what its data directory holds.
    pub fn restart(&mut self, index: usize) {
        self.restart_with(index, &[]);
    }

    /// Restarts node `index` with these options added.
    pub fn restart_with(&mut self, index: usize, more: &[&str]) {
        let addr = self.nodes[index].addr;
        self.nodes[index].kill();
        self.nodes[index] = self.spawn_with(index, addr, more);
    }

    pub fn addrs(&self, indexes: &[usize]) -> Vec<SocketAddr> {
        indexes.iter().map(|&i| self.nodes[i].addr).collect()
    }

    /// Waits until every node in `indexes` reports `count` members; returns
    /// how long that took, panics after `limit`.
    pub fn wait_membership(&self, indexes: &[usize], count: usize, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let mut wrong = Vec::new();
            for &i in indexes {
                let request = client::request(Command::GetMembershipCount, None, None, None);
                let reported = client::call_with(self.nodes[i].addr, &request, &[200, 200])
                    .map(|(r, _)| r.membershipCount.unwrap_or(-1))
                    .unwrap_or(-2);
                if reported != count as i32 {
                    wrong.push((i, reported));
                }
            }
            if wrong.is_empty() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "after {limit:?}, nodes (index, count) still wrong: {wrong:?}; want {count}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs `work` over `items` on `threads` threads; collects the results.
pub fn parallel<T: Sync, R: Send>(items: &[T], threads: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&work).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    })
}

/// A pseudo-random pick from `addrs` for request number `i`.
pub fn pick(addrs: &[SocketAddr], i: usize) -> SocketAddr {
    addrs[(dynakv::storage::hash::fmix64(i as u64 ^ 0xabcd) % addrs.len() as u64) as usize]
}

/// Runs `dynakv ctl --servers FILE ARGS`; returns stdout, panics on failure.
pub fn ctl(servers: &std::path::Path, args: &[&str]) -> String {
    let output = Process::new(env!("CARGO_BIN_EXE_dynakv"))
        .arg("ctl")
        .arg("--servers")
        .arg(servers)
        .args(args)
        .output()
        .expect("run dynakv ctl");
    assert!(
        output.status.success(),
        "dynakv ctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One `name value` field of `dynakv ctl stats`.
pub fn stat(servers: &std::path::Path, node: usize, name: &str) -> u64 {
    let text = ctl(servers, &["stats", &node.to_string()]);
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in stats of node {node}: {text}"))
}

/// Per bucket `(live keys, tombstones, digest)` a node holds, from `ctl buckets`.
pub fn buckets(servers: &std::path::Path, node: usize) -> std::collections::HashMap<u16, (u64, u64, String)> {
    ctl(servers, &["buckets", &node.to_string()])
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                [b, live, tomb, digest, _bytes] => Some((
                    b.parse().ok()?,
                    (live.parse().ok()?, tomb.parse().ok()?, digest.to_string()),
                )),
                _ => None,
            }
        })
        .collect()
}

impl Cluster {
    /// Waits until every node sees every node alive and ready (`ctl
    /// ready`); panics after `limit`.
    pub fn wait_all_ready(&self, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let ready = Process::new(env!("CARGO_BIN_EXE_dynakv"))
                .args(["ctl", "--servers"])
                .arg(&self.servers_file)
                .arg("ready")
                .output()
                .expect("run dynakv ctl");
            if ready.status.success() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "not ready after {limit:?}: {}",
                String::from_utf8_lossy(&ready.stderr)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until every node in `indexes` is ready with no bucket pulls
    /// left, and every one of them knows the others are ready (until then a
    /// stand-in may still coordinate a bucket whose replicas are back).
    pub fn wait_synced(&self, indexes: &[usize], limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let busy: Vec<usize> = indexes
                .iter()
                .copied()
                .filter(|&i| {
                    stat(&self.servers_file, i, "pulls_pending") != 0
                        || stat(&self.servers_file, i, "ready") != 1
                        || !self.sees_ready(i, indexes)
                })
                .collect();
            if busy.is_empty() {
                return start.elapsed();
            }
            assert!(start.elapsed() < limit, "nodes {busy:?} still syncing after {limit:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether node `i` believes every node of `indexes` alive and ready.
    fn sees_ready(&self, i: usize, indexes: &[usize]) -> bool {
        let members = ctl(&self.servers_file, &["members", &i.to_string()]);
        let ready: Vec<usize> = members
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                (f.len() == 5 && f[2] == "1" && f[3] == "1").then(|| f[0].parse().ok())?
            })
            .collect();
        indexes.iter().all(|n| ready.contains(n))
    }

    /// The nodes that should hold `bucket` when `alive` are up (the node's own placement rule).
    pub fn holders(&self, alive: &[usize], bucket: u16) -> Vec<usize> {
        let view = self.view(alive);
        view.preference(bucket).iter().map(|&n| usize::from(n)).collect()
    }

    /// Placement, as the nodes compute it, when `alive` are up and ready.
    pub fn view(&self, alive: &[usize]) -> dynakv::cluster::ring::View {
        let text = std::fs::read_to_string(&self.servers_file).unwrap();
        let names: Vec<String> = text.lines().map(String::from).collect();
        let mut liveness = dynakv::cluster::ring::Liveness::ready(vec![false; names.len()]);
        for &i in alive {
            liveness.alive[i] = true;
            liveness.ready[i] = true;
        }
        dynakv::cluster::ring::Placement::new(&names, 3).view(0, liveness)
    }
}

/// Test key number `i`.
pub fn key(i: usize) -> Vec<u8> {
    format!("key-{i:08}").into_bytes()
}

/// The value key `i` holds after write round `round` (its version is the round).
pub fn value(i: usize, round: usize) -> Vec<u8> {
    format!("value-{i}-{round}-{}", "x".repeat(i % 200)).into_bytes()
}

/// Writes `keys` at `round` through pseudo-random nodes; every PUT must be acknowledged.
pub fn write_keys(addrs: &[SocketAddr], keys: &[usize], round: usize) {
    let codes = parallel(keys, 8, |&i| {
        put(pick(addrs, i + round), &key(i), &value(i, round), round as i32)
    });
    let failed: Vec<_> = keys.iter().zip(&codes).filter(|(_, c)| **c != 0).collect();
    assert!(
        failed.is_empty(),
        "PUTs not acknowledged with 0: {:?}",
        &failed[..failed.len().min(10)]
    );
}

/// Fails with how many of `bad` there are and the first few.
pub fn assert_none_wrong<T: std::fmt::Debug>(bad: &[T], what: &str) {
    assert!(bad.is_empty(), "{} {what}: {:?}", bad.len(), &bad[..bad.len().min(5)]);
}

/// Reads every `(key, expected round or None for deleted)` through
/// pseudo-random nodes and describes each read that differs. With
/// `not_found_ok`, "not found" for an existing key is accepted (a bucket
/// whose replicas are all away): only old or wrong values count.
pub fn misreads(
    addrs: &[SocketAddr],
    expect: &[(usize, Option<usize>)],
    salt: usize,
    not_found_ok: bool,
) -> Vec<String> {
    parallel(expect, 8, |&(i, round)| {
        let request = client::request(Command::Get, Some(&key(i)), None, None);
        let (code, got, version) = match client::call(pick(addrs, i + salt), &request) {
            Ok((r, _)) => (
                r.errCode.unwrap_or(0),
                r.value.unwrap_or_default(),
                r.version.unwrap_or(0),
            ),
            Err(error) => return Some(format!("key {i}: {error}")),
        };
        let right = match (code, round) {
            (0, Some(r)) => got == value(i, r) && version == r as i32,
            (1, None) => true,
            (1, Some(_)) => not_found_ok,
            _ => false,
        };
        (!right).then(|| format!("key {i}: code {code}, version {version}, expected round {round:?}"))
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Plays node `index` of a cluster's servers file from the test, with the
/// cluster's secret: an insider, to show what nodes do with messages that
/// are signed but old, repeated, misdirected or out of range.
pub struct FakeNode {
    pub socket: UdpSocket,
    /// Its id (a hash of its name), and every node's, by index.
    pub id: u64,
    ids: Vec<u64>,
    pub incarnation: u64,
    secret: dynakv::cluster::secret::Secret,
    seq: u64,
}

impl FakeNode {
    /// Binds node `index`'s address (its real process must not be running).
    pub fn bind(servers: &std::path::Path, index: usize) -> FakeNode {
        let entries = dynakv::cluster::servers::load(servers).unwrap();
        let (secret_file, _) = dynakv::cluster::secret::location(None, servers);
        let socket = UdpSocket::bind(entries[index].addr).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let ids: Vec<u64> = (entries.iter())
            .map(|entry| dynakv::cluster::universe::node_id(&entry.name))
            .collect();
        FakeNode {
            socket,
            id: ids[index],
            ids,
            incarnation: dynakv::node::context::unix_millis(),
            secret: dynakv::cluster::secret::load(&secret_file).expect("the nodes made the secret"),
            seq: 0,
        }
    }

    /// Signs `message` for node `to` as sent at `sent_unix_ms` (Unix ms).
    pub fn sign_at(&mut self, to: usize, message: &dynakv::cluster::internal::Internal, sent_unix_ms: u64) -> Vec<u8> {
        self.seq += 1;
        let envelope = dynakv::cluster::internal::Envelope {
            sender: self.id,
            to: self.ids.get(to).copied().unwrap_or(to as u64),
            incarnation: self.incarnation,
            seq: self.seq,
            sent_unix_ms,
        };
        dynakv::cluster::internal::encode(&self.secret, &envelope, message)
    }

    /// Signs `message` for node `to`, now.
    pub fn sign(&mut self, to: usize, message: &dynakv::cluster::internal::Internal) -> Vec<u8> {
        self.sign_at(to, message, dynakv::node::context::unix_millis())
    }

    /// Datagrams that arrive within `wait`, decoded as node messages
    /// (anything else is skipped).
    pub fn receive(&self, wait: Duration) -> Vec<dynakv::cluster::internal::Internal> {
        let deadline = Instant::now() + wait;
        let mut buffer = vec![0u8; 65_536];
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            self.socket.set_read_timeout(Some(left)).unwrap();
            match self.socket.recv_from(&mut buffer) {
                Ok((len, _)) => {
                    if let Ok((_, message)) = dynakv::cluster::internal::decode_unchecked(&self.secret, &buffer[..len])
                    {
                        got.push(message);
                    }
                }
                Err(_) => break,
            }
        }
        got
    }
}

/// Writers, each with its own keys, writing them in rounds until told to
/// stop; per key, the last round acknowledged (a later one may have been
/// in flight when it stopped).
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acked: std::sync::Arc<std::sync::Mutex<Vec<Option<usize>>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(addrs: Vec<SocketAddr>, keys: usize, writers: usize) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acked = std::sync::Arc::new(std::sync::Mutex::new(vec![None; keys]));
        let threads = (0..writers)
            .map(|w| {
                let (stop, acked, addrs) = (stop.clone(), acked.clone(), addrs.clone());
                std::thread::spawn(move || {
                    let mine: Vec<usize> = (w..keys).step_by(writers).collect();
                    for round in 1.. {
                        for &i in &mine {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            if put(pick(&addrs, i + round), &key(i), &value(i, round), round as i32) == 0 {
                                acked.lock().unwrap()[i] = Some(round);
                            }
                        }
                    }
                })
            })
            .collect();
        Load { stop, acked, threads }
    }

    /// Per key, the last round acknowledged so far.
    pub fn acked(&self) -> Vec<Option<usize>> {
        self.acked.lock().unwrap().clone()
    }

    pub fn stop(self) -> Vec<Option<usize>> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        self.acked.lock().unwrap().clone()
    }
}

/// Reads every key through the cluster: the last acknowledged round, or
/// the one after it (in flight when the load stopped). Returns the misreads.
pub fn misread(addrs: &[SocketAddr], acked: &[Option<usize>]) -> Vec<String> {
    let keys: Vec<usize> = (0..acked.len()).collect();
    parallel(&keys, 8, |&i| {
        let (code, got, version) = get(pick(addrs, i), &key(i));
        let round = acked[i]?;
        let fits = |r: usize| code == 0 && got == value(i, r) && version == r as i32;
        (!fits(round) && !fits(round + 1))
            .then(|| format!("key {i}: code {code}, version {version}, acknowledged round {round}"))
    })
    .into_iter()
    .flatten()
    .collect()
}

//! Helpers for integration tests: real `dynakv` processes on loopback with
//! free ports, killed by pid when the guard drops, and small protocol calls.
#![allow(dead_code)]

use dynakv::client;
use dynakv::proto::kv::KVResponse;
use dynakv::wire::Command;
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
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `count` loopback addresses whose UDP and TCP ports were free just now.
pub fn free_addrs(count: usize) -> Vec<SocketAddr> {
    let mut held = Vec::new();
    let mut addrs = Vec::new();
    while addrs.len() < count {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr) {
            addrs.push(addr);
            held.push((udp, tcp));
        }
    }
    addrs
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

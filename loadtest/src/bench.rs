//! Closed-loop load: C clients driven by a few threads, each client one
//! logical request at a time on a fresh socket and message id, with the
//! spec's retry schedule and OVERLOAD back-off, checking every GET against
//! what that client last wrote.

use crate::histogram::Histogram;
use crate::rng::{Rng, Zipf};
use dynakv::protocol::wire::{self, Command, ErrorCode};
use dynakv::storage::hash::key_hash;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use rand::{Rng as _, RngCore as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which node each request goes to.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    Random,
    One(usize),
}

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub servers: Vec<SocketAddr>,
    pub target: Target,
    pub clients: usize,
    pub threads: usize,
    pub duration: Duration,
    /// Stop after this many completed logical requests (all clients together).
    pub requests_max: u64,
    /// `None`: PUT then GET of the same key (the graders' pattern). `Some(r)`:
    /// each request is a GET with probability r, else a PUT.
    pub read_ratio: Option<f64>,
    pub keys_per_client: usize,
    pub zipf: Option<f64>,
    pub key_bytes: usize,
    pub value_bytes_min: usize,
    pub value_bytes_max: usize,
    pub timeouts_ms: Vec<u64>,
    pub seed: u64,
    /// Against an echo server: a reply is any datagram carrying our id.
    pub echo: bool,
    /// Each client takes its keys in order, each once per pass, instead of
    /// at random: with `read_ratio` 0 and `clients * keys_per_client`
    /// requests, every key is written exactly once (a fill before a run
    /// with the same seed, clients and keys).
    pub keys_in_order: bool,
    pub progress: bool,
}

/// One second of the run.
#[derive(Clone, Default)]
pub struct Second {
    pub completed: u64,
    pub latency: Histogram,
}

#[derive(Clone, Default)]
pub struct BenchResult {
    pub elapsed: Duration,
    /// Logical requests answered (any code).
    pub completed: u64,
    /// Logical requests answered with the expected outcome.
    pub good: u64,
    pub sends: u64,
    /// Sends that repeated an earlier one (same id, after a timeout).
    pub retries: u64,
    pub timeouts: u64,
    pub overloads: u64,
    /// GETs that returned a value or version other than the last write.
    pub wrong_reads: u64,
    pub errors_by_code: [u64; 8],
    pub unknown_codes: u64,
    pub latency: Histogram,
    pub timeline: Vec<Second>,
    /// First few correctness failures, for the report.
    pub failures: Vec<String>,
    /// CPU seconds the servers spent over the run, when they are local
    /// (see [`crate::server_cpu`]).
    pub server_cpu_seconds: Option<f64>,
}

impl BenchResult {
    /// Server CPU microseconds per completed request, when known.
    pub fn server_cpu_us_per_request(&self) -> Option<f64> {
        self.server_cpu_seconds.map(|s| s * 1e6 / self.completed.max(1) as f64)
    }

    fn merge(&mut self, other: BenchResult) {
        self.completed += other.completed;
        self.good += other.good;
        self.sends += other.sends;
        self.retries += other.retries;
        self.timeouts += other.timeouts;
        self.overloads += other.overloads;
        self.wrong_reads += other.wrong_reads;
        self.unknown_codes += other.unknown_codes;
        for (mine, theirs) in self.errors_by_code.iter_mut().zip(other.errors_by_code) {
            *mine += theirs;
        }
        self.latency.merge(&other.latency);
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), Second::default());
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            mine.completed += theirs.completed;
            mine.latency.merge(&theirs.latency);
        }
        self.failures.extend(other.failures);
        self.failures.truncate(FAILURES_KEPT);
    }

    pub fn throughput(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn goodput(&self) -> f64 {
        self.good as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn retry_rate(&self) -> f64 {
        self.retries as f64 / self.sends.max(1) as f64
    }
}

const FAILURES_KEPT: usize = 20;

/// What a client believes is stored under one of its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Absent,
    Value {
        hash: u64,
        len: usize,
        version: i32,
    },
    /// A write timed out: either outcome is acceptable until the next write.
    Unknown,
}

/// Checks a GET reply against the model; `Err` describes a wrong read.
pub fn check_get(expect: Expect, code: u32, value: &[u8], version: i32) -> Result<(), String> {
    match (expect, code) {
        (Expect::Unknown, _) => Ok(()),
        (Expect::Absent, 1) => Ok(()),
        (Expect::Absent, 0) => Err(format!(
            "expected no value, got {} bytes version {version}",
            value.len()
        )),
        (
            Expect::Value {
                hash,
                len,
                version: expected,
            },
            0,
        ) => {
            if value.len() == len && key_hash(value) == hash && version == expected {
                Ok(())
            } else {
                Err(format!(
                    "expected {len} bytes version {expected}, got {} bytes version {version}{}",
                    value.len(),
                    if value.len() == len && version == expected {
                        " (different bytes)"
                    } else {
                        ""
                    }
                ))
            }
        }
        (Expect::Value { version, .. }, 1) => Err(format!("expected version {version}, got NON_EXISTENT_KEY")),
        (_, other) => Err(format!("GET answered code {other}")),
    }
}

#[derive(Clone, Copy)]
enum Op {
    Put { key: usize, version: i32 },
    Get { key: usize },
}

struct InFlight {
    socket: UdpSocket,
    id: [u8; 16],
    datagram: Vec<u8>,
    server: SocketAddr,
    attempt: usize,
    deadline: Instant,
}

struct Client {
    rng: Rng,
    keys: Vec<Vec<u8>>,
    model: Vec<Expect>,
    op: Op,
    /// The value of an in-flight PUT (for the model once acknowledged).
    value: Vec<u8>,
    started: Instant,
    flight: Option<InFlight>,
    /// Waiting after an OVERLOAD reply until this instant.
    backoff_until: Option<Instant>,
    next_version: i32,
    /// The next key with `keys_in_order`.
    next_key: usize,
}

struct Driver<'a> {
    config: &'a BenchConfig,
    zipf: Option<Zipf>,
    result: BenchResult,
    started: Instant,
    buffer: Vec<u8>,
    completed_shared: &'a AtomicU64,
    stop: &'a AtomicBool,
}

impl Driver<'_> {
    fn pick_server(&self, rng: &mut Rng) -> SocketAddr {
        match self.config.target {
            Target::Random => self.config.servers[rng.random_range(0..self.config.servers.len())],
            Target::One(index) => self.config.servers[index],
        }
    }

    fn pick_key(&self, rng: &mut Rng) -> usize {
        match &self.zipf {
            Some(zipf) => zipf.sample(rng),
            None => rng.random_range(0..self.config.keys_per_client),
        }
    }

    fn next_op(&self, client: &mut Client) -> Op {
        match (self.config.read_ratio, client.op) {
            // The graders' pattern: PUT k, then GET k, then a new PUT.
            (None, Op::Put { key, .. }) => Op::Get { key },
            _ => {
                let key = if self.config.keys_in_order {
                    client.next_key = (client.next_key + 1) % self.config.keys_per_client;
                    client.next_key
                } else {
                    self.pick_key(&mut client.rng)
                };
                let is_read = self
                    .config
                    .read_ratio
                    .is_some_and(|ratio| client.rng.random::<f64>() < ratio);
                if is_read {
                    Op::Get { key }
                } else {
                    client.next_version = client.next_version.wrapping_add(1);
                    Op::Put {
                        key,
                        version: client.next_version,
                    }
                }
            }
        }
    }

    /// Starts (or restarts after OVERLOAD) the client's current op on a fresh
    /// socket with a fresh id.
    fn launch(&mut self, token: Token, client: &mut Client, poll: &Poll, now: Instant) {
        let server = self.pick_server(&mut client.rng);
        let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .expect("literal");
        let Ok(mut socket) = UdpSocket::bind(bind) else {
            client.backoff_until = Some(now + Duration::from_millis(10));
            return;
        };
        if poll
            .registry()
            .register(&mut socket, token, Interest::READABLE)
            .is_err()
        {
            client.backoff_until = Some(now + Duration::from_millis(10));
            return;
        }
        let local = socket.local_addr().unwrap_or(bind);
        let id = dynakv::protocol::client::new_message_id(local);
        let request = match client.op {
            Op::Put { key, version } => dynakv::protocol::client::request(
                Command::Put,
                Some(&client.keys[key]),
                Some(&client.value),
                Some(version),
            ),
            Op::Get { key } => dynakv::protocol::client::request(Command::Get, Some(&client.keys[key]), None, None),
        };
        let datagram = wire::encode_request(&id, &request);
        let _ = socket.send_to(&datagram, server);
        self.result.sends += 1;
        client.flight = Some(InFlight {
            socket,
            id,
            datagram,
            server,
            attempt: 0,
            deadline: now + Duration::from_millis(self.config.timeouts_ms[0]),
        });
    }

    fn begin(&mut self, token: Token, client: &mut Client, poll: &Poll, now: Instant) {
        client.op = self.next_op(client);
        if let Op::Put { .. } = client.op {
            let span = self.config.value_bytes_max - self.config.value_bytes_min + 1;
            let len = self.config.value_bytes_min + client.rng.random_range(0..span);
            client.value.resize(len, 0);
            client.rng.fill_bytes(&mut client.value);
        }
        client.started = now;
        self.launch(token, client, poll, now);
    }

    fn finish_flight(&mut self, client: &mut Client, poll: &Poll) {
        if let Some(mut flight) = client.flight.take() {
            let _ = poll.registry().deregister(&mut flight.socket);
        }
    }

    fn record_latency(&mut self, client: &Client, now: Instant) {
        let us = now.duration_since(client.started).as_micros() as u64;
        self.result.latency.record(us);
        let second = now.duration_since(self.started).as_secs() as usize;
        if self.result.timeline.len() <= second {
            self.result.timeline.resize(second + 1, Second::default());
        }
        self.result.timeline[second].completed += 1;
        self.result.timeline[second].latency.record(us);
    }

    /// Handles a reply; returns true when the op is finished.
    fn on_reply(&mut self, client: &mut Client, datagram: &[u8], now: Instant) -> bool {
        let Some(flight) = &client.flight else {
            return false;
        };
        if self.config.echo {
            let matches = wire::decode_msg(datagram).is_ok_and(|(id, _)| id == flight.id);
            if matches {
                self.result.completed += 1;
                self.result.good += 1;
                self.record_latency(client, now);
            }
            return matches;
        }
        let Ok(response) = wire::decode_reply(datagram, &flight.id) else {
            return false;
        };
        let code = response.errCode.unwrap_or(0);
        if code == ErrorCode::Overload as u32 {
            self.result.overloads += 1;
            let wait = response.overloadWaitTime.unwrap_or(100).clamp(1, 5_000) as u64;
            client.backoff_until = Some(now + Duration::from_millis(wait));
            return true;
        }
        self.result.completed += 1;
        self.record_latency(client, now);
        match client.op {
            Op::Put { key, version } => {
                if code == 0 {
                    self.result.good += 1;
                    client.model[key] = Expect::Value {
                        hash: key_hash(&client.value),
                        len: client.value.len(),
                        version,
                    };
                } else {
                    self.count_error(code);
                    if code != ErrorCode::OutOfSpace as u32 {
                        client.model[key] = Expect::Unknown;
                    }
                }
            }
            Op::Get { key } => {
                let value = response.value.as_deref().unwrap_or_default();
                let version = response.version.unwrap_or(0);
                match check_get(client.model[key], code, value, version) {
                    Ok(()) => self.result.good += 1,
                    Err(why) => {
                        self.result.wrong_reads += 1;
                        if self.result.failures.len() < FAILURES_KEPT {
                            self.result
                                .failures
                                .push(format!("GET {}: {why}", hex(&client.keys[key])));
                        }
                    }
                }
                if code > 1 {
                    self.count_error(code);
                }
            }
        }
        true
    }

    fn count_error(&mut self, code: u32) {
        match self.result.errors_by_code.get_mut(code as usize) {
            Some(count) => *count += 1,
            None => self.result.unknown_codes += 1,
        }
    }

    /// Retransmits or gives up on expired flights. Returns true when the op is finished.
    fn on_deadline(&mut self, client: &mut Client, now: Instant) -> bool {
        let Some(flight) = &mut client.flight else {
            return false;
        };
        if now < flight.deadline {
            return false;
        }
        flight.attempt += 1;
        if flight.attempt < self.config.timeouts_ms.len() {
            let _ = flight.socket.send_to(&flight.datagram, flight.server);
            self.result.sends += 1;
            self.result.retries += 1;
            flight.deadline = now + Duration::from_millis(self.config.timeouts_ms[flight.attempt]);
            return false;
        }
        self.result.timeouts += 1;
        if let Op::Put { key, .. } = client.op {
            client.model[key] = Expect::Unknown;
        }
        true
    }

    /// Drives clients `first_client..first_client + count` until the run's
    /// time is up or it is told to stop.
    fn run(mut self, first_client: usize, count: usize) -> BenchResult {
        let mut poll = Poll::new().expect("epoll");
        let mut events = Events::with_capacity(1024);
        let mut clients: Vec<Client> = (0..count).map(|i| self.new_client(first_client + i)).collect();
        let now = Instant::now();
        for (i, client) in clients.iter_mut().enumerate() {
            // Start from a "GET done" state so the first op is a PUT.
            client.op = Op::Get { key: 0 };
            self.begin(Token(i), client, &poll, now);
        }
        self.event_loop(&mut poll, &mut events, &mut clients);
        self.result.elapsed = self.started.elapsed();
        self.result
    }

    /// Client `global` of the whole run: its own keys and random stream,
    /// derived from the seed, so that a run with the same seed asks the same.
    fn new_client(&self, global: usize) -> Client {
        let mut rng = crate::rng::seeded(self.config.seed ^ (global as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let keys = (0..self.config.keys_per_client)
            .map(|k| make_key(self.config.seed, global, k, self.config.key_bytes, &mut rng))
            .collect();
        Client {
            rng,
            keys,
            model: vec![Expect::Absent; self.config.keys_per_client],
            op: Op::Get { key: 0 },
            value: Vec::new(),
            started: self.started,
            flight: None,
            backoff_until: None,
            next_version: 0,
            next_key: 0,
        }
    }

    /// Takes replies, retransmits and starts the next ops until the run's
    /// time is up or it is told to stop.
    fn event_loop(&mut self, poll: &mut Poll, events: &mut Events, clients: &mut [Client]) {
        let deadline = self.started + self.config.duration;
        let mut next_scan = Instant::now();
        loop {
            let _ = poll.poll(events, Some(Duration::from_millis(2)));
            let now = Instant::now();
            let stopping = now >= deadline || self.stop.load(Ordering::Relaxed);
            if stopping {
                break;
            }
            let mut finished = self.take_replies(events, clients, now);
            if now >= next_scan {
                self.scan_deadlines(clients, poll, now, &mut finished);
                next_scan = now + Duration::from_millis(2);
            }
            for index in finished {
                self.next_after(Token(index), &mut clients[index], poll, now);
            }
        }
    }

    /// Reads the replies the ready sockets hold; returns the clients whose
    /// op they finished.
    fn take_replies(&mut self, events: &Events, clients: &mut [Client], now: Instant) -> Vec<usize> {
        let mut finished = Vec::new();
        for event in events {
            let index = event.token().0;
            let client = &mut clients[index];
            let mut buffer = std::mem::take(&mut self.buffer);
            while let Some(flight) = &client.flight
                && let Ok((len, _)) = flight.socket.recv_from(&mut buffer)
            {
                if self.on_reply(client, &buffer[..len], now) {
                    finished.push(index);
                    break;
                }
            }
            self.buffer = buffer;
        }
        finished
    }

    /// Retransmits or gives up on expired flights (adding the finished ones
    /// to `finished`), and relaunches the clients whose OVERLOAD wait is over.
    fn scan_deadlines(&mut self, clients: &mut [Client], poll: &Poll, now: Instant, finished: &mut Vec<usize>) {
        for (index, client) in clients.iter_mut().enumerate() {
            if self.on_deadline(client, now) {
                finished.push(index);
            }
            if client.backoff_until.is_some_and(|until| now >= until) {
                client.backoff_until = None;
                self.launch(Token(index), client, poll, now);
            }
        }
    }

    /// After a client's op finished: counts it toward `requests_max` and
    /// begins its next op, unless it waits out an OVERLOAD (then the same
    /// op is launched again once the wait is over).
    fn next_after(&mut self, token: Token, client: &mut Client, poll: &Poll, now: Instant) {
        self.finish_flight(client, poll);
        if client.backoff_until.is_some() {
            return;
        }
        let total = self.completed_shared.fetch_add(1, Ordering::Relaxed) + 1;
        if total >= self.config.requests_max {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.begin(token, client, poll, now);
    }
}

/// A key unique to (run seed, client, index), `len` bytes (at least 1).
fn make_key(seed: u64, client: usize, index: usize, len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut key = vec![0u8; len.max(1)];
    rng.fill_bytes(&mut key);
    let tag = dynakv::storage::hash::fmix64(seed ^ ((client as u64) << 24) ^ index as u64).to_le_bytes();
    for (byte, t) in key.iter_mut().zip(tag) {
        *byte = t;
    }
    key
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the load and returns the merged result.
pub fn run(config: &BenchConfig) -> BenchResult {
    let completed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads = config.threads.clamp(1, config.clients.max(1));
    let result = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        let mut first = 0;
        for t in 0..threads {
            let count = config.clients / threads + usize::from(t < config.clients % threads);
            let completed = &*completed;
            let stop = &*stop;
            let handle = std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn_scoped(scope, move || {
                    let driver = Driver {
                        config,
                        zipf: config.zipf.and_then(|s| Zipf::new(config.keys_per_client, s)),
                        result: BenchResult::default(),
                        started,
                        buffer: vec![0u8; 65_536],
                        completed_shared: completed,
                        stop,
                    };
                    driver.run(first, count)
                })
                .expect("spawn load thread");
            first += count;
            handles.push(handle);
        }
        if config.progress {
            let stop = &*stop;
            let completed = &*completed;
            std::thread::Builder::new()
                .name("progress".into())
                .spawn_scoped(scope, move || progress(started, config.duration, completed, stop))
                .expect("spawn progress thread");
        }
        let mut total = BenchResult::default();
        for handle in handles {
            total.merge(handle.join().expect("load thread"));
        }
        stop.store(true, Ordering::Relaxed);
        total
    });
    let mut result = result;
    result.elapsed = started.elapsed().min(config.duration.max(Duration::from_millis(1)));
    if result.elapsed.is_zero() {
        result.elapsed = started.elapsed();
    }
    result
}

/// Once a second, what completed: rewritten in place on a terminal, one
/// line per report otherwise (a log, a pipe, a file).
fn progress(started: Instant, duration: Duration, completed: &AtomicU64, stop: &AtomicBool) {
    use std::io::IsTerminal;
    let in_place = std::io::stderr().is_terminal();
    let mut last = 0;
    let mut tick = started;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(100));
        if tick.elapsed() >= Duration::from_secs(1) {
            let now = completed.load(Ordering::Relaxed);
            let line = format!(
                "  {:>5.1} s  {:>9} requests  {:>9.0} req/s",
                started.elapsed().as_secs_f64(),
                now,
                (now - last) as f64 / tick.elapsed().as_secs_f64()
            );
            if in_place {
                eprint!("\r{line}   ");
            } else {
                eprintln!("{line}");
            }
            last = now;
            tick = Instant::now();
        }
    }
    if in_place {
        eprintln!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_get_catches_wrong_value_version_and_missing_key() {
        let value = b"hello".to_vec();
        let expect = Expect::Value {
            hash: key_hash(&value),
            len: 5,
            version: 3,
        };
        assert!(check_get(expect, 0, &value, 3).is_ok());
        assert!(
            check_get(expect, 0, b"hellO", 3)
                .unwrap_err()
                .contains("different bytes")
        );
        assert!(check_get(expect, 0, &value, 2).is_err(), "stale version");
        assert!(check_get(expect, 1, b"", 0).is_err(), "lost write");
        assert!(check_get(Expect::Absent, 0, b"x", 0).is_err(), "value from nowhere");
        assert!(check_get(Expect::Absent, 1, b"", 0).is_ok());
        assert!(check_get(Expect::Unknown, 0, b"anything", 9).is_ok());
        assert!(check_get(expect, 4, b"", 0).is_err());
    }
}

//! The simulated world of one run: nodes, clients, a network and the
//! faults of the run's mix, on virtual time. One event at a time, in time
//! order (ties in the order they were scheduled), every random choice from
//! the seed: the same seed replays the same run, event for event.

use crate::client::{self, Client, Op, OpKind};
use crate::config::{Mix, RunConfig};
use crate::disk::SimDisk;
use crate::fault_plan::{self, Aim, Fault};
use crate::history::{History, Outcome, ReadClass, show};
use crate::items::{ItemClients, Step};
use crate::network::Network;
use crate::node::{Cluster, Out, Running, StoredRecord};
use dynakv::cluster::internal::{self, Internal};
use dynakv::cluster::universe::Universe;
use dynakv::node::cluster_core::ROUND_MS;
use dynakv::node::durability::journal::Fsync;
use dynakv::protocol::wire::{self, ErrorCode};
use dynakv::storage::hash::{bucket_of_key, fmix64, key_hash};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::{Cell, RefCell};
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

/// The simulated wall clock at time 0, Unix ms (2027-01-15).
const EPOCH_UNIX_MS: u64 = 1_800_000_000_000;
/// Datagrams a stopped node's socket holds before the kernel drops more.
const SOCKET_QUEUE_MAX: usize = 4096;
/// After the faults heal, reads must be right again within this long.
const SETTLE_AFTER_HEAL_MS: u64 = 8_000;
/// Think time between a client's operations.
const THINK_MS: std::ops::Range<u64> = 5..60;
/// Events a run may take at most (a run that loops forever is a failure).
const EVENTS_MAX: u64 = 20_000_000;
/// How much later than its interval a periodic sync may come, at most (the
/// shard's timer).
const SYNC_SLACK_MS: u64 = 50;
/// The longest a client may be answered OVERLOAD for one request: the
/// README's bound, plus a node's first wait of it (a node counts from the
/// first request it sees, which may come a moment after another's) and
/// gossip's spread of a view (each node counts a cause the view shows from
/// when its own view showed it).
const OVERLOADED_US_MAX: u64 = (dynakv::node::waits::WAITS_MS_MAX + 2_000) * 1_000;

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dest {
    Node(usize),
    Client(usize),
    /// A client of DynamoDB items (see [`crate::items`]).
    Item(usize),
}

#[derive(Debug)]
enum Event {
    Datagram {
        to: Dest,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    /// Frames on the stream `from` -> `to`, sent while the link was at `link`.
    Frames {
        from: usize,
        to: usize,
        link: u64,
        frames: Vec<Vec<u8>>,
    },
    RouterTick {
        node: usize,
        life: u64,
        at_us: u64,
    },
    /// The worker shards of a node take what is queued for them.
    Shards {
        node: usize,
        life: u64,
        at_us: u64,
    },
    Round {
        node: usize,
        life: u64,
    },
    ClientWake {
        client: usize,
        token: u64,
    },
    ItemWake {
        client: usize,
        token: u64,
    },
    Fault(Fault),
}

struct Scheduled {
    at_us: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Earliest first in a max-heap.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at_us, other.seq).cmp(&(self.at_us, self.seq))
    }
}

struct SimNode {
    addr: SocketAddr,
    running: Option<Running>,
    /// Bumped at every start: timers of an earlier life are ignored.
    life: u64,
    paused: bool,
    /// Datagrams queued in the socket of a stopped node.
    socket_queue: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Stream frames waiting for a stopped node (TCP keeps them).
    waiting_frames: VecDeque<(usize, u64, Vec<Vec<u8>>)>,
    next_tick_us: u64,
    /// Its data directory: outlives the node's processes (used when the
    /// run keeps data on disk).
    disk: Arc<SimDisk>,
    /// When its worker shards run next (0: not scheduled).
    shards_due_us: u64,
    /// A crash waits for this node's next acknowledgement of a write.
    crash_at_ack: bool,
    /// The records its store held when it went down, every one of its
    /// writes committed (a crash keeps what was written; a power loss with
    /// `--fsync always`, what was committed before the step it struck in):
    /// what it recovers must hold all of them, or newer.
    durable_view: Option<Vec<StoredRecord>>,
    /// The same view before the step under way (a power loss aimed into
    /// a disk operation strikes in the middle of a step).
    view_before_step: Option<Vec<StoredRecord>>,
    /// It went down with a data directory and has not started again since.
    went_down: bool,
    skew_ms: i64,
    /// It left the universe (a reload removed it, it drained and exited):
    /// it is not started again.
    left: bool,
    /// The servers file it is started with next, where not the operator's
    /// current one (a stale copy).
    servers_file: Option<Vec<String>>,
}

impl SimNode {
    /// A node not started yet, with an empty disk, its clock `skew_ms` off.
    fn new(addr: SocketAddr, skew_ms: i64) -> SimNode {
        SimNode {
            addr,
            running: None,
            life: 0,
            paused: false,
            socket_queue: VecDeque::new(),
            waiting_frames: VecDeque::new(),
            next_tick_us: 0,
            disk: Arc::new(SimDisk::default()),
            shards_due_us: 0,
            crash_at_ack: false,
            durable_view: None,
            view_before_step: None,
            went_down: false,
            skew_ms,
            left: false,
            servers_file: None,
        }
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct RunOutcome {
    pub violations: Vec<String>,
    /// The key of the first violation, if it is about a key.
    pub failing_key: Option<Vec<u8>>,
    pub trace_hash: u64,
    pub events: u64,
    pub reads: crate::history::ReadCounts,
    pub ops_acked: u64,
    pub ops_unknown: u64,
    /// PUTs refused for lack of room, and reads answered "cannot serve it now".
    pub ops_refused: u64,
    pub reads_unavailable: u64,
    /// Crashes and SHUTDOWNs carried out, and skipped because replicas - 1
    /// other nodes were away or catching up.
    pub crashes: u64,
    pub crashes_skipped: u64,
    pub simulated_ms: u64,
    /// Operations of DynamoDB items recorded (see [`crate::items`]).
    pub item_ops: usize,
    /// For a failing key: what its clients did, and (when asked) what
    /// reached nodes about it.
    pub key_trace: String,
}

/// Settings of how a run reports, not of what it does.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    /// Trace every node message about this key.
    pub key: Option<Vec<u8>>,
    /// Keep the nodes' log lines in the key trace.
    pub logs: bool,
}

pub struct World {
    config: RunConfig,
    rng: ChaCha8Rng,
    /// Draws for how nodes run inside (shard delays, stream breaks): apart
    /// from `rng`, so that a plain run draws what it always did.
    inside_rng: ChaCha8Rng,
    now_us: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    cluster: Cluster,
    nodes: Vec<SimNode>,
    clients: Vec<Client>,
    /// The operator (WIPEOUT, SHUTDOWN) and the final reader.
    operator: usize,
    checker: usize,
    by_addr: HashMap<SocketAddr, Dest>,
    history: History,
    /// A power loss of every node waiting for its aim.
    power_armed: Option<Aim>,
    network: Network,
    healed: bool,
    clients_stopped: bool,
    wipe_pending: bool,
    checking: bool,
    failing_key_index: Option<usize>,
    final_reads: VecDeque<usize>,
    outcome: RunOutcome,
    trace: u64,
    watch: Watch,
    /// Lines of the key trace (node messages, log lines), with their time.
    watched: Rc<RefCell<Vec<(u64, String)>>>,
    /// The node and time of the step under way, for log lines.
    stepping: Rc<Cell<(usize, u64)>>,
    /// The servers file the operator has now: the serving nodes of the
    /// universe the last reload made (a node is started with it).
    servers_file: Vec<String>,
    /// Operator messages signed so far (each a fresh sequence number).
    operator_seq: u64,
    /// When a node last started (or restarted).
    last_start_us: u64,
    items: ItemClients,
}

fn mix_hash(hash: u64, value: u64) -> u64 {
    fmix64(hash ^ value).wrapping_add(0x9e37_79b9_7f4a_7c15)
}

impl World {
    pub fn new(config: RunConfig, watch: Watch) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed);
        let n = config.nodes + config.spare_nodes;
        let addrs: Vec<SocketAddr> = (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 20_000 + i as u16)))
            .collect();
        let cluster = World::cluster(&config, addrs.clone(), &mut rng);
        let servers_file = cluster.names[..config.nodes].to_vec();
        let nodes: Vec<SimNode> = (addrs.iter())
            .map(|&addr| SimNode::new(addr, World::draw_skew_ms(&config, &mut rng)))
            .collect();
        let mut history = History::default();
        let mut clients = World::clients_with_keys(&config, &mut history);
        let operator = clients.len();
        clients.push(Client::new(operator, Vec::new()));
        let checker = clients.len();
        clients.push(Client::new(checker, Vec::new()));
        let items = ItemClients::new(config.item_clients, ChaCha8Rng::seed_from_u64(config.seed ^ 0x17e5));
        let mut by_addr = World::destinations(&nodes, &clients);
        by_addr.extend(items.addrs().map(|(client, addr)| (addr, Dest::Item(client))));
        World {
            items,
            last_start_us: 0,
            network: Network::new(n, config.links.loss, config.links.duplicate),
            inside_rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x1751_de01),
            power_armed: None,
            config,
            rng,
            now_us: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            cluster,
            nodes,
            clients,
            operator,
            checker,
            by_addr,
            history,
            healed: false,
            clients_stopped: false,
            wipe_pending: false,
            checking: false,
            failing_key_index: None,
            final_reads: VecDeque::new(),
            outcome: RunOutcome::default(),
            trace: 0,
            watch,
            watched: Rc::new(RefCell::new(Vec::new())),
            stepping: Rc::new(Cell::new((0, 0))),
            servers_file,
            operator_seq: 0,
        }
    }

    /// The cluster of the run's nodes at `addrs`, its secret drawn from
    /// `rng`, the run's settings inside each node.
    fn cluster(config: &RunConfig, addrs: Vec<SocketAddr>, rng: &mut ChaCha8Rng) -> Cluster {
        let mut secret = [0u8; 32];
        rng.fill(&mut secret);
        let secret = dynakv::cluster::secret::Secret::from_bytes(&secret);
        let mut cluster = Cluster::new(addrs, config.replicas, secret, config.bugs);
        // Spare nodes are not in the first universe: a reload adds them.
        cluster.universe = Universe::from_servers(&cluster.names[..config.nodes]);
        cluster.workers = config.inside.workers;
        cluster.backlog_max = config.inside.backlog_max;
        cluster.fsync = config.storage();
        cluster.store_bytes = config.store_bytes;
        cluster
    }

    /// How far a node's clock is off at the start, within the run's skew.
    fn draw_skew_ms(config: &RunConfig, rng: &mut ChaCha8Rng) -> i64 {
        if config.skew_ms_max > 0 {
            rng.random_range(-(config.skew_ms_max as i64)..=config.skew_ms_max as i64)
        } else {
            0
        }
    }

    /// The clients that read and write, each with keys of its own (added
    /// to `history`, which judges what is read of them).
    fn clients_with_keys(config: &RunConfig, history: &mut History) -> Vec<Client> {
        let mut clients = Vec::new();
        for c in 0..config.clients {
            let keys = (0..config.keys_per_client)
                .map(|k| history.add_key(format!("key-{c}-{k}").into_bytes()))
                .collect();
            clients.push(Client::new(c, keys));
        }
        clients
    }

    /// Who is at each address: where a datagram sent there goes.
    fn destinations(nodes: &[SimNode], clients: &[Client]) -> HashMap<SocketAddr, Dest> {
        let mut by_addr = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            by_addr.insert(node.addr, Dest::Node(i));
        }
        for client in clients {
            by_addr.insert(client.addr, Dest::Client(client.index));
        }
        by_addr
    }

    fn schedule(&mut self, at_us: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at_us,
            seq: self.seq,
            event,
        });
    }

    fn after(&mut self, ms: u64, event: Event) {
        self.schedule(self.now_us + ms * 1_000, event);
    }

    fn unix_ms(&self, node: usize) -> u64 {
        let base = EPOCH_UNIX_MS + self.now_us / 1_000;
        base.saturating_add_signed(self.nodes[node].skew_ms)
    }

    fn fail(&mut self, what: String, key: Option<usize>) {
        if self.outcome.violations.is_empty()
            && let Some(key) = key
        {
            self.outcome.failing_key = Some(self.history.key(key).to_vec());
            self.failing_key_index = Some(key);
        }
        self.outcome.violations.push(what);
    }

    /// Runs to the end; returns what it found.
    pub fn run(mut self) -> RunOutcome {
        let (watched, stepping, keep_logs) = (self.watched.clone(), self.stepping.clone(), self.watch.logs);
        dynakv::log::redirect(Some(Box::new(move |line: &str| {
            if keep_logs {
                let (node, at_us) = stepping.get();
                watched.borrow_mut().push((at_us, format!("node {node} logs: {line}")));
            }
        })));
        for node in 0..self.nodes.len() {
            self.start_node(node);
        }
        self.plan_faults();
        let warmup = self.config.warmup_ms;
        for client in 0..self.config.clients {
            let at = warmup + self.rng.random_range(0..200);
            let token = self.clients[client].next_token();
            self.schedule(at * 1_000, Event::ClientWake { client, token });
        }
        for client in 0..self.items.len() {
            let at = warmup + self.items.think_ms();
            let token = self.items.next_token(client);
            self.schedule(at * 1_000, Event::ItemWake { client, token });
        }
        while let Some(next) = self.queue.pop() {
            self.now_us = next.at_us;
            self.outcome.events += 1;
            self.trace = mix_hash(self.trace, next.at_us);
            if self.outcome.events > EVENTS_MAX {
                self.fail(format!("no end after {EVENTS_MAX} events"), None);
                break;
            }
            let done = self.dispatch(next.event);
            if done || !self.outcome.violations.is_empty() && !self.checking {
                break;
            }
        }
        dynakv::log::redirect(None);
        if !self.items.is_empty() && self.config.items_promised() {
            self.outcome.item_ops = self.items.recorded();
            for wrong in self.items.check(self.now_us) {
                self.fail(format!("DynamoDB item not linearizable: {wrong}"), None);
            }
        }
        self.outcome.trace_hash = self.trace;
        self.outcome.reads = self.history.reads;
        self.outcome.simulated_ms = self.now_us / 1_000;
        let key = self.failing_key_index.or_else(|| {
            let wanted = self.watch.key.as_deref()?;
            (0..self.history.keys()).find(|&k| self.history.key(k) == wanted)
        });
        let mut lines = self.watched.borrow().clone();
        if let Some(key) = key {
            lines.extend(self.history.events(key).iter().cloned());
        }
        lines.sort_by_key(|&(at, _)| at);
        for (at_us, line) in lines {
            self.outcome
                .key_trace
                .push_str(&format!("  {:>9.3} s  {line}\n", at_us as f64 / 1e6));
        }
        self.outcome
    }

    /// Handles one event; true when the run is over.
    fn dispatch(&mut self, event: Event) -> bool {
        match event {
            Event::Datagram { to, from, bytes } => {
                self.trace = mix_hash(self.trace, key_hash(&bytes));
                match to {
                    Dest::Node(node) => self.node_datagram(node, from, bytes),
                    Dest::Client(client) => self.client_reply(client, from, &bytes),
                    Dest::Item(client) => self.item_reply(client, &bytes),
                }
            }
            Event::Frames { from, to, link, frames } => self.node_frames(from, to, link, frames),
            Event::RouterTick { node, life, at_us } => {
                let n = &self.nodes[node];
                if n.life == life && n.next_tick_us == at_us && !n.paused {
                    self.step(node, |running| running.router.tick());
                }
            }
            Event::Shards { node, life, at_us } => {
                let n = &self.nodes[node];
                if n.life == life && n.shards_due_us == at_us && !n.paused {
                    self.nodes[node].shards_due_us = 0;
                    self.step(node, Running::run_shards);
                }
            }
            Event::Round { node, life } => {
                let n = &self.nodes[node];
                if n.life == life && n.running.is_some() {
                    if !n.paused {
                        self.step(node, Running::round);
                    }
                    self.after(ROUND_MS, Event::Round { node, life });
                }
            }
            Event::ClientWake { client, token } => {
                if self.clients[client].token == token {
                    self.client_wake(client);
                }
            }
            Event::ItemWake { client, token } => {
                if self.items.token_counts(client, token) {
                    self.item_wake(client);
                }
            }
            Event::Fault(fault) => return self.fault(fault),
        }
        false
    }

    // ---- nodes ------------------------------------------------------------

    /// Whether node `node` is one the operator runs: a member of the
    /// universe that has not left.
    fn should_run(&self, node: usize) -> bool {
        !self.nodes[node].left && self.cluster.universe.member(&self.cluster.names[node]).is_some()
    }

    fn start_node(&mut self, node: usize) {
        if !self.should_run(node) {
            return;
        }
        self.last_start_us = self.now_us;
        let unix_ms = self.unix_ms(node);
        // Its servers file: the operator's, or the stale copy it was given.
        let file = self.nodes[node]
            .servers_file
            .take()
            .unwrap_or_else(|| self.servers_file.clone());
        let universe = if self.config.resizes() {
            Universe::from_servers(&file)
        } else {
            self.cluster.universe.clone()
        };
        let n = &mut self.nodes[node];
        n.life += 1;
        n.paused = false;
        n.socket_queue.clear();
        n.waiting_frames.clear();
        let started = Running::start_with(&self.cluster, &universe, node, self.now_us, unix_ms, Some(&n.disk));
        let running = match started {
            Ok(running) => running,
            // The aimed power loss struck while it started.
            Err(_) if self.power_armed == Some(Aim::MidDisk) && !n.disk.powered() => {
                n.running = None;
                return self.lose_power_everywhere();
            }
            Err(error) => return self.fail(format!("node {node} could not start: {error}"), None),
        };
        let inside = self.config.inside;
        if inside.stream_refuse > 0.0 {
            running
                .io
                .refuse_streams(inside.stream_refuse, self.config.seed ^ (n.life << 8) ^ node as u64);
        }
        n.running = Some(running);
        n.shards_due_us = 0;
        let life = n.life;
        self.check_recovered(node);
        self.flush(node);
        self.after(ROUND_MS, Event::Round { node, life });
        self.schedule_tick(node, 0);
    }

    fn schedule_tick(&mut self, node: usize, in_ms: u64) {
        let at_us = self.now_us + in_ms * 1_000;
        let n = &mut self.nodes[node];
        if n.next_tick_us > self.now_us && n.next_tick_us <= at_us {
            return;
        }
        n.next_tick_us = at_us;
        let life = n.life;
        self.schedule(at_us, Event::RouterTick { node, life, at_us });
    }

    /// Runs one step of a running, not stopped node at the current time,
    /// then puts what it sent on the network and checks its budget.
    fn step(&mut self, node: usize, work: impl FnOnce(&mut Running)) {
        let unix_ms = self.unix_ms(node);
        let now_us = self.now_us;
        let Some(running) = self.nodes[node].running.as_mut() else {
            return;
        };
        self.stepping.set((node, now_us));
        running.set_clock(now_us, unix_ms);
        let watch_view = self.power_armed == Some(Aim::MidDisk) && self.config.storage() == Some(Fsync::Always);
        let view = (watch_view && !running.journal_failing()).then(|| running.records());
        work(running);
        self.nodes[node].view_before_step = view;
        if self.power_armed == Some(Aim::MidDisk) && !self.nodes[node].disk.powered() {
            // The first disk went dark: every one does.
            return self.lose_power_everywhere();
        }
        let Some(running) = self.nodes[node].running.as_mut() else {
            return;
        };
        let shards_due = if running.shards_have_work() {
            // A worker thread wakes a little after work is queued for it.
            Some(self.inside_rng.random_range(20..1_500))
        } else if running.shards_pending() {
            Some(dynakv::node::shard::TICK_MS * 1_000)
        } else {
            None
        };
        let next = running.router.tick_in_ms();
        let over = running.over_budget();
        let shut = running.io.shut_down();
        self.flush(node);
        if let Some((used, limit)) = over {
            self.fail(
                format!("node {node} holds {used} bytes, over its budget of {limit}"),
                None,
            );
        }
        if shut {
            // A node that is not a serving member exits once it has handed
            // its data to the others: it has left.
            let leaving = self.nodes[node].running.as_ref().is_some_and(|r| r.ctx.view().leaving);
            self.crash(node);
            self.nodes[node].left |= leaving;
            return;
        }
        self.schedule_tick(node, next);
        if let Some(in_us) = shards_due {
            self.schedule_shards(node, in_us);
        }
    }

    /// Runs the node's worker shards `in_us` from now, unless they run sooner.
    fn schedule_shards(&mut self, node: usize, in_us: u64) {
        let at_us = self.now_us + in_us;
        let n = &mut self.nodes[node];
        if n.shards_due_us > self.now_us && n.shards_due_us <= at_us {
            return;
        }
        n.shards_due_us = at_us;
        let life = n.life;
        self.schedule(at_us, Event::Shards { node, life, at_us });
    }

    fn node_datagram(&mut self, node: usize, from: SocketAddr, bytes: Vec<u8>) {
        self.watch_message(node, &bytes);
        let n = &mut self.nodes[node];
        if n.running.is_none() {
            return;
        }
        if n.paused {
            if n.socket_queue.len() < SOCKET_QUEUE_MAX {
                n.socket_queue.push_back((from, bytes));
            }
            return;
        }
        self.step(node, |running| running.datagram(&bytes, from));
    }

    fn node_frames(&mut self, from: usize, to: usize, link: u64, frames: Vec<Vec<u8>>) {
        if self.network.link(from, to) != link || self.nodes[to].running.is_none() {
            return;
        }
        for frame in &frames {
            self.watch_message(to, frame);
        }
        if self.nodes[to].paused {
            self.nodes[to].waiting_frames.push_back((from, link, frames));
            return;
        }
        self.step(to, |running| running.frames(&frames));
    }

    /// Puts what a node sent on the network.
    fn flush(&mut self, node: usize) {
        let Some(running) = self.nodes[node].running.as_ref() else {
            return;
        };
        for out in running.io.take() {
            match out {
                Out::Datagram(to, bytes) => {
                    let aimed = self.nodes[node].crash_at_ack || self.power_armed == Some(Aim::AtAck);
                    let acknowledges = aimed && self.acknowledges_a_write(to, &bytes);
                    self.send_datagram(Some(node), to, bytes);
                    if acknowledges && self.power_armed == Some(Aim::AtAck) {
                        return self.lose_power_everywhere();
                    }
                    if acknowledges {
                        // Dies right after the acknowledgement: nothing it
                        // sent after it in this step leaves.
                        return self.crash_at_ack(node);
                    }
                }
                Out::Stream(to, frames) => {
                    if let Some(&Dest::Node(to)) = self.by_addr.get(&to) {
                        self.send_frames(node, to, frames);
                    }
                }
            }
        }
    }

    /// Whether a datagram is a client's answer that a write was done.
    fn acknowledges_a_write(&self, to: SocketAddr, bytes: &[u8]) -> bool {
        if !matches!(self.by_addr.get(&to), Some(Dest::Client(_))) {
            return false;
        }
        let Ok((id, _)) = wire::decode_msg(bytes) else {
            return false;
        };
        wire::decode_reply(bytes, &id).is_ok_and(|reply| reply.errCode == Some(0) && reply.value.is_none())
    }

    /// The armed crash of `node`, if it still leaves a copy of everything
    /// elsewhere (see [`World::unavailable`]).
    fn crash_at_ack(&mut self, node: usize) {
        self.nodes[node].crash_at_ack = false;
        let others = self.unavailable().iter().filter(|&&other| other != node).count();
        let guarded = self.may_lose_copies(&Fault::Crash(node)) && !self.config.crash_beyond_replication;
        if others >= self.config.down_max && guarded {
            self.outcome.crashes_skipped += 1;
            return;
        }
        if self.watch.key.is_some() {
            let line = format!("fault: Crash({node}) right after it acknowledged a write");
            self.watched.borrow_mut().push((self.now_us, line));
        }
        self.outcome.crashes += 1;
        self.crash(node);
    }

    fn delay_us(&mut self) -> u64 {
        let links = self.config.links;
        let tail = -(links.delay_mean_us as f64) * (1.0 - self.rng.random::<f64>()).ln();
        (links.delay_floor_us + tail as u64).min(links.delay_max_us)
    }

    fn send_datagram(&mut self, from_node: Option<usize>, to: SocketAddr, bytes: Vec<u8>) {
        let Some(&dest) = self.by_addr.get(&to) else {
            return;
        };
        let from = match from_node {
            Some(node) => self.nodes[node].addr,
            None => return,
        };
        if let (Some(a), Dest::Node(b)) = (from_node, dest)
            && self.network.is_cut(a, b)
        {
            return;
        }
        for _ in 0..self.network.copies(&mut self.rng) {
            let delay = self.delay_us();
            let event = Event::Datagram {
                to: dest,
                from,
                bytes: bytes.clone(),
            };
            self.schedule(self.now_us + delay, event);
        }
    }

    /// A datagram from a client (never cut, but lost and delayed alike).
    fn client_send(&mut self, client: usize, node: usize, bytes: Vec<u8>) {
        if self.network.lost(&mut self.rng) {
            return;
        }
        let from = self.clients[client].addr;
        let delay = self.delay_us();
        let event = Event::Datagram {
            to: Dest::Node(node),
            from,
            bytes,
        };
        self.schedule(self.now_us + delay, event);
    }

    fn send_frames(&mut self, from: usize, to: usize, frames: Vec<Vec<u8>>) {
        if self.network.is_cut(from, to) {
            // The connection cannot carry them: it breaks.
            self.network.break_link(from, to);
            return;
        }
        let arrives = self.now_us + self.delay_us();
        let (at, link) = self.network.carry(from, to, arrives);
        self.schedule(at, Event::Frames { from, to, link, frames });
    }

    /// Whether a fault may lose copies of acknowledged writes: a crash of a
    /// node that keeps no data on disk, or a power loss before a periodic
    /// sync. Such a fault is skipped when replicas - 1 other nodes are away.
    fn may_lose_copies(&self, fault: &Fault) -> bool {
        match fault {
            Fault::Crash(_) | Fault::Shutdown(_) => self.config.storage().is_none(),
            Fault::PowerLoss(_) => !matches!(self.config.storage(), Some(Fsync::Always)),
            _ => false,
        }
    }

    /// Every node's power at once; back up to 3 s later.
    fn lose_power_everywhere(&mut self) {
        self.power_armed = None;
        if self.watch.key.is_some() {
            self.watched
                .borrow_mut()
                .push((self.now_us, "fault: power lost everywhere".into()));
        }
        for node in 0..self.nodes.len() {
            self.lose_power(node);
        }
        if let Some(Fsync::Periodic { interval_ms }) = self.config.storage() {
            // Writes acknowledged within the last sync interval may be
            // gone from every copy.
            let window_us = (interval_ms + SYNC_SLACK_MS) * 1_000;
            self.history.power_lost(self.now_us, window_us);
        }
        let back = self.rng.random_range(300..3_000);
        self.after(back, Event::Fault(Fault::PowerBack));
    }

    /// A power loss: the process crashes, its disk keeps what was synced.
    /// With `--fsync always` the records its store holds (or held before
    /// the step in which its disk went dark) are what it must recover.
    fn lose_power(&mut self, node: usize) {
        let was_up = self.nodes[node].running.is_some();
        let struck_mid_step = !self.nodes[node].disk.powered();
        // Keys the step took out (a bucket dropped that is no longer
        // replicated here, a tombstone collected) may be gone from the
        // disk or not: neither breaks a promise.
        let kept_by_step: Option<std::collections::HashSet<Vec<u8>>> = (was_up && struck_mid_step)
            .then(|| self.nodes[node].running.as_ref())
            .flatten()
            .map(|running| running.records().into_iter().map(|(key, _, _)| key).collect());
        self.crash(node);
        let n = &mut self.nodes[node];
        if was_up && struck_mid_step {
            n.durable_view = (n.view_before_step.take()).map(|before| match &kept_by_step {
                Some(kept) => before.into_iter().filter(|(key, _, _)| kept.contains(key)).collect(),
                None => before,
            });
        }
        if self.config.storage() != Some(Fsync::Always) {
            // What was written and not synced may be gone.
            n.durable_view = None;
        }
        let seed = self.inside_rng.random::<u64>();
        self.nodes[node].disk.lose_power(seed);
    }

    /// What a node read back from its disk after it went down: nothing no
    /// client wrote, and every record it held (after a power loss, only
    /// with `--fsync always`).
    fn check_recovered(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        let (view, went_down) = (n.durable_view.take(), std::mem::take(&mut n.went_down));
        let Some(running) = n.running.as_ref() else {
            return;
        };
        if !went_down || self.cluster.fsync.is_none() {
            return;
        }
        let recovered = running.records();
        for (key, value, _) in &recovered {
            let written = (self.items.was_proposed(key, value.as_deref()))
                .unwrap_or_else(|| self.history.was_written(key, value.as_deref()));
            if !written {
                let what = format!(
                    "node {node} recovered {} = {} from its disk: never written",
                    show(Some(key)),
                    show(value.as_deref())
                );
                return self.fail(what, None);
            }
        }
        for (key, value, stamp) in view.unwrap_or_default() {
            let kept = recovered.iter().any(|(k, _, s)| *k == key && *s >= stamp);
            if !kept {
                let what = format!(
                    "node {node} lost {} = {} (stamp {:#x}) in a power loss with --fsync always",
                    show(Some(&key)),
                    show(value.as_deref()),
                    stamp.0
                );
                return self.fail(what, None);
            }
        }
    }

    fn crash(&mut self, node: usize) {
        let durable = self.cluster.fsync.is_some();
        let n = &mut self.nodes[node];
        if let Some(running) = n.running.as_ref().filter(|_| durable) {
            // What it wrote outlives the process.
            n.durable_view = (!running.journal_failing() && n.disk.powered()).then(|| running.records());
            n.went_down = true;
        }
        n.running = None;
        n.paused = false;
        n.crash_at_ack = false;
        n.socket_queue.clear();
        n.waiting_frames.clear();
        n.life += 1;
        self.network.break_links_of(node);
    }

    /// With `--trace-key`: what reaches node `to` about the key.
    fn watch_message(&mut self, to: usize, bytes: &[u8]) {
        let Some(key) = self.watch.key.clone() else {
            return;
        };
        if !internal::is_internal(bytes) {
            if let Ok((_, wire::Parsed::Keyed(op))) = wire::decode_client(bytes, wire::Origin::Client)
                && op.key().as_bytes() == key
            {
                self.watched
                    .borrow_mut()
                    .push((self.now_us, format!("node {to} gets {op:?}")));
            }
            return;
        }
        let Ok((envelope, message)) = internal::decode_unchecked(&self.cluster.secret, bytes) else {
            return;
        };
        let messages = match message {
            Internal::Batch(messages) => messages,
            message => vec![message],
        };
        let sender = (self.cluster.names.iter())
            .position(|name| dynakv::cluster::universe::node_id(name) == envelope.sender)
            .unwrap_or(usize::MAX);
        for message in &messages {
            self.watch_entries(to, sender, message, &key);
        }
    }

    fn watch_entries(&mut self, to: usize, sender: usize, message: &Internal, key: &[u8]) {
        let entries: Vec<&internal::Entry> = match message {
            Internal::Replicate { entry, .. } => vec![entry],
            Internal::Chunk(chunk) => chunk.entries.iter().collect(),
            _ => Vec::new(),
        };
        for entry in entries.into_iter().filter(|e| e.key == key) {
            let value = (!entry.tombstone).then_some(entry.value.as_slice());
            let line = format!(
                "node {to} gets from {} {} stamp {:#x}: {}",
                sender,
                if matches!(message, Internal::Replicate { .. }) {
                    "Replicate"
                } else {
                    "Chunk"
                },
                entry.stamp.0,
                show(value)
            );
            self.watched.borrow_mut().push((self.now_us, line));
        }
    }

    // ---- clients ------------------------------------------------------------

    fn random_up_node(&mut self) -> usize {
        // Clients do not know who is up: any node of the servers file, as
        // the graders pick.
        if self.config.resizes() {
            let pick = self.rng.random_range(0..self.servers_file.len());
            let name = &self.servers_file[pick];
            return self.cluster.names.iter().position(|n| n == name).unwrap_or(0);
        }
        let n = self.nodes.len();
        self.rng.random_range(0..n)
    }

    fn client_wake(&mut self, client: usize) {
        if self.clients[client].op.is_some() {
            return self.client_timeout(client);
        }
        if client == self.checker {
            return self.next_final_read();
        }
        if let Some((kind, node)) = self.clients[client].script.first().cloned() {
            self.clients[client].script.remove(0);
            return self.begin(client, kind, None, node, true);
        }
        if self.clients_stopped || self.clients[client].held || self.clients[client].keys.is_empty() {
            return self.maybe_wipe();
        }
        let keys = self.clients[client].keys.clone();
        let key = keys[self.rng.random_range(0..keys.len())];
        let kind = match self.rng.random_range(0..100) {
            0..45 => {
                let value = self.clients[client].next_value();
                OpKind::Put {
                    value: self.padded(value),
                }
            }
            45..80 => OpKind::Get,
            _ => OpKind::Remove,
        };
        let node = self.random_up_node();
        self.begin(client, kind, Some(key), node, false);
    }

    /// A value padded to a random length, where the run asks for long ones.
    fn padded(&mut self, mut value: Vec<u8>) -> Vec<u8> {
        if self.config.value_bytes_max > value.len() {
            let len = self.rng.random_range(value.len()..=self.config.value_bytes_max);
            value.resize(len, b'.');
        }
        value
    }

    /// Starts an operation: a fresh id, the first send, its timer.
    fn begin(&mut self, client: usize, kind: OpKind, key: Option<usize>, node: usize, pinned: bool) {
        let id = self.clients[client].next_id();
        let key_bytes = key.map(|k| self.history.key(k).to_vec());
        let version = (self.now_us / 1_000) as i32;
        let datagram = client::request(&id, &kind, key_bytes.as_deref(), version);
        let write = match (&kind, key) {
            (OpKind::Put { value }, Some(k)) => Some(self.history.begin_write(k, Some(value.clone()))),
            (OpKind::Remove, Some(k)) => Some(self.history.begin_write(k, None)),
            _ => None,
        };
        if let Some(k) = key {
            let what = match &kind {
                OpKind::Put { value } => format!("PUT {}", show(Some(value))),
                other => format!("{other:?}").to_uppercase(),
            };
            let event = format!("client {client} sends {what} to node {node}");
            self.history.note(k, self.now_us, event);
        }
        self.clients[client].op = Some(Op {
            kind,
            key,
            write,
            id,
            datagram,
            node,
            sends: 0,
            invoked_us: self.now_us,
            pinned,
            overloaded_since_us: None,
        });
        self.client_resend(client);
    }

    fn client_resend(&mut self, client: usize) {
        let Some(op) = self.clients[client].op.as_mut() else {
            return;
        };
        op.sends += 1;
        let (node, datagram, sends) = (op.node, op.datagram.clone(), op.sends);
        self.client_send(client, node, datagram);
        if self.clients[client]
            .op
            .as_ref()
            .is_some_and(|op| op.kind == OpKind::Shutdown)
        {
            // A node that shuts down does not answer: one send, no wait.
            self.clients[client].op = None;
            return self.think(client);
        }
        let wait = client::timeout_after(sends).unwrap_or(0);
        let token = self.clients[client].next_token();
        self.after(wait, Event::ClientWake { client, token });
    }

    fn client_timeout(&mut self, client: usize) {
        let Some(op) = self.clients[client].op.as_ref() else {
            return;
        };
        if client::timeout_after(op.sends + 1).is_some() {
            return self.client_resend(client);
        }
        // Gave up: the outcome is unknown.
        let op = self.clients[client].op.take().expect("checked above");
        if let (Some(key), Some(write)) = (op.key, op.write) {
            self.history.end_write(key, write, Outcome::Unknown, self.now_us);
            self.history.note(key, self.now_us, format!("client {client} gave up"));
            self.outcome.ops_unknown += 1;
        }
        if client == self.checker {
            if let Some(key) = op.key {
                let what = format!("final read of {} got no answer", show(Some(self.history.key(key))));
                self.fail(what, Some(key));
            }
            return self.next_final_read();
        }
        self.think(client);
    }

    /// An item client's timer: its SWAP sent again or given up, or a new
    /// one started at a node that is up (its executor's node).
    fn item_wake(&mut self, client: usize) {
        let node = if self.items.in_flight(client) {
            0
        } else {
            self.random_up_node()
        };
        let step = self.items.wake(client, node, self.clients_stopped, self.now_us);
        let wake_ms = match step {
            Some(Step::Send {
                node,
                datagram,
                wake_ms,
            }) => {
                let from = self.items.addr(client);
                let n = &self.nodes[node];
                // An executor of a node that is down or stopped sends nothing.
                if n.running.is_some() && !n.paused {
                    self.step(node, |running| running.submit(&datagram, from));
                }
                wake_ms
            }
            Some(Step::Wait { wake_ms }) => wake_ms,
            None => return,
        };
        let token = self.items.next_token(client);
        self.after(wake_ms, Event::ItemWake { client, token });
    }

    fn item_reply(&mut self, client: usize, bytes: &[u8]) {
        if self.items.reply(client, bytes, self.now_us) {
            let wait = self.items.think_ms();
            let token = self.items.next_token(client);
            self.after(wait, Event::ItemWake { client, token });
        }
    }

    fn think(&mut self, client: usize) {
        let wait = self.rng.random_range(THINK_MS);
        let token = self.clients[client].next_token();
        self.after(wait, Event::ClientWake { client, token });
    }

    fn client_reply(&mut self, client: usize, from: SocketAddr, bytes: &[u8]) {
        let Some(op) = self.clients[client].op.as_ref() else {
            return;
        };
        let Ok(response) = wire::decode_reply(bytes, &op.id) else {
            return;
        };
        let code = response.errCode.unwrap_or(0);
        if code == ErrorCode::Overload as u32 {
            // Wait as told, then a new request (new id, maybe another node).
            let mut op = self.clients[client].op.take().expect("checked above");
            if let (Some(key), Some(Dest::Node(node))) = (op.key, self.by_addr.get(&from).copied()) {
                let what = format!(
                    "client {client}: node {node} answers OVERLOAD, wait {:?} ms",
                    response.overloadWaitTime
                );
                self.history.note(key, self.now_us, what);
            }
            // A run of OVERLOADs ends, as a node's count of them does, after
            // a gap (the client's tries timed out meanwhile).
            // Nodes count waits in memory: one that restarts counts afresh.
            let since_us = match op.overloaded_since_us {
                Some((since, last)) if self.now_us - last <= dynakv::node::waits::RUN_GAP_MS * 1_000 => {
                    since.max(self.last_start_us)
                }
                _ => self.now_us,
            };
            op.overloaded_since_us = Some((since_us, self.now_us));
            if self.now_us - since_us > OVERLOADED_US_MAX {
                let what = format!(
                    "a request was answered OVERLOAD for {} ms, past the bound of {} ms",
                    (self.now_us - since_us) / 1_000,
                    dynakv::node::waits::WAITS_MS_MAX
                );
                self.fail(what, op.key);
            }
            let wait = u64::try_from(response.overloadWaitTime.unwrap_or(100))
                .unwrap_or(100)
                .clamp(1, 5_000);
            let id = self.clients[client].next_id();
            let key_bytes = op.key.map(|k| self.history.key(k).to_vec());
            op.datagram = client::request(&id, &op.kind, key_bytes.as_deref(), (self.now_us / 1_000) as i32);
            op.id = id;
            op.sends = 0;
            if !op.pinned {
                op.node = self.random_up_node();
            }
            self.clients[client].op = Some(op);
            // The wake sends it (a timer fires with the op in flight).
            let token = self.clients[client].next_token();
            self.after(wait, Event::ClientWake { client, token });
            return;
        }
        let op = self.clients[client].op.take().expect("checked above");
        self.trace = mix_hash(self.trace, u64::from(code));
        if let (Some(key), Some(Dest::Node(node))) = (op.key, self.by_addr.get(&from).copied()) {
            self.history
                .note(key, self.now_us, format!("client {client}: node {node} answers"));
        }
        let answered_by = match self.by_addr.get(&from) {
            Some(&Dest::Node(node)) => Some(node),
            _ => None,
        };
        self.complete(client, op, code, response.value.as_deref(), answered_by);
    }

    fn complete(&mut self, client: usize, op: Op, code: u32, value: Option<&[u8]>, answered_by: Option<usize>) {
        let now = self.now_us;
        if let Some(key) = op.key {
            self.history
                .note(key, now, format!("client {client} hears {code} {}", show(value)));
        }
        match (&op.kind, op.key, op.write) {
            (OpKind::Put { .. }, Some(key), Some(write)) => {
                let outcome = match code {
                    0 => Outcome::Acked,
                    2 => Outcome::Refused,
                    _ => Outcome::Unknown,
                };
                self.outcome.ops_acked += u64::from(outcome == Outcome::Acked);
                self.outcome.ops_refused += u64::from(outcome == Outcome::Refused);
                self.history.end_write(key, write, outcome, self.now_us);
                if let (Outcome::Acked, OpKind::Put { value }) = (outcome, &op.kind) {
                    self.note_stamp(key, write, Some(value.clone()), answered_by);
                }
            }
            (OpKind::Remove, Some(key), Some(write)) => {
                let outcome = if code <= 1 { Outcome::Acked } else { Outcome::Unknown };
                self.outcome.ops_acked += u64::from(outcome == Outcome::Acked);
                self.history.end_write(key, write, outcome, self.now_us);
                if outcome == Outcome::Acked {
                    self.note_stamp(key, write, None, answered_by);
                }
            }
            (OpKind::Get, Some(key), _) => {
                let read = match code {
                    0 => Some(value.unwrap_or_default()),
                    1 => None,
                    // A definite "cannot serve it now", after the bucket's
                    // clients were asked to wait as long as they may be:
                    // as NOT_FOUND, owed the value only once healed.
                    4 => {
                        self.judge_unavailable(client, key, op.invoked_us);
                        return self.think(client);
                    }
                    other => {
                        self.fail(format!("GET answered {other}"), Some(key));
                        return self.think(client);
                    }
                };
                self.judge_read(client, key, read, op.invoked_us);
            }
            _ => {}
        }
        if client == self.checker {
            return self.next_final_read();
        }
        if client == self.operator && op.kind == OpKind::Wipeout {
            let more = self.clients[client]
                .script
                .iter()
                .any(|(kind, _)| *kind == OpKind::Wipeout);
            if !more {
                self.wiped();
            }
            let gap = self.rng.random_range(0..500);
            let token = self.clients[client].next_token();
            return self.after(gap, Event::ClientWake { client, token });
        }
        self.think(client);
    }

    /// The stamp an acknowledged write was stored with, read from the
    /// coordinator that answered, if what it holds is still that write.
    fn note_stamp(&mut self, key: usize, write: usize, effect: Option<Vec<u8>>, answered_by: Option<usize>) {
        let Some(running) = answered_by.and_then(|node| self.nodes[node].running.as_ref()) else {
            return;
        };
        if let Some((held, stamp)) = running.stored_with_stamp(self.history.key(key))
            && held == effect
        {
            self.history.stamped(key, write, stamp.0);
        }
    }

    /// A read answered INTERNAL_FAILURE: its bucket's clients were asked
    /// to wait as long as they may be (its replicas still catching up,
    /// which after a run of faults may outlast the settling time): allowed
    /// but in the final reads, when the cluster owes every value.
    fn judge_unavailable(&mut self, client: usize, key: usize, _invoked_us: u64) {
        self.outcome.reads_unavailable += 1;
        if client == self.checker {
            let what = format!(
                "read of {} answered INTERNAL_FAILURE",
                show(Some(self.history.key(key)))
            );
            self.fail(what, Some(key));
        }
    }

    /// Counts a read, and fails the run for one that breaks a promise: a
    /// value never written, ever; a stale or missing one where only nodes
    /// crash or stop (the product promises the right value or NOT_FOUND
    /// for a key whose replicas are all away, never an old one), or once
    /// faults have been healed for a while, or in the final reads.
    fn judge_read(&mut self, client: usize, key: usize, read: Option<&[u8]>, invoked_us: u64) {
        let class = self.history.read(key, invoked_us, read);
        let strict_mix = matches!(
            self.config.mix,
            Mix::Calm | Mix::Crash | Mix::Pause | Mix::Wipe | Mix::Resize | Mix::Full
        );
        let settled = self.healed && invoked_us >= (self.config.healed_at_ms() + SETTLE_AFTER_HEAL_MS) * 1_000;
        let final_read = client == self.checker;
        let broken = match class {
            ReadClass::Fresh => false,
            ReadClass::Foreign => true,
            ReadClass::Stale => strict_mix || settled || final_read,
            // Last writer wins by stamp: where clocks disagree, an earlier
            // write stamped later wins over a later one (README, Writes).
            ReadClass::Outranked => self.config.skew_ms_max == 0 && !self.config.clock_jumps(),
            // NOT_FOUND is the promised answer while every replica of the
            // key's bucket is away: only healed clusters owe the value.
            ReadClass::Missing => settled || final_read,
        };
        if broken {
            let what = format!(
                "{} read of {}: {} ({class:?}), expected {}",
                if final_read { "final" } else { "client" },
                show(Some(self.history.key(key))),
                show(read),
                self.history.describe_allowed(key, invoked_us)
            );
            self.fail(what, Some(key));
        }
    }

    // ---- faults ------------------------------------------------------------

    /// Lays out the run's faults in time, from the seed.
    fn plan_faults(&mut self) {
        let faults = fault_plan::plan(&self.config, self.nodes.len(), &mut self.rng, &mut self.inside_rng);
        for (at_us, fault) in faults {
            self.schedule(at_us, Event::Fault(fault));
        }
    }

    /// Nodes that cannot give or take a copy now: down, paused, cut off
    /// from another node, or back but not yet caught up (not ready in
    /// their own view). The product promises to lose no acknowledged
    /// write while at most replicas - 1 nodes are like this at once.
    fn unavailable(&self) -> Vec<usize> {
        let n = self.nodes.len();
        (0..n)
            .filter(|&node| self.should_run(node))
            .filter(|&node| {
                let cut_off = self.network.is_cut_off(node);
                let serving = self.nodes[node].running.as_ref().is_some_and(|running| {
                    let ctx = &running.ctx;
                    ctx.view().liveness.ready[ctx.self_index] && !ctx.away.is_set()
                });
                self.nodes[node].paused || cut_off || !serving
            })
            .collect()
    }

    /// Carries out a fault (or a step of the run's course: heal, stop the
    /// clients, check); true when the run is over.
    fn fault(&mut self, fault: Fault) -> bool {
        self.trace = mix_hash(self.trace, 0xfa17);
        if self.watch.key.is_some() {
            self.watched
                .borrow_mut()
                .push((self.now_us, format!("fault: {fault:?}")));
        }
        if let Fault::Crash(node) | Fault::Shutdown(node) | Fault::PowerLoss(node) = &fault
            && !self.crash_allowed(*node, &fault)
        {
            return false;
        }
        match fault {
            Fault::Crash(node) => self.crash_now_or_at_ack(node),
            Fault::Shutdown(node) => self.send_shutdown(node),
            Fault::PowerLoss(node) => {
                if self.nodes[node].running.is_some() {
                    self.lose_power(node);
                }
            }
            Fault::PowerLossAll(Aim::Now) => self.lose_power_everywhere(),
            Fault::PowerLossAll(aim) => self.arm_power_loss(aim),
            Fault::PowerBack => self.start_stopped_nodes(),
            Fault::Restart(node) => {
                // A crash still waiting for an acknowledgement is off.
                self.nodes[node].crash_at_ack = false;
                if self.nodes[node].running.is_none() {
                    self.start_node(node);
                }
            }
            Fault::Pause(node) => {
                if self.nodes[node].running.is_some() {
                    self.nodes[node].paused = true;
                }
            }
            Fault::Resume(node) => self.resume(node),
            Fault::Partition { cut, outbound, inbound } => self.network.partition(&cut, outbound, inbound),
            Fault::EndPartition => self.network.end_partition(),
            Fault::BreakStream { from, to } => self.network.break_link(from, to),
            Fault::ClockJump { node, by_ms } => {
                let skew = self.nodes[node].skew_ms + by_ms;
                // Clocks stay within what last-writer-wins assumes.
                self.nodes[node].skew_ms = skew.clamp(-4_000, 4_000);
            }
            Fault::Wipe => {
                if !self.healed {
                    for client in 0..self.config.clients {
                        self.clients[client].held = true;
                    }
                    self.wipe_pending = true;
                    self.maybe_wipe();
                }
            }
            Fault::Heal => self.heal(),
            Fault::Reload => self.reload(),
            Fault::Join(node) => self.start_node(node),
            Fault::ReloadAgain => self.reload_again(),
            Fault::StopClients => self.clients_stopped = true,
            Fault::Check => return self.check(),
        }
        false
    }

    /// Whether `node` may go down by `fault` now, counting the crash
    /// carried out or skipped.
    ///
    /// A crash of a node that keeps no data on disk (or a power loss
    /// before a periodic sync) loses the node's copies. With replicas - 1
    /// other nodes away or catching up, it may take a write's last copy:
    /// beyond what the product promises to survive, so it is skipped (its
    /// restart then finds the node running). A node with its data on disk
    /// loses nothing.
    fn crash_allowed(&mut self, node: usize, fault: &Fault) -> bool {
        let guarded = self.may_lose_copies(fault) && !self.config.crash_beyond_replication;
        let unavailable = self.unavailable();
        let others = unavailable.iter().filter(|&&other| other != node).count();
        if guarded && others >= self.config.down_max {
            if self.watch.key.is_some() {
                let line = format!("fault skipped: {fault:?}, {unavailable:?} already away or catching up");
                self.watched.borrow_mut().push((self.now_us, line));
            }
            self.outcome.crashes_skipped += 1;
            return false;
        }
        self.outcome.crashes += 1;
        true
    }

    /// Crashes a running node now, or (with the run's chance of it) at its
    /// next acknowledgement of a write.
    fn crash_now_or_at_ack(&mut self, node: usize) {
        let at_ack = self.config.inside.crash_at_ack;
        if self.nodes[node].running.is_some() {
            if at_ack > 0.0 && self.inside_rng.random_bool(at_ack) {
                // Counted when it happens.
                self.outcome.crashes -= 1;
                self.nodes[node].crash_at_ack = true;
            } else {
                self.crash(node);
            }
        }
    }

    /// The operator's SHUTDOWN to `node`, sent at once (nobody waits for an
    /// answer; lost, it is no crash).
    fn send_shutdown(&mut self, node: usize) {
        let operator = self.operator;
        let id = self.clients[operator].next_id();
        let datagram = client::request(&id, &OpKind::Shutdown, None, 0);
        self.client_send(operator, node, datagram);
    }

    /// A power loss of every node, waiting for its aim: an acknowledged
    /// write, or the disks' next few operations (each disk is told after
    /// how many its power goes).
    fn arm_power_loss(&mut self, aim: Aim) {
        if aim == Aim::MidDisk {
            // Half of them into the next compaction of any node: the first
            // disk to reach its operation takes every node's power.
            let into_compaction = self.inside_rng.random_bool(0.5);
            for node in 0..self.nodes.len() {
                let disk = &self.nodes[node].disk;
                if into_compaction {
                    disk.lose_power_in_next_compaction(self.inside_rng.random_range(1..8));
                } else {
                    disk.lose_power_after(self.inside_rng.random_range(1..40));
                }
            }
        }
        self.power_armed = Some(aim);
    }

    /// Starts every node that is down.
    fn start_stopped_nodes(&mut self) {
        for node in 0..self.nodes.len() {
            if self.nodes[node].running.is_none() {
                self.start_node(node);
            }
        }
    }

    /// Cuts the links from the `cut` nodes to the rest (`outbound`) and
    /// from the rest to them (`inbound`), breaking the streams on them.
    /// The end of the faults: the network whole and clean again, a power
    /// loss that never struck called off, every node running.
    fn heal(&mut self) {
        self.healed = true;
        if self.power_armed.take() == Some(Aim::MidDisk) {
            // Never struck: the disks take every operation again.
            for node in 0..self.nodes.len() {
                self.nodes[node].disk.lose_power_after(u64::MAX / 2);
            }
        }
        self.network.heal();
        for node in 0..self.nodes.len() {
            if self.nodes[node].running.is_none() {
                self.start_node(node);
            } else {
                self.resume(node);
            }
        }
    }

    /// A reload: up to three spare nodes added, up to replicas - 1
    /// serving ones removed (never below the replica count), the servers
    /// file reordered; the signed universe sent to each running member
    /// with a chance drawn for the reload (the others learn it from their
    /// peers); the added nodes started within two seconds, some with a
    /// stale servers file that lacks the other added nodes.
    fn reload(&mut self) {
        let current = self.cluster.universe.clone();
        let names = self.cluster.names.clone();
        let spares: Vec<usize> = (0..names.len())
            .filter(|&node| current.member(&names[node]).is_none() && !self.nodes[node].left)
            .collect();
        let mut file = self.servers_file.clone();
        // Any shrink that leaves as many serving nodes as replicas: every
        // replica of some buckets may leave at once.
        let removable = file.len().saturating_sub(self.config.replicas.max(2));
        let remove = self.rng.random_range(0..=removable);
        let add = self
            .rng
            .random_range(usize::from(remove == 0).min(spares.len())..=spares.len().min(self.config.spare_nodes));
        for _ in 0..remove {
            let at = self.rng.random_range(0..file.len());
            file.remove(at);
        }
        let added: Vec<usize> = spares[..add].to_vec();
        for &node in &added {
            let at = self.rng.random_range(0..=file.len());
            file.insert(at, names[node].clone());
        }
        let up: Vec<String> = (0..names.len())
            .filter(|&node| self.nodes[node].running.is_some())
            .map(|node| names[node].clone())
            .collect();
        let Ok(next) = current.next(&file, self.config.replicas, false, &|name| up.iter().any(|n| n == name)) else {
            return;
        };
        if self.watch.key.is_some() {
            let line = format!("reload: universe {} serving {file:?}", next.version);
            self.watched.borrow_mut().push((self.now_us, line));
        }
        self.cluster.universe = next.clone();
        self.servers_file = file.clone();
        let reach = self.rng.random_range(0.3..=1.0);
        let mut sent = 0;
        for (node, name) in names.iter().enumerate() {
            if next.member(name).is_some() && self.nodes[node].running.is_some() && self.rng.random_bool(reach) {
                self.send_universe(node, &next);
                sent += 1;
            }
        }
        if sent == 0
            && let Some(node) =
                (0..names.len()).find(|&node| self.nodes[node].running.is_some() && next.member(&names[node]).is_some())
        {
            // The tool reports a reload nobody took; the operator runs it
            // again before starting new nodes.
            self.send_universe(node, &next);
        }
        let again = self.rng.random_range(1_000..3_000);
        self.after(again, Event::Fault(Fault::ReloadAgain));
        for &node in &added {
            if added.len() > 1 && self.rng.random_bool(0.3) {
                // A stale copy of the servers file: the other added nodes
                // are missing from it.
                let stale = (file.iter())
                    .filter(|name| **name == names[node] || !added.iter().any(|&a| names[a] == **name))
                    .cloned()
                    .collect();
                self.nodes[node].servers_file = Some(stale);
            }
            let delay = self.rng.random_range(0..2_000);
            self.after(delay, Event::Fault(Fault::Join(node)));
        }
    }

    /// After the final reads of a run whose universe changed: every key
    /// held alike (the same value, or none) by each of the replicas its
    /// bucket's preference list names, all running.
    fn check_replicas(&mut self) {
        let Some(viewer) = (0..self.nodes.len()).find(|&node| {
            let serving = self
                .cluster
                .universe
                .member(&self.cluster.names[node])
                .is_some_and(|m| !m.leaving);
            serving && self.nodes[node].running.is_some()
        }) else {
            return self.fail("no serving node runs at the checks".into(), None);
        };
        let Some(running) = self.nodes[viewer].running.as_ref() else {
            return;
        };
        let (ctx, view) = (running.ctx.clone(), running.ctx.view());
        let wanted = view.copies_wanted();
        for key in 0..self.history.keys() {
            let bytes = self.history.key(key).to_vec();
            let bucket = bucket_of_key(&bytes);
            let replicas: Vec<usize> = (view.preference(bucket).iter())
                .filter_map(|&slot| {
                    let name = &ctx.roster.get(usize::from(slot))?.name;
                    self.cluster.names.iter().position(|n| n == name)
                })
                .collect();
            if replicas.len() != wanted {
                let what = format!(
                    "bucket {bucket} has {} replicas {replicas:?}, not {wanted}",
                    replicas.len()
                );
                return self.fail(what, Some(key));
            }
            let held: Vec<Option<Vec<u8>>> = (replicas.iter())
                .map(|&node| {
                    let stored = self.nodes[node].running.as_ref().and_then(|r| r.stored(&bytes));
                    stored.flatten()
                })
                .collect();
            if held.iter().any(|value| *value != held[0]) {
                let values: Vec<String> = held.iter().map(|v| show(v.as_deref())).collect();
                let what = format!("replicas {replicas:?} of {} hold {values:?}", show(Some(&bytes)));
                return self.fail(what, Some(key));
            }
        }
    }

    /// The current universe again, to each running member that holds an
    /// older one.
    fn reload_again(&mut self) {
        let universe = self.cluster.universe.clone();
        for node in 0..self.nodes.len() {
            let behind =
                (self.nodes[node].running.as_ref()).is_some_and(|r| r.ctx.universe().version < universe.version);
            if behind && universe.member(&self.cluster.names[node]).is_some() {
                self.send_universe(node, &universe);
            }
        }
    }

    /// The operator's signed order to adopt `universe`, to node `node`.
    fn send_universe(&mut self, node: usize, universe: &Universe) {
        self.operator_seq += 1;
        let operator = self.operator;
        let envelope = internal::Envelope {
            sender: internal::OPERATOR,
            to: dynakv::cluster::universe::node_id(&self.cluster.names[node]),
            incarnation: 0x0be7_a702,
            seq: self.operator_seq,
            sent_unix_ms: self.unix_ms(node),
        };
        let message = Internal::Admin {
            message_id: self.clients[operator].next_id().to_vec(),
            command: dynakv::node::admin::ADOPT_UNIVERSE,
            arg: universe.encode(),
        };
        let datagram = internal::encode(&self.cluster.secret, &envelope, &message);
        let from = self.clients[operator].addr;
        let delay = self.delay_us();
        self.schedule(
            self.now_us + delay,
            Event::Datagram {
                to: Dest::Node(node),
                from,
                bytes: datagram,
            },
        );
    }

    fn resume(&mut self, node: usize) {
        if !self.nodes[node].paused {
            return;
        }
        self.nodes[node].paused = false;
        let dropped = self.nodes[node].socket_queue.len();
        self.nodes[node].socket_queue.clear();
        self.step(node, |running| running.resumed(dropped));
        let waiting: Vec<_> = self.nodes[node].waiting_frames.drain(..).collect();
        for (from, link, frames) in waiting {
            self.node_frames(from, node, link, frames);
        }
        self.schedule_tick(node, 0);
    }

    /// Once every client is idle (a WIPEOUT is pending): the operator wipes
    /// every node in turn, a few hundred ms apart; then clients go on.
    fn maybe_wipe(&mut self) {
        if !self.wipe_pending || self.clients[..self.config.clients].iter().any(|c| c.op.is_some()) {
            return;
        }
        self.wipe_pending = false;
        let operator = self.operator;
        for node in 0..self.nodes.len() {
            self.clients[operator].script.push((OpKind::Wipeout, node));
        }
        // Late datagrams of what clients gave up on are gone by then.
        let token = self.clients[operator].next_token();
        self.after(
            1_000,
            Event::ClientWake {
                client: operator,
                token,
            },
        );
    }

    /// The operator's script ran dry after a WIPEOUT of every node.
    fn wiped(&mut self) {
        self.history.wiped(self.now_us);
        for client in 0..self.config.clients {
            self.clients[client].held = false;
            self.think(client);
        }
    }

    /// After the run: membership exact everywhere, then every key read.
    fn check(&mut self) -> bool {
        let n = self.cluster.universe.serving_count();
        let newest = self.cluster.universe.tag();
        for node in 0..self.nodes.len() {
            let member = self.cluster.universe.member(&self.cluster.names[node]);
            let serving = member.is_some_and(|m| !m.leaving);
            if !serving {
                if self.nodes[node].running.is_some() {
                    let what = if member.is_some() {
                        "still leaving"
                    } else {
                        "running outside the universe"
                    };
                    self.fail(format!("node {node} is {what} at the checks"), None);
                }
                continue;
            }
            if let Some(held) = self.nodes[node].running.as_ref().map(|r| r.ctx.universe().version)
                && held != newest.version
            {
                self.fail(
                    format!("node {node} holds universe {held}, not the newest, {}", newest.version),
                    None,
                );
            }
            match &self.nodes[node].running {
                Some(running) if running.membership_count() != n => {
                    let count = running.membership_count();
                    self.fail(
                        format!(
                            "node {node} counts {count} members of {n}, everything up for {} s",
                            self.config.quiet_ms / 1_000 + self.config.healed_ms / 1_000
                        ),
                        None,
                    );
                }
                Some(_) => {}
                None => self.fail(format!("node {node} is down at the checks"), None),
            }
        }
        self.checking = true;
        self.final_reads = (0..self.history.keys()).collect();
        let checker = self.checker;
        let token = self.clients[checker].next_token();
        self.after(0, Event::ClientWake { client: checker, token });
        false
    }

    fn next_final_read(&mut self) {
        let Some(key) = self.final_reads.pop_front() else {
            // Every key read: the run is over.
            if self.config.resizes() {
                self.check_replicas();
            }
            self.queue.clear();
            return;
        };
        let node = self.random_up_node();
        self.begin(self.checker, OpKind::Get, Some(key), node, false);
    }
}

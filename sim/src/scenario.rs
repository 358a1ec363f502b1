//! A small cluster stepped by hand, for scenario tests that each state one
//! rule of the system (raft-rs style): the real node logic on virtual
//! time, a network with a fixed delay, and a test that decides what the
//! network delivers, drops or holds back, when nodes crash, stop and come
//! back, and what clients send. Nothing is random: a scenario runs the same
//! way every time.
//!
//! ```text
//! let mut s = Scenario::new(3, 3);
//! s.settle();
//! s.on(|p| if p.carries(Kind::Ack) { Verdict::Drop } else { Verdict::Deliver });
//! let put = s.send(0, Op::put("k", "v"));
//! s.run_for(1_000);
//! assert!(s.answer(&put).is_none());
//! ```

use crate::disk::SimDisk;
use crate::node::{Cluster, Out, Running};
use dynakv::cluster::internal::{self, Internal};
use dynakv::cluster::secret::Secret;
use dynakv::cluster::universe::Universe;
use dynakv::node::cluster_core::ROUND_MS;
use dynakv::node::context::PlantedBugs;
use dynakv::protocol::client;
use dynakv::protocol::wire::{self, Command};
use dynakv::storage::hash::{BucketId, bucket_of_key};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

/// The wall clock at time 0, Unix ms.
const EPOCH_UNIX_MS: u64 = 1_800_000_000_000;
/// Every datagram and stream frame takes this long to arrive.
pub const LINK_US: u64 = 300;
/// How long [`Scenario::settle`] waits for the cluster to be whole.
const SETTLE_MS_MAX: u64 = 30_000;

/// Where a packet comes from or goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Node(usize),
    Client(SocketAddr),
}

/// A datagram or a stream send on its way, and the node messages in it.
#[derive(Clone, Debug)]
pub struct Packet {
    pub from: End,
    pub to: End,
    /// One datagram, or the frames of one stream send.
    pub payloads: Vec<Vec<u8>>,
    pub stream: bool,
    /// The node messages it carries, batches opened (none for a client's).
    pub messages: Vec<Internal>,
}

impl Packet {
    /// Whether it carries a message `matches` picks.
    pub fn carries(&self, matches: impl Fn(&Internal) -> bool) -> bool {
        self.messages.iter().any(matches)
    }

    pub fn between(&self, from: usize, to: usize) -> bool {
        self.from == End::Node(from) && self.to == End::Node(to)
    }
}

/// What a rule does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Deliver,
    Drop,
    /// Kept aside until [`Scenario::release_held`].
    Hold,
}

/// A client request.
pub struct Op {
    command: Command,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

impl Op {
    pub fn put(key: &str, value: &str) -> Op {
        Op {
            command: Command::Put,
            key: Some(key.as_bytes().to_vec()),
            value: Some(value.as_bytes().to_vec()),
        }
    }
    pub fn get(key: &str) -> Op {
        Op::keyed(Command::Get, key)
    }
    pub fn remove(key: &str) -> Op {
        Op::keyed(Command::Remove, key)
    }
    pub fn wipeout() -> Op {
        Op::plain(Command::Wipeout)
    }
    pub fn membership_count() -> Op {
        Op::plain(Command::GetMembershipCount)
    }
    fn keyed(command: Command, key: &str) -> Op {
        Op {
            command,
            key: Some(key.as_bytes().to_vec()),
            value: None,
        }
    }
    fn plain(command: Command) -> Op {
        Op {
            command,
            key: None,
            value: None,
        }
    }
}

/// A request sent: whom the answer goes to, under which message id.
#[derive(Clone, Debug)]
pub struct Call {
    pub client: SocketAddr,
    pub id: [u8; 16],
    pub datagram: Vec<u8>,
}

/// A reply a client received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub code: u32,
    pub value: Option<Vec<u8>>,
    pub membership_count: Option<i32>,
    pub from: End,
    pub at_us: u64,
}

struct Node {
    running: Option<Running>,
    /// Its data directory, kept across crashes (with `fsync` set).
    disk: Arc<SimDisk>,
    paused: bool,
    /// Bumped at every start: a timer of an earlier life is ignored.
    life: u64,
    next_round_us: u64,
    next_tick_us: u64,
    /// Datagrams that reached it while stopped.
    queued: Vec<Vec<u8>>,
}

type Rule = Box<dyn FnMut(&Packet) -> Verdict>;

pub struct Scenario {
    pub cluster: Cluster,
    nodes: Vec<Node>,
    now_us: u64,
    /// In flight, by arrival time and order sent.
    in_flight: BTreeMap<(u64, u64), Packet>,
    sent: u64,
    rules: Vec<Rule>,
    held: Vec<Packet>,
    answers: HashMap<(SocketAddr, [u8; 16]), Vec<Answer>>,
    /// Every packet delivered to a node, with its time: what tests look at.
    pub delivered: Vec<(u64, Packet)>,
    clients: u16,
    /// The operator's servers file: the nodes a node is started with.
    servers_file: Vec<usize>,
    /// Operator messages signed so far.
    operator_seq: u64,
}

impl Scenario {
    /// `nodes` nodes, `replicas` copies of each key, started together.
    pub fn new(nodes: usize, replicas: usize) -> Scenario {
        Scenario::with(nodes, replicas, |_| {})
    }

    /// As [`Scenario::new`], the cluster's settings changed by `setup`
    /// (workers, a planted bug) before any node starts.
    pub fn with(nodes: usize, replicas: usize, setup: impl FnOnce(&mut Cluster)) -> Scenario {
        Scenario::with_spares(nodes, 0, replicas, setup)
    }

    /// `nodes` nodes started, and `spares` more that a reload may add
    /// (nodes `nodes..nodes + spares`, not started).
    pub fn with_spares(nodes: usize, spares: usize, replicas: usize, setup: impl FnOnce(&mut Cluster)) -> Scenario {
        let addrs = (0..nodes + spares)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 21_000 + i as u16)))
            .collect();
        let mut cluster = Cluster::new(addrs, replicas, Secret::from_bytes(b"scenario"), PlantedBugs::default());
        cluster.universe = Universe::from_servers(&cluster.names[..nodes]);
        setup(&mut cluster);
        let mut scenario = Scenario {
            cluster,
            nodes: Vec::new(),
            now_us: 0,
            in_flight: BTreeMap::new(),
            sent: 0,
            rules: Vec::new(),
            held: Vec::new(),
            answers: HashMap::new(),
            delivered: Vec::new(),
            clients: 0,
            servers_file: (0..nodes).collect(),
            operator_seq: 0,
        };
        for node in 0..nodes + spares {
            scenario.nodes.push(Node {
                running: None,
                disk: Arc::new(SimDisk::default()),
                paused: false,
                life: 0,
                next_round_us: 0,
                next_tick_us: 0,
                queued: Vec::new(),
            });
            if node < nodes {
                scenario.start(node);
            }
        }
        scenario
    }

    pub fn now_ms(&self) -> u64 {
        self.now_us / 1_000
    }

    /// Whether the node's process is up.
    pub fn is_up(&self, node: usize) -> bool {
        self.nodes[node].running.is_some()
    }

    /// The address of node `node`.
    pub fn addr(&self, node: usize) -> SocketAddr {
        self.cluster.addrs[node]
    }

    pub fn node(&self, node: usize) -> &Running {
        self.nodes[node].running.as_ref().expect("the node is up")
    }

    /// Whether a node is up and counts itself ready.
    pub fn is_ready(&self, node: usize) -> bool {
        let running = self.nodes[node].running.as_ref();
        running.is_some_and(|r| r.ctx.view().liveness.ready[r.ctx.self_index] && !r.ctx.away.is_set())
    }

    /// The scenario's number of the node in slot `slot` of `viewer`'s roster.
    fn node_in_slot(&self, viewer: usize, slot: u8) -> usize {
        let name = self
            .node(viewer)
            .ctx
            .roster
            .get(usize::from(slot))
            .map(|known| known.name.clone());
        name.and_then(|name| self.cluster.names.iter().position(|n| *n == name))
            .unwrap_or(usize::MAX)
    }

    /// The slot of node `node` in `viewer`'s roster.
    fn slot_of(&self, viewer: usize, node: usize) -> Option<usize> {
        self.node(viewer).ctx.roster.slot_of_name(&self.cluster.names[node])
    }

    /// The bucket of a key, and its preference list in `node`'s view.
    pub fn replicas_of(&self, node: usize, key: &str) -> (BucketId, Vec<usize>) {
        let bucket = bucket_of_key(key.as_bytes());
        let view = self.node(node).ctx.view();
        let replicas = view
            .preference(bucket)
            .iter()
            .map(|&slot| self.node_in_slot(node, slot));
        (bucket, replicas.collect())
    }

    /// The nodes ranked for a key beyond its replicas, in `node`'s view.
    pub fn stand_ins_of(&self, node: usize, key: &str) -> Vec<usize> {
        let bucket = bucket_of_key(key.as_bytes());
        let view = self.node(node).ctx.view();
        view.stand_ins(bucket)
            .iter()
            .map(|&slot| self.node_in_slot(node, slot))
            .collect()
    }

    /// The version of the universe `node` holds.
    pub fn universe_of(&self, node: usize) -> u64 {
        self.node(node).ctx.universe().version
    }

    /// The operator reloads with a servers file of `serving` (scenario
    /// numbers, in this order): the next universe is signed and sent to
    /// the nodes of `to` (each answers the operator). Returns it.
    pub fn reload(&mut self, serving: &[usize], to: &[usize]) -> Universe {
        let names: Vec<String> = serving.iter().map(|&n| self.cluster.names[n].clone()).collect();
        let replicas = self.cluster.replicas;
        let next = (self.cluster.universe)
            .next(&names, replicas, false, &|_| true)
            .unwrap_or_else(|error| panic!("reload refused: {error}"));
        self.cluster.universe = next.clone();
        self.servers_file = serving.to_vec();
        for &node in to {
            self.send_universe(node, &next);
        }
        next
    }

    /// The operator's signed order to adopt `universe`, to `node`.
    pub fn send_universe(&mut self, node: usize, universe: &Universe) {
        self.operator_seq += 1;
        let envelope = internal::Envelope {
            sender: internal::OPERATOR,
            to: dynakv::cluster::universe::node_id(&self.cluster.names[node]),
            incarnation: 0x5ce7,
            seq: self.operator_seq,
            sent_unix_ms: EPOCH_UNIX_MS + self.now_ms(),
        };
        let message = Internal::Admin {
            message_id: self.operator_seq.to_be_bytes().repeat(2),
            command: dynakv::node::admin::ADOPT_UNIVERSE,
            arg: universe.encode(),
        };
        let datagram = internal::encode(&self.cluster.secret, &envelope, &message);
        let operator = SocketAddr::from(([10, 9, 255, 255], 50_000));
        self.offer(Packet {
            from: End::Client(operator),
            to: End::Node(node),
            payloads: vec![datagram],
            stream: false,
            messages: Vec::new(),
        });
    }

    /// Starts a node a reload added (or any node that is down), with the
    /// operator's servers file as it is now, or with `file` (a stale copy).
    pub fn join(&mut self, node: usize, file: Option<&[usize]>) {
        let file = file.map_or_else(|| self.servers_file.clone(), <[usize]>::to_vec);
        let names: Vec<String> = file.iter().map(|&n| self.cluster.names[n].clone()).collect();
        self.start_with(node, &Universe::from_servers(&names));
    }

    /// A rule every packet meets from now on, before any earlier one; the
    /// first that does not deliver decides.
    pub fn on(&mut self, rule: impl FnMut(&Packet) -> Verdict + 'static) {
        self.rules.insert(0, Box::new(rule));
    }

    pub fn clear_rules(&mut self) {
        self.rules.clear();
    }

    /// Puts the held packets back on the network, in the order they were held.
    pub fn release_held(&mut self) {
        for packet in std::mem::take(&mut self.held) {
            self.deliver_later(packet, 0);
        }
    }

    pub fn held(&self) -> &[Packet] {
        &self.held
    }

    /// Sends a request from a new client address to `node`.
    pub fn send(&mut self, node: usize, op: Op) -> Call {
        self.clients += 1;
        let client = SocketAddr::from(([10, 9, (self.clients >> 8) as u8, self.clients as u8], 50_000));
        let mut id = [0u8; 16];
        id[..2].copy_from_slice(&self.clients.to_be_bytes());
        let version = op.value.as_ref().map(|_| 1);
        let request = client::request(op.command, op.key.as_deref(), op.value.as_deref(), version);
        let call = Call {
            client,
            id,
            datagram: wire::encode_request(&id, &request),
        };
        self.resend(node, &call);
        call
    }

    /// Sends the same request again (same id, same client), to `node`.
    pub fn resend(&mut self, node: usize, call: &Call) {
        let packet = Packet {
            from: End::Client(call.client),
            to: End::Node(node),
            payloads: vec![call.datagram.clone()],
            stream: false,
            messages: Vec::new(),
        };
        self.offer(packet);
    }

    /// The first answer to a call, if one came.
    pub fn answer(&self, call: &Call) -> Option<&Answer> {
        self.answers.get(&(call.client, call.id))?.first()
    }

    /// Every answer to a call.
    pub fn answers(&self, call: &Call) -> &[Answer] {
        self.answers.get(&(call.client, call.id)).map_or(&[], Vec::as_slice)
    }

    /// Sends a request and runs until it is answered (at most `limit_ms`).
    pub fn call(&mut self, node: usize, op: Op, limit_ms: u64) -> Option<Answer> {
        let call = self.send(node, op);
        self.run_until(limit_ms, |s| s.answer(&call).is_some());
        self.answer(&call).cloned()
    }

    /// Runs until every node that is up sees every node that is up alive
    /// and ready, and counts them; panics after [`SETTLE_MS_MAX`].
    pub fn settle(&mut self) {
        let settled = self.run_until(SETTLE_MS_MAX, |s| {
            let up: Vec<usize> = (0..s.nodes.len()).filter(|&n| s.nodes[n].running.is_some()).collect();
            let serving = |n: usize| {
                s.cluster
                    .universe
                    .member(&s.cluster.names[n])
                    .is_some_and(|m| !m.leaving)
            };
            up.iter().all(|&n| {
                let view = s.node(n).ctx.view();
                let sees_all = up.iter().all(|&m| {
                    let slot = s.slot_of(n, m);
                    slot.is_some_and(|slot| view.liveness.alive[slot] && view.liveness.ready[slot])
                });
                let counted = s.node(n).membership_count() == up.iter().filter(|&&m| serving(m)).count();
                !s.nodes[n].paused && s.is_ready(n) && sees_all && counted
            })
        });
        assert!(settled, "the cluster did not settle in {SETTLE_MS_MAX} ms");
    }

    // ---- faults -------------------------------------------------------------

    /// Kills the node: its memory and what is in flight to and from it are gone.
    pub fn crash(&mut self, node: usize) {
        self.nodes[node].running = None;
        self.nodes[node].paused = false;
        self.nodes[node].queued.clear();
        self.in_flight
            .retain(|_, p| p.to != End::Node(node) && (p.from != End::Node(node) || !p.stream));
    }

    /// Cuts the node's power: a crash, and its disk keeps only what was
    /// synced (see [`SimDisk::lose_power`]).
    pub fn lose_power(&mut self, node: usize) {
        self.crash(node);
        self.nodes[node].disk.lose_power(node as u64 ^ self.now_us);
    }

    /// The node's disk.
    pub fn disk(&self, node: usize) -> &Arc<SimDisk> {
        &self.nodes[node].disk
    }

    /// Starts the node again: empty, or from its disk (with `fsync` set).
    pub fn restart(&mut self, node: usize) {
        assert!(self.nodes[node].running.is_none(), "node {node} is up");
        self.start(node);
    }

    /// Stops the node (SIGSTOP): its time stands still, datagrams queue.
    pub fn pause(&mut self, node: usize) {
        self.nodes[node].paused = true;
    }

    /// Continues a stopped node: it drops what queued, as the event loop does.
    pub fn resume(&mut self, node: usize) {
        self.nodes[node].paused = false;
        let dropped = std::mem::take(&mut self.nodes[node].queued).len();
        self.step(node, |running| running.resumed(dropped));
    }

    fn start(&mut self, node: usize) {
        let names: Vec<String> = self
            .servers_file
            .iter()
            .map(|&n| self.cluster.names[n].clone())
            .collect();
        self.start_with(node, &Universe::from_servers(&names));
    }

    fn start_with(&mut self, node: usize, universe: &Universe) {
        let unix_ms = EPOCH_UNIX_MS + self.now_ms();
        let n = &mut self.nodes[node];
        n.life += 1;
        n.paused = false;
        n.queued.clear();
        let running = Running::start_with(&self.cluster, universe, node, self.now_us, unix_ms, Some(&n.disk));
        n.running = Some(running.unwrap_or_else(|error| panic!("node {node} could not start: {error}")));
        // Rounds of different nodes are spread over the round length.
        n.next_round_us = self.now_us + ROUND_MS * 1_000 + node as u64 * 7_000;
        n.next_tick_us = self.now_us;
        self.flush(node);
    }

    // ---- time ---------------------------------------------------------------

    /// Runs `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now_us + ms * 1_000;
        self.run_until_us(end, |_| false);
    }

    /// Runs until `done` holds (checked after every event) or `limit_ms`
    /// passed; returns whether it holds.
    pub fn run_until(&mut self, limit_ms: u64, done: impl Fn(&Scenario) -> bool) -> bool {
        let end = self.now_us + limit_ms * 1_000;
        self.run_until_us(end, done)
    }

    fn run_until_us(&mut self, end_us: u64, done: impl Fn(&Scenario) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let Some((at_us, event)) = self.next_event() else {
                self.now_us = end_us;
                return done(self);
            };
            if at_us > end_us {
                self.now_us = end_us;
                return done(self);
            }
            self.now_us = at_us;
            self.handle(event);
        }
    }

    fn next_event(&self) -> Option<(u64, Event)> {
        let mut next = self.in_flight.keys().next().map(|&key| (key.0, Event::Arrival(key)));
        for (node, n) in self.nodes.iter().enumerate() {
            if n.running.is_none() || n.paused {
                continue;
            }
            for (at, event) in [
                (n.next_round_us, Event::Round(node)),
                (n.next_tick_us, Event::Tick(node)),
            ] {
                if next.as_ref().is_none_or(|(best, _)| at < *best) {
                    next = Some((at, event));
                }
            }
        }
        next
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Arrival(key) => {
                if let Some(packet) = self.in_flight.remove(&key) {
                    self.arrive(packet);
                }
            }
            Event::Round(node) => {
                self.nodes[node].next_round_us = self.now_us + ROUND_MS * 1_000;
                self.step(node, Running::round);
            }
            Event::Tick(node) => self.step(node, |running| {
                running.router.tick();
                running.run_shards();
            }),
        }
    }

    /// Runs one step of an up, running node, then sends what it sent.
    fn step(&mut self, node: usize, work: impl FnOnce(&mut Running)) {
        let (now_us, unix_ms) = (self.now_us, EPOCH_UNIX_MS + self.now_ms());
        let disk = self.nodes[node].disk.clone();
        let Some(running) = self.nodes[node].running.as_mut() else {
            return;
        };
        running.set_clock(now_us, unix_ms);
        work(running);
        // Worker shards run right after what queued work for them.
        running.run_shards();
        if self.cluster.fsync.is_some() && !disk.powered() {
            // Its power went during the step: nothing it sent leaves.
            let _ = running.io.take();
            return self.lose_power(node);
        }
        let tick_ms = if running.shards_pending() {
            dynakv::node::shard::TICK_MS.min(running.router.tick_in_ms())
        } else {
            running.router.tick_in_ms()
        };
        let shut = running.io.shut_down();
        self.nodes[node].next_tick_us = now_us + tick_ms * 1_000;
        self.flush(node);
        if shut {
            self.crash(node);
        }
    }

    // ---- the network ----------------------------------------------------------

    fn flush(&mut self, node: usize) {
        let Some(running) = self.nodes[node].running.as_ref() else {
            return;
        };
        for out in running.io.take() {
            let (to, payloads, stream) = match out {
                Out::Datagram(to, bytes) => {
                    let to = match self.cluster.addrs.iter().position(|&a| a == to) {
                        Some(peer) => End::Node(peer),
                        None => End::Client(to),
                    };
                    (to, vec![bytes], false)
                }
                Out::Stream(to, frames) => match self.cluster.addrs.iter().position(|&a| a == to) {
                    Some(peer) => (End::Node(peer), frames, true),
                    None => continue,
                },
            };
            let messages = payloads.iter().flat_map(|p| self.open(p)).collect();
            let packet = Packet {
                from: End::Node(node),
                to,
                payloads,
                stream,
                messages,
            };
            self.offer(packet);
        }
    }

    /// The node messages in a payload, batches opened.
    fn open(&self, payload: &[u8]) -> Vec<Internal> {
        match internal::decode_unchecked(&self.cluster.secret, payload) {
            Ok((_, Internal::Batch(messages))) => messages,
            Ok((_, message)) => vec![message],
            Err(_) => Vec::new(),
        }
    }

    /// A packet put on the network: the rules decide its fate.
    fn offer(&mut self, packet: Packet) {
        let verdict = (self.rules.iter_mut())
            .map(|rule| rule(&packet))
            .find(|&verdict| verdict != Verdict::Deliver)
            .unwrap_or(Verdict::Deliver);
        match verdict {
            Verdict::Deliver => self.deliver_later(packet, LINK_US),
            Verdict::Drop => {}
            Verdict::Hold => self.held.push(packet),
        }
    }

    fn deliver_later(&mut self, packet: Packet, delay_us: u64) {
        self.sent += 1;
        self.in_flight.insert((self.now_us + delay_us, self.sent), packet);
    }

    fn arrive(&mut self, packet: Packet) {
        match packet.to {
            End::Client(addr) => self.answered(addr, &packet),
            End::Node(node) => {
                let n = &mut self.nodes[node];
                if n.running.is_none() {
                    return;
                }
                if n.paused {
                    n.queued.extend(packet.payloads.iter().cloned());
                    return;
                }
                self.delivered.push((self.now_us, packet.clone()));
                let from = match packet.from {
                    End::Node(peer) => self.cluster.addrs[peer],
                    End::Client(addr) => addr,
                };
                if packet.stream {
                    self.step(node, |running| running.frames(&packet.payloads));
                } else {
                    self.step(node, |running| running.datagram(&packet.payloads[0], from));
                }
            }
        }
    }

    fn answered(&mut self, client: SocketAddr, packet: &Packet) {
        let Some(datagram) = packet.payloads.first() else {
            return;
        };
        let Ok((id, _)) = wire::decode_msg(datagram) else {
            return;
        };
        let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else {
            return;
        };
        let Ok(response) = wire::decode_reply(datagram, &id) else {
            return;
        };
        let answer = Answer {
            code: response.errCode.unwrap_or(0),
            value: response.value.clone(),
            membership_count: response.membershipCount,
            from: packet.from,
            at_us: self.now_us,
        };
        self.answers.entry((client, id)).or_default().push(answer);
    }
}

enum Event {
    Arrival((u64, u64)),
    Round(usize),
    Tick(usize),
}

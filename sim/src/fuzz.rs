//! The bodies of the fuzz targets in `fuzz/` (coverage-guided, nightly,
//! for hours) and of `tests/fuzz_corpus.rs` (the checked-in corpus plus
//! seeded mutations, on stable, in CI). Each takes arbitrary bytes and
//! panics only when dynakv breaks a rule.
//!
//! - [`client_decoder`]: a client datagram, as is and with its checksum
//!   made valid, through both decoders (the node's fast path and the
//!   protobuf crate), which must agree.
//! - [`internal_decoder`]: a node message, as is and signed with the
//!   cluster secret, so that the fields behind the MAC are reached; what
//!   decodes must encode back to the same message.
//! - [`recovery`]: one node started on a data directory of arbitrary
//!   files (see [`directory`]): it starts or refuses with a reason, never
//!   panics, and started it answers.
//! - [`node`]: one node of a three-node cluster fed a script of client
//!   requests, *authenticated and fresh* node messages and stream frames
//!   with arbitrary fields, junk datagrams and time passing: its store never
//!   passes its budget and the stamps it writes never go back.

use crate::node::{Cluster, Out, Running};
use dynakv::cluster::internal::{self, Bounds, Internal};
use dynakv::cluster::secret::Secret;
use dynakv::cluster::universe::node_id;
use dynakv::node::context::PlantedBugs;
use dynakv::protocol::client;
use dynakv::protocol::wire::{self, Command};
use std::collections::HashMap;
use std::net::SocketAddr;

const EPOCH_UNIX_MS: u64 = 1_800_000_000_000;

fn secret() -> Secret {
    Secret::from_bytes(b"fuzzing")
}

pub fn client_decoder(data: &[u8]) {
    let fast = wire::decode_client(data, wire::Origin::Client).map(|(id, parsed)| format!("{id:?} {parsed:?}"));
    let slow = wire::decode_request(data).map(|(id, request)| format!("{id:?} {:?}", wire::parse_request(&request)));
    assert_eq!(fast.ok(), slow.ok(), "the two decoders disagree on {data:?}");
    // The same bytes as a payload under a valid checksum reach the fields.
    let (id, payload) = data.split_at(data.len().min(16));
    let datagram = wire::encode_msg(id, payload.to_vec());
    let fast = wire::decode_client(&datagram, wire::Origin::Client).map(|(id, parsed)| format!("{id:?} {parsed:?}"));
    let slow =
        wire::decode_request(&datagram).map(|(id, request)| format!("{id:?} {:?}", wire::parse_request(&request)));
    assert_eq!(fast.ok(), slow.ok(), "the two decoders disagree on payload {payload:?}");
    // What a node takes from its own front-ends (node-made commands and
    // longer keys) never panics either, and a client never gets more.
    if let Ok((_, parsed)) = wire::decode_client(&datagram, wire::Origin::Node)
        && let Ok((_, as_client)) = wire::decode_client(&datagram, wire::Origin::Client)
        && matches!(as_client, wire::Parsed::Keyed(_))
    {
        assert_eq!(parsed, as_client, "a client's request reads the same from a node");
    }
}

pub fn internal_decoder(data: &[u8]) {
    let secret = secret();
    let bounds = Bounds {
        now_unix_ms: EPOCH_UNIX_MS,
    };
    let _ = internal::decode(&secret, 0, &bounds, data);
    let _ = internal::frame_bytes(data);
    let sealed = internal::seal(&secret, data.to_vec());
    let _ = internal::decode(&secret, 0, &bounds, &sealed);
    if let Ok((envelope, message)) = internal::decode_unchecked(&secret, &sealed) {
        let again = internal::encode(&secret, &envelope, &message);
        assert_eq!(
            internal::decode_unchecked(&secret, &again),
            Ok((envelope, message)),
            "decode(encode(m)) != m"
        );
    }
}

/// Reads a fuzz script byte by byte; zeros once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn u8(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = usize::from(self.u16()).min(max).min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        taken.to_vec()
    }

    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// Steps of one script at most (bounds a run whatever the input).
const STEPS_MAX: usize = 256;

/// The [`node`] target: one node of a three-node cluster runs a script of
/// up to [`STEPS_MAX`] steps; after each, its store is within its budget
/// and the stamps of the writes it sent never went back.
pub fn node(data: &[u8]) {
    let mut fuzzed = FuzzedNode::start();
    let mut script = Script(data);
    for _ in 0..STEPS_MAX {
        if script.done() {
            break;
        }
        fuzzed.step(&mut script);
        if let Some((used, limit)) = fuzzed.node.over_budget() {
            panic!("store at {used} bytes over its budget of {limit}");
        }
        fuzzed.check_sent_stamps();
    }
}

/// Node 0 of a three-node cluster under a [`node`] script, with what the
/// script's peers and clients need to reach it.
struct FuzzedNode {
    addrs: Vec<SocketAddr>,
    cluster: Cluster,
    client: SocketAddr,
    now_us: u64,
    node: Running,
    /// The last sequence number each node sent it (a peer's message must
    /// carry the next one to be taken).
    seqs: [u64; 3],
    /// Per key, the stamp of the last write the node replicated.
    last_stamps: HashMap<Vec<u8>, u64>,
}

impl FuzzedNode {
    fn start() -> FuzzedNode {
        let addrs: Vec<SocketAddr> = (0..3).map(|i| SocketAddr::from(([10, 0, 0, i + 1], 4000))).collect();
        let cluster = Cluster::new(addrs.clone(), 3, secret(), PlantedBugs::default());
        let client: SocketAddr = ([10, 0, 1, 1], 5000).into();
        let now_us = 0u64;
        let node =
            Running::start(&cluster, 0, now_us, EPOCH_UNIX_MS, None).expect("a node without a data directory starts");
        FuzzedNode {
            addrs,
            cluster,
            client,
            now_us,
            node,
            seqs: [0; 3],
            last_stamps: HashMap::default(),
        }
    }

    /// One step of the script: a client request, a peer's message (as a
    /// datagram or a stream frame), time passing, or a junk datagram from
    /// a client or a peer.
    fn step(&mut self, script: &mut Script<'_>) {
        let unix_ms = EPOCH_UNIX_MS + self.now_us / 1_000;
        self.node.set_clock(self.now_us, unix_ms);
        match script.u8() % 6 {
            0 => self.client_request(script),
            kind @ (1 | 2) => self.peer_message(script, unix_ms, kind == 2),
            3 => self.time_passes(script),
            4 => self.node.datagram(&script.bytes(2_000), self.client),
            _ => self.node.datagram(&script.bytes(2_000), self.addrs[1]),
        }
    }

    /// A well-formed PUT, GET or REMOVE of one of a few keys.
    fn client_request(&mut self, script: &mut Script<'_>) {
        let command = [Command::Put, Command::Get, Command::Remove][usize::from(script.u8() % 3)];
        let key = [script.u8() % 8];
        let value = script.bytes(1_200);
        let request = client::request(command, Some(&key), Some(&value), Some(1));
        let id = [script.u8(); 16];
        self.node.datagram(&wire::encode_request(&id, &request), self.client);
    }

    /// A peer's message: signed, for this node, with the next sequence
    /// number and a send time near now, so that it passes every check but
    /// the fields' own.
    fn peer_message(&mut self, script: &mut Script<'_>, unix_ms: u64, as_frame: bool) {
        let sender = 1 + usize::from(script.u8() % 2);
        self.seqs[sender] += 1;
        let mut body = vec![script.u8() % 11];
        body.extend_from_slice(&node_id(&self.cluster.names[sender]).to_le_bytes());
        body.extend_from_slice(&node_id(&self.cluster.names[0]).to_le_bytes());
        body.extend_from_slice(&EPOCH_UNIX_MS.to_le_bytes());
        body.extend_from_slice(&self.seqs[sender].to_le_bytes());
        body.extend_from_slice(&unix_ms.to_le_bytes());
        body.extend(script.bytes(4_000));
        let sealed = internal::seal(&self.cluster.secret, body);
        if as_frame {
            self.node.frames(&[sealed]);
        } else {
            self.node.datagram(&sealed, self.addrs[sender]);
        }
    }

    /// Up to a minute passes, and the node's periodic round runs.
    fn time_passes(&mut self, script: &mut Script<'_>) {
        self.now_us += u64::from(script.u16()) * 1_000;
        self.node.set_clock(self.now_us, EPOCH_UNIX_MS + self.now_us / 1_000);
        self.node.round();
    }

    /// Takes what the node sent and checks the writes among it: a resend
    /// carries the same stamp, a later write a later one, never an earlier.
    fn check_sent_stamps(&mut self) {
        for out in self.node.io.take() {
            let sent = match out {
                Out::Datagram(_, bytes) => vec![bytes],
                Out::Stream(_, frames) => frames,
            };
            for bytes in sent {
                for message in self.messages(&bytes) {
                    if let Internal::Replicate { entry, .. } = message {
                        let last = self.last_stamps.entry(entry.key).or_default();
                        assert!(entry.stamp.0 >= *last, "a write stamped back in time");
                        *last = entry.stamp.0;
                    }
                }
            }
        }
    }

    /// The node messages in sent bytes (a batch's, one by one), none for
    /// bytes that do not decode.
    fn messages(&self, bytes: &[u8]) -> Vec<Internal> {
        match internal::decode_unchecked(&self.cluster.secret, bytes) {
            Ok((_, Internal::Batch(messages))) => messages,
            Ok((_, message)) => vec![message],
            Err(_) => Vec::new(),
        }
    }
}

/// Names a data directory's files have (and some it should not), which the
/// first byte of each file of a [`recovery`] input picks from.
const FILE_NAMES: [&str; 10] = [
    "log-0of1-0000000000000001.wal",
    "log-0of1-0000000000000002.wal",
    "log-0of1-0000000000000004.wal",
    "snap-0of1-0000000000000002.snap",
    "snap-0of1-0000000000000003.snap",
    "snap-0of1-0000000000000005.snap.partial",
    "log-0of2-0000000000000001.wal",
    "log-1of2-0000000000000003.wal",
    "snap-1of2-0000000000000002.snap",
    "identity",
];

/// The files an input describes: `name byte, length (2 bytes), bytes` per
/// file, as many as it holds.
pub fn directory(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 {
        let name = FILE_NAMES[usize::from(rest[0]) % FILE_NAMES.len()].to_string();
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let bytes = rest[3..3 + len].to_vec();
        rest = &rest[3 + len..];
        files.retain(|(existing, _)| *existing != name);
        files.push((name, bytes));
    }
    files
}

/// One node started on a data directory holding arbitrary files: it
/// starts or refuses with a reason, never panics; started, its store is
/// within its budget and it answers requests.
pub fn recovery(data: &[u8]) {
    let addrs: Vec<SocketAddr> = vec![SocketAddr::from(([10, 0, 0, 1], 4000))];
    let mut cluster = Cluster::new(addrs, 1, secret(), PlantedBugs::default());
    cluster.fsync = Some(dynakv::node::durability::journal::Fsync::Always);
    let disk = std::sync::Arc::new(crate::disk::SimDisk::with_files(&directory(data)));
    let Ok(mut node) = Running::start(&cluster, 0, 0, EPOCH_UNIX_MS, Some(&disk)) else {
        return;
    };
    assert!(node.over_budget().is_none(), "recovery took the store past its budget");
    let client: SocketAddr = ([10, 0, 1, 1], 5000).into();
    let request = client::request(Command::Get, Some(b"key"), None, None);
    node.set_clock(2_000_000, EPOCH_UNIX_MS + 2_000);
    node.datagram(&wire::encode_request(&[7; 16], &request), client);
    let answered = node
        .io
        .take()
        .iter()
        .any(|out| matches!(out, Out::Datagram(to, _) if *to == client));
    assert!(answered, "a node recovered from this directory does not answer");
}

//! Node-to-node messages: their encoding, their authentication, and the
//! range of every field.
//!
//! An internal message is a protobuf message whose only field is number 100
//! (tag bytes `A2 06`), so it can never be mistaken for a client `Msg`
//! (fields 1-3, whose tags are single bytes below `0x80`). The field holds
//! `kind | envelope | body | MAC`, the MAC being 16 bytes of keyed BLAKE3
//! over everything before it under the cluster secret. The [`Envelope`]
//! names sender and receiver and carries the sender's incarnation, a
//! sequence number and the send time, so that a receiver can reject what is
//! not meant for it, old or repeated (see [`crate::cluster::freshness`]); the MAC
//! proves all of it came from a holder of the secret.
//!
//! Decoding checks the MAC first and then that every field is in range
//! ([`Bounds`]): a bucket, a count, a stamp no further ahead of the
//! receiver's clock than clocks may disagree. What fails is dropped and
//! counted by the caller, never stored.

pub use crate::cluster::secret::Secret;
use crate::cluster::universe::{self, NodeId, Universe, UniverseTag};
use crate::storage::hash::{BUCKETS, bucket_of_key};
use crate::storage::stamp::Stamp;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const TAG: [u8; 2] = [0xa2, 0x06];
/// The sender id operators sign with (not a node of the cluster).
pub const OPERATOR: NodeId = universe::OPERATOR_ID;
/// Gossip round length: a node's heartbeat counter grows by one per
/// round, which bounds the counters a receiver accepts.
pub const ROUND_MS: u64 = 200;
const MAC_BYTES: usize = 16;
/// Bytes of `kind | sender | to | incarnation | seq | sent_unix_ms`.
const HEADER_BYTES: usize = 1 + 5 * 8;
/// How far clocks of the cluster may disagree: a stamp, a send time or a
/// cutoff further ahead of the receiver's clock than this is refused. Last
/// writer wins already assumes clocks this close (see [`crate::cluster::agreement`]).
pub const CLOCK_SKEW_MS_MAX: u64 = 10_000;
/// Hops a forwarded client request may take (views can disagree for a moment).
pub const FORWARD_HOPS_MAX: u8 = 2;

/// Who sent a message to whom, and when: bound to the message by the MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sender's id (a hash of its name), or [`OPERATOR`].
    pub sender: NodeId,
    /// The receiver's id: a message replayed to another node is refused.
    pub to: NodeId,
    /// The sender process's identity: its start time in Unix ms for a node
    /// (a restart is a newer incarnation), a random number for an operator.
    pub incarnation: u64,
    /// Counts the sender's messages to this receiver on one channel.
    pub seq: u64,
    /// The sender's wall clock when it signed, Unix ms.
    pub sent_unix_ms: u64,
}

/// Whether a datagram is internal (it may still fail authentication).
pub fn is_internal(datagram: &[u8]) -> bool {
    datagram.starts_with(&TAG)
}

/// A write as replicas and transfers carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub version: i32,
    pub stamp: Stamp,
    pub tombstone: bool,
}

/// Heartbeat state of one node as gossiped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// Start time of the node's process (ms): a restart is a new incarnation.
    pub incarnation: u64,
    pub counter: u64,
    pub ready: bool,
    /// Re-syncing after a suspension: it missed writes, so it must not
    /// coordinate even when no replica of a bucket is ready.
    pub behind: bool,
    /// Its store is (nearly) at its memory limit: it takes no bucket it
    /// does not already own, and coordinators refuse writes that would grow
    /// its buckets (see [`crate::cluster::ring`]).
    pub full: bool,
    /// Pulling buckets it gained: its copies of them may be incomplete, so
    /// the nodes that held them before keep theirs current meanwhile (see
    /// [`crate::cluster::ring::View::write_targets`]).
    pub pulling: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Internal {
    /// The sender's universe, and the heartbeats of its members by id.
    Gossip {
        universe: UniverseTag,
        heartbeats: Vec<(NodeId, Heartbeat)>,
    },
    /// A client datagram sent on to the coordinator, which answers the client.
    Forward {
        hops: u8,
        client: SocketAddr,
        datagram: Vec<u8>,
    },
    Replicate {
        seq: u64,
        entry: Entry,
    },
    ReplicateAck {
        seq: u64,
        bucket: u16,
        /// The replica's store is full: the coordinator learns it at once,
        /// before gossip tells (see [`Heartbeat::full`]).
        full: bool,
        /// The replica had no room for the write and did not store it.
        refused: bool,
    },
    /// "Send me every entry of this bucket", or, with the puller's digest
    /// of it, "unless your copy has this digest" (then one empty chunk
    /// answers: nothing differs).
    Pull {
        request: u64,
        bucket: u16,
        digest: Option<u64>,
    },
    /// An operator command (`dynakv ctl`), answered with a client `Msg` whose
    /// value is text.
    Admin {
        message_id: Vec<u8>,
        command: u8,
        arg: Vec<u8>,
    },
    /// Anti-entropy: the sender's digests of buckets both nodes replicate,
    /// each with the sender's tombstone cutoff (see [`crate::cluster::agreement`]);
    /// the receiver exchanges the buckets whose digests differ.
    Digests {
        digests: Vec<BucketDigest>,
    },
    Chunk(Chunk),
    /// "I hold your copy of this bucket, the one with this digest": a
    /// replica's confirmation of a hand-off (see
    /// [`crate::node::shard`]'s `handoff`), sent once the copy is in its
    /// journal.
    Held {
        bucket: u16,
        digest: u64,
    },
    /// A universe to adopt if it is newer (see [`crate::cluster::universe`]):
    /// from a node, to a peer that gossips an older one or has not been
    /// heard to hold it; from an operator inside [`Internal::Admin`].
    Universe(Universe),
    /// An item's round (see [`crate::node::shard`]'s `rounds`), first
    /// phase: "promise to accept nothing of `key` below `ballot`, and tell
    /// me what you hold of it".
    Prepare {
        round: u64,
        ballot: Stamp,
        key: Vec<u8>,
    },
    /// A round's second phase: "store this entry, stamped with the round's
    /// ballot, unless you promised a greater ballot".
    Accept {
        round: u64,
        entry: Entry,
    },
    /// An acceptor's answer to a prepare or an accept: `ok`, or refused
    /// (`seen`: the greatest ballot it knows of for the key; `full`: it
    /// had no room). A promise carries the record it holds, if any.
    Vote {
        round: u64,
        bucket: u16,
        ok: bool,
        full: bool,
        seen: Stamp,
        entry: Option<Entry>,
    },
    /// A consistent read of a bucket's page (see [`crate::node::shard`]'s
    /// `page_reads`), to the bucket's home replicas: "send me your records
    /// of this read ([`crate::storage::item_key::BucketRead`]) of the
    /// bucket of `key`".
    PageAsk {
        round: u64,
        key: Vec<u8>,
        read: Vec<u8>,
    },
    /// A home replica's answer: its live records of the page with their
    /// stamps, at most [`PAGE_VOTE_ENTRIES_MAX`], and whether more are
    /// left after them; `ok` false: it may not vote (it lost what it held).
    PageVote {
        round: u64,
        bucket: u16,
        ok: bool,
        more: bool,
        entries: Vec<Entry>,
    },
    /// A catch-up's first question to a source, many buckets at once:
    /// "which of these buckets, with my digests of them, does your copy
    /// differ from?" Only those are then pulled (see
    /// [`crate::node::cluster_core`]'s `pulls`).
    Compare {
        request: u64,
        digests: Vec<(u16, u64)>,
    },
    /// The answer to a [`Internal::Compare`]: the buckets of it whose copy
    /// here has another digest.
    Compared {
        request: u64,
        differing: Vec<u16>,
    },
    /// Several messages to one peer under one envelope and MAC: what a
    /// node's outbox sends at the end of a drain (see
    /// [`crate::node::outbox`]). Holds forwards, replicated writes, their
    /// acknowledgements and digests, never another batch.
    Batch(Vec<Internal>),
}

/// Buckets one [`Internal::Compare`] asks about at most (10 bytes each).
pub const COMPARE_BUCKETS_MAX: usize = 1_024;

/// Messages one batch may hold.
pub const BATCH_MESSAGES_MAX: usize = 256;

/// Records a [`Internal::PageVote`] carries at most: with their keys and
/// stamps they fit one message of a batch (whose length is a `u16`).
pub const PAGE_VOTE_ENTRIES_MAX: usize = 512;
/// Bytes of a [`Internal::PageAsk`]'s read at most: a read rides in a
/// request's value.
const PAGE_READ_BYTES_MAX: usize = crate::protocol::wire::VALUE_BYTES_MAX;

/// One bucket as anti-entropy compares it: the sender's digest of its
/// entries (see [`crate::storage::store::BucketStats`]) and its cutoff for
/// tombstone collection, in whole seconds (see [`crate::cluster::agreement`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketDigest {
    pub bucket: u16,
    pub digest: u64,
    pub cutoff_s: u32,
}

/// The kind byte that starts every message: one list for the encoder and
/// the decoder, which both match on it exhaustively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Gossip = 1,
    Forward = 2,
    Replicate = 3,
    ReplicateAck = 4,
    Pull = 5,
    Chunk = 6,
    Admin = 7,
    Digests = 8,
    Batch = 9,
    Universe = 10,
    Held = 11,
    Prepare = 12,
    Accept = 13,
    Vote = 14,
    PageAsk = 15,
    PageVote = 16,
    Compare = 17,
    Compared = 18,
}

impl Kind {
    const ALL: [Kind; 18] = [
        Kind::Gossip,
        Kind::Forward,
        Kind::Replicate,
        Kind::ReplicateAck,
        Kind::Pull,
        Kind::Chunk,
        Kind::Admin,
        Kind::Digests,
        Kind::Batch,
        Kind::Universe,
        Kind::Held,
        Kind::Prepare,
        Kind::Accept,
        Kind::Vote,
        Kind::PageAsk,
        Kind::PageVote,
        Kind::Compare,
        Kind::Compared,
    ];

    fn from_byte(byte: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|&kind| kind as u8 == byte)
    }
}

/// One message of a bucket transfer (sent over the transfer stream): chunk
/// `chunk` of `chunks`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The puller's request id ([`crate::node::shard::PUSH_REQUEST`] for a push).
    pub request: u64,
    pub bucket: u16,
    pub chunk: u16,
    pub chunks: u16,
    pub entries: Vec<Entry>,
}

fn mac(secret: &Secret, bytes: &[u8]) -> [u8; MAC_BYTES] {
    let full = blake3::keyed_hash(&secret.0, bytes);
    full.as_bytes()[..MAC_BYTES].try_into().expect("16 of 32 bytes")
}

/// Where encoded bytes go: a buffer, or a count of them (a message's size
/// is what its encoder writes, so size and encoding cannot disagree).
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts the bytes an encoder writes.
#[derive(Default)]
struct Count(usize);

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

struct Writer<S: Sink>(S);

impl<S: Sink> Writer<S> {
    fn u8(&mut self, v: u8) {
        self.0.put(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.0.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.put(&v.to_le_bytes());
    }
    /// A flag byte, then the value when there is one.
    fn opt_u64(&mut self, v: Option<u64>) {
        self.u8(u8::from(v.is_some()));
        if let Some(v) = v {
            self.u64(v);
        }
    }
    fn bytes(&mut self, v: &[u8]) {
        self.0.put(v);
    }
    fn entry(&mut self, e: &Entry) {
        self.u64(e.stamp.0);
        self.bytes(&e.version.to_le_bytes());
        self.u8(u8::from(e.tombstone));
        self.u8(e.key.len() as u8);
        self.u16(e.value.len() as u16);
        self.bytes(&e.key);
        self.bytes(&e.value);
    }
    fn addr(&mut self, addr: SocketAddr) {
        match addr.ip() {
            IpAddr::V4(ip) => {
                self.u8(4);
                self.bytes(&ip.octets());
            }
            IpAddr::V6(ip) => {
                self.u8(6);
                self.bytes(&ip.octets());
            }
        }
        self.u16(addr.port());
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8")))
    }
    fn entry(&mut self) -> Option<Entry> {
        let stamp = Stamp(self.u64()?);
        let version = i32::from_le_bytes(self.take(4)?.try_into().ok()?);
        let tombstone = self.u8()? != 0;
        let key_len = usize::from(self.u8()?);
        let value_len = usize::from(self.u16()?);
        if key_len == 0
            || key_len > crate::protocol::wire::STORED_KEY_BYTES_MAX
            || value_len > crate::protocol::wire::VALUE_BYTES_MAX
        {
            return None;
        }
        let key = self.take(key_len)?.to_vec();
        let value = self.take(value_len)?.to_vec();
        Some(Entry {
            key,
            value,
            version,
            stamp,
            tombstone,
        })
    }
    /// Everything left: the last field of its message.
    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0).to_vec()
    }
    fn addr(&mut self) -> Option<SocketAddr> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(self.take(4)?).ok()?)),
            6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(self.take(16)?).ok()?)),
            _ => return None,
        };
        Some(SocketAddr::new(ip, self.u16()?))
    }
}

/// Bytes an entry takes inside a chunk, before it exists as an [`Entry`]
/// (to cut a bucket into chunks); checked against the encoder in a test.
pub fn entry_wire_bytes(key_len: usize, value_len: usize) -> usize {
    ENTRY_FIXED_BYTES + key_len + value_len
}

/// Stamp, version, tombstone flag, key and value lengths.
const ENTRY_FIXED_BYTES: usize = 8 + 4 + 1 + 1 + 2;

/// What a UDP datagram carries at most (IPv4).
const UDP_PAYLOAD_BYTES_MAX: usize = 65_507;
/// Tag, a three-byte length, envelope and MAC around a message's fields.
pub const FRAMING_BYTES_MAX: usize = TAG.len() + 3 + HEADER_BYTES + MAC_BYTES;
/// A replicated write of the largest entry goes in one datagram...
const _: () = assert!(
    FRAMING_BYTES_MAX
        + 8
        + ENTRY_FIXED_BYTES
        + crate::protocol::wire::STORED_KEY_BYTES_MAX
        + crate::protocol::wire::VALUE_BYTES_MAX
        <= UDP_PAYLOAD_BYTES_MAX
);
/// ... and so do the heartbeats and the universe of the largest cluster.
const _: () = assert!(FRAMING_BYTES_MAX + 18 + 25 * universe::MEMBERS_MAX <= UDP_PAYLOAD_BYTES_MAX);
const _: () =
    assert!(FRAMING_BYTES_MAX + 10 + (3 + universe::NAME_BYTES_MAX) * universe::MEMBERS_MAX <= UDP_PAYLOAD_BYTES_MAX);
/// A batch's inner messages state their length in 16 bits.
const _: () = assert!(
    8 + ENTRY_FIXED_BYTES + crate::protocol::wire::STORED_KEY_BYTES_MAX + crate::protocol::wire::VALUE_BYTES_MAX
        < u16::MAX as usize
);

/// Bytes a varint of `len` takes.
fn varint_bytes(mut len: usize) -> usize {
    let mut bytes = 1;
    while len >= 0x80 {
        len >>= 7;
        bytes += 1;
    }
    bytes
}

impl Internal {
    fn kind(&self) -> Kind {
        match self {
            Internal::Gossip { .. } => Kind::Gossip,
            Internal::Forward { .. } => Kind::Forward,
            Internal::Replicate { .. } => Kind::Replicate,
            Internal::ReplicateAck { .. } => Kind::ReplicateAck,
            Internal::Pull { .. } => Kind::Pull,
            Internal::Chunk(_) => Kind::Chunk,
            Internal::Admin { .. } => Kind::Admin,
            Internal::Digests { .. } => Kind::Digests,
            Internal::Batch(_) => Kind::Batch,
            Internal::Universe(_) => Kind::Universe,
            Internal::Held { .. } => Kind::Held,
            Internal::Prepare { .. } => Kind::Prepare,
            Internal::Accept { .. } => Kind::Accept,
            Internal::Vote { .. } => Kind::Vote,
            Internal::PageAsk { .. } => Kind::PageAsk,
            Internal::PageVote { .. } => Kind::PageVote,
            Internal::Compare { .. } => Kind::Compare,
            Internal::Compared { .. } => Kind::Compared,
        }
    }

    /// The bytes the message takes encoded, to fill datagrams without
    /// encoding twice: what the encoder writes, counted.
    pub fn encoded_bytes(&self) -> usize {
        let body = HEADER_BYTES + self.fields_bytes() + MAC_BYTES;
        TAG.len() + varint_bytes(body) + body
    }

    /// Bytes of the fields after the kind and envelope.
    fn fields_bytes(&self) -> usize {
        let mut count = Writer(Count::default());
        write_fields(&mut count, self);
        count.0.0
    }
}

/// Encodes and authenticates a message.
pub fn encode(secret: &Secret, envelope: &Envelope, message: &Internal) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(HEADER_BYTES + message.fields_bytes() + MAC_BYTES));
    w.u8(message.kind() as u8);
    w.u64(envelope.sender);
    w.u64(envelope.to);
    w.u64(envelope.incarnation);
    w.u64(envelope.seq);
    w.u64(envelope.sent_unix_ms);
    write_fields(&mut w, message);
    seal(secret, w.0)
}

/// The fields of a message after its kind and envelope.
fn write_fields<S: Sink>(w: &mut Writer<S>, message: &Internal) {
    match message {
        Internal::Batch(messages) => write_batch(w, messages),
        Internal::Gossip { universe, heartbeats } => write_gossip(w, universe, heartbeats),
        Internal::Forward { hops, client, datagram } => {
            w.u8(*hops);
            w.addr(*client);
            w.bytes(datagram);
        }
        Internal::Replicate { seq, entry } => {
            w.u64(*seq);
            w.entry(entry);
        }
        Internal::ReplicateAck {
            seq,
            bucket,
            full,
            refused,
        } => {
            w.u64(*seq);
            w.u16(*bucket);
            w.u8(u8::from(*full) | u8::from(*refused) << 1);
        }
        Internal::Pull {
            request,
            bucket,
            digest,
        } => {
            w.u64(*request);
            w.u16(*bucket);
            w.opt_u64(*digest);
        }
        Internal::Chunk(c) => {
            w.u64(c.request);
            w.u16(c.bucket);
            w.u16(c.chunk);
            w.u16(c.chunks);
            w.u16(c.entries.len() as u16);
            for e in &c.entries {
                w.entry(e);
            }
        }
        Internal::Admin {
            message_id,
            command,
            arg,
        } => {
            w.u8(message_id.len() as u8);
            w.bytes(message_id);
            w.u8(*command);
            w.bytes(arg);
        }
        Internal::Digests { digests } => {
            w.u16(digests.len() as u16);
            for d in digests {
                w.u16(d.bucket);
                w.u64(d.digest);
                w.u32(d.cutoff_s);
            }
        }
        Internal::Universe(universe) => w.bytes(&universe.encode()),
        Internal::Held { bucket, digest } => {
            w.u16(*bucket);
            w.u64(*digest);
        }
        Internal::Prepare { .. } | Internal::Accept { .. } | Internal::Vote { .. } => write_round(w, message),
        Internal::PageAsk { .. } | Internal::PageVote { .. } => write_page_read(w, message),
        Internal::Compare { .. } | Internal::Compared { .. } => write_compare(w, message),
    }
}

/// The fields of a catch-up's compare or its answer.
fn write_compare<S: Sink>(w: &mut Writer<S>, message: &Internal) {
    match message {
        Internal::Compare { request, digests } => {
            w.u64(*request);
            w.u16(digests.len() as u16);
            for &(bucket, digest) in digests {
                w.u16(bucket);
                w.u64(digest);
            }
        }
        Internal::Compared { request, differing } => {
            w.u64(*request);
            w.u16(differing.len() as u16);
            for &bucket in differing {
                w.u16(bucket);
            }
        }
        _ => {}
    }
}

/// The fields of an item round's message.
fn write_round<S: Sink>(w: &mut Writer<S>, message: &Internal) {
    match message {
        Internal::Prepare { round, ballot, key } => {
            w.u64(*round);
            w.u64(ballot.0);
            w.u8(key.len() as u8);
            w.bytes(key);
        }
        Internal::Accept { round, entry } => {
            w.u64(*round);
            w.entry(entry);
        }
        Internal::Vote {
            round,
            bucket,
            ok,
            full,
            seen,
            entry,
        } => {
            w.u64(*round);
            w.u16(*bucket);
            w.u8(u8::from(*ok) | u8::from(*full) << 1 | u8::from(entry.is_some()) << 2);
            w.u64(seen.0);
            if let Some(entry) = entry {
                w.entry(entry);
            }
        }
        _ => {}
    }
}

/// The fields of a consistent page read's message.
fn write_page_read<S: Sink>(w: &mut Writer<S>, message: &Internal) {
    match message {
        Internal::PageAsk { round, key, read } => {
            w.u64(*round);
            w.u8(key.len() as u8);
            w.bytes(key);
            w.u16(read.len() as u16);
            w.bytes(read);
        }
        Internal::PageVote {
            round,
            bucket,
            ok,
            more,
            entries,
        } => {
            w.u64(*round);
            w.u16(*bucket);
            w.u8(u8::from(*ok) | u8::from(*more) << 1);
            w.u16(entries.len() as u16);
            for entry in entries {
                w.entry(entry);
            }
        }
        _ => {}
    }
}

/// The sender's universe, then each heartbeat with its node's id.
fn write_gossip<S: Sink>(w: &mut Writer<S>, universe: &UniverseTag, heartbeats: &[(NodeId, Heartbeat)]) {
    w.u64(universe.version);
    w.u64(universe.hash);
    w.u16(heartbeats.len() as u16);
    for (id, h) in heartbeats {
        w.u64(*id);
        w.u64(h.incarnation);
        w.u64(h.counter);
        let flags = u8::from(h.ready) | u8::from(h.behind) << 1 | u8::from(h.full) << 2;
        w.u8(flags | u8::from(h.pulling) << 3);
    }
}

/// A batch's messages: each its length, its kind, its fields.
fn write_batch<S: Sink>(w: &mut Writer<S>, messages: &[Internal]) {
    w.u16(messages.len() as u16);
    for inner in messages {
        w.u16((1 + inner.fields_bytes()) as u16);
        w.u8(inner.kind() as u8);
        write_fields(w, inner);
    }
}

/// Frames and signs a message body (kind, envelope, fields): what
/// [`encode`] does after writing the fields, and what a fuzzer uses to get
/// arbitrary bodies past the MAC.
pub fn seal(secret: &Secret, mut body: Vec<u8>) -> Vec<u8> {
    let tag = mac(secret, &body);
    body.extend_from_slice(&tag);
    let mut out = Vec::with_capacity(body.len() + 5);
    out.extend_from_slice(&TAG);
    let mut len = body.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(&body);
    out
}

/// Why an internal datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InternalError {
    /// Not our framing, or fields that do not parse.
    Malformed,
    /// Not signed with this cluster's secret, or altered.
    BadMac,
    /// Signed, but meant for another node.
    Misdirected,
    /// Signed, but a field is out of range (see [`Bounds`]).
    OutOfRange,
}

/// What a receiver accepts in a message's fields.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// The receiver's wall clock, Unix ms.
    pub now_unix_ms: u64,
}

/// The length of the internal message at the start of `stream` (its tag,
/// length and body), `None` while its header is incomplete. Over TCP these
/// messages follow one another with no other framing.
pub fn frame_bytes(stream: &[u8]) -> Result<Option<usize>, InternalError> {
    Ok(split_header(stream)?.map(|(header, body)| header + body))
}

/// `(header bytes, body bytes)` of the message starting `stream`.
fn split_header(stream: &[u8]) -> Result<Option<(usize, usize)>, InternalError> {
    if stream.len() < TAG.len() {
        return Ok(None);
    }
    let rest = stream.strip_prefix(&TAG).ok_or(InternalError::Malformed)?;
    let mut len = 0usize;
    let mut shift = 0;
    for (at, &byte) in rest.iter().enumerate() {
        len |= usize::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(Some((TAG.len() + at + 1, len)));
        }
        shift += 7;
        if shift > 21 {
            return Err(InternalError::Malformed);
        }
    }
    Ok(None)
}

/// Verifies, decodes and range-checks a message meant for node `me`.
pub fn decode(
    secret: &Secret,
    me: NodeId,
    bounds: &Bounds,
    datagram: &[u8],
) -> Result<(Envelope, Internal), InternalError> {
    let (envelope, message) = decode_unchecked(secret, datagram)?;
    if envelope.to != me {
        return Err(InternalError::Misdirected);
    }
    check(&envelope, &message, bounds)?;
    Ok((envelope, message))
}

/// Verifies and decodes, checking nothing but the MAC and the framing.
pub fn decode_unchecked(secret: &Secret, datagram: &[u8]) -> Result<(Envelope, Internal), InternalError> {
    let (header, len) = split_header(datagram)?.ok_or(InternalError::Malformed)?;
    let body = datagram
        .get(header..)
        .filter(|b| b.len() == len && len >= HEADER_BYTES + MAC_BYTES)
        .ok_or(InternalError::Malformed)?;
    let (signed, tag) = body.split_at(body.len() - MAC_BYTES);
    // In constant time: an early exit at the first differing byte would
    // let a forger time its way to a valid tag one byte at a time.
    if !constant_time_eq::constant_time_eq(&mac(secret, signed), tag) {
        return Err(InternalError::BadMac);
    }
    let mut r = Reader(signed);
    let kind = r.u8().ok_or(InternalError::Malformed)?;
    let envelope = (|| {
        Some(Envelope {
            sender: r.u64()?,
            to: r.u64()?,
            incarnation: r.u64()?,
            seq: r.u64()?,
            sent_unix_ms: r.u64()?,
        })
    })()
    .ok_or(InternalError::Malformed)?;
    let message = match Kind::from_byte(kind) {
        Some(Kind::Batch) => read_batch(&mut r),
        Some(kind) => read_fields(kind, &mut r),
        None => None,
    };
    message.map(|m| (envelope, m)).ok_or(InternalError::Malformed)
}

/// A batch's messages: each its length, kind and fields; one level only.
fn read_batch(r: &mut Reader<'_>) -> Option<Internal> {
    let n = usize::from(r.u16()?);
    if n > BATCH_MESSAGES_MAX {
        return None;
    }
    let mut messages = Vec::with_capacity(n);
    for _ in 0..n {
        let len = usize::from(r.u16()?);
        let mut inner = Reader(r.take(len)?);
        let kind = Kind::from_byte(inner.u8()?)?;
        messages.push(read_fields(kind, &mut inner)?);
    }
    r.0.is_empty().then_some(Internal::Batch(messages))
}

/// The fields of a message of `kind` (not a batch: a batch holds none).
fn read_fields(kind: Kind, r: &mut Reader<'_>) -> Option<Internal> {
    Some(match kind {
        Kind::Gossip => read_gossip(r)?,
        Kind::Forward => Internal::Forward {
            hops: r.u8()?,
            client: r.addr()?,
            datagram: r.rest(),
        },
        Kind::Replicate => Internal::Replicate {
            seq: r.u64()?,
            entry: r.entry()?,
        },
        Kind::ReplicateAck => {
            let (seq, bucket, flags) = (r.u64()?, r.u16()?, r.u8()?);
            Internal::ReplicateAck {
                seq,
                bucket,
                full: flags & 1 != 0,
                refused: flags & 2 != 0,
            }
        }
        Kind::Pull => Internal::Pull {
            request: r.u64()?,
            bucket: r.u16()?,
            digest: match r.u8()? {
                0 => None,
                1 => Some(r.u64()?),
                _ => return None,
            },
        },
        Kind::Chunk => read_chunk(r)?,
        Kind::Admin => read_admin(r)?,
        Kind::Digests => read_digests(r)?,
        Kind::Universe => Internal::Universe(Universe::decode(&r.rest())?),
        Kind::Held => Internal::Held {
            bucket: r.u16()?,
            digest: r.u64()?,
        },
        Kind::Prepare => {
            let (round, ballot, key_len) = (r.u64()?, Stamp(r.u64()?), usize::from(r.u8()?));
            if key_len == 0 || key_len > crate::protocol::wire::STORED_KEY_BYTES_MAX {
                return None;
            }
            let key = r.take(key_len)?.to_vec();
            Internal::Prepare { round, ballot, key }
        }
        Kind::Accept => Internal::Accept {
            round: r.u64()?,
            entry: r.entry()?,
        },
        Kind::Vote => read_vote(r)?,
        Kind::PageAsk => read_page_ask(r)?,
        Kind::PageVote => read_page_vote(r)?,
        Kind::Compare => read_compare(r)?,
        Kind::Compared => read_compared(r)?,
        Kind::Batch => return None,
    })
}

fn read_vote(r: &mut Reader<'_>) -> Option<Internal> {
    let (round, bucket, flags, seen) = (r.u64()?, r.u16()?, r.u8()?, Stamp(r.u64()?));
    let entry = match flags & 4 != 0 {
        true => Some(r.entry()?),
        false => None,
    };
    Some(Internal::Vote {
        round,
        bucket,
        ok: flags & 1 != 0,
        full: flags & 2 != 0,
        seen,
        entry,
    })
}

fn read_page_ask(r: &mut Reader<'_>) -> Option<Internal> {
    let (round, key_len) = (r.u64()?, usize::from(r.u8()?));
    if key_len == 0 || key_len > crate::protocol::wire::STORED_KEY_BYTES_MAX {
        return None;
    }
    let key = r.take(key_len)?.to_vec();
    let read_len = usize::from(r.u16()?);
    if read_len > PAGE_READ_BYTES_MAX {
        return None;
    }
    let read = r.take(read_len)?.to_vec();
    Some(Internal::PageAsk { round, key, read })
}

fn read_page_vote(r: &mut Reader<'_>) -> Option<Internal> {
    let (round, bucket, flags, n) = (r.u64()?, r.u16()?, r.u8()?, usize::from(r.u16()?));
    if n > PAGE_VOTE_ENTRIES_MAX || flags > 3 {
        return None;
    }
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        entries.push(r.entry()?);
    }
    Some(Internal::PageVote {
        round,
        bucket,
        ok: flags & 1 != 0,
        more: flags & 2 != 0,
        entries,
    })
}

fn read_gossip(r: &mut Reader<'_>) -> Option<Internal> {
    let universe = UniverseTag {
        version: r.u64()?,
        hash: r.u64()?,
    };
    let n = r.u16()?;
    let mut heartbeats = Vec::with_capacity(usize::from(n).min(universe::MEMBERS_MAX));
    for _ in 0..n {
        let (id, incarnation, counter, flags) = (r.u64()?, r.u64()?, r.u64()?, r.u8()?);
        let heartbeat = Heartbeat {
            incarnation,
            counter,
            ready: flags & 1 != 0,
            behind: flags & 2 != 0,
            full: flags & 4 != 0,
            pulling: flags & 8 != 0,
        };
        heartbeats.push((id, heartbeat));
    }
    Some(Internal::Gossip { universe, heartbeats })
}

fn read_chunk(r: &mut Reader<'_>) -> Option<Internal> {
    let (request, bucket, chunk, chunks, n) = (r.u64()?, r.u16()?, r.u16()?, r.u16()?, r.u16()?);
    let mut entries = Vec::with_capacity(usize::from(n).min(1024));
    for _ in 0..n {
        entries.push(r.entry()?);
    }
    Some(Internal::Chunk(Chunk {
        request,
        bucket,
        chunk,
        chunks,
        entries,
    }))
}

fn read_admin(r: &mut Reader<'_>) -> Option<Internal> {
    let id_len = usize::from(r.u8()?);
    if id_len > crate::protocol::wire::MESSAGE_ID_BYTES_MAX {
        return None;
    }
    let message_id = r.take(id_len)?.to_vec();
    let command = r.u8()?;
    Some(Internal::Admin {
        message_id,
        command,
        arg: r.rest(),
    })
}

fn read_compare(r: &mut Reader<'_>) -> Option<Internal> {
    let request = r.u64()?;
    let n = usize::from(r.u16()?);
    if n > COMPARE_BUCKETS_MAX {
        return None;
    }
    let mut digests = Vec::with_capacity(n);
    for _ in 0..n {
        digests.push((r.u16()?, r.u64()?));
    }
    Some(Internal::Compare { request, digests })
}

fn read_compared(r: &mut Reader<'_>) -> Option<Internal> {
    let request = r.u64()?;
    let n = usize::from(r.u16()?);
    if n > COMPARE_BUCKETS_MAX {
        return None;
    }
    let mut differing = Vec::with_capacity(n);
    for _ in 0..n {
        differing.push(r.u16()?);
    }
    Some(Internal::Compared { request, differing })
}

fn read_digests(r: &mut Reader<'_>) -> Option<Internal> {
    let n = r.u16()?;
    let mut digests = Vec::with_capacity(usize::from(n).min(BUCKETS));
    for _ in 0..n {
        let (bucket, digest, cutoff_s) = (r.u16()?, r.u64()?, r.u32()?);
        digests.push(BucketDigest {
            bucket,
            digest,
            cutoff_s,
        });
    }
    Some(Internal::Digests { digests })
}

/// The range checks every field passes before it is used.
fn check(envelope: &Envelope, message: &Internal, bounds: &Bounds) -> Result<(), InternalError> {
    let from_node = envelope.sender != OPERATOR;
    let ok = match message {
        // Only operators send admin commands, and only nodes anything else
        // (an operator's universe comes inside an admin command).
        Internal::Admin { .. } => envelope.sender == OPERATOR,
        _ if !from_node => false,
        // Checked when decoded (see [`Universe::decode`]).
        Internal::Universe(_) => true,
        Internal::Batch(messages) => {
            messages.len() <= BATCH_MESSAGES_MAX
                && messages.iter().all(|m| {
                    matches!(
                        m,
                        Internal::Forward { .. }
                            | Internal::Replicate { .. }
                            | Internal::ReplicateAck { .. }
                            | Internal::Digests { .. }
                            | Internal::Held { .. }
                            | Internal::Prepare { .. }
                            | Internal::Accept { .. }
                            | Internal::Vote { .. }
                            | Internal::PageAsk { .. }
                            | Internal::PageVote { .. }
                    ) && check(envelope, m, bounds).is_ok()
                })
        }
        Internal::Gossip { heartbeats, .. } => {
            heartbeats.len() <= universe::MEMBERS_MAX
                && heartbeats.iter().any(|(id, _)| *id == envelope.sender)
                && heartbeats.iter().all(|(_, h)| heartbeat_in_range(h, bounds))
        }
        Internal::Forward { hops, client, datagram } => {
            *hops <= FORWARD_HOPS_MAX && client.port() != 0 && !client.ip().is_unspecified() && !datagram.is_empty()
        }
        Internal::Replicate { entry, .. } => entry_in_range(entry, bounds),
        Internal::Prepare { .. }
        | Internal::Accept { .. }
        | Internal::Vote { .. }
        | Internal::PageAsk { .. }
        | Internal::PageVote { .. } => round_in_range(message, bounds),
        Internal::ReplicateAck { bucket, .. } | Internal::Pull { bucket, .. } | Internal::Held { bucket, .. } => {
            usize::from(*bucket) < BUCKETS
        }
        Internal::Compare { digests, .. } => {
            digests.len() <= COMPARE_BUCKETS_MAX && digests.iter().all(|&(bucket, _)| usize::from(bucket) < BUCKETS)
        }
        Internal::Compared { differing, .. } => {
            differing.len() <= COMPARE_BUCKETS_MAX && differing.iter().all(|&bucket| usize::from(bucket) < BUCKETS)
        }
        Internal::Chunk(chunk) => {
            usize::from(chunk.bucket) < BUCKETS
                && chunk.chunk < chunk.chunks
                && chunk
                    .entries
                    .iter()
                    .all(|e| entry_in_range(e, bounds) && bucket_of_key(&e.key) == chunk.bucket)
        }
        // A cutoff lets replicas collect tombstones stamped before it: one
        // ahead of now would collect deletes not yet everywhere.
        Internal::Digests { digests } => {
            let now_s = bounds.now_unix_ms.saturating_sub(crate::storage::stamp::EPOCH_UNIX_MS) / 1000;
            digests.len() <= BUCKETS
                && (digests.iter()).all(|d| usize::from(d.bucket) < BUCKETS && u64::from(d.cutoff_s) <= now_s)
        }
    };
    if ok { Ok(()) } else { Err(InternalError::OutOfRange) }
}

/// The range checks of an item round's or a consistent page read's message.
fn round_in_range(message: &Internal, bounds: &Bounds) -> bool {
    let of_bucket = |e: &Entry, bucket: u16| entry_in_range(e, bounds) && bucket_of_key(&e.key) == bucket;
    match message {
        Internal::Accept { entry, .. } => entry_in_range(entry, bounds),
        Internal::Prepare { ballot, .. } => stamp_in_range(*ballot, bounds),
        Internal::Vote {
            bucket, seen, entry, ..
        } => {
            usize::from(*bucket) < BUCKETS
                && stamp_in_range(*seen, bounds)
                && entry.iter().all(|e| of_bucket(e, *bucket))
        }
        Internal::PageAsk { read, .. } => crate::storage::item_key::BucketRead::decode(read).is_some(),
        Internal::PageVote { bucket, entries, .. } => {
            usize::from(*bucket) < BUCKETS
                && entries.len() <= PAGE_VOTE_ENTRIES_MAX
                && entries.iter().all(|e| !e.tombstone && of_bucket(e, *bucket))
        }
        _ => false,
    }
}

/// A stamp no further ahead of the receiver's clock than clocks disagree.
fn stamp_in_range(stamp: Stamp, bounds: &Bounds) -> bool {
    let now_ms = bounds.now_unix_ms.saturating_sub(crate::storage::stamp::EPOCH_UNIX_MS);
    stamp.millis() <= now_ms + CLOCK_SKEW_MS_MAX
}

fn entry_in_range(entry: &Entry, bounds: &Bounds) -> bool {
    // Key and value lengths were checked while reading.
    stamp_in_range(entry.stamp, bounds) && (!entry.tombstone || entry.value.is_empty())
}

/// A heartbeat of a node that started at most now (give or take the skew)
/// and has counted at most two rounds per gossip round length since.
fn heartbeat_in_range(heartbeat: &Heartbeat, bounds: &Bounds) -> bool {
    let latest_ms = bounds.now_unix_ms + CLOCK_SKEW_MS_MAX;
    heartbeat.incarnation <= latest_ms && heartbeat.counter <= 2 * (latest_ms - heartbeat.incarnation) / ROUND_MS + 16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bucket: u16, digest: u64, cutoff_s: u32) -> BucketDigest {
        BucketDigest {
            bucket,
            digest,
            cutoff_s,
        }
    }

    fn entry() -> Entry {
        Entry {
            key: b"key".to_vec(),
            value: vec![7; 300],
            version: -3,
            stamp: Stamp(99),
            tombstone: false,
        }
    }

    const NOW: u64 = 1_800_000_000_000;

    fn envelope(sender: NodeId, to: NodeId) -> Envelope {
        Envelope {
            sender,
            to,
            incarnation: 5,
            seq: 9,
            sent_unix_ms: NOW,
        }
    }

    fn bounds() -> Bounds {
        Bounds { now_unix_ms: NOW }
    }

    #[test]
    fn every_kind_round_trips() {
        let secret = Secret::from_bytes(b"s");
        let messages = vec![
            Internal::Gossip {
                universe: UniverseTag { version: 3, hash: 77 },
                heartbeats: vec![
                    (
                        3,
                        Heartbeat {
                            incarnation: 5,
                            counter: 9,
                            ready: true,
                            behind: true,
                            full: true,
                            pulling: true,
                        }
                    );
                    3
                ],
            },
            Internal::Universe(Universe::from_servers(&["127.0.0.1:1".to_string(), "h:2".to_string()])),
            Internal::Forward {
                hops: 1,
                client: "10.1.2.3:4000".parse().unwrap(),
                datagram: vec![1, 2, 3],
            },
            Internal::Forward {
                hops: 0,
                client: "[::1]:5".parse().unwrap(),
                datagram: vec![],
            },
            Internal::Replicate {
                seq: 77,
                entry: entry(),
            },
            Internal::ReplicateAck {
                seq: 77,
                bucket: 4095,
                full: true,
                refused: true,
            },
            Internal::Pull {
                request: 1,
                bucket: 2,
                digest: None,
            },
            Internal::Pull {
                request: 1,
                bucket: 2,
                digest: Some(u64::MAX),
            },
            Internal::Chunk(Chunk {
                request: 1,
                bucket: 2,
                chunk: 0,
                chunks: 1,
                entries: vec![entry(), entry()],
            }),
            Internal::Admin {
                message_id: vec![1; 16],
                command: 0x20,
                arg: b"x".to_vec(),
            },
            Internal::Digests {
                digests: vec![digest(1, 2, 3), digest(4095, u64::MAX, u32::MAX)],
            },
            Internal::Prepare {
                round: 5,
                ballot: Stamp(77),
                key: vec![9; 33],
            },
            Internal::Accept {
                round: 6,
                entry: entry(),
            },
            Internal::Vote {
                round: 7,
                bucket: 4095,
                ok: true,
                full: false,
                seen: Stamp(3),
                entry: Some(entry()),
            },
            Internal::Vote {
                round: 8,
                bucket: 0,
                ok: false,
                full: true,
                seen: Stamp(u64::MAX),
                entry: None,
            },
            Internal::PageAsk {
                round: 9,
                key: vec![1; 33],
                read: vec![3, 1, 2, 3, 8],
            },
            Internal::PageVote {
                round: 10,
                bucket: 4095,
                ok: true,
                more: true,
                entries: vec![entry(), entry()],
            },
            Internal::PageVote {
                round: 11,
                bucket: 0,
                ok: false,
                more: false,
                entries: vec![],
            },
            Internal::Compare {
                request: u64::MAX,
                digests: (0..COMPARE_BUCKETS_MAX as u16)
                    .map(|b| (b, u64::from(b) << 40))
                    .collect(),
            },
            Internal::Compare {
                request: 0,
                digests: vec![],
            },
            Internal::Compared {
                request: 12,
                differing: (0..COMPARE_BUCKETS_MAX as u16).rev().collect(),
            },
        ];
        for message in messages {
            let datagram = encode(&secret, &envelope(3, 1), &message);
            assert!(is_internal(&datagram));
            assert_eq!(message.encoded_bytes(), datagram.len(), "{message:?}");
            assert_eq!(decode_unchecked(&secret, &datagram), Ok((envelope(3, 1), message)));
        }
    }

    #[test]
    fn an_entry_takes_what_entry_wire_bytes_says() {
        for (key, value) in [(1, 0), (32, 10_000), (7, 500)] {
            let entry = Entry {
                key: vec![1; key],
                value: vec![2; value],
                ..entry()
            };
            let mut count = Writer(Count::default());
            count.entry(&entry);
            assert_eq!(count.0.0, entry_wire_bytes(key, value));
        }
        let big = Internal::Chunk(Chunk {
            request: 1,
            bucket: 0,
            chunk: 0,
            chunks: 1,
            entries: vec![entry(); 40],
        });
        let datagram = encode(&Secret::from_bytes(b"s"), &envelope(1, 0), &big);
        assert_eq!(big.encoded_bytes(), datagram.len(), "a length varint of two bytes");
    }

    #[test]
    fn page_reads_beyond_their_bounds_do_not_decode() {
        let secret = Secret::from_bytes(b"s");
        let decodes = |message: &Internal| {
            let datagram = encode(&secret, &envelope(1, 0), message);
            decode_unchecked(&secret, &datagram).map(|_| ())
        };
        let vote = |n: usize, ok: bool| Internal::PageVote {
            round: 1,
            bucket: 1,
            ok,
            more: false,
            entries: vec![entry(); n],
        };
        assert_eq!(decodes(&vote(PAGE_VOTE_ENTRIES_MAX, true)), Ok(()));
        assert_eq!(
            decodes(&vote(PAGE_VOTE_ENTRIES_MAX + 1, true)),
            Err(InternalError::Malformed)
        );
        let ask = |read_len: usize| Internal::PageAsk {
            round: 1,
            key: vec![1; 33],
            read: vec![0; read_len],
        };
        assert_eq!(decodes(&ask(PAGE_READ_BYTES_MAX)), Ok(()));
        assert_eq!(decodes(&ask(PAGE_READ_BYTES_MAX + 1)), Err(InternalError::Malformed));
        // An unknown flag in a vote: bits beyond ok and more.
        for (flags, decoded) in [(3, true), (4, false)] {
            let mut w = Writer(Vec::new());
            w.u64(1);
            w.u16(1);
            w.u8(flags);
            w.u16(0);
            assert_eq!(read_page_vote(&mut Reader(&w.0)).is_some(), decoded, "flags {flags}");
        }
    }

    #[test]
    fn every_kind_byte_decodes_to_its_kind() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_byte(kind as u8), Some(kind));
        }
        assert_eq!(Kind::from_byte(0), None);
        assert_eq!(Kind::from_byte(19), None);
    }

    fn batchable() -> Vec<Internal> {
        vec![
            Internal::Forward {
                hops: 1,
                client: "127.0.0.1:9".parse().unwrap(),
                datagram: vec![0x0a; 40],
            },
            Internal::Replicate { seq: 3, entry: entry() },
            Internal::ReplicateAck {
                seq: 3,
                bucket: 7,
                full: true,
                refused: false,
            },
            Internal::Digests {
                digests: vec![digest(1, 2, 3)],
            },
            Internal::Held {
                bucket: 9,
                digest: 0xdead_beef,
            },
        ]
    }

    #[test]
    fn a_batch_round_trips_and_is_checked_message_by_message() {
        let secret = Secret::from_bytes(b"s");
        let batch = Internal::Batch(batchable());
        let datagram = encode(&secret, &envelope(1, 0), &batch);
        assert_eq!(batch.encoded_bytes(), datagram.len());
        assert_eq!(decode(&secret, 0, &bounds(), &datagram), Ok((envelope(1, 0), batch)));
        // One message out of range spoils the batch.
        let mut messages = batchable();
        messages.push(Internal::ReplicateAck {
            seq: 1,
            bucket: BUCKETS as u16,
            full: false,
            refused: false,
        });
        let datagram = encode(&secret, &envelope(1, 0), &Internal::Batch(messages));
        assert_eq!(decode(&secret, 0, &bounds(), &datagram), Err(InternalError::OutOfRange));
        // A hand-off confirmation of a bucket out of range too.
        let mut messages = batchable();
        messages.push(Internal::Held {
            bucket: BUCKETS as u16,
            digest: 1,
        });
        let datagram = encode(&secret, &envelope(1, 0), &Internal::Batch(messages));
        assert_eq!(decode(&secret, 0, &bounds(), &datagram), Err(InternalError::OutOfRange));
        // Gossip and admin commands travel alone.
        let gossip = Internal::Gossip {
            universe: UniverseTag::default(),
            heartbeats: vec![(1, Heartbeat::default()); 3],
        };
        let datagram = encode(&secret, &envelope(1, 0), &Internal::Batch(vec![gossip]));
        assert_eq!(decode(&secret, 0, &bounds(), &datagram), Err(InternalError::OutOfRange));
        // No batch inside a batch, however it is framed.
        let nested = Internal::Batch(vec![Internal::Batch(batchable())]);
        let datagram = encode(&secret, &envelope(1, 0), &nested);
        assert_eq!(decode_unchecked(&secret, &datagram), Err(InternalError::Malformed));
        // An operator may not batch.
        let datagram = encode(&secret, &envelope(OPERATOR, 0), &Internal::Batch(batchable()));
        assert_eq!(decode(&secret, 0, &bounds(), &datagram), Err(InternalError::OutOfRange));
    }

    #[test]
    fn wrong_secret_or_tampering_is_rejected() {
        let ack = Internal::ReplicateAck {
            seq: 1,
            bucket: 1,
            full: false,
            refused: true,
        };
        let a = Secret::from_bytes(b"a");
        let datagram = encode(&a, &envelope(1, 0), &ack);
        assert_eq!(decode(&a, 0, &bounds(), &datagram), Ok((envelope(1, 0), ack)));
        let b = Secret::from_bytes(b"b");
        assert_eq!(decode(&b, 0, &bounds(), &datagram), Err(InternalError::BadMac));
        // Every byte after the framing: fields, envelope, each byte of the tag.
        for at in 3..datagram.len() {
            let mut tampered = datagram.clone();
            tampered[at] ^= 1;
            assert_eq!(
                decode(&a, 0, &bounds(), &tampered),
                Err(InternalError::BadMac),
                "byte {at}"
            );
        }
        assert_eq!(decode(&a, 0, &bounds(), &datagram[..10]), Err(InternalError::Malformed));
        assert_eq!(decode(&a, 2, &bounds(), &datagram), Err(InternalError::Misdirected));
    }

    #[test]
    fn frames_are_delimited_by_their_own_header() {
        let secret = Secret::from_bytes(b"s");
        let big = encode(
            &secret,
            &envelope(1, 0),
            &Internal::Chunk(Chunk {
                request: 9,
                bucket: 3,
                chunk: 0,
                chunks: 1,
                entries: vec![entry(); 100],
            }),
        );
        let small = encode(
            &secret,
            &envelope(1, 0),
            &Internal::Pull {
                request: 9,
                bucket: 3,
                digest: None,
            },
        );
        let stream = [big.clone(), small.clone()].concat();
        assert_eq!(frame_bytes(&stream), Ok(Some(big.len())));
        assert_eq!(frame_bytes(&stream[big.len()..]), Ok(Some(small.len())));
        // A header cut short asks for more bytes; a foreign byte is refused.
        assert_eq!(frame_bytes(&big[..3]), Ok(None));
        assert_eq!(frame_bytes(&[]), Ok(None));
        assert_eq!(frame_bytes(&[0x0a, 0x01, 0x00]), Err(InternalError::Malformed));
    }

    #[test]
    fn fields_out_of_range_are_refused_whole() {
        let secret = Secret::from_bytes(b"s");
        let check = |sender: NodeId, message: &Internal| {
            decode(&secret, 0, &bounds(), &encode(&secret, &envelope(sender, 0), message)).map(|_| ())
        };
        let now_stamp_ms = NOW - crate::storage::stamp::EPOCH_UNIX_MS;
        let stamped = |ms: u64, tombstone: bool, value: &[u8]| Entry {
            key: b"k".to_vec(),
            value: value.to_vec(),
            version: 1,
            stamp: Stamp::from_millis(ms),
            tombstone,
        };
        let replicate = |entry| Internal::Replicate { seq: 1, entry };
        assert_eq!(check(1, &replicate(stamped(now_stamp_ms, false, b"v"))), Ok(()));
        assert_eq!(
            check(1, &replicate(stamped(now_stamp_ms + CLOCK_SKEW_MS_MAX, false, b"v"))),
            Ok(())
        );
        let out = Err(InternalError::OutOfRange);
        // A stamp near 2^64 once reached every replica and wrapped the clock.
        assert_eq!(
            check(1, &replicate(entry_with_stamp(u64::MAX))),
            out,
            "far future stamp"
        );
        assert_eq!(
            check(1, &replicate(stamped(now_stamp_ms + CLOCK_SKEW_MS_MAX + 1, false, b""))),
            out
        );
        assert_eq!(
            check(1, &replicate(stamped(now_stamp_ms, true, b"v"))),
            out,
            "a tombstone with a value"
        );
        assert_eq!(
            check(OPERATOR, &replicate(stamped(now_stamp_ms, false, b"v"))),
            out,
            "operators only ask"
        );
        let compare = |digests: Vec<(u16, u64)>| Internal::Compare { request: 1, digests };
        assert_eq!(check(1, &compare(vec![(4095, 1)])), Ok(()));
        assert_eq!(check(1, &compare(vec![(0, 1), (4096, 1)])), out, "no bucket 4096");
        let too_many = (0..=COMPARE_BUCKETS_MAX as u16).map(|b| (b, 0)).collect();
        assert_eq!(check(1, &compare(too_many)), Err(InternalError::Malformed));
        let compared = |differing: Vec<u16>| Internal::Compared { request: 1, differing };
        assert_eq!(check(1, &compared(vec![0, 4095])), Ok(()));
        assert_eq!(check(1, &compared(vec![u16::MAX])), out, "no bucket 65535");
        assert_eq!(check(OPERATOR, &compared(vec![1])), out, "operators only ask");
        let admin = Internal::Admin {
            message_id: vec![1],
            command: 0x20,
            arg: vec![],
        };
        assert_eq!(check(OPERATOR, &admin), Ok(()));
        assert_eq!(check(1, &admin), out, "nodes do not send admin commands");
        let page_vote = |bucket: u16, entry: Entry| Internal::PageVote {
            round: 1,
            bucket,
            ok: true,
            more: false,
            entries: vec![entry],
        };
        let live = stamped(now_stamp_ms, false, b"v");
        let bucket = bucket_of_key(&live.key);
        assert_eq!(check(1, &page_vote(bucket, live.clone())), Ok(()));
        assert_eq!(
            check(1, &page_vote(bucket ^ 1, live)),
            out,
            "a record of another bucket"
        );
        assert_eq!(
            check(1, &page_vote(bucket, stamped(now_stamp_ms, true, b""))),
            out,
            "a page holds no tombstone"
        );
        let page_ask = |read: Vec<u8>| Internal::PageAsk {
            round: 1,
            key: b"k".to_vec(),
            read,
        };
        assert_eq!(check(1, &page_ask(vec![0, 8])), Ok(()));
        assert_eq!(check(1, &page_ask(vec![0, 64])), out, "a read that does not decode");
        let now_s = ((NOW - crate::storage::stamp::EPOCH_UNIX_MS) / 1000) as u32;
        let digests = |bucket: u16, cutoff_s: u32| Internal::Digests {
            digests: vec![digest(bucket, 1, cutoff_s)],
        };
        assert_eq!(check(1, &digests(4095, now_s)), Ok(()));
        assert_eq!(check(1, &digests(4096, 0)), out, "no bucket 4096");
        assert_eq!(check(1, &digests(1, now_s + 1)), out, "a cutoff ahead of now");
        let ack = |bucket| Internal::ReplicateAck {
            seq: 1,
            bucket,
            full: false,
            refused: false,
        };
        assert_eq!(check(1, &ack(4096)), out);
        assert_eq!(
            check(
                1,
                &Internal::Pull {
                    request: 1,
                    bucket: 4096,
                    digest: None
                }
            ),
            out
        );
        let chunk = |bucket, chunk, chunks, entries| {
            Internal::Chunk(Chunk {
                request: 1,
                bucket,
                chunk,
                chunks,
                entries,
            })
        };
        let k_bucket = bucket_of_key(b"k");
        assert_eq!(check(1, &chunk(k_bucket, 0, 1, vec![stamped(1, false, b"v")])), Ok(()));
        assert_eq!(check(1, &chunk(k_bucket, 1, 1, vec![])), out, "chunk 1 of 1");
        assert_eq!(
            check(1, &chunk(k_bucket ^ 1, 0, 1, vec![stamped(1, false, b"v")])),
            out,
            "another bucket's key"
        );
        let prepare = |ms| Internal::Prepare {
            round: 1,
            ballot: Stamp::from_millis(ms),
            key: b"k".to_vec(),
        };
        assert_eq!(check(1, &prepare(now_stamp_ms)), Ok(()));
        assert_eq!(
            check(1, &prepare(now_stamp_ms + CLOCK_SKEW_MS_MAX + 1)),
            out,
            "a ballot from the future"
        );
        let accept = |entry| Internal::Accept { round: 1, entry };
        assert_eq!(check(1, &accept(stamped(now_stamp_ms, false, b"v"))), Ok(()));
        assert_eq!(check(1, &accept(stamped(now_stamp_ms, true, b"v"))), out);
        let vote = |bucket, seen_ms, entry| Internal::Vote {
            round: 1,
            bucket,
            ok: true,
            full: false,
            seen: Stamp::from_millis(seen_ms),
            entry,
        };
        assert_eq!(
            check(1, &vote(k_bucket, now_stamp_ms, Some(stamped(1, false, b"v")))),
            Ok(())
        );
        assert_eq!(check(1, &vote(4096, 1, None)), out, "no bucket 4096");
        assert_eq!(
            check(1, &vote(k_bucket, now_stamp_ms + CLOCK_SKEW_MS_MAX + 1, None)),
            out
        );
        assert_eq!(
            check(1, &vote(k_bucket ^ 1, 1, Some(stamped(1, false, b"v")))),
            out,
            "a record of another bucket"
        );
        let heartbeats = |incarnation: u64, counter: u64| Internal::Gossip {
            universe: UniverseTag::default(),
            heartbeats: vec![
                (
                    1,
                    Heartbeat {
                        incarnation,
                        counter,
                        ..Heartbeat::default()
                    }
                );
                3
            ],
        };
        let started = NOW - 60_000;
        assert_eq!(check(1, &heartbeats(started, 300)), Ok(()), "a minute of rounds");
        assert_eq!(
            check(1, &heartbeats(started, u64::MAX)),
            out,
            "more rounds than time allows"
        );
        assert_eq!(check(1, &heartbeats(u64::MAX, 0)), out, "started in the future");
        assert_eq!(
            check(
                1,
                &Internal::Gossip {
                    universe: UniverseTag::default(),
                    heartbeats: vec![(2, Heartbeat::default()); 2]
                }
            ),
            out,
            "gossip without the sender's own heartbeat"
        );
        assert_eq!(
            check(
                OPERATOR,
                &Internal::Universe(Universe::from_servers(&["127.0.0.1:1".to_string()]))
            ),
            out,
            "an operator's universe comes in an admin command"
        );
        let forward = |hops| Internal::Forward {
            hops,
            client: "10.0.0.1:5".parse().unwrap(),
            datagram: vec![1],
        };
        assert_eq!(check(1, &forward(FORWARD_HOPS_MAX)), Ok(()));
        assert_eq!(check(1, &forward(FORWARD_HOPS_MAX + 1)), out);
    }

    fn entry_with_stamp(stamp: u64) -> Entry {
        Entry {
            stamp: Stamp(stamp),
            ..entry()
        }
    }

    #[test]
    fn client_messages_are_never_internal() {
        let client = crate::protocol::wire::encode_msg(&[1; 16], vec![8, 1]);
        assert!(!is_internal(&client));
    }
}

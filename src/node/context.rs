//! What every part of a node shares: its identity in the cluster, the
//! routing view, counters for operators, its clock and its I/O. Parts of a
//! node import this and [`crate::node::messages`], never each other.

use crate::cluster::internal::{self, Bounds, Envelope, Internal, InternalError, Secret};
use crate::cluster::membership::Pause;
use crate::cluster::ring::View;
use crate::cluster::universe::{NodeId, Universe};
use crate::node::counters::NodeCounters;
use crate::node::roster::{Roster, SLOTS_MAX};
use crate::storage::hash::BucketId;
use crate::storage::stamp::EPOCH_UNIX_MS;
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// Shards a node may have (`--workers` at most).
pub const SHARDS_MAX: usize = 64;

/// What every thread of a node shares about the cluster.
pub struct NodeContext {
    /// This node's slot in its roster, and its id.
    pub self_index: usize,
    pub self_id: NodeId,
    /// Every node this node has known since it started, by slot.
    pub roster: Roster,
    /// The universe this node holds (the cluster core replaces it).
    pub universe: RwLock<Arc<Universe>>,
    /// The node bits of the stamps this node issues (see
    /// [`crate::cluster::universe::Member::stamp_id`]).
    pub stamp_id: AtomicU8,
    /// A peer holds a universe of this node's version that does not list
    /// this node: it was started with a servers file the cluster has not
    /// adopted. It serves no key until a newer universe lists it.
    pub outsider: AtomicBool,
    pub secret: Secret,
    /// What peers know this run of the node by: its start time, Unix ms
    /// (later, should a previous run have started later still; see
    /// [`crate::cluster::membership`]).
    pub incarnation: AtomicU64,
    /// Per peer and channel, the last sequence number signed (see
    /// [`crate::cluster::freshness`]).
    pub datagram_seqs: Vec<AtomicU64>,
    pub stream_seqs: Vec<AtomicU64>,
    pub view: RwLock<Arc<View>>,
    pub membership_count: AtomicUsize,
    pub counters: NodeCounters,
    /// Per bucket: its digest in the shard that holds it, kept up to date
    /// by that shard, so that the cluster core can ask a peer for a bucket
    /// only if the peer's copy differs (see [`crate::node::cluster_core`]).
    pub digests: Vec<AtomicU64>,
    /// Per bucket: this node is pulling it (it gained it, or catches up),
    /// from when the pull is queued until its first source answered; the
    /// router coordinates no request of it meanwhile (see
    /// [`crate::cluster::ring::Myself::pulling_bucket`]).
    pub pulling: Vec<AtomicBool>,
    /// Per shard: since when (monotonic ms, plus one; 0: none) its journal
    /// holds written records not yet synced, for operators.
    pub unsynced_since_ms: Vec<AtomicU64>,
    /// Set by the event loop when it sees it was away (continued after a
    /// stop, or stalled past the failure timeout), until the cluster thread
    /// takes over (marks this node not ready and catches it up): meanwhile this
    /// node's own view still calls it ready.
    pub away: AwayFlag,
    pub clock: NodeClock,
    /// Known bugs switched on (only the simulator does).
    #[cfg(feature = "planted-bugs")]
    pub bugs: PlantedBugs,
}

/// How a thread of this node found it was away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Away {
    /// Continued after a stop: the `stop`-th SIGCONT since start. The event
    /// loop and the cluster thread may both see the same one; it counts
    /// once.
    Continued { stop: u64 },
    /// A thread ran this late, with no signal (an overloaded host).
    Stalled { gap_ms: u64 },
}

/// What the event loop and the cluster driver saw of this node being away,
/// until the cluster core takes it (marks this node not ready and
/// catches it up). Atomics, so that the event loop reports without a lock.
#[derive(Default)]
pub struct AwayFlag {
    /// Highest stop reported, and highest stop taken.
    continued: AtomicU64,
    taken: AtomicU64,
    /// Longest stall reported since last taken; 0: none.
    stalled_ms: AtomicU64,
}

impl AwayFlag {
    pub fn set(&self, away: Away) {
        match away {
            Away::Continued { stop } => self.continued.fetch_max(stop, Ordering::AcqRel),
            Away::Stalled { gap_ms } => self.stalled_ms.fetch_max(gap_ms.max(1), Ordering::AcqRel),
        };
    }

    /// Whether something was reported and not taken yet: meanwhile this
    /// node's own view still calls it ready, and its data may be stale.
    pub fn is_set(&self) -> bool {
        self.continued.load(Ordering::Acquire) > self.taken.load(Ordering::Acquire)
            || self.stalled_ms.load(Ordering::Acquire) != 0
    }

    /// What was reported since the last call; a stop outranks a stall.
    pub fn take(&self) -> Option<Pause> {
        let continued = self.continued.load(Ordering::Acquire);
        let taken = self.taken.fetch_max(continued, Ordering::AcqRel);
        let stalled_ms = self.stalled_ms.swap(0, Ordering::AcqRel);
        if continued > taken {
            Some(Pause::Suspended)
        } else if stalled_ms != 0 {
            Some(Pause::Stalled { gap_ms: stalled_ms })
        } else {
            None
        }
    }
}

/// Whether planted bug `$bug` is switched on in `$ctx` (a
/// [`NodeContext`]): always false without the `planted-bugs` feature,
/// so the check compiles to nothing in the node's binary.
#[macro_export]
macro_rules! planted {
    ($ctx:expr, $bug:ident) => {{
        #[cfg(feature = "planted-bugs")]
        let on = $ctx.bugs.$bug;
        #[cfg(not(feature = "planted-bugs"))]
        let on = {
            let _ = &$ctx;
            false
        };
        on
    }};
}

/// Known bugs, each behind a switch, so that the simulator can show it
/// finds them (`dynakv-sim --plant`). Compiled in only with the
/// `planted-bugs` feature, which the simulator enables: the node's binary
/// has none of them (see [`crate::planted`]).
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlantedBugs {
    /// A coordinator answers a write before its replicas acknowledge it.
    pub ack_before_replicas: bool,
    /// Tombstones are collected at the first retain pass, not once every
    /// replica holds them.
    pub collect_tombstones_at_once: bool,
    /// A node that was paused coordinates again at once, without catching up.
    pub skip_catch_up_after_pause: bool,
    /// Replicated and transferred entries are taken whatever their stamp.
    pub ignore_stamps_on_merge: bool,
    /// With `--fsync always`, replies and acks leave once their records
    /// are written, before the sync.
    pub ack_before_sync: bool,
    /// Recovery takes records whose checksums fail.
    pub recovery_ignores_checksums: bool,
    /// Compaction removes the segments it covers when it starts, before
    /// its snapshot is durable.
    pub compaction_deletes_log_early: bool,
    /// A bucket handed off is dropped at the retain pass after its offers
    /// were queued, whether or not its replicas confirmed they hold it.
    pub drop_handoff_unconfirmed: bool,
    /// An item's round takes one vote as a majority (a DynamoDB write
    /// acknowledged with one copy).
    pub single_vote_rounds: bool,
}

impl NodeContext {
    /// The context of the node in slot `self_index` of `roster`, holding
    /// `universe`, starting from `view`.
    pub fn new(
        self_index: usize,
        roster: Roster,
        universe: Universe,
        secret: Secret,
        view: View,
        clock: NodeClock,
    ) -> NodeContext {
        let alive = view.alive_count();
        let self_id = roster.id(self_index).unwrap_or_default();
        let stamp_id = (roster.get(self_index))
            .and_then(|me| universe.member(&me.name))
            .map_or(self_index as u8, |member| member.stamp_id);
        NodeContext {
            self_index,
            self_id,
            roster,
            universe: RwLock::new(Arc::new(universe)),
            stamp_id: AtomicU8::new(stamp_id),
            outsider: AtomicBool::new(false),
            secret,
            incarnation: AtomicU64::new(clock.unix_ms()),
            datagram_seqs: (0..SLOTS_MAX).map(|_| AtomicU64::new(0)).collect(),
            stream_seqs: (0..SLOTS_MAX).map(|_| AtomicU64::new(0)).collect(),
            view: RwLock::new(Arc::new(view)),
            membership_count: AtomicUsize::new(alive),
            counters: Default::default(),
            digests: (0..crate::storage::hash::BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            pulling: (0..crate::storage::hash::BUCKETS)
                .map(|_| AtomicBool::new(false))
                .collect(),
            unsynced_since_ms: (0..SHARDS_MAX).map(|_| AtomicU64::new(0)).collect(),
            away: AwayFlag::default(),
            clock,
            #[cfg(feature = "planted-bugs")]
            bugs: PlantedBugs::default(),
        }
    }

    pub fn view(&self) -> Arc<View> {
        self.view.read().clone()
    }

    pub fn shard_of(&self, bucket: BucketId, shards: usize) -> usize {
        usize::from(bucket) % shards
    }

    /// The context of node `self_index` of a servers file's `names`
    /// (addresses as names), starting from `view`: for tests of a part.
    pub fn of_servers(
        self_index: usize,
        names: &[String],
        secret: Secret,
        view: View,
        clock: NodeClock,
    ) -> NodeContext {
        let roster = Roster::of_names(names.iter().map(String::as_str));
        NodeContext::new(self_index, roster, Universe::from_servers(names), secret, view, clock)
    }

    /// The context of the one node of a one-node cluster at time 0: for
    /// tests of a part that only counts and reads the time.
    #[cfg(test)]
    pub fn alone() -> NodeContext {
        let names = vec!["127.0.0.1:1".to_string()];
        let view =
            crate::cluster::ring::Placement::new(&names, 1).view(0, crate::cluster::ring::Liveness::ready(vec![true]));
        NodeContext::of_servers(
            0,
            &names,
            Secret::from_bytes(b"s"),
            view,
            NodeClock::set_from_outside(0),
        )
    }

    /// The universe this node holds.
    pub fn universe(&self) -> Arc<Universe> {
        self.universe.read().clone()
    }

    /// This node's name (`host:port`).
    pub fn name(&self) -> &str {
        self.roster.get(self.self_index).map_or("", |me| me.name.as_str())
    }

    /// Encodes and signs a message from this node to the node in slot
    /// `to`, numbered on its channel (empty for a slot it does not know).
    pub fn encode(&self, to: usize, channel: Channel, message: &Internal) -> Vec<u8> {
        let seqs = match channel {
            Channel::Datagram => &self.datagram_seqs,
            Channel::Stream => &self.stream_seqs,
        };
        let (Some(to_id), Some(seq)) = (self.roster.id(to), seqs.get(to)) else {
            return Vec::new();
        };
        let envelope = Envelope {
            sender: self.self_id,
            to: to_id,
            incarnation: self.incarnation.load(Ordering::Relaxed),
            seq: seq.fetch_add(1, Ordering::Relaxed) + 1,
            sent_unix_ms: self.clock.unix_ms(),
        };
        internal::encode(&self.secret, &envelope, message)
    }

    /// Encodes and signs a message for the node with id `to`, which this
    /// node may not know (its receiver checks only the clock window of
    /// what it takes from strangers: the sequence number is 1).
    pub fn encode_for(&self, to: NodeId, message: &Internal) -> Vec<u8> {
        let envelope = Envelope {
            sender: self.self_id,
            to,
            incarnation: self.incarnation.load(Ordering::Relaxed),
            seq: 1,
            sent_unix_ms: self.clock.unix_ms(),
        };
        internal::encode(&self.secret, &envelope, message)
    }

    /// Encodes, signs and sends an internal datagram to the node in slot `to`.
    pub fn send(&self, io: &dyn NodeIo, to: usize, message: &Internal) {
        if let Some(addr) = self.roster.addr(to) {
            io.datagram(addr, &self.encode(to, Channel::Datagram, message));
        }
    }

    /// What messages to this node must satisfy, now.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            now_unix_ms: self.clock.unix_ms(),
        }
    }

    /// Counts a refused message by why.
    pub fn count_rejected(&self, error: InternalError) {
        self.counters.count_rejected(error.into());
    }
}

/// How a message travels: its sequence numbers count per channel, since
/// each channel has its own receiving side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// UDP datagrams (gossip, replication, forwards, digests).
    Datagram,
    /// TCP streams (bucket pulls and chunks).
    Stream,
}

/// The wall clock in Unix milliseconds.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A node's time: real, or set from outside (the simulator). Every part of
/// a node's logic reads time here and nowhere else.
///
/// Two clocks, never mixed, told apart by name wherever a time is kept: a
/// bare `_ms` is monotonic time since the node started ([`NodeClock::mono_ms`]:
/// timeouts, deadlines, intervals); a wall-clock time says which epoch it
/// counts from, `_unix_ms` ([`NodeClock::unix_ms`]: incarnations, send times)
/// or `_stamp_ms` ([`NodeClock::stamp_ms`]: write stamps, WIPEOUT floors,
/// tombstone cutoffs), since only those travel between nodes.
#[derive(Debug)]
pub struct NodeClock {
    source: TimeSource,
}

#[derive(Debug)]
enum TimeSource {
    Real {
        started: Instant,
    },
    /// Monotonic ms since the node started, and the wall clock in Unix ms.
    Set {
        mono_ms: AtomicU64,
        unix_ms: AtomicU64,
    },
}

impl NodeClock {
    /// The process's clocks.
    pub fn real() -> NodeClock {
        NodeClock {
            source: TimeSource::Real {
                started: Instant::now(),
            },
        }
    }

    /// A clock that reads what [`NodeClock::set`] last put in.
    pub fn set_from_outside(unix_ms: u64) -> NodeClock {
        NodeClock {
            source: TimeSource::Set {
                mono_ms: AtomicU64::new(0),
                unix_ms: AtomicU64::new(unix_ms),
            },
        }
    }

    /// Moves a set clock (a real one ignores this).
    pub fn set(&self, mono_ms: u64, unix_ms: u64) {
        if let TimeSource::Set {
            mono_ms: mono,
            unix_ms: unix,
        } = &self.source
        {
            mono.store(mono_ms, Ordering::Relaxed);
            unix.store(unix_ms, Ordering::Relaxed);
        }
    }

    /// Milliseconds since the node started; never goes back.
    pub fn mono_ms(&self) -> u64 {
        match &self.source {
            TimeSource::Real { started } => started.elapsed().as_millis() as u64,
            TimeSource::Set { mono_ms, .. } => mono_ms.load(Ordering::Relaxed),
        }
    }

    /// The wall clock, Unix ms (it may jump).
    pub fn unix_ms(&self) -> u64 {
        match &self.source {
            TimeSource::Real { .. } => unix_millis(),
            TimeSource::Set { unix_ms, .. } => unix_ms.load(Ordering::Relaxed),
        }
    }

    /// The wall clock in stamp milliseconds (since [`EPOCH_UNIX_MS`]).
    pub fn stamp_ms(&self) -> u64 {
        self.unix_ms().saturating_sub(EPOCH_UNIX_MS)
    }
}

/// What a node's logic sends through: the runtime's sockets, or the
/// simulator's network.
pub trait NodeIo: Send + Sync {
    /// Sends one datagram (a reply to a client, or a message to a node).
    fn datagram(&self, to: SocketAddr, bytes: &[u8]);
    /// Queues signed frames for node `to`'s stream, all or none; false when
    /// they do not fit (the sender asks again later).
    fn stream(&self, to: usize, frames: Vec<Vec<u8>>) -> bool;
    /// A shard has applied a received chunk of `bytes` (stream flow control).
    fn applied(&self, bytes: usize);
    /// Datagrams the kernel refused to send, so far.
    fn dropped_sends(&self) -> u64 {
        0
    }
    /// Bytes free on the data directory's file system (0 without one).
    fn disk_free_bytes(&self) -> u64 {
        0
    }
    /// SHUTDOWN: the node ends at once, like a crash (no reply, no cleanup,
    /// no hand-off). A process exits; the simulator takes the node down.
    fn shutdown(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_seen_by_two_threads_counts_once_and_outranks_a_stall() {
        let flag = AwayFlag::default();
        assert!(!flag.is_set());
        assert_eq!(flag.take(), None);

        flag.set(Away::Stalled { gap_ms: 1800 });
        assert!(flag.is_set(), "a stalled node stops coordinating at once");
        assert_eq!(flag.take(), Some(Pause::Stalled { gap_ms: 1800 }));
        assert!(!flag.is_set());

        flag.set(Away::Stalled { gap_ms: 900 });
        flag.set(Away::Continued { stop: 1 });
        assert_eq!(flag.take(), Some(Pause::Suspended));
        // The other thread reports the same SIGCONT after the first was taken.
        flag.set(Away::Continued { stop: 1 });
        assert!(!flag.is_set());
        assert_eq!(flag.take(), None, "one stop, one suspension");

        flag.set(Away::Continued { stop: 2 });
        assert_eq!(flag.take(), Some(Pause::Suspended), "the next stop counts");
    }
}

//! Every number a node reports, declared once. `node_stats!` turns one
//! table into the atomics the node's parts update ([`NodeCounters`]), the
//! `name value` lines of `dynakv ctl stats` ([`NodeCounters::render`]) and
//! the description ([`STATS`]) from which `ctl stats --json` and the
//! Prometheus families are made ([`crate::ops::metrics`]).
//!
//! A *counter* only grows; a *gauge* is a level, stored where it changes
//! or just before a report (see [`crate::node::admin`]). A *family* is an
//! array of counters told apart by a label (`requests_put`,
//! `requests_get`, ... are `dynakv_requests_total{command="put"}` ...).

use crate::cluster::internal::InternalError;
use crate::protocol::wire::{KeyOp, NodeCommand, Parsed, Reply, SwapTo};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a number only grows or is a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One reported number (or family of numbers), as monitoring sees it.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    /// The stats line's name (a family's lines are `NAME_LABELVALUE`).
    pub name: &'static str,
    pub kind: Kind,
    /// The Prometheus metric it becomes.
    pub metric: &'static str,
    pub help: &'static str,
    /// For a family: the label and its values, in array order.
    pub labels: Option<(&'static str, &'static [&'static str])>,
}

/// The kinds of client request counted in `requests`: the protocol's
/// commands, then requests refused at parsing (unknown command, bad key or
/// value).
pub const REQUEST_KINDS: [&str; 9] = [
    "put",
    "get",
    "remove",
    "shutdown",
    "wipeout",
    "is_alive",
    "get_pid",
    "get_membership_count",
    "invalid",
];

/// The reply codes counted in `replies`, by protocol code.
pub const REPLY_CODES: [&str; 8] = [
    "success",
    "non_existent_key",
    "out_of_space",
    "overload",
    "internal_failure",
    "unrecognized_command",
    "invalid_key",
    "invalid_value",
];

/// Why a node message was refused (see [`crate::cluster::internal::InternalError`]
/// and [`crate::cluster::freshness`]).
pub const REJECT_REASONS: [&str; 5] = ["unsigned", "misdirected", "out_of_range", "stale", "unknown_sender"];

/// The queues between a node's threads where a message may be dropped
/// when full (each drop is covered by a retry or timeout elsewhere, and
/// counted in `dropped_internal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Node-to-node work for a shard (replicated writes, acks, digests,
    /// transfer frames, anti-entropy and retain orders).
    Shard,
    /// Shards' reports to the cluster core (a pull done).
    Cluster,
    /// Gossip waiting for the cluster core's next round.
    Gossip,
}

pub const QUEUES: [&str; 3] = ["shard", "cluster", "gossip"];

/// Declares the node's numbers: `name: kind, metric, help;` for one
/// number, `name[LABELS, label]: kind, metric, help;` for a family.
macro_rules! node_stats {
    ($( $(#[$attr:meta])* $name:ident $([$labels:expr, $label:literal])? : $kind:ident, $metric:literal, $help:literal; )*) => {
        /// The node's numbers, shared by its threads (relaxed atomics).
        #[derive(Default)]
        pub struct NodeCounters {
            $( $(#[$attr])* pub $name: node_stats!(@cell $($labels)?), )*
        }

        /// Every number of [`NodeCounters`], in report order.
        pub const STATS: &[Stat] = &[
            $( Stat {
                name: stringify!($name),
                kind: Kind::$kind,
                metric: $metric,
                help: $help,
                labels: node_stats!(@labels $($labels, $label)?),
            }, )*
        ];

        impl NodeCounters {
            /// Appends one `name value` line per number (per label for a family).
            pub fn render(&self, out: &mut String) {
                $( render_cells(out, stringify!($name), node_stats!(@slice self.$name $(, $labels)?), node_stats!(@names $($labels)?)); )*
            }
        }
    };
    (@cell) => { AtomicU64 };
    (@cell $labels:expr) => { [AtomicU64; $labels.len()] };
    (@labels) => { None };
    (@labels $labels:expr, $label:literal) => { Some(($label, &$labels)) };
    (@slice $cell:expr) => { std::slice::from_ref(&$cell) };
    (@slice $cell:expr, $labels:expr) => { &$cell[..] };
    (@names) => { &[] };
    (@names $labels:expr) => { &$labels };
}

fn render_cells(out: &mut String, name: &str, cells: &[AtomicU64], labels: &[&str]) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {}", cells[0].load(Ordering::Relaxed));
        return;
    }
    for (label, cell) in labels.iter().zip(cells) {
        let _ = writeln!(out, "{name}_{label} {}", cell.load(Ordering::Relaxed));
    }
}

#[rustfmt::skip]
node_stats! {
    /// Nodes this node believes alive (itself included); refreshed for reports.
    members: Gauge, "dynakv_members", "Nodes this node believes alive, itself included.";
    ready: Gauge, "dynakv_ready", "1 once this node holds every bucket it serves.";
    full: Gauge, "dynakv_full", "1 while this node announces it is full.";
    uptime_s: Gauge, "dynakv_uptime_seconds", "Seconds since the node started.";
    rss_bytes: Gauge, "dynakv_resident_memory_bytes", "Resident set size of the node's process.";
    over_rss: Gauge, "dynakv_over_rss", "1 while the resident set is over the limit and writes are refused.";
    stored_bytes: Gauge, "dynakv_stored_bytes", "Bytes the store accounts for.";
    store_limit_bytes: Gauge, "dynakv_store_limit_bytes", "Bytes the store may account for before OUT_OF_SPACE.";
    /// Live keys and tombstones held, replicas included; summed from the shards for a report.
    keys: Gauge, "dynakv_keys", "Live keys stored, replicas included.";
    tombstones: Gauge, "dynakv_tombstones", "Deleted keys remembered until every replica has them.";
    /// Datagrams received, clients' and nodes'.
    datagrams: Counter, "dynakv_datagrams_total", "Datagrams received, clients' and nodes'.";
    requests_per_s: Gauge, "dynakv_datagrams_per_second", "Datagrams received per second over the last second.";
    /// Requests refused with OVERLOAD because a shard's queue was full.
    overloads: Counter, "dynakv_overloads_total", "Requests answered OVERLOAD because a shard's queue was full.";
    /// SHUTDOWN and WIPEOUT from addresses `--admin-allow` leaves out.
    admin_refused: Counter, "dynakv_admin_refused_total", "SHUTDOWN and WIPEOUT dropped: sender outside --admin-allow.";
    dropped_junk: Counter, "dynakv_dropped_junk_total", "Datagrams dropped as undecodable or with a bad checksum.";
    forwarded: Counter, "dynakv_forwarded_total", "Client requests forwarded to the key's coordinator.";
    /// Node messages refused: not signed with the cluster secret (or not
    /// our framing), meant for another node, a field out of range, or not
    /// new (old, replayed, from a previous incarnation).
    rejected[REJECT_REASONS, "reason"]: Counter, "dynakv_node_messages_rejected_total", "Node messages refused, by reason (unsigned, misdirected, out_of_range, stale, unknown_sender: a node not in this node's universe).";
    /// The universe this node holds (see `dynakv ctl universe`).
    universe_version: Gauge, "dynakv_universe_version", "Version of the universe (the cluster's node list) this node holds.";
    universes_adopted: Counter, "dynakv_universes_adopted_total", "Newer universes adopted.";
    /// Universes not adopted: not newer than this node's, or naming nodes it cannot use.
    universes_refused: Counter, "dynakv_universes_refused_total", "Universes refused: older than or the same as this node's, or unusable.";
    /// 1 while this node is leaving the universe (draining its data to the others).
    leaving: Gauge, "dynakv_leaving", "1 while this node leaves the cluster, handing its buckets to the others.";
    /// Replicated writes a replica acknowledged without storing (it was full).
    replica_refusals: Counter, "dynakv_replica_refusals_total", "Replicated writes a full replica refused.";
    /// Transferred entries this node had no room for.
    entries_refused: Counter, "dynakv_entries_refused_total", "Transferred entries this node had no room for.";
    peers_died: Counter, "dynakv_peers_died_total", "Times a peer was declared dead.";
    /// Writes applied here that never reached enough copies (this node
    /// was cut off from the other replicas): the client never heard "done".
    writes_given_up: Counter, "dynakv_writes_given_up_total", "Writes that never reached enough copies (never acknowledged).";
    /// Times this node was stopped and continued (SIGSTOP, SIGCONT).
    suspensions: Counter, "dynakv_suspensions_total", "Times this node was stopped and continued.";
    /// Times its rounds stalled long enough to catch up again, with no stop.
    stalls: Counter, "dynakv_stalls_total", "Times this node's rounds stalled long enough to catch up again.";
    buckets_pulled: Counter, "dynakv_buckets_pulled_total", "Buckets pulled from peers.";
    buckets_handing_off: Gauge, "dynakv_buckets_handing_off", "Buckets this node no longer replicates, held until every replica confirms it holds them.";
    entries_pulled: Counter, "dynakv_entries_pulled_total", "Entries received in pulled buckets.";
    /// Pulls answered "nothing differs": the puller's copy had the same digest.
    pulls_unchanged: Counter, "dynakv_pulls_unchanged_total", "Buckets peers pulled or compared that needed nothing sent: their copy had the same digest.";
    /// Buckets found different by anti-entropy and exchanged.
    repairs: Counter, "dynakv_repairs_total", "Buckets found different by anti-entropy and exchanged.";
    /// Bucket pulls queued or in flight.
    pulls_pending: Gauge, "dynakv_pulls_pending", "Bucket pulls queued or in flight.";
    transfer_bytes_sent: Counter, "dynakv_transfer_sent_bytes_total", "Transfer stream bytes written to peers.";
    transfer_bytes_received: Counter, "dynakv_transfer_received_bytes_total", "Transfer stream bytes read from peers.";
    /// Transfers refused because the send queues were full.
    transfer_refused: Counter, "dynakv_transfer_refused_total", "Transfers refused because the send queues were full.";
    /// Transfer connections that failed with bytes still queued.
    transfer_breaks: Counter, "dynakv_transfer_breaks_total", "Transfer connections that failed with bytes still queued.";
    /// The data directory (all 0 for a node that keeps no data on disk).
    /// Journal files (segments and snapshots) and their bytes.
    disk_files: Gauge, "dynakv_disk_files", "Journal files (log segments and snapshots) in the data directory.";
    disk_bytes: Gauge, "dynakv_disk_bytes", "Bytes of the journal files in the data directory.";
    /// Milliseconds the oldest written but unsynced record has waited; refreshed for reports.
    disk_free_bytes: Gauge, "dynakv_disk_free_bytes", "Bytes free on the file system of the data directory (0 without one).";
    disk_unsynced_ms: Gauge, "dynakv_disk_unsynced_milliseconds", "How long the oldest journal record written but not yet synced has waited (0: all synced).";
    disk_syncs: Counter, "dynakv_disk_syncs_total", "Syncs (fdatasync) of the journal.";
    disk_sync_us: Counter, "dynakv_disk_sync_microseconds_total", "Time spent in journal syncs (divide by dynakv_disk_syncs_total for the mean).";
    disk_sync_us_max: Gauge, "dynakv_disk_sync_microseconds_max", "The longest journal sync since the node started.";
    compactions: Counter, "dynakv_compactions_total", "Snapshots written, each letting the log before it go.";
    /// Writes refused because the data directory had no room, or a write to it failed.
    disk_refusals: Counter, "dynakv_disk_refusals_total", "Writes refused because the data directory had no room or was failing.";
    disk_errors: Counter, "dynakv_disk_errors_total", "Journal writes or syncs that failed (their writes answered as failed).";
    records_recovered: Gauge, "dynakv_records_recovered", "Journal records replayed at start.";
    records_damaged: Gauge, "dynakv_records_damaged", "Journal records dropped at start because their checksum failed (their buckets pulled from the replicas).";
    recovery_ms: Gauge, "dynakv_recovery_milliseconds", "How long reading the data directory took at start.";
    /// Messages between this node's own threads dropped on a full queue.
    dropped_internal[QUEUES, "queue"]: Counter, "dynakv_internal_drops_total", "Messages between a node's threads dropped on a full queue, by queue.";
    send_drops: Gauge, "dynakv_send_drops_total", "Datagrams the socket refused to send (buffer full).";
    /// Client requests received straight from clients (forwarded ones are
    /// counted where they arrived), by [`REQUEST_KINDS`].
    requests[REQUEST_KINDS, "command"]: Counter, "dynakv_requests_total", "Client requests received from clients, by command (invalid: refused at parsing).";
    /// Replies sent to clients, by [`REPLY_CODES`] (answers repeated from
    /// the at-most-once cache included).
    replies[REPLY_CODES, "code"]: Counter, "dynakv_replies_total", "Replies sent to clients, by error code.";
}

impl NodeCounters {
    pub fn count_reply(&self, reply: &Reply) {
        if let Some(counter) = self.replies.get(reply.code() as usize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count_drop(&self, queue: Queue) {
        self.dropped_internal[queue as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_rejected(&self, reason: Reject) {
        self.rejected[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn set(&self, gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }
}

/// Why a node message was refused, in [`REJECT_REASONS`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    Unsigned,
    Misdirected,
    OutOfRange,
    Stale,
    /// Signed by a node not in this node's universe.
    UnknownSender,
}

impl From<InternalError> for Reject {
    fn from(error: InternalError) -> Reject {
        match error {
            InternalError::Malformed | InternalError::BadMac => Reject::Unsigned,
            InternalError::Misdirected => Reject::Misdirected,
            InternalError::OutOfRange => Reject::OutOfRange,
        }
    }
}

/// The index in [`REQUEST_KINDS`] of a parsed request.
pub fn request_kind(parsed: &Parsed<'_>) -> usize {
    match parsed {
        Parsed::Keyed(
            KeyOp::Put { .. }
            | KeyOp::Swap {
                to: SwapTo::Value(_), ..
            },
        ) => 0,
        Parsed::Keyed(
            KeyOp::Get { .. }
            | KeyOp::ReadBucket { .. }
            | KeyOp::Swap {
                to: SwapTo::Unchanged, ..
            },
        ) => 1,
        Parsed::Keyed(
            KeyOp::Remove { .. }
            | KeyOp::Swap {
                to: SwapTo::Nothing, ..
            },
        ) => 2,
        Parsed::Node(NodeCommand::Shutdown) => 3,
        Parsed::Node(NodeCommand::Wipeout) => 4,
        Parsed::Node(NodeCommand::IsAlive) => 5,
        Parsed::Node(NodeCommand::GetPid) => 6,
        Parsed::Node(NodeCommand::GetMembershipCount) => 7,
        Parsed::Invalid(_) => 8,
    }
}

/// The index in [`STATS`] of the stat a stats line belongs to, and for a
/// family the label value.
pub fn stat_of(line_name: &str) -> Option<(usize, Option<&str>)> {
    if let Some(index) = STATS.iter().position(|s| s.labels.is_none() && s.name == line_name) {
        return Some((index, None));
    }
    STATS.iter().enumerate().find_map(|(index, stat)| {
        let (_, values) = stat.labels?;
        let rest = line_name.strip_prefix(stat.name)?.strip_prefix('_')?;
        values.contains(&rest).then_some((index, Some(rest)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_is_rendered_once_and_found_again_by_its_line() {
        let counters = NodeCounters::default();
        counters.forwarded.fetch_add(3, Ordering::Relaxed);
        counters.count_drop(Queue::Gossip);
        counters.count_rejected(Reject::OutOfRange);
        let mut text = String::new();
        counters.render(&mut text);
        let lines: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(' ')).collect();
        let expected: usize = STATS.iter().map(|s| s.labels.map_or(1, |(_, v)| v.len())).sum();
        assert_eq!(lines.len(), expected);
        assert!(lines.contains(&("forwarded", "3")));
        assert!(lines.contains(&("dropped_internal_gossip", "1")));
        assert!(lines.contains(&("rejected_out_of_range", "1")));
        for (name, _) in &lines {
            assert!(stat_of(name).is_some(), "{name} has no stat");
        }
        let metrics: std::collections::HashSet<&str> = STATS.iter().map(|s| s.metric).collect();
        assert_eq!(metrics.len(), STATS.len(), "one metric per stat");
    }

    #[test]
    fn a_scalar_that_starts_like_a_family_is_not_taken_for_it() {
        let (stat, label) = stat_of("requests_per_s").unwrap();
        assert_eq!((STATS[stat].name, label), ("requests_per_s", None));
        let (stat, label) = stat_of("requests_put").unwrap();
        assert_eq!((STATS[stat].name, label), ("requests", Some("put")));
        assert!(stat_of("requests_bogus").is_none());
    }
}

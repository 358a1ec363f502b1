//! Operator commands (codes >= 0x20 of the client protocol's command space),
//! sent by `dynakv ctl` inside authenticated internal datagrams and answered
//! with a client `Msg` whose value is plain text, one `name value` per line.
//!
//! Answers that need every shard's data are gathered like WIPEOUT: each shard
//! adds its part to a shared [`Report`] and the last one sends the reply.
//! Everything an operator reads is formatted here: the router and the
//! shards only say what to report.

use crate::cluster::ring::View;
use crate::node::context::{NodeContext, NodeIo};
use crate::protocol::wire::{ErrorCode, Reply};
use crate::storage::hash::{BUCKETS as BUCKET_COUNT, BucketId};
use crate::storage::memory::{MemoryBudget, rss_bytes};
use crate::storage::store::Store;
use parking_lot::Mutex;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const STATS: u8 = 0x20;
pub const MEMBERS: u8 = 0x21;
/// Per-bucket live keys, tombstones and digest of every non-empty bucket,
/// in bucket order from the argument's bucket (2 bytes little-endian; none:
/// from 0). A reply that would not fit one datagram ends `more NEXT`: ask
/// again from NEXT.
pub const BUCKETS: u8 = 0x22;
/// The keys held in one bucket (argument: the bucket, 2 bytes little-endian).
pub const KEYS: u8 = 0x23;
/// The universe this node holds, as text (see
/// [`crate::cluster::universe::Universe::to_text`]).
pub const UNIVERSE: u8 = 0x24;
/// Adopt the universe in the argument (its binary form) if it is newer:
/// answered `adopted VERSION` or `refused: WHY`.
pub const ADOPT_UNIVERSE: u8 = 0x25;

/// Largest text value a reply carries (the rest is cut, and says so).
const REPLY_TEXT_BYTES_MAX: usize = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Stats,
    /// Answered by the router alone, from its view.
    Members,
    /// From this bucket on.
    Buckets(u16),
    Keys(u16),
    /// Answered by the router alone, from the node's universe.
    Universe,
}

#[derive(Default)]
pub struct ReportParts {
    pub live_keys: usize,
    pub tombstones: usize,
    /// Buckets the shards hand off (see [`crate::node::shard`]).
    pub handing_off: usize,
    pub lines: Vec<String>,
}

/// One operator request being answered by the shards.
pub struct Report {
    pub kind: ReportKind,
    pub shards_left: AtomicUsize,
    pub parts: Mutex<ReportParts>,
    pub message_id: Vec<u8>,
    pub to: SocketAddr,
    /// Node-level lines the router filled in.
    pub header: String,
    /// Whose counters a [`ReportKind::Stats`] report shows.
    pub ctx: Arc<NodeContext>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("kind", &self.kind)
            .field("to", &self.to)
            .finish()
    }
}

impl Report {
    /// Marks one shard done; the last one gets the finished reply datagram.
    pub fn shard_done(&self) -> Option<Vec<u8>> {
        if self.shards_left.fetch_sub(1, Ordering::AcqRel) != 1 {
            return None;
        }
        let parts = self.parts.lock();
        let mut text = self.header.clone();
        if self.kind == ReportKind::Stats {
            let counters = &self.ctx.counters;
            counters.set(&counters.keys, parts.live_keys as u64);
            counters.set(&counters.tombstones, parts.tombstones as u64);
            counters.set(&counters.buckets_handing_off, parts.handing_off as u64);
            counters.render(&mut text);
        }
        let mut lines = parts.lines.clone();
        if let ReportKind::Buckets(_) = self.kind {
            lines.sort_by_key(|line| bucket_of_line(line));
        } else {
            lines.sort();
        }
        for line in lines {
            if text.len() + line.len() + 1 > REPLY_TEXT_BYTES_MAX {
                match self.kind {
                    ReportKind::Buckets(_) => text.push_str(&format!("more {}\n", bucket_of_line(&line))),
                    _ => text.push_str("truncated\n"),
                }
                break;
            }
            text.push_str(&line);
            text.push('\n');
        }
        Some(text_reply(&self.message_id, text))
    }
}

/// The report an admin command asks for, if it is one this node knows.
pub fn report_kind(command: u8, arg: &[u8]) -> Option<ReportKind> {
    let bucket_arg = || match arg {
        [low, high] => Some(u16::from_le_bytes([*low, *high])),
        _ => None,
    };
    match command {
        STATS => Some(ReportKind::Stats),
        MEMBERS => Some(ReportKind::Members),
        UNIVERSE => Some(ReportKind::Universe),
        BUCKETS => Some(ReportKind::Buckets(bucket_arg().unwrap_or(0))),
        KEYS => bucket_arg()
            .filter(|&bucket| usize::from(bucket) < BUCKET_COUNT)
            .map(ReportKind::Keys),
        _ => None,
    }
}

/// The MEMBERS reply: `slot address alive ready full` per serving node of
/// the universe, as this node's view has it (itself ready once caught
/// up), then the same and `leaving` per leaving node. A slot is the
/// node's line in the servers file it started with, and the next free
/// slot for each node a later universe added.
pub fn members_text(ctx: &NodeContext, view: &View) -> String {
    let mut text = String::new();
    for leaving in [false, true] {
        for slot in (0..ctx.roster.len()).filter(|&slot| view.is_member(slot) && view.is_leaving(slot) == leaving) {
            let (Some(addr), live) = (ctx.roster.addr(slot), &view.liveness) else {
                continue;
            };
            let _ = write!(
                text,
                "{slot} {addr} {} {} {}",
                u8::from(live.alive[slot]),
                u8::from(live.ready[slot]),
                u8::from(live.full[slot])
            );
            text.push_str(if leaving { " leaving\n" } else { "\n" });
        }
    }
    text
}

/// Stores the gauges whose levels live elsewhere, just before a report.
pub fn refresh_gauges(ctx: &NodeContext, view: &View, budget: &MemoryBudget, requests_per_s: u64, io: &dyn NodeIo) {
    let c = &ctx.counters;
    let me = ctx.self_index;
    c.set(&c.members, ctx.membership_count.load(Ordering::Relaxed) as u64);
    c.set(&c.ready, u64::from(view.liveness.ready[me]));
    c.set(&c.full, u64::from(view.liveness.full[me]));
    c.set(&c.uptime_s, ctx.clock.mono_ms() / 1_000);
    c.set(&c.rss_bytes, rss_bytes() as u64);
    c.set(&c.over_rss, u64::from(budget.is_over_rss()));
    c.set(&c.stored_bytes, budget.used_bytes() as u64);
    c.set(&c.store_limit_bytes, budget.limit_bytes() as u64);
    c.set(&c.requests_per_s, requests_per_s);
    c.set(&c.send_drops, io.dropped_sends());
    c.set(&c.disk_free_bytes, io.disk_free_bytes());
    let now = ctx.clock.mono_ms();
    let oldest = (ctx.unsynced_since_ms.iter())
        .map(|since| since.load(Ordering::Relaxed))
        .filter(|&since| since > 0)
        .min();
    c.set(
        &c.disk_unsynced_ms,
        oldest.map_or(0, |since| now.saturating_sub(since - 1)),
    );
}

/// The lines of a STATS reply before the numbers: who answers.
pub fn stats_header(ctx: &NodeContext, pid: i32) -> String {
    format!(
        "node {}\npid {pid}\n",
        ctx.roster
            .addr(ctx.self_index)
            .map_or_else(String::new, |a| a.to_string())
    )
}

/// One shard's part of a report, from its store and the buckets it hands
/// off.
pub fn add_shard_part(report: &Report, store: &Store, handing_off: usize) {
    let mut parts = report.parts.lock();
    match report.kind {
        ReportKind::Stats => {
            parts.handing_off += handing_off;
            for bucket in 0..BUCKET_COUNT as BucketId {
                let stats = store.bucket_stats(bucket);
                parts.live_keys += stats.live_keys as usize;
                parts.tombstones += stats.tombstones as usize;
            }
        }
        ReportKind::Members | ReportKind::Universe => {}
        ReportKind::Buckets(from) => {
            for bucket in from..BUCKET_COUNT as BucketId {
                let stats = store.bucket_stats(bucket);
                if stats.live_keys + stats.tombstones > 0 {
                    let bytes: usize = store.bucket_records(bucket).map(|r| r.heap_bytes()).sum();
                    let line = format!(
                        "{bucket} {} {} {:016x} {bytes}",
                        stats.live_keys, stats.tombstones, stats.digest
                    );
                    parts.lines.push(line);
                }
            }
        }
        ReportKind::Keys(bucket) => {
            for record in store.bucket_records(bucket).filter(|r| !r.is_tombstone()) {
                let hex: String = record.key().iter().map(|b| format!("{b:02x}")).collect();
                parts.lines.push(hex);
            }
        }
    }
}

/// The bucket a BUCKETS line is about (its first field).
fn bucket_of_line(line: &str) -> u16 {
    line.split(' ')
        .next()
        .and_then(|bucket| bucket.parse().ok())
        .unwrap_or(u16::MAX)
}

/// The reply datagram carrying `text` as its value.
pub fn text_reply(message_id: &[u8], text: String) -> Vec<u8> {
    Reply::Value {
        value: text.into_bytes(),
        version: 0,
    }
    .encode(message_id)
}

/// The reply to an admin command this node does not know.
pub fn unknown_command(message_id: &[u8]) -> Vec<u8> {
    Reply::Code(ErrorCode::UnrecognizedCommand).encode(message_id)
}

/// Parses `name value` lines into pairs.
pub fn parse_lines(text: &str) -> Vec<(&str, &str)> {
    text.lines().filter_map(|line| line.split_once(' ')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Arc<NodeContext> {
        Arc::new(NodeContext::alone())
    }

    #[test]
    fn a_bucket_listing_too_long_for_one_reply_says_where_to_go_on() {
        let report = Report {
            kind: ReportKind::Buckets(0),
            shards_left: AtomicUsize::new(1),
            parts: Mutex::new(ReportParts::default()),
            message_id: vec![1; 16],
            to: "127.0.0.1:1".parse().unwrap(),
            header: String::new(),
            ctx: context(),
        };
        // Shards add their buckets in any order; 4,000 lines of 25 bytes.
        report.parts.lock().lines = (0..4000u16).rev().map(|b| format!("{b} 1 0 {:016x}", b)).collect();
        let datagram = report.shard_done().expect("the only shard replies");
        let response = crate::protocol::wire::decode_reply(&datagram, &[1; 16]).unwrap();
        let text = String::from_utf8(response.value.unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let shown = lines.len() - 1;
        assert!(shown > 2000 && shown < 4000, "{shown} lines fit");
        for (i, line) in lines[..shown].iter().enumerate() {
            assert_eq!(bucket_of_line(line), i as u16, "in bucket order");
        }
        assert_eq!(lines[shown], format!("more {shown}"));
    }

    #[test]
    fn last_shard_sends_sorted_lines_and_totals() {
        let report = Report {
            kind: ReportKind::Stats,
            shards_left: AtomicUsize::new(2),
            parts: Mutex::new(ReportParts::default()),
            message_id: vec![1; 16],
            to: "127.0.0.1:1".parse().unwrap(),
            header: "node x\n".into(),
            ctx: context(),
        };
        report.parts.lock().live_keys += 3;
        assert!(report.shard_done().is_none());
        report.parts.lock().live_keys += 4;
        let datagram = report.shard_done().expect("last shard replies");
        let response = crate::protocol::wire::decode_reply(&datagram, &[1; 16]).unwrap();
        let text = String::from_utf8(response.value.unwrap()).unwrap();
        let lines = parse_lines(&text);
        assert_eq!(lines[0], ("node", "x"));
        assert!(lines.contains(&("keys", "7")), "{text}");
        assert!(lines.contains(&("tombstones", "0")), "{text}");
        let numbers: usize = crate::node::counters::STATS
            .iter()
            .map(|s| s.labels.map_or(1, |(_, v)| v.len()))
            .sum();
        assert_eq!(lines.len(), 1 + numbers, "the header, then every number once");
    }
}

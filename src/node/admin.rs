//! Operator commands (codes >= 0x20 of the client protocol's command space),
//! sent by `dynakv ctl` inside authenticated internal datagrams and answered
//! with a client `Msg` whose value is plain text, one `name value` per line.
//!
//! Answers that need every shard's data are gathered like WIPEOUT: each shard
//! adds its part to a shared [`Report`] and the last one sends the reply.

use crate::protocol::wire::{ErrorCode, Reply};
use parking_lot::Mutex;
use std::net::SocketAddr;
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

/// Largest text value a reply carries (the rest is cut, and says so).
const REPLY_TEXT_BYTES_MAX: usize = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Stats,
    /// From this bucket on.
    Buckets(u16),
    Keys(u16),
}

#[derive(Default)]
pub struct ReportParts {
    pub live_keys: usize,
    pub tombstones: usize,
    pub lines: Vec<String>,
}

/// One operator request being answered by the shards.
pub struct Report {
    pub kind: ReportKind,
    pub shards_left: AtomicUsize,
    pub parts: Mutex<ReportParts>,
    pub message_id: Vec<u8>,
    pub to: SocketAddr,
    /// Node-level lines the net thread filled in.
    pub header: String,
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
            text.push_str(&format!("keys {}\ntombstones {}\n", parts.live_keys, parts.tombstones));
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

    #[test]
    fn a_bucket_listing_too_long_for_one_reply_says_where_to_go_on() {
        let report = Report {
            kind: ReportKind::Buckets(0),
            shards_left: AtomicUsize::new(1),
            parts: Mutex::new(ReportParts::default()),
            message_id: vec![1; 16],
            to: "127.0.0.1:1".parse().unwrap(),
            header: String::new(),
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
        };
        report.parts.lock().live_keys += 3;
        assert!(report.shard_done().is_none());
        report.parts.lock().live_keys += 4;
        let datagram = report.shard_done().expect("last shard replies");
        let response = crate::protocol::wire::decode_reply(&datagram, &[1; 16]).unwrap();
        let text = String::from_utf8(response.value.unwrap()).unwrap();
        assert_eq!(
            parse_lines(&text),
            vec![("node", "x"), ("keys", "7"), ("tombstones", "0")]
        );
    }
}

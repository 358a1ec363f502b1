//! A node's counters (the `name value` lines of the STATS admin reply) in
//! the formats monitoring systems read: JSON objects for scripts and the
//! Prometheus text exposition format (version 0.0.4) for scrapers and the
//! node-exporter's textfile collector.

use crate::node::admin::parse_lines;
use std::fmt::Write as _;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// One metric family: the stats it is made of and what it means.
struct Family {
    metric: &'static str,
    kind: Kind,
    help: &'static str,
    /// Which stats lines belong to it, and the label each one gets.
    source: Source,
}

enum Source {
    /// One stats line, no label.
    Stat(&'static str),
    /// Every stats line `PREFIX_REST`, labelled `LABEL="REST"`.
    Prefix(&'static str, &'static str),
}

use Kind::{Counter, Gauge};
use Source::{Prefix, Stat};

#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    Family { metric: "dynakv_requests_total", kind: Counter, help: "Client requests received from clients, by command (invalid: refused at parsing).", source: Prefix("requests_", "command") },
    Family { metric: "dynakv_replies_total", kind: Counter, help: "Replies sent to clients, by error code.", source: Prefix("replies_", "code") },
    Family { metric: "dynakv_datagrams_total", kind: Counter, help: "Datagrams received, clients' and nodes'.", source: Stat("datagrams") },
    Family { metric: "dynakv_datagrams_per_second", kind: Gauge, help: "Datagrams received per second over the last second.", source: Stat("requests_per_s") },
    Family { metric: "dynakv_overloads_total", kind: Counter, help: "Requests answered OVERLOAD because a shard's queue was full.", source: Stat("overloads") },
    Family { metric: "dynakv_dropped_junk_total", kind: Counter, help: "Datagrams dropped as undecodable or with a bad checksum.", source: Stat("dropped_junk") },
    Family { metric: "dynakv_admin_refused_total", kind: Counter, help: "SHUTDOWN and WIPEOUT dropped: sender outside --admin-allow.", source: Stat("admin_refused") },
    Family { metric: "dynakv_forwarded_total", kind: Counter, help: "Client requests forwarded to the key's coordinator.", source: Stat("forwarded") },
    Family { metric: "dynakv_node_messages_rejected_total", kind: Counter, help: "Node messages refused, by reason (unsigned, misdirected, out_of_range, stale).", source: Prefix("rejected_", "reason") },
    Family { metric: "dynakv_send_drops_total", kind: Counter, help: "Datagrams the socket refused to send (buffer full).", source: Stat("send_drops") },
    Family { metric: "dynakv_keys", kind: Gauge, help: "Live keys stored, replicas included.", source: Stat("keys") },
    Family { metric: "dynakv_tombstones", kind: Gauge, help: "Deleted keys remembered until every replica has them.", source: Stat("tombstones") },
    Family { metric: "dynakv_stored_bytes", kind: Gauge, help: "Bytes the store accounts for.", source: Stat("stored_bytes") },
    Family { metric: "dynakv_store_limit_bytes", kind: Gauge, help: "Bytes the store may account for before OUT_OF_SPACE.", source: Stat("store_limit_bytes") },
    Family { metric: "dynakv_resident_memory_bytes", kind: Gauge, help: "Resident set size of the node's process.", source: Stat("rss_bytes") },
    Family { metric: "dynakv_over_rss", kind: Gauge, help: "1 while the resident set is over the limit and writes are refused.", source: Stat("over_rss") },
    Family { metric: "dynakv_full", kind: Gauge, help: "1 while this node announces it is full.", source: Stat("full") },
    Family { metric: "dynakv_members", kind: Gauge, help: "Nodes this node believes alive, itself included.", source: Stat("members") },
    Family { metric: "dynakv_ready", kind: Gauge, help: "1 once this node holds every bucket it serves.", source: Stat("ready") },
    Family { metric: "dynakv_uptime_seconds", kind: Gauge, help: "Seconds since the node started.", source: Stat("uptime_s") },
    Family { metric: "dynakv_peers_died_total", kind: Counter, help: "Times a peer was declared dead.", source: Stat("peers_died") },
    Family { metric: "dynakv_suspensions_total", kind: Counter, help: "Times this node was stopped and continued.", source: Stat("suspensions") },
    Family { metric: "dynakv_stalls_total", kind: Counter, help: "Times this node's rounds stalled long enough to re-sync.", source: Stat("stalls") },
    Family { metric: "dynakv_writes_given_up_total", kind: Counter, help: "Writes that never reached enough copies (never acknowledged).", source: Stat("writes_given_up") },
    Family { metric: "dynakv_replica_refusals_total", kind: Counter, help: "Replicated writes a full replica refused.", source: Stat("replica_refusals") },
    Family { metric: "dynakv_entries_refused_total", kind: Counter, help: "Transferred entries this node had no room for.", source: Stat("entries_refused") },
    Family { metric: "dynakv_buckets_pulled_total", kind: Counter, help: "Buckets pulled from peers.", source: Stat("buckets_pulled") },
    Family { metric: "dynakv_entries_pulled_total", kind: Counter, help: "Entries received in pulled buckets.", source: Stat("entries_pulled") },
    Family { metric: "dynakv_pulls_pending", kind: Gauge, help: "Bucket pulls queued or in flight.", source: Stat("pulls_pending") },
    Family { metric: "dynakv_repairs_total", kind: Counter, help: "Buckets found different by anti-entropy and exchanged.", source: Stat("repairs") },
    Family { metric: "dynakv_transfer_sent_bytes_total", kind: Counter, help: "Transfer stream bytes written to peers.", source: Stat("transfer_bytes_sent") },
    Family { metric: "dynakv_transfer_received_bytes_total", kind: Counter, help: "Transfer stream bytes read from peers.", source: Stat("transfer_bytes_received") },
    Family { metric: "dynakv_transfer_refused_total", kind: Counter, help: "Transfers refused because the send queues were full.", source: Stat("transfer_refused") },
    Family { metric: "dynakv_transfer_breaks_total", kind: Counter, help: "Transfer connections that failed with bytes still queued.", source: Stat("transfer_breaks") },
];

/// The metric names, with their meaning: the list the README shows.
pub fn metric_list() -> String {
    let mut text = String::from("dynakv_up (gauge): 1 if the node answered the scrape.\n");
    for family in FAMILIES {
        let kind = if family.kind == Counter { "counter" } else { "gauge" };
        let _ = writeln!(text, "{} ({kind}): {}", family.metric, family.help);
    }
    text
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The family and extra label of one stats line, if it is exported
/// (`node` and `pid` are not numbers to watch).
fn family_of(name: &str) -> Option<(usize, Option<(&'static str, &str)>)> {
    FAMILIES
        .iter()
        .position(|f| matches!(f.source, Stat(stat) if stat == name))
        .map(|i| (i, None))
        .or_else(|| {
            FAMILIES.iter().enumerate().find_map(|(i, f)| match f.source {
                Prefix(prefix, label) => name.strip_prefix(prefix).map(|rest| (i, Some((label, rest)))),
                Stat(_) => None,
            })
        })
}

/// The Prometheus text for several nodes: `(node name, its stats text or
/// None if it did not answer)`. Each family once, every node's samples
/// labelled `node="host:port"`.
pub fn prometheus(nodes: &[(String, Option<String>)]) -> String {
    let mut samples: Vec<String> = vec![String::new(); FAMILIES.len()];
    let mut up = String::new();
    for (node, stats) in nodes {
        let node = escape_label(node);
        let _ = writeln!(up, "dynakv_up{{node=\"{node}\"}} {}", u8::from(stats.is_some()));
        let Some(stats) = stats else { continue };
        for (name, value) in parse_lines(stats) {
            let (Some((family, label)), Ok(value)) = (family_of(name), value.trim().parse::<u64>()) else {
                continue;
            };
            let extra = label.map_or(String::new(), |(label, v)| format!(",{label}=\"{}\"", escape_label(v)));
            let _ = writeln!(
                samples[family],
                "{}{{node=\"{node}\"{extra}}} {value}",
                FAMILIES[family].metric
            );
        }
    }
    let mut text = format!("# HELP dynakv_up 1 if the node answered the scrape.\n# TYPE dynakv_up gauge\n{up}");
    for (family, lines) in FAMILIES.iter().zip(samples) {
        if lines.is_empty() {
            continue;
        }
        let kind = if family.kind == Counter { "counter" } else { "gauge" };
        let _ = write!(
            text,
            "# HELP {} {}\n# TYPE {} {kind}\n{lines}",
            family.metric, family.help, family.metric
        );
    }
    text
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `name value` lines as one JSON object; values that are integers become
/// numbers, the rest strings. `extra` fields come first.
pub fn json_object(extra: &[(&str, &str)], stats: &str) -> String {
    let fields: Vec<String> = (extra.iter().copied().chain(parse_lines(stats)))
        .map(|(name, value)| {
            let value = value.trim();
            let value = match value.parse::<i64>() {
                Ok(number) => number.to_string(),
                Err(_) if value == "true" || value == "false" => value.to_string(),
                Err(_) => json_string(value),
            };
            format!("{}:{value}", json_string(name))
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_become_families_with_node_and_detail_labels() {
        let stats =
            "node 127.0.0.1:1\npid 7\nkeys 12\nrequests_put 3\nrequests_get 4\nrejected_stale 2\nfuture_field 9\n";
        let text = prometheus(&[("127.0.0.1:1".into(), Some(stats.into())), ("127.0.0.1:2".into(), None)]);
        assert!(text.contains("dynakv_up{node=\"127.0.0.1:1\"} 1\n"), "{text}");
        assert!(text.contains("dynakv_up{node=\"127.0.0.1:2\"} 0\n"), "{text}");
        assert!(
            text.contains("# TYPE dynakv_keys gauge\ndynakv_keys{node=\"127.0.0.1:1\"} 12\n"),
            "{text}"
        );
        assert!(
            text.contains("dynakv_requests_total{node=\"127.0.0.1:1\",command=\"put\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("dynakv_requests_total{node=\"127.0.0.1:1\",command=\"get\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("dynakv_node_messages_rejected_total{node=\"127.0.0.1:1\",reason=\"stale\"} 2\n"),
            "{text}"
        );
        assert_eq!(text.matches("# TYPE dynakv_requests_total counter").count(), 1);
        assert!(!text.contains("future_field") && !text.contains("pid"), "{text}");
    }

    #[test]
    fn the_per_second_rate_is_not_mistaken_for_a_request_kind() {
        let text = prometheus(&[("n".into(), Some("requests_per_s 5\n".into()))]);
        assert!(text.contains("dynakv_datagrams_per_second{node=\"n\"} 5\n"), "{text}");
        assert!(!text.contains("command=\"per_s\""), "{text}");
    }

    #[test]
    fn json_keeps_numbers_as_numbers_and_escapes_strings() {
        let json = json_object(&[("alive", "true")], "node a\"b\nkeys 5\nrate -3\n");
        assert_eq!(json, r#"{"alive":true,"node":"a\"b","keys":5,"rate":-3}"#);
    }
}

//! A node's counters (the `name value` lines of the STATS admin reply) in
//! the formats monitoring systems read: JSON objects for scripts and the
//! Prometheus text exposition format (version 0.0.4) for scrapers and the
//! node-exporter's textfile collector.

use crate::node::admin::parse_lines;
use crate::node::counters::{Kind, STATS, stat_of};
use std::fmt::Write as _;

/// The metric names, with their meaning: the list the README shows.
pub fn metric_list() -> String {
    let mut text = String::from("dynakv_up (gauge): 1 if the node answered the scrape.\n");
    for stat in STATS {
        let _ = writeln!(text, "{} ({}): {}", stat.metric, kind_name(stat.kind), stat.help);
    }
    text
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    }
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The Prometheus text for several nodes: `(node name, its stats text or
/// None if it did not answer)`. Each family once, every node's samples
/// labelled `node="host:port"`. Lines a node sends that are not numbers
/// of [`STATS`] (its address, its pid, a newer node's additions) are left out.
pub fn prometheus(nodes: &[(String, Option<String>)]) -> String {
    let mut samples: Vec<String> = vec![String::new(); STATS.len()];
    let mut up = String::new();
    for (node, stats) in nodes {
        let node = escape_label(node);
        let _ = writeln!(up, "dynakv_up{{node=\"{node}\"}} {}", u8::from(stats.is_some()));
        let Some(stats) = stats else { continue };
        for (name, value) in parse_lines(stats) {
            let (Some((index, label)), Ok(value)) = (stat_of(name), value.trim().parse::<u64>()) else {
                continue;
            };
            let stat = &STATS[index];
            let extra = match (stat.labels, label) {
                (Some((label, _)), Some(value)) => format!(",{label}=\"{}\"", escape_label(value)),
                _ => String::new(),
            };
            let _ = writeln!(samples[index], "{}{{node=\"{node}\"{extra}}} {value}", stat.metric);
        }
    }
    let mut text = format!("# HELP dynakv_up 1 if the node answered the scrape.\n# TYPE dynakv_up gauge\n{up}");
    for (stat, lines) in STATS.iter().zip(samples) {
        if !lines.is_empty() {
            let (metric, kind) = (stat.metric, kind_name(stat.kind));
            let _ = write!(text, "# HELP {metric} {}\n# TYPE {metric} {kind}\n{lines}", stat.help);
        }
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

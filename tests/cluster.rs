//! Clusters of real node processes on loopback: conformance through random
//! front-ends, crashes and suspensions (150 nodes: `tests/scale.rs`).

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn five_nodes_pass_the_conformance_suite_through_random_front_ends() {
    let cluster = Cluster::start(5, &[], Duration::from_secs(10));
    let servers = cluster.addrs(&[0, 1, 2, 3, 4]);
    let ctx = dynakv_loadtest::check::Ctx::new(servers, 5, 7);
    assert_eq!(
        dynakv_loadtest::check::run(&ctx),
        0,
        "conformance cases failed (see stdout)"
    );
}

/// Node-to-node traffic through shared ports: each peer's datagrams reach
/// one of two sockets, and replay windows are shared by both loops.
#[test]
fn five_nodes_with_two_receiving_loops_each_pass_the_conformance_suite() {
    let cluster = Cluster::start(5, &["--workers", "1", "--receivers", "2"], Duration::from_secs(10));
    let servers = cluster.addrs(&[0, 1, 2, 3, 4]);
    let ctx = dynakv_loadtest::check::Ctx::new(servers, 5, 11);
    assert_eq!(
        dynakv_loadtest::check::run(&ctx),
        0,
        "conformance cases failed (see stdout)"
    );
}

#[test]
fn twenty_nodes_lose_nothing_when_two_are_killed_at_once() {
    let cluster = Cluster::start(20, &[], Duration::from_secs(15));
    let all: Vec<usize> = (0..20).collect();
    write_keys(&cluster.addrs(&all), &(0..10_000).collect::<Vec<_>>(), 1);

    let victims = [3, 11];
    let live: Vec<usize> = all.iter().copied().filter(|i| !victims.contains(i)).collect();
    let live_addrs = cluster.addrs(&live);
    for &v in &victims {
        cluster.nodes[v].signal(libc::SIGKILL);
    }
    // Writes issued during the failure must all complete.
    let writer_addrs = live_addrs.clone();
    let writer = std::thread::spawn(move || {
        let mut latencies = Vec::new();
        for i in 10_000..10_200 {
            let started = Instant::now();
            let code = put(pick(&writer_addrs, i), &key(i), &value(i, 1), 1);
            assert_eq!(code, 0, "PUT {i} during the failure");
            latencies.push(started.elapsed());
        }
        latencies.into_iter().max().unwrap_or_default()
    });
    let detected = cluster.wait_membership(&live, 18, Duration::from_secs(5));
    let slowest_put = writer.join().expect("writer");
    eprintln!("18 live nodes agree {detected:?} after the kill; slowest PUT during the failure {slowest_put:?}");
    let keys: Vec<(usize, Option<usize>)> = (0..10_200).map(|i| (i, Some(1))).collect();
    let wrong = misreads(&live_addrs, &keys, 5, false);
    assert!(
        wrong.is_empty(),
        "{} keys wrong, first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

#[test]
fn twenty_nodes_count_suspended_nodes_out_and_back_in_without_stale_reads() {
    let cluster = Cluster::start(20, &[], Duration::from_secs(15));
    let all: Vec<usize> = (0..20).collect();
    write_keys(&cluster.addrs(&all), &(0..2_000).collect::<Vec<_>>(), 1);

    let stopped = [1, 4, 7, 10, 13, 16];
    let live: Vec<usize> = all.iter().copied().filter(|i| !stopped.contains(i)).collect();
    for &s in &stopped {
        cluster.nodes[s].signal(libc::SIGSTOP);
    }
    let took = cluster.wait_membership(&live, 14, Duration::from_secs(5));
    eprintln!("14 live nodes agree {took:?} after SIGSTOP of 6");
    // While they are stopped a GET returns the right value, or exactly 1 for
    // a bucket whose replicas are all stopped: never another value.
    let live_addrs = cluster.addrs(&live);
    let results = parallel(&(0..2_000).collect::<Vec<usize>>(), 8, |&i| {
        let (code, got, version) = get(pick(&live_addrs, i), &key(i));
        match code {
            0 if got == value(i, 1) && version == 1 => (1, 0),
            1 => (0, 1),
            _ => panic!("key {i}: code {code}, version {version}: a wrong value"),
        }
    });
    let unavailable: usize = results.iter().map(|r| r.1).sum();
    eprintln!("while stopped: {unavailable} of 2000 keys answered 1 (all their replicas stopped)");

    for &s in &stopped {
        cluster.nodes[s].signal(libc::SIGCONT);
    }
    let took = cluster.wait_membership(&all, 20, Duration::from_secs(5));
    eprintln!("20 nodes agree {took:?} after SIGCONT");
    let keys: Vec<(usize, Option<usize>)> = (0..2_000).map(|i| (i, Some(1))).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    let all_addrs = cluster.addrs(&all);
    loop {
        let wrong = misreads(&all_addrs, &keys, 9, false);
        if wrong.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} keys still wrong 15 s after SIGCONT: {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(10)]
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `ctl metrics` over a running 5-node cluster, read back by a Prometheus
/// text-format parser: every node up, counting the requests it was sent.
#[test]
fn five_nodes_export_their_counters_in_the_prometheus_format() {
    use prometheus_parse::{Scrape, Value};
    let cluster = Cluster::start(5, &[], Duration::from_secs(10));
    let addrs = cluster.addrs(&[0, 1, 2, 3, 4]);
    // 40 PUTs and 20 GETs to each node, straight to it.
    for (n, &addr) in addrs.iter().enumerate() {
        for i in 0..40 {
            assert_eq!(put(addr, &key(n * 100 + i), &value(i, 1), 1), 0);
        }
        for i in 0..20 {
            assert_eq!(get(addr, &key(n * 100 + i)).0, 0);
        }
    }
    let file = cluster.servers_file.with_file_name("dynakv.prom");
    ctl(&cluster.servers_file, &["metrics", "--output", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).expect("the textfile was written");
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition format");
    let value = |sample: &prometheus_parse::Sample| match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        _ => f64::NAN,
    };
    let samples = |metric: &str, label: Option<(&str, &str)>| -> Vec<(String, f64)> {
        (scrape.samples.iter())
            .filter(|s| s.metric == metric)
            .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| (s.labels.get("node").unwrap_or_default().to_string(), value(s)))
            .collect()
    };
    let names: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let up = samples("dynakv_up", None);
    assert_eq!(up.len(), 5, "{text}");
    assert!(up.iter().all(|(node, v)| names.contains(node) && *v == 1.0), "{up:?}");
    assert!(matches!(
        scrape
            .samples
            .iter()
            .find(|s| s.metric == "dynakv_requests_total")
            .map(|s| &s.value),
        Some(Value::Counter(_))
    ));
    for (node, count) in samples("dynakv_requests_total", Some(("command", "put"))) {
        // Exactly what was sent, unless a datagram was lost and retried.
        assert!((40.0..=44.0).contains(&count), "{node}: {count} PUTs counted");
    }
    for (node, count) in samples("dynakv_requests_total", Some(("command", "get"))) {
        assert!((20.0..=24.0).contains(&count), "{node}: {count} GETs counted");
    }
    let successes: f64 = samples("dynakv_replies_total", Some(("code", "success")))
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert!(successes >= 300.0, "{successes} successful replies for 300 requests");
    for (node, members) in samples("dynakv_members", None) {
        assert_eq!(members, 5.0, "{node}");
    }
    for (node, rss) in samples("dynakv_resident_memory_bytes", None) {
        assert!(rss > 1e6 && rss < 64.0 * 1048576.0, "{node}: {rss}");
    }
    // A node that does not answer is reported down, not left out.
    cluster.nodes[2].signal(libc::SIGKILL);
    let text = ctl(&cluster.servers_file, &["metrics"]);
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition format");
    let down: Vec<&str> = (scrape.samples.iter())
        .filter(|s| s.metric == "dynakv_up" && value(s) == 0.0)
        .filter_map(|s| s.labels.get("node"))
        .collect();
    assert_eq!(down, vec![names[2].as_str()]);
}

/// Node-to-node datagrams go only to the nodes' listed addresses: a client
/// whose requests are forwarded, replicated and answered by other nodes
/// receives client replies and nothing else.
#[test]
fn a_client_receives_only_client_replies() {
    use dynakv::protocol::client;
    use dynakv::protocol::wire::{self, Command};
    let cluster = Cluster::start(3, &[], Duration::from_secs(10));
    let addrs = cluster.addrs(&[0, 1, 2]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 65_536];
    for i in 0..300usize {
        let id = [
            (i % 256) as u8,
            (i / 256) as u8,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
        ];
        let command = if i % 2 == 0 { Command::Put } else { Command::Get };
        let request = client::request(command, Some(&key(i / 2)), Some(b"v"), Some(1));
        socket
            .send_to(&wire::encode_request(&id, &request), pick(&addrs, i))
            .unwrap();
        // Read the reply (and whatever else arrives meanwhile).
        if let Ok((len, from)) = socket.recv_from(&mut buffer) {
            received.push((buffer[..len].to_vec(), from));
        }
    }
    // Anything sent late (replication, gossip) would arrive within a round.
    while let Ok((len, from)) = socket.recv_from(&mut buffer) {
        received.push((buffer[..len].to_vec(), from));
    }
    assert!(received.len() >= 290, "{} replies to 300 requests", received.len());
    for (datagram, from) in &received {
        assert!(
            !dynakv::cluster::internal::is_internal(datagram) && wire::decode_msg(datagram).is_ok(),
            "from {from}: not a client reply: {:02x?}",
            &datagram[..datagram.len().min(16)]
        );
    }
}

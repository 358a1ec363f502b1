//! `dynakv ctl exporter` for real: a 5-node cluster scraped over HTTP and
//! parsed as Prometheus parses it; a node killed; requests a scraper would
//! never send.

mod common;

use common::*;
use prometheus_parse::{Scrape, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NODE_TIMEOUT_MS: u64 = 600;
const REQUEST_TIMEOUT_MS: u64 = 1_000;

/// The exporter process, killed (by its pid) when dropped.
struct ExporterProcess {
    child: Child,
    addr: SocketAddr,
}

impl ExporterProcess {
    fn start(servers: &std::path::Path) -> ExporterProcess {
        let addr = free_addrs(1)[0];
        let child = Command::new(env!("CARGO_BIN_EXE_dynakv"))
            .arg("ctl")
            .arg("--servers")
            .arg(servers)
            .args(["exporter", "--listen", &addr.to_string()])
            .args(["--node-timeout-ms", &NODE_TIMEOUT_MS.to_string()])
            .args(["--request-timeout-ms", &REQUEST_TIMEOUT_MS.to_string()])
            .stderr(Stdio::null())
            .spawn()
            .expect("start the exporter");
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the exporter does not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        ExporterProcess { child, addr }
    }
}

impl Drop for ExporterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` as is and reads until the exporter closes; returns the
/// status code and the body.
fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // A large request may be cut short by the exporter's answer.
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// An HTTP/1.1 GET as a scraper sends it.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\nUser-Agent: test\r\n\r\n").as_bytes(),
    )
}

fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "GET /metrics: {body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("the Prometheus text format")
}

fn value(scrape: &Scrape, metric: &str, node: &str, label: Option<(&str, &str)>) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && s.labels.get("node") == Some(node))
        .filter(|s| label.is_none_or(|(name, v)| s.labels.get(name) == Some(v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .next()
}

#[test]
fn the_exporter_serves_every_nodes_counters_and_marks_a_dead_node_down() {
    let cluster = Cluster::start(5, &[], Duration::from_secs(30));
    cluster.wait_all_ready(Duration::from_secs(30));
    let exporter = ExporterProcess::start(&cluster.servers_file);
    let names: Vec<String> = cluster.addrs(&[0, 1, 2, 3, 4]).iter().map(|a| a.to_string()).collect();

    let first = scrape(exporter.addr);
    let gets = |s: &Scrape, node: &str| value(s, "dynakv_requests_total", node, Some(("command", "get")));
    for node in &names {
        assert_eq!(value(&first, "dynakv_up", node, None), Some(1.0), "{node} up");
    }
    assert!(
        first
            .samples
            .iter()
            .any(|s| s.metric == "dynakv_scrape_duration_seconds")
    );
    // GETs sent to each node in turn: every node's request counter grows.
    for (i, addr) in cluster.addrs(&[0, 1, 2, 3, 4]).iter().enumerate() {
        for k in 0..5 {
            let _ = common::get(*addr, &key(i * 10 + k));
        }
    }
    let second = scrape(exporter.addr);
    for node in &names {
        let (before, after) = (gets(&first, node).unwrap_or(0.0), gets(&second, node).unwrap_or(0.0));
        assert!(after >= before + 5.0, "{node}: GETs counted {before} then {after}");
    }

    cluster.nodes[3].signal(libc::SIGKILL);
    let started = Instant::now();
    let third = scrape(exporter.addr);
    let took = started.elapsed();
    assert_eq!(
        value(&third, "dynakv_up", &names[3], None),
        Some(0.0),
        "the killed node is down"
    );
    for (i, node) in names.iter().enumerate().filter(|(i, _)| *i != 3) {
        assert_eq!(value(&third, "dynakv_up", node, None), Some(1.0), "node {i} still up");
    }
    eprintln!("a scrape with one node dead took {took:?}");
    assert!(
        took < Duration::from_millis(NODE_TIMEOUT_MS + 1_000),
        "a dead node cost the scrape {took:?}, more than its timeout of {NODE_TIMEOUT_MS} ms and 1 s"
    );
    let (status, page) = get(exporter.addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("/metrics"));
}

#[test]
fn malformed_http_gets_an_error_or_a_timeout_and_the_exporter_keeps_serving() {
    let cluster = Cluster::start(1, &[], Duration::from_secs(30));
    let exporter = ExporterProcess::start(&cluster.servers_file);
    let addr = exporter.addr;

    assert_eq!(exchange(addr, b"\x16\x03\x01\x02\x00garbage\r\n\r\n").0, 400);
    assert_eq!(exchange(addr, b"GET /metrics\r\n\r\n").0, 400);
    assert_eq!(exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(get(addr, "/nothing").0, 404);
    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Padding: ".to_vec();
    huge.resize(1 << 20, b'a');
    assert_eq!(exchange(addr, &huge).0, 431, "a 1 MiB header");

    // Slow clients hold their connections; a scrape is served meanwhile,
    // and each slow one is answered 408 once its time is up.
    let slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost:").unwrap();
            s
        })
        .collect();
    let scraped = scrape(addr);
    assert!(scraped.samples.iter().any(|s| s.metric == "dynakv_up"));
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut response = String::new();
        let _ = s.read_to_string(&mut response);
        assert!(response.starts_with("HTTP/1.1 408"), "a slow client got {response:?}");
    }
    // More connections at once than allowed: the excess is refused, not queued forever.
    let held: Vec<TcpStream> = (0..dynakv::ops::exporter::CONNECTIONS_MAX + 4)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    let (status, _) = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, 503, "a connection over the limit");
    drop(held);
    let started = Instant::now();
    loop {
        let (status, _) = get(addr, "/metrics");
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the exporter does not serve again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

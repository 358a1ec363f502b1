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

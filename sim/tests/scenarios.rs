//! Scenario tests: each restates one rule of how a dynakv cluster behaves
//! (README, "How it works") and shows it on a small cluster stepped by
//! hand on virtual time ([`dynakv_sim::scenario`]): the real node logic, a
//! network the test controls, no randomness. Most run twice: with the
//! store on the event loop (one shard, as on a 2-core host) and on two
//! worker shards with queues (a bigger host).

use dynakv::cluster::internal::Internal;
use dynakv_sim::scenario::{End, Op, Packet, Scenario, Verdict};

const SUCCESS: u32 = 0;
const NOT_FOUND: u32 = 1;
const OVERLOAD: u32 = 3;
/// Silence after which a peer is counted dead, plus a round to notice.
const DETECTED_MS: u64 = 3_400;

/// Runs a scenario with each shard layout.
fn each_layout(scenario: impl Fn(&dyn Fn(usize, usize) -> Scenario)) {
    for workers in [0, 2] {
        scenario(&|nodes, replicas| Scenario::with(nodes, replicas, |cluster| cluster.workers = workers));
    }
}

fn is_ack(message: &Internal) -> bool {
    matches!(message, Internal::ReplicateAck { .. })
}

fn is_replicate(message: &Internal) -> bool {
    matches!(message, Internal::Replicate { .. })
}

fn involves(packet: &Packet, node: usize) -> bool {
    let node_to_node = matches!((packet.from, packet.to), (End::Node(_), End::Node(_)));
    node_to_node && (packet.from == End::Node(node) || packet.to == End::Node(node))
}

fn value(answer: &dynakv_sim::scenario::Answer) -> Option<&str> {
    answer
        .value
        .as_deref()
        .map(|v| std::str::from_utf8(v).unwrap_or("(not UTF-8)"))
}

/// "The client hears back only when every live replica has acknowledged
/// and at least two nodes store the write."
#[test]
fn a_write_is_answered_only_once_every_live_replica_has_acknowledged_it() {
    each_layout(|cluster| {
        let mut s = cluster(3, 3);
        s.settle();
        let (_, replicas) = s.replicas_of(0, "k");
        let (coordinator, last) = (replicas[0], replicas[2]);
        s.on(move |p| {
            if p.from == End::Node(last) && p.carries(is_ack) {
                Verdict::Hold
            } else {
                Verdict::Deliver
            }
        });
        let put = s.send(coordinator, Op::put("k", "v"));
        s.run_for(1_000);
        assert!(
            s.answer(&put).is_none(),
            "two copies exist, but a live replica has not acknowledged"
        );
        assert!(!s.held().is_empty(), "its acks (of the resends too) were held");
        s.clear_rules();
        s.release_held();
        s.run_for(10);
        assert_eq!(s.answer(&put).map(|a| a.code), Some(SUCCESS));
    });
}

/// "Replicas that die before they acknowledge are replaced by the nodes
/// that stand in for them": the client hears back once two copies exist.
#[test]
fn a_replica_that_dies_before_acking_is_replaced_by_its_stand_in() {
    each_layout(|cluster| {
        let mut s = cluster(4, 2);
        s.settle();
        let (_, replicas) = s.replicas_of(0, "k");
        let (coordinator, replica) = (replicas[0], replicas[1]);
        let stand_in = s.stand_ins_of(0, "k")[0];
        s.crash(replica);
        let crashed_ms = s.now_ms();
        let put = s.send(coordinator, Op::put("k", "v"));
        s.run_for(2_000);
        assert!(
            s.answer(&put).is_none(),
            "one copy only, while the replica is not counted dead"
        );
        assert!(s.run_until(5_000, |s| s.answer(&put).is_some()));
        let answer = s.answer(&put).cloned().unwrap_or_else(|| unreachable!());
        assert_eq!(answer.code, SUCCESS);
        assert!(
            answer.at_us / 1_000 >= crashed_ms + 3_000,
            "only once the replica was counted dead"
        );
        assert_eq!(
            s.node(stand_in).stored("k".as_bytes()),
            Some(Some(b"v".to_vec())),
            "the second copy"
        );
    });
}

/// "A node that sees no other live replica of the key answers OVERLOAD
/// rather than keep the only copy."
#[test]
fn a_node_that_sees_no_other_live_replica_acknowledges_nothing() {
    each_layout(|cluster| {
        let mut s = cluster(3, 3);
        s.settle();
        let (_, replicas) = s.replicas_of(0, "k");
        let alone = replicas[0];
        s.on(move |p| {
            if involves(p, alone) {
                Verdict::Drop
            } else {
                Verdict::Deliver
            }
        });
        s.run_for(DETECTED_MS);
        assert_eq!(s.node(alone).membership_count(), 1);
        let answer = s.call(alone, Op::put("k", "v"), 1_000).expect("an answer");
        assert_eq!(answer.code, OVERLOAD);
        assert_eq!(s.node(alone).stored(b"k"), None, "nothing stored alone");
    });
}

/// "A node that was stopped and continued drops what queued meanwhile and
/// catches up": until then it coordinates nothing, and no read of its
/// buckets sees what it held before the stop.
#[test]
fn a_node_woken_from_a_stop_coordinates_nothing_until_it_has_caught_up() {
    each_layout(|cluster| {
        let mut s = cluster(3, 2);
        s.settle();
        let (_, replicas) = s.replicas_of(0, "k");
        let (sleeper, other) = (replicas[0], replicas[1]);
        assert_eq!(
            s.call(sleeper, Op::put("k", "old"), 1_000).map(|a| a.code),
            Some(SUCCESS)
        );
        s.pause(sleeper);
        s.run_for(DETECTED_MS);
        assert_eq!(s.call(other, Op::put("k", "new"), 1_000).map(|a| a.code), Some(SUCCESS));
        s.resume(sleeper);
        let mut reads = 0;
        while !s.is_ready(sleeper) {
            let answer = s.call(sleeper, Op::get("k"), 1_000).expect("an answer");
            assert!(answer.code == OVERLOAD || value(&answer) == Some("new"), "{answer:?}");
            // A catch-up of compared digests may end during the read: it
            // coordinates only once ready.
            assert!(
                answer.code == OVERLOAD || answer.from != End::Node(sleeper) || s.is_ready(sleeper),
                "it coordinated: {answer:?}"
            );
            reads += 1;
            assert!(reads < 5_000, "never caught up");
        }
        let answer = s.call(sleeper, Op::get("k"), 1_000).expect("an answer");
        assert_eq!((value(&answer), answer.from), (Some("new"), End::Node(sleeper)));
    });
}

/// "A node that starts pulls all its buckets from the replicas and the
/// nodes that stood in for it, and coordinates nothing until done."
#[test]
fn a_restarted_node_coordinates_nothing_until_it_has_pulled_its_buckets() {
    each_layout(|cluster| {
        let mut s = cluster(3, 2);
        s.settle();
        let (_, replicas) = s.replicas_of(0, "k");
        let (restarted, other) = (replicas[0], replicas[1]);
        assert_eq!(
            s.call(restarted, Op::put("k", "old"), 1_000).map(|a| a.code),
            Some(SUCCESS)
        );
        s.crash(restarted);
        s.run_for(DETECTED_MS);
        assert_eq!(s.call(other, Op::put("k", "new"), 1_000).map(|a| a.code), Some(SUCCESS));
        s.restart(restarted);
        while !s.is_ready(restarted) {
            let answer = s.call(restarted, Op::get("k"), 1_000).expect("an answer");
            assert!(answer.code == OVERLOAD || value(&answer) == Some("new"), "{answer:?}");
        }
        assert_eq!(s.node(restarted).stored(b"k"), Some(Some(b"new".to_vec())));
    });
}

/// "Each source has its own window": a pull that times out is asked
/// again of the same source, and the other sources are not asked again.
#[test]
fn a_pull_that_times_out_is_asked_again_of_the_same_source_only() {
    let mut s = Scenario::new(3, 3);
    s.settle();
    let (_, replicas) = s.replicas_of(0, "k");
    let (restarted, answers, silent) = (replicas[0], replicas[1], replicas[2]);
    s.crash(restarted);
    s.restart(restarted);
    let restarted_ms = s.now_ms();
    // Past the settling wait and a compare's timeout, after which the
    // silent source's buckets are pulled from it.
    let silent_until_ms = restarted_ms + 6_000;
    // Its answers to compares too: their buckets are then pulled from it.
    s.on(move |p| {
        let compared = p.carries(|m| matches!(m, Internal::Compared { .. }));
        if p.between(silent, restarted) && (p.stream || compared) {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });
    s.run_for(6_000);
    assert!(!s.is_ready(restarted));
    s.clear_rules();
    assert!(
        s.run_until(10_000, |s| s.is_ready(restarted)),
        "caught up once answered"
    );
    // Per bucket and source, when the restarted node asked for it.
    let mut asked: std::collections::BTreeMap<(u16, usize), Vec<u64>> = Default::default();
    for (at_us, packet) in s.delivered.iter().filter(|(at_us, _)| at_us / 1_000 >= restarted_ms) {
        let (End::Node(from), End::Node(to)) = (packet.from, packet.to) else {
            continue;
        };
        for message in &packet.messages {
            if let (true, Internal::Pull { bucket, request, .. }) = (from == restarted, message)
                && *request != 0
            {
                asked.entry((*bucket, to)).or_default().push(at_us / 1_000);
            }
        }
    }
    let again: Vec<u16> = (asked.iter())
        .filter(|((_, source), times)| *source == silent && times.len() > 1)
        .map(|((bucket, _), _)| *bucket)
        .collect();
    assert!(
        !again.is_empty(),
        "pulls of the silent source timed out and were asked again"
    );
    for bucket in again {
        let times = &asked[&(bucket, silent)];
        assert!(times[1] >= times[0] + 2_000, "asked again after the timeout: {times:?}");
        assert!(times[0] < silent_until_ms);
        assert!(
            asked.get(&(bucket, answers)).map_or(0, Vec::len) <= 1,
            "bucket {bucket}: the other source is pulled from once at most (a compare may do)"
        );
    }
}

/// "WIPEOUT refuses whatever is stamped in the millisecond it was wiped
/// in or earlier, and answers only once that millisecond is over": a write
/// stamped before the wipe and delivered after it stays out; one started
/// after the answer gets in.
#[test]
fn a_wipeout_keeps_out_every_write_stamped_in_or_before_its_millisecond() {
    each_layout(|cluster| {
        let mut s = cluster(3, 3);
        s.settle();
        let (_, replicas) = s.replicas_of(0, "k");
        let (coordinator, wiped) = (replicas[0], replicas[2]);
        s.on(move |p| {
            if p.to == End::Node(wiped) && p.carries(is_replicate) {
                Verdict::Hold
            } else {
                Verdict::Deliver
            }
        });
        let put = s.send(coordinator, Op::put("k", "before"));
        s.run_until(100, |s| !s.held().is_empty());
        let wipe = s.send(wiped, Op::wipeout());
        let sent_unix_ms = s.now_ms();
        assert!(s.run_until(1_000, |s| s.answer(&wipe).is_some()));
        let answered_ms = s.answer(&wipe).map_or(0, |a| a.at_us / 1_000);
        assert!(answered_ms > sent_unix_ms, "answered once its millisecond is over");
        s.clear_rules();
        s.release_held();
        s.run_until(1_000, |s| s.answer(&put).is_some());
        assert_eq!(
            s.node(wiped).stored(b"k"),
            None,
            "the write stamped before the wipe stays out"
        );
        assert_eq!(
            s.call(coordinator, Op::put("k", "after"), 1_000).map(|a| a.code),
            Some(SUCCESS)
        );
        assert_eq!(s.node(wiped).stored(b"k"), Some(Some(b"after".to_vec())));
    });
}

/// "Pulls travel over TCP ... with bounded queues both ways": a transfer
/// the stream layer refuses (its queues full) is tried again, and the node
/// catches up once the streams take it.
#[test]
fn a_refused_transfer_is_tried_again_until_it_goes_through() {
    each_layout(|cluster| {
        let mut s = cluster(3, 3);
        s.settle();
        assert_eq!(s.call(0, Op::put("k", "v"), 1_000).map(|a| a.code), Some(SUCCESS));
        s.crash(2);
        s.restart(2);
        for source in [0, 1] {
            s.node(source).io.refuse_streams_to(vec![s.addr(2)]);
        }
        s.run_for(4_000);
        assert!(!s.is_ready(2), "nothing reached it");
        for source in [0, 1] {
            s.node(source).io.refuse_streams_to(Vec::new());
        }
        assert!(
            s.run_until(6_000, |s| s.is_ready(2)),
            "caught up once the streams took the chunks"
        );
        assert_eq!(s.node(2).stored(b"k"), Some(Some(b"v".to_vec())));
    });
}

/// "Replies to PUT/REMOVE are cached at least 5 s": a retried request is
/// answered again, not executed again.
#[test]
fn a_retried_write_is_executed_once() {
    each_layout(|cluster| {
        let mut s = cluster(3, 3);
        s.settle();
        let (_, replicas) = s.replicas_of(0, "k");
        let coordinator = replicas[0];
        let first = s.send(coordinator, Op::put("k", "first"));
        s.run_until(1_000, |s| s.answer(&first).is_some());
        assert_eq!(
            s.call(coordinator, Op::put("k", "second"), 1_000).map(|a| a.code),
            Some(SUCCESS)
        );
        s.resend(coordinator, &first);
        s.run_until(1_000, |s| s.answers(&first).len() == 2);
        assert_eq!(
            s.answers(&first).iter().map(|a| a.code).collect::<Vec<_>>(),
            [SUCCESS, SUCCESS]
        );
        let read = s.call(coordinator, Op::get("k"), 1_000).expect("an answer");
        assert_eq!(value(&read), Some("second"), "the retry was not executed again");
    });
}

/// "REMOVE leaves a tombstone ... so a deleted key never comes back, even
/// from a node that slept through the delete."
#[test]
fn a_delete_wins_over_the_copy_of_a_node_that_slept_through_it() {
    each_layout(|cluster| {
        let mut s = cluster(3, 3);
        s.settle();
        let (_, replicas) = s.replicas_of(0, "k");
        let (coordinator, sleeper) = (replicas[0], replicas[2]);
        assert_eq!(
            s.call(coordinator, Op::put("k", "v"), 1_000).map(|a| a.code),
            Some(SUCCESS)
        );
        s.pause(sleeper);
        s.run_for(DETECTED_MS);
        assert_eq!(
            s.call(coordinator, Op::remove("k"), 1_000).map(|a| a.code),
            Some(SUCCESS)
        );
        s.resume(sleeper);
        assert_eq!(
            s.node(sleeper).stored(b"k"),
            Some(Some(b"v".to_vec())),
            "it slept through the delete"
        );
        assert!(s.run_until(10_000, |s| s.is_ready(sleeper)));
        assert_eq!(s.node(sleeper).stored(b"k"), Some(None), "the tombstone won");
        s.run_for(2_000);
        for node in 0..3 {
            assert_eq!(s.call(node, Op::get("k"), 1_000).map(|a| a.code), Some(NOT_FOUND));
        }
    });
}

/// "Anti-entropy compares per-bucket digests ... and exchanges buckets
/// that differ": replicas that acknowledged a write without storing it
/// get it from the coordinator.
#[test]
fn anti_entropy_repairs_replicas_that_lost_a_write() {
    let mut s = Scenario::with(3, 3, |cluster| cluster.lose_replica_writes_percent = 100);
    s.settle();
    let (_, replicas) = s.replicas_of(0, "k");
    assert_eq!(
        s.call(replicas[0], Op::put("k", "v"), 1_000).map(|a| a.code),
        Some(SUCCESS)
    );
    let lost = |s: &Scenario, node: usize| s.node(node).stored(b"k").is_none();
    assert!(
        lost(&s, replicas[1]) && lost(&s, replicas[2]),
        "acknowledged, not stored"
    );
    assert!(s.run_until(10_000, |s| !lost(s, replicas[1]) && !lost(s, replicas[2])));
}

/// "Any node accepts any request. If it is not the coordinator it
/// forwards the client's datagram ... to the coordinator, which executes
/// it and answers the client directly."
#[test]
fn any_node_takes_any_request_and_the_coordinator_answers_the_client() {
    each_layout(|cluster| {
        let mut s = cluster(5, 3);
        s.settle();
        let (_, replicas) = s.replicas_of(0, "k");
        let elsewhere = (0..5)
            .find(|n| !replicas.contains(n))
            .expect("a node that holds no copy");
        let put = s.call(elsewhere, Op::put("k", "v"), 1_000).expect("an answer");
        let get = s.call(elsewhere, Op::get("k"), 1_000).expect("an answer");
        assert_eq!((put.code, put.from), (SUCCESS, End::Node(replicas[0])));
        assert_eq!((value(&get), get.from), (Some("v"), End::Node(replicas[0])));
    });
}

/// "A peer silent for 3 s is dead. GET_MEMBERSHIP_COUNT is the number of
/// nodes believed alive": a crashed node is counted out after the failure
/// timeout, not before, and back in once it restarts.
#[test]
fn a_crashed_node_is_counted_out_after_the_failure_timeout_and_back_in_on_restart() {
    let mut s = Scenario::new(4, 3);
    s.settle();
    let count = |s: &mut Scenario| {
        s.call(0, Op::membership_count(), 1_000)
            .and_then(|a| a.membership_count)
    };
    s.crash(3);
    s.run_for(2_500);
    assert_eq!(count(&mut s), Some(4), "not before the failure timeout");
    s.run_for(1_000);
    assert_eq!(count(&mut s), Some(3));
    s.restart(3);
    s.run_for(1_000);
    assert_eq!(count(&mut s), Some(4));
}

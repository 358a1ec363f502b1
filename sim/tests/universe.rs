//! Scenario tests of a changing universe: each restates one rule of how a
//! dynakv cluster grows and shrinks (README, "Growing and shrinking") and
//! shows it on a small cluster stepped by hand ([`dynakv_sim::scenario`]).

use dynakv::cluster::ring::{Liveness, Placement, Role};
use dynakv::storage::hash::bucket_of_key;
use dynakv_sim::scenario::{End, Op, Scenario, Verdict};

const SUCCESS: u32 = 0;
const OVERLOAD: u32 = 3;

/// A key whose preference list, among the nodes `roles` gives (by
/// scenario number), is `wanted` (in any order).
fn key_placed(s: &Scenario, roles: &[Role], replicas: usize, wanted: &[usize]) -> String {
    let slots: Vec<(&str, Role)> = (s.cluster.names.iter().map(String::as_str))
        .zip(roles.iter().copied())
        .collect();
    let alive: Vec<bool> = roles.iter().map(|&role| role != Role::Absent).collect();
    let view = Placement::with_roles(&slots, replicas).view(0, Liveness::ready(alive));
    (0..)
        .map(|i| format!("key-{i}"))
        .find(|key| {
            let mut preference: Vec<usize> = (view.preference(bucket_of_key(key.as_bytes())).iter())
                .map(|&n| usize::from(n))
                .collect();
            preference.sort_unstable();
            preference == wanted
        })
        .unwrap_or_default()
}

fn stored(s: &Scenario, node: usize, key: &str) -> Option<Vec<u8>> {
    s.node(node).stored(key.as_bytes()).flatten()
}

/// "Growing never lowers the number of ready copies of a bucket: the old
/// holders keep serving and keep their copies until the new owner is
/// ready." Node 3 joins a 3-node cluster of 2 replicas and takes the place
/// of node `displaced` for a key; while its pulls are held back it is not
/// ready, reads through it get the value from a current replica, and a
/// write made meanwhile reaches the displaced node too. Once its pulls go
/// through it holds the key, and only then does the displaced node drop
/// its copy.
#[test]
fn a_new_node_takes_its_share_only_once_it_holds_it_and_the_old_holder_keeps_its_copy_till_then() {
    let mut s = Scenario::with_spares(3, 1, 2, |_| {});
    s.settle();
    let serving = [Role::Serving; 4];
    let key = key_placed(&s, &serving, 2, &[1, 3]);
    let (_, before) = s.replicas_of(0, &key);
    assert!(before.contains(&1), "node 1 holds it before and after");
    let displaced = before.iter().copied().find(|&n| n != 1).unwrap_or_default();
    assert_eq!(s.call(0, Op::put(&key, "v1"), 2_000).map(|a| a.code), Some(SUCCESS));
    // What node 3 pulls never arrives.
    s.on(|p| {
        if p.stream && p.to == End::Node(3) {
            Verdict::Hold
        } else {
            Verdict::Deliver
        }
    });
    s.reload(&[0, 1, 2, 3], &[0, 1, 2]);
    s.join(3, None);
    s.run_for(3_000);
    assert!(!s.is_ready(3), "not ready while its pulls are held back");
    let read = s.call(3, Op::get(&key), 2_000).expect("an answer");
    assert_eq!((read.code, read.value.as_deref()), (SUCCESS, Some(&b"v1"[..])));
    assert_eq!(s.call(0, Op::put(&key, "v2"), 2_000).map(|a| a.code), Some(SUCCESS));
    assert_eq!(
        stored(&s, displaced, &key).as_deref(),
        Some(&b"v2"[..]),
        "the old holder is kept current"
    );
    s.run_for(12_000);
    assert_eq!(
        stored(&s, displaced, &key).as_deref(),
        Some(&b"v2"[..]),
        "nor does it drop its copy"
    );
    s.clear_rules();
    s.release_held();
    assert!(s.run_until(10_000, |s| s.is_ready(3)));
    assert_eq!(stored(&s, 3, &key).as_deref(), Some(&b"v2"[..]));
    assert!(
        s.run_until(15_000, |s| stored(s, displaced, &key).is_none()),
        "the old holder drops it once the new one is ready"
    );
    let read = s.call(2, Op::get(&key), 2_000).expect("an answer");
    assert_eq!(read.value.as_deref(), Some(&b"v2"[..]));
}

/// "Shrinking drains first: a node leaving keeps serving until every
/// bucket it held has its full replica count elsewhere, then exits; at no
/// point does a key have fewer copies than the replica count promises."
/// Node `leaving` is taken out of a 4-node cluster of 2 replicas; the node
/// that takes its place for a key does not get its pulls: the leaving node
/// stays up, keeps the key and gets the writes. Once the pulls go through
/// it hands its data over and exits by itself.
#[test]
fn a_leaving_node_stays_until_its_buckets_have_their_replicas_elsewhere_then_exits() {
    let mut s = Scenario::with_spares(4, 0, 2, |_| {});
    s.settle();
    let leaving = 2;
    let mut roles = [Role::Serving; 4];
    let key = key_placed(&s, &roles, 2, &[0, 2]);
    roles[leaving] = Role::Leaving;
    let slots: Vec<(&str, Role)> = (s.cluster.names.iter().map(String::as_str)).zip(roles).collect();
    let after = Placement::with_roles(&slots, 2).view(0, Liveness::ready(vec![true; 4]));
    let gains = (after.preference(bucket_of_key(key.as_bytes())))
        .iter()
        .map(|&n| usize::from(n))
        .find(|&n| n != 0);
    let gains = gains.unwrap_or_default();
    assert_eq!(s.call(0, Op::put(&key, "v1"), 2_000).map(|a| a.code), Some(SUCCESS));
    s.on(move |p| {
        if p.stream && p.to == End::Node(gains) {
            Verdict::Hold
        } else {
            Verdict::Deliver
        }
    });
    s.reload(&[0, 1, 3], &[0, 1, 2, 3]);
    s.run_for(8_000);
    assert!(s.is_up(leaving), "it stays while the node taking its place pulls");
    assert_eq!(s.call(1, Op::put(&key, "v2"), 2_000).map(|a| a.code), Some(SUCCESS));
    assert_eq!(
        stored(&s, leaving, &key).as_deref(),
        Some(&b"v2"[..]),
        "and gets the writes"
    );
    let count = s
        .call(0, Op::membership_count(), 1_000)
        .and_then(|a| a.membership_count);
    assert_eq!(count, Some(3), "it no longer counts as a member");
    s.clear_rules();
    s.release_held();
    assert!(s.run_until(30_000, |s| !s.is_up(leaving)), "it exits by itself");
    assert_eq!(stored(&s, gains, &key).as_deref(), Some(&b"v2"[..]));
    let read = s.call(3, Op::get(&key), 2_000).expect("an answer");
    assert_eq!(read.value.as_deref(), Some(&b"v2"[..]));
}

/// "A reload that reached only some nodes converges by gossip": the
/// operator's order reaches one node of four; within seconds every node
/// holds the new universe.
#[test]
fn a_reload_that_reached_one_node_reaches_every_node_by_gossip() {
    let mut s = Scenario::with_spares(4, 1, 3, |_| {});
    s.settle();
    s.reload(&[0, 1, 2, 3, 4], &[2]);
    assert!(
        s.run_until(3_000, |s| (0..4).all(|n| s.universe_of(n) == 1)),
        "versions: {:?}",
        (0..4).map(|n| s.universe_of(n)).collect::<Vec<_>>()
    );
}

/// "A node started with a stale file learns the current one from its
/// peers", and a node started with a servers file the cluster never
/// adopted answers no key from its empty store: it asks clients to wait
/// (OVERLOAD) until a reload lists it, then serves.
#[test]
fn a_node_the_cluster_never_adopted_serves_no_key_until_a_reload_lists_it() {
    let mut s = Scenario::with_spares(3, 1, 3, |_| {});
    s.settle();
    assert_eq!(s.call(0, Op::put("k", "v"), 2_000).map(|a| a.code), Some(SUCCESS));
    s.join(3, Some(&[0, 1, 2, 3]));
    s.run_for(5_000);
    let read = s.call(3, Op::get("k"), 1_000).expect("an answer");
    assert_eq!(read.code, OVERLOAD, "not NOT_FOUND from an empty store");
    s.reload(&[0, 1, 2, 3], &[1]);
    assert!(s.run_until(10_000, |s| s.universe_of(3) == 1 && s.is_ready(3)));
    let read = s.call(3, Op::get("k"), 2_000).expect("an answer");
    assert_eq!((read.code, read.value.as_deref()), (SUCCESS, Some(&b"v"[..])));
}

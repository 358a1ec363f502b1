//! Durability on a node stepped by hand (`dynakv_sim::scenario`), its
//! data directory the simulator's disk (`dynakv_sim::disk`), which keeps
//! only what was synced when the power goes.
//!
//! The first test is the one promise at every point: a node's power is cut
//! after each single disk operation of a run that writes, deletes, rolls
//! segments and compacts, in turn; each time the node recovers every write
//! it acknowledged and nothing it did not store.

use dynakv::node::durability::journal::Fsync;
use dynakv_sim::scenario::{Op, Scenario};

const SUCCESS: u32 = 0;
const NOT_FOUND: u32 = 1;
/// Writes of one run: enough for segments to roll and the journal to be
/// compacted several times under the simulator's small thresholds.
const WRITES: usize = 120;

fn one_node(fsync: Fsync) -> Scenario {
    let mut s = Scenario::with(1, 1, |cluster| cluster.fsync = Some(fsync));
    s.settle();
    s
}

/// Key `i` is written with value `v{i}`; every fifth key written before is
/// then removed.
fn op(i: usize) -> (Op, String, bool) {
    if i % 5 == 4 {
        let key = format!("key-{}", i - 2);
        (Op::remove(&key), key, true)
    } else {
        let key = format!("key-{i}");
        (Op::put(&key, &format!("v{i}")), key, false)
    }
}

/// Runs the writes, the power cut after `cut` disk operations (None:
/// never); returns what was acknowledged: per key, its value (None: removed).
fn run_with_cut(cut: Option<u64>) -> (Scenario, Vec<(String, Option<String>)>, u64) {
    let mut s = one_node(Fsync::Always);
    let before = s.disk(0).operations();
    if let Some(cut) = cut {
        s.disk(0).lose_power_after(cut);
    }
    let mut acknowledged: Vec<(String, Option<String>)> = Vec::new();
    for i in 0..WRITES {
        if !s.is_up(0) {
            break;
        }
        let (op, key, remove) = op(i);
        let answer = s.call(0, op, 200);
        let done = answer.is_some_and(|a| a.code == SUCCESS || (remove && a.code == NOT_FOUND));
        if done {
            acknowledged.retain(|(k, _)| *k != key);
            acknowledged.push((key, (!remove).then(|| format!("v{i}"))));
        }
        s.run_for(5);
    }
    let operations = s.disk(0).operations() - before;
    (s, acknowledged, operations)
}

/// "With `--fsync always` not even a power loss loses an acknowledged
/// write", at every point: after each disk operation of a run in turn.
#[test]
fn a_power_cut_after_any_disk_operation_loses_no_acknowledged_write() {
    let (_, all, operations) = run_with_cut(None);
    assert_eq!(all.len(), WRITES - WRITES / 5, "every write acknowledged without a cut");
    assert!(operations > 2 * WRITES as u64, "{operations} disk operations");
    for cut in 0..operations {
        let (mut s, acknowledged, _) = run_with_cut(Some(cut));
        if s.is_up(0) {
            s.lose_power(0);
        }
        s.restart(0);
        s.settle();
        for (key, value) in &acknowledged {
            let read = s.call(0, Op::get(key), 500).expect("an answer");
            let got = (read.code == SUCCESS)
                .then(|| String::from_utf8_lossy(read.value.as_deref().unwrap_or_default()).into_owned());
            assert_eq!(
                &got, value,
                "power cut after disk operation {cut} of {operations}: {key}"
            );
        }
    }
}

/// A restart keeps every key, and SHUTDOWN (which syncs) as well.
#[test]
fn a_restart_and_a_shutdown_keep_every_key_in_every_fsync_mode() {
    for fsync in [Fsync::Always, Fsync::Periodic { interval_ms: 1_000 }, Fsync::Never] {
        let mut s = one_node(fsync);
        for i in 0..20 {
            assert_eq!(
                s.call(0, Op::put(&format!("k{i}"), "v"), 500).map(|a| a.code),
                Some(SUCCESS)
            );
        }
        s.crash(0);
        s.restart(0);
        s.settle();
        for i in 0..20 {
            assert_eq!(
                s.call(0, Op::get(&format!("k{i}")), 500).map(|a| a.code),
                Some(SUCCESS),
                "{fsync:?}"
            );
        }
        assert_eq!(
            s.node(0)
                .ctx
                .counters
                .records_recovered
                .load(std::sync::atomic::Ordering::Relaxed),
            20
        );
    }
}

/// With `--fsync periodic=MS`, a power loss may take only what was
/// acknowledged within the last MS: what was acknowledged before survives.
#[test]
fn a_periodic_sync_bounds_what_a_power_loss_takes() {
    let mut s = one_node(Fsync::Periodic { interval_ms: 200 });
    for i in 0..10 {
        assert_eq!(
            s.call(0, Op::put(&format!("old{i}"), "v"), 500).map(|a| a.code),
            Some(SUCCESS)
        );
    }
    s.run_for(300);
    assert_eq!(s.call(0, Op::put("new", "v"), 500).map(|a| a.code), Some(SUCCESS));
    s.lose_power(0);
    s.restart(0);
    s.settle();
    for i in 0..10 {
        assert_eq!(
            s.call(0, Op::get(&format!("old{i}")), 500).map(|a| a.code),
            Some(SUCCESS),
            "synced before the loss"
        );
    }
}

/// "WIPEOUT is durable before it is answered": a node restarted after a
/// WIPEOUT comes back empty, and still refuses what the wipe refused.
#[test]
fn a_wipeout_survives_a_power_loss() {
    let mut s = one_node(Fsync::Periodic { interval_ms: 60_000 });
    assert_eq!(s.call(0, Op::put("k", "v"), 500).map(|a| a.code), Some(SUCCESS));
    assert_eq!(s.call(0, Op::wipeout(), 500).map(|a| a.code), Some(SUCCESS));
    s.lose_power(0);
    s.restart(0);
    s.settle();
    assert_eq!(s.call(0, Op::get("k"), 500).map(|a| a.code), Some(NOT_FOUND));
    assert!(s.node(0).stored(b"k").is_none());
}

/// A disk with no room refuses writes like a full store (OUT_OF_SPACE),
/// acknowledges nothing it could not log, serves reads, and takes writes
/// again once room returns.
#[test]
fn a_full_disk_refuses_writes_and_takes_them_again_when_room_returns() {
    const OUT_OF_SPACE: u32 = 2;
    let mut s = one_node(Fsync::Always);
    assert_eq!(s.call(0, Op::put("before", "v"), 500).map(|a| a.code), Some(SUCCESS));
    let used = s.disk(0).bytes();
    s.disk(0).set_capacity(Some(used));
    let (mut stored, mut refused) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let key = format!("k{i}");
        let code = s.call(0, Op::put(&key, &"x".repeat(2_000)), 500).map(|a| a.code);
        match code {
            Some(SUCCESS) => stored.push(key),
            Some(OUT_OF_SPACE) => refused.push(key),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert!(!refused.is_empty(), "the full disk refused");
    assert_eq!(
        s.call(0, Op::get("before"), 500).map(|a| a.code),
        Some(SUCCESS),
        "reads go on"
    );
    s.disk(0).set_capacity(None);
    s.run_for(300);
    assert_eq!(
        s.call(0, Op::put("after", "v"), 500).map(|a| a.code),
        Some(SUCCESS),
        "room again"
    );
    s.lose_power(0);
    s.restart(0);
    s.settle();
    for key in &stored {
        assert_eq!(
            s.call(0, Op::get(key), 500).map(|a| a.code),
            Some(SUCCESS),
            "{key} was acknowledged"
        );
    }
    for key in &refused {
        assert_eq!(
            s.call(0, Op::get(key), 500).map(|a| a.code),
            Some(NOT_FOUND),
            "{key} was refused"
        );
    }
    assert_eq!(s.call(0, Op::get("after"), 500).map(|a| a.code), Some(SUCCESS));
}

/// A disk whose writes fail (an I/O error) answers the writes of that
/// moment as failed (INTERNAL_FAILURE: they may or may not have landed),
/// acknowledges nothing it could not log, and takes writes again once the
/// disk does.
#[test]
fn a_failing_disk_acknowledges_nothing_it_could_not_log() {
    const INTERNAL_FAILURE: u32 = 4;
    let mut s = one_node(Fsync::Always);
    s.disk(0).set_failing(true);
    let code = s.call(0, Op::put("k", "v"), 500).map(|a| a.code);
    assert_eq!(code, Some(INTERNAL_FAILURE));
    s.disk(0).set_failing(false);
    s.run_for(600);
    assert_eq!(s.call(0, Op::put("k2", "v"), 500).map(|a| a.code), Some(SUCCESS));
    s.lose_power(0);
    s.restart(0);
    s.settle();
    assert_eq!(s.call(0, Op::get("k2"), 500).map(|a| a.code), Some(SUCCESS));
}

//! The simulator as a test: hundreds of seeded runs across every fault
//! mix break no promise; a seed replays exactly; each planted bug is found
//! within a stated number of seeds; seeds that once found a bug stay green.

use dynakv::node::context::PlantedBugs;
use dynakv_sim::config::{self, Inside, Limits, Mix};
use dynakv_sim::world::{RunOutcome, Watch};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const LIMITS: Limits = Limits {
    nodes_min: 3,
    nodes_max: 7,
};

fn run(seed: u64, mix: Mix, bugs: PlantedBugs) -> RunOutcome {
    dynakv_sim::run(dynakv_sim::config(seed, mix, LIMITS, bugs), Watch::default())
}

/// A run as runs went when `seed` found its bug: every planned crash
/// carried out, one shard on the event loop, streams that never refuse.
fn run_as_found(seed: u64, mix: Mix) -> RunOutcome {
    let mut config = dynakv_sim::config(seed, mix, LIMITS, PlantedBugs::default());
    config.crash_beyond_replication = true;
    config.inside = Inside::PLAIN;
    dynakv_sim::run(config, Watch::default())
}

/// Runs `seeds` (with their mixes) on two threads; returns the failures as
/// one line each, with the command that replays them.
fn failures(seeds: &[(u64, Mix)], run: impl Fn(u64, Mix) -> RunOutcome + Sync) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some(&(seed, mix)) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let outcome = run(seed, mix);
                    if let Some(first) = outcome.violations.first() {
                        let line = format!("dynakv-sim --seed {seed} --mix {}: {first}", mix.name());
                        failed.lock().unwrap().push(line);
                    }
                }
            });
        }
    });
    let mut failed = failed.into_inner().unwrap();
    failed.sort();
    failed
}

#[test]
fn three_hundred_and_four_seeds_across_every_fault_mix_break_no_promise() {
    let seeds: Vec<(u64, Mix)> = (0..304).map(|seed| (seed, Mix::for_seed(seed))).collect();
    let failed = failures(&seeds, |seed, mix| run(seed, mix, PlantedBugs::default()));
    assert!(
        failed.is_empty(),
        "{} seeds failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// A run with three clients of DynamoDB items beside the usual ones.
fn run_with_items(seed: u64, mix: Mix, bugs: PlantedBugs) -> RunOutcome {
    let mut config = dynakv_sim::config(seed, mix, LIMITS, bugs);
    config.item_clients = 3;
    dynakv_sim::run(config, Watch::default())
}

#[test]
fn dynamodb_items_stay_linearizable_across_a_hundred_and_twenty_seeds_of_every_fault_mix() {
    let seeds: Vec<(u64, Mix)> = (0..120).map(|seed| (seed, Mix::for_seed(seed))).collect();
    let failed = failures(&seeds, |seed, mix| run_with_items(seed, mix, PlantedBugs::default()));
    assert!(
        failed.is_empty(),
        "{} seeds failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    let mut single_vote = PlantedBugs::default();
    config::plant(&mut single_vote, "single-vote-rounds").unwrap();
    let found = (0..16).find(|&seed| {
        !run_with_items(seed, Mix::for_seed(seed), single_vote)
            .violations
            .is_empty()
    });
    assert!(found.is_some(), "rounds deciding on one vote not found in 16 seeds");
}

#[test]
fn the_same_seed_replays_the_same_run_event_for_event() {
    for mix in [Mix::All, Mix::Crash] {
        let (a, b) = (
            run(11, mix, PlantedBugs::default()),
            run(11, mix, PlantedBugs::default()),
        );
        assert_eq!((a.trace_hash, a.events), (b.trace_hash, b.events), "{}", mix.name());
        let other = run(12, mix, PlantedBugs::default());
        assert_ne!(a.trace_hash, other.trace_hash, "another seed, another run");
    }
}

/// Each planted bug, the mix it is looked for with (`None`: every mix in
/// turn, from seed 0) and how many seeds the simulator needs at most to
/// find it. The first four were first found at seeds 4, 17, 42 and 2
/// when these bounds were set. A write acknowledged before its replicas have it is lost only if
/// its coordinator dies before the replicated write leaves: the crash mix
/// aims some of its crashes at the moment a node acknowledges a write
/// (see `Inside::crash_at_ack`); with crashes at random times alone it
/// took 174 seeds of the mix of every fault.
///
/// A hand-off dropped before its replicas confirmed it is looked for in
/// the resize mix, which removes up to every replica of some buckets at
/// once: first found at seed 115 (a write only the leaving nodes held, its
/// hand-off pull refused on a busy stream, read back stale).
///
/// The three of durability are looked for in the power mix: first found at
/// seeds 0, 37 and 3 when these bounds were set (the last at 1 seed in 400
/// until half the power losses aimed into the disks were aimed into a
/// compaction). A sync skipped before the
/// reply shows as a node that lost, in a power loss, a record it held with
/// every write committed; a recovery that takes damaged records as a value
/// nobody wrote; a compaction that removes the log before its snapshot is
/// durable, in a power loss aimed into the disk's operations, as a key
/// whose every copy went back to an older value.
///
/// `drop-handoff-unconfirmed` (found at resize seed 115 when planted) is
/// not in the list: within 30 s of a universe change a node pulls every
/// bucket it gained once more, 1.2 s after the gain, from the nodes that
/// still hold it, which brings back what a giver that dropped a bucket
/// unconfirmed had handed off; with that, 400 resize seeds do not find it.
const PLANTED: [(&str, Option<Mix>, u64); 7] = [
    ("ack-before-replicas", Some(Mix::Crash), 64),
    ("collect-tombstones-at-once", None, 80),
    ("skip-catch-up-after-pause", None, 120),
    ("ignore-stamps-on-merge", None, 16),
    ("ack-before-sync", Some(Mix::Power), 16),
    ("recovery-ignores-checksums", Some(Mix::Power), 80),
    ("compaction-deletes-log-early", Some(Mix::Power), 16),
];

#[test]
fn every_planted_bug_is_found_within_its_number_of_seeds() {
    for (name, mix, seeds_max) in PLANTED {
        let mut bugs = PlantedBugs::default();
        config::plant(&mut bugs, name).unwrap();
        let found = (0..seeds_max).find(|&seed| {
            let mix = mix.unwrap_or_else(|| Mix::for_seed(seed));
            !run(seed, mix, bugs).violations.is_empty()
        });
        assert!(found.is_some(), "{name} not found in {seeds_max} seeds");
        eprintln!("{name}: found at seed {}", found.unwrap_or_default());
    }
}

/// Runs that once failed, each for a bug since fixed (see
/// docs/reliability.md): replayed as they ran then, they must stay green.
#[test]
fn seeds_that_found_bugs_pass() {
    let once_failed = [
        (49, Mix::Crash),   // a restarted node coordinated before it heard of the cluster
        (1521, Mix::Crash), // a stale stand-in coordinated while every replica caught up
        (1090, Mix::Pause), // a woken node was ready before the cluster knew it was back
        (2167, Mix::All),   // a REMOVE of a tombstoned key did not win over a later copy
        (23, Mix::All),     // a node cut off from every replica acknowledged a write alone
        (111, Mix::All),    // restarted nodes waited on a peer that could not hear them to pull
    ];
    let mut failed: Vec<String> = (failures(&once_failed, run_as_found).into_iter())
        .map(|line| line.replacen(": ", " --crash-beyond-replication --inside-plain: ", 1))
        .collect();
    // Found since runs draw how nodes run inside and skip crashes beyond
    // replication: replayed as any run goes now.
    let found_since = [
        (3, Mix::Resize),     // nodes of a new universe coordinated before they knew they joined
        (38, Mix::Resize),    // a leaving node never exited: its hand-off waited on a slow catch-up
        (5359, Mix::Resize),  // a stand-in's late hand-off brought back a key whose tombstone was collected
        (20180, Mix::Resize), // a new replica coordinated while a peer in the old universe still wrote past it
        (40056, Mix::Resize), // a node not yet in the new universe read from a copy the new replicas' writes skipped
    ];
    failed.extend(failures(&found_since, |seed, mix| {
        run(seed, mix, PlantedBugs::default())
    }));
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Seed 35 of the crash mix (6 nodes, 3 replicas, data in memory) plans
/// crashes that would take every node holding an acknowledged write
/// within the time the restarted ones need to pull it: beyond what three
/// replicas survive. Carried out, the write is lost (a read returns an
/// older value); the simulator skips those crashes instead, and the run
/// breaks no promise.
#[test]
fn a_crash_that_would_take_the_last_copy_is_skipped() {
    let skipping = run(35, Mix::Crash, PlantedBugs::default());
    assert!(skipping.crashes_skipped > 0, "the crash is skipped");
    assert!(skipping.violations.is_empty(), "{:?}", skipping.violations);
    let mut config = dynakv_sim::config(35, Mix::Crash, LIMITS, PlantedBugs::default());
    config.crash_beyond_replication = true;
    let carried_out = dynakv_sim::run(config, Watch::default());
    assert_eq!(carried_out.crashes_skipped, 0);
    assert!(
        !carried_out.violations.is_empty(),
        "carried out, the crash loses the write (if the nodes' behaviour moved the schedule, pick another seed)"
    );
}

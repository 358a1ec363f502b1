//! The plan of a reload, before anything changes: per node, the buckets,
//! keys and bytes it gains and loses, the bytes that cross the network,
//! and whether every node still fits its memory limit and its disk
//! afterwards. `dynakv ctl reload --plan` prints it; `ctl reload` refuses
//! a reload that does not fit, with the same numbers.
//!
//! Where buckets are comes from the nodes themselves (their bucket
//! listings), where they go from the new universe's placement with every
//! node alive. A node that gains a bucket holds it beside what it has
//! until the node that gives it up drops it: its peak is what it holds
//! plus what it gains; afterwards it holds that less what it loses.

use crate::cluster::ring::{Liveness, Placement, Role};
use crate::cluster::universe::Universe;
use crate::storage::hash::{BUCKETS, BucketId};
use crate::storage::memory::FULL_ENTER_PERCENT;
use std::collections::HashMap;
use std::fmt::Write;

/// What the plan knows of one node: its numbers, if it answered.
#[derive(Clone, Debug, Default)]
pub struct NodeState {
    pub name: String,
    pub answered: bool,
    pub stored_bytes: u64,
    pub store_limit_bytes: u64,
    /// Free on its data directory's file system (0: it keeps none).
    pub disk_free_bytes: u64,
    /// Per bucket it holds: live keys and the bytes its records take.
    pub buckets: HashMap<BucketId, (u64, u64)>,
}

/// A node's gains and losses, and where they leave it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub role: &'static str,
    pub gain_buckets: u64,
    pub gain_keys: u64,
    pub gain_bytes: u64,
    pub lose_buckets: u64,
    pub lose_keys: u64,
    pub lose_bytes: u64,
    pub stored_bytes: u64,
    pub limit_bytes: u64,
    pub disk_free_bytes: u64,
    /// What is wrong, if it does not fit.
    pub problem: Option<String>,
}

impl Row {
    /// What it holds while it has gained and not yet lost.
    pub fn peak_bytes(&self) -> u64 {
        self.stored_bytes + self.gain_bytes
    }

    /// What it holds afterwards.
    pub fn after_bytes(&self) -> u64 {
        (self.stored_bytes + self.gain_bytes).saturating_sub(self.lose_bytes)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub rows: Vec<Row>,
    /// Bytes the gained copies take: what crosses the network, each once.
    pub network_bytes: u64,
}

impl Plan {
    pub fn fits(&self) -> bool {
        self.rows.iter().all(|row| row.problem.is_none())
    }
}

/// The plan of going to `next` with `replicas` from where `states` say
/// the buckets are.
pub fn plan(next: &Universe, replicas: usize, states: &[NodeState]) -> Plan {
    let slots: Vec<(&str, Role)> = (next.members.iter())
        .map(|member| {
            let role = if member.leaving { Role::Leaving } else { Role::Serving };
            (member.name.as_str(), role)
        })
        .collect();
    let placement = Placement::with_roles(&slots, replicas);
    let view = placement.view(0, Liveness::ready(vec![true; slots.len()]));
    let sizes = bucket_sizes(states);
    let typical_limit = typical_limit(states);
    let mut rows: Vec<Row> = (next.members.iter())
        .map(|member| {
            let state = states.iter().find(|s| s.name == member.name);
            Row {
                name: member.name.clone(),
                role: if member.leaving { "leaving" } else { "serving" },
                stored_bytes: state.map_or(0, |s| s.stored_bytes),
                limit_bytes: state
                    .filter(|s| s.answered)
                    .map_or(typical_limit, |s| s.store_limit_bytes),
                disk_free_bytes: state.map_or(0, |s| s.disk_free_bytes),
                ..Row::default()
            }
        })
        .collect();
    let mut network_bytes = 0;
    for bucket in 0..BUCKETS as BucketId {
        let (keys, bytes) = sizes.get(&bucket).copied().unwrap_or((0, 0));
        let to: Vec<usize> = view.preference(bucket).iter().map(|&n| usize::from(n)).collect();
        for (slot, row) in rows.iter_mut().enumerate() {
            let held = (states.iter().find(|s| s.name == row.name)).and_then(|s| s.buckets.get(&bucket));
            match (held, to.contains(&slot)) {
                (None, true) if keys + bytes > 0 => {
                    row.gain_buckets += 1;
                    row.gain_keys += keys;
                    row.gain_bytes += bytes;
                    network_bytes += bytes;
                }
                (Some(&(held_keys, held_bytes)), false) => {
                    row.lose_buckets += 1;
                    row.lose_keys += held_keys;
                    row.lose_bytes += held_bytes;
                }
                _ => {}
            }
        }
    }
    for row in &mut rows {
        row.problem = problem(row);
    }
    Plan { rows, network_bytes }
}

/// Per bucket, the largest copy any node holds: keys and bytes.
fn bucket_sizes(states: &[NodeState]) -> HashMap<BucketId, (u64, u64)> {
    let mut sizes: HashMap<BucketId, (u64, u64)> = HashMap::new();
    for state in states {
        for (&bucket, &(keys, bytes)) in &state.buckets {
            let size = sizes.entry(bucket).or_default();
            *size = (size.0.max(keys), size.1.max(bytes));
        }
    }
    sizes
}

/// The store limit of a node that has not answered (a new one): the
/// smallest of those that did.
fn typical_limit(states: &[NodeState]) -> u64 {
    (states.iter())
        .filter(|s| s.answered)
        .map(|s| s.store_limit_bytes)
        .min()
        .unwrap_or(0)
}

/// Why a node would not fit, if it would not: its store past its limit
/// while it holds both, or past the full mark afterwards (it would refuse
/// writes); or a data directory without room for what it gains (a
/// snapshot and the log can each hold it).
fn problem(row: &Row) -> Option<String> {
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    if row.role == "leaving" {
        return None;
    }
    let full_mark = row.limit_bytes * FULL_ENTER_PERCENT as u64 / 100;
    if row.peak_bytes() > row.limit_bytes {
        return Some(format!(
            "holds {:.1} MiB while it gains {:.1} MiB before it drops anything: over its {:.1} MiB store limit",
            mib(row.stored_bytes),
            mib(row.gain_bytes),
            mib(row.limit_bytes)
        ));
    }
    if row.after_bytes() > full_mark {
        return Some(format!(
            "holds {:.1} MiB afterwards: past {}% of its {:.1} MiB store limit, where it refuses writes",
            mib(row.after_bytes()),
            FULL_ENTER_PERCENT,
            mib(row.limit_bytes)
        ));
    }
    if row.disk_free_bytes > 0 && row.gain_bytes.saturating_mul(2) > row.disk_free_bytes {
        return Some(format!(
            "gains {:.1} MiB with {:.1} MiB free on its data directory's disk (needs twice that)",
            mib(row.gain_bytes),
            mib(row.disk_free_bytes)
        ));
    }
    None
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |bytes: u64| format!("{:.1}", bytes as f64 / (1 << 20) as f64);
        let mut text = format!(
            "{:<22} {:<8} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9} {:>9}  fits\n",
            "node",
            "role",
            "+buckets",
            "+keys",
            "+MiB",
            "-buckets",
            "-keys",
            "-MiB",
            "peak_MiB",
            "after_MiB",
            "limit_MiB"
        );
        for row in &self.rows {
            let _ = writeln!(
                text,
                "{:<22} {:<8} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9} {:>9}  {}",
                row.name,
                row.role,
                row.gain_buckets,
                row.gain_keys,
                mib(row.gain_bytes),
                row.lose_buckets,
                row.lose_keys,
                mib(row.lose_bytes),
                mib(row.peak_bytes()),
                mib(row.after_bytes()),
                mib(row.limit_bytes),
                row.problem
                    .as_deref()
                    .map_or("yes".to_string(), |why| format!("NO: {why}"))
            );
        }
        let _ = writeln!(
            text,
            "{} MiB cross the network (each gained copy once); {}",
            mib(self.network_bytes),
            if self.fits() {
                "every node fits"
            } else {
                "some nodes do not fit"
            }
        );
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn universe(ports: &[u16], leaving: &[u16]) -> Universe {
        let names: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut universe = Universe::from_servers(&names);
        for member in &mut universe.members {
            member.leaving = leaving.iter().any(|p| member.name.ends_with(&format!(":{p}")));
        }
        universe
    }

    /// Nodes holding every bucket as a universe places them, each bucket
    /// `keys` keys of `bytes` bytes.
    fn states(current: &Universe, limit: u64, keys: u64, bytes: u64) -> Vec<NodeState> {
        let names: Vec<String> = current.members.iter().map(|m| m.name.clone()).collect();
        let view = Placement::new(&names, 3).view(0, Liveness::ready(vec![true; names.len()]));
        (names.iter().enumerate())
            .map(|(slot, name)| {
                let buckets: HashMap<BucketId, (u64, u64)> = (0..BUCKETS as BucketId)
                    .filter(|&b| view.holds(slot, b))
                    .map(|b| (b, (keys, bytes)))
                    .collect();
                NodeState {
                    name: name.clone(),
                    answered: true,
                    stored_bytes: buckets.len() as u64 * bytes,
                    store_limit_bytes: limit,
                    buckets,
                    ..NodeState::default()
                }
            })
            .collect()
    }

    #[test]
    fn a_shrink_moves_the_leaving_nodes_buckets_and_each_copy_crosses_once() {
        let now = universe(&[1, 2, 3, 4, 5], &[]);
        let next = universe(&[1, 2, 3, 4, 5], &[4, 5]);
        let plan = plan(&next, 3, &states(&now, 1 << 30, 10, 1_000));
        let leaving: Vec<&Row> = plan.rows.iter().filter(|r| r.role == "leaving").collect();
        assert!(leaving.iter().all(|r| r.gain_buckets == 0 && r.after_bytes() == 0));
        let lost: u64 = leaving.iter().map(|r| r.lose_buckets).sum();
        let gained: u64 = plan.rows.iter().map(|r| r.gain_buckets).sum();
        assert_eq!(lost, gained, "every copy lost is gained elsewhere");
        assert_eq!(plan.network_bytes, gained * 1_000);
        assert!(plan.fits());
        // Three serving nodes hold every bucket afterwards.
        for row in plan.rows.iter().filter(|r| r.role == "serving") {
            assert_eq!(row.after_bytes(), BUCKETS as u64 * 1_000, "{row:?}");
        }
    }

    #[test]
    fn a_shrink_that_would_fill_the_others_is_refused_with_its_numbers() {
        let now = universe(&[1, 2, 3, 4, 5, 6], &[]);
        let next = universe(&[1, 2, 3, 4, 5, 6], &[5, 6]);
        // Each node holds half of its limit: four of them would hold 3/4.
        let per_bucket = 1_000;
        let held = BUCKETS as u64 * 3 / 6 * per_bucket;
        let fitting = plan(&next, 3, &states(&now, held * 2, 1, per_bucket));
        assert!(fitting.fits(), "{fitting}");
        let tight = plan(&next, 3, &states(&now, held * 13 / 10, 1, per_bucket));
        assert!(!tight.fits());
        let text = tight.to_string();
        assert!(
            text.contains("NO: holds") && text.contains("some nodes do not fit"),
            "{text}"
        );
    }

    #[test]
    fn a_node_without_disk_room_for_what_it_gains_does_not_fit() {
        let now = universe(&[1, 2, 3, 4], &[]);
        let next = universe(&[1, 2, 3, 4], &[4]);
        let mut nodes = states(&now, 1 << 30, 1, 1_000);
        for node in &mut nodes {
            node.disk_free_bytes = 1_000;
        }
        let plan = plan(&next, 3, &nodes);
        assert!(!plan.fits());
        assert!(
            plan.rows
                .iter()
                .any(|r| r.problem.as_deref().is_some_and(|p| p.contains("disk")))
        );
    }
}

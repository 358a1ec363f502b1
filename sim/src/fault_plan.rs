//! What a run's faults are and when they strike, drawn before the run
//! from its configuration and seed: a list of faults at times, which the
//! world schedules. Crashes, stops, partitions, clock jumps and stream
//! breaks of single nodes and links; power losses, reloads and wipeouts of
//! the whole cluster; then the heal, the end of the clients' work and the
//! final check.

use crate::config::RunConfig;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A node back from a crash or a stop catches up for about this long; no
/// other node goes away meanwhile if that would pass the limit.
const CATCH_UP_MS: u64 = 3_000;

#[derive(Clone, Debug)]
pub enum Fault {
    Crash(usize),
    /// A crash the protocol's way: SHUTDOWN from the operator.
    Shutdown(usize),
    /// The node's power goes: a crash, and its disk keeps only what was
    /// synced.
    PowerLoss(usize),
    /// Every node's power goes at once (now, or at the moment the aim
    /// says); it comes back, every node starting, up to 3 s later
    /// ([`Fault::PowerBack`]).
    PowerLossAll(Aim),
    PowerBack,
    Restart(usize),
    Pause(usize),
    Resume(usize),
    /// `cut` nodes cannot send to the rest (`outbound`), or receive
    /// from them (`inbound`), or both.
    Partition {
        cut: Vec<usize>,
        outbound: bool,
        inbound: bool,
    },
    EndPartition,
    ClockJump {
        node: usize,
        by_ms: i64,
    },
    /// Hold clients, then WIPEOUT every node.
    Wipe,
    /// The operator changes the servers file (adds spare nodes, removes
    /// serving ones) and reloads: the new universe reaches each running
    /// node or not, and the added nodes start a little later.
    Reload,
    /// A node a reload added starts (with the servers file it was given).
    Join(usize),
    /// The operator's tool sends the universe again to the running members
    /// that do not hold it yet (as `ctl reload` does for a few seconds).
    ReloadAgain,
    /// The stream connection `from` -> `to` breaks, losing what is in
    /// flight on it (the transfer layer reconnects for the next send).
    BreakStream {
        from: usize,
        to: usize,
    },
    Heal,
    StopClients,
    Check,
}

/// When a power loss of every node strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aim {
    Now,
    /// Right after some node acknowledges a write (what it sent after that
    /// in the same step does not leave).
    AtAck,
    /// In the middle of what the disks are doing: each disk's power goes
    /// after a few more operations (a segment's creation, a write's sync),
    /// or, in half of them, a few operations into its next compaction;
    /// when the first one's goes, every one's does.
    MidDisk,
}

/// The faults of a run at their times (µs), in the order drawn: `rng`
/// draws the faults, `inside_rng` the stream breaks (see
/// [`crate::config::Inside`]).
pub fn plan(config: &RunConfig, nodes: usize, rng: &mut ChaCha8Rng, inside_rng: &mut ChaCha8Rng) -> Vec<(u64, Fault)> {
    let mut planner = Planner {
        config,
        nodes,
        rng,
        inside_rng,
        faults: Vec::new(),
    };
    planner.plan_all();
    planner.faults
}

struct Planner<'a> {
    config: &'a RunConfig,
    nodes: usize,
    rng: &'a mut ChaCha8Rng,
    inside_rng: &'a mut ChaCha8Rng,
    faults: Vec<(u64, Fault)>,
}

impl Planner<'_> {
    fn at(&mut self, at_us: u64, fault: Fault) {
        self.faults.push((at_us, fault));
    }

    fn plan_all(&mut self) {
        let start = self.config.warmup_ms;
        let end = self.config.healed_at_ms();
        if self.config.crashes() || self.config.pauses() {
            self.plan_nodes_away(start, end);
        }
        if self.config.partitions() {
            self.plan_partitions(start, end);
        }
        if self.config.clock_jumps() {
            self.plan_clock_jumps(start, end);
        }
        self.plan_stream_breaks();
        self.plan_cluster_wide_faults(start, end);
        self.at(end * 1_000, Fault::Heal);
        self.at(self.config.clients_stop_ms() * 1_000, Fault::StopClients);
        self.at(self.config.checks_at_ms() * 1_000, Fault::Check);
    }

    /// Crashes and stops of single nodes from `start` to `end` (ms), each
    /// followed by its restart or resume.
    fn plan_nodes_away(&mut self, start: u64, end: u64) {
        let n = self.nodes;
        // Crashes and stops share one limit on nodes away at once; a node
        // counts as away for a while after it is back (it is catching up).
        let mut away: Vec<(usize, u64, u64)> = Vec::new();
        let mut t = start + 500;
        while t + 500 < end {
            let node = self.rng.random_range(0..n);
            let until = (t + self.rng.random_range(300..8_000)).min(end);
            let overlapping: Vec<&(usize, u64, u64)> = away
                .iter()
                .filter(|&&(_, from, to)| from < until && t < to + CATCH_UP_MS)
                .collect();
            let fits =
                overlapping.len() < self.config.down_max && overlapping.iter().all(|&&(other, _, _)| other != node);
            if fits {
                let crash = self.config.crashes() && (!self.config.pauses() || self.rng.random_bool(0.5));
                if crash {
                    let how = self.draw_crash(node);
                    self.at(t * 1_000, how);
                    self.at(until * 1_000, Fault::Restart(node));
                } else {
                    self.at(t * 1_000, Fault::Pause(node));
                    self.at(until * 1_000, Fault::Resume(node));
                }
                away.push((node, t, until));
            }
            t += self.rng.random_range(300..4_000);
        }
    }

    /// How `node` goes down: its power lost (where the mix has power
    /// losses), SHUTDOWN from the operator, or a crash.
    fn draw_crash(&mut self, node: usize) -> Fault {
        if self.config.power_losses() && self.rng.random_bool(0.5) {
            Fault::PowerLoss(node)
        } else if self.rng.random_bool(0.5) {
            Fault::Shutdown(node)
        } else {
            Fault::Crash(node)
        }
    }

    /// Partitions one after another from `start` to `end` (ms), each
    /// cutting off up to a minority of the nodes, one way or both.
    fn plan_partitions(&mut self, start: u64, end: u64) {
        let n = self.nodes;
        let mut t = start + self.rng.random_range(0..3_000);
        while t + 1_000 < end {
            let size = self.rng.random_range(1..=((n - 1) / 2).max(1));
            let mut cut: Vec<usize> = Vec::new();
            while cut.len() < size {
                let node = self.rng.random_range(0..n);
                if !cut.contains(&node) {
                    cut.push(node);
                }
            }
            let (outbound, inbound) = match self.rng.random_range(0..3) {
                0 => (true, false),
                1 => (false, true),
                _ => (true, true),
            };
            let until = (t + self.rng.random_range(1_000..8_000)).min(end);
            self.at(t * 1_000, Fault::Partition { cut, outbound, inbound });
            self.at(until * 1_000, Fault::EndPartition);
            t = until + self.rng.random_range(500..5_000);
        }
    }

    /// A few jumps of single nodes' clocks, back or forth by up to 3 s.
    fn plan_clock_jumps(&mut self, start: u64, end: u64) {
        for _ in 0..self.rng.random_range(1..6) {
            let at = self.rng.random_range(start..end);
            let node = self.rng.random_range(0..self.nodes);
            let by_ms = self.rng.random_range(-3_000..3_000);
            self.at(at * 1_000, Fault::ClockJump { node, by_ms });
        }
    }

    /// The faults that strike every node, where the mix has them: power
    /// losses of the whole cluster, reloads of the servers file, wipeouts.
    fn plan_cluster_wide_faults(&mut self, start: u64, end: u64) {
        if self.config.power_losses() {
            for _ in 0..self.rng.random_range(1..=2) {
                let at = self.rng.random_range(start + 2_000..end - 3_000);
                let aim = [Aim::Now, Aim::AtAck, Aim::MidDisk][self.rng.random_range(0..3)];
                self.at(at * 1_000, Fault::PowerLossAll(aim));
            }
        }
        if self.config.resizes() {
            for _ in 0..self.rng.random_range(1..=3) {
                let at = self.rng.random_range(start + 1_000..end - 6_000);
                self.at(at * 1_000, Fault::Reload);
            }
        }
        if self.config.wipes() {
            for _ in 0..self.rng.random_range(1..=2) {
                let at = self.rng.random_range(start + 2_000..end - 2_000);
                self.at(at * 1_000, Fault::Wipe);
            }
        }
    }

    /// Stream connections breaking at the run's rate, at random times from
    /// start to the end of the clients' work (drawn apart from the faults,
    /// see [`crate::config::Inside`]).
    fn plan_stream_breaks(&mut self) {
        let rate = self.config.inside.stream_breaks_per_s;
        let n = self.nodes;
        if rate <= 0.0 || n < 2 {
            return;
        }
        let end_us = self.config.clients_stop_ms() * 1_000;
        let mut at_us = 0u64;
        loop {
            let gap_s = -(1.0 - self.inside_rng.random::<f64>()).ln() / rate;
            at_us += (gap_s * 1e6) as u64;
            if at_us >= end_us {
                return;
            }
            let from = self.inside_rng.random_range(0..n);
            let to = (from + self.inside_rng.random_range(1..n)) % n;
            self.at(at_us, Fault::BreakStream { from, to });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Limits, Mix};
    use rand::SeedableRng;

    const LIMITS: Limits = Limits {
        nodes_min: 3,
        nodes_max: 7,
    };

    fn plan_of(seed: u64, mix: Mix) -> Vec<(u64, Fault)> {
        let config = crate::config(seed, mix, LIMITS, Default::default());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut inside = ChaCha8Rng::seed_from_u64(!seed);
        plan(&config, config.nodes + config.spare_nodes, &mut rng, &mut inside)
    }

    #[test]
    fn every_node_sent_away_comes_back_before_the_heal_and_the_run_ends_in_order() {
        for seed in 0..20 {
            let faults = plan_of(seed, Mix::Crash);
            let heal = faults.iter().find(|(_, f)| matches!(f, Fault::Heal)).map(|&(at, _)| at);
            let heal = heal.unwrap_or_else(|| panic!("seed {seed}: no heal"));
            for (at, fault) in &faults {
                if let Fault::Crash(node) | Fault::Shutdown(node) | Fault::PowerLoss(node) = fault {
                    let back = faults
                        .iter()
                        .any(|(later, f)| later >= at && *later <= heal && matches!(f, Fault::Restart(n) if n == node));
                    assert!(back, "seed {seed}: node {node} down at {at} never restarted");
                }
            }
            let end: Vec<&Fault> = faults.iter().rev().take(3).map(|(_, f)| f).collect();
            assert!(
                matches!(end[..], [Fault::Check, Fault::StopClients, Fault::Heal]),
                "seed {seed}: {end:?}"
            );
        }
    }

    #[test]
    fn a_partition_cuts_a_minority_and_ends() {
        for seed in 0..20 {
            let faults = plan_of(seed, Mix::Partition);
            let config = crate::config(seed, Mix::Partition, LIMITS, Default::default());
            let nodes = config.nodes + config.spare_nodes;
            let cuts: Vec<&Vec<usize>> = (faults.iter())
                .filter_map(|(_, f)| match f {
                    Fault::Partition { cut, .. } => Some(cut),
                    _ => None,
                })
                .collect();
            let ends = faults.iter().filter(|(_, f)| matches!(f, Fault::EndPartition)).count();
            assert_eq!(cuts.len(), ends, "seed {seed}");
            assert!(
                cuts.iter()
                    .all(|cut| !cut.is_empty() && cut.len() <= (nodes - 1).div_ceil(2))
            );
        }
    }
}

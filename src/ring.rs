//! Data placement: which nodes hold each bucket, and which one coordinates it.
//!
//! Placement is rendezvous (highest-random-weight) hashing over the buckets:
//! every (node, bucket) pair has a fixed score and a bucket's preference list
//! is its N highest-scoring *live* nodes. It behaves like a consistent-hash
//! ring with one virtual position per bucket per node: when a node dies only
//! its buckets move, spread evenly over the survivors, and they move back
//! when it returns. The coordinator of a bucket is the first node of its
//! preference list that is also *ready* (has pulled its buckets).
//!
//! A node whose store is *full* keeps the buckets it is a *home* replica of
//! (one of the N highest-scoring of all nodes, alive or not: it holds them
//! whenever it is up) but is passed over for any other: the bucket of a
//! dead node goes to the next live node that has room.

use crate::hash::{BUCKETS, BucketId, fmix64, key_hash};

/// Largest replication factor supported.
pub const REPLICAS_MAX: usize = 7;

/// The fixed score of a node for a bucket: a hash of the node's name (so a
/// node keeps its buckets across restarts and list reorderings) and the bucket.
fn score(node_seed: u64, bucket: BucketId) -> u64 {
    fmix64(node_seed ^ fmix64(u64::from(bucket) + 1))
}

/// Liveness and readiness of every node, as one node believes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Liveness {
    pub alive: Vec<bool>,
    pub ready: Vec<bool>,
    /// Alive nodes re-syncing after a suspension (see [`Heartbeat::behind`](crate::internal::Heartbeat)).
    pub behind: Vec<bool>,
    /// Alive nodes whose store is full (see [`Heartbeat::full`](crate::internal::Heartbeat)).
    pub full: Vec<bool>,
}

impl Liveness {
    /// These nodes alive and ready, none behind or full.
    pub fn ready(alive: Vec<bool>) -> Liveness {
        Liveness::new(alive.clone(), alive)
    }

    /// None behind or full.
    pub fn new(alive: Vec<bool>, ready: Vec<bool>) -> Liveness {
        let n = alive.len();
        Liveness {
            alive,
            ready,
            behind: vec![false; n],
            full: vec![false; n],
        }
    }
}

/// The preference lists of every bucket for one liveness state.
#[derive(Clone, Debug)]
pub struct View {
    pub self_index: usize,
    pub replicas: usize,
    pub liveness: Liveness,
    /// Per bucket: the 2N best-ranked live nodes, best first (fewer when
    /// fewer are alive; a full node only where it is a home replica). The first N are the preference list; the rest are
    /// the stand-ins that took writes while preferred nodes were away.
    ranked: Vec<[u8; 2 * REPLICAS_MAX]>,
    ranked_len: Vec<u8>,
    any_full: bool,
}

/// What placement is computed from: the nodes' seeds and the replication factor.
#[derive(Clone, Debug)]
pub struct Placement {
    pub seeds: Vec<u64>,
    pub replicas: usize,
}

impl Placement {
    pub fn view(&self, self_index: usize, liveness: Liveness) -> View {
        View::new(&self.seeds, self_index, self.replicas, liveness)
    }
}

/// Inserts `item` into `items` (highest first), keeping the `keep` highest.
fn insert_bounded<T: Ord + Copy>(items: &mut Vec<T>, item: T, keep: usize) {
    if items.len() < keep || item > items[items.len() - 1] {
        let at = items.partition_point(|&other| other > item);
        items.insert(at, item);
        items.truncate(keep);
    }
}

impl View {
    /// Node seeds from the servers file names, in file order.
    pub fn seeds(names: &[String]) -> Vec<u64> {
        names.iter().map(|name| key_hash(name.as_bytes())).collect()
    }

    pub fn new(seeds: &[u64], self_index: usize, replicas: usize, liveness: Liveness) -> View {
        let replicas = replicas.clamp(1, REPLICAS_MAX);
        let keep = 2 * replicas;
        let mut ranked = vec![[0u8; 2 * REPLICAS_MAX]; BUCKETS];
        let mut ranked_len = vec![0u8; BUCKETS];
        let mut best: Vec<(u64, u8)> = Vec::with_capacity(keep + 1);
        let mut home: Vec<u64> = Vec::with_capacity(replicas + 1);
        let any_full = liveness.full.iter().any(|&full| full);
        for bucket in 0..BUCKETS {
            best.clear();
            home.clear();
            if any_full {
                // The scores of the bucket's home replicas, highest first.
                for &seed in seeds {
                    insert_bounded(&mut home, score(seed, bucket as BucketId), replicas);
                }
            }
            let lowest_home = home.last().copied().unwrap_or(0);
            for (node, &seed) in seeds.iter().enumerate() {
                let s = score(seed, bucket as BucketId);
                if !liveness.alive[node] || (liveness.full[node] && s < lowest_home) {
                    continue;
                }
                insert_bounded(&mut best, (s, node as u8), keep);
            }
            for (slot, &(_, node)) in best.iter().enumerate() {
                ranked[bucket][slot] = node;
            }
            ranked_len[bucket] = best.len() as u8;
        }
        View {
            self_index,
            replicas,
            liveness,
            ranked,
            ranked_len,
            any_full,
        }
    }

    fn ranked(&self, bucket: BucketId) -> &[u8] {
        let b = usize::from(bucket);
        &self.ranked[b][..usize::from(self.ranked_len[b])]
    }

    /// The live nodes that should hold `bucket`, best first.
    pub fn preference(&self, bucket: BucketId) -> &[u8] {
        let ranked = self.ranked(bucket);
        &ranked[..ranked.len().min(self.replicas)]
    }

    /// The live nodes ranked for `bucket` beyond the preference list.
    pub fn stand_ins(&self, bucket: BucketId) -> &[u8] {
        let ranked = self.ranked(bucket);
        &ranked[ranked.len().min(self.replicas)..]
    }

    /// The node that executes requests for `bucket`: the first ready node of
    /// the preference list; when none is ready (all are catching up after a
    /// suspension), the first ready stand-in, which took the writes made
    /// meanwhile. When no ranked node is ready (a cluster still starting),
    /// the first one that is not behind: a node catching up after a start
    /// has every write since, one back from a suspension does not.
    pub fn coordinator(&self, bucket: BucketId) -> Option<usize> {
        self.coordinator_besides(bucket, usize::MAX)
    }

    /// The coordinator when `skip` may not coordinate (it just woke from a
    /// suspension and its own view still calls it ready).
    pub fn coordinator_besides(&self, bucket: BucketId, skip: usize) -> Option<usize> {
        let ranked = self.ranked(bucket);
        let others = || ranked.iter().map(|&n| usize::from(n)).filter(|&n| n != skip);
        others()
            .find(|&n| self.liveness.ready[n])
            .or_else(|| others().find(|&n| !self.liveness.behind[n]))
            .or_else(|| others().next())
    }

    pub fn holds(&self, node: usize, bucket: BucketId) -> bool {
        self.preference(bucket).contains(&(node as u8))
    }

    /// Whether any live node's store is full.
    pub fn any_full(&self) -> bool {
        self.any_full
    }

    pub fn alive_count(&self) -> usize {
        self.liveness.alive.iter().filter(|&&a| a).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::bucket_of;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("127.0.0.1:{}", 12000 + i)).collect()
    }

    fn all_alive(n: usize) -> Liveness {
        Liveness::ready(vec![true; n])
    }

    #[test]
    fn keys_spread_evenly_over_20_nodes() {
        let seeds = View::seeds(&names(20));
        let view = View::new(&seeds, 0, 3, all_alive(20));
        let mut held = [0u32; 20];
        let mut coordinated = [0u32; 20];
        for i in 0..100_000u32 {
            let key = format!("key-{i}");
            let bucket = bucket_of(key_hash(key.as_bytes()));
            for &node in view.preference(bucket) {
                held[usize::from(node)] += 1;
            }
            coordinated[view.coordinator(bucket).unwrap()] += 1;
        }
        let mean_held = 300_000.0 / 20.0;
        let max_held = f64::from(*held.iter().max().unwrap());
        assert!(max_held <= 1.15 * mean_held, "held {held:?}");
        let max_coordinated = f64::from(*coordinated.iter().max().unwrap());
        eprintln!(
            "max held {:.3}x, max coordinated {:.3}x of the mean",
            max_held / mean_held,
            max_coordinated / 5_000.0
        );
    }

    #[test]
    fn a_dead_node_moves_only_its_own_buckets() {
        let seeds = View::seeds(&names(10));
        let before = View::new(&seeds, 0, 3, all_alive(10));
        let mut liveness = all_alive(10);
        liveness.alive[4] = false;
        let after = View::new(&seeds, 0, 3, liveness);
        for bucket in 0..BUCKETS as BucketId {
            let old = before.preference(bucket);
            let new = after.preference(bucket);
            assert!(!new.contains(&4));
            assert_eq!(new.len(), 3);
            // The survivors keep their order; only the dead node's slot is refilled.
            let survivors: Vec<u8> = old.iter().copied().filter(|&n| n != 4).collect();
            assert_eq!(&new[..survivors.len()], &survivors[..]);
        }
    }

    #[test]
    fn a_full_node_keeps_its_home_buckets_and_takes_no_others() {
        let seeds = View::seeds(&names(10));
        let whole = View::new(&seeds, 0, 3, all_alive(10));
        let mut liveness = all_alive(10);
        liveness.alive[4] = false;
        let gains = View::new(&seeds, 0, 3, liveness.clone());
        liveness.full[7] = true;
        let refuses = View::new(&seeds, 0, 3, liveness);
        let mut passed_over = 0;
        for bucket in 0..BUCKETS as BucketId {
            let prefs = refuses.preference(bucket);
            assert_eq!(prefs.len(), 3, "every bucket still has 3 replicas");
            assert_eq!(prefs.contains(&7), whole.holds(7, bucket), "bucket {bucket}");
            if gains.holds(7, bucket) && !whole.holds(7, bucket) {
                passed_over += 1;
                assert!(prefs.iter().all(|&n| n != 4 && n != 7));
            }
        }
        assert!(passed_over > 50, "node 4's buckets would have gone to 7: {passed_over}");
    }

    #[test]
    fn coordinator_skips_nodes_that_are_not_ready() {
        let seeds = View::seeds(&names(5));
        let mut liveness = all_alive(5);
        let bucket = 17;
        let first = usize::from(View::new(&seeds, 0, 3, liveness.clone()).preference(bucket)[0]);
        liveness.ready[first] = false;
        let view = View::new(&seeds, 0, 3, liveness);
        assert_eq!(view.preference(bucket)[0] as usize, first, "still a replica");
        assert_ne!(view.coordinator(bucket), Some(first));
    }

    #[test]
    fn with_no_node_ready_a_node_behind_never_coordinates() {
        let seeds = View::seeds(&names(8));
        let mut liveness = all_alive(8);
        liveness.ready = vec![false; 8];
        let bucket = 99;
        let ranked: Vec<usize> = {
            let view = View::new(&seeds, 0, 3, liveness.clone());
            view.preference(bucket)
                .iter()
                .chain(view.stand_ins(bucket))
                .map(|&n| usize::from(n))
                .collect()
        };
        // A cluster still starting: the first node coordinates.
        assert_eq!(
            View::new(&seeds, 0, 3, liveness.clone()).coordinator(bucket),
            Some(ranked[0])
        );
        // The first two woke from a suspension: the third, which stayed up
        // and took the writes meanwhile, coordinates.
        liveness.behind[ranked[0]] = true;
        liveness.behind[ranked[1]] = true;
        let view = View::new(&seeds, 0, 3, liveness);
        assert_eq!(view.coordinator(bucket), Some(ranked[2]));
        assert_eq!(view.coordinator_besides(bucket, ranked[2]), Some(ranked[3]));
    }

    #[test]
    fn fewer_live_nodes_than_replicas() {
        let seeds = View::seeds(&names(2));
        let view = View::new(&seeds, 0, 3, all_alive(2));
        assert_eq!(view.preference(5).len(), 2);
        assert_eq!(view.alive_count(), 2);
    }
}

//! `dynakv-sim`: a dynakv cluster in one process on virtual time.
//!
//! Every node is the real node logic ([`dynakv::node`]: router, shard,
//! cluster core, stream frames), built as `dynakv serve` builds it, with a
//! clock the simulator sets and I/O that lands in a simulated network
//! instead of sockets. A run's seed decides everything: the cluster's size
//! and replica count, its clients' operations, the network's loss, delay,
//! duplication and reordering, and the faults of the run's mix (crashes
//! and empty restarts, SIGSTOP-like pauses, partitions both ways or one
//! way, clock skew and jumps, WIPEOUT). The same seed replays the same run,
//! event for event; the trace hash it prints shows it.
//!
//! - [`config`]: what a run is, from its seed and mix.
//! - [`disk`]: a node's disk, which loses what was not synced in a power loss.
//! - [`node`]: one simulated node around dynakv's parts.
//! - [`scenario`]: a small cluster stepped by hand, for scenario tests.
//! - [`client`]: clients as the graders' clients behave.
//! - [`history`]: what clients did and saw, and the checks on it.
//! - [`world`]: the event loop, the network and the faults.
//! - [`fuzz`]: the bodies of the fuzz targets.

pub mod client;
pub mod config;
pub mod disk;
pub mod fault_plan;
pub mod fuzz;
pub mod history;
pub mod items;
pub mod network;
pub mod node;
pub mod scenario;
pub mod world;

use config::{Limits, Mix, RunConfig};
use dynakv::node::context::PlantedBugs;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use world::{RunOutcome, Watch, World};

/// The run of `seed` under `mix`.
pub fn config(seed: u64, mix: Mix, limits: Limits, bugs: PlantedBugs) -> RunConfig {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    RunConfig::generate(seed, mix, limits, bugs, &mut rng)
}

/// Runs one seed.
pub fn run(config: RunConfig, watch: Watch) -> RunOutcome {
    World::new(config, watch).run()
}

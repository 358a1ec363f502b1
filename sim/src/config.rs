//! What one simulated run is: the cluster, the faults it meets (a *mix*),
//! and the phases of the run. Everything is derived from the seed, so a
//! seed and a mix name a run completely.

use dynakv::node::context::PlantedBugs;
use dynakv::node::durability::journal::Fsync;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Families of faults a run meets while its clients work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// No fault: the baseline.
    Calm,
    /// Nodes crash (state lost, some by SHUTDOWN) and restart empty.
    Crash,
    /// Nodes stop (SIGSTOP: their time stops) and continue.
    Pause,
    /// Loss, delay, duplication and reordering of datagrams.
    Network,
    /// A minority of nodes cut off, both ways or one way.
    Partition,
    /// Clocks that disagree and jump.
    Clock,
    /// WIPEOUT of every node, a few hundred ms apart, between writes.
    Wipe,
    /// Nodes with data directories: process crashes, power losses of one
    /// node, and power losses of every node at once.
    Power,
    /// All of the above at once, but WIPEOUT.
    All,
    /// The universe changes: nodes join and leave (by reloads that reach
    /// only some nodes, new nodes started with current or stale servers
    /// files), with crashes meanwhile.
    Resize,
    /// Stores too small for the load: nodes fill and refuse writes (OUT_OF_SPACE),
    /// with crashes and pauses while they are full.
    Full,
}

pub const MIXES: [Mix; 11] = [
    Mix::Calm,
    Mix::Crash,
    Mix::Pause,
    Mix::Network,
    Mix::Partition,
    Mix::Clock,
    Mix::Wipe,
    Mix::All,
    Mix::Power,
    Mix::Resize,
    Mix::Full,
];

impl Mix {
    pub fn name(self) -> &'static str {
        match self {
            Mix::Calm => "calm",
            Mix::Crash => "crash",
            Mix::Pause => "pause",
            Mix::Network => "network",
            Mix::Partition => "partition",
            Mix::Clock => "clock",
            Mix::Wipe => "wipe",
            Mix::All => "all",
            Mix::Power => "power",
            Mix::Resize => "resize",
            Mix::Full => "full",
        }
    }

    pub fn parse(name: &str) -> Option<Mix> {
        MIXES.iter().copied().find(|mix| mix.name() == name)
    }

    /// The mix a seed runs when the caller asks for all of them in turn.
    pub fn for_seed(seed: u64) -> Mix {
        MIXES[(seed % MIXES.len() as u64) as usize]
    }

    /// Whether the mix includes a family of faults. `All` leaves WIPEOUT
    /// out: its promise (every node empty) holds only when it reaches every
    /// node, which crashes and pauses in the middle of it prevent. Power
    /// losses are the power mix's (and a crash mix's of a sort).
    fn has(self, family: Mix) -> bool {
        let in_all = self == Mix::All && !matches!(family, Mix::Wipe | Mix::Power | Mix::Resize | Mix::Full);
        let in_resize = self == Mix::Resize && family == Mix::Crash;
        let in_full = self == Mix::Full && matches!(family, Mix::Crash | Mix::Pause);
        self == family || in_all || in_resize || in_full
    }
}

/// The planted bugs by name (`--plant`).
pub const BUGS: [&str; 9] = [
    "ack-before-replicas",
    "collect-tombstones-at-once",
    "skip-catch-up-after-pause",
    "ignore-stamps-on-merge",
    "ack-before-sync",
    "recovery-ignores-checksums",
    "compaction-deletes-log-early",
    "drop-handoff-unconfirmed",
    "single-vote-rounds",
];

/// Switches one planted bug on by name.
pub fn plant(bugs: &mut PlantedBugs, name: &str) -> Result<(), String> {
    match name {
        "ack-before-replicas" => bugs.ack_before_replicas = true,
        "collect-tombstones-at-once" => bugs.collect_tombstones_at_once = true,
        "skip-catch-up-after-pause" => bugs.skip_catch_up_after_pause = true,
        "ignore-stamps-on-merge" => bugs.ignore_stamps_on_merge = true,
        "ack-before-sync" => bugs.ack_before_sync = true,
        "recovery-ignores-checksums" => bugs.recovery_ignores_checksums = true,
        "compaction-deletes-log-early" => bugs.compaction_deletes_log_early = true,
        "drop-handoff-unconfirmed" => bugs.drop_handoff_unconfirmed = true,
        "single-vote-rounds" => bugs.single_vote_rounds = true,
        _ => return Err(format!("no planted bug {name:?}; known: {}", BUGS.join(", "))),
    }
    Ok(())
}

/// What a run's network does to datagrams.
#[derive(Clone, Copy, Debug)]
pub struct Links {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram arrives twice.
    pub duplicate: f64,
    /// Delay: a floor, plus an exponential tail of this mean (so datagrams
    /// overtake each other), capped.
    pub delay_floor_us: u64,
    pub delay_mean_us: u64,
    pub delay_max_us: u64,
}

/// A run, fully described.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    pub mix: Mix,
    pub nodes: usize,
    pub replicas: usize,
    pub clients: usize,
    pub keys_per_client: usize,
    /// Clients start after the cluster has had this long to form.
    pub warmup_ms: u64,
    /// Faults come and go in this window.
    pub faults_ms: u64,
    /// Then everything heals and clients go on this long.
    pub healed_ms: u64,
    /// Then clients stop and the cluster gets this long to go quiet before
    /// the checks.
    pub quiet_ms: u64,
    pub links: Links,
    pub bugs: PlantedBugs,
    /// How many nodes may be down (crashed or stopped) at once: fewer than
    /// the replicas, or every copy of some bucket could be gone at once.
    pub down_max: usize,
    /// Each node's wall clock is off by up to this much.
    pub skew_ms_max: u64,
    /// Carry out every planned crash, even one that leaves fewer than one
    /// node holding what it held (`down_max` others away or catching up):
    /// how runs went before such crashes were skipped, kept to replay the
    /// seeds that found bugs then.
    pub crash_beyond_replication: bool,
    /// How the nodes run inside, beyond the faults of the mix.
    pub inside: Inside,
    /// Nodes beyond `nodes` that a reload may add (the resize mix).
    pub spare_nodes: usize,
    /// Each node's store budget.
    pub store_bytes: usize,
    /// Values written are padded to a length up to this (0: no padding).
    pub value_bytes_max: usize,
    /// Clients of DynamoDB items (see [`crate::items`]); 0: none, and the
    /// run draws exactly what it did before they existed.
    pub item_clients: usize,
}

/// A store budget too small for the full mix's load: a hundred or two of
/// its values (each shard's record index takes a 32 KiB slab of it first).
/// Its last 5 % (what a full store keeps for the writes under way while
/// its fullness spreads) holds a few values: much smaller, and replicas
/// refuse writes their coordinators already took, more often than any
/// node with megabytes of budget would.
const FULL_STORE_BYTES: std::ops::RangeInclusive<usize> = (192 << 10)..=(384 << 10);
/// The full mix's values: up to this long.
const FULL_VALUE_BYTES_MAX: usize = 3_000;

/// How each node runs inside: its shards on worker threads with queues
/// (or on the event loop), how much those queues hold, and a transfer
/// layer that refuses and breaks streams. Drawn from the seed apart from
/// everything else, so that with [`Inside::PLAIN`] a seed replays the run
/// it always did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inside {
    /// Worker shards per node; 0: the one shard runs on the event loop.
    pub workers: usize,
    /// Requests a shard may have queued before OVERLOAD.
    pub backlog_max: usize,
    /// Share of stream sends the transfer layer refuses (full queues).
    pub stream_refuse: f64,
    /// Stream connections that break per second, across the cluster, each
    /// losing what was in flight on it.
    pub stream_breaks_per_s: f64,
    /// Share of planned crashes aimed at the moment the node next
    /// acknowledges a write: it dies right after the acknowledgement leaves,
    /// and nothing it sent after it in that step leaves.
    pub crash_at_ack: f64,
    /// Data directories and when they sync (None: memory only; the power
    /// mix always has them).
    pub storage: Option<Fsync>,
}

impl Inside {
    /// One shard on the event loop, the default backlog, streams that
    /// always take what they are given.
    pub const PLAIN: Inside = Inside {
        workers: 0,
        backlog_max: dynakv::node::router::SHARD_BACKLOG_REQUESTS_MAX,
        stream_refuse: 0.0,
        stream_breaks_per_s: 0.0,
        crash_at_ack: 0.0,
        storage: None,
    };

    /// The inside of the run of `seed`: plain for about a third of seeds.
    fn generate(seed: u64) -> Inside {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1751_de00);
        let workers = [0, 0, 1, 2, 3][rng.random_range(0..5)];
        let backlog_max = if rng.random_bool(0.3) {
            rng.random_range(8..256)
        } else {
            dynakv::node::router::SHARD_BACKLOG_REQUESTS_MAX
        };
        let (stream_refuse, stream_breaks_per_s) = if rng.random_bool(0.5) {
            (rng.random_range(0.0..0.1), rng.random_range(0.0..2.0))
        } else {
            (0.0, 0.0)
        };
        let crash_at_ack = if rng.random_bool(0.5) { 0.5 } else { 0.0 };
        let storage = match rng.random_range(0..3) {
            0 => None,
            1 => Some(Fsync::Always),
            _ => Some(Fsync::Periodic {
                interval_ms: rng.random_range(50..=1_000),
            }),
        };
        Inside {
            workers,
            backlog_max,
            stream_refuse,
            stream_breaks_per_s,
            crash_at_ack,
            storage,
        }
    }
}

/// Bounds the caller sets on generated runs.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub nodes_min: usize,
    pub nodes_max: usize,
}

impl RunConfig {
    /// The run of `seed` under `mix`.
    pub fn generate(seed: u64, mix: Mix, limits: Limits, bugs: PlantedBugs, rng: &mut ChaCha8Rng) -> RunConfig {
        let nodes = rng.random_range(limits.nodes_min..=limits.nodes_max.max(limits.nodes_min));
        let replicas = if nodes >= 3 { rng.random_range(2..=3) } else { nodes };
        let calm_links = Links {
            loss: 0.0,
            duplicate: 0.0,
            delay_floor_us: 100,
            delay_mean_us: 300,
            delay_max_us: 20_000,
        };
        let links = if mix.has(Mix::Network) {
            Links {
                loss: rng.random_range(0.0..0.2),
                duplicate: rng.random_range(0.0..0.05),
                delay_floor_us: 100,
                delay_mean_us: rng.random_range(200..20_000),
                delay_max_us: 200_000,
            }
        } else {
            calm_links
        };
        RunConfig {
            seed,
            mix,
            nodes,
            replicas,
            clients: rng.random_range(2..=6),
            keys_per_client: if mix == Mix::Full {
                rng.random_range(64..=128)
            } else {
                rng.random_range(2..=8)
            },
            warmup_ms: 3_000,
            faults_ms: 25_000,
            healed_ms: 10_000,
            // A universe change ends with the leaving nodes' exit, once
            // every node restarted meanwhile has caught up: longer.
            quiet_ms: if mix == Mix::Resize { 30_000 } else { 12_000 },
            links,
            bugs,
            down_max: replicas - 1,
            skew_ms_max: if mix.has(Mix::Clock) { 2_000 } else { 0 },
            crash_beyond_replication: false,
            inside: Inside::generate(seed),
            spare_nodes: if mix == Mix::Resize { 3 } else { 0 },
            store_bytes: if mix == Mix::Full {
                rng.random_range(FULL_STORE_BYTES)
            } else {
                crate::node::STORE_BYTES
            },
            value_bytes_max: if mix == Mix::Full { FULL_VALUE_BYTES_MAX } else { 0 },
            item_clients: 0,
        }
    }

    /// Reloads that add and remove nodes.
    pub fn resizes(&self) -> bool {
        self.mix == Mix::Resize
    }

    pub fn crashes(&self) -> bool {
        self.mix.has(Mix::Crash) || self.mix == Mix::Power
    }

    /// Power losses of one node, and of every node at once.
    pub fn power_losses(&self) -> bool {
        self.mix == Mix::Power
    }

    /// When the nodes' data directories sync (None: the nodes keep no data
    /// on disk).
    pub fn storage(&self) -> Option<Fsync> {
        match (self.mix, self.inside.storage) {
            (Mix::Power, None) => Some(Fsync::Always),
            (_, storage) => storage,
        }
    }
    pub fn pauses(&self) -> bool {
        self.mix.has(Mix::Pause)
    }
    pub fn partitions(&self) -> bool {
        self.mix.has(Mix::Partition)
    }
    pub fn clock_jumps(&self) -> bool {
        self.mix.has(Mix::Clock)
    }
    pub fn wipes(&self) -> bool {
        self.mix.has(Mix::Wipe)
    }

    /// Whether DynamoDB items are promised linearizable under this run's
    /// faults: not where a WIPEOUT erases a node's votes, nor where a crash
    /// restarts a node without a data directory (it forgot them), nor where
    /// a power loss strikes nodes that do not sync every vote, nor across a
    /// resize (rounds do not span the old and new replica sets yet; README,
    /// "What each front-end promises").
    pub fn items_promised(&self) -> bool {
        let forgets_votes = match self.storage() {
            None => self.crashes(),
            Some(Fsync::Always) => false,
            Some(_) => self.power_losses(),
        };
        !self.wipes() && !self.resizes() && !forgets_votes
    }

    /// When the faults end and everything is healed.
    pub fn healed_at_ms(&self) -> u64 {
        self.warmup_ms + self.faults_ms
    }

    /// When clients stop.
    pub fn clients_stop_ms(&self) -> u64 {
        self.healed_at_ms() + self.healed_ms
    }

    /// When the checks run.
    pub fn checks_at_ms(&self) -> u64 {
        self.clients_stop_ms() + self.quiet_ms
    }
}

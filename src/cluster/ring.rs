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

use crate::storage::hash::{BUCKETS, BucketId, fmix64, key_hash};

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
    /// Alive nodes catching up after a suspension (see [`Heartbeat::behind`](crate::cluster::internal::Heartbeat)).
    pub behind: Vec<bool>,
    /// Alive nodes whose store is full (see [`Heartbeat::full`](crate::cluster::internal::Heartbeat)).
    pub full: Vec<bool>,
    /// Alive nodes pulling buckets they gained (see [`Heartbeat::pulling`](crate::cluster::internal::Heartbeat)).
    pub pulling: Vec<bool>,
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
            pulling: vec![false; n],
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
    /// fewer are alive; a full node only where it is a home replica). The
    /// first N serving ones are the preference list; then the stand-ins,
    /// which took writes while preferred nodes were away (leaving nodes
    /// among them).
    ranked: Vec<[u8; 2 * REPLICAS_MAX]>,
    ranked_len: Vec<u8>,
    /// How many of a bucket's ranked nodes are its preference list (N, or
    /// fewer when fewer serving nodes are alive).
    preference_len: Vec<u8>,
    any_full: bool,
    /// Per bucket: the best-ranked live serving nodes of its window passed
    /// over because they are full, for when its preference list is short
    /// of [`View::copies_required`] (see [`View::short_of_room`]).
    reserve: Vec<[u8; RESERVE_MAX]>,
    reserve_len: Vec<u8>,
    /// Serving members of the universe, and those alive.
    pub serving: usize,
    serving_alive: usize,
    /// This node is not a serving member: it leaves (or has left) the
    /// universe, and takes no bucket.
    pub leaving: bool,
    /// Every node's role in the universe, by index.
    roles: Vec<Role>,
    /// Per bucket: its preference list among the nodes that are current
    /// now (ready, not behind, pulling nothing): the nodes that hold it
    /// whole, while joining or returning replicas pull it (see
    /// [`View::set_holders`]). Empty until set.
    holders: Vec<[u8; REPLICAS_MAX]>,
    holders_len: Vec<u8>,
    /// Some live peer holds another universe: it may coordinate by that
    /// one, writing only to the holders it knows, so writes coordinated
    /// here go to every holder too until all agree.
    universe_split: bool,
}

/// Nodes of each bucket's full ranking kept precomputed (beyond the
/// leaving members, which are never replicas). A view takes a bucket's
/// live nodes from this prefix, and scores the live nodes ranked after it
/// only when the prefix holds fewer than 2N eligible ones (more than 10 of
/// the bucket's 16 best nodes down or full): in a cluster still starting,
/// when few nodes are known alive and scoring them is cheap.
const RANKING_PREFIX_MAX: usize = 16;
const _: () = assert!(RANKING_PREFIX_MAX >= 2 * REPLICAS_MAX);

/// Full nodes a bucket short of room keeps as its reserve: enough for a
/// second copy.
const RESERVE_MAX: usize = 2;

/// Copies a write must have before it is acknowledged, where the cluster
/// and the replica count allow: a crash of any one node then loses no
/// acknowledged write.
pub const COPIES_REQUIRED: usize = 2;

/// What a node is to placement (see [`crate::cluster::universe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not a member of the universe (a slot of a node that left, or none).
    Absent,
    /// Takes its share of buckets.
    Serving,
    /// Takes no bucket; while alive it stands in for the buckets it held,
    /// ranked where its score puts it among the stand-ins.
    Leaving,
}

/// What placement is computed from: every node's fixed score for every
/// bucket, ranked once when the universe is known, and the replication
/// factor. Building a view is then a short walk per bucket instead of
/// scoring every node for every bucket again (150 nodes: 0.6 million
/// scores, milliseconds per view; a cluster changing views several times
/// a second spent most of its CPU there and starved its own failure
/// detector).
#[derive(Clone, Debug)]
pub struct Placement {
    seeds: Vec<u64>,
    roles: Vec<Role>,
    pub replicas: usize,
    /// Per bucket, `prefix` node indexes, best score first.
    ranking: Vec<u8>,
    prefix: usize,
}

/// Inserts `item` into `items` (highest first), keeping the `keep` highest.
fn insert_bounded<T: Ord + Copy>(items: &mut Vec<T>, item: T, keep: usize) {
    if items.len() < keep || item > items[items.len() - 1] {
        let at = items.partition_point(|&other| other > item);
        items.insert(at, item);
        items.truncate(keep);
    }
}

/// A bucket's ranked live nodes as a view is built: its replicas first,
/// then its stand-ins, in score order each.
struct Ranks {
    replicas: usize,
    preference: Vec<u8>,
    stand_ins: Vec<u8>,
    /// Live serving nodes passed over for being full, best first.
    reserve: Vec<u8>,
    /// Serving nodes met so far, alive or not (the first N are the
    /// bucket's home replicas).
    serving_seen: usize,
    /// Live serving nodes met so far: the first 2N of them are the
    /// bucket's *window* (see [`Ranks::offer`]).
    alive_serving_seen: usize,
    /// A full node was passed over: the nodes taking its place come from
    /// the window only.
    passed_full: bool,
}

impl Ranks {
    /// What every bucket's ranking holds (checked as a view is built).
    fn check(&self, bucket: usize, liveness: &Liveness, roles: &[Role]) {
        let (preference, stand_ins) = (&self.preference, &self.stand_ins);
        crate::invariant!(
            preference.len() <= self.replicas && stand_ins.len() <= self.replicas,
            "bucket {bucket} ranks {preference:?} then {stand_ins:?} for {} replicas",
            self.replicas
        );
        let ranked = || preference.iter().chain(stand_ins).map(|&n| usize::from(n));
        crate::invariant!(
            ranked().all(|n| liveness.alive[n]) && preference.iter().all(|&n| roles[usize::from(n)] == Role::Serving),
            "bucket {bucket} ranks a dead or non-serving node: {preference:?} then {stand_ins:?}"
        );
        crate::invariant!(
            ranked().enumerate().all(|(i, n)| ranked().take(i).all(|m| m != n)),
            "bucket {bucket} ranks a node twice: {preference:?} then {stand_ins:?}"
        );
    }

    fn done(&self) -> bool {
        self.preference.len() == self.replicas && self.stand_ins.len() == self.replicas
    }

    /// The next node in score order. A full node takes only buckets it is
    /// a home replica of: the next live node takes its place, but only
    /// within the bucket's window, its 2N best-ranked live serving nodes
    /// full or not. Those are where a node catching up looks for the
    /// writes it missed ([`crate::node::cluster_core`]'s pulls), so a
    /// bucket never moves where they would not be found; where the window
    /// has too few nodes with room, the bucket is short of room
    /// ([`View::short_of_room`]).
    fn offer(&mut self, node: u8, role: Role, liveness: &Liveness) {
        let n = usize::from(node);
        let home = role == Role::Serving && self.serving_seen < self.replicas;
        self.serving_seen += usize::from(role == Role::Serving);
        let live_serving = role == Role::Serving && liveness.alive[n];
        let within_window = self.alive_serving_seen < 2 * self.replicas;
        self.alive_serving_seen += usize::from(live_serving);
        let full = liveness.full[n];
        let eligible = liveness.alive[n] && (home || (!full && (!self.passed_full || within_window)));
        if live_serving && full && !home {
            self.passed_full = true;
            if within_window && self.reserve.len() < RESERVE_MAX {
                self.reserve.push(node);
            }
        }
        match role {
            Role::Serving if eligible && self.preference.len() < self.replicas => self.preference.push(node),
            Role::Serving | Role::Leaving if eligible && self.stand_ins.len() < self.replicas => {
                self.stand_ins.push(node)
            }
            _ => {}
        }
    }
}

impl Placement {
    /// Placement for the nodes of a servers file, all serving, in slot
    /// order (a node's seed is the hash of its name, so a node keeps its
    /// buckets across restarts and list reorderings).
    pub fn new(names: &[String], replicas: usize) -> Placement {
        let slots: Vec<(&str, Role)> = names.iter().map(|name| (name.as_str(), Role::Serving)).collect();
        Placement::with_roles(&slots, replicas)
    }

    /// Placement for the nodes of a universe, by slot: each its name and
    /// role.
    pub fn with_roles(slots: &[(&str, Role)], replicas: usize) -> Placement {
        let seeds: Vec<u64> = slots.iter().map(|(name, _)| key_hash(name.as_bytes())).collect();
        let roles: Vec<Role> = slots.iter().map(|&(_, role)| role).collect();
        Placement::from_seeds(seeds, roles, replicas)
    }

    fn from_seeds(seeds: Vec<u64>, roles: Vec<Role>, replicas: usize) -> Placement {
        assert!(seeds.len() <= usize::from(u8::MAX) + 1, "node indexes fit a byte");
        let members: Vec<usize> = (0..seeds.len()).filter(|&n| roles[n] != Role::Absent).collect();
        let leaving = roles.iter().filter(|&&role| role == Role::Leaving).count();
        // Enough that the prefix holds every bucket's home replicas.
        let prefix = members.len().min(RANKING_PREFIX_MAX + leaving);
        let mut ranking = Vec::with_capacity(BUCKETS * prefix);
        let mut best: Vec<(u64, u8)> = Vec::with_capacity(prefix + 1);
        for bucket in 0..BUCKETS as BucketId {
            best.clear();
            for &node in &members {
                insert_bounded(&mut best, (score(seeds[node], bucket), node as u8), prefix);
            }
            ranking.extend(best.iter().map(|&(_, node)| node));
        }
        Placement {
            seeds,
            roles,
            replicas: replicas.clamp(1, REPLICAS_MAX),
            ranking,
            prefix,
        }
    }

    /// The same placement with leaving nodes counted as serving, if any
    /// leave: where buckets were before they began to leave, for
    /// [`View::set_holders`] (a leaving node holds what it held).
    pub fn with_leaving_as_serving(&self) -> Option<Placement> {
        if !self.roles.contains(&Role::Leaving) {
            return None;
        }
        let roles = (self.roles.iter())
            .map(|&role| if role == Role::Leaving { Role::Serving } else { role })
            .collect();
        Some(Placement::from_seeds(self.seeds.clone(), roles, self.replicas))
    }

    /// Slots placement knows (members or not).
    pub fn slots(&self) -> usize {
        self.seeds.len()
    }

    pub fn role(&self, node: usize) -> Role {
        self.roles.get(node).copied().unwrap_or(Role::Absent)
    }

    /// Members that serve.
    pub fn serving(&self) -> usize {
        self.roles.iter().filter(|&&role| role == Role::Serving).count()
    }

    /// The preference lists of every bucket when `liveness` holds.
    pub fn view(&self, self_index: usize, liveness: Liveness) -> View {
        let replicas = self.replicas;
        let mut ranked = vec![[0u8; 2 * REPLICAS_MAX]; BUCKETS];
        let mut ranked_len = vec![0u8; BUCKETS];
        let mut preference_len = vec![0u8; BUCKETS];
        let mut reserve = vec![[0u8; RESERVE_MAX]; BUCKETS];
        let mut reserve_len = vec![0u8; BUCKETS];
        let any_full = liveness.full.iter().any(|&full| full);
        let members = self.roles.iter().filter(|&&role| role != Role::Absent).count();
        // Beyond the prefix no node is a home replica (the prefix holds
        // them); full ones count toward a bucket's window.
        let beyond: Vec<usize> = (0..self.seeds.len())
            .filter(|&node| liveness.alive[node] && self.roles[node] != Role::Absent)
            .collect();
        let mut best: Vec<(u64, u8)> = Vec::with_capacity(2 * replicas + 1);
        for bucket in 0..BUCKETS {
            let ranks = self.rank_bucket(bucket, &liveness, &beyond, members, &mut best);
            ranks.check(bucket, &liveness, &self.roles);
            let (preference, stand_ins) = (&ranks.preference, &ranks.stand_ins);
            ranked[bucket][..preference.len()].copy_from_slice(preference);
            ranked[bucket][preference.len()..preference.len() + stand_ins.len()].copy_from_slice(stand_ins);
            preference_len[bucket] = preference.len() as u8;
            ranked_len[bucket] = (preference.len() + stand_ins.len()) as u8;
            reserve[bucket][..ranks.reserve.len()].copy_from_slice(&ranks.reserve);
            reserve_len[bucket] = ranks.reserve.len() as u8;
        }
        let serving_alive = (0..self.seeds.len())
            .filter(|&node| liveness.alive[node] && self.roles[node] == Role::Serving)
            .count();
        View {
            self_index,
            replicas,
            liveness,
            ranked,
            ranked_len,
            preference_len,
            any_full,
            reserve,
            reserve_len,
            serving: self.serving(),
            serving_alive,
            leaving: self.role(self_index) != Role::Serving,
            roles: self.roles.clone(),
            holders: Vec::new(),
            holders_len: Vec::new(),
            universe_split: false,
        }
    }

    /// One bucket's preference list, stand-ins and reserve under
    /// `liveness`; `beyond`: the live members, scored where the prefix
    /// has too few; `best`: scratch space reused across buckets.
    fn rank_bucket(
        &self,
        bucket: usize,
        liveness: &Liveness,
        beyond: &[usize],
        members: usize,
        best: &mut Vec<(u64, u8)>,
    ) -> Ranks {
        let replicas = self.replicas;
        let order = &self.ranking[bucket * self.prefix..(bucket + 1) * self.prefix];
        let mut ranks = Ranks {
            replicas,
            preference: Vec::with_capacity(replicas),
            stand_ins: Vec::with_capacity(replicas),
            reserve: Vec::new(),
            serving_seen: 0,
            alive_serving_seen: 0,
            passed_full: false,
        };
        for &node in order {
            if ranks.done() {
                break;
            }
            ranks.offer(node, self.roles[usize::from(node)], liveness);
        }
        if !ranks.done() && self.prefix < members {
            // Too few in the prefix (most nodes down, or a cluster still
            // starting): score the live nodes ranked after it.
            let last = order[self.prefix - 1];
            let prefix_lowest = (score(self.seeds[usize::from(last)], bucket as BucketId), last);
            best.clear();
            for &node in beyond {
                let scored = (score(self.seeds[node], bucket as BucketId), node as u8);
                if scored < prefix_lowest {
                    insert_bounded(best, scored, 2 * replicas);
                }
            }
            ranks.serving_seen = replicas;
            for &(_, node) in best.iter() {
                ranks.offer(node, self.roles[usize::from(node)], liveness);
            }
        }
        ranks
    }
}

impl View {
    fn ranked(&self, bucket: BucketId) -> &[u8] {
        let b = usize::from(bucket);
        &self.ranked[b][..usize::from(self.ranked_len[b])]
    }

    /// The live nodes that should hold `bucket`, best first.
    pub fn preference(&self, bucket: BucketId) -> &[u8] {
        &self.ranked(bucket)[..usize::from(self.preference_len[usize::from(bucket)])]
    }

    /// The live nodes ranked for `bucket` beyond the preference list.
    pub fn stand_ins(&self, bucket: BucketId) -> &[u8] {
        &self.ranked(bucket)[usize::from(self.preference_len[usize::from(bucket)])..]
    }

    /// The node that executes requests for `bucket`: the first current
    /// node of the preference list (ready and pulling nothing), else the
    /// first ready one. When no replica is ready but a stand-in is, or
    /// some node holds the bucket whole (the nodes ranked for it all joined
    /// the cluster and pull it), `None`: the replicas are catching up, and
    /// a stand-in's copy may be old (it stopped taking writes when it
    /// stopped being a replica), so the request must wait. When no node is
    /// ready at all (a cluster still starting, or one whose catch-up is
    /// slow), only the first replica coordinates, and only if it is not
    /// behind (back from a suspension, it missed writes): it took every
    /// write coordinated since the cluster started, and its successors take
    /// its place, in order, when it dies. Any other node's copy may be old (the simulator found
    /// a stand-in, still catching up itself, answering from one), so
    /// otherwise the request waits.
    pub fn coordinator(&self, bucket: BucketId) -> Option<usize> {
        self.coordinator_besides(bucket, usize::MAX)
    }

    /// The coordinator when `skip` may not coordinate (it just woke from a
    /// suspension and its own view still calls it ready).
    pub fn coordinator_besides(&self, bucket: BucketId, skip: usize) -> Option<usize> {
        let ranked = self.ranked(bucket);
        let others = |list: &'_ [u8]| {
            list.iter()
                .map(|&n| usize::from(n))
                .filter(move |&n| n != skip)
                .collect::<Vec<usize>>()
        };
        let (replicas, all) = (others(self.preference(bucket)), others(ranked));
        // A replica still pulling buckets it gained (a node that joined,
        // or took a dead one's place ahead of the others) may lack some of
        // this one: a current replica coordinates before it.
        let ready = (replicas.iter().find(|&&n| self.is_current(n)))
            .or_else(|| replicas.iter().find(|&&n| self.liveness.ready[n]));
        if let Some(&ready) = ready {
            return Some(ready);
        }
        // A stand-in is ready, or some node holds the bucket whole (the
        // ranked nodes all joined and still pull it): they wait for one.
        if all.iter().any(|&n| self.liveness.ready[n]) || !self.holders(bucket).is_empty() {
            return None;
        }
        replicas.first().copied().filter(|&n| !self.liveness.behind[n])
    }

    pub fn holds(&self, node: usize, bucket: BucketId) -> bool {
        self.preference(bucket).contains(&(node as u8))
    }

    /// The bucket's preference list without this node.
    pub fn other_replicas(&self, bucket: BucketId) -> impl Iterator<Item = usize> + '_ {
        let me = self.self_index;
        self.preference(bucket)
            .iter()
            .map(|&n| usize::from(n))
            .filter(move |&n| n != me)
    }

    /// The holders of every bucket: their preference lists under
    /// `holding` (this view's placement, with leaving nodes counted as
    /// serving) among the nodes current now (alive, ready, not behind,
    /// pulling nothing); `universe_split`: some live peer holds another
    /// universe.
    pub fn set_holders(&mut self, holding: &Placement, universe_split: bool) {
        let live = &self.liveness;
        let now_current: Vec<bool> = (0..live.alive.len())
            .map(|n| live.alive[n] && live.ready[n] && !live.behind[n] && !live.pulling[n])
            .collect();
        let current = holding.view(self.self_index, Liveness::ready(now_current));
        self.universe_split = universe_split;
        self.holders = vec![[0u8; REPLICAS_MAX]; BUCKETS];
        self.holders_len = vec![0u8; BUCKETS];
        for bucket in 0..BUCKETS {
            let list = current.preference(bucket as BucketId);
            let list = &list[..list.len().min(REPLICAS_MAX)];
            self.holders[bucket][..list.len()].copy_from_slice(list);
            self.holders_len[bucket] = list.len() as u8;
        }
    }

    /// The nodes that hold `bucket` whole now (see [`View::set_holders`]).
    pub fn holders(&self, bucket: BucketId) -> &[u8] {
        let b = usize::from(bucket);
        match (self.holders.get(b), self.holders_len.get(b)) {
            (Some(list), Some(&len)) => &list[..usize::from(len)],
            _ => &[],
        }
    }

    /// Where a write coordinated here goes: the other replicas, and for
    /// each replica not current (it joined, came back, or pulls buckets
    /// it gained) one of the nodes that hold the bucket whole now, best
    /// first. A bucket that gains a replica keeps its old holders current
    /// until the newcomer is, so it never has fewer current copies than
    /// before (the retain pass keeps their copies as long; see
    /// [`crate::node::cluster_core`]). While peers disagree on the
    /// universe, every holder gets it: one still in the old universe
    /// coordinates from its own copy.
    pub fn write_targets(&self, bucket: BucketId) -> Vec<usize> {
        let preference = self.preference(bucket);
        let mut targets: Vec<usize> = self.other_replicas(bucket).collect();
        let not_current = (preference.iter())
            .filter(|&&n| !self.is_current(usize::from(n)))
            .count();
        let helpers = (self.holders(bucket).iter())
            .filter(|n| !preference.contains(n))
            .map(|&n| usize::from(n))
            .filter(|&n| n != self.self_index)
            .take(if self.universe_split { REPLICAS_MAX } else { not_current });
        targets.extend(helpers);
        targets
    }

    /// Whether `node` holds every bucket it replicates whole: ready, and
    /// not pulling buckets it gained.
    pub fn is_current(&self, node: usize) -> bool {
        self.liveness.ready[node] && !self.liveness.pulling[node]
    }

    /// Copies a write needs before it is acknowledged: [`COPIES_REQUIRED`],
    /// or fewer where the universe has fewer serving nodes or the replica
    /// count is lower.
    pub fn copies_required(&self) -> usize {
        COPIES_REQUIRED.min(self.replicas).min(self.serving.max(1))
    }

    /// Whether `bucket` cannot have the copies a write needs because the
    /// live nodes that could take them are full (not because too few are
    /// alive): the cluster has no room for it, a definite answer, where a
    /// node cut off from the others must wait for them.
    pub fn short_of_room(&self, bucket: BucketId) -> bool {
        let required = self.copies_required();
        self.preference(bucket).len() < required && self.serving_alive >= required
    }

    /// The live full nodes that can take a second copy of what frees room
    /// (a delete's tombstone) in a bucket [`View::short_of_room`]: they
    /// keep it in the headroom between full and their limit.
    pub fn reserve(&self, bucket: BucketId) -> &[u8] {
        let b = usize::from(bucket);
        &self.reserve[b][..usize::from(self.reserve_len[b])]
    }

    /// The replication factor N.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// Copies a bucket should have: N, or every serving node where fewer
    /// serve.
    pub fn copies_wanted(&self) -> usize {
        self.replicas.min(self.serving)
    }

    /// Where a keyed request for `bucket` that reached this node goes: the
    /// one rule of coordination, a pure function of the view and of what
    /// this node knows of itself. The coordinator is the first ready node
    /// of the preference list ([`View::coordinator`]); then:
    /// - a node back from a suspension whose own view still calls it ready
    ///   (`away`), or that gossips itself behind, or that still pulls this
    ///   bucket, never coordinates: its data may be stale, so the next
    ///   candidate does;
    /// - a request that has taken every hop it may is executed by a replica
    ///   whose data is current, and refused by any other node (two nodes
    ///   that both just woke would otherwise bounce it between their stale
    ///   views, and one would answer from stale data).
    pub fn route(&self, bucket: BucketId, me: &Myself) -> Route {
        let behind = me.away || me.pulling_bucket || self.liveness.behind[self.self_index];
        let mut coordinator = self.coordinator(bucket);
        if coordinator == Some(self.self_index) && behind {
            coordinator = self.coordinator_besides(bucket, self.self_index);
        }
        let Some(coordinator) = coordinator else {
            return Route::Wait;
        };
        crate::invariant!(
            self.holds(coordinator, bucket),
            "coordinator {coordinator} is not a replica"
        );
        let current = self.is_current(self.self_index) && !me.away && !me.pulling_bucket;
        let last_hop = me.hops >= me.hops_max;
        if coordinator == self.self_index || (last_hop && current && self.holds(self.self_index, bucket)) {
            Route::Execute
        } else if !last_hop {
            Route::Forward(coordinator)
        } else {
            Route::Refuse
        }
    }

    /// Whether any live node's store is full.
    pub fn any_full(&self) -> bool {
        self.any_full
    }

    /// Whether `node` is a member of the universe (serving or leaving).
    pub fn is_member(&self, node: usize) -> bool {
        self.roles.get(node).is_some_and(|&role| role != Role::Absent)
    }

    pub fn is_leaving(&self, node: usize) -> bool {
        self.roles.get(node) == Some(&Role::Leaving)
    }

    /// Serving members alive: GET_MEMBERSHIP_COUNT.
    pub fn alive_count(&self) -> usize {
        self.serving_alive
    }
}

/// What the node routing a request knows of itself beyond its view.
#[derive(Clone, Copy, Debug, Default)]
pub struct Myself {
    /// Back from a suspension or a stall and not yet caught up, though its
    /// own view may still call it ready.
    pub away: bool,
    /// Still pulling this bucket (it gained it): its copy may lack
    /// acknowledged writes, though its view calls it ready.
    pub pulling_bucket: bool,
    /// Hops the request has taken, and how many it may take.
    pub hops: u8,
    pub hops_max: u8,
}

/// Where a keyed request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// This node executes it.
    Execute,
    /// This node sends it on to that node.
    Forward(usize),
    /// No replica of the bucket can coordinate now (all catching up): the
    /// client is asked to wait.
    Wait,
    /// It took every hop it may and this node cannot execute it: the
    /// client is asked to try again.
    Refuse,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::hash::bucket_of_key;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("127.0.0.1:{}", 12000 + i)).collect()
    }

    fn all_alive(n: usize) -> Liveness {
        Liveness::ready(vec![true; n])
    }

    #[test]
    fn keys_spread_evenly_over_20_nodes() {
        let placement = Placement::new(&names(20), 3);
        let view = placement.view(0, all_alive(20));
        let mut held = [0u32; 20];
        let mut coordinated = [0u32; 20];
        for i in 0..100_000u32 {
            let key = format!("key-{i}");
            let bucket = bucket_of_key(key.as_bytes());
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
        let placement = Placement::new(&names(10), 3);
        let before = placement.view(0, all_alive(10));
        let mut liveness = all_alive(10);
        liveness.alive[4] = false;
        let after = placement.view(0, liveness);
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
        let placement = Placement::new(&names(10), 3);
        let whole = placement.view(0, all_alive(10));
        let mut liveness = all_alive(10);
        liveness.alive[4] = false;
        let gains = placement.view(0, liveness.clone());
        liveness.full[7] = true;
        let refuses = placement.view(0, liveness);
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
    fn a_bucket_never_moves_past_its_window_and_is_short_of_room_when_the_window_is_full() {
        // 20 nodes, 7 down, the 13 others full: a bucket whose home replicas
        // are all down has no node with room in its window.
        let placement = Placement::new(&names(20), 3);
        let mut liveness = all_alive(20);
        let down = [1, 4, 7, 10, 13, 16, 19];
        for &n in &down {
            liveness.alive[n] = false;
        }
        let alive_only = placement.view(0, liveness.clone());
        liveness.full = liveness.alive.clone();
        let full = placement.view(0, liveness.clone());
        let (mut homeless, mut homed) = (0, 0);
        for bucket in 0..BUCKETS as BucketId {
            let prefs = full.preference(bucket);
            assert!(
                prefs.iter().all(|&n| alive_only.holds(n.into(), bucket)),
                "only home replicas remain"
            );
            let alive_homes = alive_only
                .preference(bucket)
                .iter()
                .filter(|&&n| full.holds(n.into(), bucket))
                .count();
            assert_eq!(prefs.len(), alive_homes, "bucket {bucket}");
            assert_eq!(full.short_of_room(bucket), prefs.len() < 2, "bucket {bucket}");
            if prefs.is_empty() {
                homeless += 1;
                assert_eq!(
                    full.reserve(bucket).len(),
                    2,
                    "two full nodes of its window keep a tombstone"
                );
                assert!(full.coordinator(bucket).is_none());
            } else if prefs.len() >= 2 {
                homed += 1;
            }
        }
        assert!(homeless > 20 && homed > 1_000, "homeless {homeless}, homed {homed}");

        // One full node in a window: the next live node within the window
        // takes its place, none beyond.
        let mut liveness = all_alive(20);
        liveness.full[3] = true;
        let one_full = placement.view(0, liveness);
        let all = placement.view(0, all_alive(20));
        for bucket in 0..BUCKETS as BucketId {
            let window: Vec<u8> = all
                .preference(bucket)
                .iter()
                .chain(all.stand_ins(bucket))
                .copied()
                .collect();
            assert!(
                one_full
                    .preference(bucket)
                    .iter()
                    .chain(one_full.stand_ins(bucket))
                    .all(|n| window.contains(n)),
                "bucket {bucket} left its window"
            );
            assert!(!one_full.short_of_room(bucket));
        }
    }

    #[test]
    fn coordinator_skips_nodes_that_are_not_ready() {
        let placement = Placement::new(&names(5), 3);
        let mut liveness = all_alive(5);
        let bucket = 17;
        let first = usize::from(placement.view(0, liveness.clone()).preference(bucket)[0]);
        liveness.ready[first] = false;
        let view = placement.view(0, liveness);
        assert_eq!(view.preference(bucket)[0] as usize, first, "still a replica");
        assert_ne!(view.coordinator(bucket), Some(first));
    }

    #[test]
    fn with_no_node_ready_a_node_behind_never_coordinates() {
        let placement = Placement::new(&names(8), 3);
        let mut liveness = all_alive(8);
        liveness.ready = vec![false; 8];
        let bucket = 99;
        let ranked: Vec<usize> = {
            let view = placement.view(0, liveness.clone());
            view.preference(bucket)
                .iter()
                .chain(view.stand_ins(bucket))
                .map(|&n| usize::from(n))
                .collect()
        };
        // A cluster still starting: the first node coordinates, and the
        // next when it cannot.
        assert_eq!(placement.view(0, liveness.clone()).coordinator(bucket), Some(ranked[0]));
        let view = placement.view(0, liveness.clone());
        assert_eq!(view.coordinator_besides(bucket, ranked[0]), Some(ranked[1]));
        // The first woke from a suspension: it missed writes, and whoever
        // else coordinated may lack ones it took; nobody coordinates until
        // one of them has caught up.
        liveness.behind[ranked[0]] = true;
        let view = placement.view(0, liveness.clone());
        assert_eq!(view.coordinator(bucket), None);
        // Nor does a stand-in that is not behind: it is catching up too,
        // and its copy may be old.
        liveness.behind[ranked[1]] = true;
        liveness.behind[ranked[2]] = true;
        let view = placement.view(0, liveness.clone());
        assert!(!view.liveness.behind[ranked[3]]);
        assert_eq!(view.coordinator(bucket), None);
        // A stand-in that is ready while every replica catches up may hold
        // an old copy: nobody coordinates until a replica is ready.
        liveness.ready[ranked[4]] = true;
        let view = placement.view(0, liveness.clone());
        assert_eq!(view.coordinator(bucket), None);
        liveness.ready[ranked[1]] = true;
        let view = placement.view(0, liveness);
        assert_eq!(view.coordinator(bucket), Some(ranked[1]));
    }

    /// The reference rule: score every member; the preference list is the
    /// first N eligible serving nodes (a full one only where it is one of
    /// the N best serving nodes; after a full one is passed over, any other
    /// only among the 2N best live serving nodes), the stand-ins the next
    /// N eligible nodes, leaving ones included.
    fn ranked_by_scoring_all(placement: &Placement, liveness: &Liveness, bucket: BucketId) -> Vec<u8> {
        let mut all: Vec<(u64, u8)> = (placement.seeds.iter().enumerate())
            .filter(|&(node, _)| placement.roles[node] != Role::Absent)
            .map(|(node, &seed)| (score(seed, bucket), node as u8))
            .collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        let serving = |n: u8| placement.roles[usize::from(n)] == Role::Serving;
        let home: Vec<u8> = (all.iter().map(|&(_, n)| n))
            .filter(|&n| serving(n))
            .take(placement.replicas)
            .collect();
        let rank = |n: u8| all.iter().position(|&(_, m)| m == n);
        // The window: every node ranked up to the 2N-th live serving one.
        let window_end = (all.iter().map(|&(_, n)| n))
            .filter(|&n| liveness.alive[usize::from(n)] && serving(n))
            .nth(2 * placement.replicas - 1)
            .and_then(rank)
            .unwrap_or(usize::MAX);
        let first_passed_full = (all.iter().map(|&(_, n)| n))
            .find(|&n| {
                let live_full = liveness.alive[usize::from(n)] && liveness.full[usize::from(n)];
                live_full && serving(n) && !home.contains(&n)
            })
            .and_then(rank);
        let eligible = |n: u8| {
            let after_full = first_passed_full.is_some_and(|at| rank(n).is_some_and(|r| r > at));
            let in_window = rank(n).is_some_and(|r| r <= window_end);
            let with_room = !liveness.full[usize::from(n)] && (!after_full || in_window);
            liveness.alive[usize::from(n)] && (home.contains(&n) || with_room)
        };
        let preference: Vec<u8> = (all.iter().map(|&(_, n)| n))
            .filter(|&n| serving(n) && eligible(n))
            .take(placement.replicas)
            .collect();
        let stand_ins = (all.iter().map(|&(_, n)| n))
            .filter(|&n| !preference.contains(&n) && eligible(n))
            .take(placement.replicas);
        preference.iter().copied().chain(stand_ins).collect()
    }

    #[test]
    fn views_from_the_precomputed_ranking_equal_scoring_every_node() {
        let all = names(150);
        let mut rng = 7u64;
        for (dead_percent, leaving_percent) in [
            (0, 0),
            (10, 0),
            (30, 0),
            (60, 0),
            (90, 0),
            (99, 0),
            (0, 3),
            (30, 5),
            (90, 10),
        ] {
            rng = fmix64(rng + 1);
            let slots: Vec<(&str, Role)> = (all.iter().enumerate())
                .map(|(node, name)| {
                    let draw = fmix64(rng ^ (node as u64) << 40) % 100;
                    let role = if draw < leaving_percent {
                        Role::Leaving
                    } else if draw == 99 {
                        Role::Absent
                    } else {
                        Role::Serving
                    };
                    (name.as_str(), role)
                })
                .collect();
            let placement = Placement::with_roles(&slots, 3);
            let mut liveness = all_alive(150);
            for (node, &(_, role)) in slots.iter().enumerate() {
                liveness.alive[node] = fmix64(rng ^ node as u64) % 100 >= dead_percent && role != Role::Absent;
                liveness.full[node] = fmix64(rng ^ (node as u64) << 20).is_multiple_of(10);
            }
            let view = placement.view(0, liveness.clone());
            for bucket in 0..BUCKETS as BucketId {
                let ranked: Vec<u8> = view
                    .preference(bucket)
                    .iter()
                    .chain(view.stand_ins(bucket))
                    .copied()
                    .collect();
                assert_eq!(
                    ranked,
                    ranked_by_scoring_all(&placement, &liveness, bucket),
                    "bucket {bucket}, {dead_percent} % dead, {leaving_percent} % leaving"
                );
                assert!(
                    view.preference(bucket)
                        .iter()
                        .all(|&n| slots[usize::from(n)].1 == Role::Serving)
                );
            }
        }
    }

    /// A view of 6 nodes from `me`, with `change` applied to its liveness,
    /// and the ranking (preference list, then stand-ins) of `BUCKET`.
    const BUCKET: BucketId = 321;
    fn routed(me: usize, change: impl FnOnce(&mut Liveness, &[usize])) -> (View, Vec<usize>) {
        let placement = Placement::new(&names(6), 3);
        let whole = placement.view(me, all_alive(6));
        let ranked: Vec<usize> = (whole.preference(BUCKET).iter())
            .chain(whole.stand_ins(BUCKET))
            .map(|&n| usize::from(n))
            .collect();
        let mut liveness = all_alive(6);
        change(&mut liveness, &ranked);
        (placement.view(me, liveness), ranked)
    }

    const FIRST_HOP: Myself = Myself {
        away: false,
        pulling_bucket: false,
        hops: 0,
        hops_max: 2,
    };

    #[test]
    fn the_first_ready_replica_executes_and_every_other_node_forwards_to_it() {
        let (_, ranked) = routed(0, |_, _| {});
        for me in 0..6 {
            let (view, _) = routed(me, |_, _| {});
            let expected = if me == ranked[0] {
                Route::Execute
            } else {
                Route::Forward(ranked[0])
            };
            assert_eq!(view.route(BUCKET, &FIRST_HOP), expected, "node {me}");
        }
    }

    #[test]
    fn a_replica_that_is_not_ready_is_passed_over_for_the_next() {
        let (view, ranked) = routed(0, |l, r| l.ready[r[0]] = false);
        let me = ranked[1];
        let (mine, _) = routed(me, |l, r| l.ready[r[0]] = false);
        assert_eq!(
            view.route(BUCKET, &FIRST_HOP),
            if ranked[1] == 0 {
                Route::Execute
            } else {
                Route::Forward(ranked[1])
            }
        );
        assert_eq!(mine.route(BUCKET, &FIRST_HOP), Route::Execute);
    }

    #[test]
    fn a_coordinator_back_from_a_suspension_hands_its_requests_on() {
        let (_, ranked) = routed(0, |_, _| {});
        let me = ranked[0];
        let (view, _) = routed(me, |_, _| {});
        let away = Myself {
            away: true,
            ..FIRST_HOP
        };
        assert_eq!(view.route(BUCKET, &away), Route::Forward(ranked[1]));
        let (behind, _) = routed(me, |l, _| l.behind[me] = true);
        assert_eq!(behind.route(BUCKET, &FIRST_HOP), Route::Forward(ranked[1]));
    }

    #[test]
    fn with_every_replica_catching_up_and_a_stand_in_ready_the_client_waits() {
        let not_ready = |l: &mut Liveness, r: &[usize]| r[..3].iter().for_each(|&n| l.ready[n] = false);
        let (view, ranked) = routed(0, not_ready);
        assert!(view.liveness.ready[ranked[3]]);
        assert_eq!(view.route(BUCKET, &FIRST_HOP), Route::Wait);
    }

    #[test]
    fn a_bucket_whose_ranked_nodes_all_joined_waits_and_its_writes_reach_its_holders() {
        // 12 nodes; the 6 ranked for the bucket joined (alive, not ready),
        // the other 6 hold it whole.
        let placement = Placement::new(&names(12), 3);
        let whole = placement.view(0, all_alive(12));
        let ranked: Vec<usize> = (whole.preference(BUCKET).iter())
            .chain(whole.stand_ins(BUCKET))
            .map(|&n| usize::from(n))
            .collect();
        assert_eq!(ranked.len(), 6);
        let joined = |n: usize| ranked.contains(&n);
        let me = ranked[0];
        let mut liveness = all_alive(12);
        ranked.iter().for_each(|&n| liveness.ready[n] = false);
        let mut view = placement.view(me, liveness.clone());
        // Without holders, the first replica would coordinate from an
        // empty copy.
        assert_eq!(view.coordinator(BUCKET), Some(me));
        view.set_holders(&placement, false);
        let holders: Vec<usize> = view.holders(BUCKET).iter().map(|&n| usize::from(n)).collect();
        assert_eq!(holders.len(), 3);
        assert!(holders.iter().all(|&n| !joined(n)), "holders {holders:?}");
        assert_eq!(view.coordinator(BUCKET), None);
        assert_eq!(view.route(BUCKET, &FIRST_HOP), Route::Wait);
        let targets = view.write_targets(BUCKET);
        assert!(holders.iter().all(|n| targets.contains(n)), "targets {targets:?}");
    }

    #[test]
    fn while_peers_disagree_on_the_universe_writes_also_reach_a_leaving_holder() {
        // The bucket's first node leaves; the others are all current.
        let (_, ranked) = routed(0, |_, _| {});
        let leaving = ranked[0];
        let names = names(6);
        let slots: Vec<(&str, Role)> = (names.iter().enumerate())
            .map(|(n, name)| (name.as_str(), if n == leaving { Role::Leaving } else { Role::Serving }))
            .collect();
        let placement = Placement::with_roles(&slots, 3);
        let holding = placement.with_leaving_as_serving().unwrap();
        let me = ranked[1];
        let mut view = placement.view(me, all_alive(6));
        assert!(!view.preference(BUCKET).contains(&(leaving as u8)));
        view.set_holders(&holding, false);
        assert!(view.holders(BUCKET).contains(&(leaving as u8)));
        assert!(
            !view.write_targets(BUCKET).contains(&leaving),
            "all agree: no extra copy"
        );
        view.set_holders(&holding, true);
        assert!(
            view.write_targets(BUCKET).contains(&leaving),
            "split: the old holder gets it"
        );
    }

    #[test]
    fn the_coordinator_is_always_a_replica() {
        let placement = Placement::new(&names(8), 3);
        let mut rng = 3u64;
        for _ in 0..200 {
            rng = fmix64(rng + 1);
            let mut liveness = all_alive(8);
            for node in 0..8 {
                let bits = fmix64(rng ^ node as u64);
                liveness.alive[node] = !bits.is_multiple_of(4);
                liveness.ready[node] = bits.is_multiple_of(3);
                liveness.behind[node] = bits.is_multiple_of(5);
            }
            let view = placement.view(0, liveness);
            for bucket in 0..BUCKETS as BucketId {
                if let Some(node) = view.coordinator(bucket) {
                    assert!(view.holds(node, bucket), "bucket {bucket}: {node} is no replica");
                }
            }
        }
    }

    #[test]
    fn at_the_hop_limit_only_a_current_replica_executes() {
        let (_, ranked) = routed(0, |_, _| {});
        let last = Myself { hops: 2, ..FIRST_HOP };
        let (replica, _) = routed(ranked[1], |_, _| {});
        assert_eq!(replica.route(BUCKET, &FIRST_HOP), Route::Forward(ranked[0]));
        assert_eq!(replica.route(BUCKET, &last), Route::Execute);
        let away = Myself { away: true, ..last };
        assert_eq!(replica.route(BUCKET, &away), Route::Refuse);
        let (other, _) = routed(ranked[4], |_, _| {});
        assert_eq!(other.route(BUCKET, &last), Route::Refuse);
    }

    #[test]
    fn fewer_live_nodes_than_replicas() {
        let placement = Placement::new(&names(2), 3);
        let view = placement.view(0, all_alive(2));
        assert_eq!(view.preference(5).len(), 2);
        assert_eq!(view.alive_count(), 2);
    }
}

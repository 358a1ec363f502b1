//! Gossip membership and failure detection, as a sans-I/O state machine:
//! time comes in as milliseconds, messages come in as heartbeat vectors, and
//! what to send goes out as a list of target nodes.
//!
//! Every round a node bumps its own heartbeat counter and sends its whole
//! heartbeat vector to a few random peers; receivers keep the newest
//! (incarnation, counter) per node. A peer whose heartbeat has not advanced
//! for `failure_ms` is dead; a higher heartbeat makes it alive again.
//!
//! Nodes are known by their slot in this node's roster (see
//! `crate::node::roster`); only the slots of the current universe's
//! members take part, and each peer's gossip also says which universe it
//! holds: a peer on another one does not count as settled (see
//! [`Membership::settled`]).
//!
//! A node that was away must not trust its stale view of others: it
//! restarts every peer's clock, counts no peer ready until it hears from it
//! again, and catches up on its data (the caller is told why, see [`Pause`]).
//! Away means resumed after a stop (the caller saw SIGCONT, see
//! [`crate::runtime::pause`]), or rounds that stalled for longer than
//! `failure_ms / 2`: peers hear a heartbeat up to about a second after it
//! is sent, so a longer stall may have made some of them count this node
//! dead and route its writes elsewhere.

use crate::cluster::internal::Heartbeat;
use crate::cluster::universe::UniverseTag;
use crate::storage::hash::SplitMix64;

pub use crate::cluster::internal::ROUND_MS;
/// Peers gossiped to per round.
pub const FANOUT: usize = 3;
/// Ready peers that have not heard from this node since it started or
/// paused, gossiped to per round on top (each answers at once).
const UNSETTLED_FANOUT: usize = 8;

#[derive(Clone, Copy, Debug)]
struct Peer {
    heartbeat: Heartbeat,
    /// When the heartbeat last advanced, local ms.
    advanced_ms: u64,
    alive: bool,
    /// Not heard from since this node's last suspension: what is known of
    /// the peer is as old as the pause.
    stale: bool,
    /// Its gossip has shown a heartbeat of this node from since this node
    /// last started or paused: from then on, its writes reach this node.
    knows_me: bool,
    /// A member of the current universe (only members take part).
    member: bool,
    /// The universe its last gossip said it holds.
    universe: Option<UniverseTag>,
}

impl Peer {
    fn unknown(now_ms: u64) -> Peer {
        Peer {
            heartbeat: Heartbeat::default(),
            advanced_ms: now_ms,
            alive: false,
            stale: false,
            knows_me: false,
            member: false,
            universe: None,
        }
    }
}

pub struct Membership {
    self_index: usize,
    peers: Vec<Peer>,
    failure_ms: u64,
    last_tick_ms: u64,
    rng: SplitMix64,
    /// This node's own counter when it last started or paused: a peer
    /// showing a higher one has heard from it since.
    away_counter: u64,
    /// The universe this node holds.
    universe: UniverseTag,
}

/// Why this node must catch up before it coordinates again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// The process was stopped and continued (SIGSTOP, SIGCONT).
    Suspended,
    /// No signal, but rounds stalled this long (an overloaded host, a
    /// frozen VM): long enough that peers may have counted this node dead.
    Stalled { gap_ms: u64 },
}

/// What a round asks the caller to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub targets: Vec<usize>,
    /// Some node changed liveness or readiness.
    pub changed: bool,
    /// This node was away and must catch up.
    pub paused: Option<Pause>,
}

impl Membership {
    /// Node `self_index` among `slots` slots, those marked in `members`
    /// taking part (see [`Membership::set_members`]).
    pub fn new(self_index: usize, members: &[bool], incarnation: u64, now_ms: u64, failure_ms: u64) -> Membership {
        let mut peers = vec![Peer::unknown(now_ms); members.len()];
        peers[self_index] = Peer {
            heartbeat: Heartbeat {
                incarnation,
                ..Heartbeat::default()
            },
            alive: true,
            knows_me: true,
            member: true,
            ..Peer::unknown(now_ms)
        };
        let mut membership = Membership {
            self_index,
            peers,
            failure_ms,
            last_tick_ms: now_ms,
            rng: SplitMix64::new(incarnation ^ (self_index as u64) << 48),
            away_counter: 0,
            universe: UniverseTag::default(),
        };
        membership.set_members(members, now_ms);
        membership
    }

    /// The slots of the current universe's members (this node's included:
    /// a node that leaves stays a member until it exits). A peer that is
    /// no longer one is dead to this node; a new one is unknown until it
    /// gossips. Returns whether any liveness changed.
    pub fn set_members(&mut self, members: &[bool], now_ms: u64) -> bool {
        let mut changed = false;
        for (slot, peer) in self.peers.iter_mut().enumerate() {
            let member = members.get(slot).copied().unwrap_or(false) || slot == self.self_index;
            if member && !peer.member {
                *peer = Peer {
                    member: true,
                    ..Peer::unknown(now_ms)
                };
            } else if !member && peer.member {
                changed |= peer.alive;
                *peer = Peer::unknown(now_ms);
            }
        }
        changed
    }

    /// The universe this node holds, as its gossip says.
    pub fn set_universe(&mut self, universe: UniverseTag) {
        self.universe = universe;
    }

    /// Whether some live peer's last gossip said it holds another universe
    /// than this node.
    pub fn universe_split(&self) -> bool {
        (0..self.peers.len()).any(|slot| self.holds_another_universe(slot))
    }

    /// Whether `slot` is a live peer whose last gossip to this node said it
    /// holds another universe (one known only through others' gossip has
    /// said nothing: in a big cluster most peers are).
    pub fn holds_another_universe(&self, slot: usize) -> bool {
        slot != self.self_index
            && (self.peers.get(slot))
                .is_some_and(|peer| peer.alive && peer.universe.is_some_and(|theirs| theirs != self.universe))
    }

    /// What each peer's last gossip said of its universe (None: not heard).
    pub fn peer_universe(&self, slot: usize) -> Option<UniverseTag> {
        self.peers.get(slot).and_then(|peer| peer.universe)
    }

    fn members(&self) -> impl Iterator<Item = usize> + '_ {
        (self.peers.iter().enumerate())
            .filter(|(_, peer)| peer.member)
            .map(|(slot, _)| slot)
    }

    fn random(&mut self, n: usize) -> usize {
        self.rng.below(n as u64) as usize
    }

    /// Ready means caught up: it also ends being behind.
    pub fn set_ready(&mut self, ready: bool) -> bool {
        let me = &mut self.peers[self.self_index].heartbeat;
        let changed = me.ready != ready;
        me.ready = ready;
        me.behind &= !ready;
        changed
    }

    /// This node was suspended and missed writes: until it is ready again,
    /// no peer should pick it to coordinate.
    pub fn set_behind(&mut self) {
        let me = &mut self.peers[self.self_index].heartbeat;
        me.ready = false;
        me.behind = true;
    }

    /// Whether this node's store is full (see [`Heartbeat::full`]).
    pub fn set_full(&mut self, full: bool) -> bool {
        let me = &mut self.peers[self.self_index].heartbeat;
        let changed = me.full != full;
        me.full = full;
        changed
    }

    /// Whether this node is pulling buckets (see [`Heartbeat::pulling`]);
    /// returns whether that changed.
    pub fn set_pulling(&mut self, pulling: bool) -> bool {
        let me = &mut self.peers[self.self_index].heartbeat;
        let changed = me.pulling != pulling;
        me.pulling = pulling;
        changed
    }

    pub fn is_full(&self) -> bool {
        self.peers[self.self_index].heartbeat.full
    }

    pub fn is_ready(&self) -> bool {
        self.peers[self.self_index].heartbeat.ready
    }

    /// One gossip round; `away`: what another thread saw since the last
    /// round (a SIGCONT, or a stall of its own).
    pub fn tick(&mut self, now_ms: u64, away: Option<Pause>) -> Round {
        let mut round = Round::default();
        let gap_ms = now_ms.saturating_sub(self.last_tick_ms);
        round.paused = match away {
            Some(Pause::Suspended) => away,
            _ if gap_ms > self.failure_ms / 2 => Some(Pause::Stalled { gap_ms }),
            _ => away,
        };
        if round.paused.is_some() {
            // What this node knew of the others is as old as the pause:
            // they stay alive (a fresh failure timeout starts now), but none
            // counts as ready until it is heard from again, or this node
            // would route requests to peers that were suspended with it.
            for peer in &mut self.peers {
                peer.advanced_ms = now_ms;
                peer.stale = peer.alive;
                peer.knows_me = false;
                round.changed |= std::mem::replace(&mut peer.heartbeat.ready, false);
            }
            self.peers[self.self_index].stale = false;
            self.peers[self.self_index].knows_me = true;
            self.away_counter = self.peers[self.self_index].heartbeat.counter;
        }
        self.last_tick_ms = now_ms;
        self.peers[self.self_index].heartbeat.counter += 1;
        self.peers[self.self_index].advanced_ms = now_ms;
        for (index, peer) in self.peers.iter_mut().enumerate() {
            if index != self.self_index && peer.alive && now_ms.saturating_sub(peer.advanced_ms) > self.failure_ms {
                peer.alive = false;
                peer.stale = false;
                round.changed = true;
            }
        }
        let me = &self.peers[self.self_index];
        crate::invariant!(me.alive && !me.stale, "this node counts itself dead or stale");
        round.targets = self.gossip_targets();
        round
    }

    /// This round's gossip targets: mostly live peers, one of any state,
    /// and the ready peers that have not heard this node since it came back.
    fn gossip_targets(&mut self) -> Vec<usize> {
        // Every other member, in slot order from this node on.
        let mut others: Vec<usize> = self.members().filter(|&i| i != self.self_index).collect();
        let after_me = others.partition_point(|&i| i < self.self_index);
        others.rotate_left(after_me);
        if others.is_empty() {
            return Vec::new();
        }
        // Mostly live peers (they need our heartbeat), plus one peer of
        // any state so a node that came back hears from us quickly.
        let live: Vec<usize> = (self.members())
            .filter(|&i| i != self.self_index && self.peers[i].alive)
            .collect();
        let mut targets = Vec::with_capacity(FANOUT);
        for _ in 0..FANOUT.saturating_sub(1).min(live.len()) {
            let pick = live[self.random(live.len())];
            if !targets.contains(&pick) {
                targets.push(pick);
            }
        }
        let any = others[self.random(others.len())];
        if !targets.contains(&any) {
            targets.push(any);
        }
        // Back from a start or a pause: every peer that coordinates
        // writes must hear of it before it pulls (see `settled`).
        let unaware = (others.iter().copied())
            .filter(|&i| {
                let peer = &self.peers[i];
                i != self.self_index && peer.alive && peer.heartbeat.ready && !peer.knows_me
            })
            .filter(|i| !targets.contains(i))
            .take(UNSETTLED_FANOUT)
            .collect::<Vec<usize>>();
        targets.extend(unaware);
        targets
    }

    /// The heartbeats to gossip. A peer this node counts dead, or has not
    /// heard from since its own suspension, is sent as unknown (never newer
    /// than anything): its last heartbeat is stale, and relayed it would
    /// make the peer alive, ready or not ready at a node that knew an even
    /// older one (another node waking from a suspension).
    pub fn heartbeats(&self) -> Vec<(usize, Heartbeat)> {
        self.members()
            .map(|slot| {
                let peer = &self.peers[slot];
                if peer.alive && !peer.stale {
                    (slot, peer.heartbeat)
                } else {
                    // Only its incarnation (counter 0: never news of
                    // liveness), so that a node that restarted with its
                    // clock gone back learns it must take a later one.
                    let incarnation = Heartbeat {
                        incarnation: peer.heartbeat.incarnation,
                        ..Heartbeat::default()
                    };
                    (slot, incarnation)
                }
            })
            .collect()
    }

    /// Whether, since this node last started or paused, every live peer
    /// has been heard from and has heard from it, and none is known to hold
    /// another universe. Until then it does not know who stood in for it while it
    /// was away, and a peer that does not know it is back (or is a replica)
    /// still sends its writes elsewhere: what it pulled before could miss
    /// them.
    pub fn settled(&self) -> bool {
        self.unsettled_peers().next().is_none()
    }

    /// The peers that keep this node from being [`settled`](Self::settled):
    /// live ones, and members never heard from that may yet be (for a
    /// failure timeout after this node started, or took them in: in a big
    /// cluster a peer's first heartbeat takes a few rounds to arrive, and
    /// what it coordinated meanwhile must not be missed).
    pub fn unsettled_peers(&self) -> impl Iterator<Item = usize> + '_ {
        (self.peers.iter().enumerate())
            .filter(|&(index, peer)| {
                let live = peer.alive
                    && (peer.stale
                        || (!peer.knows_me && peer.heartbeat.ready)
                        || peer.universe.is_some_and(|theirs| theirs != self.universe));
                let unheard = peer.member
                    && !peer.alive
                    && index != self.self_index
                    && peer.heartbeat.counter == 0
                    && self.last_tick_ms < peer.advanced_ms + self.failure_ms;
                live || unheard
            })
            .map(|(index, _)| index)
    }

    /// This node's incarnation, as gossiped.
    pub fn incarnation(&self) -> u64 {
        self.peers[self.self_index].heartbeat.incarnation
    }

    /// Merges received heartbeats (by slot; the caller has dropped those
    /// of nodes it does not know) from a peer holding `universe`. Returns
    /// whether any node changed liveness or readiness, and whether to
    /// answer `sender` at once: it was news to us, or it is not ready (it
    /// just started or paused, and waits to hear that peers know it is
    /// back; see [`Membership::settled`]).
    pub fn on_gossip(
        &mut self,
        now_ms: u64,
        sender: usize,
        universe: UniverseTag,
        heartbeats: &[(usize, Heartbeat)],
    ) -> (bool, bool) {
        let is_member = |peers: &[Peer], slot: usize| peers.get(slot).is_some_and(|peer| peer.member);
        if !is_member(&self.peers, sender) || sender == self.self_index {
            return (false, false);
        }
        let Some(&(_, theirs)) = heartbeats.iter().find(|(slot, _)| *slot == sender) else {
            return (false, false);
        };
        let answer = !self.peers[sender].alive || !theirs.ready;
        let mut changed = false;
        let settled_before = self.peers[sender].universe == Some(self.universe);
        self.peers[sender].universe = Some(universe);
        changed |= settled_before != (universe == self.universe);
        let me = self.peers[self.self_index].heartbeat;
        let of_me = (heartbeats.iter())
            .find(|(slot, _)| *slot == self.self_index)
            .map_or(Heartbeat::default(), |&(_, heartbeat)| heartbeat);
        if of_me.incarnation > me.incarnation {
            // A previous run of this node had a later start time (the clock
            // went back across a restart): peers would take this run for an
            // old one. It takes the next incarnation after that one.
            self.peers[self.self_index].heartbeat.incarnation = of_me.incarnation + 1;
            changed = true;
        } else if of_me.incarnation == me.incarnation
            && of_me.counter > self.away_counter
            && let Some(peer) = self.peers.get_mut(sender)
        {
            peer.knows_me = true;
        }
        changed |= self.take_heartbeats(now_ms, heartbeats);
        (changed, answer)
    }

    /// The heartbeats a peer gossiped: each newer than this node's word
    /// of that peer taken. Returns whether a node changed liveness or
    /// readiness.
    fn take_heartbeats(&mut self, now_ms: u64, heartbeats: &[(usize, Heartbeat)]) -> bool {
        let mut changed = false;
        for &(index, ref theirs) in heartbeats {
            // Counter 0: a node the sender knows only by incarnation.
            if index == self.self_index || theirs.counter == 0 || !self.peers.get(index).is_some_and(|peer| peer.member)
            {
                continue;
            }
            let peer = &mut self.peers[index];
            let newer = (theirs.incarnation, theirs.counter) > (peer.heartbeat.incarnation, peer.heartbeat.counter);
            if !newer {
                continue;
            }
            // Readiness, being behind and being full decide routing; hearing
            // from a peer for the first time since a suspension ends not knowing.
            changed |= (peer.heartbeat.ready, peer.heartbeat.behind, peer.heartbeat.full)
                != (theirs.ready, theirs.behind, theirs.full)
                || peer.heartbeat.pulling != theirs.pulling
                || peer.stale;
            if theirs.incarnation != peer.heartbeat.incarnation {
                // A new run of the peer has never heard of this node.
                peer.knows_me = false;
            }
            let before = (peer.heartbeat.incarnation, peer.heartbeat.counter);
            peer.heartbeat = *theirs;
            // Gossip only moves a peer's heartbeat forward, so old news
            // relayed late never brings a dead peer back.
            crate::invariant!(
                (peer.heartbeat.incarnation, peer.heartbeat.counter) > before,
                "slot {index}'s heartbeat went from {before:?} to {:?}",
                (peer.heartbeat.incarnation, peer.heartbeat.counter)
            );
            peer.advanced_ms = now_ms;
            peer.stale = false;
            if !peer.alive {
                peer.alive = true;
                changed = true;
            }
        }
        changed
    }

    pub fn liveness(&self) -> crate::cluster::ring::Liveness {
        crate::cluster::ring::Liveness {
            alive: self.peers.iter().map(|p| p.alive).collect(),
            ready: self.peers.iter().map(|p| p.alive && p.heartbeat.ready).collect(),
            // A peer not heard from since this node's own suspension may be
            // behind too, for all this node knows.
            behind: self
                .peers
                .iter()
                .map(|p| p.alive && (p.heartbeat.behind || p.stale))
                .collect(),
            full: self.peers.iter().map(|p| p.alive && p.heartbeat.full).collect(),
            pulling: self.peers.iter().map(|p| p.alive && p.heartbeat.pulling).collect(),
        }
    }

    pub fn alive_count(&self) -> usize {
        self.peers.iter().filter(|p| p.alive).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny in-process cluster: every round each node gossips to its
    /// targets, except nodes in `stopped`, and is answered when it asks.
    fn run_rounds(nodes: &mut [Membership], from_ms: u64, rounds: u64, stopped: &[usize]) -> u64 {
        let mut now = from_ms;
        for _ in 0..rounds {
            now += 200;
            let mut mail = Vec::new();
            for (i, node) in nodes.iter_mut().enumerate() {
                if stopped.contains(&i) {
                    continue;
                }
                let round = node.tick(now, None);
                for target in round.targets {
                    mail.push((i, target, node.heartbeats()));
                }
            }
            // Answers go back at once (one level: answers are not answered).
            let mut answers = Vec::new();
            for (from, to, heartbeats) in mail {
                if !stopped.contains(&to) && nodes[to].on_gossip(now, from, UniverseTag::default(), &heartbeats).1 {
                    answers.push((to, from, nodes[to].heartbeats()));
                }
            }
            for (from, to, heartbeats) in answers {
                nodes[to].on_gossip(now, from, UniverseTag::default(), &heartbeats);
            }
        }
        now
    }

    fn cluster(n: usize) -> Vec<Membership> {
        (0..n)
            .map(|i| Membership::new(i, &vec![true; n], 1000 + i as u64, 0, 3000))
            .collect()
    }

    #[test]
    fn everyone_learns_everyone_then_detects_stopped_nodes_and_their_return() {
        let mut nodes = cluster(40);
        nodes.iter_mut().for_each(|node| {
            node.set_ready(true);
        });
        let now = run_rounds(&mut nodes, 0, 15, &[]);
        assert!(nodes.iter().all(|m| m.alive_count() == 40));
        let stopped = [3, 7, 11, 20];
        // 3 s timeout plus propagation: all live nodes agree within 5 s.
        let now = run_rounds(&mut nodes, now, 25, &stopped);
        for (i, node) in nodes.iter().enumerate() {
            if !stopped.contains(&i) {
                assert_eq!(node.alive_count(), 36, "node {i}");
            }
        }
        // The stopped nodes resume: they detect their pause and are counted again.
        let mut paused_seen = 0;
        let now_after = now + 200;
        for &i in &stopped {
            if nodes[i].tick(now_after, None).paused.is_some() {
                paused_seen += 1;
            }
        }
        assert_eq!(paused_seen, 4);
        // A woken node counts nobody ready until it hears from them again,
        // and one that was suspended with it not before that one gossips.
        assert!(nodes[3].liveness().ready.iter().all(|&ready| !ready));
        // It relays nothing it knew before the pause but incarnations, and
        // does not know yet who stood in for it.
        let relayed = nodes[3].heartbeats();
        assert!(
            relayed
                .iter()
                .all(|&(i, h)| i == 3 || (h.counter == 0 && !h.ready && !h.behind && !h.full && !h.pulling))
        );
        assert!(!nodes[3].settled());
        let now = run_rounds(&mut nodes, now_after, 10, &[7, 11, 20]);
        let ready = nodes[3].liveness().ready;
        assert!(!ready[7], "a peer still suspended is not ready");
        assert!(nodes[3].liveness().behind[7], "a peer not heard from may be behind");
        assert!(!nodes[3].settled());
        assert!(
            ready.iter().filter(|&&r| r).count() >= 30,
            "peers heard from since are ready"
        );
        run_rounds(&mut nodes, now, 15, &[]);
        assert!(nodes.iter().all(|m| m.alive_count() == 40));
        assert!(nodes[3].settled());
    }

    #[test]
    fn a_stop_is_told_from_a_slow_tick() {
        let mut node = Membership::new(0, &[true; 3], 1, 0, 3000);
        assert_eq!(node.tick(200, None).paused, None);
        assert_eq!(node.tick(1600, None).paused, None, "1.4 s late: peers still count it");
        assert_eq!(
            node.tick(3200, None).paused,
            Some(Pause::Stalled { gap_ms: 1600 }),
            "peers may have counted it dead"
        );
        assert_eq!(
            node.tick(3400, Some(Pause::Suspended)).paused,
            Some(Pause::Suspended),
            "a SIGCONT, however short the stop"
        );
        assert_eq!(node.tick(3600, None).paused, None);
        assert_eq!(
            node.tick(3800, Some(Pause::Stalled { gap_ms: 2000 })).paused,
            Some(Pause::Stalled { gap_ms: 2000 }),
            "the event loop stalled although this thread did not: a stall, not a suspension"
        );
    }

    #[test]
    fn a_restarted_node_is_a_new_incarnation() {
        let mut nodes = cluster(5);
        let now = run_rounds(&mut nodes, 0, 10, &[]);
        let now = run_rounds(&mut nodes, now, 20, &[2]);
        assert_eq!(nodes[0].alive_count(), 4);
        // Restart with counter 0 but a later incarnation: accepted.
        nodes[2] = Membership::new(2, &[true; 5], 99_999, now, 3000);
        run_rounds(&mut nodes, now, 10, &[]);
        assert!(nodes.iter().all(|m| m.alive_count() == 5));
    }

    #[test]
    fn a_node_is_settled_once_every_live_peer_has_heard_from_it() {
        let mut nodes = cluster(4);
        let now = run_rounds(&mut nodes, 0, 10, &[]);
        assert!(nodes.iter().all(Membership::settled));
        // Node 0 pauses; it is not settled until all three peers have
        // shown it, in their gossip, a heartbeat from after its pause.
        let now = now + 2_000;
        assert!(nodes[0].tick(now, None).paused.is_some());
        assert!(!nodes[0].settled());
        let heartbeats = nodes[1].heartbeats();
        nodes[0].on_gossip(now, 1, UniverseTag::default(), &heartbeats);
        assert!(!nodes[0].settled(), "node 1 has not heard from node 0 since");
        run_rounds(&mut nodes, now, 10, &[]);
        assert!(nodes[0].settled());
    }

    #[test]
    fn a_node_restarted_with_its_clock_gone_back_takes_a_later_incarnation() {
        let mut nodes = cluster(3);
        let now = run_rounds(&mut nodes, 0, 10, &[]);
        let now = run_rounds(&mut nodes, now, 20, &[2]);
        assert_eq!(nodes[0].alive_count(), 2);
        // Restarted with an earlier start time than its last run (1002).
        nodes[2] = Membership::new(2, &[true; 3], 500, now, 3000);
        run_rounds(&mut nodes, now, 10, &[]);
        assert_eq!(nodes[2].incarnation(), 1003, "the one after its last run");
        assert!(nodes.iter().all(|m| m.alive_count() == 3));
    }

    #[test]
    fn readiness_is_gossiped() {
        let mut nodes = cluster(3);
        nodes[1].set_ready(true);
        run_rounds(&mut nodes, 0, 10, &[]);
        assert!(nodes[0].liveness().ready[1]);
        assert!(!nodes[0].liveness().ready[2]);
    }
}

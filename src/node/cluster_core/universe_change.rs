//! A newer universe adopted, passed on, and left.
//!
//! - **Adopted**: a universe newer than this node's (from an operator's
//!   `ctl reload`, or from a peer) is checked (every name resolves, the
//!   roster has room), kept in the data directory, then taken: nodes it
//!   names for the first time get slots, placement is rebuilt from the
//!   members' roles, membership counts its members, and the view that
//!   follows queues the pulls of every bucket this node gains. Nothing of
//!   the old universe is renumbered (see [`crate::node::roster`]).
//! - **Passed on**: every peer whose gossip shows another universe, or
//!   that has not gossiped since this node took its own, is sent this
//!   node's at most once per [`PUSH_INTERVAL_MS`]: a peer that holds an
//!   older one (it missed the reload, or started with a stale servers
//!   file) adopts it; one that does not know this node yet (this node is
//!   new to it) learns of it this way, since it refuses this node's gossip.
//! - **Left**: a node that is not a serving member takes no bucket; it
//!   keeps standing in for what it held until every bucket has its
//!   replicas ready, hands its buckets off and drops them (the retain
//!   pass), and once its store is empty it syncs and exits.

use super::ClusterCore;
use crate::cluster::internal::Internal;
use crate::cluster::ring::{Placement, Role};
use crate::cluster::universe::{Universe, UniverseTag};
use crate::log;
use crate::node::durability::universe_file;
use crate::node::roster::{Known, Roster, SLOTS_MAX};
use crate::protocol::wire::Reply;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// How often a peer on an older universe is sent this node's.
const PUSH_INTERVAL_MS: u64 = 1_000;
/// Doublings of that interval for a peer not heard from (16 s at most).
const PUSH_BACKOFF_MAX: u32 = 4;
/// Universes sent per round at most (each up to 52 KB at 256 members,
/// about 3.5 KB at 150).
const PUSHES_PER_ROUND: usize = 4;
/// Nodes outside the universe remembered as told, at most.
const STRANGERS_MAX: usize = 64;
/// Retain passes in a row that find a leaving node's store empty before
/// it exits (a replicated write still in flight when the last bucket was
/// dropped is handed off by the pass after).
const DRAINED_PASSES: u32 = 2;

/// Placement over a roster's slots, each with its role in `universe`.
pub fn placement(roster: &Roster, universe: &Universe, replicas: usize) -> Placement {
    let slots: Vec<(&str, Role)> = (0..SLOTS_MAX)
        .map(|slot| match roster.get(slot) {
            Some(known) => match universe.member(&known.name) {
                Some(member) if member.leaving => (known.name.as_str(), Role::Leaving),
                Some(_) => (known.name.as_str(), Role::Serving),
                None => (known.name.as_str(), Role::Absent),
            },
            None => ("", Role::Absent),
        })
        .collect();
    Placement::with_roles(&slots, replicas)
}

/// What the cluster core keeps to pass its universe on, and to leave.
pub(super) struct UniverseSpread {
    /// Per slot: when this node may pass its universe on to it next
    /// (monotonic ms), and how often it has since taking it.
    universe_pushes: Vec<(u64, u32)>,
    /// Where the next round's look for peers to pass it on to starts.
    push_cursor: usize,
    /// Nodes outside this node's universe told about it lately, by id,
    /// with when (bounded).
    strangers_told: VecDeque<(u64, u64)>,
    /// Retain passes in a row that found this leaving node holding nothing
    /// any bucket still needs.
    drained_passes: u32,
}

impl UniverseSpread {
    /// For a roster of `n` slots.
    pub(super) fn new(n: usize) -> UniverseSpread {
        UniverseSpread {
            universe_pushes: vec![(0, 0); n],
            push_cursor: 0,
            strangers_told: VecDeque::new(),
            drained_passes: 0,
        }
    }
}

impl ClusterCore {
    /// Takes `universe` if it is newer than this node's; answers the
    /// operator who sent it, if one did.
    pub(super) fn adopt(&mut self, universe: Universe, reply_to: Option<(Vec<u8>, SocketAddr)>) {
        let answer = match self.try_adopt(universe) {
            Ok(text) => text,
            Err(why) => {
                self.ctx.counters.universes_refused.fetch_add(1, Ordering::Relaxed);
                format!("refused: {why}")
            }
        };
        if let Some((message_id, to)) = reply_to {
            let reply = Reply::Value {
                value: format!("{answer}\n").into_bytes(),
                version: 0,
            };
            self.io.datagram(to, &reply.encode(&message_id));
        }
    }

    fn try_adopt(&mut self, universe: Universe) -> Result<String, String> {
        let mine = self.ctx.universe();
        if universe.tag() == mine.tag() {
            return Ok(format!("adopted {} (already held)", universe.version));
        }
        if universe.version == mine.version && universe.member(self.ctx.name()).is_none() {
            self.outsider(universe.version);
        }
        if universe.version <= mine.version {
            return Err(format!(
                "version {} is not newer than this node's {}",
                universe.version, mine.version
            ));
        }
        let new: Vec<Known> = (universe.members.iter())
            .filter(|member| self.ctx.roster.slot_of_name(&member.name).is_none())
            .map(|member| Known::resolve(&member.name).ok_or_else(|| format!("cannot resolve {}", member.name)))
            .collect::<Result<_, _>>()?;
        if self.ctx.roster.len() + new.len() > SLOTS_MAX {
            return Err(format!(
                "this node has known {} nodes since it started and can know {SLOTS_MAX}: restart it",
                self.ctx.roster.len()
            ));
        }
        if let Some(disk) = &self.disk {
            universe_file::save(&**disk, &universe)
                .map_err(|e| format!("cannot keep it in the data directory: {e}"))?;
        }
        for known in new {
            self.ctx.roster.add(known);
        }
        self.take(universe);
        Ok(format!("adopted {}", self.ctx.universe().version))
    }

    /// A peer holds another universe of this node's version, one that
    /// does not list this node: the cluster never adopted the servers file
    /// this node started with. Until a newer universe lists it, it serves
    /// no key (clients are asked to wait), rather than answer from an
    /// empty store.
    fn outsider(&self, version: u64) {
        if !self.ctx.outsider.swap(true, Ordering::Relaxed) {
            log!(
                "outsider",
                "a peer's universe {version} does not list this node: serving no key until a universe lists it (`run/reload` a servers file that does)"
            );
        }
    }

    /// Makes `universe` this node's.
    fn take(&mut self, universe: Universe) {
        // Placement ranks slots: a member without one would hold nothing.
        crate::invariant!(
            (universe.members.iter()).all(|member| self.ctx.roster.slot_of_name(&member.name).is_some()),
            "universe {} names a node without a slot",
            universe.version
        );
        let now = self.now_ms();
        self.universe_taken_ms = Some(now);
        let me = universe.member(self.ctx.name()).cloned();
        let was_outsider = self.ctx.outsider.swap(false, Ordering::Relaxed);
        let served = !self.ctx.view().leaving && !was_outsider;
        let serves = me.as_ref().is_some_and(|me| !me.leaving);
        if let Some(me) = &me {
            self.ctx.stamp_id.store(me.stamp_id, Ordering::Relaxed);
        }
        let tag = universe.tag();
        let (version, serving, leaving) = (
            universe.version,
            universe.serving_count(),
            universe.members.len() - universe.serving_count(),
        );
        self.placement = placement(&self.ctx.roster, &universe, self.placement.replicas);
        self.holding = self.placement.with_leaving_as_serving();
        *self.ctx.universe.write() = Arc::new(universe);
        let members: Vec<bool> = (0..SLOTS_MAX)
            .map(|slot| self.placement.role(slot) != Role::Absent)
            .collect();
        self.membership.set_members(&members, now);
        self.membership.set_universe(tag);
        self.spread.universe_pushes.fill((0, 0));
        let counters = &self.ctx.counters;
        counters.universes_adopted.fetch_add(1, Ordering::Relaxed);
        counters.set(&counters.universe_version, version);
        let role = match me {
            Some(me) if !me.leaving => "serving",
            Some(_) => "leaving: handing its buckets to the others, then exiting",
            None => "not a member: serving nothing until a universe lists it (run/reload)",
        };
        counters.set(&counters.leaving, u64::from(role != "serving"));
        log!(
            "universe",
            "adopted universe {version}: {serving} serving, {leaving} leaving; this node {role}"
        );
        // A node that starts serving (it was outside the universe, or
        // leaving) knows nothing of the buckets it takes, nor who held
        // them: it catches up on all of them as a starting node does, and
        // coordinates none before.
        let catch_up = serves && !served;
        if catch_up {
            self.membership.set_ready(false);
            self.pulls_started = Some((now, self.transfer_totals()));
            self.pulls_wait_until_ms = now + super::STARTUP_GRACE_MS;
        }
        if serves && !self.membership.is_ready() {
            // Joining a running cluster: it holds none of the writes made
            // so far. Gossiped *behind*, it coordinates nothing even where
            // every node ranked for a bucket is new (they wait for one that
            // is ready), and the nodes that hold the buckets now are among
            // the sources of its catch-up.
            self.membership.set_behind();
        }
        self.publish(catch_up);
    }

    /// Sends this node's universe to members that gossip an older one (once
    /// per [`PUSH_INTERVAL_MS`]), or have not gossiped to this node since it
    /// took it (with the interval doubling per push, up to
    /// [`PUSH_BACKOFF_MAX`] doublings: one that is down, or just slow to
    /// pick this node as a gossip target, is not flooded), at most
    /// [`PUSHES_PER_ROUND`] a round. A servers file's universe (version 0)
    /// is nobody's newer one: never pushed.
    pub(super) fn pass_universe_on(&mut self, now: u64) {
        let universe = self.ctx.universe();
        if universe.version == 0 {
            return;
        }
        let n = self.ctx.roster.len();
        let mut message = None;
        let mut sent = 0;
        for step in 0..n {
            let slot = (self.spread.push_cursor + step) % n;
            let theirs = self.membership.peer_universe(slot);
            let (next_ms, pushes) = self.spread.universe_pushes[slot];
            let needs = theirs.is_none_or(|theirs| theirs.version < universe.version);
            if slot == self.ctx.self_index || self.placement.role(slot) == Role::Absent || !needs || now < next_ms {
                continue;
            }
            let interval = if theirs.is_none() {
                PUSH_INTERVAL_MS << pushes.min(PUSH_BACKOFF_MAX)
            } else {
                PUSH_INTERVAL_MS
            };
            self.spread.universe_pushes[slot] = (now + interval, pushes + 1);
            let message = message.get_or_insert_with(|| Internal::Universe((*universe).clone()));
            self.ctx.send(&*self.io, slot, message);
            sent += 1;
            if sent == PUSHES_PER_ROUND {
                self.spread.push_cursor = (slot + 1) % n;
                return;
            }
        }
    }

    /// A node this node's universe does not list gossiped to it: it is told
    /// this node's universe when that is newer than its own, or another of
    /// the same version (then it learns it is outside the cluster).
    pub(super) fn tell_stranger(&mut self, id: u64, addr: SocketAddr, theirs: UniverseTag, now: u64) {
        let universe = self.ctx.universe();
        let mine = universe.tag();
        let conflicting = theirs.version == mine.version && theirs.hash != mine.hash;
        if !theirs.older_than(&mine) && !conflicting {
            return;
        }
        while let Some(&(_, at)) = self.spread.strangers_told.front()
            && now >= at + PUSH_INTERVAL_MS
        {
            self.spread.strangers_told.pop_front();
        }
        if self.spread.strangers_told.len() >= STRANGERS_MAX
            || self.spread.strangers_told.iter().any(|&(told, _)| told == id)
        {
            return;
        }
        self.spread.strangers_told.push_back((id, now));
        let message = Internal::Universe((*universe).clone());
        self.io.datagram(addr, &self.ctx.encode_for(id, &message));
    }

    /// After a retain pass: whether this node, not a serving member, has
    /// handed off and dropped everything, and no bucket needs it any more;
    /// then it syncs and exits.
    pub(super) fn leave_when_drained(&mut self, needed: bool) {
        // A leaving member exits; a node the universe does not list waits
        // for one that does (it may be new, and the reload that adds it
        // not yet here).
        let leaving = self.ctx.universe().member(self.ctx.name()).is_some_and(|me| me.leaving);
        if !leaving {
            self.spread.drained_passes = 0;
            return;
        }
        let empty = self
            .ctx
            .digests
            .iter()
            .all(|digest| digest.load(Ordering::Relaxed) == 0);
        self.spread.drained_passes = if empty && !needed {
            self.spread.drained_passes + 1
        } else {
            0
        };
        if self.spread.drained_passes >= DRAINED_PASSES {
            log!(
                "left",
                "every bucket this node held has its replicas elsewhere and its store is empty: exiting"
            );
            self.io.shutdown();
        }
    }
}

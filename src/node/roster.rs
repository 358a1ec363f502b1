//! The nodes this node has known since it started, each in a slot of its
//! own: the small index every per-peer table of the node uses (views,
//! membership, replay windows, outboxes, streams). A node's slot is given
//! the first time a universe names it and kept for the life of the
//! process, whatever later universes do, so that no table is ever
//! renumbered; slots are this node's own business (node messages name
//! nodes by [`NodeId`], a hash of their names).
//!
//! Append-only and lock-free to read: the cluster thread adds, every other
//! thread looks up (the event loop, for each node datagram).

use crate::cluster::universe::NodeId;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};

/// Nodes one process can know of: the largest universe, and room for
/// universes to change around it. A process that meets more names than
/// this refuses the universe that names them (restarting it starts afresh).
pub const SLOTS_MAX: usize = 256;
/// Entries of the id index: a power of two, at most half full.
const INDEX_ENTRIES: usize = 2 * SLOTS_MAX;

/// One node this node knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// As written in the servers file.
    pub name: String,
    pub addr: SocketAddr,
    pub id: NodeId,
}

impl Known {
    /// The node named `name`, at the address the name resolves to.
    pub fn resolve(name: &str) -> Option<Known> {
        Some(Known {
            name: name.to_string(),
            addr: crate::cluster::servers::resolve(name)?,
            id: crate::cluster::universe::node_id(name),
        })
    }
}

pub struct Roster {
    slots: Box<[OnceLock<Known>]>,
    len: AtomicUsize,
    /// Open addressing from id to slot + 1 (0: empty); ids are written
    /// after their slots, so a reader that finds an id finds its slot.
    index_ids: Box<[AtomicU64]>,
    index_slots: Box<[AtomicU16]>,
    adding: Mutex<()>,
}

impl Roster {
    /// A roster of the nodes of a servers file or universe, by name, in
    /// their order; names that do not resolve are left out.
    pub fn of_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Roster {
        Roster::new(names.into_iter().filter_map(Known::resolve))
    }

    /// A roster of these nodes, in this order (slot 0 first).
    pub fn new(nodes: impl IntoIterator<Item = Known>) -> Roster {
        let roster = Roster {
            slots: (0..SLOTS_MAX).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            index_ids: (0..INDEX_ENTRIES).map(|_| AtomicU64::new(0)).collect(),
            index_slots: (0..INDEX_ENTRIES).map(|_| AtomicU16::new(0)).collect(),
            adding: Mutex::new(()),
        };
        for known in nodes {
            roster.add(known);
        }
        roster
    }

    /// Slots given so far.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, slot: usize) -> Option<&Known> {
        self.slots.get(slot)?.get()
    }

    pub fn addr(&self, slot: usize) -> Option<SocketAddr> {
        self.get(slot).map(|known| known.addr)
    }

    pub fn id(&self, slot: usize) -> Option<NodeId> {
        self.get(slot).map(|known| known.id)
    }

    /// The slot of the node with this id, if this node knows it.
    pub fn slot_of(&self, id: NodeId) -> Option<usize> {
        let mut at = (id as usize) & (INDEX_ENTRIES - 1);
        for _ in 0..INDEX_ENTRIES {
            match self.index_ids[at].load(Ordering::Acquire) {
                0 => return None,
                found if found == id => {
                    return (self.index_slots[at].load(Ordering::Acquire) as usize).checked_sub(1);
                }
                _ => at = (at + 1) & (INDEX_ENTRIES - 1),
            }
        }
        None
    }

    pub fn slot_of_name(&self, name: &str) -> Option<usize> {
        self.slot_of(crate::cluster::universe::node_id(name))
    }

    /// The slot of `known` (a node known already keeps its own); `None`
    /// when every slot is taken, or its id is 0 (no name hashes to it in
    /// practice; the index reserves it).
    pub fn add(&self, known: Known) -> Option<usize> {
        let _adding = self.adding.lock();
        if let Some(slot) = self.slot_of(known.id) {
            return Some(slot);
        }
        let slot = self.len();
        if slot == SLOTS_MAX || known.id == 0 {
            return None;
        }
        let id = known.id;
        if self.slots[slot].set(known).is_err() {
            return None;
        }
        let mut at = (id as usize) & (INDEX_ENTRIES - 1);
        while self.index_ids[at].load(Ordering::Acquire) != 0 {
            at = (at + 1) & (INDEX_ENTRIES - 1);
        }
        self.index_slots[at].store(slot as u16 + 1, Ordering::Release);
        self.index_ids[at].store(id, Ordering::Release);
        self.len.store(slot + 1, Ordering::Release);
        crate::invariant!(
            self.slot_of(id) == Some(slot),
            "node {id:x} added in slot {slot}, its id finds {:?}",
            self.slot_of(id)
        );
        Some(slot)
    }
}

impl std::fmt::Debug for Roster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries((0..self.len()).filter_map(|slot| self.get(slot)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::universe::node_id;

    fn known(port: u16) -> Known {
        let name = format!("127.0.0.1:{port}");
        Known {
            addr: name.parse().unwrap(),
            id: node_id(&name),
            name,
        }
    }

    #[test]
    fn a_node_keeps_its_slot_and_new_ones_are_appended() {
        let roster = Roster::new([known(4000), known(4001)]);
        assert_eq!(roster.len(), 2);
        assert_eq!(roster.slot_of_name("127.0.0.1:4001"), Some(1));
        assert_eq!(roster.add(known(4001)), Some(1), "known already");
        assert_eq!(roster.add(known(4005)), Some(2));
        assert_eq!(roster.addr(2), Some("127.0.0.1:4005".parse().unwrap()));
        assert_eq!(roster.slot_of(node_id("127.0.0.1:4999")), None);
        assert_eq!(roster.get(3), None);
        assert_eq!(roster.get(SLOTS_MAX + 5), None);
    }

    #[test]
    fn every_slot_is_found_by_id_and_a_full_roster_refuses_more() {
        let roster = Roster::new([]);
        for port in 0..SLOTS_MAX as u16 {
            assert_eq!(roster.add(known(10_000 + port)), Some(usize::from(port)));
        }
        for port in 0..SLOTS_MAX as u16 {
            assert_eq!(roster.slot_of(known(10_000 + port).id), Some(usize::from(port)));
        }
        assert_eq!(roster.add(known(9_999)), None);
        assert_eq!(roster.len(), SLOTS_MAX);
    }
}

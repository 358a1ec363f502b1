//! Write stamps: a hybrid logical clock reading plus the coordinating node,
//! packed in one `u64` so that comparing two stamps is one integer compare
//! and every stored record carries only 8 bytes of ordering.
//!
//! Layout, most significant first: 40 bits of milliseconds since
//! [`EPOCH_UNIX_MS`] (34 years), 16 bits of logical counter, 8 bits of node
//! index. Replicas keep the record with the greatest stamp (last writer wins);
//! the node bits make two coordinators' stamps distinct.

use std::time::{SystemTime, UNIX_EPOCH};

/// 2024-01-01T00:00:00Z: stamps count from here to fit 40 bits.
pub const EPOCH_UNIX_MS: u64 = 1_704_067_200_000;
const NODE_BITS: u32 = 8;
const COUNTER_BITS: u32 = 16;
const MS_SHIFT: u32 = NODE_BITS + COUNTER_BITS;
/// Node indexes must fit the stamp's node bits.
pub const NODES_MAX: usize = 1 << NODE_BITS;
/// The largest (millis, counter) a clock holds: shifted past the node bits
/// it still fits 64 bits.
const LAST_MAX: u64 = (1 << (64 - NODE_BITS)) - 1;

/// A write's position in the last-writer-wins order. `Stamp(0)` is older than
/// every real write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(pub u64);

impl Stamp {
    /// The oldest stamp of a given millisecond.
    pub fn from_millis(ms: u64) -> Stamp {
        Stamp(ms << MS_SHIFT)
    }

    pub fn millis(self) -> u64 {
        self.0 >> MS_SHIFT
    }

    pub fn node(self) -> u8 {
        self.0 as u8
    }
}

/// Milliseconds since [`EPOCH_UNIX_MS`] by the wall clock (0 if the clock is
/// set before it).
pub fn wall_millis() -> u64 {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    unix_ms.saturating_sub(EPOCH_UNIX_MS)
}

/// A hybrid logical clock owned by one thread: stamps it issues are strictly
/// increasing, never behind the wall clock, and never behind any stamp it has
/// observed (so a write coordinated after seeing another node's stamp wins
/// over it even if this host's clock is behind).
#[derive(Debug)]
pub struct Clock {
    node: u8,
    /// Last issued or observed (millis, counter), without the node bits.
    last: u64,
}

impl Clock {
    pub fn new(node: u8) -> Clock {
        Clock { node, last: 0 }
    }

    /// A new stamp, greater than every stamp issued or observed so far, as
    /// long as the clock is not saturated (2^40 ms after the epoch, or a
    /// stamp that far observed: node messages carrying one are refused).
    /// Saturated, it repeats its last stamp rather than wrap around.
    pub fn stamp(&mut self, wall_ms: u64) -> Stamp {
        let wall = wall_ms.min(LAST_MAX >> COUNTER_BITS) << COUNTER_BITS;
        let before = self.last;
        self.last = wall.max(self.last.saturating_add(1)).min(LAST_MAX);
        // Two writes of one key by this node are never stamped alike.
        crate::invariant!(
            self.last > before || before == LAST_MAX,
            "a stamp issued at {} after {before}",
            self.last
        );
        Stamp(self.last << NODE_BITS | u64::from(self.node))
    }

    /// Stamps from now on carry `node` (the universe may give this node
    /// another stamp id; the clock's order is unaffected).
    pub fn set_node(&mut self, node: u8) {
        self.node = node;
    }

    /// Moves the clock past a stamp seen from another node.
    pub fn observe(&mut self, seen: Stamp) {
        let before = self.last;
        self.last = self.last.max(seen.0 >> NODE_BITS);
        crate::invariant!(
            self.last >= before,
            "the clock went back from {before} to {}",
            self.last
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_increase_within_one_millisecond_and_carry_the_node() {
        let mut clock = Clock::new(7);
        let a = clock.stamp(1000);
        let b = clock.stamp(1000);
        assert!(b > a);
        assert_eq!((a.millis(), a.node()), (1000, 7));
        assert_eq!(b.millis(), 1000);
    }

    #[test]
    fn stamps_never_go_back_when_the_wall_clock_does() {
        let mut clock = Clock::new(1);
        let a = clock.stamp(5000);
        let b = clock.stamp(4000);
        assert!(b > a);
    }

    #[test]
    fn observed_remote_stamp_is_overtaken() {
        let mut slow = Clock::new(1);
        let mut fast = Clock::new(2);
        let remote = fast.stamp(9000);
        slow.observe(remote);
        assert!(slow.stamp(100) > remote);
    }

    #[test]
    fn an_older_stamp_observed_changes_nothing() {
        let mut clock = Clock::new(1);
        let issued = clock.stamp(9000);
        clock.observe(Stamp::from_millis(10));
        assert!(clock.stamp(100) > issued);
    }

    #[test]
    fn a_saturated_clock_repeats_instead_of_wrapping() {
        let mut clock = Clock::new(3);
        clock.observe(Stamp(u64::MAX));
        let a = clock.stamp(1000);
        assert_eq!(a, Stamp(LAST_MAX << NODE_BITS | 3));
        assert_eq!(clock.stamp(u64::MAX), a, "no wrap to small stamps");
    }

    #[test]
    fn counter_overflow_carries_into_milliseconds() {
        let mut clock = Clock::new(0);
        let mut last = clock.stamp(1);
        for _ in 0..70_000 {
            let next = clock.stamp(1);
            assert!(next > last);
            last = next;
        }
        assert_eq!(last.millis(), 2);
    }
}

//! Whether an authenticated message is new: a MAC proves who signed a
//! message, not that it is the first time it arrives. One `Freshness` per
//! receiving channel (the UDP socket, the TCP streams) remembers, per
//! sender (by the receiver's slot for it), its latest incarnation and
//! which sequence numbers it has seen, and refuses:
//! - a message signed more than [`CLOCK_SKEW_MS_MAX`] away from now, however
//!   it is numbered: a copy captured earlier, replayed after a delete was
//!   collected, after the sender restarted or after a WIPEOUT, or one that
//!   sat in a suspended node's queue;
//! - a message of an older incarnation than one already seen (the sender
//!   restarted since);
//! - a sequence number already seen, or too far behind the highest seen to
//!   tell ([`WINDOW`]).
//!
//! Senders number their messages per receiver and channel, so a receiver
//! sees one sender's numbers nearly in order; what is rejected as too old
//! was delayed by more than [`WINDOW`] later messages, and its sender
//! retransmits what matters under a new number.
//!
//! Operators (`dynakv ctl`: short-lived processes, many at once, each with
//! a random incarnation) send few messages: those seen within the clock
//! window are remembered one by one, up to [`OPERATOR_MESSAGES_MAX`].

use crate::cluster::internal::{CLOCK_SKEW_MS_MAX, Envelope, OPERATOR};
use crate::storage::hash::fmix64;
use std::collections::{HashSet, VecDeque};

/// Sequence numbers remembered behind the highest one seen, per sender.
pub const WINDOW: u64 = 1024;
const WINDOW_WORDS: usize = (WINDOW / 64) as usize;
/// Operator messages remembered at once: a message is kept for twice the
/// clock window (after that its send time alone refuses it); beyond this
/// many in that time (about 200 a second) operator messages are refused.
pub const OPERATOR_MESSAGES_MAX: usize = 4096;

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stale {
    /// Signed too long ago, or ahead of this node's clock.
    Expired,
    /// From an incarnation older than one already heard from.
    OldIncarnation,
    /// A sequence number seen already, or too far behind to tell.
    Replayed,
}

/// The sequence numbers seen from one incarnation of one sender.
#[derive(Clone, Debug, Default)]
struct Window {
    incarnation: u64,
    /// The highest sequence number accepted (0: none yet).
    highest: u64,
    /// Bit `n % WINDOW`: number `n`, for `n` in `highest - WINDOW + 1 ..= highest`.
    seen: [u64; WINDOW_WORDS],
}

impl Window {
    fn bit(seq: u64) -> (usize, u64) {
        let at = seq % WINDOW;
        ((at / 64) as usize, 1 << (at % 64))
    }

    fn admit(&mut self, seq: u64) -> Result<(), Stale> {
        if seq == 0 || seq + WINDOW <= self.highest {
            return Err(Stale::Replayed);
        }
        let highest_before = self.highest;
        if seq > self.highest {
            // Forget the numbers that fall out of the window.
            if seq - self.highest >= WINDOW {
                self.seen = [0; WINDOW_WORDS];
            } else {
                for old in self.highest + 1..=seq {
                    let (word, mask) = Window::bit(old);
                    self.seen[word] &= !mask;
                }
            }
            self.highest = seq;
        }
        let (word, mask) = Window::bit(seq);
        if self.seen[word] & mask != 0 {
            return Err(Stale::Replayed);
        }
        self.seen[word] |= mask;
        // A lower highest would take old numbers again: replays.
        crate::invariant!(
            self.highest >= highest_before && self.highest >= seq,
            "the highest number taken went from {highest_before} to {} at {seq}",
            self.highest
        );
        Ok(())
    }
}

/// Whether a message was signed within the clock window of now: all a
/// message whose effect is idempotent needs (a universe, adopted only if
/// newer), from a sender this node may not know yet.
pub fn within_clock_window(envelope: &Envelope, now_unix_ms: u64) -> bool {
    envelope.sent_unix_ms.abs_diff(now_unix_ms) <= CLOCK_SKEW_MS_MAX
}

/// What one receiving channel knows of every sender.
#[derive(Debug)]
pub struct Freshness {
    nodes: Vec<Window>,
    /// Operator messages seen (a hash of incarnation and number), oldest
    /// first with when they were seen, and the same as a set.
    operator_seen: VecDeque<(u64, u64)>,
    operator_set: HashSet<u64>,
}

impl Freshness {
    /// For senders in slots `0..nodes`.
    pub fn new(nodes: usize) -> Freshness {
        Freshness {
            nodes: vec![Window::default(); nodes],
            operator_seen: VecDeque::new(),
            operator_set: HashSet::new(),
        }
    }

    /// Accepts a message's envelope (already authenticated) if it is new,
    /// and remembers it: from an operator, or from the node in `slot`.
    /// `now_unix_ms` is this node's wall clock.
    pub fn admit(&mut self, slot: Option<usize>, envelope: &Envelope, now_unix_ms: u64) -> Result<(), Stale> {
        if !within_clock_window(envelope, now_unix_ms) {
            return Err(Stale::Expired);
        }
        if envelope.sender == OPERATOR {
            return self.admit_operator(envelope, now_unix_ms);
        }
        let Some(window) = slot.and_then(|slot| self.nodes.get_mut(slot)) else {
            return Err(Stale::Replayed);
        };
        if envelope.incarnation < window.incarnation {
            return Err(Stale::OldIncarnation);
        }
        if envelope.incarnation > window.incarnation {
            // The sender restarted: its numbers start again.
            *window = Window {
                incarnation: envelope.incarnation,
                ..Window::default()
            };
        }
        window.admit(envelope.seq)
    }

    fn admit_operator(&mut self, envelope: &Envelope, now_unix_ms: u64) -> Result<(), Stale> {
        while let Some(&(id, seen_ms)) = self.operator_seen.front()
            && seen_ms + 2 * CLOCK_SKEW_MS_MAX < now_unix_ms
        {
            self.operator_seen.pop_front();
            self.operator_set.remove(&id);
        }
        let id = fmix64(envelope.incarnation ^ fmix64(envelope.seq));
        if self.operator_set.contains(&id) || self.operator_seen.len() >= OPERATOR_MESSAGES_MAX {
            return Err(Stale::Replayed);
        }
        self.operator_set.insert(id);
        self.operator_seen.push_back((id, now_unix_ms));
        // One id in the set per entry of the list: one left in the set
        // alone would refuse a new message forever, one in the list alone
        // would let a replay in.
        crate::invariant!(
            self.operator_set.len() == self.operator_seen.len(),
            "{} operator ids in the set, {} in the list",
            self.operator_set.len(),
            self.operator_seen.len()
        );
        crate::invariant!(
            self.operator_seen.len() <= OPERATOR_MESSAGES_MAX,
            "{} operator messages remembered, at most {OPERATOR_MESSAGES_MAX}",
            self.operator_seen.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    /// A message from the node in slot `sender` (its id: the slot plus
    /// one), or from an operator.
    fn from(sender: u64, incarnation: u64, seq: u64, sent_unix_ms: u64) -> (Option<usize>, Envelope) {
        let slot = (sender != OPERATOR).then_some(sender as usize);
        let envelope = Envelope {
            sender: if sender == OPERATOR { OPERATOR } else { sender + 1 },
            to: 0,
            incarnation,
            seq,
            sent_unix_ms,
        };
        (slot, envelope)
    }

    fn admit(fresh: &mut Freshness, (slot, envelope): (Option<usize>, Envelope), now: u64) -> Result<(), Stale> {
        fresh.admit(slot, &envelope, now)
    }

    #[test]
    fn each_number_is_taken_once_in_any_order_within_the_window() {
        let mut fresh = Freshness::new(3);
        for seq in [5, 3, 4, 1, 2, 9] {
            assert_eq!(admit(&mut fresh, from(1, 7, seq, NOW), NOW), Ok(()), "seq {seq}");
        }
        for seq in [5, 3, 9, 1] {
            assert_eq!(
                admit(&mut fresh, from(1, 7, seq, NOW), NOW),
                Err(Stale::Replayed),
                "seq {seq} again"
            );
        }
        assert_eq!(
            admit(&mut fresh, from(1, 7, 0, NOW), NOW),
            Err(Stale::Replayed),
            "0 is never sent"
        );
        // Far ahead: the window slides; what fell out of it is refused.
        assert_eq!(admit(&mut fresh, from(1, 7, 9 + WINDOW, NOW), NOW), Ok(()));
        assert_eq!(admit(&mut fresh, from(1, 7, 8, NOW), NOW), Err(Stale::Replayed));
        assert_eq!(admit(&mut fresh, from(1, 7, 10, NOW), NOW), Ok(()), "just inside");
        assert_eq!(
            admit(&mut fresh, from(2, 7, 5, NOW), NOW),
            Ok(()),
            "another sender counts apart"
        );
    }

    #[test]
    fn old_or_future_send_times_are_refused_however_numbered() {
        let mut fresh = Freshness::new(3);
        let late = NOW - CLOCK_SKEW_MS_MAX - 1;
        let early = NOW + CLOCK_SKEW_MS_MAX + 1;
        assert_eq!(admit(&mut fresh, from(1, 7, 1, late), NOW), Err(Stale::Expired));
        assert_eq!(admit(&mut fresh, from(1, 7, 2, early), NOW), Err(Stale::Expired));
        assert_eq!(admit(&mut fresh, from(1, 7, 3, NOW - CLOCK_SKEW_MS_MAX), NOW), Ok(()));
    }

    #[test]
    fn a_restart_starts_the_numbers_again_and_ends_the_old_incarnation() {
        let mut fresh = Freshness::new(3);
        assert_eq!(admit(&mut fresh, from(1, 100, 50, NOW), NOW), Ok(()));
        assert_eq!(admit(&mut fresh, from(1, 200, 1, NOW), NOW), Ok(()), "restarted");
        assert_eq!(
            admit(&mut fresh, from(1, 100, 51, NOW), NOW),
            Err(Stale::OldIncarnation)
        );
        assert_eq!(admit(&mut fresh, from(1, 200, 1, NOW), NOW), Err(Stale::Replayed));
        assert_eq!(
            admit(&mut fresh, from(9, 1, 1, NOW), NOW),
            Err(Stale::Replayed),
            "no such node"
        );
    }

    #[test]
    fn operator_messages_are_taken_once_and_a_flood_of_them_is_bounded() {
        let mut fresh = Freshness::new(3);
        assert_eq!(admit(&mut fresh, from(OPERATOR, 11, 1, NOW), NOW), Ok(()));
        assert_eq!(
            admit(&mut fresh, from(OPERATOR, 22, 1, NOW), NOW),
            Ok(()),
            "another ctl at once"
        );
        assert_eq!(admit(&mut fresh, from(OPERATOR, 11, 2, NOW), NOW), Ok(()));
        assert_eq!(admit(&mut fresh, from(OPERATOR, 11, 1, NOW), NOW), Err(Stale::Replayed));
        for session in 100..100 + OPERATOR_MESSAGES_MAX as u64 {
            let _ = admit(&mut fresh, from(OPERATOR, session, 1, NOW), NOW);
        }
        assert_eq!(
            admit(&mut fresh, from(OPERATOR, 1, 1, NOW), NOW),
            Err(Stale::Replayed),
            "bounded"
        );
        let later = NOW + 2 * CLOCK_SKEW_MS_MAX + 1;
        assert_eq!(
            admit(&mut fresh, from(OPERATOR, 1, 1, later), later),
            Ok(()),
            "old ones forgotten"
        );
        assert_eq!(
            admit(&mut fresh, from(OPERATOR, 11, 1, NOW), later),
            Err(Stale::Expired)
        );
    }
}

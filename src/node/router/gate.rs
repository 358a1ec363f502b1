//! The gate every node or operator datagram passes before anything of it
//! is used: signed with the cluster's secret, meant for this node, in
//! range, from a member of this node's universe (or an operator), and new
//! (not a replay, within the clock window). A universe is the one message
//! taken from a sender this node does not know yet: it is adopted only if
//! newer, so a copy changes nothing, and signed within the clock window is
//! all it needs.

use crate::cluster::freshness::{self, Freshness};
use crate::cluster::internal::{self, Envelope, Internal, OPERATOR};
use crate::cluster::ring::View;
use crate::cluster::universe::{NodeId, Universe, UniverseTag};
use crate::node::context::NodeContext;
use crate::node::counters::Reject;
use crate::node::roster::SLOTS_MAX;
use parking_lot::Mutex;
use std::sync::Arc;

/// The slot [`Verdict::Messages`] names for an operator, who has none.
pub const OPERATOR_SLOT: usize = usize::MAX;

/// What the gate lets through, or why not.
#[derive(Debug)]
pub enum Verdict {
    /// A universe, to adopt if newer.
    Universe(Box<Universe>),
    /// Messages from the member in slot `sender` (or [`OPERATOR_SLOT`]), a
    /// batch unpacked.
    Messages { sender: usize, messages: Vec<Internal> },
    /// Refused, counted by why; a fresh gossip of a node of another
    /// universe names it (the cluster core may tell it this node's).
    Refused {
        why: Reject,
        stranger: Option<(NodeId, UniverseTag)>,
    },
}

/// The replay windows of every sender, shared by every receiving loop of
/// the node: a replay must be refused whichever socket it reaches.
#[derive(Clone)]
pub struct Gate {
    freshness: Arc<Mutex<Freshness>>,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            freshness: Arc::new(Mutex::new(Freshness::new(SLOTS_MAX))),
        }
    }
}

impl Gate {
    /// Checks one internal datagram (see the module's doc).
    pub fn check(&self, ctx: &NodeContext, view: &View, datagram: &[u8]) -> Verdict {
        let bounds = ctx.bounds();
        let (envelope, message) = match internal::decode(&ctx.secret, ctx.self_id, &bounds, datagram) {
            Ok(decoded) => decoded,
            Err(error) => return refused(error.into()),
        };
        let now_unix_ms = bounds.now_unix_ms;
        if let Internal::Universe(universe) = message {
            if !freshness::within_clock_window(&envelope, now_unix_ms) {
                return refused(Reject::Stale);
            }
            return Verdict::Universe(Box::new(universe));
        }
        let slot = member_slot(ctx, view, &envelope);
        if slot.is_none() && envelope.sender != OPERATOR {
            let stranger = match message {
                Internal::Gossip { universe, .. } if freshness::within_clock_window(&envelope, now_unix_ms) => {
                    Some((envelope.sender, universe))
                }
                _ => None,
            };
            return Verdict::Refused {
                why: Reject::UnknownSender,
                stranger,
            };
        }
        if self.freshness.lock().admit(slot, &envelope, now_unix_ms).is_err() {
            return refused(Reject::Stale);
        }
        let messages = match message {
            Internal::Batch(messages) => messages,
            message => vec![message],
        };
        Verdict::Messages {
            sender: slot.unwrap_or(OPERATOR_SLOT),
            messages,
        }
    }
}

fn refused(why: Reject) -> Verdict {
    Verdict::Refused { why, stranger: None }
}

/// The slot of the member of this node's universe that signed `envelope`.
fn member_slot(ctx: &NodeContext, view: &View, envelope: &Envelope) -> Option<usize> {
    let slot = ctx.roster.slot_of(envelope.sender)?;
    view.is_member(slot).then_some(slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::internal::CLOCK_SKEW_MS_MAX;
    use crate::cluster::ring::{Liveness, Placement};
    use crate::cluster::secret::Secret;
    use crate::node::context::{Channel, NodeClock};

    const NOW_MS: u64 = 1_800_000_000_000;

    fn names(count: u16) -> Vec<String> {
        (1..=count).map(|port| format!("127.0.0.1:{port}")).collect()
    }

    /// Node `index` of a cluster of `names` under `secret`, at [`NOW_MS`].
    fn node(index: usize, names: &[String], secret: &[u8]) -> (NodeContext, View) {
        let view = Placement::new(names, 1).view(index, Liveness::ready(vec![true; names.len()]));
        let clock = NodeClock::set_from_outside(NOW_MS);
        let ctx = NodeContext::of_servers(index, names, Secret::from_bytes(secret), view.clone(), clock);
        (ctx, view)
    }

    fn held() -> Internal {
        Internal::Held {
            bucket: 7,
            digest: Default::default(),
        }
    }

    /// Gossip of `sender`, which must carry its own heartbeat.
    fn gossip(sender: &NodeContext) -> Internal {
        Internal::Gossip {
            universe: UniverseTag { version: 3, hash: 9 },
            heartbeats: vec![(sender.self_id, Default::default())],
        }
    }

    fn why(verdict: Verdict) -> (Reject, Option<(NodeId, UniverseTag)>) {
        match verdict {
            Verdict::Refused { why, stranger } => (why, stranger),
            other => panic!("let through: {other:?}"),
        }
    }

    #[test]
    fn a_members_message_passes_once_and_its_replay_is_refused() {
        let names = names(2);
        let (receiver, view) = node(0, &names, b"secret");
        let (sender, _) = node(1, &names, b"secret");
        let datagram = sender.encode(0, Channel::Datagram, &held());
        let gate = Gate::default();
        match gate.check(&receiver, &view, &datagram) {
            Verdict::Messages { sender, messages } => {
                assert_eq!(sender, 1);
                assert!(matches!(messages[..], [Internal::Held { bucket: 7, .. }]));
            }
            other => panic!("refused: {other:?}"),
        }
        assert_eq!(why(gate.check(&receiver, &view, &datagram)).0, Reject::Stale);
        // A sibling loop shares the windows: the replay fails there too.
        assert_eq!(why(gate.clone().check(&receiver, &view, &datagram)).0, Reject::Stale);
    }

    #[test]
    fn a_batch_is_let_through_unpacked() {
        let names = names(2);
        let (receiver, view) = node(0, &names, b"secret");
        let (sender, _) = node(1, &names, b"secret");
        let datagram = sender.encode(0, Channel::Datagram, &Internal::Batch(vec![held(), held()]));
        match Gate::default().check(&receiver, &view, &datagram) {
            Verdict::Messages { messages, .. } => assert_eq!(messages.len(), 2),
            other => panic!("refused: {other:?}"),
        }
    }

    #[test]
    fn another_secret_a_flipped_bit_or_another_receiver_is_refused() {
        let names = names(3);
        let (receiver, view) = node(0, &names, b"secret");
        let (forger, _) = node(1, &names, b"another secret");
        let gate = Gate::default();
        let forged = forger.encode(0, Channel::Datagram, &held());
        assert_eq!(why(gate.check(&receiver, &view, &forged)).0, Reject::Unsigned);
        let (sender, _) = node(1, &names, b"secret");
        let mut flipped = sender.encode(0, Channel::Datagram, &held());
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(why(gate.check(&receiver, &view, &flipped)).0, Reject::Unsigned);
        let for_node_2 = sender.encode(2, Channel::Datagram, &held());
        assert_eq!(why(gate.check(&receiver, &view, &for_node_2)).0, Reject::Misdirected);
    }

    #[test]
    fn a_message_signed_outside_the_clock_window_is_refused() {
        let names = names(2);
        let (receiver, view) = node(0, &names, b"secret");
        let (sender, _) = node(1, &names, b"secret");
        sender.clock.set(0, NOW_MS - CLOCK_SKEW_MS_MAX - 1);
        let old = sender.encode(0, Channel::Datagram, &held());
        assert_eq!(why(Gate::default().check(&receiver, &view, &old)).0, Reject::Stale);
    }

    #[test]
    fn a_node_of_another_universe_is_refused_and_named_only_by_fresh_gossip() {
        let (receiver, view) = node(0, &names(2), b"secret");
        // The same secret, a universe that also lists port 3.
        let (stranger, _) = node(2, &names(3), b"secret");
        let gate = Gate::default();
        let fresh = stranger.encode(0, Channel::Datagram, &gossip(&stranger));
        let (reason, named) = why(gate.check(&receiver, &view, &fresh));
        assert_eq!(reason, Reject::UnknownSender);
        assert_eq!(named, Some((stranger.self_id, UniverseTag { version: 3, hash: 9 })));
        let other = stranger.encode(0, Channel::Datagram, &held());
        assert_eq!(why(gate.check(&receiver, &view, &other)), (Reject::UnknownSender, None));
        stranger.clock.set(0, NOW_MS + CLOCK_SKEW_MS_MAX + 1);
        let late = stranger.encode(0, Channel::Datagram, &gossip(&stranger));
        assert_eq!(why(gate.check(&receiver, &view, &late)), (Reject::UnknownSender, None));
    }

    #[test]
    fn a_universe_is_taken_from_a_stranger_within_the_clock_window_only() {
        let (receiver, view) = node(0, &names(2), b"secret");
        let (stranger, _) = node(2, &names(3), b"secret");
        let universe = Internal::Universe(Universe::from_servers(&names(3)));
        let gate = Gate::default();
        let fresh = stranger.encode(0, Channel::Datagram, &universe);
        assert!(matches!(gate.check(&receiver, &view, &fresh), Verdict::Universe(_)));
        stranger.clock.set(0, NOW_MS - CLOCK_SKEW_MS_MAX - 1);
        let old = stranger.encode(0, Channel::Datagram, &universe);
        assert_eq!(why(gate.check(&receiver, &view, &old)).0, Reject::Stale);
    }
}

//! The thread that drives a node's [`ClusterCore`]: a round every
//! [`ROUND_MS`] of the node's clock, and shards' reports as they come.

use crate::node::cluster_core::{ClusterCore, ROUND_MS};
use crate::node::mailbox::Mailbox;
use crate::node::messages::ClusterMsg;
use crate::runtime::pause::ResumeWatch;
use std::time::Duration;

/// Gossip datagrams taken per round at most (a node gets about three).
const GOSSIP_PER_ROUND_MAX: usize = 256;

/// Runs for the life of the process. `gossip` is only looked at once per
/// round: a datagram queued there wakes nobody (150 nodes gossiping at
/// each other would otherwise wake every node's thread a dozen times per
/// round).
pub fn run(mut core: ClusterCore, now_ms: impl Fn() -> u64, inbox: Mailbox<ClusterMsg>, gossip: Mailbox<ClusterMsg>) {
    core.start();
    let mut next_round: u64 = 0;
    // This thread may run its round before the event loop sees the SIGCONT
    // (or the SIGCONT interrupts this thread's wait): either way a stop is
    // counted once, as a suspension, not first as a stall.
    let mut resume_watch = ResumeWatch::default();
    loop {
        let wait = Duration::from_millis(next_round.saturating_sub(now_ms()));
        if let Some(msg) = inbox.recv_timeout(wait) {
            core.handle(msg);
        }
        if let Some(stop) = resume_watch.resumed() {
            core.continued(stop);
        }
        if now_ms() >= next_round {
            core.round_with((0..GOSSIP_PER_ROUND_MAX).map_while(|_| gossip.try_recv()));
            next_round = now_ms() + ROUND_MS;
        }
    }
}

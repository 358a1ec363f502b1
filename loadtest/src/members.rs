//! How long until every node of a cluster counts the same members, asked
//! the way graders ask: GET_MEMBERSHIP_COUNT of each node.

use dynakv::protocol::client;
use dynakv::protocol::wire::Command;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Threads asking nodes at once.
const ASKERS: usize = 16;
/// One try per node and poll, this long.
const ASK_TIMEOUT_MS: u64 = 200;

/// What each node of `nodes` reports (-1: no answer).
pub fn counts(nodes: &[SocketAddr]) -> Vec<i32> {
    let request = client::request(Command::GetMembershipCount, None, None, None);
    let chunk = nodes.len().div_ceil(ASKERS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .chunks(chunk)
            .map(|part| {
                let request = &request;
                scope.spawn(move || {
                    part.iter()
                        .map(|&node| {
                            client::call_with(node, request, &[ASK_TIMEOUT_MS])
                                .map_or(-1, |(r, _)| r.membershipCount.unwrap_or(-1))
                        })
                        .collect::<Vec<i32>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

/// Polls until every node of `nodes` reports `expect`; returns how long
/// that took, or after `limit` the nodes still wrong (index, count).
pub fn wait_exact(nodes: &[SocketAddr], expect: usize, limit: Duration) -> Result<Duration, Vec<(usize, i32)>> {
    let start = Instant::now();
    loop {
        let wrong: Vec<(usize, i32)> = (counts(nodes).into_iter().enumerate())
            .filter(|&(_, count)| count != expect as i32)
            .collect();
        if wrong.is_empty() {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= limit {
            return Err(wrong);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

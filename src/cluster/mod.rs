//! What the nodes of a cluster agree on, and how they trust each other's
//! messages. Plain state and pure functions: time comes in as numbers.
//!
//! - [`servers`]: the servers file, where a cluster's universe starts.
//! - [`universe`]: which nodes make up the cluster, versioned, by name.
//! - [`ring`]: placement: each bucket's preference list and coordinator.
//! - [`membership`]: gossip heartbeats and failure detection.
//! - [`agreement`]: when a bucket's tombstones may be collected.
//! - [`internal`]: node-to-node messages, their MAC and field ranges;
//!   [`secret`]: the key of that MAC; [`freshness`]: replay refusal.

pub mod agreement;
pub mod freshness;
pub mod internal;
pub mod membership;
pub mod ring;
pub mod secret;
pub mod servers;
pub mod universe;

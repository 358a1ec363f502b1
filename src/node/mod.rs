//! One node's logic as state machines that take an input (a datagram, a
//! message from another part of the node, a timer) with the time from
//! [`context::NodeClock`], change their state, and send through
//! [`context::NodeIo`]. They own no socket, thread or real clock: the
//! runtime drives them in a process, the simulator drives many in one.
//!
//! - [`context`]: what every part of a node shares (identity, view,
//!   counters, clock, I/O); [`roster`]: the nodes it knows, each in a slot
//!   of its own; [`messages`]: what the parts send each other;
//!   [`outbox`]: node messages gathered per peer until a drain ends.
//! - [`router`]: every datagram that reaches the node: client requests
//!   routed or executed, node commands, node messages checked and handed on.
//! - [`shard`]: one partition of the buckets: its store, the requests it
//!   coordinates, the writes it replicates, its transfers, its anti-entropy
//!   answers, retain and WIPEOUT.
//! - [`cluster_core`]: membership, the universe, the routing view, bucket
//!   pulls, anti-entropy and retain scheduling, leaving.
//! - [`counters`]: every number a node reports, declared once.
//! - [`streams`]: transfer frames, checked and handed to shards.
//! - [`admin`]: operator reports gathered from the shards; [`admin_allow`]:
//!   who may send SHUTDOWN and WIPEOUT.
//! - [`mailbox`]: a bounded queue whose receiver parks without spinning.
//! - [`waits`]: how long a bucket's clients are asked to wait before they
//!   hear a definite answer.
//! - [`durability`]: what a node keeps on its disk and how it reads it back.
//! - [`assemble`]: one node's parts put together, its disk read back first.

pub mod admin;
pub mod admin_allow;
pub mod assemble;
pub mod cluster_core;
pub mod context;
pub mod counters;
pub mod durability;
pub mod mailbox;
pub mod messages;
pub mod outbox;
pub mod roster;
pub mod router;
pub mod shard;
pub mod streams;
pub mod waits;

//! dynakv: a Dynamo-style distributed key-value store speaking the CPEN 431
//! UDP protocol.
//!
//! # Layout
//! Folders by concern; each imports only from those listed before it.
//! - [`log`]: operator log lines; [`invariant`]: asserted invariants.
//! - [`protocol`]: the client protocol on the wire, and a client.
//! - [`storage`]: a shard's records, index, at-most-once cache, memory budget.
//! - [`cluster`]: placement, membership, tombstone agreement, node messages
//!   and their authentication.
//! - [`node`]: one node's logic as state machines (request routing, shards,
//!   the cluster core, transfer frames), free of sockets, threads and clocks.
//! - [`runtime`]: the process: command line, sockets, threads, real time.
//! - [`ops`]: operator tools (`dynakv ctl`, its JSON and Prometheus output).
//!
//! Beside the library: `loadtest/` (`dynakv-load`: benchmarks, capacity,
//! conformance), `sim/` (`dynakv-sim`: the nodes' logic on virtual time over
//! a faulty network), `fuzz/` (cargo-fuzz targets), `run/` (operator
//! scripts), `docs/` (protocol reference, command lines, measurements).

pub mod cluster;
pub mod invariant;
pub mod log;
pub mod node;
pub mod ops;
pub mod protocol;
pub mod runtime;
pub mod storage;

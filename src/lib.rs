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
//!
//! # Vocabulary
//! One name per concept, in code, docs and log lines.
//! - **bucket**: one of the 4096 slices of the key space (a key's bucket
//!   is the top bits of its hash); the unit of placement, transfer,
//!   anti-entropy and retain.
//! - **preference list**: a bucket's N best-ranked live nodes (its
//!   **replicas**); the nodes ranked after them are its **stand-ins**,
//!   which take its writes while replicas are away. A **home replica** is
//!   one of the N best-ranked of all nodes, alive or not.
//! - **coordinator**: the node that executes a key's requests, the first
//!   ready replica ([`cluster::ring::View::route`]).
//! - **ready**: caught up on every bucket it holds; **current**: ready and
//!   not pulling buckets it gained; **behind**: back from a suspension and
//!   not caught up yet; **away**: this node saw itself stopped or stalled
//!   and has not started catching up yet; **full**: its store is near its
//!   memory limit.
//! - **universe**: which nodes make up the cluster, versioned (the servers
//!   file is version 0; `ctl reload` signs the next); a node of it is
//!   **serving** or **leaving** (it takes no bucket, hands its data over,
//!   exits). A node is known by its **name** (`host:port`) and its **id**
//!   (a hash of the name) on the wire; in each node's own tables by its
//!   **slot** in that node's **roster**, given once and kept. An
//!   **outsider** is a node started with a servers file the cluster never
//!   adopted.
//! - **shard**: one partition of a node's buckets with everything private
//!   to it (store, at-most-once cache, write clock, pending writes); it runs
//!   on the event loop or on a **worker** thread. Its **store** holds the
//!   records.
//! - **stamp**: a write's place in the last-writer-wins order (hybrid
//!   logical clock and node). A **tombstone** is a delete's record.
//! - **transfer**: every entry of one bucket sent in chunks over a stream.
//!   A **pull** is a transfer a node asks for; a **push** is one sent
//!   unasked: a **repair** (anti-entropy found digests that differ) or a
//!   **hand-off** (a bucket given to its replicas by a node that no longer
//!   replicates it). **Catching up** is pulling every bucket held, after a
//!   start or a suspension.
//! - **anti-entropy**: replicas comparing bucket **digests**; **retain**:
//!   dropping what a node no longer replicates and the tombstones every
//!   replica holds.
//! - **drain**: one pass of the event loop emptying its socket; node
//!   messages to one peer leave together at its end, in **batches**.
//! - Times: a bare `_ms` is monotonic time since the node started; a
//!   wall-clock time says its epoch, `_unix_ms` or `_stamp_ms` (see
//!   [`node::context::NodeClock`]).

pub mod cluster;
pub mod invariant;
pub mod log;
pub mod node;
pub mod ops;
pub mod protocol;
pub mod runtime;
pub mod storage;

//! `dynakv-load`: benchmark and verification harness for any cluster that
//! speaks the CPEN 431 KV protocol. It takes a servers file and knows nothing
//! of the implementation behind it.
//!
//! - [`bench`]: closed-loop load with correctness checking; [`report`] prints,
//!   writes JSON and plots it.
//! - [`capacity`]: fill one node until OUT_OF_SPACE.
//! - [`check`]: the protocol as named conformance cases.
//! - [`dynamodb`]: closed-loop load on DynamoDB endpoints (JSON 1.0 over HTTP/1.1).
//! - [`echo`]: an echo server, the machine's ceiling.
//! - [`members`]: how long until every node counts the same members.
//! - [`server_cpu`]: what the servers under test spend, when they are local.
//! - [`linearizable`]: whether per-key histories of a fault-injection run are linearizable.
//! - [`histogram`], [`rng`]: latency percentiles, seeded randomness.

pub mod bench;
pub mod capacity;
pub mod check;
pub mod dynamodb;
pub mod echo;
pub mod histogram;
pub mod linearizable;
pub mod members;
pub mod report;
pub mod rng;
pub mod server_cpu;

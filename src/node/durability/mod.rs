//! What a node keeps on its disk, and how it reads it back at start. To
//! learn how a node recovers, read [`log_format`], [`journal`] and
//! [`recovery`] (and `crate::runtime::data_dir` for the files themselves).
//!
//! - [`disk`]: what the logic asks of a data directory (named files,
//!   appended, synced, renamed); the runtime's is a real directory with its
//!   identity and lock (`crate::runtime::data_dir`), the simulator's a model
//!   that loses what was not synced in a power loss.
//! - [`log_format`]: the self-checking records every journal file is made
//!   of, and the header that says whose file it is.
//! - [`journal`]: a shard's changes appended and synced before anything
//!   that depends on them leaves; snapshots that let the log be cut.
//! - [`recovery`]: the newest snapshot and the segments after it, replayed
//!   into the shards; damaged records dropped and their buckets repaired.
//! - [`universe_file`]: the universe the node last held, so a restart
//!   starts from it.

pub mod disk;
pub mod journal;
pub mod log_format;
pub mod recovery;
pub mod universe_file;

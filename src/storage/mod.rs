//! One shard's data and what it costs: records, their index, the
//! at-most-once cache, and the memory budget they all answer to. Nothing
//! here knows of sockets, threads or other nodes.
//!
//! - [`hash`]: stable key and message-id hashes; a key's bucket.
//! - [`item_key`]: the keys and record values of the DynamoDB API's items.
//! - [`stamp`]: hybrid-logical-clock write stamps (last writer wins).
//! - [`record`]: one stored key/value as a single thin-pointer allocation.
//! - [`slots`]: per-bucket chains of record pointers in recycled blocks.
//! - [`store`]: a shard's partition: records by bucket, digests, accounting.
//! - [`reply_cache`]: the at-most-once cache of mutation replies.
//! - [`memory`]: the byte budget, RSS, allocator settings.

pub mod hash;
pub mod item_key;
pub mod memory;
pub mod record;
pub mod reply_cache;
pub mod slots;
pub mod stamp;
pub mod store;

//! dynakv: a Dynamo-style distributed key-value store speaking the CPEN 431
//! UDP protocol.
//!
//! # Layout
//! - [`wire`]: the client protocol on the wire (Msg envelope, CRC, codes, limits); [`proto`] is its generated code.
//! - [`hash`]: stable key and message-id hashes; the bucket of a key.
//! - [`stamp`]: hybrid-logical-clock write stamps (last writer wins).
//! - [`record`]: one stored key/value as a single thin-pointer allocation.
//! - [`agreement`]: when a bucket's tombstones are on every replica and may be collected.
//! - [`store`]: a shard's partition: records by bucket, per-bucket digests, accounting.
//! - [`slots`]: the per-bucket chains of record pointers, in recycled fixed-size blocks.
//! - [`reply_cache`]: the at-most-once cache of mutation replies.
//! - [`memory`]: the byte budget, RSS, allocator settings.
//! - [`udp`]: socket setup and sending.
//! - [`net`]: the event loop: decode, answer node commands, batch keyed requests to shards.
//! - [`shard`]: a worker thread executing requests on its partition.
//! - [`cluster`]: membership, the routing view, bucket pulls; [`transfer`]: bucket streams over TCP.
//! - [`servers`]: the servers file; [`config`]: command-line options.
//! - [`server`]: wires a node together; [`client`]: a blocking client library.
//! - [`log`]: operator log lines.

pub mod admin;
pub mod agreement;
pub mod client;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod ctl;
pub mod freshness;
pub mod hash;
pub mod internal;
pub mod log;
pub mod mailbox;
pub mod membership;
pub mod memory;
pub mod net;
pub mod pause;
pub mod proto;
pub mod record;
pub mod reply_cache;
pub mod ring;
pub mod secret;
pub mod server;
pub mod servers;
pub mod shard;
pub mod slots;
pub mod stamp;
pub mod store;
pub mod transfer;
pub mod udp;
pub mod wire;

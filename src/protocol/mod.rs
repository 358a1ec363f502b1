//! The client protocol: what crosses the wire between clients and nodes.
//!
//! - [`wire`]: the `Msg` envelope, CRC-32, command and error codes, limits,
//!   validated requests and replies.
//! - [`codec`]: hand-written protobuf for the hot path; [`proto`] is the
//!   generated code it is checked against.
//! - [`client`]: a blocking client with the graders' retry schedule.

pub mod client;
pub mod codec;
pub mod proto;
pub mod wire;

//! The DynamoDB endpoint of a node (`--dynamodb-listen`): an HTTP event
//! loop ([`endpoint`]) hands whole requests to executor threads
//! ([`executor`]), each running its requests against the cluster through
//! a router of this node ([`cluster_client`]). Items and tables are
//! records of the node's store ([`records`]; items too large for one
//! record, [`chunked`]); [`tables`], [`items`] and
//! [`scans`] are the operations over them.

pub mod answers;
pub mod chunked;
pub mod cluster_client;
pub mod endpoint;
pub mod executor;
pub mod items;
pub mod records;
pub mod scans;
pub mod start;
pub mod tables;

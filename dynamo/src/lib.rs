//! The DynamoDB API's logic, free of sockets, threads and clocks (the node
//! calls it; the runtime moves its bytes).
//!
//! # Layout
//! - [`number`]: DynamoDB's numbers: 38 significant digits, exact.
//! - [`value`]: attribute values and items.
//! - [`error`]: the error answers, by kind, with their `__type` and status.
//! - [`limits`]: every DynamoDB limit the API enforces, with its doc page.
//! - [`json`]: attribute values and items in the wire JSON, validated.
//! - [`codec`]: an item's compact binary form, for the store, log and transfers.
//! - [`key`]: key schemas, key validation and order-preserving sort key bytes.
//! - [`size`]: an item's size as DynamoDB computes it.
//! - [`http`]: HTTP/1.1 request framing and the endpoint's responses.
//! - [`sigv4`]: AWS Signature Version 4 verification and the credentials it checks.
//! - [`fuzz`]: the body of the request fuzz target.
//! - [`expr`]: expressions and the legacy parameters: parsed, checked, evaluated on items.
//! - [`ops`]: the operations: requests parsed and validated, writes, reads, batches, tables.

pub mod codec;
pub mod error;
pub mod expr;
pub mod fuzz;
pub mod http;
pub mod json;
pub mod key;
pub mod limits;
pub mod number;
pub mod ops;
pub mod sigv4;
pub mod size;
#[cfg(test)]
mod test_values;
pub mod value;

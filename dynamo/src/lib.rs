//! The DynamoDB API's logic, free of sockets, threads and clocks (the node
//! calls it; the runtime moves its bytes).
//!
//! # Layout
//! - [`number`]: DynamoDB's numbers: 38 significant digits, exact.
//! - [`value`]: attribute values and items.
//! - [`error`]: the error answers, by kind, with their `__type` and status.

pub mod error;
pub mod number;
pub mod value;

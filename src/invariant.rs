//! Invariants asserted where state changes, TigerBeetle style: what must
//! hold, and what must not happen. Checked in debug builds and wherever
//! the `invariants` feature is on (the simulator turns it on, so its
//! seeded runs check every one of them in release builds too); compiled
//! out of the node's release binary.
//!
//! An invariant is about the node's own state, never about input: input
//! is checked and refused with an error, not asserted.

/// Panics with the message when `cond` is false, where invariants are checked.
#[macro_export]
macro_rules! invariant {
    ($cond:expr, $($message:tt)+) => {
        if cfg!(any(debug_assertions, feature = "invariants")) && !$cond {
            panic!("invariant broken: {}", format_args!($($message)+));
        }
    };
}

/// Whether invariants are checked in this build.
pub const CHECKED: bool = cfg!(any(debug_assertions, feature = "invariants"));

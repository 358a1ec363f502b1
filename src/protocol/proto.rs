//! Code generated from `proto/*.proto` at build time (see `build.rs`).
#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/proto/mod.rs"));

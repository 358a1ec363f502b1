//! See `dynakv_sim::fuzz::recovery`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dynakv_sim::fuzz::recovery(data));

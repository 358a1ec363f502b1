//! See `dynakv_sim::fuzz::internal_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dynakv_sim::fuzz::internal_decoder(data));

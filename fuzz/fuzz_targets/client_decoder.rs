//! See `dynakv_sim::fuzz::client_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dynakv_sim::fuzz::client_decoder(data));

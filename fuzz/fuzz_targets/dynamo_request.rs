//! See `dynakv_dynamo::fuzz::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dynakv_dynamo::fuzz::request(data));

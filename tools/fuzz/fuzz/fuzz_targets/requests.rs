//! libFuzzer entry for [`sentra_fuzz::requests`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sentra_fuzz::requests(data));

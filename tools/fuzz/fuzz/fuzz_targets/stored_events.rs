//! libFuzzer entry for [`sentra_fuzz::stored_events`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sentra_fuzz::stored_events(data));

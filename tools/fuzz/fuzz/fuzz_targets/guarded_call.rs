//! libFuzzer entry for [`sentra_fuzz::guarded_call`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sentra_fuzz::guarded_call(data));

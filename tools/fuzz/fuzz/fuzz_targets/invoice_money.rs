//! libFuzzer entry for [`sentra_fuzz::invoice_money`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sentra_fuzz::invoice_money(data));

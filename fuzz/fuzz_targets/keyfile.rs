//! Fuzz target: see robovault_store::fuzz::key_file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    robovault_store::fuzz::key_file(data);
});

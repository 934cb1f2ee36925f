//! Fuzz target: see robovault_store::fuzz::lock.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    robovault_store::fuzz::lock(data);
});

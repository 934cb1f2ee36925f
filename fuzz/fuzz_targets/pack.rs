//! Fuzz target: see robovault_store::fuzz::pack.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    robovault_store::fuzz::pack(data);
});

//! Fuzz target: see robovault_store::fuzz::sealed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    robovault_store::fuzz::sealed(data);
});

//! Fuzz target: see cli/src/fuzzing.rs.
#![no_main]
#![allow(dead_code, unused_imports)]

include!("cli_modules.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzzing::defaults(data);
});

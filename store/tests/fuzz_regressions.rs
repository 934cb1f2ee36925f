//! Replays the fuzzers' regression corpus (`fuzz/regressions/<target>/`:
//! every input that once crashed a fuzz target, and a few seeds) through the
//! same entry points as the fuzz targets, on plain `cargo test`: none may
//! panic. The fuzzers themselves run from `fuzz/run.sh`, not here.

use std::path::{Path, PathBuf};

use robovault_store::fuzz;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no input", dir.display());
    files
}

type Entry = fn(&[u8]) -> bool;

#[test]
fn every_regression_input_decodes_or_fails_cleanly() {
    // With whether some input must decode: the seeds of those are real
    // objects, so the replay reaches past the first checks.
    let targets: [(&str, Entry, bool); 6] = [
        ("pack", fuzz::pack, true),
        ("tree", fuzz::tree, true),
        ("snapshot", fuzz::snapshot, true),
        ("config", fuzz::config, true),
        ("blob", fuzz::blob, true),
        ("lock", fuzz::lock, true),
    ];
    for (target, entry, some_decode) in targets {
        let files = corpus(target);
        let mut accepted = 0;
        for f in &files {
            let data = std::fs::read(f).unwrap();
            match std::panic::catch_unwind(|| entry(&data)) {
                Ok(ok) => accepted += usize::from(ok),
                Err(_) => panic!("{} panicked", f.display()),
            }
        }
        assert!(
            !some_decode || accepted > 0,
            "none of the {} {target} inputs decoded",
            files.len()
        );
    }
}

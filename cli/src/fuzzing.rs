//! The entry points the CLI's fuzz targets (`fuzz/`, which compile this file
//! with the modules it names) and the replay of their regression corpus (the
//! test below) share: bytes of a job file, a schedule definition or the
//! retry defaults go through the very functions the program reads them with.
//! Each returns whether the bytes were accepted; none may panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::CommandFactory;

use crate::job::alias::Switches;

/// A job file, in each encoding `--job-encoding` takes, against the switches
/// of `backup`.
pub fn jobfile(data: &[u8]) -> bool {
    static SWITCHES: OnceLock<Option<Switches>> = OnceLock::new();
    let switches = SWITCHES.get_or_init(|| {
        let cmd = crate::args::Cli::command();
        cmd.find_subcommand("backup").map(Switches::of)
    });
    let Some(switches) = switches else { return false };
    let mut ok = false;
    for encoding in ["utf-8", "cp850", "cp1252"] {
        ok |= crate::job::file::parse_bytes(data, encoding, PathBuf::from("fuzz.rcj"), switches).is_ok();
    }
    ok
}

/// A schedule definition named `nightly`.
pub fn schedule(data: &[u8]) -> bool {
    crate::schedule::decode(data, "nightly", Path::new("nightly.json")).is_ok()
}

/// The retry defaults file.
pub fn defaults(data: &[u8]) -> bool {
    crate::defaults::decode(data, Path::new("defaults.toml")).is_ok()
}

#[cfg(test)]
mod tests {
    /// Every input of the regression corpus in `fuzz/regressions/<target>`
    /// (crashes the fuzzer once found, and seeds) goes through its entry
    /// point again; a panic fails the test.
    #[test]
    fn the_fuzz_regression_corpus_replays_without_panics() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
        type Entry = fn(&[u8]) -> bool;
        let targets: [(&str, Entry); 3] = [
            ("jobfile", super::jobfile),
            ("schedule", super::schedule),
            ("defaults", super::defaults),
        ];
        for (name, entry) in targets {
            let dir = root.join(name);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            assert!(!files.is_empty(), "{} is empty", dir.display());
            for f in files {
                let data = std::fs::read(&f).unwrap();
                let caught = std::panic::catch_unwind(|| entry(&data));
                assert!(caught.is_ok(), "{} panicked", f.display());
            }
        }
    }
}

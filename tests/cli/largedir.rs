//! One large directory: a backup's memory grows by a small constant per
//! entry, not by the kilobytes each entry once held until its directory
//! closed.

use super::*;

const ENTRIES: usize = 100_000;

/// Peak resident set of `robovault ARGS`, in bytes, and its exit code, as
/// GNU time reads them from the child's own rusage, so that other processes
/// the test harness runs at the same time do not count. None when GNU time
/// is missing outside CI (CI installs it).
fn peak_rss(env: &Env, args: &[&str]) -> Option<(u64, i32)> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        assert!(!in_ci(), "GNU time (/usr/bin/time) is needed; .ci/run installs it");
        eprintln!("skipped: no /usr/bin/time");
        return None;
    }
    let report = env.path("time.out");
    let out = Command::new(time)
        .arg("-f")
        .arg("%M %x")
        .arg("-o")
        .arg(&report)
        .arg(assert_cmd::cargo::cargo_bin("robovault"))
        .args(args)
        .current_dir(env.dir.path())
        .env("ROBOVAULT_FORMAT_VERSION", "1")
        .output()
        .unwrap();
    let text = fs::read_to_string(&report).unwrap();
    // The last line: GNU time puts "Command exited with non-zero status"
    // before it when the code is not 0.
    let line = text.lines().last().unwrap_or_default();
    let mut fields = line.split_whitespace();
    let kib: u64 = fields.next().and_then(|f| f.parse().ok()).expect(line);
    let code: i32 = fields.next().and_then(|f| f.parse().ok()).expect(line);
    assert_eq!(Some(code), out.status.code(), "{line}");
    Some((kib * 1024, code))
}

#[test]
fn a_backup_of_one_directory_of_100000_entries_stays_small() {
    let env = Env::new();
    fs::create_dir(env.src()).unwrap();
    for i in 0..ENTRIES {
        fs::File::create(env.src().join(format!("f{i:06}"))).unwrap();
    }
    let Some((peak, code)) = peak_rss(&env, &["backup", "src", "repo", "--series", "s", "--log", "/dev/null"]) else {
        return;
    };
    assert_eq!(code, 1, "the first backup copies every entry");
    // Measured on a debug build, 2 cores: 46 MiB with entries held in compact
    // form and files in batches, 260 MiB when each entry kept its whole
    // metadata and outcome until its directory closed. The bound sits well
    // between the two, so allocator or thread-count drift does not trip it.
    let bound = 128 << 20;
    assert!(
        peak < bound,
        "backing up {ENTRIES} entries of one directory peaked at {} MiB (bound {} MiB)",
        peak >> 20,
        bound >> 20
    );
}

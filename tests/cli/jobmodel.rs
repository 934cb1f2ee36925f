//! The robocopy job model of ROBOCOPY.md, end to end: each class (§4), each
//! row of the option table (§3.1), the log lines and summary (§6), retries
//! (§7), job files (§8), and the commands of the seed. Expectations are
//! written from ROBOCOPY.md, never saved from the program's output. One file
//! per topic; the helpers they share are here.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use chrono::TimeZone;

use super::*;

mod classes;
mod jobfiles;
mod log;
mod restore;
mod retries;
mod seed;
mod selection;
mod switches;

/// Runs a command with `--json` and returns its exit code and object.
fn json_run(env: &Env, a: &[&str]) -> (i32, Value) {
    let mut a = a.to_vec();
    a.push("--json");
    let out = env.run(&a);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (code(&out), v)
}

/// The Dirs, Files and Bytes rows of a JSON summary, each as
/// [total, copied, skipped, mismatch, failed, extras].
fn rows(v: &Value) -> [[u64; 6]; 3] {
    let row = |k: &str| {
        let r = &v[k];
        ["total", "copied", "skipped", "mismatch", "failed", "extras"].map(|c| r[c].as_u64().unwrap())
    };
    [row("dirs"), row("files"), row("bytes")]
}

/// The invariant of §4.6 in every row.
fn assert_invariant(r: &[[u64; 6]; 3]) {
    for row in r {
        assert_eq!(
            row[0],
            row[1] + row[2] + row[3] + row[4],
            "Total = Copied + Skipped + Mismatch + FAILED: {r:?}"
        );
    }
}

/// The log lines of a run between the header and the summary (`--njh
/// --njs`), with the source root written as `<S>` and the target as `<T>`.
fn log(env: &Env, a: &[&str]) -> (i32, Vec<String>) {
    let a = args(a, &["--njh", "--njs"]);
    let out = env.run(&a);
    let root = env.dir.path().display().to_string();
    let lines = text(&out.stdout)
        .replace(&format!("{root}/src"), "<S>")
        .replace(&format!("{root}/out"), "<T>")
        .lines()
        .map(str::to_owned)
        .collect();
    (code(&out), lines)
}

/// Every path in the latest snapshot of series `s`, directories with a
/// trailing `/`, with file contents.
fn snapshot(env: &Env) -> BTreeMap<String, String> {
    let out = env.path("snapshot-view");
    let _ = fs::remove_dir_all(&out);
    let r = env.run(&["restore", "repo", "snapshot-view", "--series", "s", "--json"]);
    assert!(code(&r) < 8, "{}{}", text(&r.stdout), text(&r.stderr));
    let mut map = BTreeMap::new();
    for p in walk_nofollow(&out) {
        let rel = p.strip_prefix(&out).unwrap().display().to_string();
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            map.insert(format!("{rel}/"), String::new());
        } else if m.file_type().is_symlink() {
            map.insert(rel, format!("-> {}", fs::read_link(&p).unwrap().display()));
        } else {
            map.insert(rel, fs::read_to_string(&p).unwrap_or_default());
        }
    }
    map
}

/// Every path below `dir`, not following symlinks.
fn walk_nofollow(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk_nofollow(&p));
        }
        out.push(p);
    }
    out
}

fn keys(m: &BTreeMap<String, String>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

/// src/a.txt (5 bytes), src/d/b.txt (3 bytes), src/e/ (empty).
fn small_tree(env: &Env) {
    write(&env.src().join("a.txt"), b"alpha");
    write(&env.src().join("d/b.txt"), b"bee");
    fs::create_dir_all(env.src().join("e")).unwrap();
    for p in ["a.txt", "d/b.txt"] {
        set_mtime(&env.src().join(p), 1_700_000_000, 0);
    }
}

fn baseline(env: &Env) {
    small_tree(env);
    let (c, v) = json_run(env, B);
    assert_eq!(c, 1, "{v}");
}

fn mtime(p: &Path) -> (i64, u32) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.mtime(), m.mtime_nsec() as u32)
}

fn restore_target(env: &Env) -> PathBuf {
    env.path("out")
}

/// The restore of series `s` into `out`, with extra switches.
fn restore_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    args(
        &[
            "restore",
            "repo",
            "out",
            "--series",
            "s",
            "-r",
            "0",
            "-w",
            "0",
            "--threads",
            "1",
        ],
        extra,
    )
}

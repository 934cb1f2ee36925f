//! Trees as deep as the filesystem allows: the walk keeps its directories on
//! the heap, so depth costs memory, never a thread's stack.

use rustix::fs::{mkdirat, Mode};

use super::*;

/// Levels below the source root: far past what recursion on a thread's
/// stack survives, and its paths far past PATH_MAX.
const DEPTH: usize = 10_000;
/// The levels that hold a file `f` (the bottom one included).
const FILE_LEVELS: [usize; 4] = [1, 2_500, 7_777, DEPTH];

/// `depth` nested directories `d` below `root`, made through descriptors
/// (the full path exceeds PATH_MAX), with a file `f` at `FILE_LEVELS`.
fn deep_chain(root: &Path, depth: usize) {
    let mut fd = dir_below(root, 0);
    for level in 1..=depth {
        mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
        fd = open_dir_at(&fd, "d");
        if FILE_LEVELS.contains(&level) {
            write_at(&fd, "f", format!("level {level}").as_bytes());
        }
    }
}

/// Removes the chain below its root when dropped, level by level from the
/// top, each step on short paths (the second level moves up in place of
/// the first, which is then empty): a recursive removal, as the temp
/// directory's, would need a stack as deep as the tree.
struct Chain(PathBuf);

impl Drop for Chain {
    fn drop(&mut self) {
        let top = self.0.join("d");
        let next = self.0.join("d.next");
        while top.is_dir() {
            for e in fs::read_dir(&top).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| !t.is_dir()) {
                    let _ = fs::remove_file(e.path());
                }
            }
            let step = if top.join("d").is_dir() {
                fs::rename(top.join("d"), &next)
                    .and_then(|()| fs::remove_dir(&top))
                    .and_then(|()| fs::rename(&next, &top))
            } else {
                fs::remove_dir(&top)
            };
            if step.is_err() {
                return;
            }
        }
    }
}

/// The Dirs, Files and Bytes rows of a JSON summary.
fn rows(v: &Value) -> [[u64; 6]; 3] {
    let row = |k: &str| {
        let r = &v[k];
        ["total", "copied", "skipped", "mismatch", "failed", "extras"].map(|c| r[c].as_u64().unwrap())
    };
    [row("dirs"), row("files"), row("bytes")]
}

fn backup(env: &Env, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["backup", "src", "repo", "--series", "s", "--json", "-r", "0", "-w", "0"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (code(&out), v)
}

/// The bytes of the files `deep_chain` writes.
fn chain_bytes() -> u64 {
    FILE_LEVELS.iter().map(|l| format!("level {l}").len() as u64).sum()
}

#[test]
fn backup_walks_a_tree_ten_thousand_levels_deep() {
    let env = Env::new();
    fs::create_dir(env.src()).unwrap();
    let _chain = Chain(env.src());
    deep_chain(&env.src(), DEPTH);
    let files = FILE_LEVELS.len() as u64;

    let (c, v) = backup(&env, &[]);
    assert_eq!(c, 1, "copied: {v}");
    let [dirs, f, bytes] = rows(&v);
    assert_eq!(
        dirs,
        [DEPTH as u64 + 1, DEPTH as u64 + 1, 0, 0, 0, 0],
        "the root and every level"
    );
    assert_eq!(f, [files, files, 0, 0, 0, 0]);
    assert_eq!(bytes, [chain_bytes(), chain_bytes(), 0, 0, 0, 0]);

    let (c, v) = backup(&env, &[]);
    assert_eq!(c, 0, "nothing changed: {v}");
    let [dirs, f, _] = rows(&v);
    assert_eq!(dirs, [DEPTH as u64 + 1, 0, DEPTH as u64 + 1, 0, 0, 0]);
    assert_eq!(f, [files, 0, files, 0, 0, 0]);

    write_at(&dir_below(&env.src(), DEPTH), "f", b"the bottom, changed");
    let (c, v) = backup(&env, &["--threads", "1"]);
    assert_eq!(c, 1, "the bottom file copied: {v}");
    let [dirs, f, bytes] = rows(&v);
    assert_eq!(dirs[1], 0);
    assert_eq!(f, [files, 1, files - 1, 0, 0, 0]);
    assert_eq!(bytes[1], "the bottom, changed".len() as u64);
}

#[test]
fn mirror_counts_and_closes_a_removed_subtree_ten_thousand_levels_deep() {
    let env = Env::new();
    fs::create_dir_all(env.src().join("keep")).unwrap();
    let _chain = Chain(env.src());
    let _gone = Chain(env.path("gone"));
    deep_chain(&env.src(), DEPTH);
    let (c, _) = backup(&env, &[]);
    assert_eq!(c, 1);

    // The whole chain leaves the source: every level is an extra.
    fs::create_dir(env.path("gone")).unwrap();
    fs::rename(env.src().join("d"), env.path("gone/d")).unwrap();
    let files = FILE_LEVELS.len() as u64;
    let (c, v) = backup(&env, &["--mirror"]);
    assert_eq!(c, 2, "extras only: {v}");
    let [dirs, f, bytes] = rows(&v);
    assert_eq!(
        dirs,
        [2, 0, 2, 0, 0, DEPTH as u64],
        "the root and keep; each level an extra"
    );
    assert_eq!(f, [0, 0, 0, 0, 0, files]);
    assert_eq!(bytes[5], chain_bytes());

    // Their rows were closed: the next run finds no extras.
    let (c, v) = backup(&env, &["--mirror"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(rows(&v)[0], [2, 0, 2, 0, 0, 0]);
}

#[test]
fn move_deletes_every_level_of_a_tree_ten_thousand_levels_deep() {
    let env = Env::new();
    fs::create_dir(env.src()).unwrap();
    let _chain = Chain(env.src());
    deep_chain(&env.src(), DEPTH);
    let (c, v) = backup(&env, &["--move"]);
    assert_eq!(c, 1, "copied, and no deletion failed: {v}");
    let [dirs, files, _] = rows(&v);
    assert_eq!(dirs[4], 0, "{v}");
    assert_eq!(files[4], 0, "{v}");
    assert!(
        fs::read_dir(env.src()).unwrap().next().is_none(),
        "every file and every level below the root moved into the repository"
    );
}

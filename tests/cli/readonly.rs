//! Repositories this process may read but not write: another user's (files
//! 0644 under directories 0755, read as nobody) and a read-only mount (a
//! backup disk, a filesystem snapshot), with and without a WAL that a killed
//! writer left holding committed data. Every read command works there; a
//! writing command fails (16) saying that the repository is read-only.

use super::*;

/// A bind mount of a directory onto itself, made read-only; unmounted when
/// dropped.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    /// `None` (the test skips) without root outside CI; under CI a failing
    /// mount fails the test.
    fn new(dir: &Path) -> Option<ReadOnlyMount> {
        if !rustix::process::geteuid().is_root() {
            assert!(!in_ci(), "CI runs as root: the read-only mount tests must run");
            eprintln!("skipped: a read-only bind mount needs root");
            return None;
        }
        let bind = Command::new("mount").arg("--bind").arg(dir).arg(dir).output();
        match bind {
            Ok(o) if o.status.success() => {}
            other => {
                assert!(!in_ci(), "mount --bind failed under CI: {other:?}");
                eprintln!("skipped: cannot bind-mount: {other:?}");
                return None;
            }
        }
        let mount = ReadOnlyMount(dir.to_owned());
        let ro = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(ro.status.success(), "remount read-only: {}", text(&ro.stderr));
        Some(mount)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Makes every directory of `root` 0755 and every file 0644: readable by
/// all, writable by its owner only.
fn world_readable(root: &Path) {
    for p in walk(root).into_iter().chain([root.to_path_buf()]) {
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            chmod(&p, 0o755);
        } else if m.is_file() {
            chmod(&p, 0o644);
        }
    }
}

/// A source of three files, backed up once by root into `repo`.
fn backed_up() -> Env {
    let env = Env::new();
    // Traversable by nobody, down to the repository.
    chmod(env.dir.path(), 0o755);
    write(&env.src().join("a.txt"), b"alpha\n");
    write(&env.src().join("d/b.txt"), b"bravo\n");
    write(&env.src().join("d/e/c.bin"), &random_bytes(300_000, 7));
    let out = env.run(&["backup", "src", "repo", "--series", "s"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    world_readable(&env.repo());
    env
}

/// Runs every read command through `run` and checks its output, restoring
/// into `target`.
fn every_read_command_works(env: &Env, run: &dyn Fn(&[&str]) -> Output, target: &str) {
    let ok = |args: &[&str]| -> String {
        let out = run(args);
        assert_eq!(
            code(&out),
            0,
            "{}: {}{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let hist = ok(&["history", "repo"]);
    assert!(hist.starts_with("series s\n"), "{hist}");
    let ls = ok(&["ls", "repo"]);
    assert!(ls.contains("a.txt") && ls.contains('d'), "{ls}");
    let ls = ok(&["ls", "repo", "d/e"]);
    assert!(ls.contains("c.bin"), "{ls}");
    assert_eq!(ok(&["cat", "repo", "d/b.txt"]), "bravo\n");
    assert!(!ok(&["versions", "repo", "a.txt"]).is_empty());
    assert!(ok(&["find", "repo", "*.txt"]).contains("b.txt"));
    let verify = ok(&["verify", "repo"]);
    assert!(verify.contains("no damage found"), "{verify}");
    let verify = ok(&["verify", "repo", "--read-data"]);
    assert!(verify.contains("no damage found"), "{verify}");
    ok(&["stats", "repo"]);
    let out = run(&["restore", "repo", target, "-r", "0", "-w", "0"]);
    assert_eq!(
        code(&out),
        1,
        "restore copies: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for rel in ["a.txt", "d/b.txt", "d/e/c.bin"] {
        assert_eq!(
            fs::read(env.path(target).join(rel)).unwrap(),
            fs::read(env.src().join(rel)).unwrap(),
            "{rel} restored"
        );
    }
}

/// A writing command fails as a whole, saying the repository is read-only.
fn writing_is_refused(env: &Env, run: &dyn Fn(&[&str]) -> Output) {
    let repo = fs::canonicalize(env.repo()).unwrap();
    for args in [
        &["backup", "src", "repo", "--series", "s"][..],
        &["forget", "repo", "--keep-last", "1"][..],
        &["gc", "repo"][..],
        &["repair", "index", "repo"][..],
    ] {
        let out = run(args);
        let err = text(&out.stderr);
        assert_eq!(code(&out), 16, "{}: {}{err}", args.join(" "), text(&out.stdout));
        assert!(
            err.contains(&format!("repository {}/ is read-only", repo.display())),
            "{}: {err}",
            args.join(" ")
        );
    }
}

/// The repository's files, with their sizes and times: what a reader must
/// leave as it found.
fn state(repo: &Path) -> Vec<(PathBuf, u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<_> = walk(repo)
        .into_iter()
        .map(|p| {
            let m = fs::symlink_metadata(&p).unwrap();
            (p, m.len(), m.mtime())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn another_users_repository_is_read_by_every_read_command_and_not_written() {
    if !require_root() {
        return;
    }
    let env = backed_up();
    fs::create_dir(env.path("out")).unwrap();
    chown_tree(&env.path("out"), 65534);
    let before = state(&env.repo());
    let nobody = |args: &[&str]| setpriv_nobody(&env, args);
    every_read_command_works(&env, &nobody, "out");
    writing_is_refused(&env, &nobody);
    assert_eq!(state(&env.repo()), before, "the readers changed nothing");
}

#[test]
fn a_read_only_mount_is_read_by_every_read_command_and_not_written() {
    let env = backed_up();
    let Some(_mount) = ReadOnlyMount::new(&env.repo()) else {
        return;
    };
    let before = state(&env.repo());
    let run = |args: &[&str]| env.run(args);
    every_read_command_works(&env, &run, "out");
    writing_is_refused(&env, &run);
    assert_eq!(state(&env.repo()), before);
}

#[test]
fn a_read_only_mount_with_a_killed_writers_wal_shows_its_committed_snapshot() {
    let env = backed_up();
    if !require_root() {
        return;
    }
    // A second run is killed just after its index commit: the snapshot is
    // committed in the WAL only, beside the database.
    write(&env.src().join("later.txt"), b"committed in the WAL\n");
    let out = env
        .cmd()
        .args(["backup", "src", "repo", "--series", "s"])
        .env("ROBOVAULT_CRASH_AT", "after-commit")
        .output()
        .unwrap();
    assert!(text(&out.stderr).contains("after-commit"), "{}", text(&out.stderr));
    let wal = env.repo().join("index.sqlite-wal");
    assert!(
        fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
        "the WAL holds the commit"
    );
    let shm = env.repo().join("index.sqlite-shm");
    assert!(shm.exists());
    let shown = |env: &Env| {
        let out = env.run(&["history", "repo"]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let lines = text(&out.stdout).lines().count();
        let ls = env.run(&["ls", "repo"]);
        assert_eq!(code(&ls), 0, "{}", text(&ls.stderr));
        let cat = env.run(&["cat", "repo", "later.txt"]);
        assert_eq!(code(&cat), 0, "{}", text(&cat.stderr));
        assert_eq!(text(&cat.stdout), "committed in the WAL\n");
        (lines, text(&ls.stdout))
    };
    {
        let Some(_mount) = ReadOnlyMount::new(&env.repo()) else {
            return;
        };
        let (lines, ls) = shown(&env);
        assert_eq!(lines, 3, "both snapshots");
        assert!(ls.contains("later.txt"), "{ls}");
        let ids = history_ids(&env);
        assert_eq!(ids.len(), 2);
        let diff = env.run(&["diff", "repo", &ids[0], &ids[1]]);
        assert_eq!(code(&diff), 0, "{}", text(&diff.stderr));
        assert!(text(&diff.stdout).contains("later.txt"), "{}", text(&diff.stdout));
        let out = env.run(&["restore", "repo", "out"]);
        assert_eq!(code(&out), 1, "{}", text(&out.stderr));
        assert_eq!(fs::read(env.path("out/later.txt")).unwrap(), b"committed in the WAL\n");
    }
    // A WAL without its -shm (copied by a tool that left it out): still read.
    fs::remove_file(&shm).unwrap();
    let Some(_mount) = ReadOnlyMount::new(&env.repo()) else {
        return;
    };
    let (lines, ls) = shown(&env);
    assert_eq!(lines, 3);
    assert!(ls.contains("later.txt"), "{ls}");
    assert!(!shm.exists(), "nothing was written beside it");
}

//! Hostile source trees, hostile restore targets and full disks, end to end:
//! unreadable entries, files that change while they are read, entries that
//! change kind between the walk and the read, link loops, odd and very long
//! names, special files, sparse files, hard links, symlinks planted in
//! TARGET, and a repository or TARGET on a tmpfs that fills up. Expected
//! counts, log lines and exit codes come from ROBOCOPY.md (§4.5, §4.6,
//! §6.3, §7), never from the program's output.

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// A backup with one thread (lines in §6.2 order) and no waits.
const B: &[&str] = &["backup", "src", "repo", "--series", "s", "-w", "0", "--threads", "1"];

fn with(base: &[&'static str], extra: &[&'static str]) -> Vec<&'static str> {
    base.iter().chain(extra).copied().collect()
}

/// The Dirs, Files and Bytes rows of a JSON summary.
fn rows(v: &Value) -> [[u64; 6]; 3] {
    let row = |k: &str| {
        let r = &v[k];
        ["total", "copied", "skipped", "mismatch", "failed", "extras"].map(|c| r[c].as_u64().unwrap())
    };
    [row("dirs"), row("files"), row("bytes")]
}

/// Runs with `--json --log run.log`: the exit code, the summary, the log.
fn run_logged(env: &Env, a: &[&str]) -> (i32, Value, String) {
    let out = env.run(&with_log(a));
    parse_logged(env, &out)
}

fn with_log<'a>(a: &[&'a str]) -> Vec<&'a str> {
    a.iter().copied().chain(["--json", "--log", "run.log"]).collect()
}

fn parse_logged(env: &Env, out: &Output) -> (i32, Value, String) {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    let log = fs::read_to_string(env.path("run.log")).unwrap_or_default();
    (code(out), v, log)
}

/// Kills `pid` if the run outlives `limit`: a run that blocks (on a FIFO,
/// say) fails its test instead of hanging it. Not a timing assertion: the
/// limit is far beyond any normal run.
struct Watchdog {
    done: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    fn new(pid: u32, limit: Duration) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let (d, f) = (done.clone(), fired.clone());
        std::thread::spawn(move || {
            let end = Instant::now() + limit;
            while !d.load(Ordering::SeqCst) {
                if Instant::now() > end {
                    f.store(true, Ordering::SeqCst);
                    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Watchdog { done, fired }
    }

    fn check(&self, what: &str) {
        self.done.store(true, Ordering::SeqCst);
        assert!(!self.fired.load(Ordering::SeqCst), "{what} hung and was killed");
    }
}

const HANG_LIMIT: Duration = Duration::from_secs(120);

/// Runs the binary with `ROBOVAULT_PAUSE_AT=point` and calls `act(n)` at
/// its n-th pause there (from 1), while the process waits.
fn run_acting_at(env: &Env, a: &[&str], point: &str, mut act: impl FnMut(usize)) -> Output {
    let mut child = env
        .cmd()
        .args(a)
        .env("ROBOVAULT_PAUSE_AT", point)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dog = Watchdog::new(child.id(), HANG_LIMIT);
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut pauses = 0;
    use std::io::BufRead;
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.contains(&format!("paused at {point}")) {
            pauses += 1;
            act(pauses);
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    let mut out = child.wait_with_output().unwrap();
    dog.check(&format!("{a:?}"));
    assert!(pauses > 0, "never paused at {point}: {seen}");
    out.stderr = seen.into_bytes();
    out
}

/// Runs the binary under the watchdog.
fn run_guarded(env: &Env, a: &[&str]) -> Output {
    let child = env
        .cmd()
        .args(a)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dog = Watchdog::new(child.id(), HANG_LIMIT);
    let out = child.wait_with_output().unwrap();
    dog.check(&format!("{a:?}"));
    out
}

/// The `ERROR` line of §6.3 without its date and time.
fn error_line(errno: i32, action: &str, path: &Path) -> String {
    match errno {
        // README: a failure that no system call reported has no code.
        0 => format!("ERROR {action} {}", path.display()),
        _ => format!("ERROR {errno} (0x{errno:08X}) {action} {}", path.display()),
    }
}

fn cat(env: &Env, path: &str) -> Output {
    env.run(&["cat", "repo", path])
}

// ---------------------------------------------------------------------------
// Unreadable entries
// ---------------------------------------------------------------------------

#[test]
fn unreadable_files_and_directories_fail_after_the_retries_and_root_reads_mode_000() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    chmod(env.dir.path(), 0o755);
    write(&env.src().join("open.txt"), b"readable");
    write(&env.src().join("secret.txt"), b"mode 000");
    write(&env.src().join("closed/inner.txt"), b"inside a mode 000 directory");
    chmod(&env.src().join("secret.txt"), 0o000);
    chmod(&env.src().join("closed/inner.txt"), 0o000);
    chmod(&env.src().join("closed"), 0o000);
    // Root reads what mode 000 forbids: everything is backed up and
    // restored, modes included.
    let (c, v, _) = run_logged(&env, &with(B, &["-r", "0"]));
    assert_eq!(c, 1, "{v}");
    assert_eq!(rows(&v)[0], [2, 2, 0, 0, 0, 0]);
    assert_eq!(rows(&v)[1], [3, 3, 0, 0, 0, 0]);
    let out = env.run(&["restore", "repo", "as-root"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    assert_same_tree(&env.src(), &env.path("as-root"));

    // As nobody: the file (changed, so read again) and the directory (always
    // listed) are refused; each is tried 1 + 1 times (EACCES is retried,
    // §7.1), then FAILED, and its baseline version is carried.
    chown_tree(&env.repo(), 65534);
    fs::create_dir(env.path("logs")).unwrap();
    chown_tree(&env.path("logs"), 65534);
    set_mtime(&env.src().join("secret.txt"), 1_700_000_000, 0);
    let out = setpriv_nobody(&env, &with(B, &["-r", "1", "--json", "--log", "logs/run.log"]));
    assert_eq!(code(&out), 8, "{}{}", text(&out.stdout), text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows(&v)[0], [2, 0, 1, 0, 1, 0], "the root skipped, closed/ FAILED");
    assert_eq!(rows(&v)[1], [2, 0, 1, 0, 1, 0], "open.txt same, secret.txt FAILED");
    assert_eq!(v["partial"], true);
    let log = fs::read_to_string(env.path("logs/run.log")).unwrap();
    let dir_err = error_line(13, "Scanning Source Directory", &env.src().join("closed"));
    let file_err = error_line(13, "Copying File", &env.src().join("secret.txt"));
    assert_eq!(log.matches(&dir_err).count(), 2, "two attempts at the directory: {log}");
    assert_eq!(log.matches(&file_err).count(), 2, "two attempts at the file: {log}");
    assert_eq!(log.matches("Permission denied\n").count(), 4, "{log}");
    assert_eq!(log.matches("Waiting 0 seconds... Retrying...\n").count(), 2, "{log}");
    assert_eq!(log.matches("ERROR: RETRY LIMIT EXCEEDED.\n").count(), 2, "{log}");
    assert_eq!(text(&cat(&env, "secret.txt").stdout), "mode 000", "carried");
    assert_eq!(
        text(&cat(&env, "closed/inner.txt").stdout),
        "inside a mode 000 directory",
        "the unscanned directory's subtree is carried"
    );
    let hist = text(&env.run(&["history", "repo", "-v"]).stdout);
    assert!(
        hist.contains("FAILED  closed  Scanning Source Directory  Permission denied"),
        "{hist}"
    );
}

// ---------------------------------------------------------------------------
// Files that change while they are read
// ---------------------------------------------------------------------------

const CHANGED: &str = "the file changed while it was being read";

#[test]
fn a_file_rewritten_mid_read_with_its_mtime_put_back_is_read_again_not_torn() {
    let env = Env::new();
    // Larger than one read batch (4 MiB): the pause falls between batches.
    let old = random_bytes(6 << 20, 21);
    let new = random_bytes(6 << 20, 22);
    let f = env.src().join("big.bin");
    write(&f, &old);
    set_mtime(&f, 1_600_000_000, 5);
    let out = run_acting_at(&env, &with_log(&with(B, &["-r", "1"])), "mid-read", |n| {
        if n == 1 {
            // Same size, same mtime: only the ctime tells.
            fs::write(&f, &new).unwrap();
            set_mtime(&f, 1_600_000_000, 5);
        }
    });
    let (c, v, log) = parse_logged(&env, &out);
    assert_eq!(c, 1, "copied on the second attempt: {log}");
    assert_eq!(rows(&v)[1], [1, 1, 0, 0, 0, 0]);
    assert_eq!(log.matches(&format!("\n{CHANGED}\n")).count(), 1, "{log}");
    assert_eq!(log.matches("Waiting 0 seconds... Retrying...").count(), 1, "{log}");
    assert!(!log.contains("RETRY LIMIT EXCEEDED"), "{log}");
    assert!(
        cat(&env, "big.bin").stdout == new,
        "the snapshot holds the new content whole"
    );
}

#[test]
fn a_file_that_grows_at_every_attempt_fails_and_keeps_its_baseline() {
    let env = Env::new();
    let f = env.src().join("log.txt");
    write(&f, b"v1");
    let (c, ..) = run_logged(&env, &with(B, &["-r", "0"]));
    assert_eq!(c, 1);
    write(&f, b"version 2");
    let out = run_acting_at(&env, &with_log(&with(B, &["-r", "1"])), "mid-read", |_| {
        use std::io::Write;
        let mut h = fs::OpenOptions::new().append(true).open(&f).unwrap();
        h.write_all(b" and more").unwrap();
    });
    let (c, v, log) = parse_logged(&env, &out);
    assert_eq!(c, 8, "{log}");
    assert_eq!(rows(&v)[1][4], 1, "FAILED");
    assert_eq!(v["errors"][0]["attempts"], 2);
    let err = error_line(0, "Copying File", &env.src().join("log.txt"));
    assert_eq!(log.matches(&err).count(), 2, "{log}");
    assert_eq!(log.matches(&format!("\n{CHANGED}\n")).count(), 2, "{log}");
    assert_eq!(log.matches("ERROR: RETRY LIMIT EXCEEDED.").count(), 1, "{log}");
    assert_eq!(text(&cat(&env, "log.txt").stdout), "v1", "the baseline is carried");
    let hist = text(&env.run(&["history", "repo", "-v"]).stdout);
    assert!(
        hist.contains(&format!("    FAILED  log.txt  Copying File  {CHANGED}  attempts=2\n")),
        "no errno, no code: {hist}"
    );
}

#[test]
fn a_file_that_shrinks_mid_read_fails_and_is_not_recorded() {
    let env = Env::new();
    let f = env.src().join("shrinks.bin");
    write(&f, &random_bytes(600_000, 23));
    let out = run_acting_at(&env, &with_log(&with(B, &["-r", "0"])), "mid-read", |_| {
        fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .unwrap()
            .set_len(1000)
            .unwrap();
    });
    let (c, v, log) = parse_logged(&env, &out);
    assert_eq!(c, 8, "{log}");
    assert_eq!(rows(&v)[1], [1, 0, 0, 0, 1, 0]);
    assert_eq!(log.matches(&format!("\n{CHANGED}\n")).count(), 1, "{log}");
    assert_eq!(log.matches("ERROR: RETRY LIMIT EXCEEDED.").count(), 1, "{log}");
    assert_eq!(code(&cat(&env, "shrinks.bin")), 16, "not in the snapshot");
}

#[test]
fn a_file_deleted_mid_read_counts_as_vanished() {
    for (extra, failed) in [(&[][..], 1u64), (&["--ignore-vanished"][..], 0)] {
        let env = Env::new();
        let f = env.src().join("gone.bin");
        write(&f, &random_bytes(5 << 20, 24));
        write(&env.src().join("stays.txt"), b"stays");
        let a = with_log(&with(&with(B, &["-r", "3"]), extra));
        let out = run_acting_at(&env, &a, "mid-read", |_| {
            // Only gone.bin is large enough to pause between batches; the
            // small file pauses before its read and is left alone.
            let _ = fs::remove_file(&f);
        });
        let (c, v, log) = parse_logged(&env, &out);
        assert_eq!(rows(&v)[1], [2, 1, 1 - failed, 0, failed, 0], "{extra:?}: {log}");
        assert_eq!(c, if failed == 1 { 9 } else { 1 }, "{extra:?}");
        // ENOENT is not retried (§7.1): one ERROR line, no wait.
        let err = error_line(2, "Copying File", &f);
        assert_eq!(log.matches(&err).count(), 1, "{extra:?}: {log}");
        assert!(!log.contains("Waiting"), "{log}");
        assert_eq!(code(&cat(&env, "gone.bin")), 16, "a vanished file leaves the snapshot");
    }
}

// ---------------------------------------------------------------------------
// Entries that change kind between the walk and the read
// ---------------------------------------------------------------------------

#[test]
fn a_file_replaced_by_a_directory_or_a_fifo_before_its_read_fails_without_hanging() {
    for replacement in ["dir", "fifo"] {
        let env = Env::new();
        let f = env.src().join("swapped");
        write(&f, b"a file at walk time");
        let out = run_acting_at(&env, &with_log(&with(B, &["-r", "0"])), "before-read", |_| {
            fs::remove_file(&f).unwrap();
            if replacement == "dir" {
                fs::create_dir(&f).unwrap();
            } else {
                // With no writer, opening it for reading would block forever.
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &f,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o644),
                    0,
                )
                .unwrap();
            }
        });
        let (c, v, log) = parse_logged(&env, &out);
        assert_eq!(c, 8, "{replacement}: {log}");
        assert_eq!(rows(&v)[1], [1, 0, 0, 0, 1, 0], "{replacement}");
        assert!(log.contains(&error_line(0, "Copying File", &f)), "{log}");
        assert!(log.contains(&format!("\n{CHANGED}\n")), "{log}");
        assert_eq!(code(&cat(&env, "swapped")), 16, "nothing recorded under its name");
        // The next run sees what is there now.
        let (c, v, _) = run_logged(&env, &with(B, &["-r", "0"]));
        assert!(c < 8, "{replacement}: {v}");
    }
}

#[test]
fn a_directory_replaced_by_a_file_before_its_listing_fails_as_vanished() {
    let env = Env::new();
    write(&env.src().join("d/inner.txt"), b"inner");
    let d = env.src().join("d");
    let out = run_acting_at(&env, &with_log(&with(B, &["-r", "2"])), "before-list", |_| {
        fs::remove_dir_all(&d).unwrap();
        write(&d, b"now a file");
    });
    let (c, v, log) = parse_logged(&env, &out);
    assert_eq!(c, 8, "{log}");
    assert_eq!(rows(&v)[0], [2, 1, 0, 0, 1, 0], "the root copied, d FAILED");
    assert_eq!(rows(&v)[1], [0, 0, 0, 0, 0, 0], "inner.txt never seen");
    // ENOTDIR means the directory vanished (§7.1): not retried.
    assert_eq!(
        log.matches(&error_line(20, "Scanning Source Directory", &d)).count(),
        1,
        "{log}"
    );
    assert!(log.contains("\nNot a directory\n"), "{log}");
    let ls: Value = serde_json::from_slice(&env.run(&["ls", "repo", "--json"]).stdout).unwrap();
    assert_eq!(ls, serde_json::json!([]), "d is not in the snapshot");
}

// ---------------------------------------------------------------------------
// Link loops
// ---------------------------------------------------------------------------

#[test]
fn symlink_loops_are_recorded_as_links_and_never_walked() {
    use std::os::unix::fs::symlink;
    let env = Env::new();
    write(&env.src().join("d/f.txt"), b"f");
    symlink("loop2", env.src().join("loop1")).unwrap();
    symlink("loop1", env.src().join("loop2")).unwrap();
    symlink("self", env.src().join("self")).unwrap();
    symlink("..", env.src().join("d/up")).unwrap();
    symlink("../d", env.src().join("d/again")).unwrap();
    let (c, v, log) = run_logged(&env, &with(B, &["-r", "0"]));
    assert_eq!(c, 1, "{log}");
    assert_eq!(rows(&v)[1], [6, 6, 0, 0, 0, 0], "five links and a file");
    assert_eq!(rows(&v)[2][0], 1, "links count 0 bytes");
    let out = env.run(&["restore", "repo", "out"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    assert_same_tree(&env.src(), &env.path("out"));
    // Followed: the loops cannot be resolved (ELOOP) and stay links; the
    // directory links to an ancestor are skipped as junctions (§4.5).
    let out = run_guarded(
        &env,
        &with_log(&[
            "backup",
            "src",
            "followed",
            "--follow-links",
            "-v",
            "-r",
            "0",
            "--threads",
            "1",
        ]),
    );
    let (c, v, log) = parse_logged(&env, &out);
    assert_eq!(c, 1, "{log}");
    assert_eq!(rows(&v)[1], [6, 4, 2, 0, 0, 0], "{log}");
    assert!(log.contains("\t    junction\t             0\tup\n"), "{log}");
    assert!(log.contains("\t    junction\t             0\tagain\n"), "{log}");
    let ls: Value = serde_json::from_slice(&env.run(&["ls", "followed", "--json"]).stdout).unwrap();
    let kinds: Vec<(&str, &str)> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("d", "dir"), ("loop1", "link"), ("loop2", "link"), ("self", "link")]
    );
}

// ---------------------------------------------------------------------------
// Odd and very long names
// ---------------------------------------------------------------------------

/// Creates `depth` nested directories named `name_i` below `root` with
/// `mkdirat`/`openat` (the full path exceeds PATH_MAX), a file `leaf` at
/// the bottom; returns the components.
fn deep_tree(root: &Path, depth: usize, leaf: &[u8]) -> Vec<Vec<u8>> {
    use rustix::fs::{mkdirat, openat, Mode, OFlags, CWD};
    let mut fd: OwnedFd = openat(CWD, root, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    let mut parts = Vec::new();
    for i in 0..depth {
        let name = format!("{i:03}{}", "d".repeat(247)).into_bytes();
        mkdirat(&fd, std::ffi::OsStr::from_bytes(&name), Mode::from_raw_mode(0o755)).unwrap();
        fd = openat(
            &fd,
            std::ffi::OsStr::from_bytes(&name),
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )
        .unwrap();
        parts.push(name);
    }
    let f = openat(
        &fd,
        "leaf.txt",
        OFlags::CREATE | OFlags::WRONLY,
        Mode::from_raw_mode(0o640),
    )
    .unwrap();
    rustix::io::write(&f, leaf).unwrap();
    parts
}

/// Reads the file at the bottom of a deep tree, and the mode and mtime of
/// each directory on the way, through descriptors.
fn read_deep(root: &Path, parts: &[Vec<u8>]) -> (Vec<(u32, i64, i64)>, Vec<u8>) {
    use rustix::fs::{fstat, openat, Mode, OFlags, CWD};
    let mut fd: OwnedFd = openat(CWD, root, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    let mut metas = Vec::new();
    for p in parts {
        fd = openat(
            &fd,
            std::ffi::OsStr::from_bytes(p),
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .unwrap();
        let st = fstat(&fd).unwrap();
        metas.push((st.st_mode & 0o7777, st.st_mtime as i64, st.st_mtime_nsec as i64));
    }
    let f = openat(&fd, "leaf.txt", OFlags::RDONLY, Mode::empty()).unwrap();
    let mut data = Vec::new();
    use std::io::Read;
    fs::File::from(f).read_to_end(&mut data).unwrap();
    (metas, data)
}

#[test]
fn names_with_newlines_bad_utf8_255_bytes_and_paths_beyond_path_max_round_trip() {
    let env = Env::new();
    let names = env.src().join("names");
    write(&names.join("new\nline"), b"newline");
    write(&names.join(std::ffi::OsStr::from_bytes(b"bad-\xff\xfe")), b"not utf-8");
    let long = "n".repeat(255);
    write(&names.join(&long).join(&long), b"255 bytes, twice");
    write(&names.join("tab\there"), b"tab");
    // 20 levels of 250 bytes: about 5,000 bytes, past PATH_MAX (4096).
    fs::create_dir(env.src().join("deep")).unwrap();
    let parts = deep_tree(&env.src().join("deep"), 20, b"at the bottom");
    let (c, v, log) = run_logged(&env, &with(B, &["-r", "0"]));
    assert_eq!(c, 1, "{log}");
    assert_eq!(
        rows(&v)[0],
        [24, 24, 0, 0, 0, 0],
        "root, names, the 255-byte one, deep and 20 below"
    );
    assert_eq!(rows(&v)[1], [5, 5, 0, 0, 0, 0], "{log}");
    // A control character or a byte that is not UTF-8 prints as \xNN: a
    // name never splits or forges a log line (§6.5).
    assert!(log.contains("\tnew\\x0Aline\n"), "{log}");
    assert!(log.contains("\ttab\\x09here\n"), "{log}");
    assert!(log.contains("\tbad-\\xFF\\xFE\n"), "{log}");
    assert!(!log.lines().any(|l| l == "line"), "{log}");
    assert!(log.contains(&format!("\t{long}\n")), "{log}");
    assert!(log.contains("\tleaf.txt\n"), "{log}");
    let out = env.run(&["restore", "repo", "out", "--json", "--log", "restore.log"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    let rv: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows(&rv)[1], [5, 5, 0, 0, 0, 0]);
    assert_eq!(rows(&rv)[0][4], 0);
    assert_same_tree(&names, &env.path("out/names"));
    assert_eq!(
        read_deep(&env.path("out/deep"), &parts),
        read_deep(&env.src().join("deep"), &parts),
        "the deep tree is restored, modes, mtimes and content"
    );
    let again = env.run(&["restore", "repo", "out"]);
    assert_eq!(code(&again), 0, "everything matches now: {}", text(&again.stdout));
}

// ---------------------------------------------------------------------------
// Special files, sparse files and hard links
// ---------------------------------------------------------------------------

fn mknod(path: &Path, kind: rustix::fs::FileType, mode: u32, dev: rustix::fs::Dev) {
    rustix::fs::mknodat(rustix::fs::CWD, path, kind, rustix::fs::Mode::from_raw_mode(mode), dev)
        .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
}

#[test]
fn fifos_and_device_nodes_round_trip_unopened_and_sockets_are_skipped() {
    if !require_root() {
        return;
    }
    use rustix::fs::{makedev, FileType};
    let env = Env::new();
    let sp = env.src().join("special");
    fs::create_dir_all(&sp).unwrap();
    mknod(&sp.join("fifo"), FileType::Fifo, 0o640, 0);
    mknod(&sp.join("null"), FileType::CharacterDevice, 0o666, makedev(1, 3));
    mknod(&sp.join("loop7"), FileType::BlockDevice, 0o660, makedev(7, 7));
    std::os::unix::fs::symlink("fifo", sp.join("to-fifo")).unwrap();
    let sockets = env.src().join("sockets");
    fs::create_dir_all(&sockets).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(sockets.join("sock")).unwrap();
    set_mtime(&sockets, 1_650_000_000, 0);
    let out = run_guarded(&env, &with_log(&with(B, &["-r", "0", "-v"])));
    let (c, v, log) = parse_logged(&env, &out);
    assert_eq!(c, 1, "{log}");
    // Four recorded without content, the socket counted Skipped (§4.5).
    assert_eq!(rows(&v)[1], [5, 4, 1, 0, 0, 0], "{log}");
    assert_eq!(rows(&v)[2], [0, 0, 0, 0, 0, 0]);
    let ls: Value = serde_json::from_slice(&env.run(&["ls", "repo", "sockets", "--json"]).stdout).unwrap();
    assert_eq!(ls, serde_json::json!([]), "a socket is not recorded");
    let out = run_guarded(&env, &["restore", "repo", "out", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    assert_same_tree(&sp, &env.path("out/special"));
    // Followed, the link to the FIFO is recorded as a FIFO; never opened.
    let out = run_guarded(
        &env,
        &["backup", "src", "followed", "--follow-links", "-r", "0", "--json"],
    );
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    let ls: Value = serde_json::from_slice(&env.run(&["ls", "followed", "special/to-fifo", "--json"]).stdout).unwrap();
    assert_eq!(ls[0]["kind"], "special", "{ls}");
    assert!(ls[0]["mode_string"].as_str().unwrap().starts_with('p'), "{ls}");
}

#[test]
fn a_sparse_file_is_restored_sparse() {
    let env = Env::new();
    let f = env.src().join("sparse.img");
    write(&f, b"");
    let len = 64u64 << 20;
    {
        use std::os::unix::fs::FileExt;
        let h = fs::OpenOptions::new().write(true).open(&f).unwrap();
        h.set_len(len).unwrap();
        for at in [0, 10 << 20, 40 << 20, len - 5] {
            h.write_all_at(b"data!", at).unwrap();
        }
    }
    let src_bytes = fs::metadata(&f).unwrap().blocks() * 512;
    if src_bytes >= len / 2 {
        assert!(!in_ci(), "the test filesystem must support holes in CI");
        eprintln!("skipped: {} does not keep holes", f.display());
        return;
    }
    let (c, v, _) = run_logged(&env, &with(B, &["-r", "0"]));
    assert_eq!(c, 1, "{v}");
    let out = env.run(&["restore", "repo", "out"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    let r = env.path("out/sparse.img");
    assert!(fs::read(&r).unwrap() == fs::read(&f).unwrap(), "same content");
    let restored = fs::metadata(&r).unwrap().blocks() * 512;
    // Zero runs of 64 KiB are sought over: at most one such piece per data
    // island is written beyond what the source holds.
    assert!(
        restored <= src_bytes + 4 * (64 << 10),
        "restored {restored} bytes on disk, the source {src_bytes}"
    );
    assert_same_tree(&env.src(), &env.path("out"));
}

#[test]
fn hard_links_are_restored_as_links_within_one_restore() {
    let env = Env::new();
    write(&env.src().join("a"), b"group one");
    fs::create_dir_all(env.src().join("d")).unwrap();
    fs::create_dir_all(env.src().join("e")).unwrap();
    fs::hard_link(env.src().join("a"), env.src().join("d/b")).unwrap();
    fs::hard_link(env.src().join("a"), env.src().join("e/c")).unwrap();
    write(&env.src().join("x"), b"group two");
    fs::hard_link(env.src().join("x"), env.src().join("d/y")).unwrap();
    write(&env.src().join("alone"), b"group one");
    for d in ["", "d", "e"] {
        set_mtime(&env.src().join(d), 1_650_000_000, 0);
    }
    let (c, v, _) = run_logged(&env, &with(B, &["-r", "0"]));
    assert_eq!(c, 1);
    assert_eq!(rows(&v)[1], [6, 6, 0, 0, 0, 0]);
    let out = env.run(&["restore", "repo", "out"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    assert_same_tree(&env.src(), &env.path("out"));
    let ino = |p: &str| fs::metadata(env.path("out").join(p)).unwrap().ino();
    let nlink = |p: &str| fs::metadata(env.path("out").join(p)).unwrap().nlink();
    assert_eq!((ino("a"), ino("a")), (ino("d/b"), ino("e/c")));
    assert_eq!(ino("x"), ino("d/y"));
    assert_ne!(ino("a"), ino("x"));
    assert_ne!(ino("a"), ino("alone"), "equal content is not a link");
    assert_eq!((nlink("a"), nlink("x"), nlink("alone")), (3, 2, 1));
}

// ---------------------------------------------------------------------------
// Symlinks planted in TARGET
// ---------------------------------------------------------------------------

#[test]
fn links_planted_in_target_are_never_followed() {
    let env = Env::new();
    write(&env.src().join("f.txt"), b"snapshot f");
    write(&env.src().join("d/inner.txt"), b"snapshot inner");
    let (c, ..) = run_logged(&env, &with(B, &["-r", "0"]));
    assert_eq!(c, 1);
    let outside = env.path("outside");
    write(&outside.join("sentinel"), b"untouched");
    let sentinel = describe(&outside);
    let out = env.path("out");
    fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(outside.join("sentinel"), out.join("f.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("d")).unwrap();
    // A link where a file or a directory belongs is a mismatch, left alone;
    // a chosen path through a linked directory writes nothing either.
    for extra in [&[][..], &["d/inner.txt"][..]] {
        let a: Vec<&str> = ["restore", "repo", "out", "-r", "0", "--json"]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        let r = env.run(&a);
        let v: Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(code(&r) & 4, 4, "{extra:?}: {v}");
        assert_eq!(
            describe(&outside),
            sentinel,
            "{extra:?}: nothing outside TARGET changed"
        );
    }
    // A mirror removes the links themselves and restores in their place.
    let r = env.run(&["restore", "repo", "out", "--mirror", "-r", "0"]);
    assert!(code(&r) < 8, "{}", text(&r.stdout));
    assert_eq!(describe(&outside), sentinel, "nothing outside TARGET changed");
    assert_eq!(fs::read(out.join("d/inner.txt")).unwrap(), b"snapshot inner");
    assert!(fs::symlink_metadata(out.join("f.txt")).unwrap().is_file());
}

// ---------------------------------------------------------------------------
// Full disks
// ---------------------------------------------------------------------------

/// A tmpfs mounted on a directory, unmounted when dropped.
pub(crate) struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`8M`) on `dir`; `None` (the test skips)
    /// without root outside CI. Under CI a failing mount fails the test.
    pub(crate) fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        if !rustix::process::geteuid().is_root() {
            assert!(!in_ci(), "CI runs as root: the full-disk tests must run");
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_owned())),
            other => {
                assert!(!in_ci(), "mount -t tmpfs failed under CI: {other:?}");
                eprintln!("skipped: cannot mount a tmpfs: {other:?}");
                None
            }
        }
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "remount: {}", text(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn temporaries(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(".tmp") || n.starts_with(".rvtmp")
        })
        .collect()
}

#[test]
fn a_backup_into_a_full_repository_is_fatal_and_leaves_earlier_snapshots_whole() {
    let env = Env::new();
    let Some(disk) = Tmpfs::mount(&env.repo(), "8M") else {
        return;
    };
    write(&env.src().join("first.bin"), &random_bytes(1 << 20, 31));
    let (c, v, _) = run_logged(&env, &with(B, &["-r", "0"]));
    assert_eq!(c, 1, "{v}");
    let first = v["snapshot"].as_str().unwrap().to_owned();
    // Incompressible, and more than the free space.
    write(&env.src().join("big.bin"), &random_bytes(20 << 20, 32));
    let out = env.run(&with(B, &["-r", "0"]));
    assert_eq!(code(&out), 16, "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains(&env.repo().display().to_string()),
        "the path is named: {err}"
    );
    assert!(text(&out.stdout).contains("No space left on device"), "in the log too");
    assert_eq!(history_ids(&env), vec![first.clone()], "no partial snapshot");
    assert_eq!(
        temporaries(&env.repo()),
        Vec::<PathBuf>::new(),
        "no temporary file left"
    );
    let verify = env.run(&["verify", "repo", "--read-data"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify.stdout));
    let out = env.run(&["restore", "repo", "old", "--snapshot", &first]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    assert!(fs::read(env.path("old/first.bin")).unwrap() == random_bytes(1 << 20, 31));
    assert!(!env.path("old/big.bin").exists());
    // Room again: the next run completes, and the repository is sound.
    disk.resize("64M");
    let (c, v, _) = run_logged(&env, &with(B, &["-r", "0"]));
    assert_eq!(c, 1, "{v}");
    assert_eq!(history_ids(&env).len(), 2);
    let verify = env.run(&["verify", "repo", "--read-data"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify.stdout));
    let gc = env.run(&["gc", "repo"]);
    assert_eq!(code(&gc), 0, "{}", text(&gc.stderr));
    let out = env.run(&["restore", "repo", "new"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    assert_same_tree(&env.src(), &env.path("new"));
}

#[test]
fn a_restore_into_a_full_target_fails_the_files_that_do_not_fit_and_leaves_no_torn_file() {
    let env = Env::new();
    for (i, name) in ["a.bin", "b.bin", "c.bin"].iter().enumerate() {
        write(&env.src().join(name), &random_bytes(3 << 20, 40 + i as u64));
    }
    write(&env.src().join("small.txt"), b"fits");
    let (c, ..) = run_logged(&env, &with(B, &["-r", "0"]));
    assert_eq!(c, 1);
    let Some(disk) = Tmpfs::mount(&env.path("out"), "7M") else {
        return;
    };
    let out = env.run(&[
        "restore",
        "repo",
        "out",
        "--threads",
        "1",
        "-r",
        "1",
        "-w",
        "0",
        "--json",
        "--log",
        "r.log",
    ]);
    assert_eq!(code(&out) & 8, 8, "{}", text(&out.stdout));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = rows(&v);
    assert_eq!(r[1][0], 4);
    assert_eq!(r[1][4], 1, "two 3 MiB files fit in 7 MiB, the third does not: {v}");
    let log = fs::read_to_string(env.path("r.log")).unwrap();
    let failed = v["errors"][0]["path"].as_str().unwrap().to_owned();
    assert!(
        log.contains(&error_line(28, "Copying File", &env.path("out").join(&failed))),
        "{log}"
    );
    assert!(log.contains("\nNo space left on device\n"), "{log}");
    // Every file present is complete and right; the one that failed is absent.
    for name in ["a.bin", "b.bin", "c.bin", "small.txt"] {
        let p = env.path("out").join(name);
        if name == failed {
            assert!(!p.exists(), "{name} failed and is absent");
        } else {
            assert!(
                fs::read(&p).unwrap() == fs::read(env.src().join(name)).unwrap(),
                "{name}"
            );
        }
    }
    assert_eq!(
        temporaries(&env.path("out")),
        Vec::<PathBuf>::new(),
        "no temporary left"
    );
    // With room, the next restore writes only the missing file.
    disk.resize("32M");
    let out = env.run(&["restore", "repo", "out", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(code(&out), 1, "{v}");
    assert_eq!(rows(&v)[1], [4, 1, 3, 0, 0, 0]);
    assert_same_tree(&env.src(), &env.path("out"));
}

/// A snapshot forgotten and collected while it is being restored: content
/// only it held is gone from the index before restore reads it. That is the
/// snapshot's going, not damage: exit 16 saying so, never exit 9 with
/// per-file read errors that look like a damaged repository.
#[test]
fn a_snapshot_forgotten_while_it_is_restored_is_reported_as_forgotten() {
    let env = Env::new();
    write(&env.src().join("only-in-first.bin"), &random_bytes(300_000, 7));
    write(&env.src().join("kept.txt"), b"kept");
    let first = env.backup_json()["snapshot"].as_str().unwrap().to_owned();
    fs::remove_file(env.src().join("only-in-first.bin")).unwrap();
    env.backup_json();
    let mut gc = None;
    let out = run_acting_at(
        &env,
        &["restore", "repo", "t", "--snapshot", &first],
        "restore-chosen",
        |_| {
            let forget = env.run(&["forget", "repo", "--keep-last", "1"]);
            assert_eq!(code(&forget), 0, "{}", text(&forget.stderr));
            // gc commits its index change, then waits for this restore (a
            // reader) to end before it deletes the packs.
            gc = Some(
                env.cmd()
                    .args(["gc", "repo", "--max-unused", "0%"])
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
            );
            // Wait (within the restore's pause) for gc's commit: the first
            // snapshot's blobs leave the index.
            let blobs = || -> i64 {
                let db = rusqlite::Connection::open(env.repo().join("index.sqlite")).unwrap();
                db.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0)).unwrap()
            };
            let before = blobs();
            let start = Instant::now();
            while blobs() == before && start.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(20));
            }
        },
    );
    let gc = gc.unwrap().wait().unwrap();
    assert_eq!(gc.code(), Some(0));
    assert_eq!(code(&out), 16, "{}{}", text(&out.stdout), text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("no snapshot {first} in the repository any more")) && err.contains("forgotten"),
        "{err}"
    );
}

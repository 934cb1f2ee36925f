//! The end-to-end harness: running the `robovault` binary in an [`Env`], as
//! a user, as nobody, on a terminal, paused or killed at a named point, and
//! reading what it printed.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

use crate::util::{in_ci, Env};

impl Env {
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("robovault").unwrap();
        c.current_dir(self.dir.path());
        c.env_remove("ROBOVAULT_CRASH_AT").env_remove("ROBOVAULT_PAUSE_AT");
        // The suites written against version 1's layout (index.sqlite in
        // REPO, plaintext packs they damage on purpose) make version-1
        // repositories; tests/cli/encryption.rs and others ask for version
        // 2 through `Env::sealed`.
        c.env("ROBOVAULT_FORMAT_VERSION", "1");
        for var in [
            "ROBOVAULT_PASSWORD",
            "ROBOVAULT_PASSWORD_FILE",
            "ROBOVAULT_PASSWORD_COMMAND",
        ] {
            c.env_remove(var);
        }
        c
    }

    /// The password file of [`Env::sealed`].
    pub fn password_file(&self) -> PathBuf {
        let file = self.path("password");
        if !file.exists() {
            fs::write(&file, "correct horse battery staple\n").unwrap();
            fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        }
        file
    }

    /// A command whose new repositories are version 2, encrypted with
    /// [`Env::password_file`] at the cheapest Argon2id costs, with a cache
    /// directory in the environment's directory.
    pub fn sealed(&self) -> Command {
        let mut c = self.cmd();
        c.env("ROBOVAULT_FORMAT_VERSION", "2")
            .env("ROBOVAULT_PASSWORD_FILE", self.password_file())
            .env("ROBOVAULT_CACHE_DIR", self.path("cache"));
        c
    }

    /// [`Env::sealed`] with `args`, run.
    pub fn run_sealed(&self, args: &[&str]) -> Output {
        self.sealed().args(args).output().unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    pub fn backup_json(&self) -> Value {
        let out = self.run(&["backup", "src", "repo", "--series", "s", "--json", "-r", "0", "-w", "0"]);
        assert!(out.status.code().unwrap() < 8, "backup failed: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The common arguments of a backup: one thread, so that lines come in
/// the order of §6.2, and no waits.
pub const B: &[&str] = &[
    "backup",
    "src",
    "repo",
    "--series",
    "s",
    "-r",
    "0",
    "-w",
    "0",
    "--threads",
    "1",
];

pub fn args<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Runs a backup that kills itself at `point`, and checks that it died there.
pub fn killed_backup(env: &Env, point: &str) {
    let out = env
        .cmd()
        .args(["backup", "src", "repo", "--series", "s", "-r", "0"])
        .env("ROBOVAULT_CRASH_AT", point)
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(9),
        "killed by SIGKILL at {point}: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains(&format!("crash point {point} reached")),
        "the kill landed at {point}: {}",
        text(&out.stderr)
    );
}

pub fn history_ids(env: &Env) -> Vec<String> {
    let v: Value = serde_json::from_slice(&env.run(&["history", "repo", "--json"]).stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot"].as_str().unwrap().to_owned())
        .collect()
}

/// Starts a backup that pauses before its commit, and returns once it has.
pub fn spawn_paused(env: &Env, args: &[&str]) -> std::process::Child {
    spawn_paused_at(env, args, "before-commit")
}

/// Starts the binary with a pause point and returns once it has paused there.
pub fn spawn_paused_at(env: &Env, args: &[&str], point: &str) -> std::process::Child {
    let mut child = env
        .cmd()
        .args(args)
        .env("ROBOVAULT_PAUSE_AT", point)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    use std::io::Read;
    while !text(&seen).contains(&format!("paused at {point}")) {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "the backup ended before pausing: {}", text(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    // Keep the pipe open: the process still reports on it.
    child.stderr = Some(stderr);
    child
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

pub fn setpriv_nobody(env: &Env, args: &[&str]) -> Output {
    let bin = assert_cmd::cargo::cargo_bin("robovault");
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin)
        .args(args)
        .current_dir(env.dir.path())
        .env("ROBOVAULT_FORMAT_VERSION", "1")
        .output()
        .expect("setpriv (util-linux) is installed")
}

/// Whether `tool` is on the PATH; under CI a missing one fails the test.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found || !in_ci(), "{tool} is needed; .ci/run installs it");
    found
}

pub fn require_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    assert!(root || !in_ci(), "CI runs as root: the privilege tests must run");
    root
}

pub fn chown_tree(path: &Path, uid: u32) {
    for p in walk(path).into_iter().chain([path.to_path_buf()]) {
        std::os::unix::fs::lchown(&p, Some(uid), Some(uid)).unwrap();
    }
}

pub fn repo_bytes(dir: &Path) -> u64 {
    walk(dir)
        .iter()
        .filter_map(|p| fs::symlink_metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

pub fn backup_ok(env: &Env) -> String {
    let v = env.backup_json();
    v["snapshot"].as_str().unwrap().to_owned()
}

/// Runs the binary under a pseudo-terminal (`script` from util-linux), so
/// that its stdout is a terminal.
pub fn on_a_terminal(env: &Env, a: &[&str]) -> Option<String> {
    let bin = assert_cmd::cargo::cargo_bin("robovault");
    let mut cmdline = format!("'{}'", bin.display());
    for arg in a {
        cmdline.push_str(&format!(" '{arg}'"));
    }
    let out = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .current_dir(env.dir.path())
        .env("ROBOVAULT_FORMAT_VERSION", "1")
        .output();
    match out {
        Ok(o) => Some(text(&o.stdout)),
        Err(e) => {
            assert!(!in_ci(), "script (util-linux) is needed for the terminal test: {e}");
            None
        }
    }
}

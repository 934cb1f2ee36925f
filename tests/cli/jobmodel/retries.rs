//! Retries (ROBOCOPY.md §7): /R and /W, saved retry defaults, /TBD, and a
//! file that fails or recovers within its attempts.

use super::*;

#[test]
fn save_retry_defaults_become_the_defaults() {
    let env = Env::new();
    small_tree(&env);
    let cfg = env.path("config");
    let run = |a: &[&str]| {
        env.cmd()
            .args(["backup", "src", "repo", "--series", "s"])
            .args(a)
            .env("XDG_CONFIG_HOME", &cfg)
            .output()
            .unwrap()
    };
    let out = run(&["/R:7", "/W:2", "/REG"]);
    assert!(code(&out) < 8, "{}", text(&out.stderr));
    assert!(cfg.join("robovault/defaults.toml").exists());
    let options = |o: &Output| -> Vec<String> {
        let t = text(&o.stdout);
        let line = t
            .lines()
            .find(|l| l.starts_with("  Options : "))
            .unwrap_or_default()
            .to_owned();
        line.split(' ').map(str::to_owned).collect()
    };
    let out = run(&[]);
    let o = options(&out);
    assert!(o.contains(&"/R:7".into()) && o.contains(&"/W:2".into()), "{o:?}");
    let out = run(&["-r", "1"]);
    let o = options(&out);
    assert!(
        o.contains(&"/R:1".into()) && o.contains(&"/W:2".into()),
        "the command line wins: {o:?}"
    );
}

#[test]
fn wait_for_share_retries_a_missing_source_root() {
    let env = Env::new();
    let out = env.run(&["backup", "src", "repo", "/R:2", "/W:0"]);
    assert_eq!(code(&out), 16);
    assert!(
        text(&out.stderr).contains("ERROR 2 (0x00000002) Accessing Source Directory"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["backup", "src", "repo", "/R:2", "/W:0", "/TBD"]);
    assert_eq!(code(&out), 16);
    assert_eq!(
        text(&out.stdout).matches("Waiting 0 seconds... Retrying...").count(),
        2,
        "{}",
        text(&out.stdout)
    );
    assert!(!env.repo().exists(), "a fatal run leaves no trace");
}

#[test]
fn an_unreadable_file_is_tried_r_plus_1_times_then_failed_and_carried() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    chmod(env.dir.path(), 0o755);
    write(&env.src().join("locked.txt"), b"v1");
    let first = env.run(&["backup", "src", "repo", "--series", "s"]);
    assert_eq!(code(&first), 1);
    chown_tree(&env.repo(), 65534);
    write(&env.src().join("locked.txt"), b"v2, unreadable");
    chmod(&env.src().join("locked.txt"), 0o600);
    fs::create_dir(env.path("logs")).unwrap();
    chown_tree(&env.path("logs"), 65534);
    let out = setpriv_nobody(
        &env,
        &[
            "backup",
            "src",
            "repo",
            "--series",
            "s",
            "/R:2",
            "/W:1",
            "/MT:1",
            "--json",
            "--log",
            "logs/run.log",
        ],
    );
    assert_eq!(code(&out), 8);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows(&v)[1][4], 1, "FAILED");
    assert_eq!(v["errors"][0]["attempts"], 3);
    assert_eq!(v["partial"], true);
    let log = fs::read_to_string(env.path("logs/run.log")).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.contains("locked.txt"))
        .take(11)
        .map(|l| {
            if l.len() > 20 && l.as_bytes()[19] == b' ' && l.contains(" ERROR ") {
                &l[20..]
            } else {
                l
            }
        })
        .collect();
    let path = format!("{}/locked.txt", env.src().display());
    let err = format!("ERROR 13 (0x0000000D) Copying File {path}");
    assert_eq!(
        lines,
        [
            "\t  Newer     \t            14\tlocked.txt",
            err.as_str(),
            "Permission denied",
            "Waiting 1 seconds... Retrying...",
            "\t  Newer     \t            14\tlocked.txt",
            err.as_str(),
            "Permission denied",
            "Waiting 1 seconds... Retrying...",
            "\t  Newer     \t            14\tlocked.txt",
            err.as_str(),
            "Permission denied",
        ]
    );
    assert!(log.contains("ERROR: RETRY LIMIT EXCEEDED."));
    assert_eq!(
        text(&env.run(&["cat", "repo", "locked.txt"]).stdout),
        "v1",
        "the baseline entry is carried"
    );
}

#[test]
fn a_file_that_becomes_readable_before_the_retries_run_out_is_copied() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    chmod(env.dir.path(), 0o777);
    write(&env.src().join("later.txt"), b"readable soon");
    chmod(&env.src().join("later.txt"), 0o600);
    let bin = assert_cmd::cargo::cargo_bin("robovault");
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin)
        .args(["backup", "src", "repo", "--series", "s", "/R:5", "/W:2", "/MT:1"])
        .current_dir(env.dir.path())
        .env("ROBOVAULT_FORMAT_VERSION", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux) is installed");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    use std::io::BufRead;
    // Lines are flushed as written: the first retry notice arrives while the
    // run waits.
    loop {
        let mut line = String::new();
        let n = stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "ended before retrying: {seen}");
        seen.push_str(&line);
        if line.starts_with("Waiting 2 seconds... Retrying...") {
            break;
        }
    }
    chmod(&env.src().join("later.txt"), 0o644);
    let mut rest = String::new();
    use std::io::Read;
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    seen.push_str(&rest);
    assert_eq!(status.code(), Some(1), "Copied, no FAILED: {seen}");
    assert_eq!(seen.matches(" ERROR 13 ").count(), 1, "{seen}");
    assert!(!seen.contains("RETRY LIMIT EXCEEDED"), "{seen}");
    assert!(
        seen.contains("   Files :         1         1         0         0         0         0"),
        "{seen}"
    );
}

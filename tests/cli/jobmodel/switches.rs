//! The run switches of the option table (ROBOCOPY.md §3.1): list-only,
//! threads, move, baseline, vanished files, the lock wait, exit codes, the
//! compatibility switches and bad values.

use super::*;

#[test]
fn list_only_plans_and_writes_nothing() {
    let env = Env::new();
    small_tree(&env);
    let out = env.run(&args(B, &["/L"]));
    assert_eq!(code(&out), 1, "the plan's exit code");
    assert!(!env.repo().exists(), "no repository is created");
    let log = text(&out.stdout);
    assert!(log.contains(" New Repo : "), "{log}");
    assert!(log.contains("(would be created)"), "{log}");
    assert!(log.contains("Snapshot : (none)"), "{log}");
    assert!(log.contains("New Data : n/a"), "{log}");
    json_run(&env, B);
    fs::remove_file(env.src().join("a.txt")).unwrap();
    write(&env.src().join("new"), b"n");
    let (planned_code, planned) = json_run(&env, &args(B, &["--dry-run"]));
    assert_eq!(planned["snapshot"], Value::Null);
    assert_eq!(planned["list_only"], true);
    let hist = text(&env.run(&["history", "repo"]).stdout);
    assert_eq!(hist.lines().count(), 2, "nothing committed: {hist}");
    let (real_code, real) = json_run(&env, B);
    assert_eq!(planned_code, real_code);
    assert_eq!(rows(&planned), rows(&real), "the plan is what the run does");
}

#[test]
fn threads_and_mt() {
    let env = Env::new();
    small_tree(&env);
    let out = env.run(&args(B, &["/MT"]));
    assert!(
        text(&out.stdout).contains("/MT:8"),
        "/MT alone means 8: {}",
        text(&out.stdout)
    );
    let out = env.run(&args(B, &["/MT:3"]));
    assert!(text(&out.stdout).contains("/MT:3"), "{}", text(&out.stdout));
    assert_eq!(code(&env.run(&args(B, &["--threads", "0"]))), 16);
    assert_eq!(code(&env.run(&args(B, &["--threads", "129"]))), 16);
}

#[test]
fn move_files_deletes_copied_sources_after_the_commit() {
    let env = Env::new();
    baseline(&env);
    write(&env.src().join("d/new.txt"), b"new");
    let (c, v) = json_run(&env, &args(B, &["/MOV"]));
    assert_eq!(c, 1, "{v}");
    assert!(!env.src().join("d/new.txt").exists(), "the copied file is moved");
    assert!(env.src().join("a.txt").exists(), "a Skipped file stays");
    assert_eq!(snapshot(&env)["d/new.txt"], "new", "and is in the snapshot");
    write(&env.src().join("x/y.txt"), b"y");
    json_run(&env, &args(B, &["/MOVE", "/IS"]));
    assert!(env.src().exists(), "never the root");
    let left: Vec<_> = walk(&env.src());
    assert!(
        left.is_empty(),
        "every copied file and emptied directory is gone: {left:?}"
    );
    assert_eq!(snapshot(&env)["x/y.txt"], "y");
}

#[test]
fn baseline_and_no_baseline() {
    let env = Env::new();
    baseline(&env);
    let first = history_ids(&env)[0].clone();
    write(&env.src().join("a.txt"), b"alphabet");
    json_run(&env, B);
    let (c, v) = json_run(&env, &args(B, &["--no-baseline"]));
    assert_eq!(c, 1);
    assert_eq!(rows(&v)[1], [2, 2, 0, 0, 0, 0], "everything is Lonely");
    assert_eq!(v["new_data"], 0, "deduplication still stores nothing twice");
    assert_eq!(snapshot(&env)["a.txt"], "alphabet");
    let (c, v) = json_run(&env, &args(B, &["--baseline", &first[..12]]));
    assert_eq!(c, 1, "a.txt differs from the first snapshot");
    assert_eq!(v["parent"], first.as_str());
    assert_eq!(rows(&v)[1][1], 1);
    assert_eq!(keys(&snapshot(&env)), ["a.txt", "d/", "d/b.txt", "e/"]);
    assert_eq!(code(&env.run(&args(B, &["--baseline", "x", "--no-baseline"]))), 16);
}

#[test]
fn ignore_vanished_counts_a_vanished_file_as_skipped() {
    for (extra, failed) in [(&[][..], 1u64), (&["--ignore-vanished"][..], 0)] {
        let env = Env::new();
        write(&env.src().join("gone.txt"), b"soon gone");
        let mut a = args(B, extra);
        a.push("--json");
        let child = spawn_paused_at(&env, &a, "before-read");
        fs::remove_file(env.src().join("gone.txt")).unwrap();
        let out = child.wait_with_output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(rows(&v)[1][4], failed, "{extra:?}: {v}");
        assert_eq!(rows(&v)[1][2], 1 - failed, "{extra:?}");
        assert!(
            !snapshot(&env).contains_key("gone.txt"),
            "a vanished entry leaves the snapshot"
        );
    }
}

#[test]
fn lock_wait_takes_a_duration() {
    let env = Env::new();
    small_tree(&env);
    let (c, _) = json_run(&env, &args(B, &["/LOCKWAIT:5s"]));
    assert_eq!(c, 1);
    assert_eq!(code(&env.run(&args(B, &["--lock-wait", "soon"]))), 16);
}

#[test]
fn exit_codes_posix_maps_the_bitmask() {
    let env = Env::new();
    small_tree(&env);
    assert_eq!(code(&env.run(&args(B, &["--exit-codes", "posix"]))), 0, "1 becomes 0");
    assert_eq!(
        code(&env.run(&args(B, &["/CREATE", "--exit-codes", "posix"]))),
        2,
        "16 becomes 2"
    );
}

#[test]
fn compatibility_switches_are_echoed_and_unsupported_ones_refused() {
    let env = Env::new();
    small_tree(&env);
    let out = env.run(&args(B, &["/Z", "/B", "/ZB", "/J", "/UNICODE"]));
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stdout).contains("/Z /B /ZB /J /UNICODE"),
        "{}",
        text(&out.stdout)
    );
    for s in ["/CREATE", "/UNILOG:x", "/UNILOG+:x", "/IPG:5", "/EFSRAW"] {
        let out = env.run(&args(B, &[s]));
        assert_eq!(code(&out), 16, "{s}");
        assert_eq!(
            text(&out.stderr).trim(),
            format!("ERROR : Option not supported : \"{s}\"")
        );
    }
    // A `/X` argument is a switch only when it names one; `/FOO` is a
    // filespec with a separator.
    let out = env.run(&args(B, &["/FOO"]));
    assert_eq!(code(&out), 16);
    assert!(
        text(&out.stderr).contains("Invalid Parameter #11 : \"/FOO\""),
        "{}",
        text(&out.stderr)
    );
    // An option of the other command is a usage error.
    assert_eq!(code(&env.run(&args(B, &["--force"]))), 16);
    assert_eq!(code(&env.run(&restore_args(&["--keep-extras"]))), 16);
}

#[test]
fn json_and_tee_are_exclusive() {
    let env = Env::new();
    small_tree(&env);
    assert_eq!(code(&env.run(&args(B, &["--json", "--tee", "--log", "x.log"]))), 16);
}

#[test]
fn bad_values_are_usage_errors() {
    let env = Env::new();
    small_tree(&env);
    for extra in [
        &["--copy", "QZ"][..],
        &["--lock-wait", "99999999999999999h"],
        &["--dcopy", "Y"],
    ] {
        let out = env.run(&args(B, extra));
        assert_eq!(code(&out), 16, "{extra:?}: {}", text(&out.stderr));
    }
}

#[test]
fn move_keeps_a_file_changed_after_its_read_and_refuses_followed_links() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    write(&env.src().join("b"), b"b");
    let child = spawn_paused(&env, &args(B, &["/MOV", "--json"]));
    write(&env.src().join("b"), b"b, edited after the read");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", text(&out.stdout));
    assert!(!env.src().join("a").exists(), "a was moved");
    assert_eq!(
        fs::read_to_string(env.src().join("b")).unwrap(),
        "b, edited after the read",
        "b is kept"
    );
    let hist = text(&env.run(&["history", "repo", "-v"]).stdout);
    assert!(
        hist.contains("exit=9"),
        "the run's record has the final exit code: {hist}"
    );
    let out = env.run(&args(B, &["/MOV", "--follow-links"]));
    assert_eq!(code(&out), 16);
}

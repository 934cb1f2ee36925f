//! Hostile argument values: dates and durations out of range or negative,
//! missing positional arguments, and `--json` on commands that fail. No
//! value may panic (exit 101); a bad value gets `ERROR : …` naming the whole
//! value (exit 16), a missing argument is named, and a command given
//! `--json` answers with one JSON object whatever fails.

use proptest::prelude::*;

use super::*;

/// A repository with one snapshot of series `s`.
fn one_snapshot() -> Env {
    let env = Env::new();
    write(&env.src().join("a.txt"), b"alpha");
    let out = env.run(&["backup", "src", "repo", "--series", "s", "-r", "0", "-w", "0"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    env
}

/// Exit 16 with this `ERROR :` line on stderr, and no panic.
fn refused(out: &Output, line: &str) {
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(code(out), 16, "{}{err}", text(&out.stdout));
    assert!(err.lines().any(|l| l == line), "expected {line:?} in:\n{err}");
}

#[test]
fn dates_out_of_range_or_negative_are_refused_naming_the_whole_value() {
    let env = one_snapshot();
    for (value, why) in [
        ("99999999 days ago", "out of range"),
        ("9223372036854775807 seconds ago", "out of range"),
        ("99999999999999999999 weeks ago", "out of range"),
        ("-1 days ago", "a count must not be negative"),
        ("-99999999 weeks ago", "a count must not be negative"),
    ] {
        let line = format!("ERROR : invalid date \"{value}\": {why}");
        refused(&env.run(&["ls", "repo", "--at", value]), &line);
        refused(&env.run(&["cat", "repo", "a.txt", "--at", value]), &line);
        refused(
            &env.run(&["restore", "repo", "t", "--series", "s", "--at", value]),
            &line,
        );
    }
}

#[test]
fn negative_or_overflowing_keep_within_is_refused_naming_the_whole_value() {
    let env = one_snapshot();
    refused(
        &env.run(&["forget", "repo", "--keep-within", "-1d", "--dry-run"]),
        "ERROR : invalid --keep-within \"-1d\": a duration must not be negative",
    );
    refused(
        &env.run(&["forget", "repo", "--keep-within", "99999999999999999999y", "--dry-run"]),
        "ERROR : invalid --keep-within \"99999999999999999999y\": use e.g. 30d, 2w, 6m, 1y2m, 12h",
    );
}

/// Every value is a moment or an error; never a panic.
#[test]
fn hostile_dates_never_panic() {
    let env = one_snapshot();
    for value in [
        "99999999 days ago",
        "9223372036854775807 seconds ago",
        "-9223372036854775808 weeks ago",
        "",
        " ",
        "ago",
        "1 days",
        "+262142-12-31",
        "+262142-12-31 23:59",
        "+262142-12-31T23:59:59",
        "-262143-01-01",
        "0000-01-01",
        "1000-01-01T00:00:00-23:59",
        "9999-12-31T23:59:59+23:59",
        "9999-12-31T23:59:59.999999999-23:59",
        "2025-02-30",
        "1 centuries ago",
        "0 days ago",
    ] {
        let out = env.run(&["ls", "repo", "--at", value]);
        assert!(matches!(code(&out), 0 | 16), "{value:?}: {}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{value:?}: {}",
            text(&out.stderr)
        );
    }
}

/// Any count of any unit: a moment (a snapshot or none found) or an
/// `invalid date` error, never a panic.
#[test]
fn any_count_of_any_unit_ago_never_panics() {
    let env = one_snapshot();
    let counts = prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN), 0i64..100_000];
    let units = prop::sample::select(vec!["seconds", "minutes", "hours", "days", "weeks"]);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(counts, units), |(n, unit)| {
            let value = format!("{n} {unit} ago");
            let out = env.run(&["ls", "repo", "--at", &value]);
            let err = text(&out.stderr);
            prop_assert!(!err.contains("panicked"), "{}: {}", value, err);
            prop_assert!(matches!(code(&out), 0 | 16), "{}: {}", value, err);
            if code(&out) == 16 {
                let invalid = err.contains(&format!("ERROR : invalid date \"{value}\""));
                prop_assert!(invalid || err.contains("No snapshot of series"), "{}: {}", value, err);
            }
            Ok(())
        })
        .unwrap();
}

/// One line on stdout, a JSON object with `command`, `error` and
/// `exit_code` 16.
fn answered(args: &[&str], out: &Output, command: &str) {
    assert_eq!(code(out), 16, "{args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{args:?}: one line expected: {stdout:?}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout:?}"));
    assert_eq!(v["command"], command, "{args:?}: {v}");
    assert_eq!(v["exit_code"], 16, "{args:?}: {v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{args:?}: {v}");
}

#[test]
fn every_command_given_json_answers_when_it_fails() {
    let env = one_snapshot();
    let cases: &[(&[&str], &str)] = &[
        // A missing repository.
        (&["ls", "missing", "--json"], "ls"),
        (&["history", "missing", "--json"], "history"),
        (&["versions", "missing", "a.txt", "--json"], "versions"),
        (&["verify", "missing", "--json"], "verify"),
        (&["forget", "missing", "--keep-last", "1", "--json"], "forget"),
        (&["gc", "missing", "--json"], "gc"),
        (&["stats", "missing", "--json"], "stats"),
        (&["diff", "missing", "a", "b", "--json"], "diff"),
        (&["find", "missing", "x", "--json"], "find"),
        (&["repair", "index", "missing", "--json"], "repair index"),
        (&["restore", "missing", "t", "--json"], "restore"),
        (&["backup", "missing-source", "repo", "--json"], "backup"),
        // A bad argument.
        (&["ls", "repo", "--json", "--at", "99999999 days ago"], "ls"),
        (&["history", "repo", "--json", "--no-such-switch"], "history"),
        (&["versions", "repo", "--json"], "versions"),
        (&["forget", "repo", "--json", "--keep-within", "-1d"], "forget"),
        (&["backup", "src", "repo", "--json", "--threads", "0"], "backup"),
        // A missing path.
        (&["ls", "repo", "no/such/dir", "--json"], "ls"),
        (&["versions", "repo", "no-such-file", "--json"], "versions"),
    ];
    for (args, command) in cases {
        answered(args, &env.run(args), command);
    }
}

/// Exit 16, nothing on stdout, and stderr exactly this `ERROR :` line
/// followed by the usage line.
fn usage_refused(args: &[&str], out: &Output, line: &str) {
    let err = text(&out.stderr);
    assert_eq!(code(out), 16, "{args:?}: {}{err}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "", "{args:?}");
    let expected = format!("{line}\n       (robovault help, or robovault COMMAND --help)\n");
    assert_eq!(err, expected, "{args:?}");
}

const NO_SOURCE: &str = "ERROR : No Source Directory Specified.";
const NO_DEST: &str = "ERROR : No Destination Directory Specified.";

#[test]
fn backup_and_restore_without_a_source_or_destination_say_which_in_robocopy_words() {
    let env = one_snapshot();
    // The repository is what a restore reads from: its source (§8: /SD: is
    // REPO for a restore).
    let cases: &[(&[&str], &str)] = &[
        (&["backup"], NO_SOURCE),
        (&["backup", "-r", "0"], NO_SOURCE),
        (&["backup", "src"], NO_DEST),
        (&["backup", "src", "/R:0", "--series", "s"], NO_DEST),
        (&["restore"], NO_SOURCE),
        (&["restore", "--series", "s"], NO_SOURCE),
        (&["restore", "repo"], NO_DEST),
        (&["restore", "repo", "--xo"], NO_DEST),
        (&["--exit-codes", "robocopy", "backup", "src"], NO_DEST),
    ];
    for (args, line) in cases {
        usage_refused(args, &env.run(args), line);
    }
    assert!(!env.path("t").exists());
}

#[test]
fn backup_and_restore_given_json_name_the_missing_directory_in_their_object() {
    let env = one_snapshot();
    write(&env.path("none.rcj"), b"/R:0\n");
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["backup", "--job", "none", "--json"],
            "backup",
            "No Source Directory Specified.",
        ),
        (&["backup", "--json"], "backup", "No Source Directory Specified."),
        (
            &["backup", "src", "--json"],
            "backup",
            "No Destination Directory Specified.",
        ),
        (&["restore", "--json"], "restore", "No Source Directory Specified."),
        (
            &["restore", "repo", "--json"],
            "restore",
            "No Destination Directory Specified.",
        ),
    ];
    for (args, command, error) in cases {
        let out = env.run(args);
        assert_eq!(code(&out), 16, "{args:?}: {}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(v["command"], *command, "{args:?}");
        assert_eq!(v["error"], *error, "{args:?}");
        assert_eq!(v["exit_code"], 16, "{args:?}");
        let expected = format!("ERROR : {error}\n       (robovault help, or robovault COMMAND --help)\n");
        assert_eq!(text(&out.stderr), expected, "{args:?}");
    }
}

#[test]
fn a_job_file_without_a_source_or_destination_is_refused_like_the_command_line() {
    let env = one_snapshot();
    write(&env.path("none.rcj"), b"/R:0\n/W:0\n");
    write(&env.path("sd.rcj"), b"/SD:src\n");
    write(&env.path("dd.rcj"), b"/DD:repo\n");
    write(&env.path("restore-sd.rcj"), b"/SD:repo\n/SERIES:s\n");
    let cases: &[(&[&str], &str)] = &[
        (&["backup", "--job", "none"], NO_SOURCE),
        (&["backup", "/JOB:none"], NO_SOURCE),
        (&["backup", "--job", "dd"], NO_SOURCE),
        (&["backup", "--job", "sd"], NO_DEST),
        (&["backup", "src", "--job", "none"], NO_DEST),
        (&["restore", "--job", "none"], NO_SOURCE),
        (&["restore", "--job", "restore-sd"], NO_DEST),
    ];
    for (args, line) in cases {
        usage_refused(args, &env.run(args), line);
    }
}

#[test]
fn other_commands_name_each_missing_argument_with_their_usage() {
    let env = one_snapshot();
    let cases: &[(&[&str], &str)] = &[
        (
            &["init"],
            "ERROR : missing argument REPO (usage: robovault init REPO [options])",
        ),
        (
            &["ls"],
            "ERROR : missing argument REPO (usage: robovault ls REPO [PATH] [options])",
        ),
        (
            &["ls", "--json"],
            "ERROR : missing argument REPO (usage: robovault ls REPO [PATH] [options])",
        ),
        (
            &["cat", "repo"],
            "ERROR : missing argument PATH (usage: robovault cat REPO PATH [options])",
        ),
        (
            &["cat"],
            "ERROR : missing arguments REPO and PATH (usage: robovault cat REPO PATH [options])",
        ),
        (
            &["versions", "repo"],
            "ERROR : missing argument PATH (usage: robovault versions REPO PATH [options])",
        ),
        (
            &["history"],
            "ERROR : missing argument REPO (usage: robovault history REPO [options])",
        ),
        (
            &["snapshots"],
            "ERROR : missing argument REPO (usage: robovault history REPO [options])",
        ),
        (
            &["forget", "--keep-last", "1"],
            "ERROR : missing argument REPO (usage: robovault forget REPO [options])",
        ),
        (
            &["verify", "--read-data"],
            "ERROR : missing argument REPO (usage: robovault verify REPO [options])",
        ),
        (
            &["gc"],
            "ERROR : missing argument REPO (usage: robovault gc REPO [options])",
        ),
        (
            &["stats"],
            "ERROR : missing argument REPO (usage: robovault stats REPO [options])",
        ),
        (
            &["diff", "repo"],
            "ERROR : missing arguments SNAP_A and SNAP_B (usage: robovault diff REPO SNAP_A SNAP_B [options])",
        ),
        (
            &["diff"],
            "ERROR : missing arguments REPO, SNAP_A and SNAP_B (usage: robovault diff REPO SNAP_A SNAP_B [options])",
        ),
        (
            &["find", "repo"],
            "ERROR : missing argument PATTERN (usage: robovault find REPO PATTERN [options])",
        ),
        (
            &["repair", "index"],
            "ERROR : missing argument REPO (usage: robovault repair index REPO [options])",
        ),
    ];
    for (args, line) in cases {
        let out = env.run(args);
        if args.contains(&"--json") {
            answered(args, &out, args[0]);
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(
                Some(v["error"].as_str().unwrap_or_default()),
                line.strip_prefix("ERROR : ")
            );
            let expected = format!("{line}\n       (robovault help, or robovault COMMAND --help)\n");
            assert_eq!(text(&out.stderr), expected, "{args:?}");
        } else {
            usage_refused(args, &out, line);
        }
    }
}

//! Hostile argument values: dates and durations out of range or negative,
//! and `--json` on commands that fail. No value may panic (exit 101); a
//! bad value gets `ERROR : …` naming the whole value (exit 16), and a
//! command given `--json` answers with one JSON object whatever fails.

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

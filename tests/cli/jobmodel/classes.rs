//! The classes of ROBOCOPY.md §4.1, §4.2 and §4.4 as a backup finds them:
//! lonely, same, newer, older, changed, tweaked, extra and mismatched, and
//! the §4.6 invariant of the rows.

use super::*;

#[test]
fn lonely_files_and_dirs_on_a_first_run() {
    let env = Env::new();
    small_tree(&env);
    let (c, lines) = log(&env, B);
    assert_eq!(c, 1);
    assert_eq!(
        lines,
        [
            "\t  New Dir          1\t<S>/",
            "\t  New File  \t             5\ta.txt",
            "\t  New Dir          1\t<S>/d/",
            "\t  New File  \t             3\tb.txt",
            "\t  New Dir          0\t<S>/e/",
        ]
    );
    assert_eq!(keys(&snapshot(&env)), ["a.txt", "d/", "d/b.txt", "e/"]);
}

#[test]
fn first_run_counts() {
    let env = Env::new();
    small_tree(&env);
    let (c, v) = json_run(&env, B);
    assert_eq!(c, 1);
    // The root is New Dir on a first run; directories alone set no bit.
    assert_eq!(rows(&v), [[3, 3, 0, 0, 0, 0], [2, 2, 0, 0, 0, 0], [8, 8, 0, 0, 0, 0]]);
}

#[test]
fn same_is_skipped_unread_and_listed_only_verbose() {
    let env = Env::new();
    baseline(&env);
    let (c, v) = json_run(&env, B);
    assert_eq!(c, 0);
    assert_eq!(rows(&v), [[3, 0, 3, 0, 0, 0], [2, 0, 2, 0, 0, 0], [8, 0, 8, 0, 0, 0]]);
    assert_eq!(v["read"]["files"], 0);
    let (_, lines) = log(&env, B);
    assert_eq!(
        lines,
        [
            "\t                   1\t<S>/",
            "\t                   1\t<S>/d/",
            "\t                   0\t<S>/e/"
        ]
    );
    let (_, lines) = log(&env, &args(B, &["-v"]));
    assert_eq!(
        lines,
        [
            "\t                   1\t<S>/",
            "\t        same\t             5\ta.txt",
            "\t                   1\t<S>/d/",
            "\t        same\t             3\tb.txt",
            "\t                   0\t<S>/e/",
        ]
    );
}

#[test]
fn newer_and_older_are_copied() {
    let env = Env::new();
    baseline(&env);
    set_mtime(&env.src().join("a.txt"), 1_700_000_100, 0);
    set_mtime(&env.src().join("d/b.txt"), 1_600_000_000, 0);
    let (c, lines) = log(&env, B);
    assert_eq!(c, 1);
    assert!(
        lines.contains(&"\t  Newer     \t             5\ta.txt".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"\t  Older     \t             3\tb.txt".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn changed_is_copied_and_recorded() {
    let env = Env::new();
    baseline(&env);
    write(&env.src().join("a.txt"), b"alphabet");
    set_mtime(&env.src().join("a.txt"), 1_700_000_000, 0);
    let (c, lines) = log(&env, B);
    assert_eq!(c, 1);
    assert!(
        lines.contains(&"\t  Changed   \t             8\ta.txt".to_owned()),
        "{lines:?}"
    );
    assert_eq!(snapshot(&env)["a.txt"], "alphabet");
}

#[test]
fn tweaked_with_same_content_is_skipped_but_its_mode_recorded() {
    let env = Env::new();
    baseline(&env);
    chmod(&env.src().join("a.txt"), 0o600);
    let (c, v) = json_run(&env, B);
    assert_eq!(c, 0, "same content: Skipped, no bit");
    assert_eq!(rows(&v)[1], [2, 0, 2, 0, 0, 0]);
    assert_eq!(v["read"]["files"], 1, "a Tweaked file is re-read (§4.2)");
    let ls = text(&env.run(&["ls", "repo"]).stdout);
    assert!(ls.contains("-rw-------  5"), "{ls}");
    chmod(&env.src().join("a.txt"), 0o640);
    let (_, lines) = log(&env, &args(B, &["-v"]));
    assert!(
        lines.contains(&"\t     tweaked\t             5\ta.txt".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn tweaked_with_include_tweaked_is_copied() {
    let env = Env::new();
    baseline(&env);
    chmod(&env.src().join("a.txt"), 0o600);
    let (c, lines) = log(&env, &args(B, &["--it"]));
    assert_eq!(c, 1);
    assert!(
        lines.contains(&"\t  Tweaked   \t             5\ta.txt".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn modified_content_behind_a_kept_mtime_is_copied() {
    let env = Env::new();
    baseline(&env);
    let p = env.src().join("a.txt");
    let (s, ns) = mtime(&p);
    write(&p, b"ALPHA");
    set_mtime(&p, s, ns);
    let (c, lines) = log(&env, B);
    assert_eq!(c, 1);
    assert!(
        lines.contains(&"\t  Modified  \t             5\ta.txt".to_owned()),
        "{lines:?}"
    );
    assert_eq!(snapshot(&env)["a.txt"], "ALPHA");
}

#[test]
fn extras_leave_the_snapshot_and_set_bit_2() {
    let env = Env::new();
    baseline(&env);
    fs::remove_dir_all(env.src().join("d")).unwrap();
    let (c, lines) = log(&env, B);
    assert_eq!(c, 2);
    assert_eq!(
        lines,
        [
            "\t                   1\t<S>/",
            "\t*EXTRA Dir        -1\t<S>/d/",
            "\t*EXTRA File \t             3\t<S>/d/b.txt",
            "\t                   0\t<S>/e/",
        ]
    );
    assert_eq!(keys(&snapshot(&env)), ["a.txt", "e/"]);
}

#[test]
fn every_entry_inside_an_extra_directory_counts() {
    let env = Env::new();
    baseline(&env);
    write(&env.src().join("d/sub/c.txt"), b"sea");
    json_run(&env, B);
    fs::remove_dir_all(env.src().join("d")).unwrap();
    let (c, v) = json_run(&env, B);
    assert_eq!(c, 2);
    let r = rows(&v);
    assert_eq!(r[0][5], 2, "d and d/sub");
    assert_eq!(r[1][5], 2, "b.txt and c.txt");
    assert_eq!(r[2][5], 6);
    assert_invariant(&r);
}

#[test]
fn mismatched_kinds_purge_the_baseline_side() {
    let env = Env::new();
    baseline(&env);
    fs::remove_file(env.src().join("a.txt")).unwrap();
    fs::create_dir(env.src().join("a.txt")).unwrap();
    let (c, v) = json_run(&env, B);
    // The file leaves as an extra, the directory comes in as new (§4.4).
    assert_eq!(c, 2, "{v}");
    let r = rows(&v);
    assert_eq!(r[0][1], 1, "the new directory is Copied");
    assert_eq!(r[1][5], 1, "the old file is an Extra");
    assert_eq!(r[0][3] + r[1][3], 0, "no Mismatch under purging");
    assert!(keys(&snapshot(&env)).contains(&"a.txt/"));
}

#[test]
fn mismatched_kinds_under_keep_extras_are_reported_and_kept() {
    let env = Env::new();
    baseline(&env);
    fs::remove_file(env.src().join("a.txt")).unwrap();
    fs::create_dir(env.src().join("a.txt")).unwrap();
    let (c, lines) = log(&env, &args(B, &["--keep-extras"]));
    assert_eq!(c, 4);
    assert!(
        lines.contains(&"\t*MISMATCH   \t             0\t<S>/a.txt".to_owned()),
        "{lines:?}"
    );
    assert_eq!(snapshot(&env)["a.txt"], "alpha", "the baseline file is kept");
}

#[test]
fn list_only_presumes_a_tweaked_file_unchanged_as_the_run_finds() {
    let env = Env::new();
    baseline(&env);
    chmod(&env.src().join("a.txt"), 0o600);
    let (plan, pv) = json_run(&env, &args(B, &["/L"]));
    let (real, rv) = json_run(&env, B);
    assert_eq!((plan, real), (0, 0));
    assert_eq!(rows(&pv), rows(&rv));
}

#[test]
fn a_directory_that_vanishes_after_the_listing_keeps_the_rows_balanced() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    fs::create_dir(env.src().join("gone")).unwrap();
    let child = spawn_paused_at(&env, &args(B, &["--json"]), "before-list");
    fs::remove_dir(env.src().join("gone")).unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = rows(&v);
    assert_invariant(&r);
    assert_eq!(
        r[0],
        [2, 1, 0, 0, 1, 0],
        "the root copied, the vanished directory FAILED"
    );
    assert_eq!(r[1], [1, 1, 0, 0, 0, 0]);
}

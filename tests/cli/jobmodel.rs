//! The robocopy job model of ROBOCOPY.md, end to end: each class (§4), each
//! row of the option table (§3.1), the log lines and summary (§6), retries
//! (§7), job files (§8), and the commands of the seed. Expectations are
//! written from ROBOCOPY.md, never saved from the program's output.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use chrono::TimeZone;

use super::*;

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

// ---------------------------------------------------------------------------
// Classes (§4.1, §4.2, §4.4)
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// The option table (§3.1)
// ---------------------------------------------------------------------------

#[test]
fn subdirs_leaves_out_empty_directories_and_e_restores_them() {
    let env = Env::new();
    small_tree(&env);
    let (c, v) = json_run(&env, &args(B, &["/S"]));
    assert_eq!(c, 1);
    assert_eq!(rows(&v)[0][0], 3, "e/ is met and counted");
    assert_eq!(keys(&snapshot(&env)), ["a.txt", "d/", "d/b.txt"]);
    json_run(&env, &args(B, &["-s", "-e"]));
    assert_eq!(
        keys(&snapshot(&env)),
        ["a.txt", "d/", "d/b.txt", "e/"],
        "/E overrides /S"
    );
}

#[test]
fn lev_walks_the_top_levels_only() {
    let env = Env::new();
    small_tree(&env);
    write(&env.src().join("d/deep/x.txt"), b"x");
    let (c, v) = json_run(&env, &args(B, &["/LEV:2"]));
    assert_eq!(c, 1);
    // Level 1 is the root; d and e are level 2; d/deep is not walked.
    assert_eq!(keys(&snapshot(&env)), ["a.txt", "d/", "d/b.txt", "e/"]);
    assert_eq!(rows(&v)[1][0], 2);
    let bad = env.run(&args(B, &["--lev", "0"]));
    assert_eq!(code(&bad), 16);
}

#[test]
fn purge_and_mirror_change_nothing_in_a_backup() {
    // Extras always leave a backup's snapshot; /PURGE and /MIR say so again.
    for switch in ["/PURGE", "/MIR", "--purge", "--mirror"] {
        let env = Env::new();
        baseline(&env);
        fs::remove_file(env.src().join("a.txt")).unwrap();
        let (c, v) = json_run(&env, &args(B, &[switch]));
        assert_eq!(c, 2, "{switch}: {v}");
        assert_eq!(rows(&v)[1][5], 1);
        assert_eq!(keys(&snapshot(&env)), ["d/", "d/b.txt", "e/"]);
    }
}

#[test]
fn keep_extras_carries_them_and_refuses_purge() {
    let env = Env::new();
    baseline(&env);
    fs::remove_file(env.src().join("a.txt")).unwrap();
    let (c, v) = json_run(&env, &args(B, &["--keep-extras"]));
    assert_eq!(c, 2, "still reported and counted");
    assert_eq!(rows(&v)[1][5], 1);
    assert_eq!(snapshot(&env)["a.txt"], "alpha");
    let bad = env.run(&args(B, &["--keep-extras", "--mirror"]));
    assert_eq!(code(&bad), 16, "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).starts_with("ERROR : "), "{}", text(&bad.stderr));
}

#[test]
fn exclude_older_newer_changed_keep_the_baseline_entry() {
    for (switch, change, tag) in [
        ("/XO", 1_600_000_000i64, "       older"),
        ("/XN", 1_800_000_000, "       newer"),
        ("/XC", 0, "     changed"),
    ] {
        let env = Env::new();
        baseline(&env);
        let p = env.src().join("a.txt");
        if change == 0 {
            write(&p, b"alphabet");
            set_mtime(&p, 1_700_000_000, 0);
        } else {
            write(&p, b"ALPHA");
            set_mtime(&p, change, 0);
        }
        let (c, lines) = log(&env, &args(B, &[switch, "-v"]));
        assert_eq!(c, 0, "{switch}: skipped, nothing copied");
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("\t{tag}\t"))),
            "{switch}: {lines:?}"
        );
        assert_eq!(snapshot(&env)["a.txt"], "alpha", "{switch}: the baseline entry stays");
    }
}

#[test]
fn exclude_lonely_adds_nothing_new() {
    let env = Env::new();
    baseline(&env);
    write(&env.src().join("new.txt"), b"new");
    fs::create_dir(env.src().join("newdir")).unwrap();
    let (c, v) = json_run(&env, &args(B, &["/XL"]));
    assert_eq!(c, 0);
    assert_eq!(rows(&v)[1], [3, 0, 3, 0, 0, 0]);
    let snap = snapshot(&env);
    assert!(
        !snap.contains_key("new.txt") && !snap.contains_key("newdir/"),
        "{snap:?}"
    );
}

#[test]
fn exclude_extra_ignores_extras_and_carries_them() {
    let env = Env::new();
    baseline(&env);
    fs::remove_file(env.src().join("a.txt")).unwrap();
    let (c, lines) = log(&env, &args(B, &["/XX"]));
    assert_eq!(c, 0, "no bit 2 under /XX");
    assert!(!lines.iter().any(|l| l.contains("EXTRA")), "{lines:?}");
    assert_eq!(snapshot(&env)["a.txt"], "alpha");
}

#[test]
fn include_same_rereads_every_file() {
    let env = Env::new();
    baseline(&env);
    let (c, v) = json_run(&env, &args(B, &["/IS"]));
    assert_eq!(c, 1);
    assert_eq!(rows(&v)[1], [2, 2, 0, 0, 0, 0]);
    assert_eq!(v["read"]["files"], 2);
    let (_, lines) = log(&env, &args(B, &["/IS"]));
    assert!(
        lines.contains(&"\t  Same      \t             5\ta.txt".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn include_modified_is_accepted_and_changes_nothing() {
    let env = Env::new();
    baseline(&env);
    let (c, v) = json_run(&env, &args(B, &["/IM"]));
    assert_eq!(c, 0);
    assert_eq!(rows(&v)[1], [2, 0, 2, 0, 0, 0]);
}

#[test]
fn filespecs_and_include_files_select_by_name() {
    let env = Env::new();
    small_tree(&env);
    write(&env.src().join("d/c.log"), b"log");
    let (c, v) = json_run(&env, &args(B, &["*.TXT"]));
    assert_eq!(c, 1);
    // Files that do not match are not counted at all (§4.6).
    assert_eq!(rows(&v)[1], [2, 2, 0, 0, 0, 0]);
    assert!(!snapshot(&env).contains_key("d/c.log"));
    let env = Env::new();
    small_tree(&env);
    write(&env.src().join("d/c.log"), b"log");
    json_run(&env, &args(B, &["/IF", "*.log"]));
    assert_eq!(keys(&snapshot(&env)), ["d/", "d/c.log", "e/"]);
    let bad = env.run(&args(B, &["sub/x.txt"]));
    assert_eq!(code(&bad), 16);
    assert_eq!(
        text(&bad.stderr).lines().next(),
        Some("ERROR : Invalid Parameter #11 : \"sub/x.txt\"")
    );
}

#[test]
fn exclude_file_skips_with_the_named_tag() {
    let env = Env::new();
    small_tree(&env);
    write(&env.src().join("d/c.log"), b"log");
    let (c, lines) = log(&env, &args(B, &["/XF", "*.log", "-v"]));
    assert_eq!(c, 1);
    assert!(
        lines.contains(&"\t       named\t             3\tc.log".to_owned()),
        "{lines:?}"
    );
    let (_, v) = json_run(&env, &args(B, &["--xf", "*.log"]));
    assert_eq!(rows(&v)[1], [3, 0, 3, 0, 0, 0], "counted, Skipped");
    assert!(!snapshot(&env).contains_key("d/c.log"));
    // A path pattern is anchored at the root.
    json_run(&env, &args(B, &["--xf", "d/b.txt"]));
    assert!(!snapshot(&env).contains_key("d/b.txt"));
    assert!(snapshot(&env).contains_key("a.txt"));
}

#[test]
fn exclude_dir_is_not_walked() {
    let env = Env::new();
    small_tree(&env);
    write(&env.src().join("node_modules/m.js"), b"m");
    write(&env.src().join("d/node_modules/n.js"), b"n");
    let (c, lines) = log(&env, &args(B, &["/XD", "node_modules", "-v"]));
    assert_eq!(c, 1);
    assert!(
        lines.contains(&"\t   named dir        \t<S>/node_modules/".to_owned()),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains(".js")), "{lines:?}");
    let snap = snapshot(&env);
    assert!(!snap.keys().any(|k| k.contains("node_modules")), "{snap:?}");
}

#[test]
fn case_sensitive_match() {
    let env = Env::new();
    small_tree(&env);
    json_run(&env, &args(B, &["/XF", "A.TXT"]));
    assert!(!snapshot(&env).contains_key("a.txt"), "case-insensitive by default");
    json_run(&env, &args(B, &["/XF", "A.TXT", "--case-sensitive-match"]));
    assert!(snapshot(&env).contains_key("a.txt"));
}

#[test]
fn attribute_filters_r_and_h() {
    let env = Env::new();
    small_tree(&env);
    write(&env.src().join(".hidden"), b"h");
    chmod(&env.src().join("a.txt"), 0o444);
    let (_, lines) = log(&env, &args(B, &["/XA:H", "-v"]));
    assert!(
        lines.contains(&"\t      attrib\t             1\t.hidden".to_owned()),
        "{lines:?}"
    );
    assert!(!snapshot(&env).contains_key(".hidden"));
    json_run(&env, &args(B, &["--ia", "R"]));
    assert_eq!(keys(&snapshot(&env)), ["a.txt", "d/", "e/"]);
    let bad = env.run(&args(B, &["--ia", "Q"]));
    assert_eq!(code(&bad), 16);
}

#[test]
fn archive_switches_are_windows_only() {
    let env = Env::new();
    small_tree(&env);
    for s in ["/A", "/M"] {
        let out = env.run(&args(B, &[s]));
        assert_eq!(code(&out), 16, "{s}");
        assert!(text(&out.stderr).contains("Windows"), "{}", text(&out.stderr));
    }
}

#[test]
fn size_filters_keep_the_limit_itself() {
    let env = Env::new();
    small_tree(&env);
    write(&env.src().join("big"), &[7u8; 2048]);
    let (_, lines) = log(&env, &args(B, &["/MAX:2K", "/MIN:4", "-v"]));
    assert!(
        lines.contains(&"\t       small\t             3\tb.txt".to_owned()),
        "{lines:?}"
    );
    assert_eq!(
        keys(&snapshot(&env)),
        ["a.txt", "big", "d/", "e/"],
        "2048 bytes is kept by /MAX:2K"
    );
    let (_, lines) = log(&env, &args(B, &["--max-size", "2047", "-v"]));
    assert!(
        lines.contains(&"\t       large\t         2.0 k\tbig".to_owned()),
        "{lines:?}"
    );
    assert_eq!(code(&env.run(&args(B, &["--max-size", "ten"]))), 16);
}

#[test]
fn age_filters_use_the_mtime() {
    let env = Env::new();
    small_tree(&env);
    let now = chrono::Utc::now().timestamp();
    set_mtime(&env.src().join("a.txt"), now - 20 * 86_400, 0);
    set_mtime(&env.src().join("d/b.txt"), now - 86_400, 0);
    let (_, lines) = log(&env, &args(B, &["/MAXAGE:10", "-v"]));
    assert!(
        lines.contains(&"\t     too old\t             5\ta.txt".to_owned()),
        "{lines:?}"
    );
    let (_, lines) = log(&env, &args(B, &["/MINAGE:10", "-v"]));
    assert!(
        lines.contains(&"\t     too new\t             3\tb.txt".to_owned()),
        "{lines:?}"
    );
    assert_eq!(keys(&snapshot(&env)), ["a.txt", "d/", "e/"]);
    // A date: YYYYMMDD at midnight (read as days, it would exclude nothing).
    set_mtime(&env.src().join("a.txt"), 978_307_200, 0); // 2001-01-01
    let (_, lines) = log(&env, &args(B, &["/MAXAGE:20100101", "-v"]));
    assert!(
        lines.contains(&"\t     too old\t             5\ta.txt".to_owned()),
        "{lines:?}"
    );
    assert_eq!(keys(&snapshot(&env)), ["d/", "d/b.txt", "e/"]);
}

#[test]
fn access_date_filters_use_the_atime() {
    let env = Env::new();
    small_tree(&env);
    let now = chrono::Utc::now().timestamp();
    // set_mtime sets the access time too.
    set_mtime(&env.src().join("a.txt"), now - 20 * 86_400, 0);
    set_mtime(&env.src().join("d/b.txt"), now - 86_400, 0);
    let (_, lines) = log(&env, &args(B, &["/MAXLAD:10", "-v"]));
    assert!(
        lines.contains(&"\t     too old\t             5\ta.txt".to_owned()),
        "{lines:?}"
    );
    let (_, lines) = log(&env, &args(B, &["/MINLAD:10", "-v"]));
    assert!(
        lines.contains(&"\t     too new\t             3\tb.txt".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn link_filters_and_link_recording() {
    let env = Env::new();
    small_tree(&env);
    std::os::unix::fs::symlink("d", env.src().join("to-dir")).unwrap();
    std::os::unix::fs::symlink("a.txt", env.src().join("to-file")).unwrap();
    std::os::unix::fs::symlink("nowhere", env.src().join("dangling")).unwrap();
    let (_, v) = json_run(&env, &args(B, &["/SL", "/SJ"]));
    let snap = snapshot(&env);
    assert_eq!(snap["to-dir"], "-> d", "links are recorded as links by default");
    // A link counts in the Files row with 0 bytes (§4.5).
    assert_eq!(rows(&v)[1][0], 5);
    assert_eq!(rows(&v)[2][0], 8);
    json_run(&env, &args(B, &["/XJD"]));
    assert_eq!(
        keys(&snapshot(&env)),
        ["a.txt", "d/", "d/b.txt", "dangling", "e/", "to-file"]
    );
    json_run(&env, &args(B, &["/XJF"]));
    assert_eq!(keys(&snapshot(&env)), ["a.txt", "d/", "d/b.txt", "e/", "to-dir"]);
    let (_, lines) = log(&env, &args(B, &["/XJ", "-v"]));
    assert!(
        lines.contains(&"\t    junction\t             0\tto-dir".to_owned()),
        "{lines:?}"
    );
    assert_eq!(keys(&snapshot(&env)), ["a.txt", "d/", "d/b.txt", "e/"]);
}

#[test]
fn follow_links_records_targets_and_stops_at_cycles() {
    let env = Env::new();
    small_tree(&env);
    std::os::unix::fs::symlink("..", env.src().join("d/up")).unwrap();
    std::os::unix::fs::symlink("d", env.src().join("to-dir")).unwrap();
    let (c, lines) = log(&env, &args(B, &["--follow-links", "-v"]));
    assert_eq!(c, 1);
    assert!(
        lines.contains(&"\t    junction\t             0\tup".to_owned()),
        "{lines:?}"
    );
    let snap = snapshot(&env);
    assert_eq!(snap["to-dir/b.txt"], "bee", "a directory link is walked as a directory");
    assert!(!snap.contains_key("d/up") && !snap.contains_key("d/up/"), "{snap:?}");
}

#[test]
fn fft_and_dst_tolerances() {
    for (shift, switches, expected) in [
        (2, &["/FFT"][..], 0),
        (2, &[][..], 1),
        (3602, &["/DST", "/FFT"][..], 0),
        (3602, &["/DST"][..], 1),
        (3600, &["/DST"][..], 0),
    ] {
        let env = Env::new();
        baseline(&env);
        set_mtime(&env.src().join("a.txt"), 1_700_000_000 + shift, 0);
        let (c, _) = json_run(&env, &args(B, switches));
        assert_eq!(c, expected, "{shift} s apart under {switches:?}");
    }
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

#[test]
fn copy_and_dcopy_choose_what_restore_applies() {
    let env = Env::new();
    small_tree(&env);
    chmod(&env.src().join("a.txt"), 0o600);
    set_mtime(&env.src().join("d"), 1_500_000_000, 0);
    json_run(&env, B);
    let (c, _) = json_run(&env, &restore_args(&["/COPY:DT", "/DCOPY:D"]));
    assert_eq!(c, 1);
    let out = restore_target(&env);
    assert_eq!(mtime(&out.join("a.txt")), (1_700_000_000, 0), "T applied");
    assert_ne!(
        fs::metadata(out.join("a.txt")).unwrap().mode() & 0o777,
        0o600,
        "A not applied"
    );
    assert_ne!(mtime(&out.join("d")).0, 1_500_000_000, "directory times need /DCOPY:…T");
    fs::remove_dir_all(&out).unwrap();
    json_run(&env, &restore_args(&[]));
    assert_eq!(
        fs::metadata(out.join("a.txt")).unwrap().mode() & 0o777,
        0o600,
        "DAT by default"
    );
    assert_eq!(mtime(&out.join("d")).0, 1_500_000_000, "DCOPY:DAT by default");
    for s in ["/SEC", "/COPYALL", "/NODCOPY"] {
        let (c, _) = json_run(&env, &restore_args(&[s]));
        assert!(c < 8, "{s}");
    }
    assert_eq!(code(&env.run(&restore_args(&["/COPY:DQ"]))), 16);
}

#[test]
fn nocopy_writes_nothing_and_with_mirror_only_deletes() {
    let env = Env::new();
    baseline(&env);
    fs::create_dir_all(restore_target(&env)).unwrap();
    write(&restore_target(&env).join("stale.txt"), b"old");
    let (c, _) = json_run(&env, &restore_args(&["/MIR", "/NOCOPY"]));
    assert_eq!(c, 2, "the extra is deleted, nothing copied");
    let names: Vec<_> = walk(&restore_target(&env))
        .iter()
        .map(|p| p.strip_prefix(restore_target(&env)).unwrap().display().to_string())
        .collect();
    assert!(!names.contains(&"stale.txt".to_owned()), "{names:?}");
    assert!(!names.contains(&"a.txt".to_owned()), "{names:?}");
    let bad = env.run(&args(B, &["/NOCOPY"]));
    assert_eq!(code(&bad), 16, "a backup always records content");
}

#[test]
fn attr_add_and_remove_r_on_restore() {
    let env = Env::new();
    baseline(&env);
    json_run(&env, &restore_args(&["/A+:R"]));
    assert_eq!(
        fs::metadata(restore_target(&env).join("a.txt")).unwrap().mode() & 0o222,
        0
    );
    fs::remove_dir_all(restore_target(&env)).unwrap();
    chmod(&env.src().join("a.txt"), 0o444);
    json_run(&env, B);
    json_run(&env, &restore_args(&["/A-:R"]));
    assert_eq!(
        fs::metadata(restore_target(&env).join("a.txt")).unwrap().mode() & 0o200,
        0o200
    );
}

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

// ---------------------------------------------------------------------------
// Log switches (§6)
// ---------------------------------------------------------------------------

#[test]
fn log_switches_shape_the_lines() {
    let env = Env::new();
    baseline(&env);
    write(&env.src().join("d/big.bin"), &[1u8; 3000]);
    set_mtime(&env.src().join("d/big.bin"), 1_700_000_000, 0);
    let line = |extra: &[&str]| {
        let (_, lines) = log(&env, &args(B, &[&["/L"], extra].concat()));
        lines.into_iter().find(|l| l.contains("big.bin")).unwrap_or_default()
    };
    assert_eq!(line(&[]), "\t  New File  \t         2.9 k\tbig.bin");
    assert_eq!(line(&["/BYTES"]), "\t  New File  \t          3000\tbig.bin");
    assert_eq!(line(&["/NC"]), "\t            \t         2.9 k\tbig.bin");
    assert_eq!(line(&["/NS"]), "\t  New File  \t              \tbig.bin");
    assert_eq!(line(&["/FP"]), "\t  New File  \t         2.9 k\t<S>/d/big.bin");
    let local = chrono::Local
        .timestamp_opt(1_700_000_000, 0)
        .unwrap()
        .format("%Y/%m/%d %H:%M:%S")
        .to_string();
    assert_eq!(
        line(&["/TS"]),
        format!("\t  New File  \t         2.9 k\t{local}\tbig.bin")
    );
    let eta = line(&["/ETA"]);
    assert!(eta.starts_with("\t  New File  \t         2.9 k\tbig.bin\t"), "{eta}");
    assert!(eta.contains(" -> "), "{eta}");
    assert_eq!(line(&["/NFL"]), "");
    let (_, lines) = log(&env, &args(B, &["/L", "/NDL"]));
    assert!(lines.iter().all(|l| !l.contains("<S>")), "{lines:?}");
    let out = env.run(&args(B, &["/L", "/NJH"]));
    assert!(!text(&out.stdout).contains("ROBOVAULT"));
    assert!(text(&out.stdout).contains("   Ended : "));
    let out = env.run(&args(B, &["/L", "/NJS"]));
    assert!(text(&out.stdout).contains("  Options : "));
    assert!(!text(&out.stdout).contains("Total    Copied"));
}

#[test]
fn report_all_extras_lists_files_outside_the_filespecs() {
    let env = Env::new();
    baseline(&env);
    let (c, lines) = log(&env, &args(B, &["*.none", "/X"]));
    assert_eq!(c, 0, "listed, not counted");
    assert!(
        lines.contains(&"\t*EXTRA File \t             5\t<S>/a.txt".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn log_file_truncates_appends_and_tees() {
    let env = Env::new();
    small_tree(&env);
    let out = env.run(&args(B, &["/LOG:run.log"]));
    assert!(text(&out.stdout).is_empty(), "the log goes to the file only");
    let first = fs::read_to_string(env.path("run.log")).unwrap();
    assert_eq!(first.matches("ROBOVAULT    ::").count(), 1);
    let logged = format!(" Log File : {}", env.path("run.log").display());
    assert!(first.contains(&logged), "{first}");
    env.run(&args(B, &["/LOG+:run.log"]));
    let second = fs::read_to_string(env.path("run.log")).unwrap();
    assert_eq!(second.matches("ROBOVAULT    ::").count(), 2, "appended");
    env.run(&args(B, &["/LOG:run.log"]));
    assert_eq!(
        fs::read_to_string(env.path("run.log"))
            .unwrap()
            .matches("ROBOVAULT    ::")
            .count(),
        1
    );
    let out = env.run(&args(B, &["/LOG:run.log", "/TEE"]));
    assert_eq!(
        text(&out.stdout),
        fs::read_to_string(env.path("run.log")).unwrap(),
        "/TEE: the same lines"
    );
    let out = env.run(&args(B, &["/LOG:run.log", "--json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["command"], "backup");
    assert!(fs::read_to_string(env.path("run.log"))
        .unwrap()
        .contains("Total    Copied"));
    let bad = env.run(&args(B, &["/LOG:nodir/x.log"]));
    assert_eq!(code(&bad), 16);
    assert!(text(&bad.stderr).contains("Opening Log File"), "{}", text(&bad.stderr));
}

/// Replaces the variable parts of a log: times, ids, the temp root.
fn normalise(log: &str, env: &Env) -> String {
    let root = env.dir.path().display().to_string();
    let mut out = Vec::new();
    for line in log.replace(&root, "<R>").lines() {
        let l = if let Some(i) = line.find(" ERROR ") {
            if i == 19 {
                format!("<DATE>{}", &line[i..])
            } else {
                line.to_owned()
            }
        } else if let Some(opts) = line.strip_prefix("  Options : ") {
            // The order of the switches is the implementation's (§6.2).
            let mut t: Vec<&str> = opts.split(' ').collect();
            t.sort_unstable();
            format!("  Options : {}", t.join(" "))
        } else if line.starts_with("  Started : ") {
            "  Started : <TIME>".into()
        } else if line.starts_with("   Ended : ") {
            "   Ended : <TIME>".into()
        } else if line.starts_with("   Times : ") {
            "   Times : <TIMES>".into()
        } else if line.starts_with("   Speed : ") {
            "   Speed : <SPEED>".into()
        } else if line.starts_with("Snapshot : ") && line.len() == 75 {
            "Snapshot : <ID>".into()
        } else if line.starts_with("  Parent : ") && line.len() == 75 {
            "  Parent : <ID>".into()
        } else if line.starts_with("     Dest : ") && line.contains(" baseline ") && !line.ends_with("none]") {
            let i = line.find(" baseline ").unwrap();
            format!("{} baseline <ID>]", &line[..i])
        } else {
            line.to_owned()
        };
        out.push(l);
    }
    out.join("\n") + "\n"
}

#[test]
fn full_log_of_a_first_backup() {
    let env = Env::new();
    small_tree(&env);
    let out = env.run(&[
        "backup", "src", "repo", "--series", "s", "/R:0", "/W:0", "/MT:1", "/XD", "e",
    ]);
    assert_eq!(code(&out), 1);
    // Written by hand from ROBOCOPY.md §6.1–§6.4.
    let expected = "\
-------------------------------------------------------------------------------
   ROBOVAULT    ::     Robust Versioned Backup   v0.1.0
-------------------------------------------------------------------------------

  Started : <TIME>
   Source : <R>/src/
     Dest : <R>/repo/ [series s, baseline none]
 New Repo : <R>/repo/ (created)

    Files : *.*
 Exc Dirs : e

  Options : *.* /S /E /DCOPY:DAT /COPY:DAT /MT:1 /R:0 /W:0

------------------------------------------------------------------------------

\t  New Dir          1\t<R>/src/
\t  New File  \t             5\ta.txt
\t  New Dir          1\t<R>/src/d/
\t  New File  \t             3\tb.txt

------------------------------------------------------------------------------

               Total    Copied   Skipped  Mismatch    FAILED    Extras
    Dirs :         3         2         1         0         0         0
   Files :         2         2         0         0         0         0
   Bytes :         8         8         0         0         0         0
   Times : <TIMES>

   Speed : <SPEED>
   Speed : <SPEED>
Snapshot : <ID>
  Parent : none
New Data :         8
   Ended : <TIME>
";
    assert_eq!(normalise(&text(&out.stdout), &env), normalise(expected, &env));
}

#[test]
fn full_log_of_an_incremental_backup_with_an_extra_and_a_failure() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    chmod(env.dir.path(), 0o755);
    small_tree(&env);
    let first = env.run(&["backup", "src", "repo", "--series", "s"]);
    assert_eq!(code(&first), 1);
    chown_tree(&env.repo(), 65534);
    chown_tree(&env.src(), 65534);
    fs::remove_file(env.src().join("a.txt")).unwrap();
    write(&env.src().join("secret.key"), &[b'k'; 64]);
    chmod(&env.src().join("secret.key"), 0o600);
    write(&env.src().join("d/b.txt"), b"beetle");
    set_mtime(&env.src().join("d/b.txt"), 1_700_000_100, 0);
    std::os::unix::fs::lchown(env.src().join("d/b.txt"), Some(65534), Some(65534)).unwrap();
    let out = setpriv_nobody(
        &env,
        &[
            "backup", "src", "repo", "--series", "s", "/R:1", "/W:0", "/MT:1", "/XD", "e",
        ],
    );
    assert_eq!(code(&out), 11, "1 copied + 2 extra + 8 failed: {}", text(&out.stderr));
    // Written by hand from ROBOCOPY.md §6.1–§6.4 and §7.1: one retry gives
    // two attempts, two ERROR lines, one Waiting line.
    let expected = "\
-------------------------------------------------------------------------------
   ROBOVAULT    ::     Robust Versioned Backup   v0.1.0
-------------------------------------------------------------------------------

  Started : <TIME>
   Source : <R>/src/
     Dest : <R>/repo/ [series s, baseline <ID>]

    Files : *.*
 Exc Dirs : e

  Options : *.* /S /E /DCOPY:DAT /COPY:DAT /MT:1 /R:1 /W:0

------------------------------------------------------------------------------

\t                   1\t<R>/src/
\t*EXTRA File \t             5\t<R>/src/a.txt
\t  New File  \t            64\tsecret.key
<DATE> ERROR 13 (0x0000000D) Copying File <R>/src/secret.key
Permission denied
Waiting 0 seconds... Retrying...
\t  New File  \t            64\tsecret.key
<DATE> ERROR 13 (0x0000000D) Copying File <R>/src/secret.key
Permission denied
ERROR: RETRY LIMIT EXCEEDED.
\t                   1\t<R>/src/d/
\t  Newer     \t             6\tb.txt

------------------------------------------------------------------------------

               Total    Copied   Skipped  Mismatch    FAILED    Extras
    Dirs :         3         0         3         0         0         0
   Files :         2         1         0         0         1         1
   Bytes :        70         6         0         0        64         5
   Times : <TIMES>

   Speed : <SPEED>
   Speed : <SPEED>
Snapshot : <ID>
  Parent : <ID>
New Data :         6
   Ended : <TIME>
";
    assert_eq!(normalise(&text(&out.stdout), &env), normalise(expected, &env));
}

#[test]
fn full_log_of_a_mirror_restore_dry_run() {
    let env = Env::new();
    baseline(&env);
    let out_dir = restore_target(&env);
    write(&out_dir.join("stale.txt"), b"stale");
    write(&out_dir.join("a.txt"), b"alpha");
    set_mtime(&out_dir.join("a.txt"), 1_700_000_000, 0);
    let out = env.run(&[
        "restore", "repo", "out", "--series", "s", "/MIR", "/L", "/MT:1", "/R:0", "/W:0",
    ]);
    assert_eq!(code(&out), 3, "1 copied + 2 extra");
    let id = &history_ids(&env)[0];
    let expected = format!(
        "\
-------------------------------------------------------------------------------
   ROBOVAULT    ::     Robust Versioned Backup   v0.1.0
-------------------------------------------------------------------------------

  Started : <TIME>
   Source : <R>/repo/ [series s, snapshot {id}]
     Dest : <R>/out/

    Files : *.*

  Options : *.* /S /E /PURGE /MIR /L /DCOPY:DAT /COPY:DAT /MT:1 /R:0 /W:0

------------------------------------------------------------------------------

\t                   1\t<R>/out/
\t*EXTRA File \t             5\t<R>/out/stale.txt
\t  New Dir          1\t<R>/out/d/
\t  New File  \t             3\tb.txt
\t  New Dir          0\t<R>/out/e/

------------------------------------------------------------------------------

               Total    Copied   Skipped  Mismatch    FAILED    Extras
    Dirs :         3         2         1         0         0         0
   Files :         2         1         1         0         0         1
   Bytes :         8         3         5         0         0         5
   Times : <TIMES>

   Speed : <SPEED>
   Speed : <SPEED>
Snapshot : <ID>
   Ended : <TIME>
"
    );
    assert_eq!(normalise(&text(&out.stdout), &env), normalise(&expected, &env));
    let left: Vec<_> = walk(&out_dir);
    assert_eq!(left.len(), 2, "/L changes nothing: {left:?}");
}

// ---------------------------------------------------------------------------
// Retries (§7)
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Restore (§5)
// ---------------------------------------------------------------------------

#[test]
fn restore_classes_against_the_target() {
    let env = Env::new();
    baseline(&env);
    let (c, v) = json_run(&env, &restore_args(&[]));
    assert_eq!(c, 1);
    assert_eq!(rows(&v), [[3, 3, 0, 0, 0, 0], [2, 2, 0, 0, 0, 0], [8, 8, 0, 0, 0, 0]]);
    // An unchanged re-restore skips everything.
    let (c, v) = json_run(&env, &restore_args(&[]));
    assert_eq!(c, 0);
    assert_eq!(rows(&v)[1], [2, 0, 2, 0, 0, 0]);
    let out = restore_target(&env);
    // Edited in TARGET after the snapshot: Older, overwritten; kept by /XO.
    write(&out.join("a.txt"), b"edited");
    let (c, _) = json_run(&env, &restore_args(&["/XO"]));
    assert_eq!(c, 0);
    assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "edited");
    let (_, lines) = log(&env, &restore_args(&[]));
    assert!(
        lines.contains(&"\t  Older     \t             5\ta.txt".to_owned()),
        "{lines:?}"
    );
    assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "alpha");
    // Tweaked: metadata applied, content not rewritten.
    chmod(&out.join("a.txt"), 0o600);
    let (c, _) = json_run(&env, &restore_args(&[]));
    assert_eq!(c, 0);
    assert_eq!(fs::metadata(out.join("a.txt")).unwrap().mode() & 0o777, 0o644);
    // An extra is reported and left; a mismatch is reported and left.
    write(&out.join("extra.txt"), b"x");
    fs::remove_file(out.join("d/b.txt")).unwrap();
    fs::create_dir(out.join("d/b.txt")).unwrap();
    let (c, lines) = log(&env, &restore_args(&[]));
    assert_eq!(c, 6, "{lines:?}");
    assert!(
        lines.contains(&"\t*EXTRA File \t             1\t<T>/extra.txt".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"\t*MISMATCH   \t             3\t<T>/d/b.txt".to_owned()),
        "{lines:?}"
    );
    assert!(out.join("extra.txt").exists() && out.join("d/b.txt").is_dir());
}

#[test]
fn mirror_restore_deletes_extras_but_keeps_protected_names_at_any_depth() {
    let env = Env::new();
    baseline(&env);
    let out = restore_target(&env);
    json_run(&env, &restore_args(&[]));
    write(&out.join("extra.txt"), b"x");
    write(&out.join("old/keep.log"), b"k");
    write(&out.join("old/drop.txt"), b"d");
    write(&out.join("old/Cache/c"), b"c");
    fs::remove_file(out.join("d/b.txt")).unwrap();
    fs::create_dir(out.join("d/b.txt")).unwrap();
    let (c, v) = json_run(&env, &restore_args(&["/MIR", "/XF", "*.log", "/XD", "Cache"]));
    assert_eq!(c, 3, "{v}");
    assert_invariant(&rows(&v));
    let mut left: Vec<String> = walk(&out)
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().display().to_string())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "a.txt",
            "d",
            "d/b.txt",
            "e",
            "old",
            "old/Cache",
            "old/Cache/c",
            "old/keep.log"
        ]
    );
    assert!(out.join("d/b.txt").is_file(), "the mismatch was deleted and re-created");
}

#[test]
fn mirror_restore_never_follows_a_link_in_target() {
    let env = Env::new();
    baseline(&env);
    let out = restore_target(&env);
    let outside = env.path("outside");
    write(&outside.join("precious"), b"p");
    fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("d")).unwrap();
    let (c, _) = json_run(&env, &restore_args(&["/MIR"]));
    assert!(c < 8);
    assert!(outside.join("precious").exists(), "nothing outside TARGET changes");
    assert!(out.join("d").is_dir() && !fs::symlink_metadata(out.join("d")).unwrap().file_type().is_symlink());
}

#[test]
fn restore_refusals() {
    let env = Env::new();
    baseline(&env);
    let home = env.path("home");
    fs::create_dir_all(&home).unwrap();
    let refused = env
        .cmd()
        .args(["restore", "repo", home.to_str().unwrap(), "--series", "s", "/MIR"])
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_eq!(code(&refused), 16);
    assert!(
        text(&refused.stderr).contains("home directory"),
        "{}",
        text(&refused.stderr)
    );
    let forced = env
        .cmd()
        .args([
            "restore",
            "repo",
            home.to_str().unwrap(),
            "--series",
            "s",
            "/MIR",
            "--force",
        ])
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(code(&forced) < 8, "{}", text(&forced.stderr));
    let root = env.run(&["restore", "repo", "/", "--series", "s", "/MIR", "/L"]);
    assert_eq!(code(&root), 16, "a filesystem root, under /L too");
    // The target holds the repository: refused, and with --force protected.
    let around = env.run(&["restore", "repo", ".", "--series", "s", "/MIR"]);
    assert_eq!(code(&around), 16);
    let forced = env.run(&["restore", "repo", ".", "--series", "s", "/MIR", "--force"]);
    assert!(code(&forced) < 8, "{}", text(&forced.stderr));
    assert!(env.repo().join("config").exists(), "the repository is kept");
    let inside = env.run(&["restore", "repo", "repo/x", "--series", "s"]);
    assert_eq!(code(&inside), 16);
}

#[test]
fn swapped_backup_arguments_are_refused() {
    let env = Env::new();
    baseline(&env);
    let out = env.run(&["backup", "repo", "src"]);
    assert_eq!(code(&out), 16);
    assert!(
        text(&out.stderr).contains("are SOURCE and REPO swapped?"),
        "{}",
        text(&out.stderr)
    );
    let inside = env.run(&["backup", ".", "repo", "--series", "t"]);
    assert_eq!(code(&inside), 16, "the repository inside the source");
    let excluded = env.run(&["backup", ".", "repo", "--series", "t", "/XD", "repo", "/L"]);
    assert!(code(&excluded) < 8, "an exclusion lifts it: {}", text(&excluded.stderr));
}

// ---------------------------------------------------------------------------
// Job files (§8)
// ---------------------------------------------------------------------------

#[test]
fn save_job_then_job_gives_the_same_run() {
    let env = Env::new();
    small_tree(&env);
    write(&env.src().join("x.tmp"), b"t");
    write(&env.src().join("cache/c"), b"c");
    let out = env.run(&[
        "backup",
        "src",
        "repo",
        "--series",
        "s",
        "/XD",
        "cache",
        "/XF",
        "*.tmp",
        "/R:1",
        "/W:0",
        "/MT:1",
        "/SAVE:nightly",
        "/QUIT",
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(text(&out.stdout), " Quitting : /QUIT Specified on Command Line.\n");
    assert!(!env.repo().exists(), "/QUIT runs nothing");
    let job = fs::read_to_string(env.path("nightly.rcj")).unwrap();
    for must in [
        "/SD:",
        "/DD:",
        "\t/S\t",
        "\t/E\t",
        "/DCOPY:DAT",
        "/COPY:DAT",
        "/R:1",
        "/W:0",
        "/XD",
        "\tcache",
        "/SERIES:s",
    ] {
        assert!(job.contains(must), "{must} in {job}");
    }
    let direct = env.run(&[
        "backup", "src", "repo2", "--series", "s", "/XD", "cache", "/XF", "*.tmp", "/R:1", "/W:0", "/MT:1",
    ]);
    let via_job = env.run(&["backup", "/JOB:nightly"]);
    let via_job_text = text(&via_job.stdout);
    assert_eq!(code(&via_job), code(&direct), "{via_job_text}{}", text(&via_job.stderr));
    let options = |t: &str| t.lines().find(|l| l.starts_with("  Options : ")).map(str::to_owned);
    assert_eq!(options(&via_job_text), options(&text(&direct.stdout)));
    let summary = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("   Files :") || l.starts_with("    Dirs :"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&via_job_text), summary(&text(&direct.stdout)));
    assert!(via_job_text.contains(" Job File : "), "{via_job_text}");
    // Command-line scalars override the job's; positionals override /SD: /DD:.
    let over = env.run(&["backup", "src", "repo3", "--job", "nightly", "/R:2"]);
    assert!(text(&over.stdout).contains("/R:2"), "{}", text(&over.stdout));
    assert!(env.path("repo3").exists());
    // A template without /SD: needs a source.
    env.run(&["backup", "src", "repo", "/SAVE:tpl", "/NOSD", "/QUIT"]);
    let none = env.run(&["backup", "/JOB:tpl"]);
    assert_eq!(code(&none), 16);
    assert_eq!(
        text(&none.stderr),
        "ERROR : No Source Directory Specified.\n       (robovault help, or robovault COMMAND --help)\n"
    );
}

#[test]
fn a_job_file_written_by_robocopy_is_read() {
    let env = Env::new();
    small_tree(&env);
    write(&env.src().join("r\u{e9}sum\u{e9}.tmp"), b"tmp");
    write(&env.src().join("node_modules/m.js"), b"m");
    let src = env.src().display().to_string();
    let repo = env.repo().display().to_string();
    // ROBOCOPY.md §8's sample, as robocopy writes it: CRLF, cp1252.
    let text_job = format!(
        ":: robovault job\r\n\t/SD:{src}/\t:: Source Directory.\r\n\t/DD:{repo}/\t:: Destination Directory.\r\n\t/SERIES:finance\r\n\t/XD\t\t:: eXclude Directories matching these names\r\n\t\tnode_modules\r\n\t/XF\t\t:: eXclude Files matching these names\r\n\t\tr\u{e9}sum\u{e9}.tmp\t:: temp files\r\n\r\n\t/R:0\r\n\t/W:0\r\n"
    );
    let bytes: Vec<u8> = text_job
        .chars()
        .map(|c| if c == '\u{e9}' { 0xE9 } else { c as u8 })
        .collect();
    fs::write(env.path("FINANCE.RCJ"), bytes).unwrap();
    let utf8 = env.run(&["backup", "/JOB:FINANCE"]);
    assert_eq!(code(&utf8), 16, "not UTF-8 without --job-encoding");
    let out = env.run(&["backup", "/JOB:FINANCE", "--job-encoding", "cp1252", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["series"], "finance");
    let list = text(&env.run(&["ls", "repo", "--series", "finance"]).stdout);
    assert!(!list.contains("sum") && !list.contains("node_modules"), "{list}");
    assert!(list.contains("a.txt"), "{list}");
    // A bad line names its number.
    fs::write(env.path("bad.rcj"), "/NP\r\n/BOGUS\r\n").unwrap();
    let bad = env.run(&["backup", "src", "repo", "/JOB:bad"]);
    assert_eq!(code(&bad), 16);
    assert_eq!(
        text(&bad.stderr).trim(),
        "ERROR : Invalid Job File, Line #2 :\"/BOGUS\""
    );
    let missing = env.run(&["backup", "src", "repo", "/JOB:nope"]);
    assert_eq!(code(&missing), 16);
    assert!(
        text(&missing.stderr).contains("Opening Job File"),
        "{}",
        text(&missing.stderr)
    );
}

// ---------------------------------------------------------------------------
// The seed's commands, with Unix paths
// ---------------------------------------------------------------------------

#[test]
fn seed_incremental_with_log_append() {
    let env = Env::new();
    small_tree(&env);
    let src = env.src().display().to_string();
    let repo = env.repo().display().to_string();
    let logf = env.path("robovault.log").display().to_string();
    let log_arg = format!("/LOG+:{logf}");
    let run = || env.run(&["backup", &src, &repo, "/E", "/XO", "/R:3", "/W:5", &log_arg, "/NP"]);
    let first = run();
    assert_eq!(code(&first), 1, "{}", text(&first.stderr));
    assert!(text(&first.stdout).is_empty());
    write(&env.src().join("a.txt"), b"newer");
    let second = run();
    assert_eq!(code(&second), 1);
    let log = fs::read_to_string(&logf).unwrap();
    assert_eq!(log.matches("ROBOVAULT    ::").count(), 2, "{log}");
    assert!(log.contains("/XO"), "{log}");
    let name = shown_name(&src, "a.txt");
    assert!(
        log.contains(&format!("\t  Newer     \t             5\t{name}\n")),
        "{log}"
    );
}

/// A file line's name under the default threads: the full path when more
/// than one thread runs (every core: ROBOCOPY.md §6.2), else the base name.
fn shown_name(root: &str, rel: &str) -> String {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        format!("{root}/{rel}")
    } else {
        rel.rsplit('/').next().unwrap_or(rel).to_owned()
    }
}

#[test]
fn seed_exclusions() {
    let env = Env::new();
    small_tree(&env);
    for p in [
        "Temp/t",
        "Cache/c",
        ".git/HEAD",
        "node_modules/m.js",
        "x.log",
        "y.tmp",
        "z.bak",
        "d/w.LOG",
    ] {
        write(&env.src().join(p), b"-");
    }
    let out = env.run(&[
        "backup",
        "src",
        "repo",
        "--series",
        "s",
        "/XD",
        "Temp",
        "Cache",
        ".git",
        "node_modules",
        "/XF",
        "*.log",
        "*.tmp",
        "*.bak",
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert_eq!(keys(&snapshot(&env)), ["a.txt", "d/", "d/b.txt", "e/"]);
}

#[test]
fn seed_mirror_with_copy_dt() {
    let env = Env::new();
    baseline(&env);
    fs::remove_file(env.src().join("a.txt")).unwrap();
    let out = env.run(&["backup", "src", "repo", "--series", "s", "/MIR", "/COPY:DT"]);
    assert_eq!(code(&out), 2);
    assert_eq!(keys(&snapshot(&env)), ["d/", "d/b.txt", "e/"]);
}

#[test]
fn seed_mirror_restore_dry_run() {
    let env = Env::new();
    baseline(&env);
    let repo = env.repo().display().to_string();
    let target = env.path("restore").display().to_string();
    let out = env.run(&["restore", &repo, &target, "/MIR", "/L"]);
    assert_eq!(code(&out), 1, "the plan: files to copy: {}", text(&out.stderr));
    assert!(!env.path("restore").exists(), "/L creates no TARGET");
    let name = shown_name(&target, "a.txt");
    assert!(
        text(&out.stdout).contains(&format!("\t  New File  \t             5\t{name}\n")),
        "{}",
        text(&out.stdout)
    );
}

/// Runs the binary under a pseudo-terminal (`script` from util-linux), so
/// that its stdout is a terminal.
pub(super) fn on_a_terminal(env: &Env, a: &[&str]) -> Option<String> {
    let bin = assert_cmd::cargo::cargo_bin("robovault");
    let mut cmdline = format!("'{}'", bin.display());
    for arg in a {
        cmdline.push_str(&format!(" '{arg}'"));
    }
    let out = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .current_dir(env.dir.path())
        .output();
    match out {
        Ok(o) => Some(text(&o.stdout)),
        Err(e) => {
            assert!(!in_ci(), "script (util-linux) is needed for the terminal test: {e}");
            None
        }
    }
}

#[test]
fn a_progress_line_only_on_a_terminal_and_never_under_np() {
    let env = Env::new();
    small_tree(&env);
    let Some(tty) = on_a_terminal(&env, &args(B, &["/L"])) else {
        return;
    };
    assert!(tty.contains(" of 2 files, "), "a status line on a terminal: {tty}");
    assert!(tty.contains("ETA "), "{tty}");
    let Some(np) = on_a_terminal(&env, &args(B, &["/L", "/NP"])) else {
        return;
    };
    assert!(!np.contains(" files, "), "none under /NP: {np}");
    let piped = text(&env.run(&args(B, &["/L"])).stdout);
    assert!(!piped.contains(" files, "), "none in a pipe: {piped}");
    env.run(&args(B, &["/L", "/LOG:l.log"]));
    assert!(
        !fs::read_to_string(env.path("l.log")).unwrap().contains(" files, "),
        "none in a log file"
    );
}

// ---------------------------------------------------------------------------
// Regressions found in review
// ---------------------------------------------------------------------------

#[test]
fn a_forced_mirror_never_enters_the_repository_even_when_the_snapshot_has_it() {
    let env = Env::new();
    write(&env.src().join("vault/x"), b"snapshot's x");
    write(&env.src().join("keep"), b"k");
    fs::create_dir_all(env.path("tgt")).unwrap();
    let out = env.run(&["backup", "src", "tgt/vault", "--series", "s"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let before: Vec<PathBuf> = walk(&env.path("tgt/vault"));
    let out = env.run(&["restore", "tgt/vault", "tgt", "--series", "s", "--mirror", "--force"]);
    assert!(code(&out) < 8, "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(walk(&env.path("tgt/vault")), before, "the repository is untouched");
    assert!(!env.path("tgt/vault/x").exists(), "nothing is written into it");
    assert_eq!(fs::read_to_string(env.path("tgt/keep")).unwrap(), "k");
    let v = env.run(&["verify", "tgt/vault"]);
    assert_eq!(code(&v), 0, "{}", text(&v.stdout));
}

#[test]
fn a_saved_job_keeps_every_parameter() {
    let env = Env::new();
    small_tree(&env);
    write(&env.src().join("d/c.log"), b"log");
    json_run(&env, B);
    // Backup: positional filespecs, --nodcopy, stored-default retries.
    let cfg = env.path("cfg");
    let with_cfg = |a: &[&str]| env.cmd().args(a).env("XDG_CONFIG_HOME", &cfg).output().unwrap();
    with_cfg(&["backup", "src", "repo", "--series", "s", "/R:4", "/W:1", "/REG", "/L"]);
    let out = with_cfg(&[
        "backup",
        "src",
        "repo",
        "--series",
        "t",
        "*.log",
        "/NODCOPY",
        "/SAVE:logs",
        "/QUIT",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let job = fs::read_to_string(env.path("logs.rcj")).unwrap();
    assert!(
        job.contains("/NODCOPY") && job.contains("\t\t*.log") && job.contains("/R:4") && job.contains("/W:1"),
        "{job}"
    );
    let out = env.run(&["backup", "/JOB:logs", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows(&v)[1][0], 1, "only *.log: {v}");
    // Restore: a path, --snapshot and --mirror.
    let first = history_ids(&env)[0].clone();
    write(&restore_target(&env).join("mine.txt"), b"mine");
    let out = env.run(&[
        "restore",
        "repo",
        "out",
        "--series",
        "s",
        "d/b.txt",
        "--snapshot",
        &first,
        "/MIR",
        "/SAVE:rs",
        "/QUIT",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = env.run(&["restore", "/JOB:rs"]);
    assert!(code(&out) < 8, "{}", text(&out.stderr));
    assert!(
        restore_target(&env).join("mine.txt").exists(),
        "only d/b.txt is selected: nothing else is an extra"
    );
    assert_eq!(fs::read_to_string(restore_target(&env).join("d/b.txt")).unwrap(), "bee");
    assert!(!restore_target(&env).join("a.txt").exists());
}

#[test]
fn threads_on_the_command_line_with_a_job() {
    let env = Env::new();
    small_tree(&env);
    env.run(&["backup", "src", "repo", "/SAVE:j", "/QUIT"]);
    let out = env.run(&["backup", "--job", "j", "--threads", "2", "/L"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("/MT:2"), "{}", text(&out.stdout));
}

#[test]
fn job_file_lines_are_checked_one_by_one() {
    let env = Env::new();
    small_tree(&env);
    for (body, bad) in [
        ("/NP\n/XD:foo\n", "Line #2 :\"/XD:foo\""),
        ("/NP\n\n/R:abc\n", "Line #3 :\"/R:abc\""),
    ] {
        fs::write(env.path("bad.rcj"), body).unwrap();
        let out = env.run(&["backup", "src", "repo", "/JOB:bad"]);
        assert_eq!(code(&out), 16, "{body}");
        assert_eq!(text(&out.stderr).trim(), format!("ERROR : Invalid Job File, {bad}"));
    }
    write(&env.src().join("-old.txt"), b"o");
    fs::write(env.path("dash.rcj"), "/XF\n\t-old.txt\n").unwrap();
    let out = env.run(&["backup", "src", "repo", "--series", "s", "/JOB:dash"]);
    assert_eq!(code(&out), 1, "a value may start with a dash: {}", text(&out.stderr));
    assert!(!snapshot(&env).contains_key("-old.txt"));
}

#[test]
fn a_mirror_mismatch_against_a_protected_entry_is_a_mismatch_not_a_failure() {
    let env = Env::new();
    write(&env.src().join("build"), b"file");
    json_run(&env, B);
    write(&restore_target(&env).join("build/out.o"), b"o");
    let (c, v) = json_run(&env, &restore_args(&["--mirror", "--xd", "build"]));
    assert_eq!(c, 4, "{v}");
    assert_eq!(rows(&v)[1][3], 1);
    assert_eq!(v["errors"].as_array().unwrap().len(), 0);
    assert!(restore_target(&env).join("build/out.o").exists());
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
fn attr_letters_act_when_r_is_among_them() {
    let env = Env::new();
    baseline(&env);
    json_run(&env, &restore_args(&["/A+:RA"]));
    assert_eq!(
        fs::metadata(restore_target(&env).join("a.txt")).unwrap().mode() & 0o222,
        0
    );
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

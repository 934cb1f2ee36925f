//! The selection rows of the option table (ROBOCOPY.md §3.1): depth, file
//! specs, class, name, attribute, size, age and link filters, tolerances,
//! and what purge and keep-extras do to a backup.

use super::*;

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

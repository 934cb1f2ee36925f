//! Job files (ROBOCOPY.md §8): saved and run again, written by robocopy, and
//! checked line by line.

use super::*;

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

//! Nightly operations: schedules (systemd units checked by
//! `systemd-analyze verify`, crontab lines), `schedule run` with its hooks,
//! overlap protection, completions and the manual page.

use super::*;

/// A schedule environment: definitions under `cfg`, units under `units`.
fn sched(env: &Env, a: &[&str]) -> Output {
    env.cmd()
        .args(a)
        .env("XDG_CONFIG_HOME", env.path("cfg"))
        .output()
        .unwrap()
}

#[test]
fn schedule_add_writes_units_that_systemd_accepts() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let out = sched(
        &env,
        &[
            "schedule",
            "add",
            "nightly",
            "--daily",
            "02:00",
            "--weekly",
            "MON,THU",
            "--unit-dir",
            "units",
            "--",
            "backup",
            "src",
            "repo",
            "/XD",
            "cache",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("systemctl --user list-timers robovault-nightly.timer"),
        "{said}"
    );
    let timer = fs::read_to_string(env.path("units/robovault-nightly.timer")).unwrap();
    assert!(timer.contains("\nOnCalendar=Mon,Thu *-*-* 02:00:00\n"), "{timer}");
    assert!(timer.contains("\nPersistent=true\n"), "{timer}");
    let service = fs::read_to_string(env.path("units/robovault-nightly.service")).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("robovault");
    assert!(
        service.contains(&format!("\nExecStart={} schedule run nightly\n", bin.display())),
        "{service}"
    );
    if !have("systemd-analyze") {
        return;
    }
    let verify = |dir: &str| {
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(env.path(&format!("{dir}/robovault-nightly.timer")))
            .arg(env.path(&format!("{dir}/robovault-nightly.service")))
            .output()
            .unwrap()
    };
    let ok = verify("units");
    assert!(ok.status.success(), "{}{}", text(&ok.stdout), text(&ok.stderr));
    // The check can fail: a broken calendar is refused.
    fs::create_dir(env.path("broken")).unwrap();
    fs::write(env.path("broken/robovault-nightly.service"), &service).unwrap();
    fs::write(
        env.path("broken/robovault-nightly.timer"),
        timer.replace("OnCalendar=Mon,Thu *-*-* 02:00:00", "OnCalendar=someday at two"),
    )
    .unwrap();
    assert!(
        !verify("broken").status.success(),
        "systemd-analyze rejects a bad calendar"
    );
}

#[test]
fn schedule_cron_line_parses_and_list_and_remove() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let out = sched(
        &env,
        &[
            "schedule", "add", "n2", "--daily", "23:45", "--weekly", "sun,Mon", "--cron", "--", "backup", "src", "repo",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let line = text(&out.stdout).lines().last().unwrap().to_owned();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&fields[..5], ["45", "23", "*", "*", "1,0"], "{line}");
    assert_eq!(&fields[6..], ["schedule", "run", "n2"]);
    assert!(Path::new(fields[5]).is_absolute());
    let list = sched(&env, &["schedule", "list"]);
    assert_eq!(text(&list.stdout), "n2  Mon,Sun 23:45  robovault backup src repo\n");
    let list = sched(&env, &["schedule", "list", "--json"]);
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["name"], "n2");
    assert_eq!(v[0]["version"], 1);
    let again = sched(
        &env,
        &[
            "schedule", "add", "n2", "--daily", "01:00", "--cron", "--", "backup", "src", "repo",
        ],
    );
    assert_eq!(code(&again), 16, "an existing name");
    let rm = sched(&env, &["schedule", "remove", "n2"]);
    assert_eq!(code(&rm), 0, "{}", text(&rm.stderr));
    assert_eq!(text(&sched(&env, &["schedule", "list"]).stdout), "");
    assert_eq!(code(&sched(&env, &["schedule", "remove", "n2"])), 16);
}

#[test]
fn schedule_add_refuses_a_bad_command_or_time() {
    let env = Env::new();
    for a in [
        &[
            "schedule", "add", "x", "--daily", "25:00", "--", "backup", "src", "repo",
        ][..],
        &[
            "schedule", "add", "x", "--daily", "02:00", "--", "backup", "src", "repo", "/BOGUS",
        ],
        &["schedule", "add", "x", "--daily", "02:00", "--", "gc", "repo"],
        &[
            "schedule", "add", "x y", "--daily", "02:00", "--", "backup", "src", "repo",
        ],
        &[
            "schedule", "add", "x", "--daily", "02:00", "--weekly", "someday", "--", "backup", "src", "repo",
        ],
    ] {
        let out = sched(&env, a);
        assert_eq!(code(&out), 16, "{a:?}");
        assert!(text(&out.stderr).starts_with("ERROR : "), "{}", text(&out.stderr));
    }
    assert!(!env.path("cfg/robovault/schedules").exists() || walk(&env.path("cfg/robovault/schedules")).is_empty());
}

fn env_file(p: &Path) -> std::collections::BTreeMap<String, String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn schedule_run_runs_the_job_and_its_hooks() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let hook = |name: &str| format!("env | grep ^ROBOVAULT_ > {}", env.path(name).display());
    let (ok, fail, fin) = (hook("success.env"), hook("failure.env"), hook("finish.env"));
    let out = sched(
        &env,
        &[
            "schedule",
            "add",
            "job",
            "--daily",
            "02:00",
            "--cron",
            "--",
            "backup",
            "src",
            "repo",
            "--series",
            "s",
            "/LOG:run.log",
            "--on-success",
            &ok,
            "--on-failure",
            &fail,
            "--on-finish",
            &fin,
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    // The timer runs it from /; relative paths were resolved when it was added.
    let run = env
        .cmd()
        .args(["schedule", "run", "job"])
        .current_dir("/")
        .env("XDG_CONFIG_HOME", env.path("cfg"))
        .output()
        .unwrap();
    assert_eq!(code(&run), 1, "{}", text(&run.stderr));
    let e = env_file(&env.path("success.env"));
    assert_eq!(e["ROBOVAULT_EXIT_CODE"], "1");
    assert_eq!(e["ROBOVAULT_STATUS"], "success");
    assert_eq!(e["ROBOVAULT_FILES_COPIED"], "1");
    assert_eq!(e["ROBOVAULT_SERIES"], "s");
    assert_eq!(e["ROBOVAULT_SNAPSHOT"].len(), 64);
    assert_eq!(e["ROBOVAULT_LOG"], env.path("run.log").display().to_string());
    assert_eq!(env_file(&env.path("finish.env"))["ROBOVAULT_EXIT_CODE"], "1");
    assert!(!env.path("failure.env").exists(), "--on-failure only after a failure");
    // A fatal run: the source is gone.
    fs::remove_dir_all(env.src()).unwrap();
    fs::remove_file(env.path("finish.env")).unwrap();
    let run = sched(&env, &["schedule", "run", "job"]);
    assert_eq!(code(&run), 16);
    let e = env_file(&env.path("failure.env"));
    assert_eq!(e["ROBOVAULT_EXIT_CODE"], "16");
    assert_eq!(e["ROBOVAULT_STATUS"], "failure");
    assert!(!e["ROBOVAULT_ERROR"].is_empty(), "{e:?}");
    assert_eq!(env_file(&env.path("finish.env"))["ROBOVAULT_EXIT_CODE"], "16");
    let log = fs::read_to_string(env.path("run.log")).unwrap();
    assert!(
        log.contains("Accessing Source Directory"),
        "the fatal error is logged: {log}"
    );
    assert_eq!(code(&sched(&env, &["schedule", "run", "nope"])), 16);
}

#[test]
fn a_failing_hook_is_reported_and_changes_no_exit_code() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let out = env.run(&["backup", "src", "repo", "--on-finish", "exit 3", "--json"]);
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("ERROR : hook --on-finish \"exit 3\" exited with 3"),
        "{}",
        text(&out.stderr)
    );
    let _: Value = serde_json::from_slice(&out.stdout).expect("the JSON on stdout stays clean");
    let out = env.run(&["backup", "src", "repo", "--on-finish", "echo hello", "--json"]);
    let _: Value = serde_json::from_slice(&out.stdout).expect("a hook's output goes to stderr");
    assert!(text(&out.stderr).contains("hello"));
}

#[test]
fn an_overlapping_scheduled_run_waits_then_fails_and_logs_it() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let out = sched(
        &env,
        &[
            "schedule",
            "add",
            "job",
            "--daily",
            "02:00",
            "--cron",
            "--",
            "backup",
            "src",
            "repo",
            "--lock-wait",
            "1s",
            "/LOG:second.log",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    env.run(&["backup", "src", "repo"]);
    write(&env.src().join("b"), b"b");
    // The first run holds the lock, paused before its commit.
    let mut first = spawn_paused(&env, &["backup", "src", "repo"]);
    let second = sched(&env, &["schedule", "run", "job"]);
    assert_eq!(code(&second), 16);
    let log = fs::read_to_string(env.path("second.log")).unwrap();
    assert!(log.contains("repository is locked by pid"), "{log}");
    assert!(log.contains("wait or pass --lock-wait"), "{log}");
    assert!(
        text(&second.stderr).contains("repository is locked by pid"),
        "{}",
        text(&second.stderr)
    );
    assert_eq!(first.wait().unwrap().code(), Some(1), "the first run is unharmed");
}

#[test]
fn completions_and_man_page() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = env.run(&["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}");
        let t = text(&out.stdout);
        assert!(
            t.contains("robovault") && t.contains("exclude-dir"),
            "{shell}: {}",
            &t[..t.len().min(200)]
        );
    }
    let man = env.run(&["man"]);
    assert_eq!(code(&man), 0);
    let t = text(&man.stdout);
    assert!(
        t.starts_with(".ie") || t.starts_with(".TH"),
        "{}",
        &t[..t.len().min(200)]
    );
    assert!(t.contains("robovault"));
}

/// Three runs of series `s`: 2 files, then a third, then one unreadable
/// (as nobody) or simply deleted.
fn three_runs(env: &Env) {
    write(&env.src().join("a"), &random_bytes(100_000, 1));
    write(&env.src().join("b"), &random_bytes(50_000, 2));
    env.backup_json();
    write(&env.src().join("c"), &random_bytes(20_000, 3));
    env.backup_json();
    fs::remove_file(env.src().join("b")).unwrap();
    env.backup_json();
}

#[test]
fn stats_reports_sizes_ratios_and_each_run() {
    let env = Env::new();
    three_runs(&env);
    let out = env.run(&["stats", "repo", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["command"], "stats");
    let runs = v["series"][0]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let bytes: Vec<u64> = runs.iter().map(|r| r["bytes"].as_u64().unwrap()).collect();
    assert_eq!(bytes, [150_000, 170_000, 120_000], "what a full restore of each writes");
    let new: Vec<u64> = runs.iter().map(|r| r["new_data"].as_u64().unwrap()).collect();
    assert_eq!(new, [150_000, 20_000, 0]);
    assert_eq!(v["data_raw"], 170_000, "unique content");
    // 440,000 bytes in all snapshots over 170,000 unique.
    let dedup = v["dedup_ratio"].as_f64().unwrap();
    assert!((dedup - 440_000.0 / 170_000.0).abs() < 1e-9, "{dedup}");
    assert!(v["disk_bytes"].as_u64().unwrap() >= v["pack_bytes"].as_u64().unwrap());
    let textual = text(&env.run(&["stats", "repo"]).stdout);
    assert!(
        textual.contains("  runs           3, new data 166.0 k in all"),
        "{textual}"
    );
    assert_eq!(
        textual.lines().filter(|l| l.contains("  +")).count(),
        3,
        "one chart line per run: {textual}"
    );
    assert_eq!(code(&env.run(&["stats", "repo", "--series", "nope"])), 16);
}

#[test]
fn the_html_report_loads_in_headless_chromium() {
    let env = Env::new();
    three_runs(&env);
    let out = env.run(&["stats", "repo", "--html", "report.html"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let html = fs::read_to_string(env.path("report.html")).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    if !have("chromium") {
        return;
    }
    let load = |file: &str| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
            ])
            .arg(format!("file://{}", env.path(file).display()))
            .output()
            .unwrap()
    };
    let console = |o: &Output| {
        text(&o.stderr)
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let page = load("report.html");
    let dom = text(&page.stdout);
    assert!(console(&page).is_empty(), "console messages: {:?}", console(&page));
    assert_eq!(dom.matches("<tr class=\"run").count(), 3, "{dom}");
    assert!(dom.contains("data-runs=\"3\""));
    assert_eq!(dom.matches("<svg").count(), 4, "four charts");
    // The console check can fail: a page with an error is caught.
    fs::write(
        env.path("bad.html"),
        "<html><body><script>nosuch();</script></body></html>",
    )
    .unwrap();
    assert!(!console(&load("bad.html")).is_empty());
}

#[test]
fn verify_and_gc_show_a_status_line_only_on_a_terminal() {
    let env = Env::new();
    three_runs(&env);
    let Some(tty) = on_a_terminal(&env, &["verify", "repo", "--read-data"]) else {
        return;
    };
    assert!(tty.contains(" packs, ") && tty.contains("ETA"), "{tty}");
    assert!(tty.contains("no damage found"), "{tty}");
    let piped = text(&env.run(&["verify", "repo", "--read-data"]).stdout);
    assert!(!piped.contains(" packs, "), "{piped}");
    let Some(np) = on_a_terminal(&env, &["verify", "repo", "--np"]) else {
        return;
    };
    assert!(!np.contains(" packs, "), "{np}");
    // gc shows it while repacking.
    env.run(&["forget", "repo", "--keep-last", "1"]);
    let Some(gc) = on_a_terminal(&env, &["gc", "repo", "--max-unused", "0%"]) else {
        return;
    };
    assert!(gc.contains(" packs, "), "{gc}");
}

#[test]
fn errors_name_the_object_and_the_fix() {
    let env = Env::new();
    write(&env.src().join("d/f"), b"f");
    env.backup_json();
    let id = history_ids(&env)[0].clone();
    for (args, must) in [
        (
            &["ls", "nope"][..],
            &["nope is not a robovault repository", "robovault init"][..],
        ),
        (
            &["ls", "repo", "--snapshot", "abcdef12"],
            &["no snapshot abcdef12", "robovault history"],
        ),
        (
            &["ls", "repo", "--series", "x"],
            &["no series named \"x\"", "robovault history"],
        ),
        (&["ls", "repo", "nosuch"], &["nosuch is not in snapshot", id.as_str()]),
        (
            &["cat", "repo", "d"],
            &["d: not a regular file in snapshot", "ls lists directories"],
        ),
        (&["versions", "repo", "nosuch"], &["nosuch was never in series \"s\""]),
    ] {
        let out = env.run(args);
        assert_eq!(code(&out), 16, "{args:?}");
        let err = text(&out.stderr);
        for m in must {
            assert!(err.contains(m), "{args:?}: {m} in {err}");
        }
    }
}

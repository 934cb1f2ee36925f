//! Where a password comes from, at the edges the binary shows: the two
//! options together are a usage error, hooks never see the
//! `ROBOVAULT_PASSWORD*` variables, the process cannot be read by another of
//! the same user, and `schedule add` turns a source into options and a
//! systemd credential. (The sources themselves are tested beside their code
//! in `cli/src/password.rs`.)

use std::collections::BTreeMap;

use super::*;

const SECRET: &str = "correct horse battery staple";

/// A command with every password variable set.
fn with_password_vars(env: &Env) -> Command {
    let mut c = env.cmd();
    c.env("ROBOVAULT_PASSWORD", SECRET)
        .env("ROBOVAULT_PASSWORD_FILE", env.path("pw"))
        .env("ROBOVAULT_PASSWORD_COMMAND", format!("echo '{SECRET}'"));
    c
}

fn password_file(env: &Env) -> PathBuf {
    let p = env.path("pw");
    write(&p, format!("{SECRET}\n").as_bytes());
    chmod(&p, 0o600);
    p
}

/// `schedule add` of a nightly backup of src into repo, units in `units/`.
const NIGHTLY: &[&str] = &[
    "schedule",
    "add",
    "nightly",
    "--daily",
    "02:00",
    "--unit-dir",
    "units",
    "--",
    "backup",
    "src",
    "repo",
];

/// Checks the nightly schedule's units with `systemd-analyze verify`;
/// false (outside CI) when it is not installed.
fn units_pass_verify(env: &Env) -> bool {
    if !have("systemd-analyze") {
        return false;
    }
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(env.path("units/robovault-nightly.timer"))
        .arg(env.path("units/robovault-nightly.service"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
    true
}

fn sched(env: &Env, mut c: Command, a: &[&str]) -> Output {
    c.args(a).env("XDG_CONFIG_HOME", env.path("cfg")).output().unwrap()
}

fn definition(env: &Env, name: &str) -> Value {
    let p = env.path(&format!("cfg/robovault/schedules/{name}.json"));
    serde_json::from_slice(&fs::read(&p).unwrap()).unwrap()
}

fn saved_args(env: &Env, name: &str) -> Vec<String> {
    definition(env, name)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn both_password_options_at_once_are_a_usage_error_on_any_command() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let both = ["--password-file", "pw", "--password-command", "echo x"];
    for a in [
        args(&["history", "repo"], &both),
        args(&both, &["history", "repo"]),
        args(&["backup", "src", "repo"], &both),
        args(&["--password-file=pw", "ls", "repo", "--password-command=echo x"], &[]),
    ] {
        let out = env.run(&a);
        assert_eq!(code(&out), 16, "{a:?}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.starts_with("ERROR : "), "{err}");
        assert!(
            err.contains("--password-file") && err.contains("--password-command"),
            "{err}"
        );
    }
    assert!(!env.repo().exists(), "a usage error creates nothing");
    let posix = env.run(&args(&["--exit-codes", "posix", "history", "repo"], &both));
    assert_eq!(code(&posix), 2, "usage errors follow --exit-codes");
    // One of them alone is fine, and two variables at once are no error:
    // the first in precedence wins, and a plaintext repository asks nothing.
    let one = with_password_vars(&env)
        .args(["backup", "src", "repo", "--password-file", "pw", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&one), 1, "{}", text(&one.stderr));
    let hist = env.run(&["--password-command", "exit 1", "history", "repo"]);
    assert_eq!(code(&hist), 0, "{}", text(&hist.stderr));
}

#[test]
fn a_password_option_keeps_its_value_beside_a_job_file() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let save = env.run(&["backup", "src", "repo", "--save-job", "nightly", "--quit"]);
    assert_eq!(code(&save), 0, "{}", text(&save.stderr));
    let out = env.run(&["backup", "--job", "nightly", "--password-file", "pw", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"]["copied"], 1);
}

fn env_file(p: &Path) -> BTreeMap<String, String> {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn hooks_never_see_the_password_variables() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    password_file(&env);
    let hook = |name: &str| format!("env > {}", env.path(name).display());
    let (ok, fin) = (hook("success.env"), hook("finish.env"));
    let out = with_password_vars(&env)
        .args([
            "backup",
            "src",
            "repo",
            "--on-success",
            &ok,
            "--on-finish",
            &fin,
            "--json",
        ])
        .env("ROBOVAULT_UNRELATED", "kept")
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    for name in ["success.env", "finish.env"] {
        let seen = env_file(&env.path(name));
        assert_eq!(
            seen["ROBOVAULT_COMMAND"], "backup",
            "the hook ran with its own variables"
        );
        assert_eq!(seen["ROBOVAULT_UNRELATED"], "kept", "other variables pass");
        let leaked: Vec<&String> = seen.keys().filter(|k| k.starts_with("ROBOVAULT_PASSWORD")).collect();
        assert!(leaked.is_empty(), "{name}: {leaked:?}");
        let body = fs::read_to_string(env.path(name)).unwrap();
        assert!(!body.contains(SECRET), "{name} holds the password");
    }
    // A scheduled run's hooks too: the run is robovault, its hooks are not.
    let add = sched(
        &env,
        env.cmd(),
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
            "--on-finish",
            &fin,
        ],
    );
    assert_eq!(code(&add), 0, "{}", text(&add.stderr));
    fs::remove_file(env.path("finish.env")).unwrap();
    let run = sched(&env, with_password_vars(&env), &["schedule", "run", "job"]);
    assert_eq!(code(&run), 0, "{}", text(&run.stderr));
    let seen = env_file(&env.path("finish.env"));
    assert_eq!(seen["ROBOVAULT_EXIT_CODE"], "0");
    assert!(!seen.keys().any(|k| k.starts_with("ROBOVAULT_PASSWORD")), "{seen:?}");
}

#[test]
fn another_process_of_the_same_user_cannot_read_robovaults_environment() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    chmod(env.dir.path(), 0o777);
    write(&env.src().join("a"), b"a");
    chown_tree(&env.src(), 65534);
    // The hook runs as the same user as robovault, while robovault waits
    // for it: the closest another program of that user can get.
    let hook = format!(
        "cat /proc/$PPID/environ > {out} 2>/dev/null; echo $? > {rc}",
        out = env.path("environ").display(),
        rc = env.path("rc").display()
    );
    let bin = assert_cmd::cargo::cargo_bin("robovault");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin)
        .args(["backup", "src", "repo", "--on-finish", &hook, "--json"])
        .current_dir(env.dir.path())
        .env("ROBOVAULT_PASSWORD", SECRET)
        .env("ROBOVAULT_CACHE_DIR", env.path("cache"))
        .env("ROBOVAULT_FORMAT_VERSION", "2")
        .output()
        .expect("setpriv (util-linux) is installed");
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let rc = fs::read_to_string(env.path("rc")).unwrap();
    assert_ne!(rc.trim(), "0", "/proc/PID/environ was readable");
    let seen = fs::read(env.path("environ")).unwrap_or_default();
    assert!(!text(&seen).contains(SECRET));
}

#[test]
fn schedule_add_refuses_a_password_given_only_by_the_variable() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let mut c = env.cmd();
    c.env("ROBOVAULT_PASSWORD", SECRET);
    let out = sched(
        &env,
        c,
        &[
            "schedule",
            "add",
            "n",
            "--daily",
            "02:00",
            "--unit-dir",
            "units",
            "--",
            "backup",
            "src",
            "repo",
        ],
    );
    assert_eq!(code(&out), 16);
    let err = text(&out.stderr);
    assert!(
        err.starts_with("ERROR : ") && err.contains("ROBOVAULT_PASSWORD"),
        "{err}"
    );
    assert!(err.contains("--password-file"), "says what to use instead: {err}");
    assert!(!err.contains(SECRET));
    assert!(!env.path("cfg/robovault/schedules/n.json").exists());
    assert!(!env.path("units").exists());
    // A missing password file is refused now, not at two in the morning.
    let mut c = env.cmd();
    c.env("ROBOVAULT_PASSWORD_FILE", env.path("no-such-file"));
    let out = sched(
        &env,
        c,
        &[
            "schedule", "add", "n", "--daily", "02:00", "--cron", "--", "backup", "src", "repo",
        ],
    );
    assert_eq!(code(&out), 16);
    assert!(text(&out.stderr).contains("no-such-file"), "{}", text(&out.stderr));
}

#[test]
fn schedule_add_turns_password_sources_into_options() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let pw = password_file(&env);
    let cron = |name: &str, c: Command, run: &[&str]| {
        let a = args(&["schedule", "add", name, "--daily", "02:00", "--cron", "--"], run);
        let out = sched(&env, c, &a);
        assert_eq!(code(&out), 0, "{a:?}: {}", text(&out.stderr));
        saved_args(&env, name)
    };
    let plain = vec!["backup".to_owned(), "src".into(), "repo".into()];
    let file_opts = |rest: &[String]| -> Vec<String> {
        let mut v = vec!["--password-file".to_owned(), pw.display().to_string()];
        v.extend(rest.iter().cloned());
        v
    };
    // A variable becomes an option, with the path made absolute; the file
    // variable comes before the others.
    let mut c = with_password_vars(&env);
    c.env("ROBOVAULT_PASSWORD_FILE", "pw");
    assert_eq!(cron("a", c, &["backup", "src", "repo"]), file_opts(&plain));
    let mut c = env.cmd();
    c.env("ROBOVAULT_PASSWORD_COMMAND", "pass show robovault")
        .env("ROBOVAULT_PASSWORD", SECRET);
    let mut command_opts = vec!["--password-command".to_owned(), "pass show robovault".into()];
    command_opts.extend(plain.iter().cloned());
    assert_eq!(cron("b", c, &["backup", "src", "repo"]), command_opts);
    // An option of the scheduled run is moved in front, absolute; one of
    // `schedule add` itself is saved too, and the run's own wins.
    assert_eq!(
        cron("c", env.cmd(), &["backup", "src", "--password-file", "pw", "repo"]),
        file_opts(&plain)
    );
    let mut c = env.cmd();
    c.args(["--password-command", "secret-tool lookup robovault nightly"]);
    let mut want = vec![
        "--password-command".to_owned(),
        "secret-tool lookup robovault nightly".into(),
    ];
    want.extend(plain.iter().cloned());
    assert_eq!(cron("d", c, &["backup", "src", "repo"]), want);
    let mut c = env.cmd();
    c.args(["--password-command", "pass show other"]);
    assert_eq!(
        cron("e", c, &["backup", "src", "repo", "--password-file=pw"]),
        file_opts(&plain)
    );
    // No source: nothing is saved.
    assert_eq!(cron("f", env.cmd(), &["backup", "src", "repo"]), plain);
    let list = sched(&env, env.cmd(), &["schedule", "list"]);
    assert!(
        text(&list.stdout).contains(&format!("robovault --password-file {} backup src repo", pw.display())),
        "{}",
        text(&list.stdout)
    );
}

#[test]
fn schedule_add_hands_a_password_file_to_systemd_as_a_credential() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let pw = password_file(&env);
    let mut c = env.cmd();
    c.env("ROBOVAULT_PASSWORD_FILE", &pw);
    let out = sched(&env, c, NIGHTLY);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let service = fs::read_to_string(env.path("units/robovault-nightly.service")).unwrap();
    assert!(
        service.contains(&format!("\nLoadCredential=robovault-password:{}\n", pw.display())),
        "{service}"
    );
    let bin = assert_cmd::cargo::cargo_bin("robovault");
    assert!(
        service.contains(&format!(
            "\nExecStart={} --password-file ${{CREDENTIALS_DIRECTORY}}/robovault-password schedule run nightly\n",
            bin.display()
        )),
        "{service}"
    );
    assert!(!service.contains(SECRET));
    assert!(
        !service.contains("CacheDirectory="),
        "a user unit has a home: {service}"
    );
    // The run by hand reads the saved file; the unit reads its credential.
    assert_eq!(
        saved_args(&env, "nightly")[..2],
        ["--password-file".to_owned(), pw.display().to_string()]
    );
    if !units_pass_verify(&env) {
        return;
    }
    // The check can fail: a credential that is not ID:PATH is refused.
    fs::create_dir(env.path("broken")).unwrap();
    fs::write(
        env.path("broken/robovault-nightly.service"),
        service.replace(
            "LoadCredential=robovault-password:",
            "LoadCredential=robovault/password:",
        ),
    )
    .unwrap();
    let broken = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(env.path("broken/robovault-nightly.service"))
        .output()
        .unwrap();
    assert!(
        !broken.status.success() || text(&broken.stderr).contains("Credential name \"robovault/password\" not valid"),
        "systemd-analyze notices a bad credential: {}",
        text(&broken.stderr)
    );
}

#[test]
fn a_schedule_of_an_encrypted_repository_runs_with_its_saved_password_file() {
    let env = Env::new();
    write(&env.src().join("a"), b"a");
    let init = env.run_sealed(&["init", "repo", "--kdf-memory", "64K", "--kdf-iterations", "1"]);
    assert_eq!(code(&init), 0, "{}", text(&init.stderr));
    // A wrong password fails when the schedule is added, not at night.
    fs::write(env.path("wrong"), "not it\n").unwrap();
    let mut wrong = env.sealed();
    wrong.env("ROBOVAULT_PASSWORD_FILE", env.path("wrong"));
    let out = sched(&env, wrong, NIGHTLY);
    assert_eq!(code(&out), 16, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("password"), "{}", text(&out.stderr));
    assert!(!env.path("units/robovault-nightly.service").exists());
    // Added with the password in the environment, as a shell session would.
    let out = sched(&env, env.sealed(), NIGHTLY);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    // The timer's run has no variable: only what the schedule saved.
    let mut c = env.cmd();
    c.env("ROBOVAULT_CACHE_DIR", env.path("cache"));
    let run = sched(&env, c, &["schedule", "run", "nightly"]);
    assert!(
        code(&run) < 8,
        "exit {}: {}{}",
        code(&run),
        text(&run.stdout),
        text(&run.stderr)
    );
    let hist = env.run_sealed(&["history", "repo", "--json"]);
    let v: Value = serde_json::from_slice(&hist.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "the scheduled run made a snapshot");
    units_pass_verify(&env);
}

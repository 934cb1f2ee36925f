//! Where a password comes from, at the edges the binary shows: the two
//! options together are a usage error, hooks never see the
//! `ROBOVAULT_PASSWORD*` variables, and the process cannot be read by
//! another of the same user. (The sources themselves are tested beside their code
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

fn sched(env: &Env, mut c: Command, a: &[&str]) -> Output {
    c.args(a).env("XDG_CONFIG_HOME", env.path("cfg")).output().unwrap()
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
        .output()
        .expect("setpriv (util-linux) is installed");
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let rc = fs::read_to_string(env.path("rc")).unwrap();
    assert_ne!(rc.trim(), "0", "/proc/PID/environ was readable");
    let seen = fs::read(env.path("environ")).unwrap_or_default();
    assert!(!text(&seen).contains(SECRET));
}

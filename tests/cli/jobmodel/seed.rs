//! The seed's commands, with Unix paths.

use super::*;

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

//! A source 10,000 directories deep: every command that reads trees walks
//! it to the bottom without recursion on a thread's stack, and restore
//! keeps only a few descriptors open whatever the depth.

use rustix::fs::{mkdirat, Mode};

use super::*;

/// Levels of the tree; its paths are about 20,000 bytes, past PATH_MAX.
const DEPTH: usize = 10_000;

/// The path of the directory `levels` levels down.
fn deep_rel(levels: usize) -> String {
    vec!["d"; levels].join("/")
}

/// `src`: `d` nested DEPTH times, a file `f` every 1,000 levels, a file
/// `z` at the bottom.
fn deep_source(env: &Env) {
    fs::create_dir_all(env.src()).unwrap();
    let mut fd = dir_below(&env.src(), 0);
    for i in 0..DEPTH {
        if i % 1000 == 0 {
            write_at(&fd, "f", format!("level {i}").as_bytes());
        }
        mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
        fd = open_dir_at(&fd, "d");
    }
    write_at(&fd, "z", b"the bottom");
}

/// Backs the source up as series `s`; returns the snapshot id.
fn backup(env: &Env) -> String {
    let out = env.run(&["backup", "src", "repo", "--series", "s", "--json", "-r", "0", "-w", "0"]);
    assert!(code(&out) < 8, "backup: {}\n{}", code(&out), text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["snapshot"].as_str().unwrap().to_owned()
}

fn deep_env() -> (Env, String) {
    let env = Env::new();
    deep_source(&env);
    let id = backup(&env);
    (env, id)
}

/// The command with at most 256 open descriptors.
fn run_with_few_fds(env: &Env, args: &[&str]) -> Output {
    Command::new("prlimit")
        .arg("--nofile=256")
        .arg(assert_cmd::cargo::cargo_bin("robovault"))
        .args(args)
        .current_dir(env.dir.path())
        .env("ROBOVAULT_FORMAT_VERSION", "1")
        .output()
        .unwrap()
}

#[test]
fn a_tree_10000_levels_deep_restores_bit_for_bit_with_few_descriptors() {
    let (env, _) = deep_env();
    let out = env.run(&["restore", "repo", "out", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dirs"]["copied"], DEPTH as u64 + 1, "{v}");
    assert_eq!(v["files"]["copied"], DEPTH as u64 / 1000 + 1, "{v}");
    assert_same_tree(&env.src(), &env.path("out"));

    let few = run_with_few_fds(&env, &["restore", "repo", "few", "--json"]);
    assert_eq!(code(&few), 1, "{}", text(&few.stderr));
    assert_same_tree(&env.src(), &env.path("few"));
    let again = run_with_few_fds(&env, &["restore", "repo", "few", "--json"]);
    assert_eq!(code(&again), 0, "all the same now: {}", text(&again.stdout));

    let plan = env.run(&["restore", "repo", "plan", "--list-only", "--json"]);
    assert_eq!(code(&plan), 1, "{}", text(&plan.stderr));
    let v: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(v["dirs"]["copied"], DEPTH as u64 + 1, "{v}");
    assert!(!env.path("plan").exists(), "--list-only writes nothing");
}

#[test]
fn a_mirror_restore_deletes_extras_deep_down() {
    let (env, _) = deep_env();
    let out = env.run(&["restore", "repo", "out"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    // Extras at the bottom and half way: a file, and a directory holding
    // a file and a directory.
    for depth in [DEPTH / 2, DEPTH] {
        let fd = dir_below(&env.path("out"), depth);
        write_at(&fd, "x", b"extra");
        mkdirat(&fd, "y", Mode::from_raw_mode(0o755)).unwrap();
        let y = open_dir_at(&fd, "y");
        write_at(&y, "x", b"extra inside");
        mkdirat(&y, "y", Mode::from_raw_mode(0o755)).unwrap();
    }
    let mirror = run_with_few_fds(&env, &["restore", "repo", "out", "--mirror", "--json"]);
    assert_eq!(code(&mirror), 2, "extras, deleted: {}", text(&mirror.stderr));
    let v: Value = serde_json::from_slice(&mirror.stdout).unwrap();
    assert_eq!(v["files"]["extras"], 4, "{v}");
    assert_eq!(v["dirs"]["extras"], 4, "{v}");
    assert_same_tree(&env.src(), &env.path("out"));
}

#[test]
fn verify_ls_versions_diff_and_find_reach_the_bottom() {
    let (env, first) = deep_env();
    for args in [
        &["verify", "repo", "--json"][..],
        &["verify", "repo", "--read-data", "--json"],
    ] {
        let out = env.run(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["problems"], serde_json::json!([]), "{args:?}: {v}");
    }
    let bottom = deep_rel(DEPTH);
    let ls = env.run(&["ls", "repo", &bottom, "--json"]);
    assert_eq!(code(&ls), 0, "{}", text(&ls.stderr));
    let v: Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(v[0]["name"], "z", "{v}");
    let z = format!("{bottom}/z");
    let cat = env.run(&["cat", "repo", &z]);
    assert_eq!(text(&cat.stdout), "the bottom");

    write_at(&dir_below(&env.src(), DEPTH), "z", b"the new bottom, longer");
    let second = backup(&env);
    let versions = env.run(&["versions", "repo", &z]);
    assert_eq!(code(&versions), 0, "{}", text(&versions.stderr));
    assert_eq!(text(&versions.stdout).lines().count(), 2, "{}", text(&versions.stdout));
    let diff = env.run(&["diff", "repo", &first, &second]);
    assert_eq!(code(&diff), 0, "{}", text(&diff.stderr));
    assert_eq!(text(&diff.stdout), format!("M {z}\n"));
    let find = env.run(&["find", "repo", "z"]);
    assert_eq!(code(&find), 0, "{}", text(&find.stderr));
    assert_eq!(text(&find.stdout), format!("s  {z}  {first}  {second}\n"));
}

#[test]
fn forget_gc_and_repair_index_walk_a_deep_tree() {
    let (env, _) = deep_env();
    write_at(&dir_below(&env.src(), DEPTH), "z", b"the new bottom");
    backup(&env);
    let forget = env.run(&["forget", "repo", "--keep-last", "1"]);
    assert_eq!(code(&forget), 0, "{}", text(&forget.stderr));
    let gc = env.run(&["gc", "repo", "--max-unused", "0%"]);
    assert_eq!(code(&gc), 0, "{}", text(&gc.stderr));
    let verify = env.run(&["verify", "repo", "--read-data", "--json"]);
    let v: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");

    fs::remove_file(env.repo().join("index.sqlite")).unwrap();
    let repair = env.run(&["repair", "index", "repo"]);
    assert_eq!(code(&repair), 0, "{}", text(&repair.stderr));
    let out = env.run(&["restore", "repo", "out"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert_same_tree(&env.src(), &env.path("out"));
    let z = format!("{}/z", deep_rel(DEPTH));
    let versions = env.run(&["versions", "repo", &z]);
    assert_eq!(
        code(&versions),
        0,
        "the rebuilt rows reach the bottom: {}",
        text(&versions.stderr)
    );
}

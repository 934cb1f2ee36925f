//! Restore jobs (ROBOCOPY.md §5): /COPY and /DCOPY, /NOCOPY, attributes,
//! the classes against the target, mirror deletions and refusals.

use super::*;

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
fn attr_letters_act_when_r_is_among_them() {
    let env = Env::new();
    baseline(&env);
    json_run(&env, &restore_args(&["/A+:RA"]));
    assert_eq!(
        fs::metadata(restore_target(&env).join("a.txt")).unwrap().mode() & 0o222,
        0
    );
}

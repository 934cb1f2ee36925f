//! Restore selections that match nothing, and TARGETs and paths that
//! cannot be used, say so.

use super::*;

/// `src` with `dir/a.txt`, `dir/sub/b.md` and `top.txt`, backed up.
fn backed_up() -> Env {
    let env = Env::new();
    write(&env.src().join("dir/a.txt"), b"a");
    write(&env.src().join("dir/sub/b.md"), b"b");
    write(&env.src().join("top.txt"), b"top");
    env.backup_json();
    env
}

/// The names directly in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn restoring_a_path_that_is_not_in_the_snapshot_fails_naming_it() {
    let env = backed_up();
    // A name without wildcards that nothing in the snapshot has, as a path
    // with separators: the user named something that is not there.
    for path in ["missing.txt", "dir/missing.txt"] {
        let out = env.run(&["restore", "repo", "out", path]);
        assert_eq!(code(&out), 16, "{path}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(err.contains(&format!("ERROR : {path} is not in snapshot ")), "{err}");
        assert!(!env.path("out").exists(), "nothing is created");
    }
    // A name that only a directory has: said, with what would restore it.
    let out = env.run(&["restore", "repo", "out", "sub"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let line = "WARNING : no file matches \"sub\"; to restore the directory, give it as a path: \"sub/\"\n";
    assert!(text(&out.stdout).contains(line), "{}", text(&out.stdout));
    assert!(!env.path("out").exists(), "nothing is created");
}

#[test]
fn a_named_file_that_the_file_selection_drops_is_warned_about() {
    let env = backed_up();
    let out = env.run(&["restore", "repo", "out", "dir/a.txt", "--xf", "*.txt"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let line = "WARNING : \"dir/a.txt\" is excluded by the file selection\n";
    assert!(text(&out.stdout).contains(line), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains(line), "{}", text(&out.stderr));
    assert!(!env.path("out").exists(), "no empty directories: {:?}", env.path("out"));

    // A filespec argument drops it the same way.
    let by_spec = env.run(&["restore", "repo", "out", "dir/a.txt", "*.md"]);
    assert_eq!(code(&by_spec), 0, "{}", text(&by_spec.stderr));
    let log = text(&by_spec.stdout);
    assert!(log.contains(line), "{log}");
    assert!(log.contains("WARNING : no file matches \"*.md\"\n"), "{log}");
    assert!(!env.path("out").exists(), "no empty directories");
}

#[test]
fn a_filespec_that_matches_nothing_is_warned_about_and_creates_no_directory() {
    let env = backed_up();
    fs::create_dir(env.path("out")).unwrap();
    let out = env.run(&["restore", "repo", "out", "*.xyz"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let line = "WARNING : no file matches \"*.xyz\"\n";
    assert!(text(&out.stdout).contains(line), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains(line), "{}", text(&out.stderr));
    assert_eq!(
        names_in(&env.path("out")),
        Vec::<String>::new(),
        "no directory skeleton"
    );

    // A named directory in which the selection matches nothing.
    let named = env.run(&["restore", "repo", "out", "dir/sub", "*.txt"]);
    assert_eq!(code(&named), 0, "{}", text(&named.stderr));
    let log = text(&named.stdout);
    assert!(
        log.contains("WARNING : nothing in \"dir/sub\" matches the file selection\n"),
        "{log}"
    );
    assert_eq!(names_in(&env.path("out")), Vec::<String>::new());

    // One filespec that matches and one that does not: the files of the
    // first are restored, the second is named.
    let mixed = env.run(&["restore", "repo", "out", "*.md", "*.xyz"]);
    assert_eq!(code(&mixed), 1, "{}", text(&mixed.stderr));
    assert!(text(&mixed.stdout).contains(line), "{}", text(&mixed.stdout));
    assert_eq!(fs::read(env.path("out/dir/sub/b.md")).unwrap(), b"b");
}

#[test]
fn a_target_that_is_a_regular_file_is_not_a_directory() {
    let env = backed_up();
    write(&env.path("file"), b"not a directory");
    let out = env.run(&["restore", "repo", "file"]);
    assert_eq!(code(&out), 16, "{}", text(&out.stdout));
    let err = text(&out.stderr);
    let expected = format!("ERROR : TARGET \"{}\" is not a directory", env.path("file").display());
    assert!(err.contains(&expected), "{err}");
    assert_eq!(fs::read(env.path("file")).unwrap(), b"not a directory");
}

#[test]
fn restore_paths_are_relative_to_the_snapshot_root() {
    let env = backed_up();
    for path in ["/etc/x", "dir/../top.txt", "../x", ".."] {
        let out = env.run(&["restore", "repo", "out", path]);
        assert_eq!(code(&out), 16, "{path}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        let expected = format!("ERROR : \"{path}\": paths are relative to the snapshot root");
        assert!(err.contains(&expected), "{path}: {err}");
        assert!(!env.path("out").exists());
    }
}

/// `--xf *` without filespecs is the tree-only restore (robocopy's
/// `/E /XF *`): every directory comes back, no file; a filespec that
/// matches nothing (above) is what restores no skeleton.
#[test]
fn excluding_every_file_restores_the_tree_of_directories() {
    let env = backed_up();
    let out = env.run(&["restore", "repo", "tree", "--xf", "*"]);
    assert!(code(&out) < 8, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(env.path("tree/dir/sub").is_dir(), "{}", text(&out.stdout));
    assert_eq!(names_in(&env.path("tree/dir/sub")), Vec::<String>::new());
}

/// `--json` carries the warnings too: a scheduler reading only the JSON
/// learns that a filespec matched nothing.
#[test]
fn the_json_summary_lists_the_selection_warnings() {
    let env = backed_up();
    let out = env.run(&["restore", "repo", "out", "*.md", "*.xyz", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"], serde_json::json!(["no file matches \"*.xyz\""]), "{v}");
    let clean = env.run(&["restore", "repo", "out2", "--json"]);
    let v: Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
}

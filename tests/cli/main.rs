//! End-to-end tests: the `robovault` binary run as a user would run it. The
//! harness is in `tests/util/`; each topic is a module.

#[path = "../util/faultproxy.rs"]
mod faultproxy;
#[path = "../util/cli.rs"]
mod harness;
#[path = "../util/mod.rs"]
mod util;

mod arguments;
mod concurrency;
mod crash;
mod damaged;
mod deep;
mod deeprestore;
mod encryption;
mod hostile;
mod jobmodel;
mod largedir;
mod lostpack;
mod messages;
mod mtlog;
mod operations;
mod passwords;
mod readonly;
mod s3;
mod s3faults;
mod selection;
mod wait;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harness::*;
use serde_json::Value;
use util::*;

#[test]
fn init_creates_a_repository_once() {
    let env = Env::new();
    let out = env.run(&["init", "repo"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(env.repo().join("config").exists());
    let again = env.run(&["init", "repo"]);
    assert_eq!(code(&again), 16);
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn backup_creates_the_repository_and_history_lists_each_run() {
    let env = Env::new();
    write(&env.src().join("a.txt"), b"hello");
    write(&env.src().join("d/b.txt"), b"world");
    let first = env.run(&["backup", "src", "repo", "--series", "s"]);
    assert_eq!(code(&first), 1, "files copied: exit 1\n{}", text(&first.stderr));
    let log = text(&first.stdout);
    assert!(log.contains("New Repo : "), "{log}");
    assert!(
        log.contains("               Total    Copied   Skipped  Mismatch    FAILED    Extras"),
        "{log}"
    );
    assert!(
        log.contains("   Files :         2         2         0         0         0         0"),
        "{log}"
    );
    let second = env.run(&["backup", "src", "repo", "--series", "s"]);
    assert_eq!(code(&second), 0, "nothing new: exit 0");
    fs::remove_file(env.src().join("d/b.txt")).unwrap();
    write(&env.src().join("c.txt"), b"new");
    let third = env.run(&["backup", "src", "repo", "--series", "s"]);
    assert_eq!(code(&third), 3, "copied + extra");
    let hist = env.run(&["history", "repo"]);
    assert_eq!(code(&hist), 0);
    let lines: Vec<String> = text(&hist.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "series s");
    assert_eq!(lines.len(), 4);
    assert!(
        lines[1].contains("  exit=1  dirs=2/2/0/0/0/0  files=2/2/0/0/0/0  bytes=10/10/0/0/0/0"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("  exit=0  dirs=2/0/2/0/0/0  files=2/0/2/0/0/0  bytes=10/0/10/0/0/0"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("  exit=3  dirs=2/0/2/0/0/0  files=2/1/1/0/0/1  bytes=8/3/5/0/0/5"),
        "{}",
        lines[3]
    );
    let json: Value = serde_json::from_slice(&env.run(&["snapshots", "repo", "--json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[2]["exit_code"], 3);
    assert_eq!(json[2]["files"]["extras"], 1);
    assert_eq!(json[1]["parent"], json[0]["snapshot"]);
}

#[test]
fn at_versions_and_cat_follow_three_runs() {
    let env = Env::new();
    let f = env.src().join("notes.txt");
    let mut ids = Vec::new();
    for (i, content) in ["first", "second version", "third"].iter().enumerate() {
        write(&f, content.as_bytes());
        set_mtime(&f, 1_700_000_000 + i as i64 * 100, 0);
        let v = env.backup_json();
        ids.push((
            v["snapshot"].as_str().unwrap().to_owned(),
            v["started"].as_str().unwrap().to_owned(),
        ));
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let versions = env.run(&["versions", "repo", "notes.txt"]);
    assert_eq!(code(&versions), 0, "{}", text(&versions.stderr));
    let lines: Vec<String> = text(&versions.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, (id, _)) in lines.iter().zip(&ids) {
        assert!(line.starts_with(&format!("{id}  ")), "{line}");
        assert!(line.contains("  file  "), "{line}");
    }
    for (i, content) in ["first", "second version", "third"].iter().enumerate() {
        // The run's start, to the second, is "at or before" its own start + 1 s.
        let started = chrono::DateTime::parse_from_rfc3339(&ids[i].1).unwrap();
        let at = started.format("%Y-%m-%d %H:%M:%S").to_string();
        let at_out = env.run(&["cat", "repo", "notes.txt", "--at", &at]);
        assert_eq!(text(&at_out.stdout), *content, "--at {at}");
        let by_id = env.run(&["cat", "repo", "notes.txt", "--snapshot", &ids[i].0[..10]]);
        assert_eq!(text(&by_id.stdout), *content);
    }
    let before = env.run(&["cat", "repo", "notes.txt", "--at", "2001-01-01"]);
    assert_eq!(code(&before), 16);
    assert!(
        text(&before.stderr).contains("No snapshot of series \"s\" at or before"),
        "{}",
        text(&before.stderr)
    );
    let unknown = env.run(&["cat", "repo", "notes.txt", "--snapshot", "0123456789abcdef"]);
    assert_eq!(code(&unknown), 16);
    assert!(
        text(&unknown.stderr).contains("no snapshot 0123456789abcdef"),
        "{}",
        text(&unknown.stderr)
    );
    let ls: Value = serde_json::from_slice(&env.run(&["ls", "repo", "--json"]).stdout).unwrap();
    assert_eq!(ls[0]["name"], "notes.txt");
    assert_eq!(ls[0]["size"], 5);
}

#[test]
fn restore_of_chosen_paths_into_a_new_target() {
    let env = Env::new();
    write(&env.src().join("docs/report.txt"), b"report");
    write(&env.src().join("docs/other.txt"), b"other");
    write(&env.src().join("top.txt"), b"top");
    env.backup_json();
    let out = env.run(&["restore", "repo", "out", "docs/report.txt", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"]["copied"], 1);
    assert_eq!(fs::read(env.path("out/docs/report.txt")).unwrap(), b"report");
    assert!(!env.path("out/docs/other.txt").exists());
    assert!(!env.path("out/top.txt").exists());
    let all = env.run(&["restore", "repo", "full"]);
    assert_eq!(code(&all), 1);
    assert_same_tree(&env.src(), &env.path("full"));
    let again = env.run(&["restore", "repo", "full", "--json"]);
    assert_eq!(code(&again), 0, "an unchanged re-restore copies nothing");
}

#[test]
fn clear_errors_for_bad_input() {
    let env = Env::new();
    let missing = env.run(&["backup", "nowhere", "repo"]);
    assert_eq!(code(&missing), 16);
    assert!(text(&missing.stderr).contains("nowhere"), "{}", text(&missing.stderr));
    assert!(!env.repo().exists(), "a fatal run creates nothing");
    write(&env.path("notrepo/file"), b"x");
    let not_repo = env.run(&["history", "notrepo"]);
    assert_eq!(code(&not_repo), 16);
    assert!(
        text(&not_repo.stderr).contains("is not a robovault repository"),
        "{}",
        text(&not_repo.stderr)
    );
    write(&env.src().join("f"), b"x");
    let into_file = env.run(&["backup", "src", "notrepo"]);
    assert_eq!(code(&into_file), 16);
    let swapped = env.run(&["backup", "src", "src/inner-repo"]);
    assert_eq!(code(&swapped), 16);
    assert!(
        text(&swapped.stderr).contains("lies inside source"),
        "{}",
        text(&swapped.stderr)
    );
    let bad_flag = env.run(&["backup", "src", "repo", "--threads", "0"]);
    assert_eq!(code(&bad_flag), 16);
    let posix = env.run(&["--exit-codes", "posix", "history", "notrepo"]);
    assert_eq!(code(&posix), 2);
}

#[test]
fn a_locked_repository_fails_at_once_naming_the_holder() {
    let env = Env::new();
    write(&env.src().join("f"), b"x");
    env.backup_json();
    let repo = robovault::Repository::open(&at(&env.repo())).unwrap();
    let _lock = repo.lock_writer(std::time::Duration::ZERO).unwrap();
    let out = env.run(&["backup", "src", "repo", "--series", "s"]);
    assert_eq!(code(&out), 16);
    let err = text(&out.stderr);
    assert!(err.contains(&format!("locked by pid {}", std::process::id())), "{err}");
}

#[test]
fn a_backup_killed_at_each_named_point_loses_nothing() {
    for (point, committed) in [
        ("pack-written", false),
        ("pack-renamed", false),
        ("before-commit", false),
        ("after-commit", true),
        ("after-publish", true),
    ] {
        let env = Env::new();
        write(&env.src().join("one"), &random_bytes(100_000, 1));
        let first = env.backup_json();
        let first_id = first["snapshot"].as_str().unwrap().to_owned();
        write(&env.src().join("two"), &random_bytes(400_000, 2));
        killed_backup(&env, point);
        let ids = history_ids(&env);
        assert_eq!(ids.len(), if committed { 2 } else { 1 }, "at {point}");
        assert_eq!(ids[0], first_id);
        // Every earlier snapshot restores.
        let out = env.run(&["restore", "repo", "old", "--snapshot", &first_id]);
        assert_eq!(code(&out), 1, "at {point}: {}", text(&out.stderr));
        assert_eq!(fs::read(env.path("old/one")).unwrap(), random_bytes(100_000, 1));
        if committed {
            let killed = ids[1].clone();
            let obj = env.repo().join("snapshots").join(&killed);
            assert_eq!(obj.exists(), point == "after-publish", "at {point}");
            let out = env.run(&["restore", "repo", "mid", "--snapshot", &killed]);
            assert_eq!(code(&out), 1, "at {point}: {}", text(&out.stderr));
            assert_eq!(fs::read(env.path("mid/two")).unwrap(), random_bytes(400_000, 2));
        }
        // The next backup succeeds and heals the unpublished snapshot object.
        let next = env.backup_json();
        assert!(next["exit_code"].as_u64().unwrap() < 8);
        for id in history_ids(&env) {
            assert!(
                env.repo().join("snapshots").join(&id).exists(),
                "at {point}: {id} published"
            );
        }
        assert!(
            fs::read_dir(env.repo().join("snapshots")).unwrap().count() == history_ids(&env).len(),
            "at {point}: one object per committed snapshot"
        );
        let out = env.run(&["restore", "repo", "latest"]);
        assert!(code(&out) < 8);
        assert_same_tree(&env.src(), &env.path("latest"));
    }
}

#[test]
fn an_interrupted_backup_commits_nothing_and_releases_the_lock() {
    let env = Env::new();
    write(&env.src().join("f"), b"x");
    env.backup_json();
    write(&env.src().join("g"), &random_bytes(300_000, 3));
    let mut child = spawn_paused(&env, &["backup", "src", "repo", "--series", "s"]);
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::INT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(16));
    assert_eq!(history_ids(&env).len(), 1, "nothing committed");
    let tmp: Vec<PathBuf> = walk(&env.repo())
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
    let next = env.run(&["backup", "src", "repo", "--series", "s"]);
    assert_eq!(code(&next), 1, "the lock was released: {}", text(&next.stderr));
}

#[test]
fn an_unchanged_rerun_as_nobody_over_unreadable_files_reads_nothing() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    chmod(env.dir.path(), 0o755);
    write(&env.src().join("secret"), b"root only");
    write(&env.src().join("d/also-secret"), b"root only too");
    chmod(&env.src().join("secret"), 0o600);
    chmod(&env.src().join("d/also-secret"), 0o600);
    let first = env.run(&["backup", "src", "repo", "--series", "s"]);
    assert_eq!(code(&first), 1, "{}", text(&first.stderr));
    chown_tree(&env.repo(), 65534);
    let second = setpriv_nobody(&env, &["backup", "src", "repo", "--series", "s", "-r", "0", "--json"]);
    assert_eq!(
        code(&second),
        0,
        "nothing was read: {}{}",
        text(&second.stdout),
        text(&second.stderr)
    );
    let v: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(v["read"]["files"], 0);
    // A changed file it cannot read fails, and its baseline version is carried.
    write(&env.src().join("secret"), b"root only, edited");
    let third = setpriv_nobody(&env, &["backup", "src", "repo", "--series", "s", "-r", "1", "-w", "0"]);
    assert_eq!(code(&third), 8, "{}", text(&third.stdout));
    let log = text(&third.stdout);
    let root = env.src();
    let err_line = format!("ERROR 13 (0x0000000D) Copying File {}/secret", root.display());
    assert_eq!(log.matches(&err_line).count(), 2, "two attempts: {log}");
    assert_eq!(log.matches("Waiting 0 seconds... Retrying...").count(), 1, "{log}");
    assert_eq!(log.matches("ERROR: RETRY LIMIT EXCEEDED.").count(), 1, "{log}");
    assert!(log.contains("Permission denied"), "{log}");
    let cat = env.run(&["cat", "repo", "secret"]);
    assert_eq!(
        text(&cat.stdout),
        "root only",
        "the failed file keeps its previous version"
    );
    let hist = env.run(&["history", "repo", "-v"]);
    assert!(text(&hist.stdout).contains("  partial"), "{}", text(&hist.stdout));
    assert!(
        text(&hist.stdout).contains("FAILED  secret  Copying File  Permission denied"),
        "{}",
        text(&hist.stdout)
    );
}

#[test]
fn forget_and_gc_reclaim_a_deleted_file_while_kept_snapshots_restore() {
    let env = Env::new();
    write(&env.src().join("keep.txt"), b"kept");
    write(&env.src().join("big.bin"), &random_bytes(100 << 20, 5));
    backup_ok(&env);
    fs::remove_file(env.src().join("big.bin")).unwrap();
    write(&env.src().join("more.txt"), b"more");
    let second = backup_ok(&env);
    let before = repo_bytes(&env.repo());
    assert!(before > 100 << 20);
    let dry = env.run(&["forget", "repo", "--keep-last", "1", "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", text(&dry.stderr));
    assert!(text(&dry.stdout).contains("would remove"), "{}", text(&dry.stdout));
    assert_eq!(history_ids(&env).len(), 2, "a dry run changes nothing");
    let out = env.run(&["forget", "repo", "--keep-last", "1", "--prune", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["removed"], 1);
    assert_eq!(v["gc"]["forgotten_objects_removed"], 1);
    assert_eq!(history_ids(&env), vec![second.clone()]);
    let after = repo_bytes(&env.repo());
    assert!(before - after > 99 << 20, "reclaimed {} bytes", before - after);
    let restored = env.run(&["restore", "repo", "out"]);
    assert!(code(&restored) < 8, "{}", text(&restored.stderr));
    assert_same_tree(&env.src(), &env.path("out"));
    let verify = env.run(&["verify", "repo", "--read-data"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify.stdout));
}

#[test]
fn gc_killed_at_each_point_then_rerun_loses_nothing_kept() {
    for point in ["gc-repacked", "gc-committed", "gc-deleting"] {
        let env = Env::new();
        for i in 0..20 {
            write(&env.src().join(format!("f{i}")), &random_bytes(50_000, i));
        }
        backup_ok(&env);
        // Half the files go: the pack holding them becomes half unused.
        for i in 0..10 {
            fs::remove_file(env.src().join(format!("f{i}"))).unwrap();
        }
        let kept = backup_ok(&env);
        let out = env.run(&["forget", "repo", "--keep-last", "1"]);
        assert_eq!(code(&out), 0);
        let killed = env
            .cmd()
            .args(["gc", "repo", "--max-unused", "1%"])
            .env("ROBOVAULT_CRASH_AT", point)
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(killed.status.signal(), Some(9), "at {point}: {}", text(&killed.stderr));
        assert!(text(&killed.stderr).contains(&format!("crash point {point} reached")));
        let restored = env.run(&["restore", "repo", "mid", "--snapshot", &kept]);
        assert!(code(&restored) < 8, "at {point}: {}", text(&restored.stdout));
        assert_same_tree(&env.src(), &env.path("mid"));
        let again = env.run(&["gc", "repo", "--max-unused", "1%"]);
        assert_eq!(code(&again), 0, "at {point}: {}", text(&again.stderr));
        let verify = env.run(&["verify", "repo", "--read-data", "--json"]);
        let v: Value = serde_json::from_slice(&verify.stdout).unwrap();
        assert_eq!(v["problems"].as_array().unwrap().len(), 0, "at {point}: {v}");
        assert_eq!(v["unreferenced_packs"].as_array().unwrap().len(), 0, "at {point}: {v}");
        let restored = env.run(&["restore", "repo", "end", "--snapshot", &kept]);
        assert!(code(&restored) < 8);
        assert_same_tree(&env.src(), &env.path("end"));
    }
}

#[test]
fn repair_index_brings_back_every_snapshot_but_the_forgotten() {
    let env = Env::new();
    let mut ids = Vec::new();
    for i in 0..4 {
        write(
            &env.src().join(format!("gen{i}.txt")),
            format!("generation {i}").as_bytes(),
        );
        write(&env.src().join("changing.txt"), format!("content {i}").as_bytes());
        ids.push(backup_ok(&env));
    }
    let forgotten = ids.remove(1);
    let out = env.run(&["forget", "repo", "--snapshot", &forgotten]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let before: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| env.run(&["cat", "repo", "changing.txt", "--snapshot", id]).stdout)
        .collect();
    let hist_before: Value = serde_json::from_slice(&env.run(&["history", "repo", "--json"]).stdout).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(env.repo().join(format!("index.sqlite{suffix}")));
    }
    let gone = env.run(&["history", "repo"]);
    assert_eq!(code(&gone), 16, "no index, no history");
    let repaired = env.run(&["repair", "index", "repo", "--json"]);
    assert_eq!(code(&repaired), 0, "{}", text(&repaired.stderr));
    let v: Value = serde_json::from_slice(&repaired.stdout).unwrap();
    assert_eq!(v["snapshots"], 3);
    assert_eq!(v["forgotten"], 1);
    assert_eq!(
        history_ids(&env),
        ids,
        "every committed, unforgotten snapshot is back, in order"
    );
    let hist_after: Value = serde_json::from_slice(&env.run(&["history", "repo", "--json"]).stdout).unwrap();
    assert_eq!(hist_before, hist_after, "run summaries are back too");
    for (id, content) in ids.iter().zip(&before) {
        let now = env.run(&["cat", "repo", "changing.txt", "--snapshot", id]);
        assert_eq!(&now.stdout, content);
        let out = env.run(&["restore", "repo", &format!("r-{id}"), "--snapshot", id]);
        assert!(code(&out) < 8);
    }
    assert_same_tree(&env.src(), &env.path(&format!("r-{}", ids[2])));
    let versions = env.run(&["versions", "repo", "changing.txt"]);
    assert_eq!(text(&versions.stdout).lines().count(), 3, "{}", text(&versions.stdout));
    let verify = env.run(&["verify", "repo", "--read-data"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify.stdout));
    // The next backup reads everything once (no inode or ctime known) and
    // stores nothing new.
    let next = env.backup_json();
    assert_eq!(next["new_data"], 0);
}

#[test]
fn two_concurrent_backups_one_waits_or_fails_naming_the_holder() {
    let env = Env::new();
    write(&env.src().join("f"), b"x");
    backup_ok(&env);
    write(&env.src().join("g"), b"y");
    let start_paused = || spawn_paused(&env, &["backup", "src", "repo", "--series", "s", "--json"]);
    let first = start_paused();
    let refused = env.run(&["backup", "src", "repo", "--series", "s", "--lock-wait", "0"]);
    assert_eq!(code(&refused), 16);
    assert!(
        text(&refused.stderr).contains(&format!("locked by pid {}", first.id())),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(first.wait_with_output().unwrap().status.code(), Some(1));
    assert_eq!(history_ids(&env).len(), 2, "exactly one of them committed");
    write(&env.src().join("h"), b"z");
    let first = start_paused();
    let waited = env.run(&["backup", "src", "repo", "--series", "s", "--lock-wait", "60s"]);
    assert!(code(&waited) < 8, "{}", text(&waited.stderr));
    assert_eq!(first.wait_with_output().unwrap().status.code(), Some(1));
    assert_eq!(history_ids(&env).len(), 4, "both committed, one after the other");
    let verify = env.run(&["verify", "repo", "--read-data"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify.stdout));
}

#[test]
fn diff_and_find_on_a_known_history() {
    let env = Env::new();
    write(&env.src().join("docs/report.txt"), b"v1");
    write(&env.src().join("docs/old.txt"), b"old");
    write(&env.src().join("keep.TXT"), b"same");
    write(&env.src().join("mode.sh"), b"#!/bin/sh");
    let a = backup_ok(&env);
    write(&env.src().join("docs/report.txt"), b"v2 longer");
    fs::remove_file(env.src().join("docs/old.txt")).unwrap();
    write(&env.src().join("new/added.txt"), b"new");
    chmod(&env.src().join("mode.sh"), 0o755);
    let b = backup_ok(&env);
    let out = env.run(&["diff", "repo", &a[..8], &b[..8]]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let lines: Vec<&str> = text(&out.stdout).leak().lines().collect();
    assert_eq!(
        lines,
        vec![
            "U docs/",
            "- docs/old.txt",
            "M docs/report.txt",
            "U mode.sh",
            "+ new/",
            "+ new/added.txt"
        ],
        "{lines:?}"
    );
    let found = env.run(&["find", "repo", "*.txt"]);
    let expected = vec![
        format!("s  docs/old.txt  {a}  {a}"),
        format!("s  docs/report.txt  {a}  {b}"),
        format!("s  keep.TXT  {a}  {b}"),
        format!("s  new/added.txt  {b}  {b}"),
    ];
    let got: Vec<String> = text(&found.stdout).lines().map(str::to_owned).collect();
    assert_eq!(got, expected);
    let anchored = env.run(&["find", "repo", "docs/r*"]);
    assert_eq!(text(&anchored.stdout), format!("s  docs/report.txt  {a}  {b}\n"));
}

#[test]
fn gc_waits_for_readers_before_deleting_packs() {
    let env = Env::new();
    write(&env.src().join("big"), &random_bytes(2 << 20, 8));
    backup_ok(&env);
    fs::remove_file(env.src().join("big")).unwrap();
    backup_ok(&env);
    assert_eq!(code(&env.run(&["forget", "repo", "--keep-last", "1"])), 0);
    // A reader in this process holds the readers' lock shared.
    let reader = robovault::Repository::open(&at(&env.repo())).unwrap();
    let mut gc = env.cmd().args(["gc", "repo"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        gc.try_wait().unwrap().is_none(),
        "gc must wait while a reader may need the packs"
    );
    drop(reader);
    let status = gc.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

//! Hostile input: names in crafted trees and index rows that try to leave
//! the target, links in the target, a mirror onto the home directory.

use super::*;

#[test]
fn restore_never_writes_through_a_symlink_in_the_target() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("d/secret"), b"payload");
    let repo = env.repo();
    run_backup(&src, &repo);
    let out = env.path("out");
    let outside = env.path("outside");
    fs::create_dir_all(&out).unwrap();
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("d")).unwrap();
    let s = run_restore(&repo, &out, SnapshotChoice::Latest);
    assert_eq!(
        s.counts.dirs.mismatch, 1,
        "a link where a directory belongs is a mismatch"
    );
    assert_eq!(s.exit_code & 4, 4);
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing written outside the target"
    );
}

/// Stores `tree` in a new pack and records the pack in the index, as a
/// crafted repository would hold it; returns the tree's id.
fn plant_tree(repo_path: &Path, tree: &robovault_store::Tree) -> BlobId {
    use robovault_store::{BlobKind, Packer};
    use std::sync::{Arc, Mutex};
    let repo = Repository::open(&at(repo_path)).unwrap();
    let bytes = tree.encode();
    let id = BlobId::of(&bytes);
    let packs = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&packs);
    let packer = Packer::new(
        repo.store(),
        Box::new(move |pack, size, entries| {
            seen.lock().unwrap().push((pack, size, entries.to_vec()));
            Ok(())
        }),
    );
    packer.add(id, BlobKind::Tree, &bytes).unwrap();
    packer.finish().unwrap();
    let db = rusqlite::Connection::open(repo_path.join("index.sqlite")).unwrap();
    for (pack, size, entries) in packs.lock().unwrap().iter() {
        db.execute(
            "INSERT INTO packs (pack_id, size) VALUES (?1, ?2)",
            (pack.as_bytes().to_vec(), *size as i64),
        )
        .unwrap();
        let row = db.last_insert_rowid();
        for e in entries {
            db.execute(
                "INSERT INTO blobs (id, pack, kind, compression, offset, stored_len, raw_len) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                (
                    e.id.as_bytes().to_vec(),
                    row,
                    e.kind.code(),
                    e.compression.code(),
                    e.offset as i64,
                    e.stored_len,
                    e.raw_len,
                ),
            )
            .unwrap();
        }
    }
    id
}

/// Points every snapshot's root at `root` in the index.
fn set_root_tree(repo_path: &Path, root: &BlobId) {
    let db = rusqlite::Connection::open(repo_path.join("index.sqlite")).unwrap();
    db.execute("UPDATE snapshots SET root_tree = ?1", [root.as_bytes().to_vec()])
        .unwrap();
}

/// Names no entry may have; each would escape TARGET or is no name at all.
const BAD_NAMES: [&[u8]; 7] = [b"", b".", b"..", b"../escape", b"/abs-escape", b"a/b", b"nul\0byte"];

#[test]
fn a_crafted_snapshot_with_escaping_names_writes_nothing_outside_target() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("ok.txt"), b"fine");
    write(&src.join("sub/inner.txt"), b"inner");
    let repo_path = env.repo();
    run_backup(&src, &repo_path);
    let outside = env.path("outside");
    write(&outside.join("sentinel"), b"untouched");
    let repo = Repository::open(&at(&repo_path)).unwrap();
    let snap = robovault::choose(&repo, None, &SnapshotChoice::Latest).unwrap().1;
    let root = repo.read_tree(&BlobId(snap.root_tree.0)).unwrap();
    drop(repo);
    let file = root.nodes.iter().find(|n| n.name == b"ok.txt").unwrap().clone();
    let mut bad: Vec<_> = BAD_NAMES.iter().map(|n| named(&file, n)).collect();
    bad.sort_by(|a, b| a.name.cmp(&b.name));
    let evil = plant_tree(&repo_path, &robovault_store::Tree { nodes: bad.clone() });
    let sub = root.nodes.iter().find(|n| n.name == b"sub").unwrap();
    let mut evil_dir = sub.clone();
    evil_dir.name = b"evil".to_vec();
    evil_dir.content = NodeContent::Subtree(evil);
    let mut nodes = root.nodes.clone();
    nodes.push(evil_dir);
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let nested = plant_tree(&repo_path, &robovault_store::Tree { nodes });
    // At the top level, among good names too.
    let mut top = bad.clone();
    top.push(file.clone());
    top.sort_by(|a, b| a.name.cmp(&b.name));
    let at_root = plant_tree(&repo_path, &robovault_store::Tree { nodes: top });
    let expect_named = |message: &str| {
        for quoted in [
            "\"\"",
            "\".\"",
            "\"..\"",
            "\"../escape\"",
            "\"/abs-escape\"",
            "\"a/b\"",
            "\"nul\\x00byte\"",
        ] {
            assert!(message.contains(quoted), "{quoted} is named: {message}");
        }
    };
    let before = describe(&outside);

    set_root_tree(&repo_path, &nested);
    let out = env.path("out");
    let s = run_restore(&repo_path, &out, SnapshotChoice::Latest);
    assert_eq!(s.exit_code & 8, 8, "{:?}", s.errors);
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    assert_eq!(s.errors[0].path, b"evil");
    assert_eq!(s.errors[0].action, "Reading Repository Data");
    expect_named(&s.errors[0].message);
    assert_eq!(
        fs::read(out.join("ok.txt")).unwrap(),
        b"fine",
        "the sound part is restored"
    );
    assert_eq!(fs::read(out.join("sub/inner.txt")).unwrap(), b"inner");
    assert!(
        fs::read_dir(out.join("evil")).unwrap().next().is_none(),
        "nothing under evil/"
    );

    set_root_tree(&repo_path, &at_root);
    let out2 = env.path("out2");
    let s = run_restore(&repo_path, &out2, SnapshotChoice::Latest);
    assert_eq!(s.exit_code & 8, 8);
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    assert_eq!(s.errors[0].path, b"");
    expect_named(&s.errors[0].message);
    assert!(
        fs::read_dir(&out2).unwrap().next().is_none(),
        "the refused tree writes nothing"
    );

    // Nothing appeared beside TARGET or at the filesystem root.
    let mut names: Vec<_> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["out", "out2", "outside", "repo", "src"]);
    assert_eq!(fs::read(outside.join("sentinel")).unwrap(), b"untouched");
    assert_eq!(before, describe(&outside));
    assert!(!Path::new("/abs-escape").exists());
    assert!(!env.dir.path().join("escape").exists() && !out.join("escape").exists());
}

#[test]
fn hostile_names_in_index_rows_never_reach_a_tree_or_the_target() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("ok.txt"), b"fine");
    let repo_path = env.repo();
    run_backup(&src, &repo_path);
    // Rows for "../escape" and "a/b" under the root, copies of ok.txt's
    // version: a crafted index lists them in the baseline.
    let db = rusqlite::Connection::open(repo_path.join("index.sqlite")).unwrap();
    let ok_path: i64 = db
        .query_row(
            "SELECT id FROM paths WHERE parent = 1 AND name = ?1",
            [b"ok.txt".to_vec()],
            |r| r.get(0),
        )
        .unwrap();
    for (i, name) in [&b"../escape"[..], b"a/b", b"..", b"nul\0x"].iter().enumerate() {
        let id = 1000 + i as i64;
        db.execute(
            "INSERT INTO paths (parent, name, id) VALUES (1, ?1, ?2)",
            (name.to_vec(), id),
        )
        .unwrap();
        db.execute(
            "INSERT INTO versions (series_id, path_id, from_seq, to_seq, kind, size, mtime_sec, mtime_nsec, mode, \
             uid, gid, user, grp, rdev, link_dev, link_ino, xattrs, chunks, target, dev, ino, ctime_sec, ctime_nsec) \
             SELECT series_id, ?1, from_seq, to_seq, kind, size, mtime_sec, mtime_nsec, mode, uid, gid, user, grp, \
             rdev, link_dev, link_ino, xattrs, chunks, target, dev, ino, ctime_sec, ctime_nsec \
             FROM versions WHERE path_id = ?2",
            (id, ok_path),
        )
        .unwrap();
    }
    drop(db);
    // A backup that carries baseline entries must not put them in a tree.
    let o = BackupOptions {
        job: robovault::JobOptions {
            keep_extras: true,
            ..Default::default()
        },
        ..opts()
    };
    let s = backup(&src, &at(&repo_path), &o, &Silent).expect("backup");
    assert!(s.exit_code < 16, "{:?}", s.errors);
    let out = env.path("out");
    let r = run_restore(&repo_path, &out, SnapshotChoice::Latest);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let mut names: Vec<_> = fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["ok.txt"]);
    let mut beside: Vec<_> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    beside.sort();
    assert_eq!(beside, ["out", "repo", "src"]);
}

#[test]
fn a_mirror_restore_refuses_the_home_directory_it_is_given() {
    let env = Env::new();
    let (src, repo, home) = (env.src(), env.repo(), env.path("home"));
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&home).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    fs::write(home.join("keep"), b"mine").unwrap();
    run_backup(&src, &repo);
    let mirror = |home: Option<PathBuf>| RestoreOptions {
        job: robovault::JobOptions {
            purge: true,
            ..Default::default()
        },
        run: quick(),
        home,
        ..RestoreOptions::default()
    };
    // The home directory comes from the options, not from the process's HOME.
    let refused = restore(&at(&repo), &home, &mirror(Some(home.clone())), &Silent);
    assert!(
        matches!(&refused, Err(robovault::Error::Refused(m)) if m.contains("home directory")),
        "{refused:?}"
    );
    assert_eq!(fs::read(home.join("keep")).unwrap(), b"mine");
    restore(&at(&repo), &home, &mirror(None), &Silent).expect("not the home directory given");
    assert!(!home.join("keep").exists(), "a mirror of the snapshot");
}

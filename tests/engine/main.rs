//! Engine tests: the library on real temp directories and real repositories.

#[path = "../util/mod.rs"]
mod util;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use robovault::{
    backup, restore, BackupOptions, BackupSummary, Repository, RestoreOptions, RunOptions, Silent, SnapshotChoice,
};
use robovault_index::ROOT_PATH;
use robovault_store::{BlobId, NodeContent, NodeKind, ObjectKind, PackId};
use util::*;

fn opts() -> BackupOptions {
    BackupOptions {
        series: Some("test".into()),
        run: quick(),
        ..BackupOptions::default()
    }
}

/// No retries, no waits.
fn quick() -> RunOptions {
    RunOptions {
        retries: 0,
        wait: std::time::Duration::ZERO,
        ..RunOptions::default()
    }
}

fn run_backup(src: &Path, repo: &Path) -> BackupSummary {
    backup(src, &at(repo), &opts(), &Silent).expect("backup")
}

fn run_restore(repo: &Path, target: &Path, snapshot: SnapshotChoice) -> robovault::RestoreSummary {
    let o = RestoreOptions {
        snapshot,
        run: quick(),
        ..RestoreOptions::default()
    };
    restore(&at(repo), target, &o, &Silent).expect("restore")
}

fn rows(repo: &Path, table: &str) -> u64 {
    Repository::open(&at(repo))
        .unwrap()
        .index()
        .unwrap()
        .count_rows(table)
        .unwrap()
}

/// A tree description for the property test: (path components, kind).
#[derive(Debug, Clone)]
enum Gen {
    File { data: Vec<u8>, mode: u32 },
    Dir { mode: u32 },
    Link { target: Vec<u8> },
}

fn gen_entry() -> impl Strategy<Value = Gen> {
    prop_oneof![
        4 => (prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..2000),
                (300_000usize..700_000, any::<u64>()).prop_map(|(n, seed)| random_bytes(n, seed)),
             ], prop_oneof![Just(0o644u32), Just(0o600), Just(0o755), Just(0o4755)])
            .prop_map(|(data, mode)| Gen::File { data, mode }),
        2 => prop_oneof![Just(0o755u32), Just(0o700), Just(0o1777)].prop_map(|mode| Gen::Dir { mode }),
        1 => proptest::collection::vec(1u8..=255, 1..40)
            .prop_filter("no NUL", |t| !t.contains(&0))
            .prop_map(|target| Gen::Link { target }),
    ]
}

fn gen_tree() -> impl Strategy<Value = Vec<(Vec<String>, Gen, (i64, u32))>> {
    let name = "[a-zA-Z0-9_é]{1,8}";
    proptest::collection::vec(
        (
            proptest::collection::vec(name, 1..4),
            gen_entry(),
            (0i64..2_000_000_000, 0u32..1_000_000_000),
        ),
        1..25,
    )
}

fn build(root: &Path, spec: &[(Vec<String>, Gen, (i64, u32))]) {
    fs::create_dir_all(root).unwrap();
    let mut times = Vec::new();
    for (parts, g, t) in spec {
        let (dirs, last) = parts.split_at(parts.len() - 1);
        let mut dir = root.to_path_buf();
        let mut blocked = false;
        for d in dirs {
            dir.push(d);
            if dir.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
                blocked = true;
                break;
            }
            fs::create_dir_all(&dir).unwrap();
        }
        let path = dir.join(&last[0]);
        if blocked || path.symlink_metadata().is_ok() {
            continue;
        }
        match g {
            Gen::File { data, mode } => {
                fs::write(&path, data).unwrap();
                chmod(&path, *mode);
            }
            Gen::Dir { mode } => {
                fs::create_dir(&path).unwrap();
                chmod(&path, *mode);
            }
            Gen::Link { target } => std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &path).unwrap(),
        }
        times.push((path, *t));
    }
    // Times last, deepest first, so creating entries does not move them.
    let mut all: Vec<_> = describe(root).into_keys().collect();
    all.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for (i, rel) in all.iter().enumerate() {
        let p = root.join(std::ffi::OsStr::from_bytes(rel));
        let t = times
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, t)| *t)
            .unwrap_or((1_600_000_000 + i as i64, 123));
        set_mtime(&p, t.0, t.1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn backup_then_restore_reproduces_a_random_tree(spec in gen_tree()) {
        let env = Env::new();
        let src = env.src();
        build(&src, &spec);
        let repo = env.repo();
        let s = run_backup(&src, &repo);
        prop_assert_eq!(s.counts.files.failed, 0);
        let out = env.path("out");
        let r = run_restore(&repo, &out, SnapshotChoice::Latest);
        prop_assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_same_tree(&src, &out);
    }
}

#[test]
fn unchanged_rerun_reads_nothing_and_writes_no_rows() {
    let env = Env::new();
    let src = env.src();
    for i in 0..50 {
        write(
            &src.join(format!("d{}/f{i}", i % 5)),
            &random_bytes(1000 + i * 100, i as u64),
        );
    }
    write(&src.join("big"), &random_bytes(3 << 20, 7));
    let repo = env.repo();
    let first = run_backup(&src, &repo);
    assert_eq!(first.files_read, 51);
    let before: Vec<u64> = ["versions", "blobs", "packs", "paths", "snapshots"]
        .iter()
        .map(|t| rows(&repo, t))
        .collect();
    let second = run_backup(&src, &repo);
    assert_eq!(second.files_read, 0, "an unchanged re-run reads no file content");
    assert_eq!(second.bytes_read, 0);
    assert_eq!(second.blobs_stored, 0, "no new chunk or tree blob");
    assert_eq!(second.new_data, 0);
    assert_eq!(second.exit_code, 0);
    assert_eq!(second.counts.files.skipped, 51);
    let after: Vec<u64> = ["versions", "blobs", "packs", "paths", "snapshots"]
        .iter()
        .map(|t| rows(&repo, t))
        .collect();
    assert_eq!(&after[..4], &before[..4], "no new version, blob, pack or path rows");
    assert_eq!(after[4], before[4] + 1, "exactly one new snapshot");
    assert_ne!(first.snapshot, second.snapshot);
}

#[test]
fn inserting_4k_in_the_middle_of_a_large_file_stores_few_chunks() {
    let env = Env::new();
    let src = env.src();
    let mut data = random_bytes(64 << 20, 42);
    write(&src.join("big.bin"), &data);
    let repo = env.repo();
    let first = run_backup(&src, &repo);
    let chunks_first = first.blobs_stored - 1;
    assert!(
        chunks_first > 30,
        "64 MiB should make dozens of ~1 MiB chunks, got {chunks_first}"
    );
    let mid = data.len() / 2;
    let insert = random_bytes(4096, 9);
    data.splice(mid..mid, insert);
    write(&src.join("big.bin"), &data);
    let second = run_backup(&src, &repo);
    // One tree (the root) changes; the rest are data chunks.
    let new_chunks = second.blobs_stored - 1;
    assert!((1..=3).contains(&new_chunks), "stored {new_chunks} new chunks");
    assert!(second.new_data < 3 * 4 * 1024 * 1024);
    let out = env.path("out");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    assert_eq!(fs::read(out.join("big.bin")).unwrap(), data);
}

#[test]
fn a_chmod_alone_reaches_the_next_snapshot() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("f"), b"content");
    let repo = env.repo();
    run_backup(&src, &repo);
    chmod(&src.join("f"), 0o600);
    let s = run_backup(&src, &repo);
    assert_eq!(s.files_read, 1, "a Tweaked file is re-read");
    assert_eq!(s.counts.files.copied, 0, "same content: counted Skipped");
    let out = env.path("out");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(out.join("f")).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_content_change_behind_kept_size_and_mtime_is_seen() {
    let env = Env::new();
    let src = env.src();
    let f = src.join("f");
    write(&f, b"version one");
    set_mtime(&f, 1_700_000_000, 5);
    let repo = env.repo();
    run_backup(&src, &repo);
    write(&f, b"version two");
    set_mtime(&f, 1_700_000_000, 5);
    let s = run_backup(&src, &repo);
    assert_eq!(s.counts.files.copied, 1, "the new content is stored");
    let out = env.path("out");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    assert_eq!(fs::read(out.join("f")).unwrap(), b"version two");
}

/// Walks every snapshot's trees and checks them against the index.
fn check_trees_against_index(repo_path: &Path) {
    let repo = Repository::open(&at(repo_path)).unwrap();
    let index = repo.index().unwrap();
    let series = index.all_series().unwrap();
    for s in &series {
        for snap in index.snapshots(Some(s.key)).unwrap() {
            let root = BlobId(snap.root_tree.0);
            check_dir(&repo, &index, s.key, snap.seq, ROOT_PATH, &root);
        }
    }
}

fn check_dir(
    repo: &Repository,
    index: &robovault_index::Index,
    series: robovault_index::SeriesKey,
    seq: u64,
    path: robovault_index::PathId,
    tree: &BlobId,
) {
    let nodes = repo.read_tree(tree).unwrap().nodes;
    let kids = index.children_at(series, path, seq).unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>(),
        kids.iter().map(|k| k.name.clone()).collect::<Vec<_>>(),
        "names of a directory"
    );
    for (n, k) in nodes.iter().zip(&kids) {
        let e = &k.entry;
        assert_eq!(n.kind.code(), e.kind);
        assert_eq!((n.mtime_sec, n.mtime_nsec), (e.mtime_sec, e.mtime_nsec));
        assert_eq!(
            (n.mode, n.uid, n.gid, n.size, n.rdev),
            (e.mode, e.uid, e.gid, e.size, e.rdev)
        );
        assert_eq!(n.hardlink.unwrap_or((0, 0)), e.link);
        let mut xattr_bytes = Vec::new();
        for (key, v) in &n.xattrs {
            xattr_bytes.extend_from_slice(&(key.len() as u16).to_le_bytes());
            xattr_bytes.extend_from_slice(key);
            xattr_bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
            xattr_bytes.extend_from_slice(v);
        }
        assert_eq!(xattr_bytes, e.xattrs);
        match &n.content {
            NodeContent::Chunks(c) => {
                let chunks = e.chunks.as_ref().expect("a file has a chunk list");
                assert_eq!(
                    c.iter().map(|b| b.0).collect::<Vec<_>>(),
                    chunks.iter().map(|h| h.0).collect::<Vec<_>>()
                );
            }
            NodeContent::Target(t) => assert_eq!(Some(t), e.target.as_ref()),
            NodeContent::Subtree(sub) => check_dir(repo, index, series, seq, k.path, sub),
            NodeContent::None => assert!(matches!(
                n.kind,
                NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice
            )),
        }
    }
}

#[test]
fn trees_agree_with_the_index_on_a_tree_with_every_kind_of_entry() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("a/file"), b"one");
    fs::hard_link(src.join("a/file"), src.join("a/hardlink")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let is_root = rustix::process::geteuid().is_root();
    if is_root {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            src.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
    } else {
        assert!(!in_ci(), "CI runs as root and must test device nodes");
    }
    let weird = std::ffi::OsStr::from_bytes(b"not-utf8-\xff\xfe");
    write(&src.join(weird), b"bytes");
    write(&src.join("x"), b"with xattrs");
    let has_xattrs = xattr::set(src.join("x"), "user.robovault", b"v1").is_ok();
    assert!(
        has_xattrs || !in_ci(),
        "the test filesystem must support user xattrs in CI"
    );
    std::os::unix::fs::symlink("a/file", src.join("link")).unwrap();
    set_mtime(&src.join("x"), 1_600_000_000, 123_456_789);
    let repo = env.repo();
    let s1 = run_backup(&src, &repo);
    assert_eq!(s1.counts.files.failed, 0, "{:?}", s1.errors);
    write(&src.join("a/new"), b"two");
    fs::remove_file(src.join("fifo")).unwrap();
    run_backup(&src, &repo);
    check_trees_against_index(&repo);
    let out = env.path("out");
    let r = run_restore(&repo, &out, SnapshotChoice::Latest);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&src, &out);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(out.join("a/file")).unwrap().ino(),
        fs::metadata(out.join("a/hardlink")).unwrap().ino(),
        "hard links are restored as links"
    );
}

#[test]
fn a_flipped_byte_in_a_data_blob_fails_that_file_only() {
    let env = Env::new();
    let src = env.src();
    let bad = random_bytes(5000, 1);
    write(&src.join("bad.bin"), &bad);
    write(&src.join("good.bin"), &random_bytes(5000, 2));
    let repo = env.repo();
    run_backup(&src, &repo);
    // Find the blob through the pack footers, as a second reader would.
    let r = Repository::open(&at(&repo)).unwrap();
    let id = BlobId::of(&bad);
    let mut hit = None;
    for name in r.store().backend().list(ObjectKind::Pack).unwrap() {
        let pack = PackId::from_hex(&name).unwrap();
        for e in r.store().read_pack_footer(&pack).unwrap() {
            if e.id == id {
                hit = Some((pack, e));
            }
        }
    }
    let (pack, entry) = hit.expect("the blob is in some pack");
    let pack_path = repo.join("packs").join(&pack.to_hex()[..2]).join(pack.to_hex());
    let mut bytes = fs::read(&pack_path).unwrap();
    bytes[(entry.offset + entry.stored_len as u64 / 2) as usize] ^= 0x01;
    fs::write(&pack_path, bytes).unwrap();
    drop(r);
    let out = env.path("out");
    let s = run_restore(&repo, &out, SnapshotChoice::Latest);
    assert_eq!(s.exit_code & 8, 8);
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    let e = &s.errors[0];
    assert_eq!(e.path, b"bad.bin");
    assert_eq!(e.action, "Reading Repository Data");
    assert!(
        e.message.contains(&id.to_hex()) && e.message.contains(&pack.to_hex()),
        "{}",
        e.message
    );
    assert!(
        !out.join("bad.bin").exists(),
        "nothing half-written under the final name"
    );
    assert_eq!(fs::read(out.join("good.bin")).unwrap(), random_bytes(5000, 2));
    let leftovers: Vec<_> = fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
}

#[test]
fn a_second_writer_is_refused_naming_the_holder() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("f"), b"x");
    let repo = env.repo();
    run_backup(&src, &repo);
    let r = Repository::open(&at(&repo)).unwrap();
    let _held = r.lock_writer(std::time::Duration::ZERO).unwrap();
    let err = backup(&src, &at(&repo), &opts(), &Silent).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
}

#[test]
fn a_deleted_file_leaves_the_new_view_but_stays_in_the_old() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("keep"), b"k");
    write(&src.join("gone/inner"), b"g");
    let repo = env.repo();
    let first = run_backup(&src, &repo);
    fs::remove_dir_all(src.join("gone")).unwrap();
    let second = run_backup(&src, &repo);
    assert_eq!(second.counts.dirs.extras, 1);
    assert_eq!(second.counts.files.extras, 1);
    assert_eq!(second.exit_code, 2);
    let new = env.path("new");
    run_restore(&repo, &new, SnapshotChoice::Latest);
    assert!(!new.join("gone").exists());
    let old = env.path("old");
    run_restore(
        &repo,
        &old,
        SnapshotChoice::Id(first.snapshot.as_deref().unwrap()[..12].to_owned()),
    );
    assert_eq!(fs::read(old.join("gone/inner")).unwrap(), b"g");
}

#[test]
fn restoring_again_skips_what_matches() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("a"), b"aaa");
    write(&src.join("d/b"), b"bbb");
    let repo = env.repo();
    run_backup(&src, &repo);
    let out = env.path("out");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    write(&out.join("extra"), b"mine");
    write(&out.join("a"), b"edited");
    let again = run_restore(&repo, &out, SnapshotChoice::Latest);
    assert_eq!(again.counts.files.copied, 1, "only the edited file is rewritten");
    assert_eq!(again.counts.files.skipped, 1);
    assert_eq!(again.counts.files.extras, 1);
    assert_eq!(again.exit_code, 3);
    assert_eq!(fs::read(out.join("a")).unwrap(), b"aaa");
    assert_eq!(fs::read(out.join("extra")).unwrap(), b"mine", "extras are left alone");
}

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

fn find_pack_of(repo: &Path, data: &[u8]) -> (PathBuf, robovault_store::PackEntry, PackId) {
    let r = Repository::open(&at(repo)).unwrap();
    let id = BlobId::of(data);
    for name in r.store().backend().list(ObjectKind::Pack).unwrap() {
        let pack = PackId::from_hex(&name).unwrap();
        for e in r.store().read_pack_footer(&pack).unwrap() {
            if e.id == id {
                let path = repo.join("packs").join(&name[..2]).join(&name);
                return (path, e, pack);
            }
        }
    }
    panic!("blob not found in any pack");
}

fn damaged_repo() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let victim = random_bytes(9000, 11);
    write(&src.join("victim.bin"), &victim);
    write(&src.join("other.bin"), &random_bytes(9000, 12));
    let repo = dir.path().join("repo");
    run_backup(&src, &repo);
    (dir, repo, victim)
}

#[test]
fn verify_is_clean_on_a_sound_repository() {
    let (_dir, repo, _) = damaged_repo();
    let s = robovault::verify(&at(&repo), robovault::ReadData::All).unwrap();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.packs_read, s.packs);
    assert!(s.blobs_read >= 3);
}

#[test]
fn verify_read_data_finds_a_flipped_bit_and_names_it() {
    let (_dir, repo, victim) = damaged_repo();
    let (path, entry, pack) = find_pack_of(&repo, &victim);
    let mut bytes = fs::read(&path).unwrap();
    bytes[entry.offset as usize + 100] ^= 0x10;
    fs::write(&path, bytes).unwrap();
    let structure = robovault::verify(&at(&repo), robovault::ReadData::None).unwrap();
    assert!(
        structure.problems.is_empty(),
        "a flipped data bit is invisible without reading data"
    );
    let s = robovault::verify(&at(&repo), robovault::ReadData::All).unwrap();
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    let p = &s.problems[0];
    assert_eq!(p.object, format!("blob {}", entry.id));
    assert!(p.message.contains(&pack.to_string()), "{}", p.message);
    assert!(p.paths.iter().any(|x| x.ends_with(":victim.bin")), "{:?}", p.paths);
    assert_eq!(p.snapshots.len(), 1);
}

#[test]
fn verify_finds_a_truncated_and_a_missing_pack() {
    let (_dir, repo, victim) = damaged_repo();
    let (path, _, pack) = find_pack_of(&repo, &victim);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let s = robovault::verify(&at(&repo), robovault::ReadData::None).unwrap();
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    assert_eq!(s.problems[0].object, format!("pack {pack}"));
    assert!(s.problems[0].paths.iter().any(|x| x.ends_with(":victim.bin")));
    fs::remove_file(&path).unwrap();
    let s = robovault::verify(&at(&repo), robovault::ReadData::None).unwrap();
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    assert!(s.problems[0].message.contains("missing"), "{}", s.problems[0].message);
}

#[test]
fn a_damaged_directory_tree_fails_that_directory_only_on_restore() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("top.txt"), b"top");
    write(&src.join("sub/inner.txt"), b"inner");
    let repo = env.repo();
    run_backup(&src, &repo);
    // The tree of `sub` holds exactly one node named inner.txt.
    let r = Repository::open(&at(&repo)).unwrap();
    let snap = r.index().unwrap().snapshots(None).unwrap().remove(0);
    let root = r.read_tree(&BlobId(snap.root_tree.0)).unwrap();
    let sub_id = match &root.nodes.iter().find(|n| n.name == b"sub").unwrap().content {
        NodeContent::Subtree(id) => *id,
        _ => panic!("sub is a directory"),
    };
    let sub_bytes = robovault_store::Tree::encode(&r.read_tree(&sub_id).unwrap());
    drop(r);
    let (path, entry, _) = find_pack_of(&repo, &sub_bytes);
    let mut bytes = fs::read(&path).unwrap();
    bytes[entry.offset as usize + entry.stored_len as usize / 2] ^= 0x04;
    fs::write(&path, bytes).unwrap();
    let out = env.path("out");
    let s = run_restore(&repo, &out, SnapshotChoice::Latest);
    assert_eq!(s.exit_code & 8, 8);
    assert_eq!(s.counts.dirs.failed, 1);
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    assert_eq!(s.errors[0].path, b"sub");
    assert_eq!(s.errors[0].action, "Reading Repository Data");
    assert_eq!(fs::read(out.join("top.txt")).unwrap(), b"top", "the rest is restored");
}

#[test]
fn gc_refuses_to_run_on_a_stale_index() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("a"), b"one");
    let repo = env.repo();
    run_backup(&src, &repo);
    let saved = fs::read(repo.join("index.sqlite")).unwrap();
    write(&src.join("b"), &random_bytes(10_000, 3));
    run_backup(&src, &repo);
    // An old copy of the index: it does not know the second snapshot.
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(repo.join(format!("index.sqlite{suffix}")));
    }
    fs::write(repo.join("index.sqlite"), saved).unwrap();
    let err = robovault::gc(&at(&repo), &robovault::GcOptions::default()).unwrap_err();
    assert!(err.to_string().contains("repair index"), "{err}");
    robovault::repair_index(&at(&repo), std::time::Duration::ZERO).unwrap();
    robovault::gc(&at(&repo), &robovault::GcOptions::default()).unwrap();
    let out = env.path("out");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    assert_same_tree(&src, &out);
}

#[test]
fn repair_skips_a_snapshot_whose_trees_are_gone_and_keeps_the_others() {
    let env = Env::new();
    let src = env.src();
    write(&src.join("a"), b"first");
    let repo = env.repo();
    let first = run_backup(&src, &repo);
    write(&src.join("b"), b"second");
    let second = run_backup(&src, &repo);
    // Remove the pack holding the second snapshot's root tree.
    let r = Repository::open(&at(&repo)).unwrap();
    let snap = r.index().unwrap().snapshots(None).unwrap().remove(1);
    let root_bytes = robovault_store::Tree::encode(&r.read_tree(&BlobId(snap.root_tree.0)).unwrap());
    drop(r);
    let (path, _, _) = find_pack_of(&repo, &root_bytes);
    fs::remove_file(path).unwrap();
    fs::remove_file(repo.join("index.sqlite")).unwrap();
    let s = robovault::repair_index(&at(&repo), std::time::Duration::ZERO).unwrap();
    assert_eq!(s.snapshots, 1);
    assert_eq!(s.damaged_snapshots.len(), 1);
    assert!(
        s.damaged_snapshots[0].starts_with(second.snapshot.as_deref().unwrap()),
        "{:?}",
        s.damaged_snapshots
    );
    let out = env.path("out");
    let r = run_restore(&repo, &out, SnapshotChoice::Id(first.snapshot.clone().unwrap()));
    assert!(r.errors.is_empty());
    assert_eq!(fs::read(out.join("a")).unwrap(), b"first");
}

fn with_job(job: robovault::JobOptions) -> BackupOptions {
    BackupOptions { job, ..opts() }
}

fn pattern(p: &str, root: &Path) -> robovault::Pattern {
    robovault::Pattern::new(p, root, false).unwrap()
}

#[test]
fn list_only_writes_nothing_to_the_repository() {
    let env = Env::new();
    let (src, repo) = (env.src(), env.repo());
    write(&src.join("a"), b"a");
    let list_only = with_job(robovault::JobOptions {
        list_only: true,
        ..Default::default()
    });
    let plan = backup(&src, &at(&repo), &list_only, &Silent).unwrap();
    assert!(!repo.exists(), "no repository is created");
    assert_eq!(plan.snapshot, None);
    assert_eq!(plan.counts.files.copied, 1);
    run_backup(&src, &repo);
    write(&src.join("b"), b"b");
    let before: Vec<_> = ["snapshots", "packs"]
        .iter()
        .map(|d| walk_sorted(&repo.join(d)))
        .collect();
    let index = std::fs::read(repo.join("index.sqlite")).unwrap();
    let plan = backup(&src, &at(&repo), &list_only, &Silent).unwrap();
    assert_eq!((plan.counts.files.copied, plan.counts.files.skipped), (1, 1));
    let after: Vec<_> = ["snapshots", "packs"]
        .iter()
        .map(|d| walk_sorted(&repo.join(d)))
        .collect();
    assert_eq!(before, after);
    assert_eq!(index, std::fs::read(repo.join("index.sqlite")).unwrap());
}

fn walk_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    v.sort();
    v
}

#[test]
fn excluded_entries_leave_the_snapshot_unless_kept() {
    let env = Env::new();
    let (src, repo) = (env.src(), env.repo());
    write(&src.join("keep.txt"), b"k");
    write(&src.join("cache/c.bin"), b"c");
    write(&src.join("x.log"), b"l");
    run_backup(&src, &repo);
    let exclude = |keep_extras| {
        with_job(robovault::JobOptions {
            filters: robovault::Filters {
                exclude_dirs: vec![pattern("cache", &src)],
                exclude_files: vec![pattern("*.log", &src)],
                ..Default::default()
            },
            keep_extras,
            ..Default::default()
        })
    };
    let s = backup(&src, &at(&repo), &exclude(true), &Silent).unwrap();
    assert_eq!(s.counts.files.extras, 0, "excluded entries are not extras");
    let out = env.path("kept");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    assert!(
        out.join("cache/c.bin").exists() && out.join("x.log").exists(),
        "--keep-extras carries them"
    );
    let s = backup(&src, &at(&repo), &exclude(false), &Silent).unwrap();
    assert_eq!(s.exit_code, 0);
    let out = env.path("dropped");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    assert!(!out.join("cache").exists() && !out.join("x.log").exists());
    assert!(out.join("keep.txt").exists());
    // Earlier snapshots never change.
    let first = env.path("first");
    let hist = robovault::history(&Repository::open(&at(&repo)).unwrap(), None, false).unwrap();
    let id = hist[0].runs[0].0.snap_id.clone();
    run_restore(&repo, &first, SnapshotChoice::Id(id));
    assert!(first.join("cache/c.bin").exists());
}

#[test]
fn a_run_against_another_baseline_records_the_whole_tree_afresh() {
    let env = Env::new();
    let (src, repo) = (env.src(), env.repo());
    write(&src.join("a"), b"one");
    write(&src.join("d/b"), b"two");
    run_backup(&src, &repo);
    write(&src.join("a"), b"three");
    std::fs::remove_file(src.join("d/b")).unwrap();
    run_backup(&src, &repo);
    let fresh = BackupOptions {
        baseline: robovault::BaselineChoice::Empty,
        ..opts()
    };
    let s = backup(&src, &at(&repo), &fresh, &Silent).unwrap();
    assert_eq!(s.counts.files.copied, 1, "everything is Lonely");
    assert_eq!(s.new_data, 0);
    let out = env.path("out");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    assert_same_tree(&src, &out);
    // An unchanged run after it reads nothing: the rows are right.
    let again = run_backup(&src, &repo);
    assert_eq!(again.files_read, 0);
    assert_eq!(again.exit_code, 0);
    check_trees_against_index(&repo);
}

// ---------------------------------------------------------------------------
// Malicious entries at restore (ROBOCOPY.md §5.3)
// ---------------------------------------------------------------------------

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

fn named(template: &robovault_store::Node, name: &[u8]) -> robovault_store::Node {
    let mut n = template.clone();
    n.name = name.to_vec();
    n
}

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

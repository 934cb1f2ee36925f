//! Backup then restore: a random tree reproduced, what an unchanged, a
//! chmod-only or a content-only change reads and records, trees that agree
//! with the index, and restores that skip what matches.

use super::*;

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

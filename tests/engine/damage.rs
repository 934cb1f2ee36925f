//! Damaged and contended repositories: a flipped byte, a truncated or missing
//! pack, a lost tree, a stale index, a second writer; verify and repair.

use super::*;

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

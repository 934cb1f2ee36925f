//! Version-2 local repositories, encrypted and not: what they hold on disk,
//! the index as a cache outside them, passwords, and downgrades refused.

use std::sync::Arc;

use robovault::{
    backup, gc, repair_index, verify, GcOptions, GivenPassword, NewRepository, ReadData, Repository, RepositoryOptions,
    Silent, SnapshotChoice,
};
use robovault_store::crypto::KdfParams;
use zeroize::Zeroizing;

use super::*;

const PASSWORD: &str = "correct horse battery staple";

/// Argon2id as cheap as it goes: the tests open repositories many times.
const CHEAP: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

fn v2(env: &Env, create: NewRepository, password: &str) -> RepositoryOptions {
    RepositoryOptions {
        cache_dir: Some(env.path("cache")),
        password: Arc::new(GivenPassword(Zeroizing::new(password.into()))),
        kdf: CHEAP,
        create,
        ..at(&env.repo())
    }
}

/// A source whose names and contents are known: an incompressible file
/// (stored raw) holding a known fragment, and a text file.
fn known_source(env: &Env) -> Vec<u8> {
    let mut noise = random_bytes(300_000, 7);
    let fragment = b"FRAGMENT-4f1d0c8e-of-a-file-that-must-never-be-stored-in-the-clear".to_vec();
    noise[150_000..150_000 + fragment.len()].copy_from_slice(&fragment);
    write(&env.src().join("quarterly-secret-plans.bin"), &noise);
    // Several chunks, cut by the keyed chunker in an encrypted repository.
    write(&env.src().join("large.bin"), &random_bytes(5 << 20, 11));
    write(
        &env.src().join("letters/note-to-the-board.txt"),
        "the merger happens on friday\n".repeat(50).as_bytes(),
    );
    fragment
}

fn every_file(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_owned(), fs::read(e.path()).unwrap()))
        .collect()
}

fn found_in(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    every_file(root)
        .into_iter()
        .filter(|(path, bytes)| {
            path.as_os_str().as_bytes().windows(needle.len()).any(|w| w == needle)
                || bytes.windows(needle.len()).any(|w| w == needle)
        })
        .map(|(path, _)| path)
        .collect()
}

fn restore_latest(repo: &RepositoryOptions, target: &Path) {
    let o = RestoreOptions {
        snapshot: SnapshotChoice::Latest,
        run: quick(),
        ..RestoreOptions::default()
    };
    restore(repo, target, &o, &Silent).expect("restore");
}

fn backup_with(src: &Path, repo: &RepositoryOptions) -> robovault::BackupSummary {
    backup(src, repo, &opts(), &Silent).expect("backup")
}

#[test]
fn an_encrypted_repository_holds_nothing_in_the_clear_and_keeps_its_index_outside() {
    let env = Env::new();
    let fragment = known_source(&env);
    let repo = v2(&env, NewRepository::Encrypted, PASSWORD);
    backup_with(&env.src(), &repo);
    assert!(!env.repo().join(robovault::INDEX_FILE).exists(), "the index is a cache");
    for needle in [
        &fragment[..],
        b"quarterly-secret-plans",
        b"note-to-the-board",
        b"merger happens",
        b"letters",
        robovault::Repository::open(&repo)
            .unwrap()
            .store()
            .config()
            .id
            .as_bytes(),
    ] {
        let found: Vec<_> = found_in(&env.repo(), needle)
            .into_iter()
            .filter(|p| !p.ends_with("config") && !p.parent().is_some_and(|d| d.ends_with("keys")))
            .collect();
        assert!(
            found.is_empty(),
            "{:?} found in {found:?}",
            String::from_utf8_lossy(needle)
        );
    }
    // Nor the host's name (lock files, index copies, key files name none).
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    if host.len() >= 6 {
        assert!(
            found_in(&env.repo(), host.as_bytes()).is_empty(),
            "host name {host} found"
        );
    }
    // The plain BLAKE3 id of the stored file is nowhere either.
    let plain_id = blake3::hash(&fs::read(env.src().join("quarterly-secret-plans.bin")).unwrap());
    assert!(found_in(&env.repo(), plain_id.as_bytes()).is_empty());
    assert!(found_in(&env.repo(), plain_id.to_hex().as_bytes()).is_empty());
}

#[test]
fn the_same_scan_finds_the_fragment_in_a_repository_without_encryption() {
    let env = Env::new();
    let fragment = known_source(&env);
    backup_with(&env.src(), &v2(&env, NewRepository::Unencrypted, ""));
    assert!(!found_in(&env.repo(), &fragment).is_empty());
    assert!(!env.repo().join("keys").exists());
}

#[test]
fn an_encrypted_repository_restores_after_its_cache_is_lost_and_passes_gc_repair_and_verify() {
    let env = Env::new();
    known_source(&env);
    let repo = v2(&env, NewRepository::Encrypted, PASSWORD);
    backup_with(&env.src(), &repo);
    write(&env.src().join("later.txt"), b"a second night");
    backup_with(&env.src(), &repo);

    // A new machine: no cache. The newest index copy seeds it.
    fs::remove_dir_all(env.path("cache")).unwrap();
    restore_latest(&repo, &env.path("out"));
    assert_same_tree(&env.src(), &env.path("out"));
    let index = Repository::open(&repo).unwrap();
    assert_eq!(index.index().unwrap().snapshots(None).unwrap().len(), 2);
    drop(index);

    gc(&repo, &GcOptions::default()).expect("gc");
    let summary = repair_index(&repo, std::time::Duration::ZERO).expect("repair");
    assert_eq!(summary.snapshots, 2);
    let checked = verify(&repo, ReadData::All).expect("verify");
    assert!(checked.problems.is_empty(), "{:?}", checked.problems);
    assert!(checked.blobs_read > 0);
}

#[test]
fn a_wrong_or_missing_password_opens_nothing_and_changes_nothing() {
    let env = Env::new();
    known_source(&env);
    backup_with(&env.src(), &v2(&env, NewRepository::Encrypted, PASSWORD));
    let before = every_file(&env.repo());

    let wrong = v2(&env, NewRepository::Encrypted, "not the password");
    match Repository::open(&wrong) {
        Err(robovault::Error::Store(robovault_store::Error::WrongPassword { .. })) => {}
        Err(e) => panic!("wrong password gave {e}"),
        Ok(_) => panic!("a wrong password opened the repository"),
    }
    assert!(backup(&env.src(), &wrong, &opts(), &Silent).is_err());
    let none = RepositoryOptions {
        password: Arc::new(robovault::NoPassword),
        ..wrong.clone()
    };
    match Repository::open(&none) {
        Err(robovault::Error::Store(robovault_store::Error::Password(m))) => {
            assert!(m.contains("--password-file"), "{m}")
        }
        Err(e) => panic!("no password gave {e}"),
        Ok(_) => panic!("no password opened the repository"),
    }
    assert_eq!(every_file(&env.repo()), before);
}

#[test]
fn a_config_replaced_by_an_unencrypted_one_is_refused() {
    let env = Env::new();
    known_source(&env);
    let repo = v2(&env, NewRepository::Encrypted, PASSWORD);
    backup_with(&env.src(), &repo);
    let id = Repository::open(&repo).unwrap().store().config().id.clone();

    // Someone with the storage writes a plaintext config of the same id,
    // once as version 2 `none`, once as version 1; with and without keys/.
    let plain = Env::new();
    let made = Repository::init(&v2(&plain, NewRepository::Unencrypted, "")).unwrap();
    drop(made);
    let v2_none = fs::read_to_string(plain.repo().join("config")).unwrap();
    let old_id = serde_json::from_str::<serde_json::Value>(&v2_none).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v2_none = v2_none.replace(&old_id, &id);
    let old = Env::new();
    drop(Repository::init(&at(&old.repo())).unwrap());
    let v1 = fs::read_to_string(old.repo().join("config")).unwrap();
    let v1_id = serde_json::from_str::<serde_json::Value>(&v1).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1 = v1.replace(&v1_id, &id);
    for fake in [&v2_none, &v1] {
        fs::write(env.repo().join("config"), fake).unwrap();
        let err = Repository::open(&repo).err().expect("a plaintext config is refused");
        assert!(err.to_string().contains("encrypted"), "{err}");
    }
    // Without the key files, the cache still remembers.
    fs::rename(env.repo().join("keys"), env.path("keys-aside")).unwrap();
    for fake in [&v2_none, &v1] {
        fs::write(env.repo().join("config"), fake).unwrap();
        let err = Repository::open(&repo).err().expect("the cache remembers encryption");
        assert!(err.to_string().contains("encrypted"), "{err}");
    }
}

#[test]
fn the_keyed_chunker_cuts_where_its_key_says() {
    let sizes = |env: &Env| -> Vec<u64> {
        let repo = Repository::open(&v2(env, NewRepository::Encrypted, PASSWORD)).unwrap();
        let index = repo.index().unwrap();
        let conn = rusqlite::Connection::open(index.path()).unwrap();
        let mut stmt = conn.prepare("SELECT raw_len FROM blobs ORDER BY raw_len").unwrap();
        stmt.query_map([], |r| r.get::<_, u64>(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let (a, b) = (Env::new(), Env::new());
    for env in [&a, &b] {
        write(&env.src().join("large.bin"), &random_bytes(12 << 20, 5));
        backup_with(&env.src(), &v2(env, NewRepository::Encrypted, PASSWORD));
    }
    let (sa, sb) = (sizes(&a), sizes(&b));
    assert!(
        sa.iter().filter(|&&n| n >= 256 << 10).count() >= 3,
        "several chunks: {sa:?}"
    );
    assert_ne!(sa, sb, "two repositories' keys cut the same file differently");
}

#[test]
fn a_deletion_marker_planted_without_the_keys_forgets_nothing() {
    let env = Env::new();
    known_source(&env);
    let repo = v2(&env, NewRepository::Encrypted, PASSWORD);
    let id = backup_with(&env.src(), &repo).snapshot.expect("a snapshot");
    fs::write(
        env.repo().join("deleted").join(&id),
        format!("{{\"version\":1,\"snapshot\":\"{id}\",\"forgotten\":\"2026-12-04T00:00:00Z\"}}\n"),
    )
    .unwrap();
    let err = Repository::open(&repo).err().expect("a planted marker is refused");
    assert!(err.to_string().contains(&format!("deleted/{id}")), "{err}");
    fs::remove_file(env.repo().join("deleted").join(&id)).unwrap();
    let index = Repository::open(&repo).unwrap();
    assert_eq!(index.index().unwrap().snapshots(None).unwrap().len(), 1);
    drop(index);
    // One for a snapshot no cache holds: verify names it.
    let other = "ab".repeat(32);
    fs::write(env.repo().join("deleted").join(&other), b"{}\n").unwrap();
    let checked = verify(&repo, ReadData::None).expect("verify");
    assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);
    assert_eq!(checked.problems[0].object, format!("deletion marker deleted/{other}"));
}

#[test]
fn a_backup_publishes_an_index_copy_only_every_so_many_snapshots_and_a_new_machine_syncs_the_rest() {
    let env = Env::new();
    write(&env.src().join("a.txt"), b"night 0");
    let repo = v2(&env, NewRepository::Encrypted, PASSWORD);
    let copies = || fs::read_dir(env.repo().join("index")).unwrap().count();
    backup_with(&env.src(), &repo);
    assert_eq!(copies(), 1, "the first backup publishes the first copy");
    for night in 1..robovault::SNAPSHOTS_PER_COPY {
        write(&env.src().join("a.txt"), format!("night {night}").as_bytes());
        backup_with(&env.src(), &repo);
    }
    assert_eq!(copies(), 1, "nights after it upload no copy");
    write(&env.src().join("a.txt"), b"the last night");
    backup_with(&env.src(), &repo);
    assert_eq!(copies(), 2, "so many snapshots behind, a new copy");
    write(&env.src().join("b.txt"), b"after the copy");
    backup_with(&env.src(), &repo);
    // A new machine: the newest copy, then the snapshot committed after it.
    fs::remove_dir_all(env.path("cache")).unwrap();
    let opened = Repository::open(&repo).unwrap();
    let n = robovault::SNAPSHOTS_PER_COPY + 2;
    assert_eq!(opened.index().unwrap().snapshots(None).unwrap().len(), n);
    drop(opened);
    restore_latest(&repo, &env.path("out"));
    assert_same_tree(&env.src(), &env.path("out"));
}

//! Version-2 repositories end to end: what an encrypted one holds (nothing
//! the source's names, contents, host, user, series or path betray), that
//! the same scan finds them in an `--encryption none` one, passwords, keys,
//! and tampering detected by the read that meets it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use rand::{Rng, SeedableRng};
use robovault_store::{Backend, ObjectKind};

use super::s3::s3_repo;
use super::*;

/// The cheapest Argon2id costs: tests open repositories many times.
const KDF: &[&str] = &["--kdf-memory", "64K", "--kdf-iterations", "1"];
const SERIES: &str = "series-7c1e-payroll";
const SOURCE_DIR: &str = "source-dir-91ab3f";

/// What the scan looks for.
struct Known {
    needles: Vec<(String, Vec<u8>)>,
}

/// A source whose names, contents and fragments are known: a directory of
/// 200 random-byte names, incompressible files (stored raw, one chunk each)
/// holding known 64-byte fragments, and a text file.
fn known_source(env: &Env) -> (PathBuf, Known) {
    let src = env.path(SOURCE_DIR);
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261204);
    let mut needles = Vec::new();
    let names = src.join("names");
    fs::create_dir_all(&names).unwrap();
    while needles.len() < 200 {
        let len = rng.random_range(12..40);
        let name: Vec<u8> = (0..len)
            .map(|_| loop {
                let b: u8 = rng.random();
                if b != b'/' && b != 0 {
                    break b;
                }
            })
            .collect();
        let path = names.join(OsStr::from_bytes(&name));
        if fs::write(&path, b"x").is_ok() {
            needles.push((format!("random name {}", needles.len()), name));
        }
    }
    for i in 0..4 {
        let mut data: Vec<u8> = (0..100_000).map(|_| rng.random()).collect();
        let fragment: Vec<u8> = (0..64).map(|_| rng.random()).collect();
        let at = rng.random_range(0..data.len() - 64);
        data[at..at + 64].copy_from_slice(&fragment);
        write(&src.join(format!("noise-{i}.bin")), &data);
        needles.push((format!("fragment of noise-{i}.bin"), fragment));
        // Under the chunker's minimum, so the whole file is one chunk.
        needles.push((
            format!("plain BLAKE3 id of noise-{i}.bin"),
            blake3::hash(&data).as_bytes().to_vec(),
        ));
        needles.push((
            format!("plain BLAKE3 id of noise-{i}.bin in hex"),
            blake3::hash(&data).to_hex().as_bytes().to_vec(),
        ));
    }
    let text = "Minutes of the board: the merger with Example Corp closes on Friday.\n";
    write(&src.join("minutes.txt"), text.repeat(20).as_bytes());
    needles.push(("text".into(), text.trim_end().as_bytes().to_vec()));
    needles.push(("a file name".into(), b"minutes.txt".to_vec()));
    needles.push(("the series".into(), SERIES.as_bytes().to_vec()));
    needles.push(("the source path".into(), SOURCE_DIR.as_bytes().to_vec()));
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    for (what, v) in [("the host name", host), ("the user name", user)] {
        // Shorter ones would turn up in random bytes by chance.
        if v.len() >= 4 {
            needles.push((what.into(), v.into_bytes()));
        }
    }
    (src, Known { needles })
}

/// Every (name, bytes) of a repository: each file under a local one, each
/// object of every kind under an S3 one.
fn objects(repo: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    if repo.starts_with("s3://") {
        let backend = super::s3::s3_backend(repo);
        let mut out = Vec::new();
        for kind in ObjectKind::ALL {
            for name in backend.list(kind).unwrap() {
                let bytes = backend.read(kind, &name).unwrap();
                out.push((format!("{kind:?}/{name}").into_bytes(), bytes));
            }
        }
        return out;
    }
    walkdir::WalkDir::new(repo)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().as_os_str().as_bytes().to_vec(), fs::read(e.path()).unwrap()))
        .collect()
}

/// The needles found, with where.
fn scan(repo: &str, known: &Known) -> Vec<String> {
    let objects = objects(repo);
    assert!(
        objects.len() >= 4,
        "the scan sees the repository: {} objects",
        objects.len()
    );
    let mut found = Vec::new();
    for (what, needle) in &known.needles {
        for (name, bytes) in &objects {
            let hit = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle.as_slice());
            if hit(name) || hit(bytes) {
                found.push(format!("{what} in {}", String::from_utf8_lossy(name)));
            }
        }
    }
    found
}

fn ok(o: &Output) -> String {
    assert!(code(o) < 8, "exit {}: {}{}", code(o), text(&o.stdout), text(&o.stderr));
    text(&o.stdout)
}

fn backup_args<'a>(src: &'a str, repo: &'a str) -> Vec<&'a str> {
    vec!["backup", src, repo, "--series", SERIES, "-r", "0", "-w", "0"]
}

/// Backs `known_source` up into `repo` (made by `init` with `extra`) and
/// returns what the scan found, after checking a restore is whole.
fn backed_up_and_scanned(env: &Env, repo: &str, extra: &[&str]) -> Vec<String> {
    let (src, known) = known_source(env);
    let run = |a: &[&str]| ok(&env.sealed().arg("--s3-allow-http").args(a).output().unwrap());
    run(&args(&args(&["init", repo], KDF), extra));
    let src = src.to_str().unwrap();
    run(&backup_args(src, repo));
    // A second night, so the repository holds a parent and a child.
    write(&env.path(SOURCE_DIR).join("minutes-2.txt"), b"the second night's file");
    run(&backup_args(src, repo));
    run(&["restore", repo, "out"]);
    assert_same_tree(&env.path(SOURCE_DIR), &env.path("out"));
    scan(repo, &known)
}

#[test]
fn an_encrypted_local_repository_holds_no_name_content_host_user_series_or_path() {
    let env = Env::new();
    let repo = env.repo();
    let found = backed_up_and_scanned(&env, repo.to_str().unwrap(), &[]);
    assert!(found.is_empty(), "found in the clear: {found:#?}");
    assert!(!repo.join("index.sqlite").exists(), "a version-2 index is a cache");
}

#[test]
fn an_encrypted_s3_repository_holds_no_name_content_host_user_series_or_path() {
    let Some(repo) = s3_repo() else { return };
    let env = Env::new();
    let found = backed_up_and_scanned(&env, &repo, &[]);
    assert!(found.is_empty(), "found in the clear: {found:#?}");
}

#[test]
fn the_same_scan_finds_names_and_fragments_in_a_repository_without_encryption() {
    let env = Env::new();
    let repo = env.repo();
    let found = backed_up_and_scanned(&env, repo.to_str().unwrap(), &["--encryption", "none"]);
    // (The text is compressed: it is not there as written. Nor are the
    // random names zstd Huffman-codes with the rest of their tree's
    // literals, which changes from run to run with the times and inodes
    // beside them: 135 to 138 of the 200 were found raw in five runs here.)
    let names = (0..200)
        .filter(|i| {
            let what = format!("random name {i} in");
            found.iter().any(|f| f.starts_with(&what))
        })
        .count();
    assert!(names >= 100, "{names} of the 200 random names found: {found:#?}");
    for what in ["fragment of noise-0.bin", "the series", "the source path"] {
        assert!(
            found.iter().any(|f| f.starts_with(what)),
            "{what} not found: {found:#?}"
        );
    }
}

/// Every byte of every file of a local repository.
fn bytes_of(repo: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = objects(repo.to_str().unwrap());
    all.sort();
    all
}

fn encrypted_repo(env: &Env) -> PathBuf {
    write(&env.src().join("a.txt"), b"alpha");
    write(&env.src().join("d/b.bin"), &random_bytes(300_000, 3));
    ok(&env.run_sealed(&args(&["init", "repo"], KDF)));
    ok(&env.run_sealed(&["backup", "src", "repo", "--series", "s", "-r", "0", "-w", "0"]));
    env.repo()
}

#[test]
fn a_wrong_password_or_none_exits_16_and_changes_no_byte() {
    let env = Env::new();
    let repo = encrypted_repo(&env);
    let before = bytes_of(&repo);
    fs::write(env.path("wrong"), "not the password\n").unwrap();
    for args in [
        &["history", "repo"][..],
        &["backup", "src", "repo", "--series", "s"],
        &["restore", "repo", "out"],
        &["verify", "repo", "--read-data"],
        &["gc", "repo"],
        &["forget", "repo", "--keep-last", "1"],
        &["key", "list", "repo"],
    ] {
        let o = env
            .sealed()
            .env("ROBOVAULT_PASSWORD_FILE", env.path("wrong"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(code(&o), 16, "{args:?}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("password"), "{args:?}: {}", text(&o.stderr));
        let o = env
            .sealed()
            .env_remove("ROBOVAULT_PASSWORD_FILE")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(code(&o), 16, "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains("--password-file") && err.contains("ROBOVAULT_PASSWORD"),
            "{args:?}: {err}"
        );
    }
    assert!(!env.path("out").exists());
    assert_eq!(bytes_of(&repo), before, "the repository is byte for byte the same");
}

#[test]
fn keys_are_added_listed_changed_exported_and_the_last_is_never_removed() {
    let env = Env::new();
    let repo = encrypted_repo(&env);
    let list = |env: &Env| -> Vec<Value> {
        serde_json::from_str::<Value>(&ok(&env.run_sealed(&["key", "list", "repo", "--json"])))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let first = list(&env);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["current"], true);
    assert_eq!(
        first[0]["host"],
        rustix::system::uname().nodename().to_string_lossy().as_ref()
    );
    let first_id = first[0]["id"].as_str().unwrap().to_owned();

    // The last key: refused, nothing changed.
    let before = bytes_of(&repo);
    let o = env.run_sealed(&["key", "remove", "repo", &first_id]);
    assert_eq!(code(&o), 16, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("last key"), "{}", text(&o.stderr));
    assert_eq!(bytes_of(&repo), before);

    // A second key with its own password opens the repository.
    fs::write(env.path("second"), "a second password\n").unwrap();
    let second = env.path("second");
    ok(&env.run_sealed(&args(
        &["key", "add", "repo", "--new-password-file", second.to_str().unwrap()],
        KDF,
    )));
    assert_eq!(list(&env).len(), 2);
    let with_second = |a: &[&str]| {
        env.sealed()
            .env("ROBOVAULT_PASSWORD_FILE", &second)
            .args(a)
            .output()
            .unwrap()
    };
    let keys: Value = serde_json::from_str(&ok(&with_second(&["key", "list", "repo", "--json"]))).unwrap();
    let second_id = keys.as_array().unwrap().iter().find(|k| k["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second_id, first_id);
    // The key in use is not removed; the other one is, by a prefix.
    assert_eq!(code(&with_second(&["key", "remove", "repo", &second_id])), 16);
    ok(&with_second(&["key", "remove", "repo", &first_id[..12]]));
    assert_eq!(
        code(&env.run_sealed(&["history", "repo"])),
        16,
        "the first password opens nothing now"
    );

    // passwd: the second password is replaced by a third.
    fs::write(env.path("third"), "a third password\n").unwrap();
    let third = env.path("third");
    ok(&with_second(&args(
        &["key", "passwd", "repo", "--new-password-file", third.to_str().unwrap()],
        KDF,
    )));
    assert_eq!(code(&with_second(&["history", "repo"])), 16);
    let with_third = |a: &[&str]| {
        env.sealed()
            .env("ROBOVAULT_PASSWORD_FILE", &third)
            .args(a)
            .output()
            .unwrap()
    };
    ok(&with_third(&["history", "repo"]));

    // An exported key brings back a repository whose keys/ was lost.
    ok(&with_third(&["key", "export", "exported.key", "repo"]));
    let mode = fs::metadata(env.path("exported.key")).unwrap().permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    assert_eq!(
        code(&with_third(&["key", "export", "exported.key", "repo"])),
        16,
        "never over a file"
    );
    let exported: Value = serde_json::from_slice(&fs::read(env.path("exported.key")).unwrap()).unwrap();
    let id = exported["id"].as_str().unwrap();
    fs::remove_dir_all(repo.join("keys")).unwrap();
    assert_eq!(code(&with_third(&["history", "repo"])), 16, "no keys, no access");
    fs::create_dir(repo.join("keys")).unwrap();
    fs::copy(env.path("exported.key"), repo.join("keys").join(id)).unwrap();
    ok(&with_third(&["restore", "repo", "back"]));
    assert_same_tree(&env.src(), &env.path("back"));
}

/// The files of a local repository under `dir` (packs, snapshots, …).
fn files_in(repo: &Path, dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(repo.join(dir))
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_owned())
        .collect();
    out.sort();
    out
}

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_bit_flipped_in_any_object_is_detected_by_its_read_and_by_verify() {
    for (dir, at_end) in [
        ("packs", false),
        ("packs", true),
        ("snapshots", false),
        ("index", false),
    ] {
        let env = Env::new();
        let repo = encrypted_repo(&env);
        let victim = files_in(&repo, dir)[0].clone();
        let len = fs::metadata(&victim).unwrap().len() as usize;
        // Inside the first blob, or inside the sealed footer near the end.
        flip(&victim, if at_end { len - 40 } else { 60 });
        let name = victim.file_name().unwrap().to_string_lossy().into_owned();
        if dir == "index" {
            // An index copy is read by a new machine's first open.
            fs::remove_dir_all(env.path("cache")).unwrap();
            let o = env.run_sealed(&["history", "repo"]);
            assert_eq!(code(&o), 16, "{dir}: {}", text(&o.stderr));
            assert!(text(&o.stderr).contains(&name), "{dir}: {}", text(&o.stderr));
            continue;
        }
        let o = env.run_sealed(&["verify", "repo", "--read-data"]);
        assert_eq!(code(&o) & 8, 8, "{dir}: {}{}", text(&o.stdout), text(&o.stderr));
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(all.contains(&name[..16]), "{dir} {at_end}: verify names {name}: {all}");
        if dir == "packs" && !at_end {
            // A restore on a new machine (no cache) meets the blob.
            fs::remove_dir_all(env.path("cache")).unwrap();
            let o = env.run_sealed(&["restore", "repo", "out"]);
            assert!(code(&o) >= 8, "{dir}: restore exit {}", code(&o));
        } else {
            // Footers and snapshot objects are read when an index is built
            // from the store.
            let o = env.run_sealed(&["repair", "index", "repo"]);
            let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
            assert!(all.contains(&name[..16]), "{dir} {at_end}: repair names {name}: {all}");
        }
    }
}

#[test]
fn a_config_rewritten_to_none_or_an_object_copied_over_another_is_refused() {
    let env = Env::new();
    let repo = encrypted_repo(&env);
    // An object copied over another of its kind: the name is in the
    // associated data, so it does not open under the other's name.
    ok(&env.run_sealed(&["backup", "src", "repo", "--series", "t", "-r", "0", "-w", "0"]));
    let snaps = files_in(&repo, "snapshots");
    assert!(snaps.len() >= 2);
    fs::copy(&snaps[0], &snaps[1]).unwrap();
    let o = env.run_sealed(&["verify", "repo"]);
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    let name = snaps[1].file_name().unwrap().to_string_lossy().into_owned();
    assert!(code(&o) >= 8 && all.contains(&name[..16]), "exit {}: {all}", code(&o));

    // The config rewritten to say `none`: one field alone does not fit
    // version 2; a whole plaintext config beside the key files is a
    // downgrade.
    let config = repo.join("config");
    let original = fs::read(&config).unwrap();
    let mut v: Value = serde_json::from_slice(&original).unwrap();
    v["encryption"] = "none".into();
    fs::write(&config, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = env.run_sealed(&["history", "repo"]);
    assert_eq!(code(&o), 16, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("config"), "{}", text(&o.stderr));
    v.as_object_mut().unwrap().remove("mac");
    v["chunker"]["algorithm"] = "fastcdc-2020".into();
    fs::write(&config, serde_json::to_vec(&v).unwrap()).unwrap();
    for args in [&["history", "repo"][..], &["backup", "src", "repo", "--series", "s"]] {
        let o = env.run_sealed(args);
        assert_eq!(code(&o), 16, "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains("is encrypted"), "{}", text(&o.stderr));
    }
    // A MAC that does not fit the altered text.
    let mut v: Value = serde_json::from_slice(&original).unwrap();
    v["compression"]["level"] = 19.into();
    fs::write(&config, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = env.run_sealed(&["history", "repo"]);
    assert_eq!(code(&o), 16, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("config"), "{}", text(&o.stderr));
}

/// Runs `args` (sealed) killed at `point`, and checks it died there.
fn killed_at(env: &Env, point: &str, args: &[&str]) {
    let o = env
        .sealed()
        .args(args)
        .env("ROBOVAULT_CRASH_AT", point)
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(9), "killed at {point}: {}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("crash point {point} reached")),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn init_killed_at_each_step_leaves_no_repository_or_a_usable_one_and_init_starts_again() {
    for point in ["init-before-key-file", "init-before-config"] {
        let env = Env::new();
        killed_at(&env, point, &args(&["init", "repo"], KDF));
        let o = env.run_sealed(&["history", "repo"]);
        assert_eq!(code(&o), 16, "{point}: no repository yet: {}", text(&o.stderr));
        if point == "init-before-key-file" {
            // Nothing but empty directories: init starts again there.
            ok(&env.run_sealed(&args(&["init", "repo"], KDF)));
            ok(&env.run_sealed(&["history", "repo"]));
        } else {
            // A key file without its config: refused, and said why.
            let o = env.run_sealed(&args(&["init", "repo"], KDF));
            assert_eq!(code(&o), 16);
            assert!(text(&o.stderr).contains("interrupted"), "{}", text(&o.stderr));
        }
    }
}

#[test]
fn key_commands_killed_at_each_step_never_leave_the_repository_without_a_usable_key() {
    fs_ok_keys(
        "key-before-write",
        &["key", "add", "repo", "--new-password-file", "second"],
        &[(PASSWORD_ONE, true), ("a second password", false)],
    );
    fs_ok_keys(
        "key-before-write",
        &["key", "passwd", "repo", "--new-password-file", "second"],
        &[(PASSWORD_ONE, true), ("a second password", false)],
    );
    // passwd killed between its new key and the removal of the old: both open.
    fs_ok_keys(
        "key-before-remove",
        &["key", "passwd", "repo", "--new-password-file", "second"],
        &[(PASSWORD_ONE, true), ("a second password", true)],
    );
}

/// The password of [`Env::password_file`].
const PASSWORD_ONE: &str = "correct horse battery staple";

/// Kills `args` at `point` in a fresh encrypted repository, then checks
/// which passwords open it and that it restores.
fn fs_ok_keys(point: &str, a: &[&str], opens: &[(&str, bool)]) {
    let env = Env::new();
    encrypted_repo(&env);
    fs::write(env.path("second"), "a second password\n").unwrap();
    killed_at(&env, point, &args(a, KDF));
    for (i, (password, expected)) in opens.iter().enumerate() {
        let file = env.path(&format!("try-{i}"));
        fs::write(&file, format!("{password}\n")).unwrap();
        let o = env
            .sealed()
            .env("ROBOVAULT_PASSWORD_FILE", &file)
            .args(["history", "repo"])
            .output()
            .unwrap();
        assert_eq!(
            code(&o) == 0,
            *expected,
            "{point} {a:?}: {password} opens: {}",
            text(&o.stderr)
        );
    }
    ok(&env.run_sealed(&["restore", "repo", "out"]));
    assert_same_tree(&env.src(), &env.path("out"));
}

#[test]
fn two_blobs_of_one_size_swapped_in_their_pack_fail_both_files_naming_each() {
    let env = Env::new();
    // Incompressible, so stored raw: the two sealed blobs have one size.
    write(&env.src().join("one.bin"), &random_bytes(50_000, 1));
    write(&env.src().join("two.bin"), &random_bytes(50_000, 2));
    ok(&env.run_sealed(&args(&["init", "repo"], KDF)));
    ok(&env.run_sealed(&["backup", "src", "repo", "--series", "s", "-r", "0", "-w", "0"]));
    let cache = fs::read_dir(env.path("cache")).unwrap().next().unwrap().unwrap().path();
    let db = rusqlite::Connection::open(cache.join("index.sqlite")).unwrap();
    let rows: Vec<(Vec<u8>, Vec<u8>, u64, u64)> = db
        .prepare("SELECT b.id, p.pack_id, b.offset, b.stored_len FROM blobs b JOIN packs p ON p.id = b.pack WHERE b.raw_len = 50000")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    drop(db);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].1, rows[1].1, "one pack");
    assert_eq!(rows[0].3, rows[1].3, "one stored size");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let pack_hex = hex(&rows[0].1);
    let pack = env.repo().join("packs").join(&pack_hex[..2]).join(&pack_hex);
    let mut bytes = fs::read(&pack).unwrap();
    let (a, b, n) = (rows[0].2 as usize, rows[1].2 as usize, rows[0].3 as usize);
    let first = bytes[a..a + n].to_vec();
    bytes.copy_within(b..b + n, a);
    bytes[b..b + n].copy_from_slice(&first);
    fs::write(&pack, bytes).unwrap();
    let o = env.run_sealed(&["restore", "repo", "out", "-r", "0", "-w", "0"]);
    assert_eq!(code(&o) & 8, 8, "{}", text(&o.stdout));
    let log = text(&o.stdout);
    for (id, ..) in &rows {
        assert!(log.contains(&hex(id)), "restore names blob {}: {log}", hex(id));
    }
    assert!(!env.path("out/one.bin").exists() && !env.path("out/two.bin").exists());
    let o = env.run_sealed(&["verify", "repo", "--read-data"]);
    assert_eq!(code(&o), 8);
    for (id, ..) in &rows {
        assert!(text(&o.stdout).contains(&hex(id)), "{}", text(&o.stdout));
    }
}

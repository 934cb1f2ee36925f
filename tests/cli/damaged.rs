//! Damaged repositories, end to end: a flipped bit in a data pack, a tree
//! pack, a snapshot object or the config; a truncated or renamed pack; an
//! index row pointing past its pack; an index or config of a newer format; a
//! truncated index. Each command that meets the damage must exit 8 (only some
//! files failed, named and counted FAILED) or 16 (the repository cannot be
//! used), name the damaged object, never panic, and never leave wrong bytes
//! under a restored file's final name. (tests/engine/main.rs checks the
//! engine's side of a flipped data or tree byte and of verify.)

use super::*;
use robovault_store::{decode_blob, pack, BlobId, BlobKind, PackEntry, PackId, Tree};

/// A pack on disk with the blobs its footer lists.
struct PackFile {
    path: PathBuf,
    id: PackId,
    entries: Vec<PackEntry>,
}

fn packs(repo: &Path) -> Vec<PackFile> {
    let mut out = Vec::new();
    for path in walk(&repo.join("packs")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(id) = PackId::from_hex(&name) else { continue };
        let entries = pack::parse_pack(&id, &fs::read(&path).unwrap()).unwrap();
        out.push(PackFile { path, id, entries });
    }
    out
}

/// The pack holding blob `id`, and the blob's entry.
fn pack_of(repo: &Path, id: &BlobId) -> (PackFile, PackEntry) {
    for p in packs(repo) {
        if let Some(e) = p.entries.iter().find(|e| e.id == *id) {
            let e = *e;
            return (p, e);
        }
    }
    panic!("blob {id} is in no pack");
}

/// The tree blob of the directory that holds an entry named `child`.
fn tree_holding(repo: &Path, child: &[u8]) -> (PackFile, PackEntry) {
    for p in packs(repo) {
        let bytes = fs::read(&p.path).unwrap();
        for e in p.entries.iter().filter(|e| e.kind == BlobKind::Tree) {
            let stored = &bytes[e.offset as usize..e.offset as usize + e.stored_len as usize];
            let raw = decode_blob(&e.id, &e.location(p.id), stored).unwrap();
            if Tree::decode(&e.id, &raw).unwrap().nodes.iter().any(|n| n.name == child) {
                let e = *e;
                return (p, e);
            }
        }
    }
    panic!("no tree holds {}", text(child));
}

fn flip_bit(path: &Path, at: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

/// No panic, and an exit code the documentation allows.
fn sane(o: &Output, what: &str) -> i32 {
    let c = code(o);
    let err = text(&o.stderr);
    assert!(!err.contains("panicked at") && c != 101, "{what} panicked: {err}");
    assert!(c >= 0, "{what} was killed by a signal: {err}");
    c
}

/// The command fails as a whole (16) with a message naming `object`.
fn fatal(env: &Env, args: &[&str], object: &str) {
    let o = env.run(args);
    let what = args.join(" ");
    assert_eq!(sane(&o, &what), 16, "{what}: {}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        text(&o.stderr).contains(object),
        "{what} does not name {object}: {}",
        text(&o.stderr)
    );
}

/// A source of three files in two directories, backed up once.
fn backed_up() -> Env {
    let env = Env::new();
    write(&env.src().join("victim.bin"), &random_bytes(9000, 21));
    write(&env.src().join("other.bin"), &random_bytes(9000, 22));
    write(&env.src().join("sub/inner.txt"), b"inner text\n");
    write(&env.src().join("notes.txt"), &notes());
    env.backup_json();
    env
}

fn victim_id() -> BlobId {
    BlobId::of(&random_bytes(9000, 21))
}

/// Content that is stored compressed (the random files are stored raw).
fn notes() -> Vec<u8> {
    b"notes, notes and more notes\n".repeat(500)
}

/// Restores the latest snapshot into `target` (as JSON), checks that every
/// file there is bit-for-bit the source's, and returns the JSON summary.
/// A file the restore reports FAILED must be absent.
fn restore_checked(env: &Env, target: &str) -> Value {
    let o = env.run(&[
        "restore", "repo", target, "--series", "s", "--json", "-r", "0", "-w", "0",
    ]);
    let c = sane(&o, "restore");
    assert!(c < 16, "restore failed as a whole: {}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let failed: Vec<String> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    for rel in ["victim.bin", "other.bin", "sub/inner.txt", "notes.txt"] {
        let restored = env.path(target).join(rel);
        if failed.iter().any(|f| rel.starts_with(f.as_str())) {
            assert!(!restored.exists(), "{rel} FAILED but exists");
        } else {
            assert_eq!(
                fs::read(&restored).ok(),
                Some(fs::read(env.src().join(rel)).unwrap()),
                "{rel} is restored and right"
            );
        }
    }
    let names: Vec<_> = walk(&env.path(target))
        .into_iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| ["victim.bin", "other.bin", "sub", "inner.txt", "notes.txt"].contains(&n.as_str())),
        "no temporary file is left: {names:?}"
    );
    assert_eq!(v["exit_code"].as_i64(), Some(i64::from(c)));
    v
}

#[test]
fn a_flipped_bit_in_a_data_pack_fails_that_file_on_restore_and_cat() {
    let env = backed_up();
    let (p, e) = pack_of(&env.repo(), &victim_id());
    flip_bit(&p.path, e.offset + u64::from(e.stored_len) / 2);

    let v = restore_checked(&env, "out");
    assert_eq!(v["exit_code"].as_i64().unwrap() & 8, 8);
    assert_eq!(v["files"]["failed"], 1);
    assert_eq!(v["errors"][0]["path"], "victim.bin");
    assert_eq!(v["errors"][0]["action"], "Reading Repository Data");
    let msg = v["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains(&p.id.to_hex()) && msg.contains(&e.id.to_hex()), "{msg}");
    // The log names it too, in robocopy's error line.
    let log = env.run(&["restore", "repo", "out2", "--series", "s", "-r", "0", "-w", "0"]);
    assert_eq!(sane(&log, "restore") & 8, 8);
    assert!(
        text(&log.stdout)
            .lines()
            .any(|l| l.contains(" ERROR ") && l.contains("Reading Repository Data") && l.ends_with("victim.bin")),
        "{}",
        text(&log.stdout)
    );

    let cat = env.run(&["cat", "repo", "victim.bin"]);
    assert_eq!(sane(&cat, "cat"), 16);
    assert!(cat.stdout.is_empty(), "no wrong bytes on stdout");
    assert!(text(&cat.stderr).contains(&e.id.to_hex()), "{}", text(&cat.stderr));
    let good = env.run(&["cat", "repo", "other.bin"]);
    assert_eq!((sane(&good, "cat"), good.stdout), (0, random_bytes(9000, 22)));

    let verify = env.run(&["verify", "repo", "--read-data"]);
    assert_eq!(sane(&verify, "verify"), 8);
    let out = text(&verify.stdout);
    assert!(out.contains(&format!("damaged blob {}", e.id)), "{out}");
    assert!(out.contains(&p.id.to_hex()), "the message names the pack: {out}");
    assert!(out.contains("victim.bin"), "{out}");

    // A backup of the unchanged source reads nothing from the repository.
    let again = env.run(&["backup", "src", "repo", "--series", "s", "-r", "0", "-w", "0"]);
    assert!(sane(&again, "backup") < 8, "{}", text(&again.stderr));
}

#[test]
fn a_flipped_bit_in_a_tree_pack_fails_that_directory() {
    let env = backed_up();
    let (p, e) = tree_holding(&env.repo(), b"inner.txt");
    flip_bit(&p.path, e.offset + u64::from(e.stored_len) / 2);

    let v = restore_checked(&env, "out");
    assert_eq!(v["exit_code"].as_i64().unwrap() & 8, 8);
    assert_eq!(v["dirs"]["failed"], 1);
    assert_eq!(v["errors"][0]["path"], "sub");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains(&e.id.to_hex()));

    fatal(&env, &["ls", "repo", "sub"], &e.id.to_hex());
    fatal(&env, &["cat", "repo", "sub/inner.txt"], &e.id.to_hex());
    let root = env.run(&["ls", "repo"]);
    assert_eq!(sane(&root, "ls"), 0, "{}", text(&root.stderr));
    let hist = env.run(&["history", "repo"]);
    assert_eq!(sane(&hist, "history"), 0);

    let verify = env.run(&["verify", "repo"]);
    assert_eq!(sane(&verify, "verify"), 8);
    assert!(
        text(&verify.stdout).contains(&e.id.to_hex()),
        "{}",
        text(&verify.stdout)
    );
}

#[test]
fn a_flipped_bit_in_a_snapshot_object_is_found_and_named() {
    let env = backed_up();
    let snap = walk(&env.repo().join("snapshots"))
        .into_iter()
        .find(|p| p.is_file())
        .unwrap();
    let id = snap.file_name().unwrap().to_string_lossy().into_owned();
    flip_bit(&snap, 40);

    let verify = env.run(&["verify", "repo"]);
    assert_eq!(sane(&verify, "verify"), 8);
    assert!(
        text(&verify.stdout).contains(&format!("damaged snapshot {id}")),
        "{}",
        text(&verify.stdout)
    );
    // Restores read the index, which holds its own copy of the record.
    restore_checked(&env, "out");
    // The store alone no longer has the snapshot: a repair rebuilds the
    // index without it (exit 0, as commands other than backup, restore and
    // verify) and names it.
    let repair = env.run(&["repair", "index", "repo"]);
    assert_eq!(sane(&repair, "repair index"), 0, "{}", text(&repair.stderr));
    let all = text(&repair.stdout) + &text(&repair.stderr);
    assert!(all.contains(&format!("damaged snapshot object {id}")), "{all}");
}

#[test]
fn a_damaged_config_is_fatal_for_every_command() {
    let env = backed_up();
    let config = env.repo().join("config");
    let good = fs::read(&config).unwrap();
    // The opening brace, then a digit of a chunker size: no longer JSON.
    for at in [0, good.len() as u64 / 2] {
        flip_bit(&config, at);
        for args in [
            &["history", "repo"][..],
            &["ls", "repo"],
            &["cat", "repo", "other.bin"],
            &["restore", "repo", "out", "--series", "s"],
            &["backup", "src", "repo", "--series", "s"],
            &["verify", "repo"],
        ] {
            fatal(&env, args, "config is corrupt");
        }
        assert!(!env.path("out").exists(), "a fatal restore writes nothing");
        fs::write(&config, &good).unwrap();
    }
}

#[test]
fn a_config_of_a_newer_format_is_refused() {
    let env = backed_up();
    let config = env.repo().join("config");
    let mut v: Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    v["version"] = 3.into();
    fs::write(&config, serde_json::to_vec(&v).unwrap()).unwrap();
    for args in [
        &["history", "repo"][..],
        &["restore", "repo", "out", "--series", "s"],
        &["backup", "src", "repo", "--series", "s"],
        &["verify", "repo"],
    ] {
        fatal(&env, args, "config has format version 3");
    }
}

#[test]
fn a_truncated_pack_fails_the_files_past_the_cut() {
    let env = backed_up();
    let (p, e) = pack_of(&env.repo(), &victim_id());
    let bytes = fs::read(&p.path).unwrap();
    fs::write(&p.path, &bytes[..(e.offset + u64::from(e.stored_len) / 2) as usize]).unwrap();

    let v = restore_checked(&env, "out");
    assert_eq!(v["exit_code"].as_i64().unwrap() & 8, 8);
    let failed = v["errors"].as_array().unwrap();
    assert!(failed.iter().any(|f| f["path"] == "victim.bin"), "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|f| f["message"].as_str().unwrap().contains(&p.id.to_hex())),
        "{failed:?}"
    );
    fatal(&env, &["cat", "repo", "victim.bin"], &p.id.to_hex());
    let verify = env.run(&["verify", "repo"]);
    assert_eq!(sane(&verify, "verify"), 8);
    assert!(text(&verify.stdout).contains(&format!("damaged pack {}", p.id)));
}

#[test]
fn a_pack_renamed_to_a_fresh_id_is_missing_and_unreferenced() {
    let env = backed_up();
    let (p, _) = pack_of(&env.repo(), &victim_id());
    let fresh = PackId::of(b"no such pack").to_hex();
    let dest = env.repo().join("packs").join(&fresh[..2]).join(&fresh);
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::rename(&p.path, &dest).unwrap();

    let v = restore_checked(&env, "out");
    assert_eq!(v["exit_code"].as_i64().unwrap() & 8, 8);
    assert_eq!(v["files"]["failed"], 4, "every file's data is in that pack");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains(&p.id.to_hex()));
    fatal(&env, &["cat", "repo", "victim.bin"], &p.id.to_hex());
    let verify = env.run(&["verify", "repo", "--read-data"]);
    assert_eq!(sane(&verify, "verify"), 8);
    let out = text(&verify.stdout);
    assert!(
        out.contains(&format!("damaged pack {}", p.id)) && out.contains("missing"),
        "{out}"
    );
    assert!(out.contains(&format!("pack {fresh} is not referenced")), "{out}");
}

#[test]
fn a_pack_renamed_over_another_pack_is_found_by_its_content() {
    let env = backed_up();
    let (data, _) = pack_of(&env.repo(), &victim_id());
    let (tree, tree_entry) = tree_holding(&env.repo(), b"victim.bin");
    assert_ne!(data.id, tree.id, "data and trees go to separate packs");
    fs::rename(&data.path, &tree.path).unwrap();

    // The root tree is read from where the index puts it, and the bytes
    // there are not it: the root directory fails, as any damaged directory.
    let v = restore_checked(&env, "out");
    assert_eq!(v["exit_code"], 8, "{v}");
    assert_eq!(v["dirs"]["failed"], 1);
    assert_eq!(v["files"]["failed"], 0, "no file is reached");
    assert!(v["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains(&tree_entry.id.to_hex()));
    assert!(walk(&env.path("out")).is_empty(), "nothing is written");
    fatal(&env, &["ls", "repo"], &tree_entry.id.to_hex());
    let verify = env.run(&["verify", "repo", "--read-data"]);
    assert_eq!(sane(&verify, "verify"), 8);
    let out = text(&verify.stdout);
    assert!(out.contains(&format!("damaged pack {}", data.id)), "{out}");
    assert!(out.contains(&format!("damaged pack {}", tree.id)), "{out}");
}

/// Sets fields of blob `id`'s index row.
fn edit_blob_row(repo: &Path, id: &BlobId, set: &str) {
    let db = rusqlite::Connection::open(repo.join("index.sqlite")).unwrap();
    let n = db
        .execute(
            &format!("UPDATE blobs SET {set} WHERE id = ?1"),
            [id.as_bytes().as_slice()],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// The command run with at most 2 GiB of address space, so that a buffer
/// sized from a damaged length would fail the run instead of passing
/// unnoticed on a machine that overcommits memory.
fn run_limited(env: &Env, args: &[&str]) -> Output {
    let bin = assert_cmd::cargo::cargo_bin("robovault");
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2097152 && exec \"$@\"")
        .arg("sh")
        .arg(bin)
        .args(args)
        .current_dir(env.dir.path())
        .output()
        .unwrap()
}

#[test]
fn an_index_row_past_the_end_of_its_pack_fails_that_file() {
    let cases = [
        ("victim.bin", victim_id(), "offset = offset + 1000000"),
        ("victim.bin", victim_id(), "stored_len = 4294967295"),
        ("victim.bin", victim_id(), "raw_len = 4294967295"),
        ("notes.txt", BlobId::of(&notes()), "offset = offset + 1000000"),
        ("notes.txt", BlobId::of(&notes()), "stored_len = 4294967295"),
        ("notes.txt", BlobId::of(&notes()), "raw_len = 4294967295"),
        ("notes.txt", BlobId::of(&notes()), "offset = -1"),
        ("notes.txt", BlobId::of(&notes()), "compression = 7"),
    ];
    for (file, id, set) in cases {
        let env = backed_up();
        let (p, _) = pack_of(&env.repo(), &id);
        edit_blob_row(&env.repo(), &id, set);
        let case = format!("{file}: {set}");

        let o = run_limited(
            &env,
            &[
                "restore", "repo", "out", "--series", "s", "--json", "-r", "0", "-w", "0",
            ],
        );
        assert_eq!(sane(&o, &case) & 8, 8, "{case}: {}", text(&o.stderr));
        let v = restore_checked(&env, "out2");
        assert_eq!(v["files"]["failed"], 1, "{case}");
        assert_eq!(v["errors"][0]["path"], file);
        let msg = v["errors"][0]["message"].as_str().unwrap();
        // A row that cannot even say how the blob is stored names the blob
        // only; the others name its pack too.
        let pack_named = !set.starts_with("compression");
        assert!(msg.contains(&id.to_hex()), "{case}: {msg}");
        assert!(!pack_named || msg.contains(&p.id.to_hex()), "{case}: {msg}");
        let cat = run_limited(&env, &["cat", "repo", file]);
        assert_eq!(sane(&cat, &case), 16, "{case}: {}", text(&cat.stderr));
        assert!(cat.stdout.is_empty(), "{case}");
        assert!(
            text(&cat.stderr).contains(&id.to_hex()),
            "{case}: {}",
            text(&cat.stderr)
        );
        let verify = env.run(&["verify", "repo"]);
        assert_eq!(sane(&verify, "verify"), 8, "{case}: {}", text(&verify.stdout));
        assert!(text(&verify.stdout).contains(&id.to_hex()), "{case}");
    }
}

/// Commands that open the index.
const INDEX_READERS: [&[&str]; 5] = [
    &["history", "repo"],
    &["ls", "repo"],
    &["restore", "repo", "out", "--series", "s"],
    &["backup", "src", "repo", "--series", "s"],
    &["verify", "repo"],
];

#[test]
fn an_index_of_a_newer_schema_is_refused() {
    let env = backed_up();
    let db = rusqlite::Connection::open(env.repo().join("index.sqlite")).unwrap();
    db.pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    for args in INDEX_READERS {
        fatal(&env, args, "index.sqlite");
        let o = env.run(args);
        assert!(
            text(&o.stderr).contains("99"),
            "the version found is named: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn a_truncated_index_is_fatal_and_repair_rebuilds_it() {
    let env = backed_up();
    let index = env.repo().join("index.sqlite");
    for suffix in ["-wal", "-shm"] {
        assert!(!env.repo().join(format!("index.sqlite{suffix}")).exists());
    }
    let bytes = fs::read(&index).unwrap();
    fs::write(&index, &bytes[..bytes.len() / 2]).unwrap();
    for args in INDEX_READERS {
        fatal(&env, args, "index.sqlite");
    }
    let repair = env.run(&["repair", "index", "repo"]);
    assert_eq!(sane(&repair, "repair index"), 0, "{}", text(&repair.stderr));
    let v = restore_checked(&env, "out");
    assert_eq!(v["exit_code"], 1);
}

/// Small files whose content is unique, each its own blob, all in one pack.
fn small(i: usize) -> Vec<u8> {
    format!("small file {i:03}\n").into_bytes()
}

#[test]
fn verify_read_data_counts_each_damaged_blob_once_and_names_only_its_file() {
    let env = Env::new();
    for i in 0..160 {
        write(&env.src().join(format!("f{i:03}.txt")), &small(i));
    }
    env.backup_json();
    let victims = [7usize, 80, 151];
    let mut damaged_packs = std::collections::BTreeSet::new();
    for &i in &victims {
        let (p, e) = pack_of(&env.repo(), &BlobId::of(&small(i)));
        flip_bit(&p.path, e.offset + 2);
        damaged_packs.insert(p.id.to_hex());
    }
    assert_eq!(damaged_packs.len(), 1, "the 160 files share one pack");

    let verify = env.run(&["verify", "repo", "--read-data"]);
    assert_eq!(sane(&verify, "verify"), 8);
    let out = text(&verify.stdout);
    // One problem per blob, each followed by the one file that uses it.
    let lines: Vec<&str> = out.lines().collect();
    let mut named = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("damaged ") {
            let id = rest
                .strip_prefix("blob ")
                .expect("a blob, not the pack")
                .split(':')
                .next()
                .unwrap();
            let i = victims
                .iter()
                .copied()
                .find(|&i| BlobId::of(&small(i)).to_hex() == id)
                .unwrap_or_else(|| panic!("{id} is not a damaged blob: {out}"));
            assert!(lines[n + 1].starts_with("    snapshots: "), "{out}");
            assert!(
                lines[n + 2].starts_with("    path: ") && lines[n + 2].ends_with(&format!(":f{i:03}.txt")),
                "{out}"
            );
            assert!(!lines[n + 3].starts_with("    path: "), "one path only: {out}");
            named.push(i);
        }
    }
    named.sort_unstable();
    assert_eq!(named, victims, "{out}");
    assert_eq!(out.matches("    path: ").count(), 3, "{out}");
    assert!(out.contains(": 3 problems found\n"), "{out}");
    assert!(out.contains("\nTo recover: run robovault backup again"), "{out}");

    let json = env.run(&["verify", "repo", "--read-data", "--json"]);
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{v}");
    assert!(
        problems.iter().all(|p| p["paths"].as_array().unwrap().len() == 1),
        "{v}"
    );

    // Exactly those three cannot be restored; the other 157 are whole.
    let o = env.run(&["restore", "repo", "out", "--json", "-r", "0", "-w", "0"]);
    assert_eq!(sane(&o, "restore") & 8, 8);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut failed: Vec<String> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    failed.sort();
    assert_eq!(failed, ["f007.txt", "f080.txt", "f151.txt"]);
    for i in (0..160).filter(|i| !victims.contains(i)) {
        assert_eq!(fs::read(env.path(&format!("out/f{i:03}.txt"))).unwrap(), small(i));
    }
}

#[test]
fn a_failure_without_an_errno_prints_no_code() {
    let env = backed_up();
    let (p, e) = pack_of(&env.repo(), &victim_id());
    flip_bit(&p.path, e.offset + u64::from(e.stored_len) / 2);
    let o = env.run(&["restore", "repo", "out", "--series", "s", "-r", "0", "-w", "0"]);
    assert_eq!(sane(&o, "restore") & 8, 8);
    let log = text(&o.stdout);
    // README: an error no system call gave has no `<code> (0x…)`.
    let line = format!(
        " ERROR Reading Repository Data {}",
        env.path("out/victim.bin").display()
    );
    assert!(log.lines().any(|l| l.ends_with(&line)), "{log}");
    assert!(!log.contains("ERROR 0 (0x00000000)"), "{log}");
    let o = env.run(&[
        "restore", "repo", "out2", "--series", "s", "-r", "0", "-w", "0", "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["errors"][0]["path"], "victim.bin");
    assert!(v["errors"][0]["code"].is_null(), "{v}");
}

#[test]
fn a_hash_of_the_wrong_length_in_an_index_row_names_the_row_and_the_repair() {
    let cases = [
        (
            "UPDATE snapshots SET root_tree = substr(root_tree, 1, 31)",
            &["ls", "repo"][..],
            "snapshots row 1, column root_tree holds 31 bytes, not a 32-byte hash",
        ),
        (
            "UPDATE packs SET pack_id = zeroblob(33) WHERE id = 1",
            &["verify", "repo"][..],
            "packs row 1, column pack_id holds 33 bytes, not a 32-byte hash",
        ),
    ];
    for (damage, args, reason) in cases {
        let env = backed_up();
        let db = rusqlite::Connection::open(env.repo().join("index.sqlite")).unwrap();
        assert!(db.execute(damage, []).unwrap() > 0, "{damage}");
        drop(db);
        fatal(&env, args, reason);
        fatal(&env, args, "run: robovault repair index");
    }
    // Restore fails each file whose blobs it cannot locate, and says why.
    let env = backed_up();
    let db = rusqlite::Connection::open(env.repo().join("index.sqlite")).unwrap();
    assert_eq!(
        db.execute("UPDATE packs SET pack_id = X'' WHERE id = 1", []).unwrap(),
        1
    );
    drop(db);
    let o = env.run(&["restore", "repo", "out", "--series", "s"]);
    assert_eq!(sane(&o, "restore"), 8, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("column pack_id holds 0 bytes, not a 32-byte hash"),
        "{out}"
    );
}

#[test]
fn an_index_that_cannot_record_a_new_pack_is_not_called_a_corrupt_pack() {
    let env = Env::new();
    write(&env.src().join("a.bin"), &random_bytes(9000, 31));
    let first = env.run(&["backup", "src", "repo"]);
    assert_eq!(sane(&first, "backup"), 1, "{}", text(&first.stderr));
    // A real SQLite failure on the next pack's row.
    let db = rusqlite::Connection::open(env.repo().join("index.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON packs BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END;",
    )
    .unwrap();
    drop(db);
    write(&env.src().join("b.bin"), &random_bytes(9000, 32));
    let o = env.run(&["backup", "src", "repo"]);
    let err = text(&o.stderr);
    assert_eq!(sane(&o, "backup"), 16, "{err}");
    assert!(
        err.contains("is stored but could not be recorded in the index"),
        "{err}"
    );
    assert!(
        err.contains("index.sqlite") && err.contains("refused by a trigger"),
        "{err}"
    );
    assert!(!err.contains("corrupt"), "{err}");
}

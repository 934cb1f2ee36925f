//! A pack lost or damaged after a backup: the next backup must not point
//! into it. Content the source still has is read and stored again, the log
//! names the pack once, and the new snapshot restores bit for bit.

use super::*;
use robovault_store::{pack, BlobKind, PackId};

const FILES: usize = 200;

/// A source of 200 distinct files, backed up once.
fn backed_up() -> Env {
    backed_up_with(&[])
}

/// The same, with more arguments to the backup.
fn backed_up_with(extra: &[&str]) -> Env {
    let env = Env::new();
    for i in 0..FILES {
        write(
            &env.src().join(format!("d{}/f{i:03}", i % 4)),
            &random_bytes(3000, i as u64),
        );
    }
    let mut args = vec!["backup", "src", "repo", "--series", "s", "-r", "0", "-w", "0"];
    args.extend(extra);
    let out = env.run(&args);
    assert_eq!(code(&out), 1, "{}{}", text(&out.stdout), text(&out.stderr));
    env
}

/// The repository's packs holding data blobs: (path, id).
fn data_packs(repo: &Path) -> Vec<(PathBuf, PackId)> {
    let mut out = Vec::new();
    for path in walk(&repo.join("packs")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(id) = PackId::from_hex(&name) else { continue };
        let entries = pack::parse_pack(&id, &fs::read(&path).unwrap()).unwrap();
        if entries.iter().any(|e| e.kind == BlobKind::Data) {
            out.push((path, id));
        }
    }
    out
}

/// The one data pack of a small backup.
fn only_data_pack(env: &Env) -> (PathBuf, PackId) {
    let packs = data_packs(&env.repo());
    assert_eq!(packs.len(), 1, "expected one data pack: {packs:?}");
    packs.into_iter().next().unwrap()
}

/// The second backup, one thread (base names in file lines), its log in a
/// file and its JSON summary on stdout.
fn second_backup(env: &Env) -> (Value, String) {
    let log = env.path("second.log");
    let out = env.run(&args(B, &["--json", "--log", log.to_str().unwrap()]));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr));
    });
    (summary, fs::read_to_string(&log).unwrap())
}

/// Restores the latest snapshot into `t` and compares it with the source.
fn restores_whole(env: &Env) {
    let out = env.run(&["restore", "repo", "t", "--series", "s", "-r", "0", "-w", "0"]);
    assert_eq!(
        code(&out),
        1,
        "restore failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_same_tree(&env.src(), &env.path("t"));
}

fn note_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.starts_with("NOTE : ")).collect()
}

#[test]
fn a_new_copy_of_content_in_a_deleted_pack_is_stored_again_and_restores() {
    let env = backed_up();
    let (path, id) = only_data_pack(&env);
    fs::remove_file(&path).unwrap();
    fs::copy(env.src().join("d1/f001"), env.src().join("d1/copy")).unwrap();

    let (summary, log) = second_backup(&env);
    assert_eq!(summary["exit_code"], 1, "{summary}\n{log}");
    assert!(summary["new_data"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(
        note_lines(&log),
        [format!(
            "NOTE : pack {id} is missing from the repository; its content is stored again where the source still has it"
        )],
        "{log}"
    );
    assert!(log.contains("\t  New File  \t         2.9 k\tcopy\n"), "{log}");
    restores_whole(&env);
}

#[test]
fn unchanged_files_whose_pack_was_deleted_are_read_and_stored_again() {
    let env = backed_up();
    let (path, _) = only_data_pack(&env);
    fs::remove_file(&path).unwrap();

    let (summary, log) = second_backup(&env);
    // Each file is Same by its metadata, yet copied: its content was lost.
    assert_eq!(summary["files"]["copied"], FILES as u64, "{summary}");
    assert_eq!(summary["exit_code"], 1, "{summary}");
    assert_eq!(summary["new_data"], (FILES * 3000) as u64, "{summary}");
    assert_eq!(log.matches("\t  Lost Pack \t         2.9 k\t").count(), FILES, "{log}");
    assert_eq!(note_lines(&log).len(), 1, "{log}");
    restores_whole(&env);

    // The latest snapshot is whole again: verify finds nothing wrong with it,
    // and the index keeps no row of the lost pack.
    let out = env.run(&["verify", "repo", "--read-data", "--json"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["packs"],
        walk(&env.repo().join("packs")).iter().filter(|p| p.is_file()).count(),
        "{v}"
    );

    // A third run finds every pack there: nothing read, nothing stored.
    let (summary, log) = second_backup(&env);
    assert_eq!(summary["files"]["copied"], 0, "{summary}");
    assert_eq!(summary["new_data"], 0, "{summary}");
    assert!(note_lines(&log).is_empty(), "{log}");
}

#[test]
fn a_truncated_pack_is_not_reused() {
    let env = backed_up();
    let (path, id) = only_data_pack(&env);
    let len = fs::metadata(&path).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);

    let (summary, log) = second_backup(&env);
    assert_eq!(summary["exit_code"], 1, "{summary}\n{log}");
    assert_eq!(summary["files"]["copied"], FILES as u64, "{summary}");
    assert_eq!(
        note_lines(&log),
        [format!(
            "NOTE : pack {id} is damaged (not as the index recorded it); its content is stored again where the source still has it"
        )],
        "{log}"
    );
    restores_whole(&env);
}

#[test]
fn a_truncated_pack_written_again_under_its_name_is_replaced() {
    // One thread both times: the same blobs in the same order make the
    // same pack, whose name the truncated file holds.
    let env = backed_up_with(&["--threads", "1"]);
    let (path, id) = only_data_pack(&env);
    let len = fs::metadata(&path).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 100).unwrap();
    drop(f);

    let (summary, _) = second_backup(&env);
    assert_eq!(summary["files"]["copied"], FILES as u64, "{summary}");
    assert_eq!(
        data_packs(&env.repo()),
        [(path.clone(), id)],
        "written again under its name"
    );
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        len,
        "the truncated file was replaced"
    );
    restores_whole(&env);
}

/// The repository's packs holding tree blobs.
fn tree_packs(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in walk(&repo.join("packs")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(id) = PackId::from_hex(&name) else { continue };
        let entries = pack::parse_pack(&id, &fs::read(&path).unwrap()).unwrap();
        if entries.iter().any(|e| e.kind == BlobKind::Tree) {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_carried_directory_whose_trees_were_lost_is_written_again() {
    let env = backed_up();
    let kept = env.path("kept");
    fs::create_dir(&kept).unwrap();
    for i in 0..3 {
        let d = format!("d{i}");
        fs::rename(env.src().join(&d), kept.join(&d)).unwrap();
    }
    let trees = tree_packs(&env.repo());
    assert!(!trees.is_empty());
    for p in &trees {
        fs::remove_file(p).unwrap();
    }

    // d0..d2 are gone from the source; --xx carries them unchanged, and
    // their trees, lost with the pack, are built again from the index.
    let out = env.run(&[
        "backup", "src", "repo", "--series", "s", "-r", "0", "-w", "0", "--xx", "--json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    assert!(code(&out) < 8, "{v}");
    let out = env.run(&["restore", "repo", "t", "--series", "s", "-r", "0", "-w", "0"]);
    assert_eq!(
        code(&out),
        1,
        "restore failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for i in 0..3 {
        let d = format!("d{i}");
        assert_same_tree(&kept.join(&d), &env.path("t").join(&d));
    }
    assert_same_tree(&env.src().join("d3"), &env.path("t/d3"));
}

#[test]
fn a_carried_directory_under_an_unreadable_tree_is_written_again() {
    use robovault_store::{decode_blob, Tree};
    let env = backed_up();
    // Flip a byte inside the root's tree blob: its pack keeps its size.
    let mut flipped = false;
    for path in walk(&env.repo().join("packs")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(id) = PackId::from_hex(&name) else { continue };
        let mut bytes = fs::read(&path).unwrap();
        for e in pack::parse_pack(&id, &bytes).unwrap() {
            if e.kind != BlobKind::Tree {
                continue;
            }
            let at = e.offset as usize;
            let stored = &bytes[at..at + e.stored_len as usize];
            let tree = Tree::decode(&e.id, &decode_blob(&e.id, &e.location(id), stored).unwrap()).unwrap();
            if tree.nodes.iter().any(|n| n.name == b"d0") {
                bytes[at + e.stored_len as usize / 2] ^= 0x10;
                flipped = true;
            }
        }
        fs::write(&path, &bytes).unwrap();
    }
    assert!(flipped, "no tree holds d0");
    let kept = env.path("kept");
    fs::create_dir(&kept).unwrap();
    fs::rename(env.src().join("d0"), kept.join("d0")).unwrap();

    // d0 is carried (--xx); the root's tree on the way cannot be read.
    let out = env.run(&["backup", "src", "repo", "--series", "s", "-r", "0", "-w", "0", "--xx"]);
    assert!(code(&out) < 8, "{}{}", text(&out.stdout), text(&out.stderr));
    let out = env.run(&["restore", "repo", "t", "--series", "s", "-r", "0", "-w", "0"]);
    assert_eq!(
        code(&out),
        1,
        "restore failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_same_tree(&kept.join("d0"), &env.path("t/d0"));
    for d in ["d1", "d2", "d3"] {
        assert_same_tree(&env.src().join(d), &env.path("t").join(d));
    }
}

//! Replays the fuzzers' regression corpus (`fuzz/regressions/<target>/`:
//! every input that once crashed a fuzz target, and a few seeds) through the
//! same entry points as the fuzz targets, on plain `cargo test`: none may
//! panic. The fuzzers themselves run from `fuzz/run.sh`, not here.

use std::path::{Path, PathBuf};

use robovault_store::fuzz;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no input", dir.display());
    files
}

type Entry = fn(&[u8]) -> bool;

#[test]
fn every_regression_input_decodes_or_fails_cleanly() {
    // With whether some input must decode: the seeds of those are real
    // objects, so the replay reaches past the first checks.
    let targets: [(&str, Entry, bool); 8] = [
        ("pack", fuzz::pack, true),
        ("tree", fuzz::tree, true),
        ("snapshot", fuzz::snapshot, true),
        ("config", fuzz::config, true),
        ("blob", fuzz::blob, true),
        ("lock", fuzz::lock, true),
        ("keyfile", fuzz::key_file, true),
        ("sealed", fuzz::sealed, true),
    ];
    for (target, entry, some_decode) in targets {
        let files = corpus(target);
        let mut accepted = 0;
        for f in &files {
            let data = std::fs::read(f).unwrap();
            match std::panic::catch_unwind(|| entry(&data)) {
                Ok(ok) => accepted += usize::from(ok),
                Err(_) => panic!("{} panicked", f.display()),
            }
        }
        assert!(
            !some_decode || accepted > 0,
            "none of the {} {target} inputs decoded",
            files.len()
        );
    }
}

/// Seeds of the key-file and sealed targets, made under the fuzz keys: a
/// key file, each kind of whole object, a sealed blob and a sealed stream.
fn sealed_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use robovault_store::crypto::{KdfParams, KeyFile, KeyLabel, Purpose, StreamWriter};
    let keys = fuzz::fuzz_keys();
    let label = KeyLabel {
        host: "fs01".into(),
        user: "backup".into(),
        created: "2026-12-04T02:00:00Z".into(),
    };
    let cheap = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let mut seeds = vec![(
        "keyfile",
        "key".to_owned(),
        KeyFile::create(&keys, fuzz::FUZZ_PASSWORD, cheap, &label)
            .unwrap()
            .encode(),
    )];
    for (i, purpose) in [Purpose::Snapshot, Purpose::Marker, Purpose::Condemned]
        .into_iter()
        .enumerate()
    {
        let name = [i as u8; 32];
        let body = keys.seal_object(purpose, &name, b"{\"version\":1}\n").unwrap();
        let index = [3u8, 4, 5][i];
        let mut data = vec![0, index];
        data.extend_from_slice(&name);
        data.extend_from_slice(&body);
        seeds.push(("sealed", format!("object-{i}"), data));
    }
    let plain = b"a data blob's bytes".to_vec();
    let id = keys.blob_id(&plain);
    let sealing = robovault_store::Sealing::Sealed(keys.clone());
    let stored = sealing
        .seal_blob(robovault_store::BlobKind::Data, &id, plain.clone())
        .unwrap();
    let mut data = vec![1];
    data.extend_from_slice(&id.0);
    data.push(0);
    data.extend_from_slice(&(plain.len() as u32).to_le_bytes());
    data.extend_from_slice(&stored);
    seeds.push(("sealed", "blob".into(), data));
    let mut w = StreamWriter::new(&keys, Purpose::IndexCopy, b"fuzz", Vec::new()).unwrap();
    std::io::Write::write_all(&mut w, &vec![7u8; 3000]).unwrap();
    let mut data = vec![3];
    data.extend_from_slice(&w.finish().unwrap());
    seeds.push(("sealed", "stream".into(), data));
    seeds
}

#[test]
fn the_sealed_seeds_open() {
    for (target, name, data) in sealed_seeds() {
        let entry: Entry = if target == "keyfile" {
            fuzz::key_file
        } else {
            fuzz::sealed
        };
        assert!(entry(&data), "seed {target}/{name} opens");
        // Kept in the corpus (FUZZ_WRITE_SEEDS=1 cargo test writes them).
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/regressions")
            .join(target)
            .join(format!("seed-{name}"));
        if std::env::var_os("FUZZ_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &data).unwrap();
        }
    }
}

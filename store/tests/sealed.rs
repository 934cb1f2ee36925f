//! An encrypted store end to end at the store's level: what is written can
//! be read back only with the password, every kind of object is sealed, and
//! nothing written holds the plaintext or a plain BLAKE3 id.

use std::sync::{Arc, Mutex};

use robovault_store::crypto::{KdfParams, KeyLabel};
use robovault_store::{
    BlobId, BlobKind, Config, Encryption, Error, LocalBackend, ObjectKind, PackEntry, PackId, Packer, Store,
};

const TINY: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

fn label() -> KeyLabel {
    KeyLabel {
        host: "scan-host".into(),
        user: "scan-user".into(),
        created: "2026-12-04T00:00:00Z".into(),
    }
}

fn sealed_store(dir: &std::path::Path) -> Arc<Store> {
    let backend = LocalBackend::new(dir);
    backend.create_layout().unwrap();
    let config = Config::new_v2(Encryption::XChaCha20Poly1305);
    let (store, _key) = Store::create_sealed(Arc::new(backend), config, b"pass word", TINY, &label()).unwrap();
    Arc::new(store)
}

fn store_blobs(store: &Arc<Store>, blobs: &[(BlobKind, Vec<u8>)]) -> Vec<(PackId, PackEntry)> {
    let packs = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&packs);
    let packer = Packer::new(
        store,
        Box::new(move |id, _, entries: &[PackEntry]| {
            seen.lock().unwrap().extend(entries.iter().map(|e| (id, *e)));
            Ok(())
        }),
    );
    for (kind, raw) in blobs {
        packer.add(store.blob_id(raw), *kind, raw).unwrap();
    }
    packer.finish().unwrap();
    let out = packs.lock().unwrap().clone();
    out
}

fn every_file(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    walk(dir)
}

fn walk(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_sealed_store_reads_back_and_reveals_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = sealed_store(dir.path());
    let secret_text = b"the quarterly numbers of the secret project are in this file ".repeat(200);
    let random = incompressible(300_000);
    let blobs = vec![
        (BlobKind::Data, secret_text.clone()),
        (BlobKind::Data, random.clone()),
        (
            BlobKind::Tree,
            b"tree-like bytes with a name: secret-project.txt".to_vec(),
        ),
    ];
    let stored = store_blobs(&store, &blobs);
    assert_eq!(stored.len(), 3);
    for ((_, raw), (pack, entry)) in blobs.iter().zip(&stored) {
        assert_eq!(&store.read_blob(&entry.id, &entry.location(*pack)).unwrap(), raw);
    }
    let footer = store.read_pack_footer(&stored[0].0).unwrap();
    assert!(footer.iter().any(|e| e.id == stored[0].1.id));

    let object = b"{\"series\":\"secret-series\",\"host\":\"scan-host\"}\n";
    let snap = store.write_snapshot(object).unwrap();
    assert_eq!(store.read_snapshot_bytes(&snap).unwrap(), object);

    let needles: Vec<Vec<u8>> = vec![
        secret_text[..64].to_vec(),
        random[1000..1064].to_vec(),
        b"secret-project".to_vec(),
        b"secret-series".to_vec(),
        b"scan-host".to_vec(),
        b"scan-user".to_vec(),
        BlobId::of(&secret_text).0.to_vec(),
        BlobId::of(&random).0.to_vec(),
        hex_of(&BlobId::of(&random).0),
    ];
    for (path, bytes) in every_file(dir.path()) {
        for needle in &needles {
            assert!(
                !contains(&bytes, needle),
                "{path} holds {:?}",
                String::from_utf8_lossy(&needle[..16])
            );
            assert!(!contains(path.as_bytes(), needle), "the name {path} holds a secret");
        }
    }
}

/// Random bytes, so the store keeps them raw (compression cannot hide them).
fn incompressible(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new().update(b"scan").finalize_xof().fill(&mut out);
    out
}

fn hex_of(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn opening_needs_the_right_password() {
    let dir = tempfile::tempdir().unwrap();
    let store = sealed_store(dir.path());
    let stored = store_blobs(&store, &[(BlobKind::Data, b"content".repeat(30))]);
    let backend: Arc<dyn robovault_store::Backend> = Arc::new(LocalBackend::new(dir.path()));
    let err = Store::open(Arc::clone(&backend)).err().unwrap();
    assert!(matches!(err, Error::Password(_)), "{err}");
    let err = Store::open_with(Arc::clone(&backend), &|| Ok("wrong".to_owned().into()))
        .err()
        .unwrap();
    assert!(matches!(err, Error::WrongPassword { keys: 1, .. }), "{err}");
    let store = Store::open_with(backend, &|| Ok("pass word".to_owned().into())).unwrap();
    let (pack, entry) = stored[0];
    assert_eq!(
        store.read_blob(&entry.id, &entry.location(pack)).unwrap(),
        b"content".repeat(30)
    );
}

#[test]
fn an_altered_config_or_a_planted_plaintext_pack_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    sealed_store(dir.path());
    let path = dir.path().join("config");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"level\": 3", "\"level\": 4")).unwrap();
    let backend: Arc<dyn robovault_store::Backend> = Arc::new(LocalBackend::new(dir.path()));
    let err = Store::open_with(Arc::clone(&backend), &|| Ok("pass word".to_owned().into()))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Unauthentic { .. }), "{err}");
    std::fs::write(&path, text).unwrap();

    // A plaintext pack dropped into the encrypted repository.
    let store = Arc::new(Store::open_with(Arc::clone(&backend), &|| Ok("pass word".to_owned().into())).unwrap());
    let mut builder = robovault_store::pack::PackBuilder::new();
    builder.add(
        BlobId::of(b"x"),
        BlobKind::Data,
        robovault_store::Compression::None,
        1,
        b"x",
    );
    let (id, bytes, _) = builder.finish();
    backend.write_new(ObjectKind::Pack, &id.to_hex(), &bytes).unwrap();
    let err = store.read_pack_footer(&id).unwrap_err();
    assert!(err.to_string().contains("unencrypted pack"), "{err}");
}

#[test]
fn the_same_scan_finds_the_plaintext_of_an_unencrypted_store() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path());
    backend.create_layout().unwrap();
    let store = Arc::new(Store::create(Arc::new(backend), Config::new_v2(Encryption::None)).unwrap());
    let random = incompressible(300_000);
    store_blobs(&store, &[(BlobKind::Data, random.clone())]);
    let files = every_file(dir.path());
    assert!(files.iter().any(|(_, b)| contains(b, &random[1000..1064])));
    assert!(files
        .iter()
        .any(|(p, _)| contains(p.as_bytes(), &hex_of(&BlobId::of(&random).0))
            || files.iter().any(|(_, b)| contains(b, &BlobId::of(&random).0))));
}

//! Test vectors of every envelope, computed by the second implementation in
//! store/vectors/encryption.py (libsodium, the blake3 module, argon2-cffi)
//! from FORMAT.md's text: the Rust code must produce the same bytes.

use super::envelope::{associated_data, seal_raw, Purpose};
use super::{DataKey, KdfParams, KeyFile, KeyLabel, KeySet, Keys, StreamReader};

fn range<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start + i as u8)
}

fn keys() -> Keys {
    let data = vec![DataKey {
        generation: 1,
        key: range(0x20),
    }];
    Keys::new(range(0x00), KeySet::from_parts(data, range(0x40), range(0x60)).unwrap())
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[test]
fn ids_and_macs_match_the_second_implementation() {
    let keys = keys();
    assert_eq!(
        hex(&*keys.blob_id),
        "126945926be7fee8765df2860d4d5d3415151e0e6ee76c4dd68d63f73e64b3be"
    );
    assert_eq!(
        keys.blob_id(b"robovault test vector blob").to_hex(),
        "1b5632c434c74958e899cd78dcb115adbb60776307641d5199375b40c936623b"
    );
    assert_eq!(
        keys.snapshot_id(b"{\"version\":2,\"test\":\"vector\"}\n").to_hex(),
        "eff7811ca70bd50b1fd34bbde477088ed740f64275aed50855af65a5fd1f8a6b"
    );
    assert_eq!(
        hex(&keys.config_mac(b"config bytes")),
        "f6783e82d3f8fdd13a43a03338bc089eefaf4710a4837a74cf97b896acbe978d"
    );
    assert_eq!(keys.object_name(b"seed"), "c0976149ddc14978996106af7a6d3d08");
}

#[test]
fn blob_and_object_envelopes_match_the_second_implementation() {
    let keys = keys();
    let blob = b"robovault test vector blob";
    let id = keys.blob_id(blob);
    let sealed = keys
        .seal_with_nonce(1, Purpose::DataBlob, &id.0, blob, range(0x80))
        .unwrap();
    assert_eq!(
        hex(&sealed),
        "808182838485868788898a8b8c8d8e8f909192939495969798d1ac0ab2fff5a76fe93c0669a5f2d1f0e67a5092cd49ef5c9f8706a2ca24cfe127d471817c7197e5495f7a"
    );
    assert_eq!(
        keys.open(1, Purpose::DataBlob, &id.0, &sealed, &|| "blob".into())
            .unwrap(),
        blob
    );

    let snapshot = b"{\"version\":2,\"test\":\"vector\"}\n";
    let id = keys.snapshot_id(snapshot);
    let sealed = keys
        .seal_with_nonce(1, Purpose::Snapshot, &id.0, snapshot, range(0x80))
        .unwrap();
    let object = super::envelope::object_bytes(Purpose::Snapshot, 1, &sealed);
    assert_eq!(
        hex(&object),
        "525645320401000000808182838485868788898a8b8c8d8e8f9091929394959697919cb800b6ede9a475eb725136f3a6c2e6f12c05c29b4ee04792752441042d2cf421d1020c8bbb5f694c16c9c65150c6"
    );
    let opened = keys
        .open_object(Purpose::Snapshot, &id.0, &object, &|| "snapshot".into())
        .unwrap();
    assert_eq!(opened, snapshot);
}

#[test]
fn a_key_file_matches_the_second_implementation_and_unlocks() {
    let keys = keys();
    let kdf = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let label = KeyLabel {
        host: "vector-host".into(),
        user: "vector-user".into(),
        created: "2026-12-01T00:00:00Z".into(),
    };
    let password = b"correct horse battery staple";
    let file = KeyFile::create_with(
        &keys,
        password,
        kdf,
        &label,
        range(0xC0),
        range(0xA0),
        [range(0xE0), range(0x30)],
    )
    .unwrap();
    assert_eq!(
        hex(&file.commitment),
        "4d6bc817c6167e896c4acd957108975030949565bc1641e3436b5e6619ec77dd"
    );
    assert_eq!(
        hex(&file.payload),
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f74d9ec6b81de657d863b50421e97bb9c0da4902236022d669b39f53691116c3dcf58abda7b5af1aabb53940476f540863fccddbbb02c3ada1e722fd31cde2fbaa6ff6573252305e4b514572cad726afe7f0eba1bc43dbbe734dca600be24cbeb907aa67af43fc80ceec8d8569829592d23d05ed174f23f50bc369ad79fdd4986c"
    );
    assert_eq!(
        hex(&file.label),
        "303132333435363738393a3b3c3d3e3f404142434445464725965ee340d21fb8eb5a3f25b57cd53aa013057a7fdc1a5bf259fe31b81ade0855ba6218f6cfa34d16d45cc8afc36b8e76537e25efd47593d44f59338b4e3d5e36f244457c8ba23c273ede72f6595f3f320a1419228a429820e7c880b537535e"
    );
    let decoded = KeyFile::decode(&file.id(), &file.encode()).unwrap();
    let set = decoded.unlock(password).unwrap().expect("the password is the key's");
    assert_eq!(set.id_key(), keys.set().id_key());
    assert_eq!(set.chunker_key(), keys.set().chunker_key());
    assert_eq!(set.data_keys()[0].key, keys.set().data_keys()[0].key);
    assert!(decoded.unlock(b"wrong").unwrap().is_none());
    assert_eq!(decoded.label(&keys).unwrap(), label);
}

#[test]
fn a_stream_matches_the_second_implementation() {
    let keys = keys();
    let data: Vec<u8> = (0..2500).map(|i| (i % 251) as u8).collect();
    let cipher = keys.cipher(1, &|| "test".into()).unwrap();
    let base = associated_data(keys.repository(), 1, Purpose::IndexCopy, b"index-vector");
    let mut out = b"RVS2".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&1024u32.to_le_bytes());
    for (k, segment) in data.chunks(1024).enumerate() {
        let last = (k + 1) * 1024 >= data.len();
        out.extend_from_slice(&seal_raw(
            cipher,
            [k as u8; 24],
            &super::stream::segment_ad(&base, k as u64, last),
            segment,
        ));
    }
    assert_eq!(out.len(), 2632);
    assert_eq!(
        blake3::hash(&out).to_hex().as_str(),
        "3d5b6a345372c20a9b17d2f2f646cb15b618c61c8300b68d7e2c117510c690e2"
    );
    let mut back = Vec::new();
    let mut reader = StreamReader::new(&keys, Purpose::IndexCopy, b"index-vector", &out[..], "vector").unwrap();
    std::io::Read::read_to_end(&mut reader, &mut back).unwrap();
    assert_eq!(back, data);
}

//! One conformance suite for every backend: the local directory and, when a
//! gateway is configured (`AWS_ENDPOINT_URL`, `ROBOVAULT_TEST_S3_BUCKET` and
//! credentials, as `.ci/ceph-up` writes them), S3. Under `CI=true` a missing
//! gateway fails the S3 tests instead of skipping them.

use std::sync::Arc;

use robovault_store::{Backend, Error, LocalBackend, ObjectKind, S3Backend, S3Options, S3Url};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A fresh S3 backend under a unique prefix, or `None` outside CI without a
/// gateway.
fn s3() -> Option<Arc<dyn Backend>> {
    let bucket = std::env::var("ROBOVAULT_TEST_S3_BUCKET").ok();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let (Some(bucket), Some(_)) = (bucket, endpoint) else {
        assert!(
            !in_ci(),
            "CI must run the S3 tests: start .ci/ceph-up and source its env file"
        );
        return None;
    };
    let prefix = format!("conformance/{:016x}", rand::random::<u64>());
    let url = S3Url { bucket, prefix };
    let opts = S3Options {
        endpoint: std::env::var("AWS_ENDPOINT_URL").ok(),
        region: std::env::var("AWS_REGION").ok(),
        settings: std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).collect(),
        allow_http: true,
        ..S3Options::default()
    };
    Some(Arc::new(S3Backend::new(url, &opts).expect("S3 backend")))
}

fn id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn conformance(b: &dyn Backend) {
    let name = id(0xab);
    assert!(!b.exists(ObjectKind::Pack, &name).unwrap());
    assert!(matches!(b.read(ObjectKind::Pack, &name), Err(Error::NotFound { .. })));
    b.write_new(ObjectKind::Pack, &name, b"0123456789").unwrap();
    assert!(b.exists(ObjectKind::Pack, &name).unwrap());
    assert_eq!(b.read(ObjectKind::Pack, &name).unwrap(), b"0123456789");
    assert_eq!(b.size(ObjectKind::Pack, &name).unwrap(), 10);
    assert_eq!(b.read_range(ObjectKind::Pack, &name, 3, 4).unwrap(), b"3456");
    assert!(
        b.read_range(ObjectKind::Pack, &name, 8, 4).is_err(),
        "a range past the end is an error"
    );
    assert!(matches!(
        b.write_new(ObjectKind::Pack, &name, b"other"),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(
        b.read(ObjectKind::Pack, &name).unwrap(),
        b"0123456789",
        "never replaced"
    );
    // Listing: by kind, sharded packs included, nothing of another kind.
    b.write_new(ObjectKind::Snapshot, &id(1), b"s").unwrap();
    b.write_new(ObjectKind::Index, "20261127T010203Z-host-abc", b"i")
        .unwrap();
    assert_eq!(b.list(ObjectKind::Pack).unwrap(), std::slice::from_ref(&name));
    assert_eq!(b.list(ObjectKind::Snapshot).unwrap(), [id(1)]);
    assert_eq!(b.list(ObjectKind::Index).unwrap(), ["20261127T010203Z-host-abc"]);
    assert!(b.list(ObjectKind::Marker).unwrap().is_empty());
    // Streamed writes: nothing until commit; then atomically the whole.
    let mut w = b.create(ObjectKind::Pack).unwrap();
    w.write(b"part one, ").unwrap();
    drop(w);
    assert_eq!(
        b.list(ObjectKind::Pack).unwrap().len(),
        1,
        "an abandoned writer leaves nothing"
    );
    let big: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut w = b.create(ObjectKind::Pack).unwrap();
    for part in big.chunks(3 << 20) {
        w.write(part).unwrap();
    }
    w.commit(&id(2)).unwrap();
    assert_eq!(b.size(ObjectKind::Pack, &id(2)).unwrap(), big.len() as u64);
    assert_eq!(
        b.read_range(ObjectKind::Pack, &id(2), 9 << 20, 100).unwrap(),
        &big[9 << 20..(9 << 20) + 100]
    );
    assert_eq!(
        b.read(ObjectKind::Pack, &id(2)).unwrap(),
        big,
        "a multipart object reads back whole"
    );
    let mut w = b.create(ObjectKind::Pack).unwrap();
    w.write(b"x").unwrap();
    assert!(matches!(w.commit(&id(2)), Err(Error::AlreadyExists { .. })));
    // Deletes, of missing objects too.
    b.delete(ObjectKind::Pack, &name).unwrap();
    b.delete(ObjectKind::Pack, &name).unwrap();
    assert!(!b.exists(ObjectKind::Pack, &name).unwrap());
    for (k, n) in [
        (ObjectKind::Pack, id(2)),
        (ObjectKind::Snapshot, id(1)),
        (ObjectKind::Index, "20261127T010203Z-host-abc".into()),
    ] {
        b.delete(k, &n).unwrap();
    }
    assert!(b.list(ObjectKind::Pack).unwrap().is_empty());
}

#[test]
fn the_local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(dir.path());
    b.create_layout().unwrap();
    conformance(&b);
}

#[test]
fn the_s3_backend_conforms() {
    let Some(b) = s3() else { return };
    conformance(b.as_ref());
}

#[test]
fn s3_urls() {
    assert_eq!(S3Url::parse("/srv/repo").unwrap(), None);
    let u = S3Url::parse("s3://bucket/a/b/").unwrap().unwrap();
    assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("bucket", "a/b"));
    assert_eq!(u.to_string(), "s3://bucket/a/b");
    assert!(S3Url::parse("s3:///x").is_err());
}

#[test]
fn plain_http_needs_consent() {
    let url = S3Url {
        bucket: "b".into(),
        prefix: String::new(),
    };
    let opts = S3Options {
        endpoint: Some("http://127.0.0.1:1".into()),
        ..S3Options::default()
    };
    let e = S3Backend::new(url, &opts).unwrap_err();
    assert!(e.to_string().contains("--s3-allow-http"), "{e}");
}

#[test]
fn coalesced_reads_group_near_blobs_of_one_pack() {
    use robovault_store::{BlobId, BlobKind, BlobLocation, Compression, PackId, Store};
    let loc = |pack: u8, offset: u64, len: u32| BlobLocation {
        pack: PackId([pack; 32]),
        offset,
        stored_len: len,
        raw_len: len,
        compression: Compression::None,
        kind: BlobKind::Data,
    };
    let id = |n: u8| BlobId([n; 32]);
    let runs = Store::coalesce(&[
        (id(1), loc(1, 0, 100)),
        (id(2), loc(1, 200, 100)),
        (id(3), loc(1, 100 + (4 << 20), 100)),
        (id(4), loc(2, 0, 100)),
        (id(5), loc(1, 50 << 20, 100)),
    ]);
    let ids: Vec<Vec<u8>> = runs.iter().map(|r| r.iter().map(|(b, _)| b.0[0]).collect()).collect();
    assert_eq!(
        ids,
        [vec![1, 2], vec![3], vec![5], vec![4]],
        "near blobs share a read; far ones and other packs do not"
    );
}

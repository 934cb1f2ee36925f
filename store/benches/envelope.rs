//! Throughput of sealing and opening a 1 MiB blob (XChaCha20-Poly1305 with
//! Padmé padding, `Sealing::seal_blob` and `decode_blob`), against the
//! keyed BLAKE3 id of the same bytes: what encryption adds per byte stored.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use robovault_store::{BlobKind, BlobLocation, Compression, PackId, Sealing};

fn blob(c: &mut Criterion) {
    let keys = robovault_store::fuzz::fuzz_keys();
    let sealing = Sealing::Sealed(keys.clone());
    let mut data = vec![0u8; 1 << 20];
    blake3::Hasher::new()
        .update(b"envelope bench")
        .finalize_xof()
        .fill(&mut data);
    let id = keys.blob_id(&data);
    let sealed = sealing.seal_blob(BlobKind::Data, &id, data.clone()).unwrap();
    let loc = BlobLocation {
        pack: PackId::default(),
        offset: 8,
        stored_len: sealed.len() as u32,
        raw_len: data.len() as u32,
        compression: Compression::None,
        kind: BlobKind::Data,
    };
    let mut g = c.benchmark_group("1 MiB blob");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("seal", |b| {
        b.iter(|| sealing.seal_blob(BlobKind::Data, &id, black_box(data.clone())).unwrap())
    });
    g.bench_function("open and check", |b| {
        b.iter(|| sealing.decode_blob(&id, &loc, black_box(&sealed)).unwrap())
    });
    g.bench_function("keyed id alone", |b| b.iter(|| keys.blob_id(black_box(&data))));
    g.finish();
}

criterion_group!(benches, blob);
criterion_main!(benches);

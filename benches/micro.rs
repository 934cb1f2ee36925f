//! Micro benchmarks of the data path: chunking, hashing + compression, and
//! pack write/read throughput. The side-by-side benchmark is `compare.sh`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use robovault_store::{compress, BlobId, BlobKind, Chunker, ChunkerParams, Config, LocalBackend, Packer, Store};

/// Mixed data: half text-like (compressible), half pseudo-random.
fn corpus(len: usize) -> Vec<u8> {
    let text = b"The quick brown fox jumps over the lazy dog; robovault stores it once. ".repeat(len / 140 + 1);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&text[..len / 2]);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn chunking(c: &mut Criterion) {
    let data = corpus(64 << 20);
    let mut g = c.benchmark_group("chunking");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("fastcdc 1 MiB avg", |b| {
        b.iter(|| {
            Chunker::new(&data[..], &ChunkerParams::default())
                .map(|c| c.unwrap().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

fn hash_compress(c: &mut Criterion) {
    let data = corpus(1 << 20);
    let mut g = c.benchmark_group("hash+compress 1 MiB chunk");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("blake3", |b| b.iter(|| BlobId::of(black_box(&data))));
    g.bench_function("blake3 + zstd-3", |b| {
        b.iter(|| (BlobId::of(black_box(&data)), compress(black_box(&data), 3)))
    });
    g.finish();
}

fn packs(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let chunks: Vec<Vec<u8>> = (0..64).map(|i| corpus((1 << 20) + i)).collect();
    let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let mut g = c.benchmark_group("packs");
    g.throughput(Throughput::Bytes(total));
    g.sample_size(10);
    g.bench_function("write 64 MiB (fsync)", |b| {
        b.iter(|| {
            let repo = tempfile::tempdir_in(dir.path()).unwrap();
            let backend = Arc::new(LocalBackend::new(repo.path()));
            backend.create_layout().unwrap();
            let store = Arc::new(Store::create(backend, Config::new()).unwrap());
            let packer = Packer::new(&store, Box::new(|_, _, _| Ok(())));
            for c in &chunks {
                packer.add(BlobId::of(c), BlobKind::Data, c).unwrap();
            }
            packer.finish().unwrap()
        })
    });
    let repo = tempfile::tempdir_in(dir.path()).unwrap();
    let backend = Arc::new(LocalBackend::new(repo.path()));
    backend.create_layout().unwrap();
    let store = Arc::new(Store::create(backend, Config::new()).unwrap());
    let locations = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&locations);
    let packer = Packer::new(
        &store,
        Box::new(move |pack, _, entries| {
            sink.lock()
                .unwrap()
                .extend(entries.iter().map(|e| (e.id, e.location(pack))));
            Ok(())
        }),
    );
    for c in &chunks {
        packer.add(BlobId::of(c), BlobKind::Data, c).unwrap();
    }
    packer.finish().unwrap();
    let locations = locations.lock().unwrap().clone();
    g.bench_function("read + verify 64 MiB", |b| {
        b.iter(|| {
            locations
                .iter()
                .map(|(id, loc)| store.read_blob(id, loc).unwrap().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, chunking, hash_compress, packs);
criterion_main!(benches);

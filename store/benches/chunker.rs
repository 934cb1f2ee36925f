//! Throughput of the two chunkers on 64 MiB of random bytes with the
//! repository defaults (min 256 KiB, avg 1 MiB, max 4 MiB, normalization 1),
//! and the cost of setting up a keyed chunker (paid once a file).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use robovault_store::{Chunker, ChunkerAlgorithm, ChunkerParams};

const KEY: [u8; 32] = [0x5a; 32];

fn random(len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    blake3::Hasher::new()
        .update(b"robovault chunker bench")
        .finalize_xof()
        .fill(&mut data);
    data
}

fn keyed() -> ChunkerParams {
    ChunkerParams {
        algorithm: ChunkerAlgorithm::KeyedGearAes,
        ..ChunkerParams::default()
    }
}

fn throughput(c: &mut Criterion) {
    let data = random(64 << 20);
    let mut g = c.benchmark_group("chunker 64 MiB random, 1 MiB avg");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("fastcdc-2020", |b| {
        let p = ChunkerParams::default();
        b.iter(|| {
            Chunker::new(black_box(&data[..]), &p)
                .map(|c| c.unwrap().len())
                .sum::<usize>()
        })
    });
    g.bench_function("keyed-gear-aes128", |b| {
        let p = keyed();
        b.iter(|| {
            Chunker::with_key(black_box(&data[..]), &p, Some(&KEY))
                .unwrap()
                .map(|c| c.unwrap().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

fn setup(c: &mut Criterion) {
    let data = random(4096);
    let mut g = c.benchmark_group("chunker on a 4 KiB file");
    g.bench_function("fastcdc-2020", |b| {
        let p = ChunkerParams::default();
        b.iter(|| Chunker::new(black_box(&data[..]), &p).count())
    });
    g.bench_function("keyed-gear-aes128", |b| {
        let p = keyed();
        b.iter(|| Chunker::with_key(black_box(&data[..]), &p, Some(&KEY)).unwrap().count())
    });
    g.finish();
}

criterion_group!(benches, throughput, setup);
criterion_main!(benches);

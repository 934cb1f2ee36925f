//! Test vectors of the keyed chunker, computed by the second implementation
//! in store/vectors/chunker.py (the blake3 module, AES from pyca/cryptography),
//! which follows FORMAT.md "Keyed chunking" to the letter: the digest from each chunk's
//! first byte, one candidate at a time.

use super::keyed::Cutter;
use super::*;

/// The chunker key of every vector: bytes 0x00 to 0x1f.
const KEY: [u8; 32] = {
    let mut key = [0; 32];
    let mut i = 0;
    while i < 32 {
        key[i] = i as u8;
        i += 1;
    }
    key
};

/// Chunk lengths of `random()`, min 4096, avg 16384, max 65536, normalization 1.
const RANDOM_N1: &[usize] = &[
    18648, 17575, 26072, 30026, 24192, 10966, 22662, 4365, 20437, 35239, 19204, 16502, 14461, 12898, 17181, 9572,
];
/// Chunk lengths of `random()`, min 4096, avg 16384, max 65536, normalization 0.
const RANDOM_N0: &[usize] = &[
    18648, 11584, 9110, 22953, 5084, 9932, 50168, 22662, 4365, 15606, 8271, 31799, 31632, 4982, 13553, 12898, 17181,
    9572,
];
/// Chunk lengths of `random()`, min 1000, avg 3000 (bits 12), max 9999, normalization 3.
const RANDOM_N3_ODD: &[usize] = &[
    3711, 3290, 3361, 4194, 4092, 4092, 3721, 3436, 3559, 3653, 3057, 4427, 4523, 3264, 3674, 3161, 3080, 3103, 3155,
    3488, 3533, 3339, 4109, 3030, 3284, 4272, 5669, 3421, 3352, 3040, 4320, 3083, 3075, 3063, 3612, 1236, 3246, 3062,
    4205, 3042, 3058, 3543, 2506, 3101, 1264, 3449, 3154, 4014, 3143, 3152, 3525, 3413, 3500, 5069, 3388, 4261, 3051,
    3059, 3601, 3812, 3284, 4531, 3792, 3140, 3477, 3065, 3091, 3024, 3594, 3263, 3530, 3377, 3792, 3003, 3092, 1197,
    4355, 3226, 4183, 1134, 4336, 3105, 3685, 3295, 3013, 3106, 3462, 2751,
];
/// Chunk lengths of the mixed input, min 4096, avg 16384, max 65536, normalization 2.
const MIXED_N2: &[usize] = &[65536, 40559, 16979, 16772, 18405, 19060, 22572, 65536, 11381];

/// 300000 bytes of BLAKE3's XOF of "robovault chunker vector".
fn random() -> Vec<u8> {
    let mut data = vec![0; 300_000];
    blake3::Hasher::new()
        .update(b"robovault chunker vector")
        .finalize_xof()
        .fill(&mut data);
    data
}

fn params(min_size: u32, avg_size: u32, max_size: u32, normalization: u8) -> ChunkerParams {
    ChunkerParams {
        algorithm: ChunkerAlgorithm::KeyedGearAes,
        min_size,
        avg_size,
        max_size,
        normalization,
    }
}

fn lengths(data: &[u8], params: &ChunkerParams) -> Vec<usize> {
    Chunker::with_key(data, params, Some(&KEY))
        .unwrap()
        .map(|c| c.unwrap().len())
        .collect()
}

#[test]
fn gear_table_and_prf_match_the_second_implementation() {
    let cutter = Cutter::new(&KEY, &params(4096, 16384, 65536, 1));
    assert_eq!(cutter.gear_entry(0), 0xdf8c57733af8d408);
    assert_eq!(cutter.gear_entry(1), 0x1a6b3f4e5c47ebc6);
    assert_eq!(cutter.gear_entry(255), 0xfd9f35de56af2cd5);
    assert_eq!(cutter.y(0), 0xf80d8eb713c514f0);
    assert_eq!(cutter.y(0xdf8c57733af8d408), 0x80bb1daee15c72c3);
}

#[test]
fn random_data_cuts_match_the_second_implementation() {
    let data = random();
    assert_eq!(lengths(&data, &params(4096, 16384, 65536, 1)), RANDOM_N1);
    assert_eq!(lengths(&data, &params(4096, 16384, 65536, 0)), RANDOM_N0);
    assert_eq!(lengths(&data, &params(1000, 3000, 9999, 3)), RANDOM_N3_ODD);
}

#[test]
fn mixed_data_cuts_match_the_second_implementation() {
    // 100000 zero bytes, 100000 random ones, then bytes 0 to 255 300 times.
    let mut data = vec![0; 100_000];
    data.extend_from_slice(&random()[..100_000]);
    for _ in 0..300 {
        data.extend(0..=255u8);
    }
    assert_eq!(lengths(&data, &params(4096, 16384, 65536, 2)), MIXED_N2);
}

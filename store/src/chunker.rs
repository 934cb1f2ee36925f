//! Content-defined chunking: a file's bytes are cut where a rolling digest
//! says, so an insertion shifts only the chunks around it. Plaintext
//! repositories cut with FastCDC-2020 over its public gear table; encrypted
//! ones with the keyed chunker of FORMAT.md "Keyed chunking", whose cut points give
//! nothing away without the repository's chunker key.

mod keyed;
#[cfg(test)]
mod vectors;

use std::io::Read;

use fastcdc::v2020::{Normalization, StreamCDC};

use crate::config::{ChunkerAlgorithm, ChunkerParams};
use crate::error::{Error, Result};

/// Cuts a stream into chunks; yields owned buffers so each can be hashed and
/// compressed on another thread. It holds at most `max_size` bytes of the
/// stream plus a read buffer.
pub struct Chunker<R: Read> {
    inner: Inner<R>,
}

enum Inner<R: Read> {
    FastCdc(StreamCDC<R>),
    Keyed(keyed::KeyedStream<R>),
    /// A chunker that could not be made: its one item is the reason.
    Failed(Option<Error>),
}

impl<R: Read> Chunker<R> {
    /// A chunker over `source` with the repository's parameters, for a
    /// repository whose chunker needs no key (`fastcdc-2020`).
    ///
    /// With `keyed-gear-aes128` parameters it cuts nothing: its only item is
    /// the error [`Error::ChunkerKeyMissing`] (as an `io::Error`), never
    /// chunks cut without the key. Use [`Chunker::with_key`] there.
    pub fn new(source: R, params: &ChunkerParams) -> Self {
        Self::with_key(source, params, None).unwrap_or_else(|e| Chunker {
            inner: Inner::Failed(Some(e)),
        })
    }

    /// A chunker over `source` with the repository's parameters, and the
    /// repository's chunker key ([`crate::crypto::KeySet::chunker_key`]),
    /// which only `keyed-gear-aes128` uses.
    ///
    /// # Errors
    /// [`Error::ChunkerKeyMissing`] when the parameters name the keyed
    /// chunker and `key` is `None`.
    pub fn with_key(source: R, params: &ChunkerParams, key: Option<&[u8; 32]>) -> Result<Self> {
        let inner = match params.algorithm {
            ChunkerAlgorithm::FastCdc2020 => Inner::FastCdc(fastcdc_stream(source, params)),
            ChunkerAlgorithm::KeyedGearAes => {
                let key = key.ok_or(Error::ChunkerKeyMissing)?;
                Inner::Keyed(keyed::KeyedStream::new(source, keyed::Cutter::new(key, params)))
            }
        };
        Ok(Chunker { inner })
    }
}

fn fastcdc_stream<R: Read>(source: R, params: &ChunkerParams) -> StreamCDC<R> {
    let level = match params.normalization {
        0 => Normalization::Level0,
        1 => Normalization::Level1,
        2 => Normalization::Level2,
        _ => Normalization::Level3,
    };
    StreamCDC::with_level(
        source,
        params.min_size as usize,
        params.avg_size as usize,
        params.max_size as usize,
        level,
    )
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::FastCdc(inner) => inner.next().map(|r| r.map(|c| c.data).map_err(std::io::Error::from)),
            Inner::Keyed(inner) => inner.next(),
            Inner::Failed(error) => error.take().map(|e| Err(std::io::Error::other(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> ChunkerParams {
        ChunkerParams {
            min_size: 64,
            avg_size: 256,
            max_size: 1024,
            ..ChunkerParams::default()
        }
    }

    fn keyed(min_size: u32, avg_size: u32, max_size: u32) -> ChunkerParams {
        ChunkerParams {
            algorithm: ChunkerAlgorithm::KeyedGearAes,
            min_size,
            avg_size,
            max_size,
            normalization: 1,
        }
    }

    const KEY: [u8; 32] = [7; 32];

    fn lengths(data: &[u8], params: &ChunkerParams, key: &[u8; 32]) -> Vec<usize> {
        Chunker::with_key(data, params, Some(key))
            .unwrap()
            .map(|c| c.unwrap().len())
            .collect()
    }

    /// Deterministic pseudo-random bytes (BLAKE3's XOF).
    fn random(seed: &str, len: usize) -> Vec<u8> {
        let mut data = vec![0; len];
        blake3::Hasher::new()
            .update(seed.as_bytes())
            .finalize_xof()
            .fill(&mut data);
        data
    }

    /// A reader that hands out at most `step` bytes a call, as pipes do.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    proptest! {
        #[test]
        fn chunks_concatenate_to_the_input(data in proptest::collection::vec(any::<u8>(), 0..8000)) {
            let p = small();
            let chunks: Vec<Vec<u8>> = Chunker::new(&data[..], &p).map(|c| c.unwrap()).collect();
            prop_assert_eq!(chunks.concat(), data);
            for c in &chunks {
                prop_assert!(c.len() <= p.max_size as usize);
                prop_assert!(!c.is_empty());
            }
        }

        #[test]
        fn keyed_chunks_concatenate_to_the_input_within_min_and_max(
            data in proptest::collection::vec(any::<u8>(), 0..20000),
            low_entropy in any::<bool>(),
            key in any::<[u8; 32]>(),
            step in 1usize..5000,
        ) {
            // Few distinct bytes give long runs and repeated digests.
            let data: Vec<u8> = if low_entropy { data.iter().map(|b| b % 3).collect() } else { data };
            let p = keyed(64, 256, 1024);
            let source = Trickle { data: &data, step };
            let chunks: Vec<Vec<u8>> = Chunker::with_key(source, &p, Some(&key)).unwrap().map(|c| c.unwrap()).collect();
            prop_assert_eq!(&chunks.concat(), &data);
            let (last, rest) = match chunks.split_last() {
                Some(split) => split,
                None => return Ok(()),
            };
            prop_assert!(!last.is_empty() && last.len() <= 1024);
            for c in rest {
                prop_assert!((64..=1024).contains(&c.len()), "chunk of {} bytes", c.len());
            }
            // How the source hands out its bytes changes no cut.
            prop_assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), lengths(&data, &p, &key));
        }
    }

    #[test]
    fn keyed_params_without_a_key_are_an_error() {
        let p = keyed(64, 256, 1024);
        assert!(matches!(
            Chunker::with_key(&b"data"[..], &p, None),
            Err(Error::ChunkerKeyMissing)
        ));
        // The keyless constructor cuts nothing without the key either.
        let mut chunker = Chunker::new(&b"data"[..], &p);
        let error = chunker.next().unwrap().unwrap_err();
        assert!(matches!(
            error.get_ref().and_then(|e| e.downcast_ref::<Error>()),
            Some(Error::ChunkerKeyMissing)
        ));
        assert!(chunker.next().is_none());
    }

    #[test]
    fn keyed_cuts_depend_on_the_key_alone() {
        let data = random("keyed cuts", 1 << 20);
        let p = keyed(2048, 8192, 32768);
        let first = lengths(&data, &p, &KEY);
        assert_eq!(first, lengths(&data, &p, &KEY));
        let mut other = KEY;
        other[31] ^= 1;
        let second = lengths(&data, &p, &other);
        assert_ne!(first, second);
        // Not one cut in common past the first chunk's minimum would be
        // a coincidence of 2^-13 per cut; a handful may agree.
        let cuts = |l: &[usize]| {
            l.iter()
                .scan(0, |at, n| {
                    *at += n;
                    Some(*at)
                })
                .collect::<std::collections::BTreeSet<_>>()
        };
        let common = cuts(&first).intersection(&cuts(&second)).count();
        assert!(common < first.len() / 4, "{common} of {} cuts in common", first.len());
    }

    #[test]
    fn keyed_cuts_differ_from_fastcdc() {
        let data = random("keyed cuts", 1 << 20);
        let mut p = keyed(2048, 8192, 32768);
        let keyed = lengths(&data, &p, &KEY);
        p.algorithm = ChunkerAlgorithm::FastCdc2020;
        assert_ne!(keyed, lengths(&data, &p, &KEY));
    }

    #[test]
    fn keyed_chunks_average_near_avg_size_on_random_data() {
        let data = random("average", 8 << 20);
        for normalization in 0..=3 {
            let p = ChunkerParams {
                normalization,
                ..keyed(1024, 4096, 16384)
            };
            let l = lengths(&data, &p, &KEY);
            let mean = data.len() / l.len();
            assert!(
                (3072..=5120).contains(&mean),
                "normalization {normalization}: mean chunk {mean} bytes for avg 4096"
            );
        }
    }

    #[test]
    fn an_insertion_near_the_start_changes_only_the_first_chunks() {
        let data = random("insertion", 1 << 20);
        let p = keyed(2048, 8192, 32768);
        let before: Vec<Vec<u8>> = Chunker::with_key(&data[..], &p, Some(&KEY))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let mut edited = data.clone();
        edited.splice(100..100, *b"a few inserted bytes");
        let after: Vec<Vec<u8>> = Chunker::with_key(&edited[..], &p, Some(&KEY))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let kept = before.iter().filter(|c| after.contains(c)).count();
        assert!(kept + 3 >= before.len(), "{kept} of {} chunks kept", before.len());
        // The chunks after the resync are the same ones, in order.
        assert_eq!(before[before.len() - kept..], after[after.len() - kept..]);
    }

    #[test]
    fn keyed_input_shorter_than_min_is_one_chunk() {
        let p = keyed(4096, 16384, 65536);
        assert_eq!(lengths(&[1; 4096], &p, &KEY), [4096]);
        assert_eq!(lengths(&[], &p, &KEY), Vec::<usize>::new());
        // Uniform bytes repeat one digest from the 64th byte on: every
        // chunk but the last is min, avg or max long, all the same.
        let l = lengths(&[0; 200_000], &p, &KEY);
        let (_, rest) = l.split_last().unwrap();
        assert!([4096, 16384, 65536].contains(&rest[0]), "{l:?}");
        assert!(rest.iter().all(|&n| n == rest[0]), "{l:?}");
    }
}

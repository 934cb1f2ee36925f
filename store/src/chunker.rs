//! Content-defined chunking: a file's bytes are cut where FastCDC's rolling hash
//! says, so an insertion shifts only the chunks around it.

use std::io::Read;

use fastcdc::v2020::{Normalization, StreamCDC};

use crate::config::ChunkerParams;

/// Cuts a stream into chunks; yields owned buffers so each can be hashed and
/// compressed on another thread.
pub struct Chunker<R: Read> {
    inner: StreamCDC<R>,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `source` with the repository's parameters.
    pub fn new(source: R, params: &ChunkerParams) -> Self {
        let level = match params.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        };
        Chunker {
            inner: StreamCDC::with_level(
                source,
                params.min_size as usize,
                params.avg_size as usize,
                params.max_size as usize,
                level,
            ),
        }
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner
            .next()
            .map(|r| r.map(|c| c.data).map_err(std::io::Error::from))
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
    }
}

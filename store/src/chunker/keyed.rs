//! The keyed chunker `keyed-gear-aes128` (FORMAT.md "Keyed chunking"): FastCDC-2020's
//! gear digest over a table derived from the chunker key, and a cut wherever
//! AES-128 of the digest, under a second key derived from it, falls below the
//! normalized threshold. Without the key, cut points say nothing of content.

use std::io::{self, Read};

use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use aes::{Aes128Enc, Block};
use zeroize::{Zeroize, Zeroizing};

use crate::config::ChunkerParams;

/// BLAKE3 key-derivation context of the gear table.
const GEAR_CONTEXT: &str = "robovault 2026-12 chunker gear table";
/// BLAKE3 key-derivation context of the AES-128 key.
const PRF_CONTEXT: &str = "robovault 2026-12 chunker prf";

/// How many candidate digests go to AES at once, so that its parallel
/// (AES-NI, VAES) paths have blocks to interleave and the call's set-up is
/// paid rarely: on 64 MiB at the default sizes, 128 gave about 320 MiB/s,
/// 512 to 4096 about 350–450 (benches/chunker.rs). 16 KiB of stack.
const BATCH: usize = 1024;

/// How much the stream reads at a time, past the `max_size` bytes a chunk
/// can hold: the buffer is never longer than `max_size + READ`.
const READ: usize = 256 * 1024;

/// The gear digest remembers the last 64 bytes only: each byte's table
/// value is shifted left once per later byte, out of the 64-bit word after
/// 64 of them. Bytes more than this far before the first candidate cut
/// cannot change any tested digest, so they are skipped.
const WINDOW: usize = 64;

/// The cut-point rule for one key and one set of parameters.
pub(super) struct Cutter {
    gear: Zeroizing<[u64; 256]>,
    prf: Aes128Enc,
    min: usize,
    avg: usize,
    max: usize,
    /// Candidates shorter than `avg` cut when `y <= strict`.
    strict: u64,
    /// Candidates of `avg` bytes or more cut when `y <= loose`.
    loose: u64,
}

/// How far the search for the current chunk's end has gone.
#[derive(Default)]
pub(super) struct Scan {
    /// Bytes of the chunk that `h` covers (or that need not be covered).
    absorbed: usize,
    /// The gear digest after `absorbed` bytes.
    h: u64,
}

impl Cutter {
    /// The rule for `key` and `params`. Sizes out of the config's bounds
    /// still give a rule (every size is at least one byte and
    /// `min <= max`), never a panic.
    pub(super) fn new(key: &[u8; 32], params: &ChunkerParams) -> Cutter {
        let mut bytes = Zeroizing::new([0u8; 2048]);
        blake3::Hasher::new_derive_key(GEAR_CONTEXT)
            .update(key)
            .finalize_xof()
            .fill(&mut bytes[..]);
        let mut gear = Zeroizing::new([0u64; 256]);
        for (g, b) in gear.iter_mut().zip(bytes.chunks_exact(8)) {
            *g = u64::from_le_bytes(b.try_into().expect("chunks of 8 bytes"));
        }

        let mut derived = blake3::derive_key(PRF_CONTEXT, key);
        let mut prf_key = Array::from([0u8; 16]);
        prf_key.copy_from_slice(&derived[..16]);
        let prf = Aes128Enc::new(&prf_key);
        derived.zeroize();
        prf_key.zeroize();

        let min = (params.min_size as usize).max(1);
        let max = (params.max_size as usize).max(min);
        let bits = rounded_log2(params.avg_size);
        let normalization = u32::from(params.normalization);
        Cutter {
            gear,
            prf,
            min,
            avg: params.avg_size as usize,
            max,
            strict: threshold(bits + normalization),
            loose: threshold(bits.saturating_sub(normalization)),
        }
    }

    /// The largest chunk.
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// Goes on searching the current chunk, whose first `data.len()` bytes
    /// (at most `max`) are `data`, for its end: the length of the chunk
    /// when a candidate cuts, `None` when none of those bytes does. `scan`
    /// carries the search between calls with more bytes of the same chunk,
    /// and is reset when a cut is found.
    pub(super) fn find(&self, data: &[u8], scan: &mut Scan) -> Option<usize> {
        let data = &data[..data.len().min(self.max)];
        let mut h = scan.h;
        // Index of the next byte to absorb; after it, the chunk is `i + 1` long.
        let mut i = scan.absorbed.max(self.min.saturating_sub(WINDOW));
        let first_candidate = self.min - 1;
        let before = data.len().min(first_candidate);
        while i < before {
            h = (h << 1).wrapping_add(self.gear[usize::from(data[i])]);
            i += 1;
        }
        // A chunk of `max` bytes is cut without a test.
        let end = data.len().min(self.max - 1);
        let mut blocks = [Block::default(); BATCH];
        while i < end {
            let n = BATCH.min(end - i);
            for (block, &byte) in blocks[..n].iter_mut().zip(&data[i..i + n]) {
                h = (h << 1).wrapping_add(self.gear[usize::from(byte)]);
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&h.to_le_bytes());
                *block = Array::from(b);
            }
            self.prf.encrypt_blocks(&mut blocks[..n]);
            for (k, block) in blocks[..n].iter().enumerate() {
                let len = i + k + 1;
                let y = u64::from_le_bytes(block[..8].try_into().expect("a block has 16 bytes"));
                let limit = if len < self.avg { self.strict } else { self.loose };
                if y <= limit {
                    *scan = Scan::default();
                    return Some(len);
                }
            }
            i += n;
        }
        scan.absorbed = i;
        scan.h = h;
        None
    }
}

#[cfg(test)]
impl Cutter {
    /// One value of the gear table.
    pub(super) fn gear_entry(&self, byte: u8) -> u64 {
        self.gear[usize::from(byte)]
    }

    /// The PRF's value for the digest `h`.
    pub(super) fn y(&self, h: u64) -> u64 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&h.to_le_bytes());
        let mut block = Array::from(b);
        self.prf.encrypt_block(&mut block);
        u64::from_le_bytes(block[..8].try_into().expect("a block has 16 bytes"))
    }
}

/// The integer nearest log2(n): k, or k + 1 when n >= 2^k * sqrt(2), which
/// is n² >= 2^(2k+1) (the fastcdc crate's rounding).
fn rounded_log2(n: u32) -> u32 {
    let n = u64::from(n.max(1));
    let k = n.ilog2();
    if n * n >= 1 << (2 * k + 1) {
        k + 1
    } else {
        k
    }
}

/// The largest `y` that cuts when a cut has probability 2^-bits:
/// `y < 2^(64 - bits)`.
fn threshold(bits: u32) -> u64 {
    u64::MAX.checked_shr(bits).unwrap_or(0)
}

/// The keyed chunker over a stream: a buffer of at most `max + READ` bytes,
/// holding the current chunk's bytes from `start` to `end`.
pub(super) struct KeyedStream<R> {
    source: R,
    cutter: Box<Cutter>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    scan: Scan,
    eof: bool,
}

impl<R: Read> KeyedStream<R> {
    pub(super) fn new(source: R, cutter: Cutter) -> Self {
        KeyedStream {
            source,
            cutter: Box::new(cutter),
            buf: Vec::new(),
            start: 0,
            end: 0,
            scan: Scan::default(),
            eof: false,
        }
    }

    /// The next `len` bytes, as a chunk of their own.
    fn take(&mut self, len: usize) -> Vec<u8> {
        let chunk = self.buf[self.start..self.start + len].to_vec();
        self.start += len;
        if self.start == self.end {
            // Nothing left to move when the buffer next fills.
            self.start = 0;
            self.end = 0;
        }
        self.scan = Scan::default();
        chunk
    }

    /// Reads more of the source after `end`; sets `eof` at its end.
    fn fill(&mut self) -> io::Result<()> {
        let cap = self.cutter.max() + READ;
        if self.end == self.buf.len() {
            if self.buf.len() < cap {
                // Grows as the file needs: a small file never costs a
                // buffer of `max` bytes.
                let len = cap.min(self.buf.len() + READ);
                self.buf.resize(len, 0);
            } else {
                // Full: move the current chunk, less than `max` bytes, to
                // the front. At least READ bytes are then free.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
        }
        loop {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<R: Read> Iterator for KeyedStream<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let available = self.end - self.start;
            let window = available.min(self.cutter.max());
            let data = &self.buf[self.start..self.start + window];
            if let Some(len) = self.cutter.find(data, &mut self.scan) {
                return Some(Ok(self.take(len)));
            }
            if window == self.cutter.max() {
                return Some(Ok(self.take(window)));
            }
            if self.eof {
                // Also where fewer than `min` bytes remain: one last chunk.
                return (available > 0).then(|| Ok(self.take(available)));
            }
            if let Err(e) = self.fill() {
                return Some(Err(e));
            }
        }
    }
}

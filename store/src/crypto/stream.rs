//! A sealed stream for objects too large to hold in memory whole (index
//! copies): `"RVS2" | generation u32 | segment length u32`, then segments of
//! that many plaintext bytes, each its own envelope, the last one shorter or
//! equal. Each segment's associated data ends with its number (u64) and a
//! last-segment flag (u8), the STREAM construction of Hoang, Reyhanitabar,
//! Rogaway and Vizár (2015): segments cannot be reordered, dropped or
//! truncated at a boundary without the reader noticing.

use std::io::{self, Read, Write};

use super::envelope::{associated_data, open_raw, seal_raw, Purpose, SEALED_OVERHEAD};
use super::{random_bytes, Keys};
use crate::{Error, Result};

/// Plaintext bytes per segment that writers use.
pub const SEGMENT_LEN: usize = 1 << 20;
const MAGIC: &[u8; 4] = b"RVS2";
const HEADER_LEN: usize = 12;
/// Segment lengths a reader accepts: bounded, so a damaged header cannot make
/// it allocate without limit.
const SEGMENT_RANGE: std::ops::RangeInclusive<usize> = 1024..=(16 << 20);

pub(super) fn segment_ad(base: &[u8], counter: u64, last: bool) -> Vec<u8> {
    let mut ad = Vec::with_capacity(base.len() + 9);
    ad.extend_from_slice(base);
    ad.extend_from_slice(&counter.to_le_bytes());
    ad.push(u8::from(last));
    ad
}

/// Seals what is written to it into `out`, segment by segment.
pub struct StreamWriter<'k, W: Write> {
    keys: &'k Keys,
    out: W,
    base: Vec<u8>,
    generation: u32,
    buf: Vec<u8>,
    counter: u64,
    segment: usize,
}

impl<'k, W: Write> StreamWriter<'k, W> {
    /// A writer of object `name` (bound into every segment) into `out`.
    ///
    /// # Errors
    /// [`Error::Io`] when the header cannot be written.
    pub fn new(keys: &'k Keys, purpose: Purpose, name: &[u8], out: W) -> Result<Self> {
        Self::with_segment(keys, purpose, name, out, SEGMENT_LEN)
    }

    pub(super) fn with_segment(
        keys: &'k Keys,
        purpose: Purpose,
        name: &[u8],
        mut out: W,
        segment: usize,
    ) -> Result<Self> {
        let generation = keys.set().generation();
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&generation.to_le_bytes());
        header.extend_from_slice(&(segment as u32).to_le_bytes());
        out.write_all(&header)
            .map_err(|e| Error::io("writing", "a sealed stream", e))?;
        Ok(StreamWriter {
            keys,
            out,
            base: associated_data(keys.repository(), generation, purpose, name),
            generation,
            buf: Vec::with_capacity(segment),
            counter: 0,
            segment,
        })
    }

    fn emit(&mut self, last: bool) -> io::Result<()> {
        let cipher = self
            .keys
            .cipher(self.generation, &|| "a sealed stream".into())
            .map_err(io::Error::other)?;
        let nonce = random_bytes().map_err(io::Error::other)?;
        let sealed = seal_raw(cipher, nonce, &segment_ad(&self.base, self.counter, last), &self.buf);
        self.out.write_all(&sealed)?;
        self.counter += 1;
        self.buf.clear();
        Ok(())
    }

    /// Seals the last segment and returns the output.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn finish(mut self) -> Result<W> {
        self.emit(true)
            .map_err(|e| Error::io("writing", "a sealed stream", e))?;
        self.out
            .flush()
            .map_err(|e| Error::io("writing", "a sealed stream", e))?;
        Ok(self.out)
    }
}

impl<W: Write> Write for StreamWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A full segment is sealed only once more data arrives: until then it
        // may be the last one.
        if self.buf.len() == self.segment && !data.is_empty() {
            self.emit(false)?;
        }
        let take = data.len().min(self.segment - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the plaintext of a [`StreamWriter`]'s stream, checking each segment.
pub struct StreamReader<'k, R: Read> {
    keys: &'k Keys,
    input: R,
    base: Vec<u8>,
    generation: u32,
    segment: usize,
    counter: u64,
    /// Ciphertext read ahead: one byte past a segment tells it is not the last.
    ahead: Vec<u8>,
    plain: Vec<u8>,
    at: usize,
    done: bool,
    object: String,
}

impl<'k, R: Read> StreamReader<'k, R> {
    /// A reader of object `name` (`object` describes it in errors).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a bad header, [`Error::Io`] when it cannot be read.
    pub fn new(keys: &'k Keys, purpose: Purpose, name: &[u8], mut input: R, object: &str) -> Result<Self> {
        let mut header = [0u8; HEADER_LEN];
        input
            .read_exact(&mut header)
            .map_err(|_| Error::corrupt(object, "too short to be a sealed stream"))?;
        if &header[..4] != MAGIC {
            return Err(Error::corrupt(
                object,
                "it is not a sealed robovault stream (no RVS2 header)",
            ));
        }
        let generation = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let segment = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
        if !SEGMENT_RANGE.contains(&segment) {
            return Err(Error::corrupt(
                object,
                format!("its segment length {segment} is out of range"),
            ));
        }
        keys.cipher(generation, &|| object.to_owned())?;
        Ok(StreamReader {
            keys,
            input,
            base: associated_data(keys.repository(), generation, purpose, name),
            generation,
            segment,
            counter: 0,
            ahead: Vec::new(),
            plain: Vec::new(),
            at: 0,
            done: false,
            object: object.to_owned(),
        })
    }

    fn next_segment(&mut self) -> Result<()> {
        let want = self.segment + SEALED_OVERHEAD + 1;
        let mut have = self.ahead.len();
        self.ahead.resize(want, 0);
        while have < want {
            match self.input.read(&mut self.ahead[have..]) {
                Ok(0) => break,
                Ok(n) => have += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading", &self.object, e)),
            }
        }
        self.ahead.truncate(have);
        let last = have < want;
        let take = if last { have } else { want - 1 };
        let object = format!("{} segment {}", self.object, self.counter);
        let cipher = self.keys.cipher(self.generation, &|| object.clone())?;
        let ad = segment_ad(&self.base, self.counter, last);
        let plain = open_raw(cipher, &ad, &self.ahead[..take], &|| object.clone())?;
        self.ahead.drain(..take);
        self.plain = plain;
        self.at = 0;
        self.counter += 1;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for StreamReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_segment().map_err(io::Error::other)?;
        }
        let n = out.len().min(self.plain.len() - self.at);
        out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

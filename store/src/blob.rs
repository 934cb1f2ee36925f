//! Blobs: the unit of storage. A blob's id is the BLAKE3 of its uncompressed
//! bytes; it is stored zstd-compressed, or raw when compression does not pay, and
//! every read decompresses and re-hashes it before handing it out.

use std::cell::RefCell;

use crate::{BlobId, Error, PackId, Result};

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    /// A chunk of file content.
    Data,
    /// An encoded directory (see [`crate::tree`]).
    Tree,
}

/// How a blob's bytes are stored in its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as is.
    None,
    /// One zstd frame.
    Zstd,
}

impl BlobKind {
    /// The byte that stands for this kind in pack footers (FORMAT.md).
    pub fn code(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }

    /// The kind a footer byte stands for.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }

    /// `"data"` or `"tree"`.
    pub fn name(self) -> &'static str {
        match self {
            BlobKind::Data => "data",
            BlobKind::Tree => "tree",
        }
    }
}

impl Compression {
    /// The byte that stands for this compression in pack footers (FORMAT.md).
    pub fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
        }
    }

    /// The compression a footer byte stands for.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Compression::None),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Where a blob lives and how to read it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// Byte offset of its stored bytes in the pack.
    pub offset: u64,
    /// Length of its stored (possibly compressed) bytes.
    pub stored_len: u32,
    /// Length of its content.
    pub raw_len: u32,
    /// How the stored bytes are encoded.
    pub compression: Compression,
    /// What it holds.
    pub kind: BlobKind,
}

thread_local! {
    // A zstd context costs a few hundred KiB to set up; keep one per thread.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

/// Compresses `raw` at `level`, or keeps it raw when that saves less than 1/32
/// of its size (decompressing would then cost more than it saves).
pub fn compress(raw: &[u8], level: i32) -> (Compression, Vec<u8>) {
    if raw.len() < 64 {
        return (Compression::None, raw.to_vec());
    }
    let packed = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            *slot = zstd::bulk::Compressor::new(level).ok().map(|c| (level, c));
        }
        slot.as_mut().and_then(|(_, c)| c.compress(raw).ok())
    });
    match packed {
        Some(p) if p.len() < raw.len() - raw.len() / 32 => (Compression::Zstd, p),
        _ => (Compression::None, raw.to_vec()),
    }
}

/// Decodes the stored bytes of blob `id` at `loc` in an unencrypted
/// repository and checks them against the id; see
/// [`crate::Sealing::decode_blob`] for either kind.
///
/// # Errors
/// [`Error::Corrupt`] when the bytes do not decompress to `raw_len` bytes,
/// [`Error::HashMismatch`] when they do not hash to `id`.
pub fn decode(id: &BlobId, loc: &BlobLocation, stored: &[u8]) -> Result<Vec<u8>> {
    crate::Sealing::Plain.decode_blob(id, loc, stored)
}

/// Decompresses a blob's stored (opened) bytes and checks the content against
/// `id` with `id_of`.
pub(crate) fn decode_stored(
    id: &BlobId,
    loc: &BlobLocation,
    stored: &[u8],
    id_of: impl Fn(&[u8]) -> BlobId,
) -> Result<Vec<u8>> {
    let object = || format!("blob {id} in pack {} at offset {}", loc.pack, loc.offset);
    let raw = match loc.compression {
        Compression::None => stored.to_vec(),
        Compression::Zstd => {
            check_zstd_len(stored, loc.raw_len).map_err(|reason| Error::corrupt(object(), reason))?;
            zstd::bulk::decompress(stored, loc.raw_len as usize)
                .map_err(|e| Error::corrupt(object(), format!("zstd: {e}")))?
        }
    };
    if raw.len() != loc.raw_len as usize || id_of(&raw) != *id {
        return Err(Error::HashMismatch {
            id: id.to_hex(),
            pack: loc.pack.to_hex(),
            offset: loc.offset,
        });
    }
    Ok(raw)
}

/// The most content one stored byte of zstd can stand for: a block holds at
/// most 128 KiB and takes at least 4 bytes (an RLE block).
const ZSTD_MAX_RATIO: u64 = (128 << 10) / 4;

/// Checks a claimed content length against a zstd frame before decompressing
/// reserves that much memory: the length comes from the index or a pack footer
/// and may be damaged, so it must be one the stored bytes can produce, and the
/// one the frame declares (every frame robovault writes declares it).
fn check_zstd_len(stored: &[u8], raw_len: u32) -> std::result::Result<(), String> {
    if u64::from(raw_len) > stored.len() as u64 * ZSTD_MAX_RATIO {
        return Err(format!(
            "{raw_len} bytes cannot come from {} stored bytes",
            stored.len()
        ));
    }
    match zstd::zstd_safe::get_frame_content_size(stored) {
        Ok(Some(declared)) if declared != u64::from(raw_len) => {
            Err(format!("the frame holds {declared} bytes, the index says {raw_len}"))
        }
        Ok(_) => Ok(()),
        Err(_) => Err("not a zstd frame".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(c: Compression, stored: usize, raw: usize) -> BlobLocation {
        BlobLocation {
            pack: PackId::default(),
            offset: 8,
            stored_len: stored as u32,
            raw_len: raw as u32,
            compression: c,
            kind: BlobKind::Data,
        }
    }

    #[test]
    fn compressible_data_is_compressed_and_decodes() {
        let raw = b"hello world ".repeat(1000);
        let (c, stored) = compress(&raw, 3);
        assert_eq!(c, Compression::Zstd);
        assert!(stored.len() < raw.len() / 10);
        let id = BlobId::of(&raw);
        assert_eq!(decode(&id, &loc(c, stored.len(), raw.len()), &stored).unwrap(), raw);
    }

    #[test]
    fn a_wrong_content_length_is_refused_before_decompressing() {
        let raw = b"hello world ".repeat(1000);
        let (c, stored) = compress(&raw, 3);
        let declared = zstd::zstd_safe::get_frame_content_size(&stored).ok().flatten();
        assert_eq!(declared, Some(raw.len() as u64), "frames declare their content size");
        let id = BlobId::of(&raw);
        for claimed in [raw.len() + 1, u32::MAX as usize] {
            let err = decode(&id, &loc(c, stored.len(), claimed), &stored).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        }
    }

    #[test]
    fn random_data_is_kept_raw() {
        let raw: Vec<u8> = (0..10_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let (c, stored) = compress(&raw, 3);
        if c == Compression::None {
            assert_eq!(stored, raw);
        }
    }

    #[test]
    fn a_flipped_byte_is_detected() {
        let raw = b"some content that is long enough to compress, some content".repeat(10);
        let (c, mut stored) = compress(&raw, 3);
        let n = stored.len() / 2;
        stored[n] ^= 1;
        let id = BlobId::of(&raw);
        assert!(decode(&id, &loc(c, stored.len(), raw.len()), &stored).is_err());
    }
}

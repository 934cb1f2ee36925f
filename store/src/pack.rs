//! Pack files: many blobs in one immutable file, with a footer that lists them,
//! so that the store alone can say what every pack holds.
//!
//! ```text
//! header   "RVPK" | version u32
//! blobs    stored bytes, back to back (version 2: each sealed)
//! footer   N × entry (52 bytes): id[32] kind u8 compression u8 0u16 offset u64 stored_len u32 raw_len u32
//!          (version 2: the entries sealed as one envelope)
//! trailer  version 1: N u32 | BLAKE3(footer)[32] | version u32 | "RVPKTAIL"
//!          version 2: sealed footer length u32 | version u32 | "RVPKTAIL"
//! ```
//! All integers little-endian. The pack's id is the BLAKE3 of the whole file.
//! Both trailers end in the version and the magic, so a reader tells them
//! apart from the last 12 bytes.

use crate::backend::ObjectWriter;
use crate::blob::{BlobKind, BlobLocation, Compression};
use crate::{BlobId, Error, PackId, Result, Sealing};

const MAGIC: &[u8; 4] = b"RVPK";
const TAIL_MAGIC: &[u8; 8] = b"RVPKTAIL";
/// The pack format version of unencrypted packs.
pub const PACK_VERSION: u32 = 1;
/// The pack format version of sealed packs.
pub const SEALED_PACK_VERSION: u32 = 2;
/// Bytes before the first blob.
pub const HEADER_LEN: u64 = 8;
/// Bytes of one footer entry.
pub const ENTRY_LEN: usize = 52;
/// Bytes of the trailer at the very end of a version-1 pack.
pub const TRAILER_LEN: usize = 48;
/// Bytes of the trailer at the very end of a version-2 pack.
pub const SEALED_TRAILER_LEN: usize = 16;

/// One blob as the footer lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    /// The blob's id.
    pub id: BlobId,
    /// What it holds.
    pub kind: BlobKind,
    /// How it is stored.
    pub compression: Compression,
    /// Offset of its stored bytes from the start of the pack.
    pub offset: u64,
    /// Length of its stored bytes.
    pub stored_len: u32,
    /// Length of its content.
    pub raw_len: u32,
}

impl PackEntry {
    /// Where this blob lives, given the pack it is in.
    pub fn location(&self, pack: PackId) -> BlobLocation {
        BlobLocation {
            pack,
            offset: self.offset,
            stored_len: self.stored_len,
            raw_len: self.raw_len,
            compression: self.compression,
            kind: self.kind,
        }
    }
}

/// Builds one pack in memory; [`PackBuilder::finish`] gives the bytes to store.
#[derive(Debug)]
pub struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PackBuilder {
    /// An empty pack, header written.
    pub fn new() -> Self {
        Self::with_capacity(1 << 20)
    }

    /// An empty pack with room for `bytes` without reallocating (a pack
    /// that grows by doubling copies itself and touches twice the memory).
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&PACK_VERSION.to_le_bytes());
        PackBuilder {
            buf,
            entries: Vec::new(),
        }
    }

    /// Appends a blob's stored bytes.
    pub fn add(&mut self, id: BlobId, kind: BlobKind, compression: Compression, raw_len: u32, stored: &[u8]) {
        self.entries.push(PackEntry {
            id,
            kind,
            compression,
            offset: self.buf.len() as u64,
            stored_len: stored.len() as u32,
            raw_len,
        });
        self.buf.extend_from_slice(stored);
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes footer and trailer; returns the pack's id, bytes and entries.
    pub fn finish(mut self) -> (PackId, Vec<u8>, Vec<PackEntry>) {
        self.buf.extend_from_slice(&footer_and_trailer(&self.entries));
        (PackId::of(&self.buf), self.buf, self.entries)
    }
}

/// The footer and trailer that end a pack holding `entries`.
pub fn footer_and_trailer(entries: &[PackEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN + TRAILER_LEN);
    for e in entries {
        encode_entry(e, &mut out);
    }
    let footer_hash = blake3::hash(&out);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(footer_hash.as_bytes());
    out.extend_from_slice(&PACK_VERSION.to_le_bytes());
    out.extend_from_slice(TAIL_MAGIC);
    out
}

/// A pack written straight to the backend as blobs come, so it never sits
/// in memory; its id (the hash of its bytes) is computed on the way.
pub struct PackWriter {
    out: Box<dyn ObjectWriter>,
    hasher: blake3::Hasher,
    len: u64,
    entries: Vec<PackEntry>,
    sealing: Sealing,
}

impl PackWriter {
    /// Starts a pack in `out`, header written, in the version `sealing`
    /// writes; its blobs must come sealed by the same `sealing`.
    ///
    /// # Errors
    /// The backend's write errors.
    pub fn new(out: Box<dyn ObjectWriter>, sealing: &Sealing) -> Result<PackWriter> {
        let mut w = PackWriter {
            out,
            hasher: blake3::Hasher::new(),
            len: 0,
            entries: Vec::new(),
            sealing: sealing.clone(),
        };
        let mut header = [0u8; HEADER_LEN as usize];
        header[..4].copy_from_slice(MAGIC);
        header[4..].copy_from_slice(&sealing.pack_version().to_le_bytes());
        w.put(&header)?;
        Ok(w)
    }

    fn put(&mut self, data: &[u8]) -> Result<()> {
        self.out.write(data)?;
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(())
    }

    /// Appends a blob's stored bytes.
    ///
    /// # Errors
    /// The backend's write errors.
    pub fn add(
        &mut self,
        id: BlobId,
        kind: BlobKind,
        compression: Compression,
        raw_len: u32,
        stored: &[u8],
    ) -> Result<()> {
        self.entries.push(PackEntry {
            id,
            kind,
            compression,
            offset: self.len,
            stored_len: stored.len() as u32,
            raw_len,
        });
        self.put(stored)
    }

    /// Bytes so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes footer and trailer and commits the pack under its id; returns
    /// the id, the pack's size and its entries. A pack already stored with
    /// the same id (same bytes) counts as written.
    ///
    /// # Errors
    /// The backend's write and commit errors.
    pub fn finish(mut self) -> Result<(PackId, u64, Vec<PackEntry>)> {
        let tail = match self.sealing.keys() {
            None => footer_and_trailer(&self.entries),
            Some(keys) => {
                let mut footer = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
                for e in &self.entries {
                    encode_entry(e, &mut footer);
                }
                let mut tail = self.sealing.seal_footer(keys, &footer)?;
                tail.extend_from_slice(&(tail.len() as u32).to_le_bytes());
                tail.extend_from_slice(&SEALED_PACK_VERSION.to_le_bytes());
                tail.extend_from_slice(TAIL_MAGIC);
                tail
            }
        };
        self.put(&tail)?;
        let id = PackId(*self.hasher.finalize().as_bytes());
        match self.out.commit(&id.to_hex()) {
            Ok(()) | Err(Error::AlreadyExists { .. }) => Ok((id, self.len, self.entries)),
            Err(e) => Err(e),
        }
    }
}

fn encode_entry(e: &PackEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(e.id.as_bytes());
    out.push(e.kind.code());
    out.push(e.compression.code());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&e.offset.to_le_bytes());
    out.extend_from_slice(&e.stored_len.to_le_bytes());
    out.extend_from_slice(&e.raw_len.to_le_bytes());
}

/// Where a pack's footer lies, as its trailer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// The pack format version.
    pub version: u32,
    /// Offset of the footer (sealed, in version 2).
    pub footer_start: u64,
    /// Its length.
    pub footer_len: usize,
    /// Version 1: the BLAKE3 of the footer.
    hash: Option<[u8; 32]>,
}

/// Reads a pack's trailer from `tail`, the last [`TRAILER_LEN`] bytes of a
/// pack of `pack_len` bytes (all of it when shorter), and checks that its
/// version is the one `sealing` reads: an unencrypted pack in an encrypted
/// repository is as wrong as the reverse.
///
/// # Errors
/// [`Error::Corrupt`] when the trailer is malformed or claims more than fits,
/// [`Error::UnsupportedVersion`] for an unknown version.
pub fn parse_tail(sealing: &Sealing, pack: &PackId, tail: &[u8], pack_len: u64) -> Result<Tail> {
    let object = || format!("pack {pack} trailer");
    let n = tail.len();
    if n < SEALED_TRAILER_LEN || pack_len < HEADER_LEN + SEALED_TRAILER_LEN as u64 || n as u64 > pack_len {
        return Err(Error::corrupt(object(), "pack too short"));
    }
    if &tail[n - 8..] != TAIL_MAGIC {
        return Err(Error::corrupt(object(), "bad magic"));
    }
    let u32_at = |i: usize| u32::from_le_bytes(tail[i..i + 4].try_into().expect("4 bytes"));
    let version = u32_at(n - 12);
    if version != PACK_VERSION && version != SEALED_PACK_VERSION {
        return Err(Error::UnsupportedVersion {
            object: format!("pack {pack}"),
            found: version,
            supported: sealing.pack_version(),
        });
    }
    if version != sealing.pack_version() {
        let what = if version == PACK_VERSION {
            "an unencrypted"
        } else {
            "an encrypted"
        };
        return Err(Error::corrupt(
            format!("pack {pack}"),
            format!("it is {what} pack (version {version}), which this repository does not hold"),
        ));
    }
    let (trailer_len, footer_len, hash) = if version == PACK_VERSION {
        if n < TRAILER_LEN {
            return Err(Error::corrupt(object(), "pack too short"));
        }
        let t = &tail[n - TRAILER_LEN..];
        let count = u32::from_le_bytes(t[0..4].try_into().expect("4 bytes")) as u64;
        (
            TRAILER_LEN,
            count * ENTRY_LEN as u64,
            Some(t[4..36].try_into().expect("32 bytes")),
        )
    } else {
        (SEALED_TRAILER_LEN, u64::from(u32_at(n - 16)), None)
    };
    if footer_len > pack_len - HEADER_LEN - trailer_len as u64 {
        return Err(Error::corrupt(
            object(),
            format!("a footer of {footer_len} bytes does not fit in {pack_len} bytes"),
        ));
    }
    Ok(Tail {
        version,
        footer_start: pack_len - trailer_len as u64 - footer_len,
        footer_len: footer_len as usize,
        hash,
    })
}

/// Decodes and checks a footer (the `tail.footer_len` bytes at
/// `tail.footer_start`): its hash, or its envelope, and that every blob lies
/// between the header and the footer without overlapping another.
///
/// # Errors
/// [`Error::Corrupt`] or [`Error::Unauthentic`] naming the pack.
pub fn parse_footer(sealing: &Sealing, pack: &PackId, tail: &Tail, footer: &[u8]) -> Result<Vec<PackEntry>> {
    let object = || format!("pack {pack} footer");
    let opened;
    let footer = match tail.hash {
        Some(hash) => {
            if blake3::hash(footer).as_bytes() != &hash {
                return Err(Error::corrupt(object(), "footer checksum mismatch"));
            }
            footer
        }
        None => {
            opened = sealing.open_footer(footer, &object)?;
            &opened[..]
        }
    };
    if !footer.len().is_multiple_of(ENTRY_LEN) {
        return Err(Error::corrupt(
            object(),
            "footer length is not a whole number of entries",
        ));
    }
    let blobs_end = tail.footer_start;
    let mut entries = Vec::with_capacity(footer.len() / ENTRY_LEN);
    let mut next_free = HEADER_LEN;
    for raw in footer.chunks_exact(ENTRY_LEN) {
        let e = decode_entry(raw).ok_or_else(|| Error::corrupt(object(), "unknown blob kind or compression"))?;
        let end = e.offset.checked_add(e.stored_len as u64);
        if e.offset < next_free || end.is_none_or(|end| end > blobs_end) {
            return Err(Error::corrupt(
                object(),
                format!("blob {} at offset {} lies outside its space", e.id, e.offset),
            ));
        }
        // A sealed blob's stored length counts its envelope; its content
        // length is checked once it is opened.
        if tail.version == PACK_VERSION && e.compression == Compression::None && e.stored_len != e.raw_len {
            return Err(Error::corrupt(object(), format!("raw blob {} has two lengths", e.id)));
        }
        next_free = end.unwrap_or(blobs_end);
        entries.push(e);
    }
    Ok(entries)
}

fn decode_entry(raw: &[u8]) -> Option<PackEntry> {
    let u32_at = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().expect("4 bytes"));
    Some(PackEntry {
        id: BlobId(raw[0..32].try_into().expect("32 bytes")),
        kind: BlobKind::from_code(raw[32])?,
        compression: Compression::from_code(raw[33])?,
        offset: u64::from_le_bytes(raw[36..44].try_into().expect("8 bytes")),
        stored_len: u32_at(44),
        raw_len: u32_at(48),
    })
}

/// Decodes the footer of a whole unencrypted pack held in memory; see
/// [`parse_pack_with`].
///
/// # Errors
/// [`Error::Corrupt`] naming the pack and what is wrong.
pub fn parse_pack(pack: &PackId, bytes: &[u8]) -> Result<Vec<PackEntry>> {
    parse_pack_with(&Sealing::Plain, pack, bytes)
}

/// Decodes the footer of a whole pack held in memory, checking its header too.
///
/// # Errors
/// [`Error::Corrupt`] or [`Error::Unauthentic`] naming the pack.
pub fn parse_pack_with(sealing: &Sealing, pack: &PackId, bytes: &[u8]) -> Result<Vec<PackEntry>> {
    let len = bytes.len() as u64;
    if bytes.len() < HEADER_LEN as usize + SEALED_TRAILER_LEN || &bytes[0..4] != MAGIC {
        return Err(Error::corrupt(format!("pack {pack}"), "bad header"));
    }
    let tail = parse_tail(sealing, pack, &bytes[bytes.len().saturating_sub(TRAILER_LEN)..], len)?;
    let header_version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if header_version != tail.version {
        return Err(Error::corrupt(
            format!("pack {pack}"),
            "its header and trailer differ in version",
        ));
    }
    let start = tail.footer_start as usize;
    parse_footer(sealing, pack, &tail, &bytes[start..start + tail.footer_len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pack_round_trips(blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)) {
            let mut b = PackBuilder::new();
            for blob in &blobs {
                b.add(BlobId::of(blob), BlobKind::Data, Compression::None, blob.len() as u32, blob);
            }
            let (id, bytes, entries) = b.finish();
            prop_assert_eq!(id, PackId::of(&bytes));
            let parsed = parse_pack(&id, &bytes).unwrap();
            prop_assert_eq!(&parsed, &entries);
            for (e, blob) in parsed.iter().zip(&blobs) {
                let start = e.offset as usize;
                prop_assert_eq!(&bytes[start..start + e.stored_len as usize], &blob[..]);
            }
        }

        #[test]
        fn parsing_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_pack(&PackId::default(), &bytes);
        }
    }

    #[test]
    fn a_truncated_pack_is_corrupt() {
        let mut b = PackBuilder::new();
        b.add(BlobId::of(b"x"), BlobKind::Data, Compression::None, 1, b"x");
        let (id, bytes, _) = b.finish();
        assert!(parse_pack(&id, &bytes[..bytes.len() - 1]).is_err());
        let mut flipped = bytes.clone();
        flipped[bytes.len() - TRAILER_LEN - 3] ^= 0x40;
        assert!(parse_pack(&id, &flipped).is_err());
    }
}

//! How a repository's objects are sealed: [`Sealing::Plain`] for version 1
//! and version-2 repositories made with `--encryption none` (objects stored
//! as they are, ids plain BLAKE3), [`Sealing::Sealed`] for encrypted ones
//! (every object in an envelope of [`crate::crypto`], ids keyed). Everything
//! that names, writes or reads an object asks this one value, so no code path
//! has a plaintext and an encrypted variant of its own.

use std::sync::Arc;

use crate::blob::{self, BlobKind, BlobLocation};
use crate::crypto::{Keys, Purpose};
use crate::{BlobId, Error, Result, SnapshotId};

/// Plain or sealed; see the module docs.
#[derive(Clone, Default)]
pub enum Sealing {
    /// Objects as they are.
    #[default]
    Plain,
    /// Objects in envelopes under these keys.
    Sealed(Arc<Keys>),
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sealing::Plain => f.write_str("Plain"),
            Sealing::Sealed(_) => f.write_str("Sealed(keys withheld)"),
        }
    }
}

fn blob_purpose(kind: BlobKind) -> Purpose {
    match kind {
        BlobKind::Data => Purpose::DataBlob,
        BlobKind::Tree => Purpose::TreeBlob,
    }
}

/// Bytes a sealed blob or footer starts with: its key generation.
const GENERATION_LEN: usize = 4;

impl Sealing {
    /// The keys, when sealed.
    pub fn keys(&self) -> Option<&Arc<Keys>> {
        match self {
            Sealing::Plain => None,
            Sealing::Sealed(keys) => Some(keys),
        }
    }

    /// Whether objects are sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Sealing::Sealed(_))
    }

    /// The id of a blob or tree with content `data`.
    pub fn blob_id(&self, data: &[u8]) -> BlobId {
        match self {
            Sealing::Plain => BlobId::of(data),
            Sealing::Sealed(keys) => keys.blob_id(data),
        }
    }

    /// The id of the snapshot whose plaintext object is `object`.
    pub fn snapshot_id(&self, object: &[u8]) -> SnapshotId {
        match self {
            Sealing::Plain => SnapshotId::of(object),
            Sealing::Sealed(keys) => keys.snapshot_id(object),
        }
    }

    /// The pack format version packs are written in: 1 plain, 2 sealed.
    pub fn pack_version(&self) -> u32 {
        match self {
            Sealing::Plain => 1,
            Sealing::Sealed(_) => 2,
        }
    }

    /// A blob's stored bytes as they go into a pack: as they are, or
    /// `generation u32 | envelope` bound to the blob's kind and id.
    ///
    /// # Errors
    /// [`Error::Random`] when no nonce can be had.
    pub fn seal_blob(&self, kind: BlobKind, id: &BlobId, stored: Vec<u8>) -> Result<Vec<u8>> {
        match self {
            Sealing::Plain => Ok(stored),
            Sealing::Sealed(keys) => self.with_generation(keys, keys.seal(blob_purpose(kind), &id.0, &stored)?),
        }
    }

    fn with_generation(&self, keys: &Keys, sealed: Vec<u8>) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(GENERATION_LEN + sealed.len());
        out.extend_from_slice(&keys.set().generation().to_le_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open_with_generation(
        keys: &Keys,
        purpose: Purpose,
        name: &[u8],
        bytes: &[u8],
        object: &dyn Fn() -> String,
    ) -> Result<Vec<u8>> {
        let Some((generation, sealed)) = bytes.split_first_chunk::<GENERATION_LEN>() else {
            return Err(Error::corrupt(object(), "too short to be sealed"));
        };
        keys.open(u32::from_le_bytes(*generation), purpose, name, sealed, object)
    }

    /// Decodes the stored bytes of blob `id` at `loc`: opens the envelope
    /// when sealed, decompresses, and checks the content against the id.
    ///
    /// # Errors
    /// [`Error::Unauthentic`], [`Error::Corrupt`] or [`Error::HashMismatch`]
    /// naming the blob, its pack and offset.
    pub fn decode_blob(&self, id: &BlobId, loc: &BlobLocation, stored: &[u8]) -> Result<Vec<u8>> {
        let object = || format!("blob {id} in pack {} at offset {}", loc.pack, loc.offset);
        if stored.len() != loc.stored_len as usize {
            return Err(Error::corrupt(object(), "stored length differs from the index"));
        }
        match self {
            Sealing::Plain => blob::decode_stored(id, loc, stored, BlobId::of),
            Sealing::Sealed(keys) => {
                let opened = Self::open_with_generation(keys, blob_purpose(loc.kind), &id.0, stored, &object)?;
                blob::decode_stored(id, loc, &opened, |raw| keys.blob_id(raw))
            }
        }
    }

    /// A pack footer's bytes as they go into a version-2 pack.
    ///
    /// # Errors
    /// [`Error::Random`].
    pub(crate) fn seal_footer(&self, keys: &Keys, footer: &[u8]) -> Result<Vec<u8>> {
        self.with_generation(keys, keys.seal(Purpose::PackFooter, b"", footer)?)
    }

    /// Opens a version-2 pack's sealed footer.
    ///
    /// # Errors
    /// [`Error::Unauthentic`] or [`Error::Corrupt`] naming `object`.
    pub(crate) fn open_footer(&self, sealed: &[u8], object: &dyn Fn() -> String) -> Result<Vec<u8>> {
        match self {
            Sealing::Plain => Err(Error::corrupt(
                object(),
                "it is an encrypted pack (version 2) in an unencrypted repository",
            )),
            Sealing::Sealed(keys) => Self::open_with_generation(keys, Purpose::PackFooter, b"", sealed, object),
        }
    }

    /// A whole object (snapshot, marker, condemned list) as it is stored.
    ///
    /// # Errors
    /// [`Error::Random`].
    pub fn seal_object(&self, purpose: Purpose, name: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        match self {
            Sealing::Plain => Ok(plaintext.to_vec()),
            Sealing::Sealed(keys) => keys.seal_object(purpose, name, plaintext),
        }
    }

    /// The plaintext of a whole object read from the store.
    ///
    /// # Errors
    /// [`Error::Unauthentic`] or [`Error::Corrupt`] naming `object`.
    pub fn open_object(
        &self,
        purpose: Purpose,
        name: &[u8],
        bytes: Vec<u8>,
        object: &dyn Fn() -> String,
    ) -> Result<Vec<u8>> {
        match self {
            Sealing::Plain => Ok(bytes),
            Sealing::Sealed(keys) => keys.open_object(purpose, name, &bytes, object),
        }
    }
}

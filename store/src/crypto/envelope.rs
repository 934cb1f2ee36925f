//! The sealed envelope: `nonce (24) || ciphertext || tag (16)` of
//! XChaCha20-Poly1305 over the padded plaintext, with associated data that
//! binds the envelope to its place: the format, the repository, the key
//! generation, the kind of object and its name or blob id. So an envelope
//! moved to another name, another kind, another repository or claimed under
//! another generation fails to open.
//!
//! A whole object (a snapshot, a deletion marker, a condemned list) carries
//! a small plaintext header in front: `"RVE2" | purpose u8 | generation u32`.
//! A blob inside a pack carries none: its pack's trailer gives the generation
//! and the footer its kind and id.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use super::{pad, random_bytes, Keys};
use crate::{Error, Result};

/// Bytes an envelope adds to its padded plaintext: the nonce and the tag.
pub const SEALED_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const OBJECT_MAGIC: &[u8; 4] = b"RVE2";
const OBJECT_HEADER_LEN: usize = 9;
/// The format version every associated data starts with.
const AD_FORMAT: u8 = 2;

/// What an envelope holds; its code is part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// A chunk of file content in a pack; name: the blob id.
    DataBlob = 1,
    /// A tree blob in a pack; name: the tree id.
    TreeBlob = 2,
    /// A pack's footer; name: empty (the pack id hashes the footer's ciphertext).
    PackFooter = 3,
    /// A snapshot object; name: the snapshot id.
    Snapshot = 4,
    /// A deletion marker; name: the snapshot id it marks.
    Marker = 5,
    /// A condemned-pack list; name: the object's name.
    Condemned = 6,
    /// A segment of an index copy; name: the object's name.
    IndexCopy = 7,
    /// A key file's wrapped key set; name: the key id.
    KeyPayload = 8,
    /// A key file's label (host, user, date); name: the key id.
    KeyLabel = 9,
}

impl Purpose {
    fn from_code(code: u8) -> Option<Purpose> {
        use Purpose::*;
        [
            DataBlob, TreeBlob, PackFooter, Snapshot, Marker, Condemned, IndexCopy, KeyPayload, KeyLabel,
        ]
        .into_iter()
        .find(|p| *p as u8 == code)
    }
}

/// The associated data of an envelope (FORMAT.md §Encryption).
pub(super) fn associated_data(repository: &[u8; 32], generation: u32, purpose: Purpose, name: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(9 + 1 + 32 + 4 + 1 + 4 + name.len() + 9);
    ad.extend_from_slice(b"robovault");
    ad.push(AD_FORMAT);
    ad.extend_from_slice(repository);
    ad.extend_from_slice(&generation.to_le_bytes());
    ad.push(purpose as u8);
    ad.extend_from_slice(&(name.len() as u32).to_le_bytes());
    ad.extend_from_slice(name);
    ad
}

/// Seals `plaintext` as it stands (the caller pads) under `nonce`.
pub(super) fn seal_raw(cipher: &XChaCha20Poly1305, nonce: [u8; NONCE_LEN], ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_inout_detached(&XNonce::from(nonce), ad, (&mut out[NONCE_LEN..]).into())
        // The one failure the crate knows is a message over 256 GiB.
        .expect("an envelope's plaintext is far below XChaCha20's limit");
    out.extend_from_slice(&tag);
    out
}

/// Opens an envelope of [`seal_raw`]; the result is still padded.
pub(super) fn open_raw(
    cipher: &XChaCha20Poly1305,
    ad: &[u8],
    sealed: &[u8],
    object: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    if sealed.len() < SEALED_OVERHEAD {
        return Err(Error::corrupt(object(), "too short to be a sealed envelope"));
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| Error::corrupt(object(), "bad nonce"))?;
    let tag = Tag::try_from(tag).map_err(|_| Error::corrupt(object(), "bad tag"))?;
    let mut plain = body.to_vec();
    cipher
        .decrypt_inout_detached(&nonce, ad, (&mut plain[..]).into(), &tag)
        .map_err(|_| Error::Unauthentic { object: object() })?;
    Ok(plain)
}

impl Keys {
    /// Seals `plaintext`, padded, for `purpose` and `name` with the newest
    /// key generation and a fresh random nonce.
    ///
    /// # Errors
    /// [`Error::Random`] when the OS gives no nonce.
    pub fn seal(&self, purpose: Purpose, name: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.seal_with_nonce(self.set.generation(), purpose, name, plaintext, random_bytes()?)
    }

    /// [`Keys::seal`] with a given generation and nonce: for test vectors
    /// and nothing else, since a nonce must never repeat under one key.
    pub(super) fn seal_with_nonce(
        &self,
        generation: u32,
        purpose: Purpose,
        name: &[u8],
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>> {
        let cipher = self.cipher(generation, &|| format!("a new {purpose:?} envelope"))?;
        let ad = associated_data(&self.repository, generation, purpose, name);
        Ok(seal_raw(cipher, nonce, &ad, &pad::pad(plaintext)))
    }

    /// Opens an envelope of [`Keys::seal`] sealed with `generation` and
    /// removes its padding.
    ///
    /// # Errors
    /// [`Error::Unauthentic`] naming `object` when it does not open (damaged,
    /// tampered with, moved, or sealed under another key);
    /// [`Error::Corrupt`] for an unknown generation or bad padding.
    pub fn open(
        &self,
        generation: u32,
        purpose: Purpose,
        name: &[u8],
        sealed: &[u8],
        object: &dyn Fn() -> String,
    ) -> Result<Vec<u8>> {
        let cipher = self.cipher(generation, object)?;
        let ad = associated_data(&self.repository, generation, purpose, name);
        pad::unpad(open_raw(cipher, &ad, sealed, object)?, object)
    }

    /// Seals a whole object: its header, then the envelope.
    ///
    /// # Errors
    /// As [`Keys::seal`].
    pub fn seal_object(&self, purpose: Purpose, name: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let sealed = self.seal(purpose, name, plaintext)?;
        Ok(object_bytes(purpose, self.set.generation(), &sealed))
    }

    /// Opens an object of [`Keys::seal_object`], checking its header names
    /// `purpose`.
    ///
    /// # Errors
    /// As [`Keys::open`], and [`Error::Corrupt`] for a bad header.
    pub fn open_object(
        &self,
        purpose: Purpose,
        name: &[u8],
        bytes: &[u8],
        object: &dyn Fn() -> String,
    ) -> Result<Vec<u8>> {
        let (found, generation, sealed) = object_header(bytes, object)?;
        if found != purpose {
            return Err(Error::corrupt(
                object(),
                format!("its header says it is a {found:?} object, not a {purpose:?}"),
            ));
        }
        self.open(generation, purpose, name, sealed, object)
    }
}

pub(super) fn object_bytes(purpose: Purpose, generation: u32, sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(OBJECT_HEADER_LEN + sealed.len());
    out.extend_from_slice(OBJECT_MAGIC);
    out.push(purpose as u8);
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(sealed);
    out
}

/// The header of a sealed object: its purpose, its generation and the
/// envelope after it.
///
/// # Errors
/// [`Error::Corrupt`] naming `object` for a missing magic or an unknown purpose.
pub fn object_header<'a>(bytes: &'a [u8], object: &dyn Fn() -> String) -> Result<(Purpose, u32, &'a [u8])> {
    if bytes.len() < OBJECT_HEADER_LEN || &bytes[..4] != OBJECT_MAGIC {
        return Err(Error::corrupt(
            object(),
            "it is not a sealed robovault object (no RVE2 header)",
        ));
    }
    let purpose = Purpose::from_code(bytes[4])
        .ok_or_else(|| Error::corrupt(object(), format!("unknown object kind {}", bytes[4])))?;
    let generation = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
    Ok((purpose, generation, &bytes[OBJECT_HEADER_LEN..]))
}

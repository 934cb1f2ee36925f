//! Encryption of a version-2 repository: the master key set, the envelopes
//! every object is sealed in, key files, and the segmented stream of index
//! copies.
//!
//! Every primitive comes from a library: XChaCha20-Poly1305
//! (`chacha20poly1305`) seals, Argon2id (`argon2`) stretches passwords, BLAKE3
//! in keyed and key-derivation mode names objects and separates keys. This
//! module only puts them together; FORMAT.md §Encryption specifies each byte,
//! and the test vectors in `vectors.rs` pin it.

mod envelope;
mod keyfile;
mod pad;
mod stream;
#[cfg(test)]
mod vectors;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub use envelope::{Purpose, SEALED_OVERHEAD};
pub use keyfile::{KdfParams, KeyFile, KeyLabel};
pub use pad::padme;
pub use stream::{StreamReader, StreamWriter, SEGMENT_LEN};

use crate::{BlobId, Error, Result, SnapshotId};

/// Key-derivation contexts (BLAKE3 `derive_key`). Fixed for the life of the
/// format: changing one changes every id and every key.
mod context {
    pub const BLOB_ID: &str = "robovault 2026-12 blob id";
    pub const SNAPSHOT_ID: &str = "robovault 2026-12 snapshot id";
    pub const CONFIG_MAC: &str = "robovault 2026-12 config mac";
    pub const KEY_LABEL: &str = "robovault 2026-12 key label";
    pub const OBJECT_AEAD: &str = "robovault 2026-12 object aead";
    pub const NAME: &str = "robovault 2026-12 object name";
}

/// A 32-byte secret that is wiped when dropped.
pub type Secret = Zeroizing<[u8; 32]>;

/// One generation of the data key (key rotation adds generations).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey {
    /// Its generation, from 1.
    pub generation: u32,
    /// The key.
    pub key: [u8; 32],
}

/// The repository's master keys, as a key file wraps them: the data keys
/// (one per generation; new objects use the newest), the id key (names
/// blobs, trees and snapshots) and the chunker key (decides chunk
/// boundaries). The id and chunker keys never change: deduplication needs
/// them.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeySet {
    data: Vec<DataKey>,
    id: [u8; 32],
    chunker: [u8; 32],
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet(generation {}, keys withheld)", self.generation())
    }
}

/// `N` bytes from the operating system's random source (nonces, salts, ids).
///
/// # Errors
/// [`Error::Random`] when the OS has no randomness to give.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| Error::Random(e.to_string()))?;
    Ok(out)
}

impl KeySet {
    /// A new key set of generation 1, from the OS's random source.
    ///
    /// # Errors
    /// [`Error::Random`].
    pub fn generate() -> Result<KeySet> {
        // Filled in place, so no copy of a key is left behind on the stack.
        let mut set = KeySet {
            data: vec![DataKey {
                generation: 1,
                key: [0; 32],
            }],
            id: [0; 32],
            chunker: [0; 32],
        };
        for key in [&mut set.data[0].key, &mut set.id, &mut set.chunker] {
            getrandom::fill(key).map_err(|e| Error::Random(e.to_string()))?;
        }
        Ok(set)
    }

    /// A key set from its parts (a key file's payload, test vectors).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when `data` is empty or its generations are not
    /// strictly increasing from 1.
    pub fn from_parts(data: Vec<DataKey>, id: [u8; 32], chunker: [u8; 32]) -> Result<KeySet> {
        let increasing = data.first().is_some_and(|d| d.generation >= 1)
            && data.windows(2).all(|w| w[0].generation < w[1].generation);
        if !increasing {
            return Err(Error::corrupt(
                "key set",
                "its data key generations are not 1, 2, … in order",
            ));
        }
        Ok(KeySet { data, id, chunker })
    }

    /// The newest generation: the one every new object is sealed with.
    pub fn generation(&self) -> u32 {
        self.data.last().map_or(0, |d| d.generation)
    }

    /// The data keys, oldest first.
    pub fn data_keys(&self) -> &[DataKey] {
        &self.data
    }

    /// The id key.
    pub fn id_key(&self) -> &[u8; 32] {
        &self.id
    }

    /// The chunker key.
    pub fn chunker_key(&self) -> &[u8; 32] {
        &self.chunker
    }
}

/// The keys of an unlocked repository, with everything derived from them:
/// what [`crate::Store`] seals, opens and names objects with.
pub struct Keys {
    repository: [u8; 32],
    set: KeySet,
    blob_id: Secret,
    snapshot_id: Secret,
    config_mac: Secret,
    label: Secret,
    name: Secret,
    ciphers: Vec<(u32, chacha20poly1305::XChaCha20Poly1305)>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys(repository {}, {:?})", hex::encode(self.repository), self.set)
    }
}

fn derive(context: &str, key: &[u8; 32]) -> Secret {
    Zeroizing::new(blake3::derive_key(context, key))
}

impl Keys {
    /// Derives the working keys of repository `repository` (its config id)
    /// from `set`.
    pub fn new(repository: [u8; 32], set: KeySet) -> Keys {
        use chacha20poly1305::KeyInit;
        let ciphers = set
            .data
            .iter()
            .map(|d| {
                let key = derive(context::OBJECT_AEAD, &d.key);
                let cipher = chacha20poly1305::XChaCha20Poly1305::new(&(*key).into());
                (d.generation, cipher)
            })
            .collect();
        Keys {
            repository,
            blob_id: derive(context::BLOB_ID, &set.id),
            snapshot_id: derive(context::SNAPSHOT_ID, &set.id),
            config_mac: derive(context::CONFIG_MAC, &set.id),
            label: derive(context::KEY_LABEL, &set.id),
            name: derive(context::NAME, &set.id),
            set,
            ciphers,
        }
    }

    /// The key set these keys come from.
    pub fn set(&self) -> &KeySet {
        &self.set
    }

    /// The repository id the envelopes are bound to.
    pub fn repository(&self) -> &[u8; 32] {
        &self.repository
    }

    /// The id of a blob or tree: BLAKE3 keyed with the blob-id key over its
    /// plaintext, so an id says nothing about content to anyone without the key.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.blob_id, plaintext).as_bytes())
    }

    /// A hasher for [`Keys::blob_id`] over content that arrives in pieces.
    pub fn blob_id_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.blob_id)
    }

    /// The id of a snapshot: keyed BLAKE3 over its plaintext object, so it
    /// stays the same when the object is sealed again (copied, rotated).
    pub fn snapshot_id(&self, plaintext: &[u8]) -> SnapshotId {
        SnapshotId(*blake3::keyed_hash(&self.snapshot_id, plaintext).as_bytes())
    }

    /// The MAC that authenticates a config once the repository is unlocked.
    pub fn config_mac(&self, config: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.config_mac, config).as_bytes()
    }

    /// A name for an object whose name must be unique but say nothing: 16
    /// bytes of keyed BLAKE3 over `seed`, in hex.
    pub fn object_name(&self, seed: &[u8]) -> String {
        hex::encode(&blake3::keyed_hash(&self.name, seed).as_bytes()[..16])
    }

    fn cipher(&self, generation: u32, object: &dyn Fn() -> String) -> Result<&chacha20poly1305::XChaCha20Poly1305> {
        self.ciphers
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, c)| c)
            .ok_or_else(|| {
                Error::corrupt(
                    object(),
                    format!(
                        "it is sealed with key generation {generation}, which the key set (generations 1–{}) does not hold",
                        self.set.generation()
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn keys() -> Keys {
        Keys::new([7; 32], KeySet::generate().unwrap())
    }

    #[test]
    fn an_envelope_opens_only_in_its_place() {
        let keys = keys();
        let sealed = keys.seal(Purpose::DataBlob, b"name", b"content").unwrap();
        let object = || "test".to_owned();
        assert_eq!(
            keys.open(1, Purpose::DataBlob, b"name", &sealed, &object).unwrap(),
            b"content"
        );
        // Another name, another kind, another generation, another repository.
        assert!(matches!(
            keys.open(1, Purpose::DataBlob, b"other", &sealed, &object),
            Err(Error::Unauthentic { .. })
        ));
        assert!(keys.open(1, Purpose::TreeBlob, b"name", &sealed, &object).is_err());
        assert!(keys.open(2, Purpose::DataBlob, b"name", &sealed, &object).is_err());
        let elsewhere = Keys::new([8; 32], keys.set().clone());
        assert!(elsewhere.open(1, Purpose::DataBlob, b"name", &sealed, &object).is_err());
        // Every flipped bit is noticed.
        for at in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(
                keys.open(1, Purpose::DataBlob, b"name", &bad, &object).is_err(),
                "bit flip at {at}"
            );
        }
    }

    #[test]
    fn two_seals_of_the_same_content_differ() {
        let keys = keys();
        let a = keys.seal(Purpose::Snapshot, b"n", b"same").unwrap();
        let b = keys.seal(Purpose::Snapshot, b"n", b"same").unwrap();
        assert_ne!(a, b, "each seal takes a fresh nonce");
    }

    #[test]
    fn an_object_header_naming_another_kind_is_refused() {
        let keys = keys();
        let object = keys.seal_object(Purpose::Marker, b"id", b"{}").unwrap();
        assert!(keys
            .open_object(Purpose::Snapshot, b"id", &object, &|| "x".into())
            .is_err());
        assert_eq!(
            keys.open_object(Purpose::Marker, b"id", &object, &|| "x".into())
                .unwrap(),
            b"{}"
        );
    }

    fn sealed_stream(keys: &Keys, data: &[u8], segment: usize) -> Vec<u8> {
        let mut w = StreamWriter::with_segment(keys, Purpose::IndexCopy, b"copy", Vec::new(), segment).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn read_stream(keys: &Keys, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut r =
            StreamReader::new(keys, Purpose::IndexCopy, b"copy", bytes, "copy").map_err(std::io::Error::other)?;
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_stream_round_trips_at_every_length_around_its_segments() {
        let keys = keys();
        for len in [0, 1, 1023, 1024, 1025, 2048, 3000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let bytes = sealed_stream(&keys, &data, 1024);
            assert_eq!(read_stream(&keys, &bytes).unwrap(), data, "length {len}");
        }
    }

    #[test]
    fn a_stream_cut_at_a_segment_or_reordered_is_refused() {
        let keys = keys();
        let data = vec![5u8; 3000];
        let bytes = sealed_stream(&keys, &data, 1024);
        let seg = 1024 + SEALED_OVERHEAD;
        // Truncated after the first or second whole segment.
        assert!(read_stream(&keys, &bytes[..12 + seg]).is_err());
        assert!(read_stream(&keys, &bytes[..12 + 2 * seg]).is_err());
        // The first two segments swapped.
        let mut swapped = bytes[..12].to_vec();
        swapped.extend_from_slice(&bytes[12 + seg..12 + 2 * seg]);
        swapped.extend_from_slice(&bytes[12..12 + seg]);
        swapped.extend_from_slice(&bytes[12 + 2 * seg..]);
        assert!(read_stream(&keys, &swapped).is_err());
        // Read under another object's name.
        let mut out = Vec::new();
        let mut r = StreamReader::new(&keys, Purpose::IndexCopy, b"other", &bytes[..], "copy").unwrap();
        assert!(r.read_to_end(&mut out).is_err());
    }

    #[test]
    fn key_material_is_not_printed() {
        let keys = keys();
        let shown = format!("{keys:?} {:?}", keys.set());
        assert!(!shown.contains(&hex::encode(keys.set().id_key())));
        assert!(shown.contains("withheld"));
    }
}

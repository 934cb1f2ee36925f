//! Key files (`keys/<key id>`): the repository's key set wrapped under a key
//! stretched from a password by Argon2id. A key file holds, besides the
//! wrapped key set, a key commitment (so a wrong password is told apart from
//! a damaged file before anything is decrypted, and no ciphertext opens under
//! two passwords) and a label (host, user, date) sealed under a key derived
//! from the repository's id key, so whoever has unlocked the repository with
//! any key can list every key's label, and the storage reads none.

use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::envelope::{associated_data, open_raw, seal_raw, Purpose};
use super::{pad, random_bytes, DataKey, KeySet, Keys};
use crate::{Error, Result};

const WRAP_CONTEXT: &str = "robovault 2026-12 key wrap";
const COMMITMENT_CONTEXT: &str = "robovault 2026-12 key commitment";
const KEY_FILE_VERSION: u32 = 1;
const PAYLOAD_VERSION: u8 = 1;

/// Argon2id's cost parameters for one key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// The defaults of `init` and `key add` (FORMAT.md): 256 MiB, 3 passes,
    /// 1 lane, about half a second per unlock on one core of a 2020s server.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 256 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Whether these are weaker than [`KdfParams::DEFAULT`] in memory or passes.
    pub fn below_default(&self) -> bool {
        self.memory_kib < Self::DEFAULT.memory_kib || self.iterations < Self::DEFAULT.iterations
    }

    /// Refuses parameters Argon2 rejects or that would make an unlock a
    /// denial of service (over 4 GiB, 64 passes or 64 lanes): a reader
    /// checks them before spending memory on them.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming `object`.
    pub fn check(&self, object: &dyn Fn() -> String) -> Result<argon2::Params> {
        if self.memory_kib > 4 * 1024 * 1024 || self.iterations > 64 || self.parallelism > 64 {
            return Err(Error::corrupt(
                object(),
                format!(
                    "its Argon2id parameters ({} KiB, {} passes, {} lanes) exceed 4 GiB, 64 passes or 64 lanes",
                    self.memory_kib, self.iterations, self.parallelism
                ),
            ));
        }
        argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| Error::corrupt(object(), format!("its Argon2id parameters are invalid: {e}")))
    }
}

/// Who made a key, and when: shown by `key list`, sealed in the key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLabel {
    /// Host name.
    pub host: String,
    /// User name.
    pub user: String,
    /// RFC 3339 time of creation.
    pub created: String,
}

/// The JSON of a key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Encoded {
    format: String,
    version: u32,
    repository: String,
    id: String,
    kdf: EncodedKdf,
    commitment: String,
    payload: String,
    label: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncodedKdf {
    algorithm: String,
    version: u32,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

/// One key file, decoded but still locked.
#[derive(Debug, Clone)]
pub struct KeyFile {
    id: [u8; 32],
    repository: [u8; 32],
    kdf: KdfParams,
    salt: [u8; 32],
    pub(super) commitment: [u8; 32],
    pub(super) payload: Vec<u8>,
    pub(super) label: Vec<u8>,
}

/// What a password stretches to: the wrapping key and the commitment.
struct Stretched {
    wrap: Zeroizing<[u8; 32]>,
    commitment: [u8; 32],
}

fn stretch(password: &[u8], salt: &[u8; 32], kdf: &KdfParams, object: &dyn Fn() -> String) -> Result<Stretched> {
    let params = kdf.check(object)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut master = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, salt, &mut master[..])
        .map_err(|e| Error::corrupt(object(), format!("Argon2id refused its parameters: {e}")))?;
    Ok(Stretched {
        wrap: Zeroizing::new(blake3::derive_key(WRAP_CONTEXT, &master[..])),
        commitment: blake3::derive_key(COMMITMENT_CONTEXT, &master[..]),
    })
}

fn encode_payload(set: &KeySet) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(1 + 4 + set.data.len() * 36 + 64 + 16));
    out.push(PAYLOAD_VERSION);
    out.extend_from_slice(&(set.data.len() as u32).to_le_bytes());
    for d in &set.data {
        out.extend_from_slice(&d.generation.to_le_bytes());
        out.extend_from_slice(&d.key);
    }
    out.extend_from_slice(&set.id);
    out.extend_from_slice(&set.chunker);
    out
}

fn decode_payload(bytes: &[u8], object: &dyn Fn() -> String) -> Result<KeySet> {
    let bad = |why: &str| Error::corrupt(object(), format!("its key set does not decode: {why}"));
    let (&version, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
    if version != PAYLOAD_VERSION {
        return Err(bad(&format!("payload version {version}")));
    }
    let count = rest.get(..4).ok_or_else(|| bad("truncated"))?;
    let count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]) as usize;
    if rest.len() != 4 + count * 36 + 64 {
        return Err(bad("wrong length"));
    }
    let mut data = Vec::with_capacity(count);
    for chunk in rest[4..4 + count * 36].chunks_exact(36) {
        let mut key = DataKey {
            generation: u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
            key: [0; 32],
        };
        key.key.copy_from_slice(&chunk[4..]);
        data.push(key);
    }
    let tail = &rest[4 + count * 36..];
    let mut id = Zeroizing::new([0u8; 32]);
    let mut chunker = Zeroizing::new([0u8; 32]);
    id.copy_from_slice(&tail[..32]);
    chunker.copy_from_slice(&tail[32..]);
    KeySet::from_parts(data, *id, *chunker)
}

fn label_cipher(keys: &Keys) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&(*keys.label).into())
}

fn hex32(text: &str, what: &str, object: &dyn Fn() -> String) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| Error::corrupt(object(), format!("its {what} is not 64 hex digits")))?;
    Ok(out)
}

impl KeyFile {
    /// A new key file wrapping `keys`' key set under `password`, with a new
    /// random key id and salt.
    ///
    /// # Errors
    /// [`Error::Random`], or [`Error::Corrupt`] for parameters Argon2 refuses.
    pub fn create(keys: &Keys, password: &[u8], kdf: KdfParams, label: &KeyLabel) -> Result<KeyFile> {
        Self::create_with(
            keys,
            password,
            kdf,
            label,
            random_bytes()?,
            random_bytes()?,
            [random_bytes()?; 2],
        )
    }

    /// [`KeyFile::create`] with given randomness, for test vectors.
    pub(super) fn create_with(
        keys: &Keys,
        password: &[u8],
        kdf: KdfParams,
        label: &KeyLabel,
        id: [u8; 32],
        salt: [u8; 32],
        nonces: [[u8; 24]; 2],
    ) -> Result<KeyFile> {
        let object = || "a new key file".to_owned();
        let stretched = stretch(password, &salt, &kdf, &object)?;
        let wrap = XChaCha20Poly1305::new(&(*stretched.wrap).into());
        let repository = *keys.repository();
        let payload_ad = associated_data(&repository, 0, Purpose::KeyPayload, &id);
        let mut plain = encode_payload(keys.set());
        pad::pad_in_place(&mut plain);
        let payload = seal_raw(&wrap, nonces[0], &payload_ad, &plain);
        let label_json = serde_json::to_vec(label).expect("a label serializes");
        let label_ad = associated_data(&repository, 0, Purpose::KeyLabel, &id);
        let label = seal_raw(&label_cipher(keys), nonces[1], &label_ad, &pad::pad(&label_json));
        Ok(KeyFile {
            id,
            repository,
            kdf,
            salt,
            commitment: stretched.commitment,
            payload,
            label,
        })
    }

    /// The key id, in hex: the file's name under `keys/`.
    pub fn id(&self) -> String {
        hex::encode(self.id)
    }

    /// The repository this key belongs to.
    pub fn repository(&self) -> &[u8; 32] {
        &self.repository
    }

    /// Its Argon2id parameters.
    pub fn kdf(&self) -> KdfParams {
        self.kdf
    }

    /// The file's bytes: one JSON object and a newline.
    pub fn encode(&self) -> Vec<u8> {
        let encoded = Encoded {
            format: "robovault-key".into(),
            version: KEY_FILE_VERSION,
            repository: hex::encode(self.repository),
            id: self.id(),
            kdf: EncodedKdf {
                algorithm: "argon2id".into(),
                version: 19,
                params: self.kdf,
                salt: hex::encode(self.salt),
            },
            commitment: hex::encode(self.commitment),
            payload: hex::encode(&self.payload),
            label: hex::encode(&self.label),
        };
        let mut out = serde_json::to_vec_pretty(&encoded).expect("a key file serializes");
        out.push(b'\n');
        out
    }

    /// Decodes and checks key file `name` (its key id in hex).
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the key file for anything but the exact
    /// format, or an id that differs from the name;
    /// [`Error::UnsupportedVersion`] for another version.
    pub fn decode(name: &str, bytes: &[u8]) -> Result<KeyFile> {
        let object = || format!("key file keys/{name}");
        let encoded: Encoded =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt(object(), format!("it does not decode: {e}")))?;
        if encoded.format != "robovault-key" {
            return Err(Error::corrupt(
                object(),
                format!("its format is {:?}, not \"robovault-key\"", encoded.format),
            ));
        }
        if encoded.version != KEY_FILE_VERSION {
            return Err(Error::UnsupportedVersion {
                object: object(),
                found: encoded.version,
                supported: KEY_FILE_VERSION,
            });
        }
        if encoded.kdf.algorithm != "argon2id" || encoded.kdf.version != 19 {
            return Err(Error::corrupt(
                object(),
                format!(
                    "its KDF is {} version {}, not argon2id version 19",
                    encoded.kdf.algorithm, encoded.kdf.version
                ),
            ));
        }
        encoded.kdf.params.check(&object)?;
        let id = hex32(&encoded.id, "id", &object)?;
        if encoded.id != name {
            return Err(Error::corrupt(
                object(),
                format!("it holds the key id {}, not its name", encoded.id),
            ));
        }
        let bytes_of = |text: &str, what: &str| {
            hex::decode(text).map_err(|_| Error::corrupt(object(), format!("its {what} is not hex")))
        };
        Ok(KeyFile {
            id,
            repository: hex32(&encoded.repository, "repository", &object)?,
            kdf: encoded.kdf.params,
            salt: hex32(&encoded.kdf.salt, "salt", &object)?,
            commitment: hex32(&encoded.commitment, "commitment", &object)?,
            payload: bytes_of(&encoded.payload, "payload")?,
            label: bytes_of(&encoded.label, "label")?,
        })
    }

    /// Unwraps the key set with `password`: `None` when the password is not
    /// this key's (its commitment differs; nothing was decrypted).
    ///
    /// # Errors
    /// [`Error::Unauthentic`] when the commitment matches but the payload does
    /// not open (the file was altered); [`Error::Corrupt`] for a bad payload.
    pub fn unlock(&self, password: &[u8]) -> Result<Option<KeySet>> {
        let object = || format!("key file keys/{}", self.id());
        let stretched = stretch(password, &self.salt, &self.kdf, &object)?;
        // blake3::Hash compares in constant time.
        if blake3::Hash::from(stretched.commitment) != blake3::Hash::from(self.commitment) {
            return Ok(None);
        }
        let wrap = XChaCha20Poly1305::new(&(*stretched.wrap).into());
        let ad = associated_data(&self.repository, 0, Purpose::KeyPayload, &self.id);
        let plain = Zeroizing::new(pad::unpad(open_raw(&wrap, &ad, &self.payload, &object)?, &object)?);
        decode_payload(&plain, &object).map(Some)
    }

    /// The key's label, opened with the unlocked repository's keys.
    ///
    /// # Errors
    /// [`Error::Unauthentic`] or [`Error::Corrupt`] naming the key file.
    pub fn label(&self, keys: &Keys) -> Result<KeyLabel> {
        let object = || format!("key file keys/{} label", self.id());
        let ad = associated_data(&self.repository, 0, Purpose::KeyLabel, &self.id);
        let plain = pad::unpad(open_raw(&label_cipher(keys), &ad, &self.label, &object)?, &object)?;
        serde_json::from_slice(&plain).map_err(|e| Error::corrupt(object(), format!("it does not decode: {e}")))
    }
}

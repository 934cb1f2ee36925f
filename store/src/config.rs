//! The repository config file: format version, repository id and the parameters
//! that decide blob ids and pack shapes. Written once by `init`, read and checked
//! by every command.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The repository format version of unencrypted version-1 repositories.
pub const FORMAT_VERSION: u32 = 1;
/// The repository format version with encryption (or `none`), the index as
/// a cache everywhere and no host in object names.
pub const FORMAT_VERSION_2: u32 = 2;

/// The content of `config` (JSON, FORMAT.md "Config").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Always `"robovault"`.
    pub format: String,
    /// The repository format version.
    pub version: u32,
    /// 32 random bytes in hex, chosen at `init`.
    pub id: String,
    /// Content-defined chunking parameters.
    pub chunker: ChunkerParams,
    /// Compression of new blobs.
    pub compression: CompressionParams,
    /// A pack is closed once it holds at least this many bytes.
    pub pack_target_size: u64,
    /// Version 2: how objects are sealed. Absent in version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Version 2, encrypted: keyed BLAKE3 of [`Config::authenticated_text`]
    /// with the config-MAC key, in hex; checked once the repository is unlocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// How a version-2 repository seals its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encryption {
    /// XChaCha20-Poly1305 envelopes, keyed ids, the keyed chunker (FORMAT.md §Encryption).
    #[serde(rename = "xchacha20poly1305")]
    XChaCha20Poly1305,
    /// No encryption, chosen on purpose (`--encryption none`).
    #[serde(rename = "none")]
    None,
}

/// FastCDC parameters; fixed for the life of a repository, since changing them
/// would change every chunk boundary and defeat deduplication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerParams {
    /// Always `"fastcdc-2020"`.
    pub algorithm: ChunkerAlgorithm,
    /// Smallest chunk, except the last one of a file.
    pub min_size: u32,
    /// Average chunk size the cut-point masks aim for.
    pub avg_size: u32,
    /// Largest chunk.
    pub max_size: u32,
    /// FastCDC normalization level (0–3).
    pub normalization: u8,
}

/// The chunking algorithms a repository can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkerAlgorithm {
    /// FastCDC as published in 2020, gear table seed 0 (crate `fastcdc`, module `v2020`).
    #[serde(rename = "fastcdc-2020")]
    FastCdc2020,
    /// FastCDC-2020's gear digest over a keyed table, cut where AES-128 of
    /// the digest under the chunker key says (encrypted repositories;
    /// FORMAT.md §Chunking).
    #[serde(rename = "keyed-gear-aes128")]
    KeyedGearAes,
}

/// Compression settings for new blobs; old blobs keep theirs (each blob records it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionParams {
    /// Always `"zstd"`.
    pub algorithm: CompressionAlgorithm,
    /// zstd level, 1–19.
    pub level: i32,
}

/// The compression algorithms a repository can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompressionAlgorithm {
    /// Zstandard frames.
    #[serde(rename = "zstd")]
    Zstd,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdc2020,
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
            normalization: 1,
        }
    }
}

impl Config {
    /// A new config with a fresh random id and the default parameters.
    pub fn new() -> Self {
        let id: [u8; 32] = rand::random();
        Config {
            format: "robovault".into(),
            version: FORMAT_VERSION,
            id: hex::encode(id),
            chunker: ChunkerParams::default(),
            compression: CompressionParams {
                algorithm: CompressionAlgorithm::Zstd,
                level: 3,
            },
            pack_target_size: 16 * 1024 * 1024,
            encryption: None,
            mac: None,
        }
    }

    /// A new version-2 config: encrypted, or not on purpose. The MAC of an
    /// encrypted one is set by [`Config::seal`] once its keys exist.
    pub fn new_v2(encryption: Encryption) -> Self {
        let mut config = Config::new();
        config.version = FORMAT_VERSION_2;
        config.encryption = Some(encryption);
        if encryption == Encryption::XChaCha20Poly1305 {
            config.chunker.algorithm = ChunkerAlgorithm::KeyedGearAes;
        }
        config
    }

    /// The repository id as bytes (what envelopes are bound to).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when it is not 64 hex digits.
    pub fn id_bytes(&self) -> Result<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.id, &mut out)
            .map_err(|_| Error::corrupt("config", "repository id is not 64 hex digits"))?;
        Ok(out)
    }

    /// Whether this repository's objects are sealed.
    pub fn encrypted(&self) -> bool {
        self.encryption == Some(Encryption::XChaCha20Poly1305)
    }

    /// What the MAC covers: every field that decides how objects are read
    /// and written, one per line, in a fixed order (FORMAT.md §Config), so a
    /// second implementation need not reproduce our JSON byte for byte.
    pub fn authenticated_text(&self) -> String {
        let c = &self.chunker;
        let chunker = serde_json::to_value(c.algorithm).ok();
        let chunker = chunker.as_ref().and_then(|v| v.as_str()).unwrap_or("");
        let encryption = serde_json::to_value(self.encryption).ok();
        let encryption = encryption.as_ref().and_then(|v| v.as_str()).unwrap_or("");
        format!(
            "robovault config\nversion={}\nid={}\nencryption={encryption}\nchunker={chunker},{},{},{},{}\ncompression=zstd,{}\npack_target_size={}\n",
            self.version, self.id, c.min_size, c.avg_size, c.max_size, c.normalization, self.compression.level, self.pack_target_size
        )
    }

    /// Sets the MAC of an encrypted config from `mac_of`
    /// ([`crate::crypto::Keys::config_mac`]).
    pub fn seal(&mut self, mac_of: impl Fn(&[u8]) -> [u8; 32]) {
        self.mac = Some(hex::encode(mac_of(self.authenticated_text().as_bytes())));
    }

    /// Checks the MAC of an encrypted config once its keys are unlocked.
    ///
    /// # Errors
    /// [`Error::Unauthentic`] when it differs: the config was altered.
    pub fn check_mac(&self, mac_of: impl Fn(&[u8]) -> [u8; 32]) -> Result<()> {
        let want = blake3::Hash::from(mac_of(self.authenticated_text().as_bytes()));
        let found = self.mac.as_deref().and_then(|m| blake3::Hash::from_hex(m).ok());
        // blake3::Hash compares in constant time.
        if found != Some(want) {
            return Err(Error::Unauthentic {
                object: "config".into(),
            });
        }
        Ok(())
    }

    /// Encodes the config as pretty JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a config always serializes");
        out.push(b'\n');
        out
    }

    /// Decodes and checks a config read from the repository.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for bytes that are not a valid config,
    /// [`Error::UnsupportedVersion`] for a newer format.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        // Peek at the version first, so a newer format is reported as such
        // rather than as an unknown field.
        #[derive(Deserialize)]
        struct Probe {
            format: String,
            version: u32,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| Error::corrupt("config", e.to_string()))?;
        if probe.format != "robovault" {
            return Err(Error::corrupt("config", "not a robovault repository config"));
        }
        if probe.version != FORMAT_VERSION && probe.version != FORMAT_VERSION_2 {
            return Err(Error::UnsupportedVersion {
                object: "config".into(),
                found: probe.version,
                supported: FORMAT_VERSION_2,
            });
        }
        let config: Config = serde_json::from_slice(bytes).map_err(|e| Error::corrupt("config", e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        let c = &self.chunker;
        // The bounds are those the fastcdc crate accepts.
        let sizes_ok = (64..=1 << 20).contains(&c.min_size)
            && (256..=4 << 20).contains(&c.avg_size)
            && (1024..=16 << 20).contains(&c.max_size)
            && c.min_size <= c.avg_size
            && c.avg_size <= c.max_size
            && c.normalization <= 3;
        if !sizes_ok {
            return Err(Error::corrupt("config", "chunker parameters out of range"));
        }
        if !(1..=19).contains(&self.compression.level) {
            return Err(Error::corrupt("config", "compression level out of range"));
        }
        if hex::decode(&self.id).map(|b| b.len()) != Ok(32) {
            return Err(Error::corrupt("config", "repository id is not 64 hex digits"));
        }
        if !(1 << 20..=1 << 30).contains(&self.pack_target_size) {
            return Err(Error::corrupt("config", "pack target size out of range"));
        }
        // Which fields a version has, and that they agree: an encrypted
        // config with the public chunker, or a plaintext one with a MAC, is
        // not one robovault writes.
        let keyed = c.algorithm == ChunkerAlgorithm::KeyedGearAes;
        let consistent = match (self.version, self.encryption) {
            (FORMAT_VERSION, None) => self.mac.is_none() && !keyed,
            (FORMAT_VERSION_2, Some(Encryption::None)) => self.mac.is_none() && !keyed,
            (FORMAT_VERSION_2, Some(Encryption::XChaCha20Poly1305)) => self.mac.is_some() && keyed,
            _ => false,
        };
        if !consistent {
            return Err(Error::corrupt(
                "config",
                format!(
                    "its encryption, chunker and MAC do not fit format version {}",
                    self.version
                ),
            ));
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips() {
        let c = Config::new();
        assert_eq!(Config::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn newer_version_is_reported_as_such() {
        let mut c = Config::new();
        c.version = 3;
        let err = Config::decode(&c.encode()).unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion { found: 3, .. }), "{err}");
    }

    #[test]
    fn version_2_configs_round_trip_and_their_mac_is_checked() {
        let plain = Config::new_v2(Encryption::None);
        assert_eq!(Config::decode(&plain.encode()).unwrap(), plain);
        let mac = |bytes: &[u8]| *blake3::keyed_hash(&[9; 32], bytes).as_bytes();
        let mut sealed = Config::new_v2(Encryption::XChaCha20Poly1305);
        assert!(
            Config::decode(&sealed.encode()).is_err(),
            "an encrypted config needs its MAC"
        );
        sealed.seal(mac);
        let back = Config::decode(&sealed.encode()).unwrap();
        back.check_mac(mac).unwrap();
        let mut altered = back.clone();
        altered.compression.level = 19;
        assert!(matches!(altered.check_mac(mac), Err(Error::Unauthentic { .. })));
        assert!(back
            .check_mac(|b: &[u8]| *blake3::keyed_hash(&[8; 32], b).as_bytes())
            .is_err());
    }

    #[test]
    fn a_config_rewritten_to_none_with_its_mac_is_refused() {
        let mut sealed = Config::new_v2(Encryption::XChaCha20Poly1305);
        sealed.seal(|b: &[u8]| *blake3::hash(b).as_bytes());
        let mut downgraded = sealed.clone();
        downgraded.encryption = Some(Encryption::None);
        assert!(Config::decode(&downgraded.encode()).is_err());
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(Config::decode(b"{\"x\":1}"), Err(Error::Corrupt { .. })));
        assert!(matches!(Config::decode(b"\xff"), Err(Error::Corrupt { .. })));
    }
}

//! The repository config file: format version, repository id and the parameters
//! that decide blob ids and pack shapes. Written once by `init`, read and checked
//! by every command.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The repository format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

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
        }
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
        if probe.version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                object: "config".into(),
                found: probe.version,
                supported: FORMAT_VERSION,
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
        c.version = 2;
        let err = Config::decode(&c.encode()).unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion { found: 2, .. }), "{err}");
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(Config::decode(b"{\"x\":1}"), Err(Error::Corrupt { .. })));
        assert!(matches!(Config::decode(b"\xff"), Err(Error::Corrupt { .. })));
    }
}

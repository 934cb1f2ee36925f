//! Snapshot objects: the small immutable record of one committed run, published
//! to the store right after the index commit, so that the store alone can
//! rebuild the index. Encoded as JSON; the snapshot's id is the BLAKE3 of the
//! exact bytes stored.

use serde::{Deserialize, Serialize};

use crate::{Error, Result, SnapshotId};

/// The snapshot object version this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// One summary row: Dirs, Files or Bytes (ROBOCOPY.md §4.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsRow {
    /// Total.
    pub total: u64,
    /// Copied.
    pub copied: u64,
    /// Skipped.
    pub skipped: u64,
    /// Mismatch.
    pub mismatch: u64,
    /// FAILED.
    pub failed: u64,
    /// Extras.
    pub extras: u64,
}

/// One failure of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunErrorRecord {
    /// The path, relative to the source root, non-UTF-8 bytes as `\xNN`.
    pub path: String,
    /// The robocopy action (`Copying File`, …).
    pub action: String,
    /// The OS error number, 0 when there is none.
    pub code: i32,
    /// The message.
    pub message: String,
    /// How many attempts were made.
    pub attempts: u32,
}

/// The source root directory's own metadata (its entries are in the root tree).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootDir {
    /// Permission bits.
    pub mode: u32,
    /// Owner id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Modification time, seconds.
    pub mtime_sec: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
}

/// The content of `snapshots/<id>` (FORMAT.md "Snapshot objects").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotObject {
    /// The snapshot object version.
    pub version: u32,
    /// The id of the repository it belongs to (config `id`).
    pub repository: String,
    /// The series name.
    pub series: String,
    /// The host that made it.
    pub host: String,
    /// The absolute source root, non-UTF-8 bytes as `\xNN`.
    pub source: String,
    /// Sequence number within the series, from 1.
    pub seq: u64,
    /// Run start, RFC 3339 with nanoseconds, UTC.
    pub started: String,
    /// Run end, RFC 3339 with nanoseconds, UTC.
    pub ended: String,
    /// The baseline snapshot's id, if any.
    pub parent: Option<String>,
    /// The root tree's id.
    pub root: String,
    /// The source root directory's own metadata.
    pub root_dir: RootDir,
    /// The exit code of the run (ROBOCOPY.md §4.7).
    pub exit_code: u32,
    /// True when some entry failed and carries its baseline version.
    pub partial: bool,
    /// Directory counts.
    pub dirs: CountsRow,
    /// File counts.
    pub files: CountsRow,
    /// Byte counts.
    pub bytes: CountsRow,
    /// Content bytes newly stored by the run, before compression.
    pub new_data: u64,
    /// Each failure.
    pub errors: Vec<RunErrorRecord>,
}

impl SnapshotObject {
    /// Encodes the object; its id is [`SnapshotId::of`] these bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("a snapshot object always serializes");
        out.push(b'\n');
        out
    }

    /// Decodes the bytes stored under `id` in an unencrypted repository,
    /// checking that they hash to it.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the snapshot, or [`Error::UnsupportedVersion`].
    pub fn decode(id: &SnapshotId, bytes: &[u8]) -> Result<Self> {
        Self::decode_with(&crate::Sealing::Plain, id, bytes)
    }

    /// Decodes the plaintext object of snapshot `id`, checking that its id
    /// (as `sealing` computes ids) is `id`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the snapshot, or [`Error::UnsupportedVersion`].
    pub fn decode_with(sealing: &crate::Sealing, id: &SnapshotId, bytes: &[u8]) -> Result<Self> {
        let object = || format!("snapshot object {id}");
        if sealing.snapshot_id(bytes) != *id {
            return Err(Error::corrupt(object(), "content does not match its id"));
        }
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| Error::corrupt(object(), e.to_string()))?;
        if probe.version != SNAPSHOT_VERSION {
            return Err(Error::UnsupportedVersion {
                object: object(),
                found: probe.version,
                supported: SNAPSHOT_VERSION,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| Error::corrupt(object(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row() -> impl Strategy<Value = CountsRow> {
        any::<[u64; 6]>().prop_map(|[total, copied, skipped, mismatch, failed, extras]| CountsRow {
            total,
            copied,
            skipped,
            mismatch,
            failed,
            extras,
        })
    }

    proptest! {
        #[test]
        fn snapshot_object_round_trips(
            series in ".{1,20}", seq in any::<u64>(), exit_code in 0u32..32,
            rows in (row(), row(), row()), new_data in any::<u64>(),
            errors in proptest::collection::vec((".{0,10}", any::<i32>(), ".{0,10}", any::<u32>()), 0..3),
            parent in proptest::option::of("[0-9a-f]{64}"),
        ) {
            let obj = SnapshotObject {
                version: SNAPSHOT_VERSION,
                repository: "ab".repeat(32),
                series,
                host: "h".into(),
                source: "/src".into(),
                seq,
                started: "2025-01-01T00:00:00.000000001Z".into(),
                ended: "2025-01-01T00:00:01Z".into(),
                parent,
                root: "cd".repeat(32),
                root_dir: RootDir { mode: 0o755, uid: 1, gid: 2, mtime_sec: -5, mtime_nsec: 7 },
                exit_code,
                partial: rows.1.failed > 0,
                dirs: rows.0,
                files: rows.1,
                bytes: rows.2,
                new_data,
                errors: errors.into_iter().map(|(path, code, message, attempts)| RunErrorRecord {
                    path, action: "Copying File".into(), code, message, attempts,
                }).collect(),
            };
            let bytes = obj.encode();
            let id = SnapshotId::of(&bytes);
            prop_assert_eq!(SnapshotObject::decode(&id, &bytes).unwrap(), obj);
            prop_assert!(SnapshotObject::decode(&SnapshotId::default(), &bytes).is_err());
        }
    }
}

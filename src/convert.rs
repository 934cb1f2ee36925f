//! Conversions between the store's, the index's and the engine's types.
//!
//! The store and the index share no types (STYLE.md §1): the index keeps a
//! blob or pack id as its own `Hash32`, run counts as arrays, and the engine
//! has its own summary rows. Every translation between those shapes lives
//! here, once, so that a field added to one shape has one place to be mapped
//! and a swapped field has one place to hide, which the tests below watch.
//! Where both types are foreign the orphan rule forbids `From`, and a small
//! named function stands in.

use robovault_index::{BlobRecord, Counts as IndexCounts, Hash32, RunErrorRow};
use robovault_store::{
    BlobId, BlobKind, BlobLocation, Compression, CountsRow, PackEntry, PackId, RunErrorRecord, SnapshotObject,
};

use crate::summary::{Counts, Row, RunError};
use crate::{display_bytes, Error, Result};

impl From<Row> for CountsRow {
    fn from(r: Row) -> Self {
        CountsRow {
            total: r.total,
            copied: r.copied,
            skipped: r.skipped,
            mismatch: r.mismatch,
            failed: r.failed,
            extras: r.extras,
        }
    }
}

impl From<CountsRow> for Row {
    fn from(r: CountsRow) -> Self {
        Row {
            total: r.total,
            copied: r.copied,
            skipped: r.skipped,
            mismatch: r.mismatch,
            failed: r.failed,
            extras: r.extras,
        }
    }
}

// The index keeps each row in the table order of `Row::columns`.
impl From<Counts> for IndexCounts {
    fn from(c: Counts) -> Self {
        IndexCounts {
            dirs: c.dirs.columns(),
            files: c.files.columns(),
            bytes: c.bytes.columns(),
        }
    }
}

impl From<IndexCounts> for Counts {
    fn from(c: IndexCounts) -> Self {
        Counts {
            dirs: Row::from_columns(c.dirs),
            files: Row::from_columns(c.files),
            bytes: Row::from_columns(c.bytes),
        }
    }
}

impl From<&SnapshotObject> for Counts {
    fn from(obj: &SnapshotObject) -> Self {
        Counts {
            dirs: obj.dirs.into(),
            files: obj.files.into(),
            bytes: obj.bytes.into(),
        }
    }
}

/// A snapshot object's counts as the index keeps them.
pub fn object_counts(obj: &SnapshotObject) -> IndexCounts {
    Counts::from(obj).into()
}

// A snapshot object is JSON, so it keeps the path as text (ROBOCOPY.md §6.5).
impl From<&RunError> for RunErrorRecord {
    fn from(e: &RunError) -> Self {
        RunErrorRecord {
            path: display_bytes(&e.path),
            action: e.action.clone(),
            code: e.code,
            message: e.message.clone(),
            attempts: e.attempts,
        }
    }
}

impl From<&RunError> for RunErrorRow {
    fn from(e: &RunError) -> Self {
        RunErrorRow {
            path: e.path.clone(),
            action: e.action.clone(),
            code: e.code,
            message: e.message.clone(),
            attempts: e.attempts,
        }
    }
}

impl From<RunErrorRow> for RunError {
    fn from(e: RunErrorRow) -> Self {
        RunError {
            path: e.path,
            action: e.action,
            code: e.code,
            message: e.message,
            attempts: e.attempts,
        }
    }
}

/// A snapshot object's failure as the index keeps it. The object holds only
/// the escaped text of the path, and unescaping could not tell an escape
/// from a name that contains one, so the index gets that text as it is.
pub fn record_row(e: &RunErrorRecord) -> RunErrorRow {
    RunErrorRow {
        path: e.path.as_bytes().to_vec(),
        action: e.action.clone(),
        code: e.code,
        message: e.message.clone(),
        attempts: e.attempts,
    }
}

/// A store blob (or tree) id as the index keeps it.
pub fn to_hash(id: &BlobId) -> Hash32 {
    Hash32(id.0)
}

/// An index digest as a store blob (or tree) id.
pub fn to_blob(h: &Hash32) -> BlobId {
    BlobId(h.0)
}

/// A pack id as the index keeps it.
pub fn pack_hash(id: &PackId) -> Hash32 {
    Hash32(id.0)
}

/// An index digest as a store pack id.
pub fn to_pack(h: &Hash32) -> PackId {
    PackId(h.0)
}

/// Where the index says blob `id` lives, as the store reads it.
///
/// # Errors
/// [`Error::Store`] with a corrupt index row when its kind or compression
/// byte stands for nothing this build knows.
pub fn blob_location(id: &BlobId, rec: &BlobRecord) -> Result<BlobLocation> {
    let kind = BlobKind::from_code(rec.kind);
    let compression = Compression::from_code(rec.compression);
    match (kind, compression) {
        (Some(kind), Some(compression)) => Ok(BlobLocation {
            pack: to_pack(&rec.pack),
            offset: rec.offset,
            stored_len: rec.stored_len,
            raw_len: rec.raw_len,
            compression,
            kind,
        }),
        _ => Err(Error::Store(robovault_store::Error::Corrupt {
            object: format!("index row of blob {id}"),
            reason: "unknown kind or compression".into(),
        })),
    }
}

/// The index rows of a pack's footer entries:
/// (id, kind, compression, offset, stored length, raw length).
pub fn index_rows(entries: &[PackEntry]) -> Vec<(Hash32, u8, u8, u64, u32, u32)> {
    entries
        .iter()
        .map(|e| {
            (
                to_hash(&e.id),
                e.kind.code(),
                e.compression.code(),
                e.offset,
                e.stored_len,
                e.raw_len,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row() -> impl Strategy<Value = Row> {
        any::<[u64; 6]>().prop_map(|[total, copied, skipped, mismatch, failed, extras]| Row {
            total,
            copied,
            skipped,
            mismatch,
            failed,
            extras,
        })
    }

    fn counts() -> impl Strategy<Value = Counts> {
        (row(), row(), row()).prop_map(|(dirs, files, bytes)| Counts { dirs, files, bytes })
    }

    fn object(c: &Counts) -> SnapshotObject {
        SnapshotObject {
            version: robovault_store::SNAPSHOT_VERSION,
            repository: String::new(),
            series: "s".into(),
            host: "h".into(),
            source: "/src".into(),
            seq: 1,
            started: String::new(),
            ended: String::new(),
            parent: None,
            root: BlobId::default().to_hex(),
            root_dir: robovault_store::RootDir::default(),
            exit_code: 0,
            partial: false,
            dirs: c.dirs.into(),
            files: c.files.into(),
            bytes: c.bytes.into(),
            new_data: 0,
            errors: Vec::new(),
        }
    }

    fn run_error() -> impl Strategy<Value = RunError> {
        (any::<Vec<u8>>(), ".*", any::<i32>(), ".*", any::<u32>()).prop_map(
            |(path, action, code, message, attempts)| RunError {
                path,
                action,
                code,
                message,
                attempts,
            },
        )
    }

    /// The index's documented order: `[total, copied, skipped, mismatch, failed, extras]`.
    fn in_index_order(r: &Row) -> [u64; 6] {
        [r.total, r.copied, r.skipped, r.mismatch, r.failed, r.extras]
    }

    proptest! {
        #[test]
        fn a_failure_keeps_each_field_in_the_index(e in run_error()) {
            let row = RunErrorRow::from(&e);
            prop_assert_eq!(
                (&row.path, &row.action, row.code, &row.message, row.attempts),
                (&e.path, &e.action, e.code, &e.message, e.attempts)
            );
            prop_assert_eq!(RunError::from(row), e);
        }

        #[test]
        fn a_failure_keeps_each_field_in_a_snapshot_object(e in run_error()) {
            let rec = RunErrorRecord::from(&e);
            prop_assert_eq!(
                (&rec.action, rec.code, &rec.message, rec.attempts),
                (&e.action, e.code, &e.message, e.attempts)
            );
            let row = record_row(&rec);
            prop_assert_eq!(
                (&row.action, row.code, &row.message, row.attempts),
                (&e.action, e.code, &e.message, e.attempts)
            );
        }

        #[test]
        fn a_row_keeps_each_column_in_a_snapshot_object(r in row()) {
            let stored = CountsRow::from(r);
            prop_assert_eq!(
                (stored.total, stored.copied, stored.skipped, stored.mismatch, stored.failed, stored.extras),
                (r.total, r.copied, r.skipped, r.mismatch, r.failed, r.extras)
            );
            prop_assert_eq!(Row::from(stored), r);
        }

        #[test]
        fn counts_keep_each_column_in_the_index(c in counts()) {
            let indexed = IndexCounts::from(c);
            prop_assert_eq!(indexed.dirs, in_index_order(&c.dirs));
            prop_assert_eq!(indexed.files, in_index_order(&c.files));
            prop_assert_eq!(indexed.bytes, in_index_order(&c.bytes));
            prop_assert_eq!(Counts::from(indexed), c);
        }

        #[test]
        fn a_snapshot_objects_counts_reach_the_index_as_the_run_made_them(c in counts()) {
            let obj = object(&c);
            prop_assert_eq!(Counts::from(&obj), c);
            prop_assert_eq!(object_counts(&obj), IndexCounts {
                dirs: in_index_order(&c.dirs),
                files: in_index_order(&c.files),
                bytes: in_index_order(&c.bytes),
            });
        }

        #[test]
        fn blob_ids_keep_their_bytes_through_the_index(bytes in any::<[u8; 32]>()) {
            let id = BlobId(bytes);
            prop_assert_eq!(to_hash(&id), Hash32(bytes));
            prop_assert_eq!(to_blob(&to_hash(&id)), id);
        }

        #[test]
        fn pack_ids_keep_their_bytes_through_the_index(bytes in any::<[u8; 32]>()) {
            let id = PackId(bytes);
            prop_assert_eq!(pack_hash(&id), Hash32(bytes));
            prop_assert_eq!(to_pack(&pack_hash(&id)), id);
        }

        #[test]
        fn a_footer_entry_and_its_index_row_name_the_same_place(
            id in any::<[u8; 32]>(),
            pack in any::<[u8; 32]>(),
            tree in any::<bool>(),
            zstd in any::<bool>(),
            offset in any::<u64>(),
            stored_len in any::<u32>(),
            raw_len in any::<u32>(),
        ) {
            let entry = PackEntry {
                id: BlobId(id),
                kind: if tree { BlobKind::Tree } else { BlobKind::Data },
                compression: if zstd { Compression::Zstd } else { Compression::None },
                offset,
                stored_len,
                raw_len,
            };
            let rows = index_rows(&[entry]);
            prop_assert_eq!(rows.len(), 1);
            let (hash, kind, compression, row_offset, row_stored, row_raw) = rows[0];
            let rec = BlobRecord { pack: Hash32(pack), kind, compression, offset: row_offset, stored_len: row_stored, raw_len: row_raw };
            prop_assert_eq!(to_blob(&hash), entry.id);
            prop_assert_eq!(blob_location(&entry.id, &rec)?, entry.location(PackId(pack)));
        }
    }

    #[test]
    fn a_snapshot_object_keeps_a_failed_path_as_escaped_text_and_the_index_takes_that_text() {
        let e = RunError {
            path: b"dir/a\xffb".to_vec(),
            action: "Copying File".into(),
            code: 13,
            message: "Permission denied".into(),
            attempts: 2,
        };
        let rec = RunErrorRecord::from(&e);
        assert_eq!(rec.path, "dir/a\\xFFb");
        assert_eq!(record_row(&rec).path, b"dir/a\\xFFb".to_vec());
    }

    #[test]
    fn an_index_row_with_an_unknown_kind_is_corrupt() {
        let rec = BlobRecord {
            pack: Hash32([7; 32]),
            kind: 9,
            compression: 0,
            offset: 0,
            stored_len: 1,
            raw_len: 1,
        };
        let err = blob_location(&BlobId([1; 32]), &rec).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "index row of blob 0101010101010101010101010101010101010101010101010101010101010101 \
                 is corrupt: unknown kind or compression"
            )
        );
    }
}

//! Conversions between the store's, the index's and the engine's types.
//!
//! The store and the index share no types (STYLE.md §1): the index keeps a
//! blob or pack id as its own `Hash32`, run counts as arrays, and the engine
//! has its own summary rows. Every translation between those shapes lives
//! here, once, so that a field added to one shape has one place to be mapped
//! and a swapped field has one place to hide, which the tests below watch.
//! Where both types are foreign the orphan rule forbids `From`, and a small
//! named function stands in.

use robovault_index::{BlobRecord, Hash32};
use robovault_store::{BlobId, BlobKind, BlobLocation, Compression, PackEntry, PackId};

use crate::{Error, Result};

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

    proptest! {
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

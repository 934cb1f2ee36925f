//! The entry points the fuzz targets (`fuzz/`) and the replay of their
//! regression corpus (`tests/fuzz_regressions.rs`) share, so that both feed
//! bytes to the very decoders a repository's objects go through. Each takes
//! arbitrary bytes and returns whether they decoded; none may panic.

use crate::blob::{self, BlobKind, BlobLocation, Compression};
use crate::{lock, pack, BlobId, Config, PackId, SnapshotId, SnapshotObject, Tree, TreeId};

/// A whole pack file: header, trailer and footer, then every blob it lists
/// decoded and checked (trees decoded as trees), as a reader would. The
/// footer checksum stops almost every changed footer, so the bytes are tried
/// a second time with the checksum made right, to reach the checks behind it.
pub fn pack(data: &[u8]) -> bool {
    let as_is = pack_blobs(data);
    let mut fixed = data.to_vec();
    if fix_footer_checksum(&mut fixed) {
        pack_blobs(&fixed);
    }
    as_is
}

fn pack_blobs(data: &[u8]) -> bool {
    let id = PackId::of(data);
    let Ok(entries) = pack::parse_pack(&id, data) else {
        return false;
    };
    for e in &entries {
        // parse_pack guarantees every entry lies inside the pack.
        let stored = &data[e.offset as usize..e.offset as usize + e.stored_len as usize];
        if let Ok(raw) = blob::decode(&e.id, &e.location(id), stored) {
            if e.kind == BlobKind::Tree {
                let _ = Tree::decode(&e.id, &raw);
            }
        }
    }
    true
}

/// Writes into the trailer the hash of the footer it describes (see the
/// layout in pack.rs); false when the bytes are too short to hold either.
fn fix_footer_checksum(b: &mut [u8]) -> bool {
    let n = b.len();
    let (header, trailer) = (pack::HEADER_LEN as usize, pack::TRAILER_LEN);
    if n < header + trailer {
        return false;
    }
    let count = u32::from_le_bytes([b[n - 48], b[n - 47], b[n - 46], b[n - 45]]) as usize;
    let Some(footer_len) = count
        .checked_mul(pack::ENTRY_LEN)
        .filter(|l| *l <= n - header - trailer)
    else {
        return false;
    };
    let hash = blake3::hash(&b[n - trailer - footer_len..n - trailer]);
    b[n - 44..n - 12].copy_from_slice(hash.as_bytes());
    true
}

/// A tree blob's content.
pub fn tree(data: &[u8]) -> bool {
    Tree::decode(&TreeId::of(data), data).is_ok()
}

/// A snapshot object, under the id its bytes hash to (any other id is refused
/// before decoding).
pub fn snapshot(data: &[u8]) -> bool {
    SnapshotObject::decode(&SnapshotId::of(data), data).is_ok()
}

/// A repository config.
pub fn config(data: &[u8]) -> bool {
    Config::decode(data).is_ok()
}

/// A stored blob with its location as the index gives it: byte 0 bit 0 is
/// the compression, bytes 1..5 the content length (u32 little-endian), the
/// rest the stored bytes. The id is the hash of the stored bytes, right for
/// an uncompressed blob.
pub fn blob(data: &[u8]) -> bool {
    let Some((head, stored)) = data.split_at_checked(5) else {
        return false;
    };
    let raw_len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let loc = BlobLocation {
        pack: PackId::default(),
        offset: pack::HEADER_LEN,
        stored_len: stored.len() as u32,
        raw_len,
        compression: if head[0] & 1 == 0 {
            Compression::None
        } else {
            Compression::Zstd
        },
        kind: BlobKind::Data,
    };
    blob::decode(&BlobId::of(stored), &loc, stored).is_ok()
}

/// The content of a lock file, as a waiting writer names its holder.
pub fn lock(data: &[u8]) -> bool {
    !lock::lock_holder(data).is_empty()
}

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

/// A blob's location as the index would give it: `flags` bit 0 the
/// compression, bit 1 a tree; the content length little-endian.
fn location(flags: u8, raw_len: [u8; 4], stored: &[u8]) -> BlobLocation {
    BlobLocation {
        pack: PackId::default(),
        offset: pack::HEADER_LEN,
        stored_len: stored.len() as u32,
        raw_len: u32::from_le_bytes(raw_len),
        compression: if flags & 1 == 0 {
            Compression::None
        } else {
            Compression::Zstd
        },
        kind: if flags & 2 == 0 { BlobKind::Data } else { BlobKind::Tree },
    }
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
    // Bit 1 would make it a tree: a data blob here, as before.
    let loc = location(head[0] & 1, [head[1], head[2], head[3], head[4]], stored);
    blob::decode(&BlobId::of(stored), &loc, stored).is_ok()
}

/// The content of a lock file, as a waiting writer names its holder.
pub fn lock(data: &[u8]) -> bool {
    !lock::lock_holder(data).is_empty()
}

/// The fixed key set the sealed targets open their inputs with; the seeds
/// (fuzz/src/seeds.rs) seal real objects under it, so the fuzzer starts
/// from bytes that open.
pub fn fuzz_keys() -> std::sync::Arc<crate::crypto::Keys> {
    use crate::crypto::{DataKey, KeySet, Keys};
    let set = KeySet::from_parts(
        vec![DataKey {
            generation: 1,
            key: [0x11; 32],
        }],
        [0x22; 32],
        [0x33; 32],
    )
    .expect("a fixed key set");
    std::sync::Arc::new(Keys::new([0x44; 32], set))
}

/// The password the key-file seeds are wrapped under.
pub const FUZZ_PASSWORD: &[u8] = b"fuzz password";

/// A key file: decoded, and, where its Argon2id costs are small enough to
/// try at fuzzing speed (64 KiB, 2 passes, 1 lane or less), unlocked with
/// [`FUZZ_PASSWORD`] and its label opened with the keys it gives.
pub fn key_file(data: &[u8]) -> bool {
    // Under the name its own id gives, as a listing of keys/ would.
    let name = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let Ok(file) = crate::crypto::KeyFile::decode(&name, data) else {
        return false;
    };
    let kdf = file.kdf();
    if kdf.memory_kib <= 64 && kdf.iterations <= 2 && kdf.parallelism <= 1 {
        if let Ok(Some(set)) = file.unlock(FUZZ_PASSWORD) {
            let keys = crate::crypto::Keys::new(*file.repository(), set);
            let _ = file.label(&keys);
        }
    }
    true
}

/// Every sealed envelope under [`fuzz_keys`], by the first byte: 0 a whole
/// object (snapshot, marker, condemned list, index-copy-less objects) of
/// the purpose in byte 1 under the name in the rest's first 32 bytes; 1 a
/// sealed blob as a pack holds it; 2 a version-2 pack, parsed and every
/// blob opened; 3 a sealed stream (an index copy) read to its end.
pub fn sealed(data: &[u8]) -> bool {
    use crate::crypto::Purpose;
    let sealing = crate::Sealing::Sealed(fuzz_keys());
    let Some((&which, rest)) = data.split_first() else {
        return false;
    };
    let purposes = [
        Purpose::DataBlob,
        Purpose::TreeBlob,
        Purpose::PackFooter,
        Purpose::Snapshot,
        Purpose::Marker,
        Purpose::Condemned,
        Purpose::IndexCopy,
    ];
    match which % 4 {
        0 => {
            let Some((&p, rest)) = rest.split_first() else {
                return false;
            };
            let Some((name, body)) = rest.split_at_checked(32) else {
                return false;
            };
            let purpose = purposes[usize::from(p) % purposes.len()];
            sealing
                .open_object(purpose, name, body.to_vec(), &|| "fuzz object".to_owned())
                .is_ok()
        }
        1 => {
            let Some((head, stored)) = rest.split_at_checked(37) else {
                return false;
            };
            let mut id = [0u8; 32];
            id.copy_from_slice(&head[..32]);
            let loc = location(head[32], [head[33], head[34], head[35], head[36]], stored);
            sealing.decode_blob(&BlobId(id), &loc, stored).is_ok()
        }
        2 => {
            let id = PackId::of(rest);
            let Ok(entries) = pack::parse_pack_with(&sealing, &id, rest) else {
                return false;
            };
            for e in &entries {
                let stored = &rest[e.offset as usize..e.offset as usize + e.stored_len as usize];
                let _ = sealing.decode_blob(&e.id, &e.location(id), stored);
            }
            true
        }
        _ => {
            let keys = fuzz_keys();
            let Ok(mut reader) =
                crate::crypto::StreamReader::new(&keys, Purpose::IndexCopy, b"fuzz", rest, "fuzz stream")
            else {
                return false;
            };
            let mut sink = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(&mut reader, 64 << 20), &mut sink).is_ok()
        }
    }
}

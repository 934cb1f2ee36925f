//! Garbage collection: remove what no snapshot needs, and repack packs that
//! are mostly unused, crash-safely.
//!
//! ```text
//! lock the writers out; heal
//! used  = every chunk of every version row + every tree of every snapshot
//! packs: all blobs unused -> delete; unused share > max-unused -> repack; else keep
//! repack: copy the used blobs (each read verified) into new packs, durable
//! ONE index transaction: move the blobs' rows, drop the unused rows and the
//!     old packs' rows                                  (FORMAT.md, gc rules)
//! wait for readers (exclusive readers lock), then delete the old packs,
//!     orphan packs, and the objects and markers of forgotten snapshots
//! ```
//! A crash before the commit leaves new packs unreferenced; after it, old
//! packs unreferenced: either way the next gc removes them and every kept
//! snapshot restores.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use robovault_index::{BlobRecord, Hash32};
use robovault_store::{crash_point, pack, BlobKind, Deletes, NodeContent, ObjectKind, PackId, Packer};

use crate::convert::{pack_hash, to_blob, to_hash, to_pack};
use crate::options::RepositoryOptions;
use crate::repo::{packer_into, Repository};
use crate::{Error, Result};

/// How `gc` runs.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Report the plan only.
    pub dry_run: bool,
    /// Repack a pack once more than this fraction of its bytes is unused.
    pub max_unused: f64,
    /// How long to wait for another writer.
    pub lock_wait: Duration,
    /// Remote repositories: packs younger than this are never deleted or
    /// repacked (another host's run may be uploading them), and superseded
    /// index copies are kept this long.
    pub grace: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            max_unused: 0.05,
            lock_wait: Duration::ZERO,
            grace: Duration::from_secs(3600),
        }
    }
}

/// What `gc` did (or would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcSummary {
    /// Packs before.
    pub packs: u64,
    /// Packs deleted because nothing in them is used.
    pub packs_deleted: u64,
    /// Packs rewritten without their unused blobs.
    pub packs_repacked: u64,
    /// Remote repositories: packs condemned (deleted by a later gc).
    pub packs_condemned: u64,
    /// Packs in the store the index did not know (interrupted runs).
    pub orphan_packs: u64,
    /// Unused blobs dropped.
    pub blobs_removed: u64,
    /// Bytes of packs deleted.
    pub bytes_deleted: u64,
    /// Bytes of new packs written by repacking.
    pub bytes_written: u64,
    /// Snapshot objects and markers of forgotten snapshots removed.
    pub forgotten_objects_removed: u64,
    /// Temporary files of killed runs removed.
    pub temporaries_removed: u64,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// Collects garbage in the repository `repo`.
///
/// # Errors
/// Lock, store and index errors; a pack that must be repacked but cannot be
/// read is an error (nothing is deleted then).
pub fn gc(repo: &RepositoryOptions, opts: &GcOptions) -> Result<GcSummary> {
    gc_with(repo, opts, &crate::Silent)
}

/// [`gc`], telling `reporter` of each pack repacked (a pack counts as a file
/// in [`crate::Progress`]).
///
/// # Errors
/// As [`gc`].
pub fn gc_with(repo: &RepositoryOptions, opts: &GcOptions, reporter: &dyn crate::Reporter) -> Result<GcSummary> {
    let repo = Repository::open(repo)?;
    let _lock = repo.lock_writer(opts.lock_wait)?;
    repo.heal()?;
    refuse_stale_index(&repo)?;
    let mut summary = GcSummary {
        dry_run: opts.dry_run,
        ..GcSummary::default()
    };
    // Where hosts share the store without a common lock, what this gc finds
    // unused is condemned, and deleted by a gc a grace period later.
    let deferred = repo.store().backend().deletes() == Deletes::AfterGrace;
    if deferred && !opts.dry_run {
        // Phase two first: what an earlier gc condemned, a grace ago.
        summary.packs_deleted += crate::remote::collect_condemned(&repo, opts.grace, &used_blobs(&repo)?)?;
    }
    let used = used_blobs(&repo)?;
    let index = repo.index()?;
    let known: Vec<(Hash32, u64)> = index.packs()?;
    summary.packs = known.len() as u64;
    let mut delete: Vec<Hash32> = Vec::new();
    let mut repack: Vec<(Hash32, Vec<(Hash32, BlobRecord)>)> = Vec::new();
    let mut unused_rows: Vec<Hash32> = Vec::new();
    let sizes: std::collections::HashMap<Hash32, u64> = known.iter().copied().collect();
    let mut seen: HashSet<Hash32> = HashSet::new();
    let young = if deferred {
        young_packs(&repo, opts.grace)?
    } else {
        HashSet::new()
    };
    index.for_each_pack_blobs::<Error>(|pack, blobs| {
        seen.insert(pack);
        if young.contains(&pack) {
            return Ok(());
        }
        let size = sizes.get(&pack).copied().unwrap_or(0).max(1);
        let unused: Vec<&(Hash32, BlobRecord)> = blobs.iter().filter(|(id, _)| !used.contains(id)).collect();
        let unused_bytes: u64 = unused.iter().map(|(_, r)| r.stored_len as u64).sum();
        if unused.len() == blobs.len() {
            delete.push(pack);
            unused_rows.extend(unused.iter().map(|(id, _)| *id));
        } else if !unused.is_empty() && unused_bytes as f64 / size as f64 > opts.max_unused {
            unused_rows.extend(unused.iter().map(|(id, _)| *id));
            repack.push((pack, blobs.into_iter().filter(|(id, _)| used.contains(id)).collect()));
        }
        Ok(())
    })?;
    // Packs the index knows but that hold no indexed blob at all.
    delete.extend(
        known
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !seen.contains(p) && !young.contains(p)),
    );
    summary.orphan_packs = repo.orphan_packs()?.len() as u64;
    if deferred {
        summary.packs_condemned = (delete.len() + repack.len()) as u64;
    } else {
        summary.packs_deleted = delete.len() as u64;
    }
    summary.packs_repacked = repack.len() as u64;
    summary.blobs_removed = unused_rows.len() as u64;
    summary.bytes_deleted = delete
        .iter()
        .chain(repack.iter().map(|(p, _)| p))
        .map(|p| sizes.get(p).copied().unwrap_or(0))
        .sum();
    if opts.dry_run {
        return Ok(summary);
    }
    drop(index);

    // 1. New packs with the used blobs of mostly-unused packs, durable.
    let mut writer = repo.index()?.writer()?;
    if !repack.is_empty() {
        let w = Arc::new(Mutex::new(writer));
        let packer = packer_into(repo.store(), &w);
        reporter.progress(crate::Progress::Found {
            files: repack.len() as u64,
            bytes: repack.iter().map(|(p, _)| sizes.get(p).copied().unwrap_or(0)).sum(),
        });
        for (pack, blobs) in &repack {
            copy_used(&repo, &packer, pack, blobs)?;
            reporter.progress(crate::Progress::Done {
                bytes: sizes.get(pack).copied().unwrap_or(0),
            });
        }
        let stats = packer.finish()?;
        summary.bytes_written = stats.packed_bytes;
        drop(packer);
        writer = Arc::try_unwrap(w)
            .map_err(|_| Error::Usage("internal: index writer still shared".into()))?
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
    }
    crash_point("gc-repacked");
    // 2. One transaction: drop unused rows and the old packs' rows.
    writer.delete_blobs(&unused_rows)?;
    for p in delete.iter().chain(repack.iter().map(|(p, _)| p)) {
        writer.delete_pack(p)?;
    }
    writer.commit()?;
    crash_point("gc-committed");
    // 3. No reader may still be reading what goes now.
    let _readers = repo.exclude_readers()?;
    let doomed: Vec<String> = delete
        .iter()
        .chain(repack.iter().map(|(p, _)| p))
        .map(|p| to_pack(p).to_hex())
        .collect();
    if deferred {
        // Another host's run may still reuse these: condemned now, deleted
        // by a gc a grace period later (FORMAT.md "Remote repositories").
        crate::remote::condemn(&repo, &doomed)?;
    } else {
        let mut first = true;
        for name in &doomed {
            repo.store().backend().delete(ObjectKind::Pack, name)?;
            if first {
                crash_point("gc-deleting");
                first = false;
            }
        }
        // Orphans are judged against the index as committed now: a repacked
        // pack may have the id of an orphan an interrupted gc left, and is
        // then that very file, referenced again. (A remote cache indexes
        // every pack of the store at its sync: none is an orphan there.)
        let orphans = repo.orphan_packs()?;
        summary.orphan_packs = orphans.len() as u64;
        for name in &orphans {
            repo.store().backend().delete(ObjectKind::Pack, name)?;
        }
        summary.temporaries_removed = repo.store().backend().remove_temporaries()?;
    }
    summary.forgotten_objects_removed = remove_forgotten(&repo)?;
    if repo.remote().is_some() {
        crate::remote::prune_index_copies(&repo, opts.grace)?;
        crate::remote::publish_index(&repo)?;
    }
    Ok(summary)
}

/// Packs of a shared store modified within `grace`: they may belong to a
/// run in progress on another host, whose snapshot is not committed yet.
fn young_packs(repo: &Repository, grace: Duration) -> Result<HashSet<Hash32>> {
    let now = std::time::SystemTime::from(repo.clock().now());
    let mut out = HashSet::new();
    for (name, modified) in repo.store().backend().list_modified(ObjectKind::Pack)? {
        let young = modified.is_none_or(|m| now.duration_since(m).unwrap_or_default() < grace);
        if young {
            out.insert(pack_hash(&PackId::from_hex(&name)?));
        }
    }
    Ok(out)
}

/// Refuses to collect when the store holds a snapshot object that the index
/// neither lists nor marks forgotten: the index is stale (restored from an
/// old copy, or a crash lost its tail), and what it calls unused may be
/// needed by that snapshot.
fn refuse_stale_index(repo: &Repository) -> Result<()> {
    let listed: HashSet<String> = repo.index()?.snapshots(None)?.into_iter().map(|s| s.snap_id).collect();
    let backend = repo.store().backend();
    let marked: HashSet<String> = backend.list(ObjectKind::Marker)?.into_iter().collect();
    let unknown: Vec<String> = backend
        .list(ObjectKind::Snapshot)?
        .into_iter()
        .filter(|s| !listed.contains(s) && !marked.contains(s))
        .collect();
    if let Some(first) = unknown.first() {
        return Err(Error::Refused(format!(
            "the index does not know snapshot {first} (and {} more) that the store holds; \
             run `robovault repair index` before gc",
            unknown.len() - 1
        )));
    }
    Ok(())
}

/// Every blob a snapshot needs: the chunks of every version row and every
/// tree reachable from a snapshot root.
fn used_blobs(repo: &Repository) -> Result<HashSet<Hash32>> {
    let index = repo.index()?;
    let mut used: HashSet<Hash32> = HashSet::new();
    index.for_each_chunk_list(|chunks| used.extend(chunks.iter().copied()))?;
    let mut stack: Vec<Hash32> = index.snapshots(None)?.iter().map(|s| s.root_tree).collect();
    while let Some(tree) = stack.pop() {
        if !used.insert(tree) {
            continue;
        }
        for node in repo.read_tree(&to_blob(&tree))?.nodes {
            match node.content {
                NodeContent::Subtree(id) => stack.push(to_hash(&id)),
                // Trees name chunks too; the rows should already hold them.
                NodeContent::Chunks(c) => used.extend(c.iter().map(to_hash)),
                _ => {}
            }
        }
    }
    Ok(used)
}

/// Reads a pack whole and hands its used blobs, each verified, to the packer.
fn copy_used(repo: &Repository, packer: &Packer, pack_id: &Hash32, blobs: &[(Hash32, BlobRecord)]) -> Result<()> {
    let id = to_pack(pack_id);
    let bytes = repo.store().backend().read(ObjectKind::Pack, &id.to_hex())?;
    let entries = pack::parse_pack(&id, &bytes)?;
    let wanted: HashSet<Hash32> = blobs.iter().map(|(b, _)| *b).collect();
    for e in entries.iter().filter(|e| wanted.contains(&to_hash(&e.id))) {
        let start = e.offset as usize;
        let raw = robovault_store::decode_blob(&e.id, &e.location(id), &bytes[start..start + e.stored_len as usize])?;
        let kind = if e.kind == BlobKind::Tree {
            BlobKind::Tree
        } else {
            BlobKind::Data
        };
        packer.add(e.id, kind, &raw)?;
    }
    Ok(())
}

/// Deletes the objects of snapshots that were forgotten (their marker is in
/// the store and the index no longer lists them), then the markers.
fn remove_forgotten(repo: &Repository) -> Result<u64> {
    let listed: HashSet<String> = repo.index()?.snapshots(None)?.into_iter().map(|s| s.snap_id).collect();
    let backend = repo.store().backend();
    let mut removed = 0;
    for marker in backend.list(ObjectKind::Marker)? {
        if listed.contains(&marker) {
            // The index still lists it: the forget that wrote the marker did
            // not commit. The snapshot lives; the marker must not outlive it.
            backend.delete(ObjectKind::Marker, &marker)?;
            continue;
        }
        backend.delete(ObjectKind::Snapshot, &marker)?;
        backend.delete(ObjectKind::Marker, &marker)?;
        removed += 1;
    }
    Ok(removed)
}

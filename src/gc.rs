//! Garbage collection: remove what no snapshot needs, and repack packs that
//! are mostly unused, crash-safely. Deciding is [`gc_plan`], a [`GcPlan`]
//! that changes nothing and is all `--dry-run` reports; acting is
//! [`GcPlan::execute`].
//!
//! ```text
//! lock the writers out; heal; refuse a stale index
//! remote: delete what an earlier gc condemned a grace ago (not on a dry run)
//! plan:   used = every chunk of every version row + every tree of every snapshot
//!         packs: all blobs unused -> delete; unused share > max-unused -> repack;
//!         else keep
//! execute:
//!   repack: copy the used blobs (each read verified) into new packs, durable
//!   ONE index transaction: move the blobs' rows, drop the unused rows and the
//!       old packs' rows                              (FORMAT.md invariant 8)
//!   wait for readers (exclusive readers lock), then delete (remote: condemn)
//!       the old packs, orphan packs, and the objects and markers of
//!       forgotten snapshots
//! ```
//! A crash before the commit leaves new packs unreferenced; after it, old
//! packs unreferenced: either way the next gc removes them and every kept
//! snapshot restores.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use robovault_index::{BlobRecord, Hash32, Writer};
use robovault_store::{crash_point, pack, BlobKind, Deletes, NodeContent, ObjectKind, PackId, Packer};

use crate::convert::{pack_hash, to_blob, to_hash, to_pack};
use crate::repository::local::{packer_into, Repository};
use crate::repository::options::RepositoryOptions;
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

/// What a gc decided, before it changes anything: which packs go, which are
/// repacked and with which blobs, which blob rows are dropped. `--dry-run`
/// reports it ([`GcPlan::summary`]); a real run carries it out
/// ([`GcPlan::execute`]). Packs it does not name are kept.
#[derive(Debug, Clone, Default)]
pub struct GcPlan {
    /// Packs the index knows.
    packs: u64,
    /// Packs none of whose blobs is used (or that hold no indexed blob).
    delete: Vec<Hash32>,
    /// Mostly-unused packs, each with its used blobs, to copy into new packs.
    repack: Vec<(Hash32, Vec<(Hash32, BlobRecord)>)>,
    /// Rows of the unused blobs of `delete` and `repack`.
    unused_rows: Vec<Hash32>,
    /// The size of each pack the index knows.
    sizes: HashMap<Hash32, u64>,
    /// Packs in the store the index does not know, when planned.
    orphan_packs: u64,
    /// The store is shared without a common lock: what goes is condemned,
    /// not deleted (FORMAT.md "Remote repositories").
    deferred: bool,
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
    // Where hosts share the store without a common lock, what this gc finds
    // unused is condemned, and deleted by a gc a grace period later.
    let collected = if deferred(&repo) && !opts.dry_run {
        // Phase two first: what an earlier gc condemned, a grace ago.
        crate::repository::remote::collect_condemned(&repo, opts.grace, &used_blobs(&repo)?)?
    } else {
        0
    };
    let plan = gc_plan(&repo, opts)?;
    if opts.dry_run {
        return Ok(plan.summary());
    }
    let mut summary = plan.execute(&repo, opts.grace, reporter)?;
    summary.packs_deleted += collected;
    Ok(summary)
}

/// Decides what a gc of `repo` removes and repacks, changing nothing. The
/// caller holds the writer lock ([`Repository::lock_writer`]) until the plan
/// is executed or dropped, so the index cannot change in between.
///
/// # Errors
/// Store and index errors.
pub fn gc_plan(repo: &Repository, opts: &GcOptions) -> Result<GcPlan> {
    let deferred = deferred(repo);
    let used = used_blobs(repo)?;
    let index = repo.index()?;
    let known: Vec<(Hash32, u64)> = index.packs()?;
    let mut plan = GcPlan {
        packs: known.len() as u64,
        sizes: known.iter().copied().collect(),
        deferred,
        ..GcPlan::default()
    };
    let mut seen: HashSet<Hash32> = HashSet::new();
    let young = if deferred {
        young_packs(repo, opts.grace)?
    } else {
        HashSet::new()
    };
    index.for_each_pack_blobs::<Error>(|pack, blobs| {
        seen.insert(pack);
        if !young.contains(&pack) {
            plan.judge(pack, blobs, &used, opts.max_unused);
        }
        Ok(())
    })?;
    // Packs the index knows but that hold no indexed blob at all.
    plan.delete.extend(
        known
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !seen.contains(p) && !young.contains(p)),
    );
    plan.orphan_packs = repo.orphan_packs()?.len() as u64;
    Ok(plan)
}

/// Whether the store defers deletes past a grace period (shared by hosts
/// without a common lock).
fn deferred(repo: &Repository) -> bool {
    repo.store().backend().deletes() == Deletes::AfterGrace
}

impl GcPlan {
    /// Sorts one pack: every blob unused, delete it; more than `max_unused`
    /// of its bytes unused, repack it; else keep it.
    fn judge(&mut self, pack: Hash32, blobs: Vec<(Hash32, BlobRecord)>, used: &HashSet<Hash32>, max_unused: f64) {
        let size = self.size(&pack).max(1);
        let unused: Vec<&(Hash32, BlobRecord)> = blobs.iter().filter(|(id, _)| !used.contains(id)).collect();
        let unused_bytes: u64 = unused.iter().map(|(_, r)| r.stored_len as u64).sum();
        if unused.len() == blobs.len() {
            self.delete.push(pack);
            self.unused_rows.extend(unused.iter().map(|(id, _)| *id));
        } else if !unused.is_empty() && unused_bytes as f64 / size as f64 > max_unused {
            self.unused_rows.extend(unused.iter().map(|(id, _)| *id));
            self.repack
                .push((pack, blobs.into_iter().filter(|(id, _)| used.contains(id)).collect()));
        }
    }

    fn size(&self, pack: &Hash32) -> u64 {
        self.sizes.get(pack).copied().unwrap_or(0)
    }

    /// Every pack that goes: the deleted ones, then the repacked ones.
    fn doomed(&self) -> impl Iterator<Item = &Hash32> {
        self.delete.iter().chain(self.repack.iter().map(|(p, _)| p))
    }

    /// What executing the plan would do, as a dry run reports it.
    pub fn summary(&self) -> GcSummary {
        let mut summary = GcSummary {
            packs: self.packs,
            packs_repacked: self.repack.len() as u64,
            orphan_packs: self.orphan_packs,
            blobs_removed: self.unused_rows.len() as u64,
            bytes_deleted: self.doomed().map(|p| self.size(p)).sum(),
            dry_run: true,
            ..GcSummary::default()
        };
        if self.deferred {
            summary.packs_condemned = (self.delete.len() + self.repack.len()) as u64;
        } else {
            summary.packs_deleted = self.delete.len() as u64;
        }
        summary
    }

    /// Carries the plan out on `repo` (the one it was computed on, still
    /// under the same writer lock): repack, commit, then delete or condemn.
    /// Superseded index copies of a remote repository older than `grace` are
    /// pruned.
    ///
    /// # Errors
    /// Store and index errors; a pack to repack that cannot be read stops the
    /// run before anything is deleted.
    pub fn execute(self, repo: &Repository, grace: Duration, reporter: &dyn crate::Reporter) -> Result<GcSummary> {
        let mut summary = GcSummary {
            dry_run: false,
            ..self.summary()
        };
        // FORMAT.md invariant 8: the new packs are durable before the one
        // transaction that moves the rows to them and drops the old ones.
        let writer = repo.index()?.writer()?;
        let (mut writer, written) = self.repack_into(repo, writer, reporter)?;
        summary.bytes_written = written;
        crash_point("gc-repacked");
        writer.delete_blobs(&self.unused_rows)?;
        for p in self.doomed() {
            writer.delete_pack(p)?;
        }
        writer.commit()?;
        crash_point("gc-committed");
        // FORMAT.md invariant 8: no reader may still be reading what goes now.
        let _readers = repo.exclude_readers()?;
        let doomed: Vec<String> = self.doomed().map(|p| to_pack(p).to_hex()).collect();
        if self.deferred {
            // Another host's run may still reuse these: condemned now, deleted
            // by a gc a grace period later (FORMAT.md "Remote repositories").
            crate::repository::remote::condemn(repo, &doomed)?;
        } else {
            let (orphans, temporaries) = delete_packs(repo, &doomed)?;
            summary.orphan_packs = orphans;
            summary.temporaries_removed = temporaries;
        }
        summary.forgotten_objects_removed = remove_forgotten(repo)?;
        if repo.index_is_cache() {
            crate::repository::remote::prune_index_copies(repo, grace)?;
            crate::repository::remote::publish_index(repo, crate::repository::remote::Publish::Always)?;
        }
        Ok(summary)
    }

    /// Copies the used blobs of the packs to repack into new, durable packs
    /// recorded in `writer`'s transaction; returns the writer and the bytes
    /// of new packs written.
    fn repack_into(&self, repo: &Repository, writer: Writer, reporter: &dyn crate::Reporter) -> Result<(Writer, u64)> {
        if self.repack.is_empty() {
            return Ok((writer, 0));
        }
        let w = Arc::new(Mutex::new(writer));
        let packer = packer_into(repo.store(), &w);
        reporter.progress(crate::Progress::Found {
            files: self.repack.len() as u64,
            bytes: self.repack.iter().map(|(p, _)| self.size(p)).sum(),
        });
        for (pack, blobs) in &self.repack {
            copy_used(repo, &packer, pack, blobs)?;
            reporter.progress(crate::Progress::Done { bytes: self.size(pack) });
        }
        let stats = packer.finish()?;
        drop(packer);
        let writer = Arc::try_unwrap(w)
            .map_err(|_| Error::Usage("internal: index writer still shared".into()))?
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        Ok((writer, stats.packed_bytes))
    }
}

/// Deletes the packs that go, then the orphans and the temporaries of killed
/// runs; returns how many orphans and temporaries went.
fn delete_packs(repo: &Repository, doomed: &[String]) -> Result<(u64, u64)> {
    let backend = repo.store().backend();
    let mut first = true;
    for name in doomed {
        backend.delete(ObjectKind::Pack, name)?;
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
    for name in &orphans {
        backend.delete(ObjectKind::Pack, name)?;
    }
    Ok((orphans.len() as u64, backend.remove_temporaries()?))
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
    let entries = pack::parse_pack_with(repo.store().sealing(), &id, &bytes)?;
    let wanted: HashSet<Hash32> = blobs.iter().map(|(b, _)| *b).collect();
    for e in entries.iter().filter(|e| wanted.contains(&to_hash(&e.id))) {
        let start = e.offset as usize;
        let raw =
            repo.store()
                .sealing()
                .decode_blob(&e.id, &e.location(id), &bytes[start..start + e.stored_len as usize])?;
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

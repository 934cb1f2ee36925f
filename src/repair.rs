//! Repair index: rebuild `index.sqlite` from the store alone (DESIGN.md). The
//! pack footers give the blobs, the snapshot objects the snapshots and runs,
//! their trees the version rows; a deletion marker keeps a forgotten snapshot
//! out. Inode and change time are not in the store: after a repair the next
//! backup reads every file once (classifying them Modified), then all is as
//! before.
//!
//! ```text
//! lock; build a new database beside the old one:
//!     every pack: footer -> pack and blob rows (a damaged pack is reported, skipped)
//!     every snapshot object without a marker, per series by sequence:
//!         snapshot row; version rows by diffing its trees against the
//!         previous snapshot's (equal tree ids: nothing below changed)
//! swap it in with one rename
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use robovault_index::{Access, Index, Writer};
use robovault_store::{Config, ObjectKind, PackId, SnapshotId, SnapshotObject, Store, TreeId, WriterLock};

use crate::convert::{index_rows, pack_hash};
use crate::repository::local::{hostname, INDEX_FILE};
use crate::{Error, Location, RepositoryOptions, Result};

/// What `repair index` rebuilt.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairSummary {
    /// Packs indexed.
    pub packs: u64,
    /// Blobs indexed.
    pub blobs: u64,
    /// Snapshots brought back.
    pub snapshots: u64,
    /// Series brought back.
    pub series: u64,
    /// Snapshot objects left out because they were forgotten.
    pub forgotten: u64,
    /// Packs whose footer is damaged (their blobs are not indexed).
    pub damaged_packs: Vec<String>,
    /// Snapshot objects that do not decode or belong elsewhere.
    pub damaged_snapshots: Vec<String>,
}

/// Rebuilds the index of the repository `repo`, swapping it in by the
/// steps of FORMAT.md invariant 9.
///
/// # Errors
/// [`Error::NotARepository`] without a config; lock, store and index errors.
pub fn repair_index(repo: &RepositoryOptions, lock_wait: Duration) -> Result<RepairSummary> {
    let repo_path = match &repo.location {
        Location::S3(url) => return repair_remote(url, repo, lock_wait),
        Location::Local(path) => path.as_path(),
    };
    let root = fs::canonicalize(repo_path).map_err(|e| Error::io("resolving", repo_path, e))?;
    crate::repository::local::check_writable(&root)?;
    let holder = format!("pid {} on host {} (repair index)", std::process::id(), hostname());
    let (store, _lock) = match crate::repository::keys::open_store(crate::repository::local::local_backend(&root), repo)
    {
        Ok(store) if store.config().version >= robovault_store::FORMAT_VERSION_2 => {
            let id = store.config().id.clone();
            return repair_cached(repo, &store, &root, &repo.cache_for(&id)?, lock_wait);
        }
        Ok(store) => (store, WriterLock::acquire(&root, &holder, lock_wait)?),
        Err(Error::Store(robovault_store::Error::NotFound { .. })) if root.join("keys").is_dir() => {
            return Err(Error::Refused(format!(
                "repository {} has key files but no config: its config cannot be rebuilt \
                 without it; put back a copy of REPO/config",
                root.display()
            )))
        }
        Err(Error::Store(robovault_store::Error::NotFound { .. })) if root.join("packs").is_dir() => {
            let lock = WriterLock::acquire(&root, &holder, lock_wait)?;
            (recover_config(&root)?, lock)
        }
        Err(Error::Store(robovault_store::Error::NotFound { .. })) => {
            return Err(Error::NotARepository {
                path: root.clone(),
                reason: "it holds no config".into(),
            })
        }
        Err(e) => return Err(e),
    };
    let tmp = root.join(format!("{INDEX_FILE}.rebuild"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", tmp.display()));
    }
    let index = Index::open_or_create(&tmp)?;
    let mut summary = RepairSummary::default();
    let mut w = index.writer()?;
    w.set_meta("repository", &store.config().id)?;
    index_packs(&store, &mut w, &mut summary)?;
    w.commit()?;
    let objects = snapshot_objects(&store, &mut summary)?;
    for (name, snaps) in &objects {
        summary.series += 1;
        let first = &snaps[0].1;
        let mut w = index.writer()?;
        let series = w.ensure_series(name, &first.host, first.source.as_bytes())?;
        w.commit()?;
        let mut prev: Option<(u64, TreeId)> = None;
        for (bytes, obj) in snaps {
            match crate::rebuild::rebuild_snapshot(&store, &index, series, prev, bytes, obj) {
                Ok(()) => {
                    prev = Some((obj.seq, TreeId::from_hex(&obj.root)?));
                    summary.snapshots += 1;
                }
                // A tree that is missing or damaged loses that snapshot (its
                // transaction rolled back), not the others: the next one is
                // diffed against the last one rebuilt.
                Err(Error::Store(e)) => summary
                    .damaged_snapshots
                    .push(format!("{}: {e}", store.sealing().snapshot_id(bytes).to_hex())),
                Err(e) => return Err(e),
            }
        }
    }
    // The rebuilt index becomes one self-contained file (no WAL beside it),
    // durable under a name of its own before the swap starts: a crash at any
    // point of the swap then leaves either the old index whole, or a
    // complete new one that the next command moves into place.
    let built = root.join(format!("{INDEX_FILE}.built"));
    let _ = fs::remove_file(&built);
    index.vacuum_into(&built)?;
    drop(index);
    fs::File::open(&built)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("syncing", &built, e))?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", tmp.display()));
    }
    robovault_store::storage_op("name the new index");
    let new = root.join(format!("{INDEX_FILE}.new"));
    fs::rename(&built, &new).map_err(|e| Error::io("renaming into place", &new, e))?;
    robovault_store::sync_dir(&root)?;
    crate::repository::local::finish_index_swap(&root)?;
    Ok(summary)
}

/// `repair index` of a remote repository: see [`repair_cached`].
fn repair_remote(url: &robovault_store::S3Url, opts: &RepositoryOptions, lock_wait: Duration) -> Result<RepairSummary> {
    let backend = crate::repository::remote::connect(url, &opts.s3)?;
    let store = crate::repository::keys::open_store(backend, opts).map_err(|e| match e {
        Error::Store(robovault_store::Error::NotFound { .. }) => Error::NotARepository {
            path: PathBuf::from(url.to_string()),
            reason: "it holds no config".into(),
        },
        other => other,
    })?;
    let dir = opts.cache_for(&store.config().id)?;
    repair_cached(opts, &store, &dir, &dir, lock_wait)
}

/// `repair index` where the index is a cache (a remote or a version-2
/// repository): the cached index is dropped and rebuilt from the store
/// alone (pack footers, snapshot objects, markers) by the sync of a fresh
/// open, then published as a new index copy. The writer lock lives in
/// `lock_dir` (the repository's directory, or the cache's for a remote one).
///
/// # Errors
/// Store and index errors; the lock held past `lock_wait`.
fn repair_cached(
    opts: &RepositoryOptions,
    store: &Store,
    lock_dir: &Path,
    cache: &Path,
    lock_wait: Duration,
) -> Result<RepairSummary> {
    let holder = format!("pid {} (repair index)", std::process::id());
    let lock = robovault_store::WriterLock::acquire(lock_dir, &holder, lock_wait)?;
    let remembered = Index::open_as(&cache.join(INDEX_FILE), Access::ReadOnly)
        .and_then(|index| index.meta(crate::repository::keys::ENCRYPTED_META))
        .ok()
        .flatten();
    for suffix in ["", "-wal", "-shm"] {
        let p = cache.join(format!("{INDEX_FILE}{suffix}"));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing", &p, e)),
        }
    }
    let fresh = crate::repository::remote::fresh_index(cache, &store.config().id)?;
    // What the old cache remembered of the repository's encryption
    // survives its rebuild (a downgrade stays refused).
    if let Some(v) = remembered {
        let mut w = fresh.writer()?;
        w.set_meta(crate::repository::keys::ENCRYPTED_META, &v)?;
        w.commit()?;
    }
    drop(fresh);
    drop(lock);
    // Opening syncs the empty index with the store: every pack and snapshot.
    let repo = crate::Repository::open(opts)?;
    crate::repository::remote::publish_index(&repo, crate::repository::remote::Publish::Always)?;
    let index = repo.index()?;
    let snaps = index.snapshots(None)?;
    Ok(RepairSummary {
        packs: index.count_rows("packs")?,
        blobs: index.count_rows("blobs")?,
        snapshots: snaps.len() as u64,
        series: index.all_series()?.len() as u64,
        forgotten: repo.store().backend().list(ObjectKind::Marker)?.len() as u64,
        damaged_packs: Vec::new(),
        damaged_snapshots: Vec::new(),
    })
}

/// Writes the config again for a repository that lost it. Every parameter
/// but the id is fixed in this format version (FORMAT.md, Config); the id is
/// the one the old index records, else the one its snapshot objects name,
/// else a new one (then nothing stored refers to any). Needs the lock.
fn recover_config(root: &Path) -> Result<Store> {
    let backend = crate::repository::local::local_backend(root);
    let mut config = Config::new();
    if let Some(id) = recorded_id(root, &*backend) {
        config.id = id;
    }
    Ok(Store::create(backend, config)?)
}

/// The repository id that the index or, failing it, most snapshot objects
/// record.
fn recorded_id(root: &Path, backend: &dyn robovault_store::Backend) -> Option<String> {
    let valid = |id: &str| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let from_index = Index::open_as(&root.join(INDEX_FILE), Access::ReadOnly)
        .and_then(|index| index.meta("repository"))
        .ok()
        .flatten();
    if let Some(id) = from_index.filter(|id| valid(id)) {
        return Some(id);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for name in backend.list(ObjectKind::Snapshot).ok()? {
        let Ok(id) = SnapshotId::from_hex(&name) else { continue };
        let Ok(bytes) = backend.read(ObjectKind::Snapshot, &name) else {
            continue;
        };
        if let Ok(obj) = SnapshotObject::decode(&id, &bytes) {
            *seen.entry(obj.repository).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|(id, _)| valid(id))
        .max_by_key(|(_, n)| *n)
        .map(|(id, _)| id)
}

fn index_packs(store: &Store, w: &mut Writer, summary: &mut RepairSummary) -> Result<()> {
    for name in store.backend().list(ObjectKind::Pack)? {
        let Ok(id) = PackId::from_hex(&name) else {
            summary.damaged_packs.push(name);
            continue;
        };
        let entries = match store.read_pack_footer(&id) {
            Ok(e) => e,
            Err(_) => {
                summary.damaged_packs.push(name);
                continue;
            }
        };
        let size = store.backend().size(ObjectKind::Pack, &name)?;
        let rows = index_rows(&entries);
        w.add_pack(&pack_hash(&id), size, &rows)?;
        summary.packs += 1;
        summary.blobs += rows.len() as u64;
    }
    Ok(())
}

type Objects = BTreeMap<String, Vec<(Vec<u8>, SnapshotObject)>>;

/// The snapshot objects without a deletion marker, by series, by sequence.
fn snapshot_objects(store: &Store, summary: &mut RepairSummary) -> Result<Objects> {
    let backend = store.backend();
    let markers: std::collections::HashSet<String> = backend.list(ObjectKind::Marker)?.into_iter().collect();
    let mut out: Objects = BTreeMap::new();
    for name in backend.list(ObjectKind::Snapshot)? {
        if markers.contains(&name) {
            summary.forgotten += 1;
            continue;
        }
        let decoded = SnapshotId::from_hex(&name).map_err(Error::from).and_then(|id| {
            let bytes = store.read_snapshot_bytes(&id)?;
            let obj = SnapshotObject::decode_with(store.sealing(), &id, &bytes)?;
            Ok((bytes, obj))
        });
        match decoded {
            Ok((bytes, obj)) if obj.repository == store.config().id => {
                out.entry(obj.series.clone()).or_default().push((bytes, obj));
            }
            _ => summary.damaged_snapshots.push(name),
        }
    }
    for list in out.values_mut() {
        list.sort_by_key(|(_, o)| o.seq);
    }
    Ok(out)
}

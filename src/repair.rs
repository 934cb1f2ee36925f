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

use robovault_index::{Access, Entry, Index, NewSnapshot, PathId, SeriesKey, Writer, ROOT_PATH};
use robovault_store::{
    Config, NodeKind, ObjectKind, PackId, SnapshotId, SnapshotObject, Store, Tree, TreeId, WriterLock,
};

use crate::convert::{index_rows, object_counts, pack_hash, record_row, to_hash, to_pack};
use crate::node::entry_of_tree_node;
use crate::repo::{hostname, INDEX_FILE};
use crate::{Error, Result};

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

/// Rebuilds the index of the repository at `repo_path`.
///
/// # Errors
/// [`Error::NotARepository`] without a config; lock, store and index errors.
pub fn repair_index(repo_path: &Path, lock_wait: Duration) -> Result<RepairSummary> {
    if let Some(url) = repo_path
        .to_str()
        .map(robovault_store::S3Url::parse)
        .transpose()?
        .flatten()
    {
        return crate::remote::repair(url, lock_wait);
    }
    let root = fs::canonicalize(repo_path).map_err(|e| Error::io("resolving", repo_path, e))?;
    crate::repo::check_writable(&root)?;
    let holder = format!("pid {} on host {} (repair index)", std::process::id(), hostname());
    let (store, _lock) = match Store::open(crate::repo::local_backend(&root)) {
        Ok(store) => (store, WriterLock::acquire(&root, &holder, lock_wait)?),
        Err(robovault_store::Error::NotFound { .. }) if root.join("packs").is_dir() => {
            let lock = WriterLock::acquire(&root, &holder, lock_wait)?;
            (recover_config(&root)?, lock)
        }
        Err(robovault_store::Error::NotFound { .. }) => {
            return Err(Error::NotARepository {
                path: root.clone(),
                reason: "it holds no config".into(),
            })
        }
        Err(e) => return Err(e.into()),
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
            match rebuild_snapshot(&store, &index, series, prev, bytes, obj) {
                Ok(()) => {
                    prev = Some((obj.seq, TreeId::from_hex(&obj.root)?));
                    summary.snapshots += 1;
                }
                // A tree that is missing or damaged loses that snapshot (its
                // transaction rolled back), not the others: the next one is
                // diffed against the last one rebuilt.
                Err(Error::Store(e)) => summary
                    .damaged_snapshots
                    .push(format!("{}: {e}", SnapshotId::of(bytes).to_hex())),
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
    finish_index_swap(&root)?;
    Ok(summary)
}

/// Moves a rebuilt index (`index.sqlite.new`, left by `repair index`) into
/// place, if there is one. The old database moves aside whole first, with
/// its WAL, so the new one never meets the old one's WAL. Run under the
/// writer lock; safe to run again after a crash at any point.
///
/// # Errors
/// [`Error::Io`] naming the file that could not be moved.
pub(crate) fn finish_index_swap(root: &Path) -> Result<()> {
    let new = root.join(format!("{INDEX_FILE}.new"));
    if !new.exists() {
        return Ok(());
    }
    let aside = root.join(format!("{INDEX_FILE}.old"));
    for suffix in ["", "-wal", "-shm"] {
        let from = root.join(format!("{INDEX_FILE}{suffix}"));
        let to = PathBuf::from(format!("{}{suffix}", aside.display()));
        robovault_store::storage_op("move aside the old index");
        match fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("moving aside", from, e)),
        }
    }
    robovault_store::sync_dir(root)?;
    robovault_store::storage_op("move the new index into place");
    fs::rename(&new, root.join(INDEX_FILE)).map_err(|e| Error::io("renaming into place", &new, e))?;
    robovault_store::sync_dir(root)?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", aside.display()));
    }
    Ok(())
}

/// Writes the config again for a repository that lost it. Every parameter
/// but the id is fixed in this format version (FORMAT.md, Config); the id is
/// the one the old index records, else the one its snapshot objects name,
/// else a new one (then nothing stored refers to any). Needs the lock.
fn recover_config(root: &Path) -> Result<Store> {
    let backend = crate::repo::local_backend(root);
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
            let bytes = backend.read(ObjectKind::Snapshot, &name)?;
            let obj = SnapshotObject::decode(&id, &bytes)?;
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

fn rfc3339_ns(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

pub(crate) fn rebuild_snapshot(
    store: &Store,
    index: &Index,
    series: SeriesKey,
    prev: Option<(u64, TreeId)>,
    bytes: &[u8],
    obj: &SnapshotObject,
) -> Result<()> {
    let mut w = index.writer()?;
    let key = w.add_snapshot(
        &NewSnapshot {
            snap_id: SnapshotId::of(bytes).to_hex(),
            series,
            seq: obj.seq,
            started_ns: rfc3339_ns(&obj.started),
            ended_ns: rfc3339_ns(&obj.ended),
            parent: obj.parent.clone(),
            root_tree: to_hash(&TreeId::from_hex(&obj.root)?),
            exit_code: obj.exit_code,
            partial: obj.partial,
            counts: object_counts(obj),
            new_data: obj.new_data,
            object: bytes.to_vec(),
        },
        &obj.errors.iter().map(record_row).collect::<Vec<_>>(),
    )?;
    w.mark_published(key)?;
    let mut rebuild = Rebuild {
        store,
        index,
        w,
        series,
        prev_seq: prev.map(|p| p.0),
        seq: obj.seq,
    };
    let root_entry = Entry {
        kind: NodeKind::Dir.code(),
        mode: obj.root_dir.mode,
        uid: obj.root_dir.uid,
        gid: obj.root_dir.gid,
        mtime_sec: obj.root_dir.mtime_sec,
        mtime_nsec: obj.root_dir.mtime_nsec,
        ..Entry::default()
    };
    let prev_root = match rebuild.prev_seq {
        Some(s) => index.version_at(series, ROOT_PATH, s)?,
        None => None,
    };
    match prev_root {
        Some(p) if p.entry.same_version(&root_entry) => {}
        Some(p) => {
            rebuild.w.close_version(p.key, obj.seq)?;
            rebuild.w.open_version(series, ROOT_PATH, obj.seq, &root_entry)?;
        }
        None => {
            rebuild.w.open_version(series, ROOT_PATH, obj.seq, &root_entry)?;
        }
    }
    // A work list of directories, not recursion: trees may be as deep as
    // the filesystem allows.
    let mut pending = vec![(ROOT_PATH, prev.map(|p| p.1), TreeId::from_hex(&obj.root)?)];
    while let Some((path, before, tree)) = pending.pop() {
        rebuild.dir(path, before, tree, &mut pending)?;
    }
    rebuild.w.commit()?;
    Ok(())
}

struct Rebuild<'a> {
    store: &'a Store,
    index: &'a Index,
    w: Writer,
    series: SeriesKey,
    prev_seq: Option<u64>,
    seq: u64,
}

impl Rebuild<'_> {
    fn tree(&self, id: &TreeId) -> Result<Tree> {
        let rec = self
            .index
            .blob(&to_hash(id))?
            .ok_or_else(|| robovault_store::Error::NotFound {
                kind: "tree",
                name: id.to_hex(),
            })?;
        let loc = robovault_store::BlobLocation {
            pack: to_pack(&rec.pack),
            offset: rec.offset,
            stored_len: rec.stored_len,
            raw_len: rec.raw_len,
            compression: robovault_store::Compression::from_code(rec.compression)
                .unwrap_or(robovault_store::Compression::None),
            kind: robovault_store::BlobKind::Tree,
        };
        Ok(self.store.read_tree(id, &loc)?)
    }

    /// Writes the rows of directory `path` whose tree went from `prev` to
    /// `new`; its subdirectories go to `pending`.
    fn dir(
        &mut self,
        path: PathId,
        prev: Option<TreeId>,
        new: TreeId,
        pending: &mut Vec<(PathId, Option<TreeId>, TreeId)>,
    ) -> Result<()> {
        if prev == Some(new) {
            return Ok(());
        }
        let nodes = self.tree(&new)?.nodes;
        let (rows, prev_nodes) = match (self.prev_seq, prev) {
            (Some(s), Some(p)) => (self.index.children_at(self.series, path, s)?, self.tree(&p)?.nodes),
            _ => (Vec::new(), Vec::new()),
        };
        for row in &rows {
            if nodes.binary_search_by(|n| n.name.as_slice().cmp(&row.name)).is_err() {
                self.close_all(row.key, row.path, row.entry.kind)?;
            }
        }
        for node in &nodes {
            let entry = entry_of_tree_node(node);
            let old = rows.iter().find(|r| r.name == node.name);
            let sub = match &node.content {
                robovault_store::NodeContent::Subtree(id) => Some(*id),
                _ => None,
            };
            match old {
                Some(o) if o.entry.kind == entry.kind => {
                    if !o.entry.same_version(&entry) {
                        self.w.close_version(o.key, self.seq)?;
                        self.w.open_version(self.series, o.path, self.seq, &entry)?;
                    }
                    if let Some(sub) = sub {
                        let before = prev_nodes
                            .iter()
                            .find(|n| n.name == node.name)
                            .and_then(|n| match &n.content {
                                robovault_store::NodeContent::Subtree(id) => Some(*id),
                                _ => None,
                            });
                        pending.push((o.path, before, sub));
                    }
                }
                other => {
                    if let Some(o) = other {
                        self.close_all(o.key, o.path, o.entry.kind)?;
                    }
                    let p = self.w.intern_path(path, &node.name)?;
                    self.w.open_version(self.series, p, self.seq, &entry)?;
                    if let Some(sub) = sub {
                        pending.push((p, None, sub));
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes a row and, for a directory, every row below it.
    fn close_all(&mut self, key: robovault_index::VersionKey, path: PathId, kind: u8) -> Result<()> {
        let mut pending = vec![(key, path, kind)];
        while let Some((key, path, kind)) = pending.pop() {
            self.w.close_version(key, self.seq)?;
            if kind == NodeKind::Dir.code() {
                if let Some(s) = self.prev_seq {
                    for c in self.index.children_at(self.series, path, s)? {
                        pending.push((c.key, c.path, c.entry.kind));
                    }
                }
            }
        }
        Ok(())
    }
}

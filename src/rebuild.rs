//! One snapshot object into the index: its snapshot row, run failures and
//! version rows, found by diffing its trees against the series' previous
//! snapshot. Shared by `repair index`, which rebuilds every snapshot, and a
//! remote cache's sync, which adds those other hosts committed.

use robovault_index::{Entry, Index, NewSnapshot, PathId, SeriesKey, Writer, ROOT_PATH};
use robovault_store::{NodeKind, SnapshotObject, Store, Tree, TreeId};

use crate::convert::{object_counts, record_row, to_hash, to_pack};
use crate::node::entry_of_tree_node;
use crate::Result;

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
            snap_id: store.sealing().snapshot_id(bytes).to_hex(),
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

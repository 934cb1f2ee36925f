//! The commit side of a run: the trees of the new snapshot (stored, or
//! carried from the baseline), walked directories closed into nodes and
//! rows, the rows applied to the index, the snapshot
//! object, the index COMMIT and publishing.
//!
//! ```text
//! packer.finish()          # by the caller: every pack durable
//! add snapshot row; COMMIT # FORMAT.md invariant 2: after every pack is durable
//! write snapshot object    # invariant 3: after the commit; healed when it fails
//! ```

use chrono::SecondsFormat;
use robovault_index::{ChildVersion, Entry, Index, NewSnapshot, PathId, RunErrorRow, SnapshotKey, VersionKey};
use robovault_store::{
    crash_point, pause_point, valid_name, BlobKind, NodeContent, NodeKind, RunErrorRecord, SnapshotObject, Tree,
    TreeId, SNAPSHOT_VERSION,
};

use std::path::Path;

use super::classify::{is_dir_entry, row_for, Outcome, RowAction};
use super::moving::Moved;
use super::session::{Baseline, Naming, Recording};
use super::walk::Frame;
use super::MoveMode;
use super::{lock, nanos, BackupSummary, RootDone, Run};
use crate::convert::{to_blob, to_hash};
use crate::job::RunOptions;
use crate::node::{entry_of, make_node, node_of_entry, read_xattrs, SourceMeta};
use crate::report::Reporter;
use crate::repository::local::{PooledIndex, Repository};
use crate::summary::Counts;
use crate::summary::RunError;
use crate::{display_bytes, Error, Result};

/// A committed snapshot, with what its publishing and `--move` need: the
/// writer lock stays held until they are done.
pub(super) struct Committed<'r> {
    pub repo: &'r Repository,
    pub index: PooledIndex<'r>,
    pub key: SnapshotKey,
    pub object: Vec<u8>,
    _lock: robovault_store::WriterLock,
}

/// The snapshot object of a finished walk.
pub(super) fn snapshot_object(
    repo: &Repository,
    naming: &Naming<'_>,
    base: &Baseline,
    root: &RootDone,
    summary: &BackupSummary,
) -> SnapshotObject {
    let counts = summary.counts;
    SnapshotObject {
        version: SNAPSHOT_VERSION,
        repository: repo.store().config().id.clone(),
        series: naming.series.to_owned(),
        host: naming.host.to_owned(),
        source: display_bytes(naming.source),
        seq: base.new_seq,
        started: summary.started.to_rfc3339_opts(SecondsFormat::Nanos, true),
        ended: summary.ended.to_rfc3339_opts(SecondsFormat::Nanos, true),
        parent: summary.parent.clone(),
        root: root.tree.to_hex(),
        root_dir: root.dir.clone(),
        exit_code: summary.exit_code,
        partial: counts.dirs.failed + counts.files.failed > 0,
        dirs: counts.dirs.into(),
        files: counts.files.into(),
        bytes: counts.bytes.into(),
        new_data: summary.new_data,
        errors: summary.errors.iter().map(RunErrorRecord::from).collect(),
    }
}

impl<'r> Recording<'r> {
    /// Records the snapshot in the index and commits the run's transaction:
    /// the snapshot exists from here on. The packs are durable already
    /// (FORMAT.md invariant 2).
    ///
    /// # Errors
    /// An index failure, or the interrupt before the commit.
    pub fn commit(
        self,
        object: &SnapshotObject,
        root: &RootDone,
        base: &Baseline,
        summary: &BackupSummary,
        lost: &[robovault_index::Hash32],
        run: &RunOptions,
    ) -> Result<Committed<'r>> {
        // Taken before the commit: what follows it needs a connection.
        let index = self.repo.index()?;
        let Recording {
            repo,
            writer,
            packer,
            lock,
            ..
        } = self;
        // The packer holds the writer's other reference.
        drop(packer);
        let bytes = object.encode();
        let snap_id = self.repo.store().sealing().snapshot_id(&bytes);
        let mut writer = std::sync::Arc::try_unwrap(writer)
            .map_err(|_| Error::Usage("internal: index writer still shared".into()))?
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        // A lost pack whose every blob this run stored again is no longer the
        // index's: later runs need not look for it.
        for pack in lost {
            writer.delete_pack_if_empty(pack)?;
        }
        let key = writer.add_snapshot(
            &NewSnapshot {
                snap_id: snap_id.to_hex(),
                series: base.series,
                seq: base.new_seq,
                started_ns: nanos(&summary.started),
                ended_ns: nanos(&summary.ended),
                parent: object.parent.clone(),
                root_tree: to_hash(&root.tree),
                exit_code: summary.exit_code,
                partial: object.partial,
                counts: summary.counts.into(),
                new_data: summary.new_data,
                object: bytes.clone(),
            },
            &summary.errors.iter().map(RunErrorRow::from).collect::<Vec<_>>(),
        )?;
        pause_point("before-commit");
        if run.interrupt.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        crash_point("before-commit");
        writer.commit()?;
        crash_point("after-commit");
        Ok(Committed {
            repo,
            index,
            key,
            object: bytes,
            _lock: lock,
        })
    }
}

impl Committed<'_> {
    /// The snapshot's id, known to the summary from the commit on.
    fn snap_id(&self) -> String {
        self.repo.store().sealing().snapshot_id(&self.object).to_hex()
    }

    /// Publishes the snapshot. A failure to is no fatal error (a fatal run
    /// commits no snapshot, ROBOCOPY.md §7.2) but a failure the log names,
    /// with exit bit 8; the next writer publishes it (heal).
    pub fn publish_or_note(&self, summary: &mut BackupSummary, reporter: &dyn Reporter) {
        summary.snapshot = Some(self.snap_id());
        if let Err(e) = publish(self.repo, &self.index, self.key, &self.object) {
            let err = RunError {
                path: Vec::new(),
                action: "Publishing Snapshot".into(),
                code: 0,
                message: format!("{e}; the snapshot is committed, and the next run publishes it"),
                attempts: 1,
            };
            reporter.error(&err, crate::report::Next::NotRetried);
            summary.errors.push(err);
            summary.exit_code |= 8;
        }
    }
}

/// Writes a committed snapshot's object (FORMAT.md invariant 3: after the
/// commit), then, for a remote repository, a
/// new copy of the index.
fn publish(repo: &Repository, index: &Index, key: SnapshotKey, object: &[u8]) -> Result<()> {
    repo.store().write_snapshot(object)?;
    crash_point("after-publish");
    index.mark_published(key)?;
    crate::repository::remote::publish_index(repo, crate::repository::remote::Publish::IfDue)
}

impl Run<'_> {
    /// Stores a directory's tree blob unless stored already.
    pub(super) fn store_tree(&self, bytes: Vec<u8>) -> Result<TreeId> {
        let id = self.blob_id(&bytes);
        self.session
            .store_blob(id, BlobKind::Tree, &bytes, |rec, ix, h| self.reusable(rec, ix, h))?;
        Ok(id)
    }

    pub(super) fn apply(&self, parent: PathId, rows: Vec<RowAction>) -> Result<()> {
        let Some(sink) = self.session.recording() else {
            return Ok(());
        };
        if rows.is_empty() {
            return Ok(());
        }
        let seq = self.base.new_seq;
        for row in rows {
            // Reopening walks the baseline with its own reads; keep the
            // writer's lock only around writes.
            if let RowAction::Reopen { path, entry, subtree } = row {
                self.reopen(sink, path, entry, subtree)?;
                continue;
            }
            let mut w = lock(&sink.writer);
            match row {
                RowAction::Open { path, name, entry } => {
                    let path = match path {
                        Some(p) => p,
                        None => w.intern_path(parent, &name)?,
                    };
                    w.open_version(self.base.series, path, seq, &entry)?;
                }
                RowAction::Replace { old, path, entry } => {
                    if !self.base.fresh {
                        w.close_version(old, seq)?;
                    }
                    w.open_version(self.base.series, path, seq, &entry)?;
                }
                RowAction::Update { old, entry } => w.update_change_info(old, &entry)?,
                RowAction::Close(old) => {
                    if !self.base.fresh {
                        w.close_version(old, seq)?;
                    }
                }
                RowAction::Reopen { .. } => {}
            }
        }
        Ok(())
    }

    /// Copies a carried baseline entry's row, and those of its subtree,
    /// into the new snapshot's series.
    pub(super) fn reopen(&self, sink: &Recording<'_>, path: PathId, entry: Entry, subtree: bool) -> Result<()> {
        let seq = self.base.new_seq;
        // A stack on the heap, as the subtree may be as deep as the
        // filesystem allows.
        let mut todo = vec![(path, entry, subtree)];
        while let Some((path, entry, subtree)) = todo.pop() {
            lock(&sink.writer).open_version(self.base.series, path, seq, &entry)?;
            if subtree {
                for c in self.children(path)? {
                    let dir = is_dir_entry(&c);
                    todo.push((c.path, c.entry, dir));
                }
            }
        }
        Ok(())
    }

    /// Keeps a baseline entry (and its subtree) in the new snapshot as it was.
    pub(super) fn keep(&self, rel: &[u8], b: &ChildVersion, out: &mut Outcome) -> Result<()> {
        out.node = self.carry(&b.name, rel, Some(b))?;
        if self.base.fresh && out.node.is_some() {
            out.rows.push(RowAction::Reopen {
                path: b.path,
                entry: b.entry.clone(),
                subtree: is_dir_entry(b),
            });
        }
        Ok(())
    }

    /// The baseline's node for an entry that is carried into the new
    /// snapshot unchanged (its version row stays open).
    pub(super) fn carry(
        &self,
        name: &[u8],
        rel: &[u8],
        base: Option<&ChildVersion>,
    ) -> Result<Option<robovault_store::Node>> {
        let Some(b) = base else { return Ok(None) };
        let chunks = b.entry.chunks.as_ref().map(|c| c.iter().map(to_blob).collect());
        let subtree = if is_dir_entry(b) {
            self.carried_tree(rel, b)?
        } else {
            None
        };
        Ok(node_of_entry(name, &b.entry, chunks, subtree))
    }

    /// The tree of directory `rel` in the baseline snapshot, found by walking
    /// the baseline's trees from its root.
    pub(super) fn baseline_tree(&self, rel: &[u8]) -> Result<Option<TreeId>> {
        let Some(b) = &self.base.snapshot else { return Ok(None) };
        let mut tree = to_blob(&b.root_tree);
        for part in rel.split(|c| *c == b'/') {
            let t = self.repo()?.read_tree(&tree).inspect_err(|_| {
                if let Some(sink) = self.session.recording() {
                    sink.packs.mark_unreadable(&to_hash(&tree));
                }
            })?;
            match t.nodes.binary_search_by(|n| n.name.as_slice().cmp(part)) {
                Ok(i) => match &t.nodes[i].content {
                    NodeContent::Subtree(id) => tree = *id,
                    _ => return Ok(None),
                },
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(tree))
    }

    /// The tree of a baseline directory carried unchanged. While a pack is
    /// lost the baseline's trees may be among its blobs (and unreadable):
    /// the tree is then built again from the index's rows and stored
    /// where needed, so the new snapshot never points into the lost pack.
    /// So is it when a tree on the way cannot be read (damaged within a
    /// pack of the right size): that tree is stored again when its
    /// directory's tree is written.
    pub(super) fn carried_tree(&self, rel: &[u8], b: &ChildVersion) -> Result<Option<TreeId>> {
        let Some(sink) = self.session.recording() else {
            return self.baseline_tree(rel);
        };
        if !sink.packs.all_present() {
            return self.rebuild_tree(b.path).map(Some);
        }
        match self.baseline_tree(rel) {
            Err(Error::Store(e)) if !matches!(e, robovault_store::Error::Interrupted) => {
                self.reporter.note(&format!(
                    "a tree of the baseline cannot be read ({e}); the tree of {} is built again from the index",
                    crate::display_bytes(rel)
                ));
                self.rebuild_tree(b.path).map(Some)
            }
            other => other,
        }
    }

    /// The baseline's subtree of directory `path`, built from its version
    /// rows, deepest directories first, on a heap stack (a tree may be
    /// deeper than a thread's stack allows recursion).
    pub(super) fn rebuild_tree(&self, path: PathId) -> Result<TreeId> {
        pub(super) struct Frame {
            children: std::vec::IntoIter<ChildVersion>,
            nodes: Vec<robovault_store::Node>,
            /// The directory this frame builds, as its parent lists it.
            dir: Option<ChildVersion>,
        }
        let valid =
            |v: Vec<ChildVersion>| -> Vec<ChildVersion> { v.into_iter().filter(|c| valid_name(&c.name)).collect() };
        let mut stack = vec![Frame {
            children: valid(self.children(path)?).into_iter(),
            nodes: Vec::new(),
            dir: None,
        }];
        loop {
            let top = stack
                .last_mut()
                .ok_or_else(|| Error::Usage("internal: empty tree stack".into()))?;
            if let Some(c) = top.children.next() {
                if is_dir_entry(&c) {
                    let children = valid(self.children(c.path)?).into_iter();
                    stack.push(Frame {
                        children,
                        nodes: Vec::new(),
                        dir: Some(c),
                    });
                } else {
                    let chunks = c.entry.chunks.as_ref().map(|v| v.iter().map(to_blob).collect());
                    top.nodes.extend(node_of_entry(&c.name, &c.entry, chunks, None));
                }
                continue;
            }
            let Some(done) = stack.pop() else { break };
            let mut nodes = done.nodes;
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            let tree = self.store_tree(Tree { nodes }.encode())?;
            match (done.dir, stack.last_mut()) {
                (Some(dir), Some(parent)) => {
                    parent
                        .nodes
                        .extend(node_of_entry(&dir.name, &dir.entry, None, Some(tree)))
                }
                _ => return Ok(tree),
            }
        }
        Err(Error::Usage("internal: empty tree stack".into()))
    }
}

/// Closing a walked directory: its node and its row, for its parent.
impl Run<'_> {
    /// Closes a walked subdirectory whose subdirectories have all closed:
    /// its tree is stored and its rows applied, and its own node and row
    /// go to its parent in the outcome.
    pub(super) fn close_subdir(&self, frame: Frame, rel: &[u8]) -> Result<Outcome> {
        let Frame {
            dir,
            name,
            meta,
            base,
            mut out,
        } = frame;
        let filters = &self.job.filters;
        let (abs, _held) = (dir.abs, dir.held);
        let done = self.seal(dir.path, dir.nodes, dir.rows, dir.counts)?;
        out.counts.add(&done.counts);
        if done.empty && filters.subdirs_only && !(self.job.keep_extras && base.is_some()) {
            // -s: an empty directory is left out (§4.5).
            out.counts.dirs.skipped += 1;
            if let Some(b) = &base {
                self.close_subtree(b, &mut out)?;
            }
            return Ok(out);
        }
        let path = dir.path;
        let base_ref = base.as_ref().map(|b| (b.key, &b.entry));
        let (node, action) = self.dir_record(&name, &abs, &meta, done.tree, path, base_ref, &mut out.counts);
        let action = match (&base, self.base.fresh) {
            (Some(b), true) => Some(RowAction::Open {
                path: Some(b.path),
                name: name.clone(),
                entry: entry_of(&node, &meta),
            }),
            _ => action,
        };
        out.rows.extend(action);
        if self.opts.move_mode == MoveMode::FilesAndDirs {
            lock(&self.moved).push(Moved {
                rel: rel.to_vec(),
                dir: true,
                seen: (meta.dev, meta.ino, meta.mtime, None),
            });
        }
        out.node = Some(node);
        Ok(out)
    }

    /// The node and row change of a walked directory (the root included),
    /// counted New Dir when the baseline lacks it and Skipped otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dir_record(
        &self,
        name: &[u8],
        abs: &Path,
        meta: &SourceMeta,
        tree: TreeId,
        path: PathId,
        base: Option<(VersionKey, &Entry)>,
        counts: &mut Counts,
    ) -> (robovault_store::Node, Option<RowAction>) {
        let xattrs = read_xattrs(abs).unwrap_or_default();
        let node = make_node(
            name,
            meta,
            NodeKind::Dir,
            xattrs,
            &self.names,
            NodeContent::Subtree(tree),
        );
        let entry = entry_of(&node, meta);
        let action = match base {
            None => {
                counts.dirs.copied += 1;
                Some(RowAction::Open {
                    path: Some(path),
                    name: name.to_vec(),
                    entry,
                })
            }
            Some((key, base)) => {
                counts.dirs.skipped += 1;
                if self.base.fresh {
                    Some(RowAction::Open {
                        path: Some(path),
                        name: name.to_vec(),
                        entry,
                    })
                } else {
                    row_for(key, path, base, entry)
                }
            }
        };
        (node, action)
    }
}

//! The directory tasks of a restore: each snapshot directory is read,
//! listed against TARGET and its files restored in parallel; its
//! subdirectories become tasks of their own, and the last task of a
//! directory applies its metadata. From a remote store the small files of
//! a directory are fetched ahead in batches.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rayon::prelude::*;
use robovault_store::{BlobId, Node, NodeContent, NodeKind, Reads, TreeId};
use rustix::fs::AtFlags;

use crate::job::tags;
use crate::paths::child_rel;
use crate::report::{DirLine, Progress};
use crate::summary::{Class, Counts, RunError};
use crate::{Error, Result};

use super::*;

/// A directory whose entries are being restored: what is left to do when
/// the last of them is done. Holds no descriptor (a tree may be deeper than
/// the descriptor limit) and no path (the chain of them would hold paths of
/// every length), only its name under its parent.
pub(super) struct DirDone {
    pub(super) name: Vec<u8>,
    pub(super) parent: Option<Arc<DirDone>>,
    /// Whether it is in TARGET (not so for a new one under `--list-only`).
    pub(super) exists: bool,
    /// Applied after its content, when selected whole and written.
    pub(super) meta: Option<DirMeta>,
    /// Its own task and each subdirectory's not yet done.
    pub(super) pending: AtomicUsize,
}

impl Drop for DirDone {
    // Released one ancestor at a time: a chain of thousands of levels must
    // not be dropped recursively.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(p) = next {
            next = Arc::into_inner(p).and_then(|mut d| d.parent.take());
        }
    }
}

/// A snapshot directory to walk into, as [`RestoreRun::restore_node`] found it.
pub(super) struct Descend {
    pub(super) fd: Option<OwnedFd>,
    pub(super) tree: TreeId,
    pub(super) exists: bool,
    pub(super) meta: Option<DirMeta>,
}

/// Files up to this size are fetched ahead from a remote store.
pub(super) const PREFETCH_FILE: u64 = 4 << 20;

/// Content fetched ahead per batch, at most (memory stays bounded).
pub(super) const PREFETCH_BATCH: u64 = 32 << 20;

/// Splits a directory's files into batches of at most [`PREFETCH_BATCH`]
/// bytes of small files each.
pub(super) fn prefetch_batches<'a>(files: Vec<(&'a Node, &'a Selection)>) -> Vec<Vec<(&'a Node, &'a Selection)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for f in files {
        let size = if f.0.size <= PREFETCH_FILE { f.0.size } else { 0 };
        if bytes + size > PREFETCH_BATCH && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += size;
        cur.push(f);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl RestoreRun<'_> {
    /// Restores the snapshot's tree `tree` into TARGET, its directories as
    /// tasks; returns what they counted.
    pub(super) fn restore_tree(&self, tree: &TreeId, sel: &Selection, new: bool) -> Result<Counts> {
        let root = Arc::new(DirDone {
            name: Vec::new(),
            parent: None,
            exists: self.dirs.root().is_some(),
            meta: None,
            pending: AtomicUsize::new(1),
        });
        let fd = self.dirs.open(b"").ok();
        rayon::scope(|scope| self.walk(scope, root, fd, tree, b"", sel, new));
        if let Some(e) = self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        Ok(*self.counts.lock().unwrap_or_else(|p| p.into_inner()))
    }
    /// Restores directory `rel` (open as `dir`), then hands each of its
    /// subdirectories to a task of its own.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn walk<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        done: Arc<DirDone>,
        dir: Option<Arc<OwnedFd>>,
        tree: &TreeId,
        rel: &[u8],
        sel: &'s Selection,
        new: bool,
    ) {
        let subdirs = match self.restore_dir(dir.as_deref(), tree, rel, sel, new) {
            Ok((counts, subdirs)) => {
                self.add(&counts);
                subdirs
            }
            Err(e) => {
                self.abort(e);
                Vec::new()
            }
        };
        drop(dir);
        // The siblings share their parent's path.
        let parent_rel: Arc<[u8]> = Arc::from(if subdirs.is_empty() { b"" } else { rel });
        // Pushed last first: a worker takes its own tasks back last pushed
        // first, so that one thread walks depth first in name order.
        for (node, s) in subdirs.into_iter().rev() {
            done.pending.fetch_add(1, Ordering::AcqRel);
            let parent = Arc::clone(&done);
            let parent_rel = Arc::clone(&parent_rel);
            scope.spawn(move |scope| self.enter(scope, parent, &parent_rel, node, s));
        }
        drop(parent_rel);
        self.complete(done, rel.to_vec());
    }
    /// The task of subdirectory `node` of `parent` (at `parent_rel`).
    pub(super) fn enter<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        parent: Arc<DirDone>,
        parent_rel: &Arc<[u8]>,
        node: Node,
        sel: &'s Selection,
    ) {
        if self.aborted.load(Ordering::SeqCst) {
            return;
        }
        let dir = if parent.exists {
            match self.dirs.open(parent_rel) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    self.fail(RunError::from_io(parent_rel, "Accessing Destination Directory", &e, 1));
                    // A queued subdirectory, counted as restore_node would
                    // have counted it: in Total as well as FAILED.
                    let mut c = Counts::default();
                    if node.kind == NodeKind::Dir {
                        c.dirs.total += 1;
                    }
                    add_failed(&mut c, &node);
                    self.add(&c);
                    self.complete(parent, parent_rel.to_vec());
                    return;
                }
            }
        } else {
            None
        };
        match self.restore_node(dir.as_deref(), parent_rel, &node, sel) {
            Err(e) => self.abort(e),
            Ok((counts, None)) => self.add(&counts),
            Ok((counts, Some(d))) => {
                self.add(&counts);
                drop(dir);
                let rel = child_rel(parent_rel, &node.name);
                let fd = d.fd.map(Arc::new);
                if let Some(fd) = &fd {
                    self.dirs.keep(&rel, fd);
                }
                let done = Arc::new(DirDone {
                    name: node.name.clone(),
                    parent: Some(Arc::clone(&parent)),
                    exists: fd.is_some(),
                    meta: d.meta,
                    pending: AtomicUsize::new(1),
                });
                // Its own completion completes this task of the parent.
                self.walk(scope, done, fd, &d.tree, &rel, sel, !d.exists);
                return;
            }
        }
        self.complete(parent, parent_rel.to_vec());
    }
    /// One task of directory `done` (at `rel`) is over; when it was the
    /// last, applies the directory's metadata (after its content, which
    /// would change its mtime) and so on up.
    pub(super) fn complete(&self, done: Arc<DirDone>, mut rel: Vec<u8>) {
        let mut cur = done;
        loop {
            if cur.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
                return;
            }
            if let Some(meta) = cur.meta.as_ref().filter(|_| !self.aborted.load(Ordering::SeqCst)) {
                if let Err(e) = self.dirs.open(&rel).and_then(|fd| self.apply_dir_meta(&fd, meta)) {
                    self.fail(RunError::from_io(&rel, "Copying Directory Metadata", &e, 1));
                    let mut c = Counts::default();
                    c.dirs.failed += 1;
                    self.add(&c);
                }
            }
            if !rel.is_empty() {
                self.dirs.forget(&rel);
            }
            let Some(parent) = cur.parent.clone() else { return };
            rel.truncate(rel.len().saturating_sub(cur.name.len() + 1));
            cur = parent;
        }
    }
    /// Restores one directory of the snapshot into `dir` (`None`: it does
    /// not exist, under `--list-only`): its line, its extras, its files.
    /// Returns its selected subdirectories, for the caller to walk.
    pub(super) fn restore_dir<'s>(
        &self,
        dir: Option<&OwnedFd>,
        tree: &TreeId,
        rel: &[u8],
        sel: &'s Selection,
        new: bool,
    ) -> Result<(Counts, Vec<(Node, &'s Selection)>)> {
        if self.opts.run.interrupt.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let mut counts = Counts::default();
        let filters = &self.opts.job.filters;
        let nodes = match self.repo.read_tree(tree) {
            Ok(t) => t.nodes,
            Err(e) => {
                // Damaged repository data fails this directory, not the run.
                self.fail(RunError {
                    path: rel.to_vec(),
                    action: "Reading Repository Data".into(),
                    code: 0,
                    message: e.to_string(),
                    attempts: 1,
                });
                counts.dirs.failed += 1;
                return Ok((counts, Vec::new()));
            }
        };
        let mut existing = dir.map(|d| list_fd(d).unwrap_or_default()).unwrap_or_default();
        if let Some(d) = dir {
            existing.retain(|name| !self.left_by_a_killed_restore(d, name));
        }
        existing.sort();
        let chosen: Vec<(&Node, &'s Selection)> = nodes
            .iter()
            .filter_map(|n| match sel {
                Selection::All => Some((n, &Selection::All)),
                Selection::Some(map) => map.get(&n.name).map(|s| (n, s)),
            })
            .collect();
        let count = chosen
            .iter()
            .filter(|(n, _)| n.kind != NodeKind::Dir && filters.included(&child_rel(rel, &n.name)))
            .count();
        self.reporter.dir(&DirLine {
            rel,
            tag: if new { Class::Lonely.tag(true, true) } else { tags::DIR },
            count: Some(count as i64),
            verbose_only: false,
        });
        let bytes = chosen
            .iter()
            .filter(|(n, _)| n.kind == NodeKind::File && filters.included(&child_rel(rel, &n.name)))
            .map(|(n, _)| n.size)
            .sum();
        self.reporter.progress(Progress::Found {
            files: count as u64,
            bytes,
        });
        if *sel == Selection::All {
            if let Some(d) = dir {
                for name in &existing {
                    if nodes.binary_search_by(|n| n.name.as_slice().cmp(name)).is_err() {
                        self.extra(d, &child_rel(rel, name), name, true, &mut counts)?;
                    }
                }
            }
        }
        let (subdirs, files): (Vec<_>, Vec<_>) = chosen.into_iter().partition(|(n, _)| n.kind == NodeKind::Dir);
        // From a remote store, the files of a directory are fetched a batch
        // at a time, blobs of one pack in one request.
        let batches: Vec<Vec<(&Node, &Selection)>> = if self.repo.store().backend().reads() == Reads::Requests {
            prefetch_batches(files)
        } else {
            vec![files]
        };
        for part in batches {
            let fetched = self.prefetch(dir, &part)?;
            let results: Vec<Counts> = part
                .par_iter()
                .map(|(node, s)| {
                    let (c, _) = self.restore_node(dir, rel, node, s)?;
                    if c.files.total > 0 {
                        self.reporter.progress(Progress::Done { bytes: c.bytes.total });
                    }
                    Ok(c)
                })
                .collect::<Result<_>>()?;
            self.forget_prefetched(&fetched);
            for c in &results {
                counts.add(c);
            }
        }
        let subdirs = subdirs.into_iter().map(|(n, s)| (n.clone(), s)).collect();
        Ok((counts, subdirs))
    }
    /// Fetches the chunks of the batch's files that will be written (absent
    /// from TARGET) with coalesced reads; returns the ids fetched.
    pub(super) fn prefetch(&self, dir: Option<&OwnedFd>, part: &[(&Node, &Selection)]) -> Result<Vec<BlobId>> {
        if self.repo.store().backend().reads() == Reads::Disk || self.opts.job.list_only || self.opts.no_copy {
            return Ok(Vec::new());
        }
        let mut wanted = Vec::new();
        for (node, _) in part {
            let NodeContent::Chunks(chunks) = &node.content else {
                continue;
            };
            let absent = dir.is_none_or(|d| {
                rustix::fs::statat(d, OsStr::from_bytes(&node.name), AtFlags::SYMLINK_NOFOLLOW).is_err()
            });
            if node.kind == NodeKind::File && node.size <= PREFETCH_FILE && absent {
                for id in chunks {
                    // A blob the index cannot place is read (and reported) later.
                    if let Ok(loc) = self.repo.locate(id) {
                        wanted.push((*id, loc));
                    }
                }
            }
        }
        let ids: Vec<BlobId> = wanted.iter().map(|(id, _)| *id).collect();
        let store = self.repo.store();
        let got: Vec<(BlobId, Result<Vec<u8>, robovault_store::Error>)> = robovault_store::Store::coalesce(&wanted)
            .par_iter()
            .flat_map_iter(|run| store.read_run(run))
            .collect();
        let mut map = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
        for (id, data) in got {
            // A blob that failed is read again where it is needed, and its
            // error reported there.
            if let Ok(d) = data {
                map.insert(id, d);
            }
        }
        Ok(ids)
    }
    pub(super) fn forget_prefetched(&self, ids: &[BlobId]) {
        let mut map = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            map.remove(id);
        }
    }
    /// A data blob: prefetched, else read now.
    pub(super) fn blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let hit = self.prefetched.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        match hit {
            Some(d) => Ok(d),
            None => self.repo.read_blob(id),
        }
    }
    /// Whether a snapshot directory holds no file, link or special file at
    /// any depth (an unreadable tree counts as not empty: its failure is
    /// reported where it is restored).
    pub(super) fn empty_subtree(&self, tree: &TreeId) -> bool {
        let mut stack = vec![*tree];
        while let Some(id) = stack.pop() {
            let Ok(t) = self.repo.read_tree(&id) else { return false };
            for n in t.nodes {
                match n.content {
                    NodeContent::Subtree(sub) if n.kind == NodeKind::Dir => stack.push(sub),
                    _ => return false,
                }
            }
        }
        true
    }
}

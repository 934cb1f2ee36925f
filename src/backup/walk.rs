//! The walk: depth first, iteratively (the directories being walked are
//! frames on a stack on the heap, never calls on a thread's stack), files
//! and sibling directories in parallel. Each entry is processed here as
//! `classify` decides: a directory is entered and opened (its line, its
//! extras, its files), a file goes to `read`; a directory whose
//! subdirectories are all done is closed on the commit side.

use std::collections::VecDeque;
use std::fs::{self, Metadata};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use robovault_index::{ChildVersion, PathId, ROOT_PATH};
use robovault_store::{pause_point, valid_name, EncodedNode, NodeKind, RootDir, Tree, TreeId};

use super::classify::{is_dir_entry, is_vanished, Gone, Outcome, RowAction, Seen};
use super::listing::{list_dir, merge, Item, Listing};
use super::read::shorten;
use super::{lock, RootDone, Run};
use crate::job::tags;
use crate::node::SourceMeta;
use crate::paths::child_rel;
use crate::report::{DirLine, EntryLine, Progress};
use crate::retry::Failure;
use crate::summary::{Class, Counts, RunError};
use crate::{Error, Result};

/// A directory whose entries are all done: its tree stored.
pub(super) struct DirDone {
    pub(super) tree: TreeId,
    pub(super) empty: bool,
    pub(super) counts: Counts,
}

/// A directory being walked: listed, its extras and files done, its
/// subdirectories opened a few at a time and closed depth first.
pub(super) struct DirState {
    /// Where it is read, short however deep it lies (see [`shorten`]).
    pub(super) abs: PathBuf,
    /// The descriptor that keeps a shortened `abs` valid.
    pub(super) held: Option<OwnedFd>,
    pub(super) path: PathId,
    /// Subdirectories not opened yet, the next one by name last.
    pub(super) pending: Vec<Item>,
    /// Subdirectories opened and still to walk, in name order.
    pub(super) opened: VecDeque<Box<Frame>>,
    /// The tree's entries and the rows, of the entries done so far.
    pub(super) nodes: Vec<EncodedNode>,
    pub(super) rows: Vec<RowAction>,
    pub(super) counts: Counts,
}

/// A subdirectory being walked, with what its closing needs: its own node
/// and row, which go to its parent.
pub(super) struct Frame {
    pub(super) dir: DirState,
    pub(super) name: Vec<u8>,
    pub(super) meta: SourceMeta,
    pub(super) base: Option<ChildVersion>,
    /// What the entry itself decided before the walk (counts, rows).
    pub(super) out: Outcome,
}

/// A subdirectory selected for the walk, before its listing.
struct Entering {
    name: Vec<u8>,
    meta: SourceMeta,
    base: Option<ChildVersion>,
    out: Outcome,
}

/// What processing one entry gave: its outcome, or a directory to walk.
// Done is every file's step: boxing it would cost an allocation per entry.
#[allow(clippy::large_enum_variant)]
pub(super) enum Step {
    Done(Outcome),
    Open(Box<Frame>),
}

/// Subdirectories of one directory opened together, per thread: enough to
/// keep the threads busy on a wide tree without holding many open at once.
pub(super) const SIBLINGS_PER_THREAD: usize = 16;

/// Files of one directory processed together: their outcomes and rows are
/// held only until the batch is done.
pub(super) const FILE_BATCH: usize = 1024;

pub(super) fn push_name(rel: &mut Vec<u8>, name: &[u8]) {
    if !rel.is_empty() {
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
}

pub(super) fn pop_name(rel: &mut Vec<u8>) {
    let keep = rel.iter().rposition(|c| *c == b'/').unwrap_or(0);
    rel.truncate(keep);
}

impl DirState {
    pub(super) fn is_leaf(&self) -> bool {
        self.pending.is_empty() && self.opened.is_empty()
    }

    pub(super) fn absorb(&mut self, o: Outcome) {
        self.counts.add(&o.counts);
        self.nodes.extend(o.node.as_ref().map(EncodedNode::new));
        self.rows.extend(o.rows);
    }

    pub(super) fn take(&mut self, step: Step) {
        match step {
            Step::Done(o) => self.absorb(o),
            Step::Open(f) => self.opened.push_back(f),
        }
    }
}

impl Run<'_> {
    pub(super) fn process_root(&self, source: &Path, meta: &Metadata) -> Result<RootDone> {
        let meta = SourceMeta::from_metadata(meta);
        let base_root = match &self.base.snapshot {
            Some(b) => self.with_reader(|r| r.version_at(self.base.base_series, ROOT_PATH, b.seq))?,
            None => None,
        };
        // The root is never retried here: an unreadable source root is
        // fatal (ROBOCOPY.md §7.1; `--tbd` waited for it before).
        let listed = list_dir(source).map_err(|e| Error::Source {
            path: source.to_owned(),
            error: e,
        })?;
        let root = self.open_dir((source.to_owned(), None), b"", ROOT_PATH, base_root.is_some(), listed)?;
        let done = self.walk(root)?;
        let mut counts = done.counts;
        counts.dirs.total += 1;
        let base = base_root.as_ref().map(|b| (b.key, &b.entry));
        let (_, action) = self.dir_record(b"", source, &meta, done.tree, ROOT_PATH, base, &mut counts);
        self.apply(ROOT_PATH, action.into_iter().collect())?;
        Ok(RootDone {
            tree: done.tree,
            dir: RootDir {
                mode: meta.mode,
                uid: meta.uid,
                gid: meta.gid,
                mtime_sec: meta.mtime.0,
                mtime_nsec: meta.mtime.1,
            },
            counts,
        })
    }

    /// Lists a subdirectory, retrying per ROBOCOPY.md §7.1 (an unreadable
    /// directory is retried like an unreadable file). The inner error is
    /// the directory's failure, already reported.
    pub(super) fn list_subdir(&self, abs: &Path, rel: &[u8]) -> Result<std::result::Result<Listing, RunError>> {
        // Lets a test remove or swap a directory its parent's listing saw.
        pause_point("before-list");
        self.state.retried(rel, || {
            Ok(list_dir(abs).map_err(|e| Failure::io("Scanning Source Directory", e)))
        })
    }

    /// Opens one directory, listed by the caller: its line, its extras and
    /// its files (ROBOCOPY.md §6.2 order). Its subdirectories are left
    /// pending in the returned state, for [`Run::walk`].
    pub(super) fn open_dir(
        &self,
        (abs, held): (PathBuf, Option<OwnedFd>),
        rel: &[u8],
        path: PathId,
        has_base: bool,
        mut items: Listing,
    ) -> Result<DirState> {
        self.check_interrupt()?;
        let (base, dropped) = self.base_entries(path, has_base)?;
        let extras = merge(&mut items, base);
        if self.job.follow_links {
            if let Ok(m) = fs::metadata(&abs) {
                lock(&self.visited).insert((m.dev(), m.ino()));
            }
            for item in &mut items {
                self.follow(&abs, item);
            }
        }
        self.announce_dir(rel, has_base, &items);
        // Taken out in place: a large directory's entries are not copied.
        let mut pending: Vec<Item> = items
            .extract_if(.., |i| matches!(&i.src, Some(Ok(m)) if m.kind == Some(NodeKind::Dir)))
            .collect();
        // Taken from the end, in name order.
        pending.reverse();
        let mut dir = DirState {
            abs,
            held,
            path,
            pending,
            opened: VecDeque::new(),
            nodes: Vec::new(),
            rows: Vec::new(),
            counts: Counts::default(),
        };
        dir.absorb(dropped);
        for item in extras {
            let step = self.process_item(&dir.abs, rel, path, item)?;
            dir.take(step);
        }
        self.process_files(&mut dir, rel, items)?;
        Ok(dir)
    }

    /// A directory's baseline entries, read in one query. Those with a name
    /// no entry may have (a crafted or damaged index) are never compared,
    /// carried or written into a tree: their rows close, in the outcome.
    // Boxed as read: a large directory's baseline is held once.
    #[allow(clippy::vec_box)]
    fn base_entries(&self, path: PathId, has_base: bool) -> Result<(Vec<Box<ChildVersion>>, Outcome)> {
        let mut base: Vec<Box<ChildVersion>> = Vec::new();
        if has_base {
            let seq = self.base_seq();
            self.with_reader(|r| r.each_child_at(self.base.base_series, path, seq, |c| base.push(Box::new(c))))?;
        }
        let invalid: Vec<_> = base.extract_if(.., |c| !valid_name(&c.name)).collect();
        let mut dropped = Outcome::default();
        for b in &invalid {
            self.close_subtree(b, &mut dropped)?;
        }
        Ok((base, dropped))
    }

    /// A directory's line, with the number of files it selects, and their
    /// bytes as found (ROBOCOPY.md §6.2).
    fn announce_dir(&self, rel: &[u8], has_base: bool, items: &[Item]) {
        let filters = &self.job.filters;
        let count = items
            .iter()
            .filter(|i| {
                matches!(&i.src, Some(Ok(m)) if m.kind != Some(NodeKind::Dir))
                    && filters.included(&child_rel(rel, &i.name))
            })
            .count();
        self.reporter.dir(&DirLine {
            rel,
            tag: if has_base {
                tags::DIR
            } else {
                Class::Lonely.tag(true, true)
            },
            count: Some(count as i64),
            verbose_only: false,
        });
        let bytes = items
            .iter()
            .filter_map(|i| match &i.src {
                Some(Ok(m)) if m.kind == Some(NodeKind::File) && filters.included(&child_rel(rel, &i.name)) => {
                    Some(m.size)
                }
                _ => None,
            })
            .sum();
        self.reporter.progress(Progress::Found {
            files: count as u64,
            bytes,
        });
    }

    /// A directory's files (and other non-directories), in parallel, in
    /// batches, each batch's rows written before the next: what a file
    /// costs until its directory closes is its item and its node.
    fn process_files(&self, dir: &mut DirState, rel: &[u8], mut items: Listing) -> Result<()> {
        let path = dir.path;
        items.reverse();
        while !items.is_empty() {
            let mut batch = items.split_off(items.len().saturating_sub(FILE_BATCH));
            batch.reverse();
            if items.len() < items.capacity() / 2 {
                items.shrink_to_fit();
            }
            let steps: Vec<Step> = batch
                .into_par_iter()
                .map(|item| self.process_item(&dir.abs, rel, path, item))
                .collect::<Result<_>>()?;
            for step in steps {
                dir.take(step);
            }
            self.apply(path, std::mem::take(&mut dir.rows))?;
        }
        Ok(())
    }

    /// Walks the subdirectories below an opened root, depth first. The
    /// directories being walked are frames on a stack on the heap, never
    /// calls on a thread's stack: a frame closes (tree stored, rows applied)
    /// once its last subdirectory has, and its outcome joins its parent's.
    pub(super) fn walk(&self, mut root: DirState) -> Result<DirDone> {
        // With one thread, one subdirectory at a time keeps the log in
        // ROBOCOPY.md §6.2 order; with more, siblings open in parallel.
        let threads = rayon::current_num_threads();
        let width = if threads > 1 { threads * SIBLINGS_PER_THREAD } else { 1 };
        let mut stack: Vec<Box<Frame>> = Vec::new();
        // The relative path of the frame on top.
        let mut rel: Vec<u8> = Vec::new();
        loop {
            let top = match stack.last_mut() {
                Some(f) => &mut f.dir,
                None => &mut root,
            };
            if let Some(child) = top.opened.pop_front() {
                push_name(&mut rel, &child.name);
                stack.push(child);
                continue;
            }
            if !top.pending.is_empty() {
                self.open_siblings(top, &rel, width)?;
                continue;
            }
            let Some(frame) = stack.pop() else {
                return self.seal(root.path, root.nodes, root.rows, root.counts);
            };
            let out = self.close_subdir(*frame, &rel)?;
            pop_name(&mut rel);
            match stack.last_mut() {
                Some(f) => f.dir.absorb(out),
                None => root.absorb(out),
            }
        }
    }

    /// Opens the next subdirectories of `dir` (up to `width`, in parallel);
    /// those without subdirectories of their own close at once.
    pub(super) fn open_siblings(&self, dir: &mut DirState, rel: &[u8], width: usize) -> Result<()> {
        let at = dir.pending.len().saturating_sub(width);
        let mut batch = dir.pending.split_off(at);
        batch.reverse();
        let steps: Vec<Step> = batch
            .into_par_iter()
            .map(|item| match self.process_item(&dir.abs, rel, dir.path, item)? {
                Step::Open(f) if f.dir.is_leaf() => {
                    let child = child_rel(rel, &f.name);
                    Ok(Step::Done(self.close_subdir(*f, &child)?))
                }
                step => Ok(step),
            })
            .collect::<Result<_>>()?;
        for step in steps {
            dir.take(step);
        }
        Ok(())
    }

    /// Stores a directory's tree and applies its rows, once every entry
    /// below it is done.
    pub(super) fn seal(
        &self,
        path: PathId,
        mut nodes: Vec<EncodedNode>,
        rows: Vec<RowAction>,
        counts: Counts,
    ) -> Result<DirDone> {
        nodes.sort_by(|a, b| a.name().cmp(b.name()));
        self.apply(path, rows)?;
        let empty = nodes.is_empty();
        let tree = self.store_tree(Tree::encode_from(&nodes))?;
        Ok(DirDone { tree, empty, counts })
    }

    pub(super) fn process_item(
        &self,
        parent_abs: &Path,
        parent_rel: &[u8],
        parent: PathId,
        item: Item,
    ) -> Result<Step> {
        let abs = parent_abs.join(std::ffi::OsStr::from_bytes(&item.name));
        let rel = child_rel(parent_rel, &item.name);
        let mut out = Outcome::default();
        let base = item.base.map(|b| *b);
        let meta = match item.src {
            None => {
                if let Some(b) = &base {
                    self.base_only(&rel, b, &mut out)?;
                }
                return Ok(Step::Done(out));
            }
            Some(Err(e)) => return self.unlisted(&rel, base.as_ref(), &e, out).map(Step::Done),
            Some(Ok(m)) => m,
        };
        match Seen::of(&meta, item.link) {
            Seen::Cycle => self.cycle(&rel, meta.mtime, base.as_ref(), out).map(Step::Done),
            Seen::Unrecorded => self.unrecorded(&rel, base.as_ref(), out).map(Step::Done),
            Seen::Dir => self.dir_item(&abs, &rel, parent, &item.name, meta, base, out),
            Seen::NonDir { kind, follow } => {
                let counted = out.counts.files.total;
                let out = self.nondir_item(&abs, &rel, &item.name, meta, (kind, follow), base, out)?;
                if out.counts.files.total > counted {
                    self.reporter.progress(Progress::Done {
                        bytes: out.counts.bytes.total,
                    });
                }
                Ok(Step::Done(out))
            }
        }
    }

    /// An entry listed, then gone or unreadable before its `lstat`.
    fn unlisted(
        &self,
        rel: &[u8],
        base: Option<&ChildVersion>,
        e: &std::io::Error,
        mut out: Outcome,
    ) -> Result<Outcome> {
        if !self.job.filters.included(rel) {
            return Ok(out);
        }
        out.counts.files.total += 1;
        if is_vanished(e) {
            return self.vanished(rel, base, Gone::Io(e), false, out);
        }
        out.counts.files.failed += 1;
        self.fail(RunError::from_io(rel, "Copying File", e, 1));
        if let Some(b) = base {
            self.keep(rel, b, &mut out)?;
        }
        Ok(out)
    }

    /// A directory link that would loop: counted as the link it is, 0
    /// bytes, and not recorded.
    fn cycle(&self, rel: &[u8], mtime: (i64, u32), base: Option<&ChildVersion>, mut out: Outcome) -> Result<Outcome> {
        if self.job.filters.included(rel) {
            out.counts.files.total += 1;
            out.counts.files.skipped += 1;
            self.reporter.entry(&EntryLine {
                rel,
                tag: tags::JUNCTION,
                size: 0,
                mtime,
                verbose_only: true,
                full_path: false,
            });
        }
        if let Some(b) = base {
            self.excluded(rel, b, &mut out)?;
        }
        Ok(out)
    }

    /// Sockets are not recorded: Files row, Skipped, no data.
    fn unrecorded(&self, rel: &[u8], base: Option<&ChildVersion>, mut out: Outcome) -> Result<Outcome> {
        if self.job.filters.included(rel) {
            out.counts.files.total += 1;
            out.counts.files.skipped += 1;
        }
        if let Some(b) = base {
            self.base_only(rel, b, &mut out)?;
        }
        Ok(out)
    }

    /// A source directory: walked (its frame returned, for the walk to
    /// open its subdirectories and close it) unless the job leaves it out.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dir_item(
        &self,
        abs: &Path,
        rel: &[u8],
        parent: PathId,
        name: &[u8],
        meta: SourceMeta,
        base: Option<ChildVersion>,
        mut out: Outcome,
    ) -> Result<Step> {
        let filters = &self.job.filters;
        if !filters.within_levels(rel) {
            // Below --lev: not walked, not counted.
            if let Some(b) = &base {
                self.excluded(rel, b, &mut out)?;
            }
            return Ok(Step::Done(out));
        }
        out.counts.dirs.total += 1;
        if filters.dir_excluded(rel) {
            self.skip_dir(rel, tags::NAMED_DIR, &mut out);
            if let Some(b) = &base {
                self.excluded(rel, b, &mut out)?;
            }
            return Ok(Step::Done(out));
        }
        let base = match base {
            Some(b) if !is_dir_entry(&b) => {
                if !self.mismatch(rel, &b, true, 0, meta.mtime, &mut out)? {
                    return Ok(Step::Done(out));
                }
                None
            }
            other => other,
        };
        if base.is_none() && self.job.classes.exclude_lonely {
            self.skip_dir(rel, Class::Lonely.tag(true, false), &mut out);
            return Ok(Step::Done(out));
        }
        let path = match &base {
            Some(b) => b.path,
            None => self.session.intern(parent, name)?,
        };
        let sub = Entering {
            name: name.to_vec(),
            meta,
            base,
            out,
        };
        self.enter(abs, rel, path, sub)
    }

    /// Counts and lists (verbose only) a directory the run does not walk.
    fn skip_dir(&self, rel: &[u8], tag: &'static str, out: &mut Outcome) {
        out.counts.dirs.skipped += 1;
        self.reporter.dir(&DirLine {
            rel,
            tag,
            count: None,
            verbose_only: true,
        });
    }

    /// Lists a selected subdirectory and opens it, its frame returned for
    /// the walk; one that vanished or cannot be read is done here.
    fn enter(&self, abs: &Path, rel: &[u8], path: PathId, mut sub: Entering) -> Result<Step> {
        let (held, short) = shorten(abs);
        let listed = match self.list_subdir(&short, rel)? {
            Ok(listed) => listed,
            Err(err) if is_vanished(&std::io::Error::from_raw_os_error(err.code)) => {
                return self
                    .vanished(rel, sub.base.as_ref(), Gone::Reported(err), true, sub.out)
                    .map(Step::Done)
            }
            Err(err) => {
                sub.out.counts.dirs.failed += 1;
                self.record(err);
                if let Some(b) = &sub.base {
                    self.keep(rel, b, &mut sub.out)?;
                }
                return Ok(Step::Done(sub.out));
            }
        };
        let dir = self.open_dir((short, held), rel, path, sub.base.is_some(), listed)?;
        Ok(Step::Open(Box::new(Frame {
            dir,
            name: sub.name,
            meta: sub.meta,
            base: sub.base,
            out: sub.out,
        })))
    }
}

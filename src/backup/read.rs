//! Acting on a non-directory: its extended attributes and link target, its
//! content read once (small files in one call, larger ones chunked, the
//! next batch read while this one is hashed and compressed), checked
//! against a change during the read, and its chunks stored. Also the
//! descriptor tricks that reach paths longer than `PATH_MAX`.

use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rayon::prelude::*;
use robovault_index::ChildVersion;
use robovault_store::{pause_point, BlobId, BlobKind, Chunker, NodeContent, NodeKind};
use rustix::fs::{Mode, OFlags};

use super::classify::{classify, is_dir_entry, is_vanished, FilePlan, Outcome, RowAction};
use super::moving::Moved;
use super::{lock, MoveMode, Run};
use crate::convert::to_blob;
use crate::job::tags;
use crate::node::{entry_of, make_node, read_xattrs, SourceMeta};
use crate::report::EntryLine;
use crate::retry::{ChangedWhileReading, Failure};
use crate::summary::{Class, RunError};
use crate::Result;

/// Files below this size are read in one call as one chunk, sparing the
/// chunker's buffer (the chunker never cuts below its minimum anyway).
pub(super) const SMALL_FILE: u64 = 256 * 1024;

/// Chunks of one file hashed and compressed in parallel, by total size.
pub(super) const BATCH_BYTES: usize = 4 << 20;

pub(super) struct FileData {
    pub(super) chunks: Vec<BlobId>,
    pub(super) meta: SourceMeta,
}

/// The next chunks of a file, up to about [`BATCH_BYTES`]; empty at the end.
pub(super) fn next_batch<R: Read>(chunker: &mut Chunker<R>) -> std::io::Result<Vec<Vec<u8>>> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while bytes < BATCH_BYTES {
        match chunker.next() {
            Some(chunk) => {
                let chunk = chunk?;
                bytes += chunk.len();
                batch.push(chunk);
            }
            None => break,
        }
    }
    Ok(batch)
}

pub(super) fn changed() -> std::io::Error {
    ChangedWhileReading::io()
}

/// Directory paths from this length on are reached through a descriptor.
pub(super) const LONG_PATH: usize = 2048;

/// A path for a directory that works however deep it lies. Past
/// [`LONG_PATH`] bytes the directory is opened (`O_PATH`, no read right
/// needed) and named `/proc/self/fd/N` while the descriptor is held, so the
/// paths of the entries below it stay far from `PATH_MAX` (4096 bytes);
/// without `/proc` the long path is kept and fails with ENAMETOOLONG.
pub(super) fn shorten(abs: &Path) -> (Option<OwnedFd>, PathBuf) {
    if abs.as_os_str().len() < LONG_PATH {
        return (None, abs.to_owned());
    }
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match rustix::fs::open(abs, flags, Mode::empty()) {
        Ok(fd) => {
            let short = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            if short.is_dir() {
                (Some(fd), short)
            } else {
                (None, abs.to_owned())
            }
        }
        Err(_) => (None, abs.to_owned()),
    }
}

/// A path for `abs` however long, for calls that take a path: past
/// [`LONG_PATH`] bytes its parent is opened piece by piece, each piece
/// below the last, and the entry named `/proc/self/fd/N/<name>` while the
/// descriptor is held. On any failure the long path is kept (and fails
/// with ENAMETOOLONG).
pub(super) fn reach(abs: &Path) -> (Option<OwnedFd>, PathBuf) {
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        return (None, abs.to_owned());
    };
    if abs.as_os_str().len() < LONG_PATH {
        return (None, abs.to_owned());
    }
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut fd: Option<OwnedFd> = None;
    let mut rest = parent.as_os_str().as_bytes();
    while !rest.is_empty() {
        // Cut at a separator: names are at most 255 bytes, so there is one.
        let cut = if rest.len() <= LONG_PATH {
            rest.len()
        } else {
            match rest[..LONG_PATH].iter().rposition(|c| *c == b'/') {
                Some(i) if i > 0 => i,
                _ => return (None, abs.to_owned()),
            }
        };
        let piece = std::ffi::OsStr::from_bytes(&rest[..cut]);
        let opened = match &fd {
            None => rustix::fs::open(piece, flags, Mode::empty()),
            Some(dir) => rustix::fs::openat(dir, piece, flags, Mode::empty()),
        };
        match opened {
            Ok(next) => fd = Some(next),
            Err(_) => return (None, abs.to_owned()),
        }
        rest = &rest[cut..];
        while let [b'/', tail @ ..] = rest {
            rest = tail;
        }
    }
    match fd {
        Some(fd) => {
            let short = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())).join(name);
            (Some(fd), short)
        }
        None => (None, abs.to_owned()),
    }
}

/// Extended attributes, name and value, as read.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// A selected non-directory as the walk listed it.
struct NonDir<'a> {
    abs: &'a Path,
    rel: &'a [u8],
    name: &'a [u8],
    kind: NodeKind,
    /// A symlink `--follow-links` resolved: its target is read.
    follow: bool,
    /// What it adds to the Bytes row's Total before its read: a file's
    /// listed size, else 0.
    listed_size: u64,
    /// The listed mtime, the one its line shows.
    mtime: (i64, u32),
}

impl<'a> NonDir<'a> {
    fn line(&self, tag: &'static str) -> EntryLine<'a> {
        EntryLine {
            rel: self.rel,
            tag,
            size: self.listed_size,
            mtime: self.mtime,
            verbose_only: false,
            full_path: false,
        }
    }
}

impl Run<'_> {
    /// A non-directory: left out by the selection, skipped by its class, or
    /// read (when it may have changed) and recorded.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nondir_item(
        &self,
        abs: &Path,
        rel: &[u8],
        name: &[u8],
        meta: SourceMeta,
        (kind, follow): (NodeKind, bool),
        base: Option<ChildVersion>,
        mut out: Outcome,
    ) -> Result<Outcome> {
        let filters = &self.job.filters;
        if !filters.included(rel) {
            // Not a matching file: not counted, not in the snapshot.
            if let Some(b) = &base {
                if !is_dir_entry(b) {
                    self.report_unselected(rel, b);
                }
                self.left_out(rel, b, &mut out)?;
            }
            return Ok(out);
        }
        let e = NonDir {
            abs,
            rel,
            name,
            kind,
            follow,
            listed_size: if kind == NodeKind::File { meta.size } else { 0 },
            mtime: meta.mtime,
        };
        out.counts.files.total += 1;
        out.counts.bytes.total += e.listed_size;
        let link_to_dir = kind == NodeKind::Symlink && fs::metadata(abs).is_ok_and(|m| m.is_dir());
        let rejected = if filters.file_excluded(rel) {
            Some(tags::NAMED)
        } else {
            filters.reject(rel, &meta, kind, link_to_dir)
        };
        if let Some(tag) = rejected {
            self.skip_file(&e, tag, &mut out);
            if let Some(b) = &base {
                self.left_out(rel, b, &mut out)?;
            }
            return Ok(out);
        }
        let base = match base {
            Some(b) if b.entry.kind != kind.code() => {
                // Mismatched.
                if !self.mismatch(rel, &b, false, e.listed_size, meta.mtime, &mut out)? {
                    return Ok(out);
                }
                None
            }
            other => other,
        };
        self.nondir_compared(&e, meta, base, out)
    }

    /// A baseline entry facing a source non-directory the run leaves out.
    fn left_out(&self, rel: &[u8], b: &ChildVersion, out: &mut Outcome) -> Result<()> {
        if is_dir_entry(b) {
            self.base_only(rel, b, out)
        } else {
            self.excluded(rel, b, out)
        }
    }

    /// Counts and lists (verbose only) a non-directory skipped with `tag`.
    fn skip_file(&self, e: &NonDir<'_>, tag: &'static str, out: &mut Outcome) {
        out.counts.files.skipped += 1;
        out.counts.bytes.skipped += e.listed_size;
        self.reporter.entry(&EntryLine {
            verbose_only: true,
            ..e.line(tag)
        });
    }

    /// A selected non-directory of the baseline's kind (or new): compared
    /// with its baseline entry, then skipped, or read as its class says.
    fn nondir_compared(
        &self,
        e: &NonDir<'_>,
        meta: SourceMeta,
        base: Option<ChildVersion>,
        mut out: Outcome,
    ) -> Result<Outcome> {
        let xattrs = match read_xattrs(e.abs) {
            Ok(x) => x,
            Err(err) => return self.failed_item(e.rel, e.listed_size, base.as_ref(), &err, out),
        };
        let target = if e.kind == NodeKind::Symlink {
            match fs::read_link(e.abs) {
                Ok(t) => Some(t.into_os_string().into_vec()),
                Err(err) => return self.failed_item(e.rel, e.listed_size, base.as_ref(), &err, out),
            }
        } else {
            None
        };
        let classes = &self.job.classes;
        let class = match &base {
            None => Class::Lonely,
            Some(b) => classify(&meta, &xattrs, target.as_deref(), &b.entry, &self.names, classes),
        };
        let class = self.unless_lost(class, e.kind, base.as_ref())?;
        if classes.skips(class) {
            self.skip_file(e, class.tag(false, false), &mut out);
            if let Some(b) = &base {
                self.keep(e.rel, b, &mut out)?;
            }
            return Ok(out);
        }
        let plan = FilePlan::new(class, classes);
        if plan.line_first() {
            self.reporter.entry(&e.line(class.tag(false, true)));
        }
        match self.nondir_content(e, meta, target, &plan, base.as_ref())? {
            Ok((meta, content)) => self.nondir_record(e, (meta, xattrs, content), &plan, base, out),
            Err(err) => self.read_failed(e.rel, e.listed_size, base.as_ref(), err, out),
        }
    }

    /// The content of a non-directory: a file's chunks, read again or (not
    /// read, or listing only) the baseline's, a link's target. A file read
    /// brings the metadata it was read with.
    fn nondir_content(
        &self,
        e: &NonDir<'_>,
        meta: SourceMeta,
        target: Option<Vec<u8>>,
        plan: &FilePlan,
        base: Option<&ChildVersion>,
    ) -> Result<std::result::Result<(SourceMeta, NodeContent), RunError>> {
        let list_only = self.job.list_only;
        if e.kind == NodeKind::File && plan.reread && !list_only {
            // Lets a test change the file between the walk and the read.
            pause_point("before-read");
        }
        let content = match e.kind {
            NodeKind::File if !plan.reread || list_only => {
                let base_chunks = base.and_then(|b| b.entry.chunks.as_ref());
                NodeContent::Chunks(base_chunks.into_iter().flatten().map(to_blob).collect())
            }
            NodeKind::File => {
                let line = (!plan.decided_after).then(|| e.line(plan.class.tag(false, true)));
                return Ok(self
                    .read_file(e.abs, e.rel, &meta, e.follow, line)?
                    .map(|data| (data.meta, NodeContent::Chunks(data.chunks))));
            }
            NodeKind::Symlink => NodeContent::Target(target.unwrap_or_default()),
            _ => NodeContent::None,
        };
        Ok(Ok((meta, content)))
    }

    /// A file whose read failed after its retries: a vanished one leaves
    /// the snapshot (or is Skipped under `--ignore-vanished`), any other
    /// keeps its baseline entry.
    fn read_failed(
        &self,
        rel: &[u8],
        size: u64,
        base: Option<&ChildVersion>,
        err: RunError,
        mut out: Outcome,
    ) -> Result<Outcome> {
        let vanished =
            err.code == rustix::io::Errno::NOENT.raw_os_error() || err.code == rustix::io::Errno::NOTDIR.raw_os_error();
        if vanished && self.job.ignore_vanished {
            out.counts.files.skipped += 1;
            out.counts.bytes.skipped += size;
        } else {
            out.counts.files.failed += 1;
            out.counts.bytes.failed += size;
            self.record(err);
        }
        if let Some(b) = base {
            if vanished {
                self.close_subtree(b, &mut out)?;
            } else {
                self.keep(rel, b, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Records a non-directory that was read (or carried): its node, its
    /// counts (Copied when its content or class says so), its line and its
    /// row; a copied one is moved under `--move-files`.
    fn nondir_record(
        &self,
        e: &NonDir<'_>,
        (meta, xattrs, content): (SourceMeta, Xattrs, NodeContent),
        plan: &FilePlan,
        base: Option<ChildVersion>,
        mut out: Outcome,
    ) -> Result<Outcome> {
        let node = make_node(e.name, &meta, e.kind, xattrs, &self.names, content);
        let entry = entry_of(&node, &meta);
        let base_chunks = base.as_ref().and_then(|b| b.entry.chunks.as_ref());
        let same_content = e.kind != NodeKind::File || entry.chunks.as_ref() == base_chunks;
        let copied = plan.copied(&self.job.classes, same_content);
        // Links and special files count in the Files row with 0 bytes.
        let size = if e.kind == NodeKind::File { node.size } else { 0 };
        out.counts.bytes.total = out.counts.bytes.total - e.listed_size + size;
        if copied {
            out.counts.files.copied += 1;
            out.counts.bytes.copied += size;
            if self.opts.move_mode != MoveMode::Off {
                let file_size = (e.kind == NodeKind::File).then_some(meta.size);
                lock(&self.moved).push(Moved {
                    rel: e.rel.to_vec(),
                    dir: false,
                    seen: (meta.dev, meta.ino, meta.mtime, file_size),
                });
            }
        } else {
            out.counts.files.skipped += 1;
            out.counts.bytes.skipped += size;
        }
        if !plan.line_first() {
            self.reporter.entry(&EntryLine {
                size,
                verbose_only: !copied,
                ..e.line(plan.class.tag(false, copied))
            });
        }
        match &base {
            None => out.rows.push(RowAction::Open {
                path: None,
                name: e.name.to_vec(),
                entry,
            }),
            Some(b) => out.rows.extend(self.row_for(b, entry)),
        }
        out.node = Some(node);
        Ok(out)
    }

    /// Reads, chunks and stores a file, retrying per ROBOCOPY.md §7.1. The
    /// inner error is the file's failure after the retries.
    pub(super) fn read_file(
        &self,
        abs: &Path,
        rel: &[u8],
        meta: &SourceMeta,
        follow: bool,
        line: Option<EntryLine<'_>>,
    ) -> Result<std::result::Result<FileData, RunError>> {
        self.state.timed(rel, line, || {
            Ok(self
                .read_once(abs, meta.size, (meta.dev, meta.ino), follow)?
                .map_err(|e| Failure::io("Copying File", e)))
        })
    }

    /// One attempt at reading a file: opened as listed, read whole or in
    /// chunk batches, its chunks stored, and checked unchanged. The inner
    /// error is this attempt's failure, retried by the caller.
    pub(super) fn read_once(
        &self,
        abs: &Path,
        listed_size: u64,
        listed: (u64, u64),
        follow: bool,
    ) -> Result<std::io::Result<FileData>> {
        let (mut file, before) = match open_listed(abs, listed, follow) {
            Ok(opened) => opened,
            Err(e) => return Ok(Err(e)),
        };
        let size = before.len();
        let chunks = if size < SMALL_FILE && listed_size < SMALL_FILE {
            self.read_small(&mut file, size)?
        } else {
            self.read_chunked(&mut file, size)?
        };
        let chunks = match chunks {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = unchanged_since(&file, abs, &before) {
            return Ok(Err(e));
        }
        self.files_read.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(size, Ordering::Relaxed);
        Ok(Ok(FileData {
            chunks,
            meta: SourceMeta::from_metadata(&before),
        }))
    }

    /// A small file, read in one call as one chunk.
    fn read_small(&self, file: &mut File, size: u64) -> Result<std::io::Result<Vec<BlobId>>> {
        let mut chunks = Vec::new();
        pause_point("mid-read");
        let mut buf = Vec::with_capacity(size as usize + 1);
        if let Err(e) = file.read_to_end(&mut buf) {
            return Ok(Err(e));
        }
        if buf.len() as u64 != size {
            return Ok(Err(changed()));
        }
        if !buf.is_empty() {
            chunks.push(self.store_chunk(&buf)?);
        }
        Ok(Ok(chunks))
    }

    /// A larger file, chunked; reading the next batch overlaps hashing and
    /// compressing this one.
    fn read_chunked(&self, file: &mut File, size: u64) -> Result<std::io::Result<Vec<BlobId>>> {
        let mut chunks = Vec::new();
        let mut chunker = self.repo()?.store().chunker(file)?;
        let mut total = 0u64;
        let mut next = next_batch(&mut chunker);
        // Lets a test change the file while it is being read.
        pause_point("mid-read");
        loop {
            let batch = match next {
                Ok(b) if b.is_empty() => break,
                Ok(b) => b,
                Err(e) => return Ok(Err(e)),
            };
            self.check_interrupt()?;
            total += batch.iter().map(|c| c.len() as u64).sum::<u64>();
            let (stored, read) = rayon::join(|| self.store_batch(&batch), || next_batch(&mut chunker));
            chunks.extend(stored?);
            next = read;
        }
        if total != size {
            return Ok(Err(changed()));
        }
        Ok(Ok(chunks))
    }

    pub(super) fn store_batch(&self, batch: &[Vec<u8>]) -> Result<Vec<BlobId>> {
        batch.par_iter().map(|c| self.store_chunk(c)).collect()
    }

    /// The id of a blob or tree: keyed in an encrypted repository. Under /L
    /// without a repository nothing compares the id, and any will do.
    pub(super) fn blob_id(&self, data: &[u8]) -> BlobId {
        match self.session.repo() {
            Some(repo) => repo.store().blob_id(data),
            None => BlobId::of(data),
        }
    }

    pub(super) fn store_chunk(&self, data: &[u8]) -> Result<BlobId> {
        let id = self.blob_id(data);
        let stored = self
            .session
            .store_blob(id, BlobKind::Data, data, |rec, ix, h| self.reusable(rec, ix, h))?;
        if stored {
            self.new_data.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        Ok(id)
    }
}

/// Opens a file the walk listed, as the regular file it listed (device,
/// inode); returns it with its metadata before the read.
fn open_listed(abs: &Path, listed: (u64, u64), follow: bool) -> std::io::Result<(File, Metadata)> {
    // No link is followed unless --follow-links resolved this one: an
    // entry swapped for a symlink since the walk must not bring another
    // file's content in under this name.
    let flags = if follow { OFlags::empty() } else { OFlags::NOFOLLOW };
    // Non-blocking: an entry swapped for a FIFO since the walk would
    // block the open until a writer came; the fstat below then refuses
    // it. Reads of a regular file ignore the flag.
    let opened = rustix::fs::open(
        abs,
        OFlags::RDONLY | OFlags::NONBLOCK | flags | OFlags::CLOEXEC,
        Mode::empty(),
    );
    let file = match opened {
        Ok(fd) => File::from(fd),
        Err(e) if e == rustix::io::Errno::LOOP => return Err(changed()),
        Err(e) => return Err(e.into()),
    };
    match file.metadata() {
        Ok(m) if m.is_file() && (m.dev(), m.ino()) == listed => Ok((file, m)),
        Ok(_) => Err(changed()),
        Err(e) => Err(e),
    }
}

/// Whether the open file is as it was before its read: still linked, with
/// the same size, mtime and ctime.
fn unchanged_since(file: &File, abs: &Path, before: &Metadata) -> std::io::Result<()> {
    let after = file.metadata()?;
    if after.nlink() == 0 {
        // Deleted while it was read (which moved its ctime too):
        // vanished if nothing took its name, else changed (retried,
        // the new file read).
        return Err(match fs::symlink_metadata(abs) {
            Err(e) if is_vanished(&e) => e,
            _ => changed(),
        });
    }
    // Size, mtime and ctime of the open file before and after: a write
    // during the read moves them (ctime too when the writer then put the
    // mtime back), and the entry recorded must match its content.
    let stat_of = |m: &Metadata| (m.len(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec());
    if stat_of(&after) != stat_of(before) {
        return Err(changed());
    }
    Ok(())
}

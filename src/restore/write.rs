//! Acting: creating and writing entries in TARGET. An entry is made under a
//! temporary name, then renamed over its own (so a killed restore leaves
//! the old entry or the new, never half of one); members of a hard-link
//! group are linked to the first one written; extras are deleted here.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rayon::prelude::*;
use robovault_store::{Node, NodeContent, NodeKind};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::retry::Failure;
use crate::summary::Counts;
use crate::{Error, Result};

use super::*;

/// Chunks of one file decoded in parallel before they are written in order.
pub(super) const RESTORE_WINDOW: usize = 4;

/// Zero runs this long (aligned in the chunk) are sought over, not written.
pub(super) const HOLE: usize = 64 << 10;

/// Writes `data` at the file's position, seeking over all-zero pieces of
/// [`HOLE`] bytes: a sparse file comes back sparse (the filesystem leaves
/// the skipped blocks unallocated), and a dense one is written as before.
pub(super) fn write_sparse(file: &mut File, data: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut pending = 0;
    for (i, piece) in data.chunks(HOLE).enumerate() {
        if piece.iter().all(|b| *b == 0) {
            let at = i * HOLE;
            file.write_all(&data[pending..at])?;
            file.seek(SeekFrom::Current(piece.len() as i64))?;
            pending = at + piece.len();
        }
    }
    file.write_all(&data[pending..])
}

impl RestoreRun<'_> {
    /// Creates the entry under a temporary name, then renames it over `name`.
    /// Members of a hard-link group are written once and linked after: the
    /// group's lock is held from the first member's write to its rename.
    pub(super) fn write_entry(
        &self,
        dir: &OwnedFd,
        rel: &[u8],
        node: &Node,
    ) -> Result<std::result::Result<bool, Failure>> {
        let Some(key) = node.hardlink.filter(|_| node.kind == NodeKind::File) else {
            return self.create_and_rename(dir, node, None);
        };
        let slot = Arc::clone(
            self.links
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key)
                .or_default(),
        );
        let mut first = slot.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.create_and_rename(dir, node, first.as_deref())?;
        if result.is_ok() && first.is_none() {
            *first = Some(rel.to_vec());
        }
        Ok(result)
    }
    pub(super) fn create_and_rename(
        &self,
        dir: &OwnedFd,
        node: &Node,
        link_from: Option<&[u8]>,
    ) -> Result<std::result::Result<bool, Failure>> {
        let tmp = temp_name();
        let tmp_os = OsStr::from_bytes(&tmp);
        let mut guard = TempEntry {
            dir,
            name: tmp.clone(),
            armed: true,
        };
        let mtime = (node.mtime_sec, node.mtime_nsec);
        let made: std::result::Result<(), Failure> = match (&node.kind, &node.content) {
            (NodeKind::File, NodeContent::Chunks(chunks)) => {
                if link_from.is_some_and(|from| self.link_to(from, dir, &tmp)) {
                    Ok(())
                } else {
                    self.write_file(dir, tmp_os, node, chunks)?
                }
            }
            (NodeKind::Symlink, NodeContent::Target(t)) => rustix::fs::symlinkat(OsStr::from_bytes(t), dir, tmp_os)
                .and_then(|_| rustix::fs::utimensat(dir, tmp_os, &times(mtime), AtFlags::SYMLINK_NOFOLLOW))
                .map_err(|e| Failure::io("Copying File", e.into()))
                .and_then(|_| {
                    if self.opts.copy.owner {
                        chown_at_if_permitted(dir, tmp_os, node.uid, node.gid)
                            .map_err(|e| Failure::io("Copying File", e))
                    } else {
                        Ok(())
                    }
                }),
            (NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice, _) => {
                let ft = match node.kind {
                    NodeKind::Fifo => FileType::Fifo,
                    NodeKind::CharDevice => FileType::CharacterDevice,
                    _ => FileType::BlockDevice,
                };
                rustix::fs::mknodat(dir, tmp_os, ft, Mode::from_raw_mode(node.mode), node.rdev as _)
                    .map_err(std::io::Error::from)
                    .and_then(|_| {
                        if self.opts.copy.owner {
                            chown_at_if_permitted(dir, tmp_os, node.uid, node.gid)
                        } else {
                            Ok(())
                        }
                    })
                    .and_then(|_| chmod_nofollow(dir, tmp_os, node.mode))
                    .and_then(|_| {
                        rustix::fs::utimensat(dir, tmp_os, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(std::io::Error::from)
                    })
                    .map_err(|e| Failure::io("Copying File", e))
            }
            _ => Err(Failure::fatal_for_item(
                "Reading Repository Data",
                "entry without its content".into(),
            )),
        };
        if let Err(f) = made {
            return Ok(Err(f));
        }
        robovault_store::crash_point("restore-before-rename");
        if let Err(e) = rustix::fs::renameat(dir, tmp_os, dir, OsStr::from_bytes(&node.name)) {
            return Ok(Err(Failure::io("Copying File", e.into())));
        }
        guard.armed = false;
        Ok(Ok(true))
    }
    /// Links `tmp` in `dir` to the already restored `first` (relative to
    /// TARGET); false when that fails and the content must be written.
    pub(super) fn link_to(&self, first: &[u8], dir: &OwnedFd, tmp: &[u8]) -> bool {
        let (parent, name) = match first.iter().rposition(|c| *c == b'/') {
            Some(i) => (&first[..i], &first[i + 1..]),
            None => (&b""[..], first),
        };
        let Ok(parent_fd) = self.dirs.open(parent) else {
            return false;
        };
        rustix::fs::linkat(
            &parent_fd,
            OsStr::from_bytes(name),
            dir,
            OsStr::from_bytes(tmp),
            AtFlags::empty(),
        )
        .is_ok()
    }
    pub(super) fn write_file(
        &self,
        dir: &OwnedFd,
        tmp: &OsStr,
        node: &Node,
        chunks: &[robovault_store::BlobId],
    ) -> Result<std::result::Result<(), Failure>> {
        let fd = match rustix::fs::openat(
            dir,
            tmp,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => fd,
            Err(e) => return Ok(Err(Failure::io("Copying File", e.into()))),
        };
        let mut file = File::from(fd);
        // Chunks are read, verified and decompressed a few at a time in
        // parallel, then appended in order: a large file is not restored on
        // one core, and the filesystem sees one sequential writer.
        let mut written = 0u64;
        for window in chunks.chunks(RESTORE_WINDOW) {
            if self.opts.run.interrupt.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let decoded: Vec<Result<Vec<u8>>> = window.par_iter().map(|id| self.blob(id)).collect();
            for data in decoded {
                let data = match data {
                    Ok(d) => d,
                    Err(e) => return Ok(Err(Failure::fatal_for_item("Reading Repository Data", e.to_string()))),
                };
                if let Err(e) = write_sparse(&mut file, &data) {
                    return Ok(Err(Failure::io("Copying File", e)));
                }
                written += data.len() as u64;
            }
        }
        // A hole at the end was sought over, not written: set the size.
        if let Err(e) = file.set_len(written) {
            return Ok(Err(Failure::io("Copying File", e)));
        }
        if written != node.size {
            return Ok(Err(Failure::fatal_for_item(
                "Reading Repository Data",
                format!("the chunks hold {written} bytes, the snapshot records {}", node.size),
            )));
        }
        Ok(self
            .finish_file(&file, node)
            .map_err(|e| Failure::io("Copying File", e)))
    }
    pub(super) fn finish_file(&self, file: &File, node: &Node) -> std::io::Result<()> {
        if self.opts.copy.owner {
            chown_if_permitted(file, node.uid, node.gid)?;
        }
        let copy = &self.opts.copy;
        for (k, v) in node.xattrs.iter().filter(|_| !copy.no_xattrs) {
            // User attributes by default, the others with S (ROBOCOPY.md
            // §3.4); a filesystem without them loses nothing else.
            if k.starts_with(b"user.") || copy.security {
                let _ = xattr::FileExt::set_xattr(file, OsStr::from_bytes(k), v);
            }
        }
        // Without A a restored file gets the usual mode of a new file.
        let mode = self.file_mode(if copy.attributes { node.mode } else { 0o644 });
        rustix::fs::fchmod(file, Mode::from_raw_mode(mode))?;
        if copy.times {
            rustix::fs::futimens(file, &times((node.mtime_sec, node.mtime_nsec)))?;
        }
        Ok(())
    }
    /// Deletes one TARGET entry (a directory already emptied), retried; a
    /// failure counts in FAILED only (§4.6).
    pub(super) fn delete(
        &self,
        dir: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        is_dir: bool,
        counts: &mut Counts,
    ) -> Result<bool> {
        let flags = if is_dir { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        let action = if is_dir {
            "Deleting Extra Directory"
        } else {
            "Deleting Extra File"
        };
        let r = self.timed(rel, None, || {
            match rustix::fs::unlinkat(dir, OsStr::from_bytes(name), flags) {
                Ok(()) => Ok(Ok(())),
                Err(e) if e == rustix::io::Errno::NOENT => Ok(Ok(())),
                Err(e) => Ok(Err(Failure::io(action, e.into()))),
            }
        })?;
        match r {
            Ok(()) => Ok(true),
            Err(err) => {
                self.record(err);
                if is_dir {
                    counts.dirs.failed += 1;
                } else {
                    counts.files.failed += 1;
                }
                Ok(false)
            }
        }
    }
}

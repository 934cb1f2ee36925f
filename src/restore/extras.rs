//! TARGET entries the snapshot lacks (ROBOCOPY.md §5.2): counted and
//! reported with everything in scope below them, and deleted under
//! `--purge` unless they are the protected repository. A directory of
//! extras is walked with a list of levels, not a call per level.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use robovault_store::NodeKind;
use rustix::fs::AtFlags;

use crate::paths::child_rel;
use crate::report::{DirLine, EntryLine};
use crate::summary::{Class, Counts, RunError};
use crate::Result;

use super::*;

/// What [`RestoreRun::extra_entry`] leaves to do.
pub(super) enum ExtraStep {
    /// Nothing more: whether the entry is gone.
    Done(bool),
    /// An extra directory in scope: walk its entries.
    Enter,
}

impl RestoreRun<'_> {
    /// A TARGET entry the snapshot lacks: counted and reported with all in
    /// scope below it; deleted under `--purge` unless protected (§5.2).
    /// Returns whether the entry is gone (or would be, under `--list-only`).
    pub(super) fn extra(&self, dir: &OwnedFd, rel: &[u8], name: &[u8], top: bool, counts: &mut Counts) -> Result<bool> {
        if let ExtraStep::Done(gone) = self.extra_entry(dir, rel, name, top, counts)? {
            return Ok(gone);
        }
        // An extra directory, walked depth first with a list of the levels
        // open in the walk (names left, whether all so far are gone), not a
        // call per level: it may be as deep as the filesystem allows.
        struct Level {
            names: std::vec::IntoIter<Vec<u8>>,
            all_gone: bool,
            parent_len: usize,
        }
        let listed = |path: &[u8]| -> Level {
            let mut names = self.dirs.open(path).and_then(|fd| list_fd(&fd)).unwrap_or_default();
            names.sort();
            Level {
                names: names.into_iter(),
                all_gone: true,
                parent_len: path.iter().rposition(|c| *c == b'/').unwrap_or(0),
            }
        };
        let mut path = rel.to_vec();
        let mut levels = vec![listed(&path)];
        while let Some(level) = levels.last_mut() {
            if let Some(child) = level.names.next() {
                let child_path = child_rel(&path, &child);
                let step = match self.dirs.open(&path) {
                    Ok(fd) => self.extra_entry(&fd, &child_path, &child, false, counts)?,
                    Err(_) => ExtraStep::Done(false),
                };
                match step {
                    ExtraStep::Done(gone) => level.all_gone &= gone,
                    ExtraStep::Enter => {
                        path = child_path;
                        levels.push(listed(&path));
                    }
                }
                continue;
            }
            let (all_gone, parent_len) = (level.all_gone, level.parent_len);
            levels.pop();
            let gone = self.extra_dir_emptied(&path, all_gone, counts)?;
            path.truncate(parent_len);
            match levels.last_mut() {
                Some(up) => up.all_gone &= gone,
                None => return Ok(gone),
            }
        }
        Ok(false)
    }
    /// An extra directory whose entries were all walked: deleted when
    /// purging and all of them are gone. Returns whether it is gone.
    pub(super) fn extra_dir_emptied(&self, rel: &[u8], all_gone: bool, counts: &mut Counts) -> Result<bool> {
        let purge = self.opts.job.purge && !self.opts.job.classes.exclude_extra;
        if !purge || !all_gone {
            return Ok(false);
        }
        if !self.writes() {
            return Ok(true);
        }
        let (parent, name) = match rel.iter().rposition(|c| *c == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&b""[..], rel),
        };
        let parent_fd = match self.dirs.open(parent) {
            Ok(fd) => fd,
            Err(e) => {
                self.fail(RunError::from_io(rel, "Deleting Extra Directory", &e, 1));
                counts.dirs.failed += 1;
                return Ok(false);
            }
        };
        let gone = self.delete(&parent_fd, rel, name, true, counts)?;
        if gone {
            self.dirs.forget(rel);
        }
        Ok(gone)
    }
    /// One TARGET entry the snapshot lacks, as [`RestoreRun::extra`] says;
    /// an extra directory in scope is counted and reported, and its entries
    /// are left to the caller.
    pub(super) fn extra_entry(
        &self,
        dir: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        top: bool,
        counts: &mut Counts,
    ) -> Result<ExtraStep> {
        let Ok(st) = rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW) else {
            return Ok(ExtraStep::Done(false));
        };
        let is_dir = kind_of(&st) == Some(NodeKind::Dir);
        if self.opts.job.report_all_extras && !is_dir && !self.opts.job.filters.included(rel) {
            self.reporter.entry(&EntryLine {
                rel,
                tag: Class::Extra.tag(false, false),
                size: st.st_size as u64,
                mtime: stat_mtime(&st),
                verbose_only: false,
                full_path: true,
            });
        }
        if !self.extra_in_scope(rel, is_dir) || (top && self.opts.job.classes.exclude_extra) {
            if self.opts.job.purge && self.protected.as_deref() != Some(rel) && !top {
                // A protected entry inside a purged directory: kept, reported under -v.
                self.reporter.entry(&EntryLine {
                    rel,
                    tag: if is_dir { "  *named dir" } else { " *named file" },
                    size: if is_dir { 0 } else { st.st_size as u64 },
                    mtime: stat_mtime(&st),
                    verbose_only: true,
                    full_path: true,
                });
            }
            return Ok(ExtraStep::Done(false));
        }
        let purge = self.opts.job.purge && !self.opts.job.classes.exclude_extra;
        if is_dir {
            counts.dirs.extras += 1;
            self.reporter.dir(&DirLine {
                rel,
                tag: Class::Extra.tag(true, false),
                count: Some(-1),
                verbose_only: false,
            });
            return Ok(ExtraStep::Enter);
        }
        let size = if kind_of(&st) == Some(NodeKind::File) {
            st.st_size as u64
        } else {
            0
        };
        counts.files.extras += 1;
        counts.bytes.extras += size;
        self.reporter.entry(&EntryLine {
            rel,
            tag: Class::Extra.tag(false, false),
            size,
            mtime: stat_mtime(&st),
            verbose_only: false,
            full_path: true,
        });
        if !purge {
            return Ok(ExtraStep::Done(false));
        }
        if !self.writes() {
            return Ok(ExtraStep::Done(true));
        }
        self.delete(dir, rel, name, false, counts).map(ExtraStep::Done)
    }
}

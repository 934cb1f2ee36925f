//! One snapshot entry: what the selection and the job's classes make of it,
//! then its placement in TARGET (written, tweaked, skipped, or a directory
//! opened for the walk).

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use robovault_store::{valid_name, Node, NodeContent, NodeKind};
use rustix::fs::{AtFlags, Mode, Stat};

use crate::job::tags;
use crate::paths::child_rel;
use crate::report::{DirLine, EntryLine};
use crate::retry::Failure;
use crate::summary::{Class, Counts, RunError};
use crate::Result;

use super::*;

impl RestoreRun<'_> {
    /// Restores one entry into `dir`; a directory to walk into is returned,
    /// opened (or created), not walked.
    pub(super) fn restore_node(
        &self,
        dir: Option<&OwnedFd>,
        parent_rel: &[u8],
        node: &Node,
        sel: &Selection,
    ) -> Result<(Counts, Option<Descend>)> {
        let rel = child_rel(parent_rel, &node.name);
        let mut counts = Counts::default();
        if !self.selected(&rel, node, &mut counts) {
            return Ok((counts, None));
        }
        if !valid_name(&node.name) {
            let err = RunError {
                path: rel.clone(),
                action: "Reading Repository Data".into(),
                code: 0,
                message: "invalid entry name in the snapshot".into(),
                attempts: 1,
            };
            self.fail(err);
            add_failed(&mut counts, node);
            return Ok((counts, None));
        }
        let Some(existing) = self.existing(dir, &rel, node, &mut counts) else {
            return Ok((counts, None));
        };
        let mut class = match &existing {
            None => Class::Lonely,
            Some(st) if kind_of(st) != Some(node.kind) => Class::Mismatched,
            Some(st) => match dir {
                Some(d) => self.classify(node, st, d),
                None => Class::Lonely,
            },
        };
        let mut exists = existing.is_some();
        if class == Class::Mismatched {
            if !self.clear_mismatch(dir, &rel, node, &mut counts)? {
                return Ok((counts, None));
            }
            class = Class::Lonely;
            exists = false;
        }
        if node.kind == NodeKind::Dir {
            if class == Class::Lonely && self.opts.job.classes.exclude_lonely {
                counts.dirs.skipped += 1;
                return Ok((counts, None));
            }
            return self.restore_subdir(dir, &rel, node, sel, exists, counts);
        }
        self.restore_nondir(dir, &rel, node, class, &mut counts)?;
        Ok((counts, None))
    }

    /// Whether the entry is selected (counting and reporting it when not):
    /// the repository a forced mirror protects, `/LEV`, and the filters.
    fn selected(&self, rel: &[u8], node: &Node, counts: &mut Counts) -> bool {
        let is_dir = node.kind == NodeKind::Dir;
        let filters = &self.opts.job.filters;
        if self.protected.as_deref() == Some(rel) {
            // The repository inside a forced mirror's TARGET: never entered,
            // written or deleted, whatever the snapshot holds there (§5.4).
            let row = if is_dir { &mut counts.dirs } else { &mut counts.files };
            row.total += 1;
            row.skipped += 1;
            self.reporter.dir(&DirLine {
                rel,
                tag: "  *named dir",
                count: None,
                verbose_only: true,
            });
            return false;
        }
        if is_dir {
            if !filters.within_levels(rel) {
                return false;
            }
            counts.dirs.total += 1;
            if filters.dir_excluded(rel) {
                counts.dirs.skipped += 1;
                self.reporter.dir(&DirLine {
                    rel,
                    tag: tags::NAMED_DIR,
                    count: None,
                    verbose_only: true,
                });
                return false;
            }
            return true;
        }
        if !filters.included(rel) {
            return false;
        }
        let size = file_bytes(node);
        counts.files.total += 1;
        counts.bytes.total += size;
        let rejected = if filters.file_excluded(rel) {
            Some(tags::NAMED)
        } else {
            filters.reject(rel, &meta_of_node(node), node.kind, false)
        };
        let Some(tag) = rejected else { return true };
        counts.files.skipped += 1;
        counts.bytes.skipped += size;
        self.reporter.entry(&EntryLine {
            rel,
            tag,
            size,
            mtime: (node.mtime_sec, node.mtime_nsec),
            verbose_only: true,
            full_path: false,
        });
        false
    }

    /// What TARGET holds under the entry's name (`Some(None)`: nothing);
    /// `None` when that cannot be told, the failure counted.
    fn existing(&self, dir: Option<&OwnedFd>, rel: &[u8], node: &Node, counts: &mut Counts) -> Option<Option<Stat>> {
        let name = OsStr::from_bytes(&node.name);
        match dir.map(|d| rustix::fs::statat(d, name, AtFlags::SYMLINK_NOFOLLOW)) {
            None => Some(None),
            Some(Ok(st)) => Some(Some(st)),
            Some(Err(e)) if e == rustix::io::Errno::NOENT => Some(None),
            Some(Err(e)) => {
                self.fail(RunError::from_io(rel, "Accessing Destination Directory", &e.into(), 1));
                add_failed(counts, node);
                None
            }
        }
    }

    /// A target entry of another kind: under `/PURGE` it leaves as an extra
    /// (a link itself, never its target) and the snapshot's entry comes in
    /// as Lonely (true); otherwise it stays, reported (false).
    fn clear_mismatch(&self, dir: Option<&OwnedFd>, rel: &[u8], node: &Node, counts: &mut Counts) -> Result<bool> {
        let purge = self.opts.job.purge && !self.opts.job.classes.exclude_extra;
        if !purge {
            self.mismatch_left(rel, node, counts);
            return Ok(false);
        }
        let Some(d) = dir else { return Ok(false) };
        let failed_before = counts.dirs.failed + counts.files.failed;
        if self.extra(d, rel, &node.name, false, counts)? {
            return Ok(true);
        }
        if counts.dirs.failed + counts.files.failed > failed_before {
            // The deletion is reported and counted (FAILED only); the
            // snapshot's entry could not be placed: FAILED too.
            add_failed(counts, node);
        } else {
            // A protected entry (or one holding protected entries) stays:
            // the pair is a mismatch, reported, no error (§5.2).
            self.mismatch_left(rel, node, counts);
        }
        Ok(false)
    }

    /// A file, link or special file of the given class: decided, reported,
    /// then written (or its metadata applied) and counted.
    fn restore_nondir(
        &self,
        dir: Option<&OwnedFd>,
        rel: &[u8],
        node: &Node,
        class: Class,
        counts: &mut Counts,
    ) -> Result<()> {
        let size = file_bytes(node);
        let plan = self.plan(class, node);
        let copied = plan == Plan::Write;
        let line = EntryLine {
            rel,
            tag: class.tag(false, copied),
            size,
            mtime: (node.mtime_sec, node.mtime_nsec),
            verbose_only: !copied,
            full_path: false,
        };
        self.reporter.entry(&line);
        let result = match (plan, dir, self.writes()) {
            (Plan::Skip, ..) | (_, None, _) | (_, _, false) => Ok(()),
            (Plan::Meta, Some(d), true) => self.timed(rel, Some(line), || Ok(self.apply_meta_at(d, node)))?,
            (Plan::Write, Some(d), true) => self.timed(rel, Some(line), || {
                self.write_entry(d, rel, node).map(|r| r.map(|_| ()))
            })?,
        };
        match result {
            Ok(()) if copied => {
                counts.files.copied += 1;
                counts.bytes.copied += size;
            }
            Ok(()) => {
                counts.files.skipped += 1;
                counts.bytes.skipped += size;
            }
            Err(err) => {
                self.record(err);
                counts.files.failed += 1;
                counts.bytes.failed += size;
            }
        }
        Ok(())
    }

    /// What a non-directory of `class` gets: written, its metadata only, or
    /// nothing (ROBOCOPY.md §4.2 and the class switches).
    fn plan(&self, class: Class, node: &Node) -> Plan {
        let classes = &self.opts.job.classes;
        if classes.skips(class) || self.opts.no_copy {
            return Plan::Skip;
        }
        match class {
            Class::Same if classes.include_same => Plan::Write,
            Class::Same => Plan::Skip,
            Class::Tweaked if classes.include_tweaked => Plan::Write,
            // Special files are re-created: opening a device node may act.
            Class::Tweaked if matches!(node.kind, NodeKind::File | NodeKind::Symlink) => Plan::Meta,
            _ => Plan::Write,
        }
    }

    /// A snapshot entry facing a target entry of another kind that stays:
    /// counted in Mismatch and reported with its full path.
    pub(super) fn mismatch_left(&self, rel: &[u8], node: &Node, counts: &mut Counts) {
        let is_dir = node.kind == NodeKind::Dir;
        let size = file_bytes(node);
        if is_dir {
            counts.dirs.mismatch += 1;
        } else {
            counts.files.mismatch += 1;
            counts.bytes.mismatch += size;
        }
        self.reporter.entry(&EntryLine {
            rel,
            tag: Class::Mismatched.tag(is_dir, false),
            size,
            mtime: (node.mtime_sec, node.mtime_nsec),
            verbose_only: false,
            full_path: true,
        });
    }
    pub(super) fn restore_subdir(
        &self,
        dir: Option<&OwnedFd>,
        rel: &[u8],
        node: &Node,
        sel: &Selection,
        exists: bool,
        mut counts: Counts,
    ) -> Result<(Counts, Option<Descend>)> {
        let NodeContent::Subtree(tree) = &node.content else {
            self.fail(RunError {
                path: rel.to_vec(),
                action: "Reading Repository Data".into(),
                code: 0,
                message: "directory without a tree".into(),
                attempts: 1,
            });
            counts.dirs.failed += 1;
            return Ok((counts, None));
        };
        let name = OsStr::from_bytes(&node.name);
        if !exists && self.opts.job.filters.subdirs_only && self.empty_subtree(tree) {
            // -s: a directory with no entry beneath it is not created (§4.5).
            counts.dirs.skipped += 1;
            return Ok((counts, None));
        }
        let sub = match dir {
            Some(d) if exists || self.writes() => {
                let opened = self.timed(rel, None, || {
                    if !exists {
                        // Whatever was kept open under this name is gone.
                        self.dirs.forget(rel);
                        match rustix::fs::mkdirat(d, name, Mode::from_raw_mode(0o700)) {
                            Ok(()) => {}
                            Err(e) if e == rustix::io::Errno::EXIST => {}
                            Err(e) => return Ok(Err(Failure::io("Creating Destination Directory", e.into()))),
                        }
                    }
                    Ok(open_dir_at(d, &node.name).map_err(|e| Failure::io("Creating Destination Directory", e)))
                })?;
                match opened {
                    Ok(fd) => Some(fd),
                    Err(err) => {
                        self.record(err);
                        counts.dirs.failed += 1;
                        return Ok((counts, None));
                    }
                }
            }
            _ => None,
        };
        if exists {
            counts.dirs.skipped += 1;
        } else {
            counts.dirs.copied += 1;
        }
        let meta = (*sel == Selection::All && sub.is_some() && self.writes()).then_some(DirMeta {
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            mtime: (node.mtime_sec, node.mtime_nsec),
        });
        let descend = Descend {
            fd: sub,
            tree: *tree,
            exists,
            meta,
        };
        Ok((counts, Some(descend)))
    }
}

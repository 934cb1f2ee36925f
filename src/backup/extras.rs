//! Baseline entries the source lacks or the run does not select: extras
//! counted and reported (`/MIR`, `/PURGE`: their rows close), kept under
//! `--keep-extras` and `/XX`, or excluded (ROBOCOPY.md §1, §4.5, §4.6).

use robovault_index::ChildVersion;
use robovault_store::NodeKind;

use super::classify::{is_dir_entry, Outcome, RowAction};
use super::Run;
use crate::paths::child_rel;
use crate::report::{DirLine, EntryLine};
use crate::summary::Class;
use crate::Result;

impl Run<'_> {
    /// Drops a baseline entry the run did not select (§1 "Excluded"), or
    /// keeps it under `--keep-extras`.
    pub(super) fn excluded(&self, rel: &[u8], b: &ChildVersion, out: &mut Outcome) -> Result<()> {
        if self.job.carries_unselected() {
            return self.keep(rel, b, out);
        }
        self.close_subtree(b, out)
    }

    /// Closes the rows of a baseline entry and of everything below it.
    pub(super) fn close_subtree(&self, b: &ChildVersion, out: &mut Outcome) -> Result<()> {
        if self.base.fresh || self.session.recording().is_none() {
            return Ok(());
        }
        // A stack on the heap: a baseline subtree may be as deep as the
        // filesystem allows.
        let mut todo = vec![(b.key, b.path, is_dir_entry(b))];
        while let Some((key, path, dir)) = todo.pop() {
            out.rows.push(RowAction::Close(key));
            if dir {
                todo.extend(self.children(path)?.iter().map(|c| (c.key, c.path, is_dir_entry(c))));
            }
        }
        Ok(())
    }

    /// A baseline entry the source lacks: an extra when in scope, else
    /// excluded (§4.5).
    pub(super) fn base_only(&self, rel: &[u8], b: &ChildVersion, out: &mut Outcome) -> Result<()> {
        let filters = &self.job.filters;
        let in_scope = if is_dir_entry(b) {
            filters.dir_in_scope(rel)
        } else {
            filters.file_in_scope(rel)
        };
        if !in_scope {
            if !is_dir_entry(b) && !filters.included(rel) {
                self.report_unselected(rel, b);
            }
            return self.excluded(rel, b, out);
        }
        if self.job.classes.exclude_extra {
            // Ignored: not reported, not counted, carried.
            return self.keep(rel, b, out);
        }
        self.count_extras(rel, b, true, out)?;
        if self.job.keep_extras {
            self.keep(rel, b, out)
        } else {
            self.close_subtree(b, out)
        }
    }

    /// `--report-all-extras` (`/X`): a baseline file the include filespecs
    /// leave out is listed as an extra, uncounted.
    pub(super) fn report_unselected(&self, rel: &[u8], b: &ChildVersion) {
        if self.job.report_all_extras {
            self.report_extra(rel, b, b.entry.size);
        }
    }

    /// Counts and reports a baseline entry the source lacks, and every entry
    /// in scope below it (§4.6), depth first in name order.
    pub(super) fn count_extras(&self, rel: &[u8], b: &ChildVersion, in_scope: bool, out: &mut Outcome) -> Result<()> {
        if !in_scope {
            return Ok(());
        }
        // Entries still to report, the next one last: a stack on the heap,
        // as a baseline subtree may be as deep as the filesystem allows.
        let mut todo = vec![(rel.to_vec(), b.clone())];
        while let Some((rel, b)) = todo.pop() {
            if !is_dir_entry(&b) {
                self.count_extra_file(&rel, &b, out);
                continue;
            }
            out.counts.dirs.extras += 1;
            self.reporter.dir(&DirLine {
                rel: &rel,
                tag: Class::Extra.tag(true, false),
                count: Some(-1),
                verbose_only: false,
            });
            let at = todo.len();
            for c in self.children(b.path)? {
                let child = child_rel(&rel, &c.name);
                let scope = if is_dir_entry(&c) {
                    self.job.filters.dir_in_scope(&child)
                } else {
                    self.job.filters.file_in_scope(&child)
                };
                if scope {
                    todo.push((child, c));
                }
            }
            todo[at..].reverse();
        }
        Ok(())
    }

    pub(super) fn count_extra_file(&self, rel: &[u8], b: &ChildVersion, out: &mut Outcome) {
        let size = if b.entry.kind == NodeKind::File.code() {
            b.entry.size
        } else {
            0
        };
        out.counts.files.extras += 1;
        out.counts.bytes.extras += size;
        self.report_extra(rel, b, size);
    }

    /// Lists a baseline entry as an extra file: always shown, with its
    /// full path.
    fn report_extra(&self, rel: &[u8], b: &ChildVersion, size: u64) {
        self.reporter.entry(&EntryLine {
            rel,
            tag: Class::Extra.tag(false, false),
            size,
            mtime: (b.entry.mtime_sec, b.entry.mtime_nsec),
            verbose_only: false,
            full_path: true,
        });
    }
}

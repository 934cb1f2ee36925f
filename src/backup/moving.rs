//! `--move-files` (`/MOV`) and `--move` (`/MOVE`): once the snapshot is
//! committed, the source files it copied are deleted, then (`--move`) the
//! directories left empty, deepest first, never the root (ROBOCOPY.md §4.8).
//! Only what was backed up is deleted: an entry changed since its read stays,
//! and fails the move.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use robovault_index::RunErrorRow;

use super::commit::Committed;
use super::read::reach;
use super::{BackupOptions, BackupSummary, MoveMode};
use crate::node::SourceMeta;
use crate::report::Reporter;
use crate::retry::Failure;
use crate::summary::RunError;
use crate::Result;

/// A source entry `--move-files`/`--move` may delete once the snapshot is durable.
pub(super) struct Moved {
    pub(super) rel: Vec<u8>,
    pub(super) dir: bool,
    /// What was backed up: device, inode, mtime, and a file's size. An entry
    /// that no longer matches changed after its read and is not deleted.
    pub(super) seen: (u64, u64, (i64, u32), Option<u64>),
}

struct MoveFailure {
    dir: bool,
    error: RunError,
}

impl Committed<'_> {
    /// Deletes what the run copied. Failures join the summary and the run's
    /// record in the index, with the final counts and exit code; the
    /// snapshot object stays as committed (§4.8).
    pub fn move_sources(
        &self,
        source: &Path,
        moved: Vec<Moved>,
        opts: &BackupOptions,
        reporter: &dyn Reporter,
        summary: &mut BackupSummary,
    ) -> Result<()> {
        let failures = move_sources(source, moved, opts, reporter)?;
        if failures.is_empty() {
            return Ok(());
        }
        let mut counts = summary.counts;
        for f in &failures {
            counts.files.failed += u64::from(!f.dir);
            counts.dirs.failed += u64::from(f.dir);
            summary.errors.push(f.error.clone());
        }
        summary.counts = counts;
        summary.exit_code = counts.exit_code();
        let mut w = self.index.writer()?;
        w.update_run(
            self.key,
            &counts.into(),
            summary.exit_code,
            &failures.iter().map(|f| RunErrorRow::from(&f.error)).collect::<Vec<_>>(),
        )?;
        w.commit()?;
        Ok(())
    }
}

/// Deletes the copied files, then (`--move`) the directories left empty,
/// deepest first, never the root; each deletion retried (§4.8).
fn move_sources(
    source: &Path,
    mut moved: Vec<Moved>,
    opts: &BackupOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<MoveFailure>> {
    // Deepest first, files before the directories that hold them. The
    // depth is counted once per entry: deep paths are long.
    let depth = |m: &Moved| m.rel.iter().filter(|c| **c == b'/').count();
    let mut keyed: Vec<(usize, Moved)> = moved.drain(..).map(|m| (depth(&m), m)).collect();
    keyed.sort_by(|(da, a), (db, b)| db.cmp(da).then(a.dir.cmp(&b.dir)).then_with(|| a.rel.cmp(&b.rel)));
    let retry = crate::retry::Retry::new(&opts.run, reporter, None);
    let mut failures = Vec::new();
    for (_, m) in keyed {
        if m.dir && opts.move_mode != MoveMode::FilesAndDirs {
            continue;
        }
        let (_held, abs) = reach(&source.join(std::ffi::OsStr::from_bytes(&m.rel)));
        let result = retry.run(&m.rel, || Ok(delete(&m, &abs)))?;
        if let Err(error) = result {
            failures.push(MoveFailure { dir: m.dir, error });
        }
    }
    Ok(failures)
}

/// One attempt at deleting a moved entry; one gone already counts as deleted.
fn delete(m: &Moved, abs: &Path) -> std::result::Result<(), Failure> {
    let action = if m.dir {
        "Deleting Source Directory"
    } else {
        "Deleting Source File"
    };
    // Only what was backed up is deleted: an entry written or replaced
    // since its read stays (and fails the move).
    match fs::symlink_metadata(abs) {
        Ok(now) => {
            let meta = SourceMeta::from_metadata(&now);
            let size = m.seen.3.map(|_| meta.size);
            // A directory's mtime moves when its files are moved out.
            let same = if m.dir {
                now.is_dir() && (meta.dev, meta.ino) == (m.seen.0, m.seen.1)
            } else {
                (meta.dev, meta.ino, meta.mtime, size) == m.seen
            };
            if !same {
                return Err(Failure::fatal_for_item(
                    action,
                    "it changed after it was backed up; it was not deleted".into(),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Failure::io(action, e)),
    }
    let r = if m.dir {
        fs::remove_dir(abs)
    } else {
        fs::remove_file(abs)
    };
    match r {
        Ok(()) => Ok(()),
        // A directory that still holds entries (excluded, failed or new
        // ones) stays, silently: it is not empty.
        Err(e) if m.dir && e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure::io(action, e)),
    }
}

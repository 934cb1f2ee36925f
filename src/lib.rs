//! The robovault engine: the use cases behind the command line. Backup walks a
//! source tree and commits a snapshot; restore materialises one; the read
//! commands browse history, trees and versions. It never prints: progress and
//! per-item events go to a [`Reporter`], results come back as `*Summary` values.
//! It reads neither the environment nor the wall clock: the caller says where
//! the repository is and how to reach it, and which [`Clock`] to ask, in
//! [`RepositoryOptions`].
//!
//! ```no_run
//! use robovault::{backup, BackupOptions, RepositoryOptions, Silent};
//! let repo = RepositoryOptions::local("/backup/repo".as_ref())?;
//! let summary = backup("/srv/data".as_ref(), &repo, &BackupOptions::default(), &Silent)?;
//! println!("snapshot {:?} exit {}", summary.snapshot, summary.exit_code);
//! # Ok::<(), robovault::Error>(())
//! ```

mod backup;
mod browse;
mod convert;
mod diff;
mod error;
mod forget;
mod gc;
mod job;
mod node;
mod packcheck;
mod paths;
mod rebuild;
mod repair;
mod report;
mod repository;
mod restore;
mod retry;
mod run_state;
mod stats;
mod summary;
mod verify;
mod wait;

pub use backup::{backup, BackupOptions, BackupSummary, BaselineChoice, MoveMode};
pub use browse::{
    cat, choose, choose_series, history, ls, resolve, snapshot_by_prefix, versions, Found, SeriesHistory,
    SnapshotChoice, VersionSpan,
};
pub use diff::{diff, find, Change, FindHit};
pub use error::{Error, Result};
pub use forget::{apply_policy, forget, forget_plan, Decision, ForgetOptions, ForgetPlan, ForgetSummary, KeepPolicy};
pub use gc::{gc, gc_plan, gc_with, GcOptions, GcPlan, GcSummary};
pub use job::{attributes, default_threads, tags, ClassSwitches, Filters, JobOptions, Pattern, RunOptions};
pub use paths::absolute;
pub use repair::{repair_index, RepairSummary};
pub use report::{DirLine, EntryLine, Next, Progress, Reporter, RunStart, Silent};
pub use repository::keys::{key_add, key_export, key_list, key_passwd, key_remove, KeyInfo, NewRepository};
pub use repository::local::{Repository, INDEX_FILE};
pub use repository::location::Location;
pub use repository::options::{
    Clock, GivenPassword, NoPassword, PasswordPurpose, PasswordSource, RepositoryOptions, SystemClock,
};
pub use repository::remote::{prune_index_copies, publish_index, Publish, SNAPSHOTS_PER_COPY};
pub use restore::{restore, CopyFlags, RestoreOptions, RestoreSummary};
pub use stats::{stats, RunStats, SeriesStats, StatsSummary};
pub use summary::{Class, Counts, Row, RunError, EXIT_FATAL};
pub use verify::{verify, verify_with, Problem, ReadData, VerifySummary};
pub use wait::wait_for_path;

/// What a version records of an entry (metadata and change-detection keys),
/// in each [`VersionSpan`].
pub use robovault_index::Entry;
/// A series (one source, one name), as [`choose_series`] returns it and
/// [`versions`] takes it.
pub use robovault_index::SeriesRecord;
/// A committed snapshot and its run, as [`history`], [`choose`] and
/// [`snapshot_by_prefix`] return it.
pub use robovault_index::SnapshotRecord;
/// How to reach an S3 repository, part of [`RepositoryOptions`].
pub use robovault_store::crypto::KdfParams;
pub use robovault_store::S3Options;
/// One directory entry of a snapshot's tree, its kind and its content, as
/// [`ls`] and [`resolve`] return them.
pub use robovault_store::{Node, NodeContent, NodeKind};

/// Bytes as text: UTF-8 as is, control characters and any byte that is not
/// UTF-8 as `\xNN` (ROBOCOPY.md §6.5).
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        // Control characters too: a newline in a name must not split a log
        // line (nor forge one), nor a line of `ls` or `find`.
        for c in chunk.valid().chars() {
            if c.is_ascii_control() {
                out.push_str(&format!("\\x{:02X}", c as u32));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn invalid_utf8_prints_as_escapes() {
        assert_eq!(super::display_bytes(b"a\xffb"), "a\\xFFb");
        assert_eq!(super::display_bytes("é".as_bytes()), "é");
        assert_eq!(super::display_bytes(b"new\nline\t\x7f"), "new\\x0Aline\\x09\\x7F");
    }
}

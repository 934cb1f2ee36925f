//! How the engine tells what it does while it runs. The CLI implements
//! [`Reporter`] for the console, the log and JSON; the engine never prints.
//! The engine decides each line's tag and whether it is a verbose-only line;
//! the reporter decides, from the logging switches, what it shows.

use std::time::Duration;

use crate::summary::RunError;

/// Receives the events of a backup or restore, from any worker thread.
pub trait Reporter: Sync {
    /// The run has chosen its repository, series and baseline, and is about
    /// to walk.
    fn start(&self, _run: &RunStart) {}
    /// A directory line (ROBOCOPY.md §6.2), before the directory's entries.
    fn dir(&self, _line: &DirLine) {}
    /// A file line: before a copy is attempted, or once the outcome is known.
    fn entry(&self, _line: &EntryLine) {}
    /// An attempt at an item failed; `next` says what follows.
    fn error(&self, _err: &RunError, _next: Next) {}
    /// Work found or finished, for a progress display.
    fn progress(&self, _p: Progress) {}
    /// Something the user asked for that the run will not do (a selection
    /// that matches nothing), before the walk.
    fn warning(&self, _text: &str) {}
    /// Something the run found and dealt with that a reader of the log
    /// should know (a lost pack whose content is stored again).
    fn note(&self, _text: &str) {}
}

/// Progress of a run: files and bytes found so far, and done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A directory was listed: these files (and their bytes) are to come.
    Found {
        /// Files.
        files: u64,
        /// Their bytes.
        bytes: u64,
    },
    /// A file is finished (copied, skipped or failed).
    Done {
        /// Its bytes.
        bytes: u64,
    },
}

/// A directory line: `TAB TAG12 COUNT8 TAB FULLPATH/`.
#[derive(Debug, Clone, Copy)]
pub struct DirLine<'a> {
    /// Path relative to the job root; empty for the root.
    pub rel: &'a [u8],
    /// The 12-character tag.
    pub tag: &'static str,
    /// Matching files in the directory (-1 for an extra directory); `None`
    /// prints no count.
    pub count: Option<i64>,
    /// Shown only under `--verbose`.
    pub verbose_only: bool,
}

/// A file line: `TAB TAG12 TAB SIZE14 TAB [TS19 TAB] NAME`.
#[derive(Debug, Clone, Copy)]
pub struct EntryLine<'a> {
    /// Path relative to the job root.
    pub rel: &'a [u8],
    /// The 12-character tag.
    pub tag: &'static str,
    /// Size in bytes (0 for links and special files).
    pub size: u64,
    /// The source mtime, for `--timestamps`.
    pub mtime: (i64, u32),
    /// Shown only under `--verbose` (skipped entries).
    pub verbose_only: bool,
    /// Printed with its full destination path (extras, mismatches).
    pub full_path: bool,
}

/// What a run knows when it starts walking.
#[derive(Debug, Clone)]
pub struct RunStart {
    /// The repository (absolute).
    pub repository: std::path::PathBuf,
    /// Whether this run created it (or would, under `--list-only`).
    pub repository_created: bool,
    /// The series.
    pub series: String,
    /// The baseline (backup) or the snapshot restored (restore).
    pub snapshot: Option<String>,
}

/// What follows a failed attempt (ROBOCOPY.md §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Another attempt after this wait (`Waiting N seconds... Retrying...`).
    Retry(Duration),
    /// That was the last of the retries (`ERROR: RETRY LIMIT EXCEEDED.`).
    LimitExceeded,
    /// The error is not retried; the item failed.
    NotRetried,
}

/// A reporter that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {}

//! How the engine tells what it does while it runs. The CLI implements
//! [`Reporter`] for the console, the log and JSON; the engine never prints.

use std::time::Duration;

use crate::summary::{Class, RunError};

/// Receives the events of a backup or restore, from any worker thread.
pub trait Reporter: Sync {
    /// The run has chosen its repository, series and baseline, and is about
    /// to walk.
    fn start(&self, _run: &RunStart) {}
    /// A directory was processed (`rel` is empty for the root).
    fn dir(&self, _rel: &[u8], _class: Class, _copied: bool) {}
    /// A non-directory entry was classified and handled.
    fn file(&self, _rel: &[u8], _class: Class, _copied: bool, _size: u64) {}
    /// An attempt at an item failed; `next` says what follows.
    fn error(&self, _err: &RunError, _next: Next) {}
}

/// What a run knows when it starts walking.
#[derive(Debug, Clone)]
pub struct RunStart {
    /// The repository (absolute).
    pub repository: std::path::PathBuf,
    /// Whether this run created it.
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

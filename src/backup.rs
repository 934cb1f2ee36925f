//! Backup: one run of a job. Walk the source, classify each entry against the
//! series' baseline snapshot (ROBOCOPY.md §4), read only what may have
//! changed, store new chunks and trees, then commit the snapshot.
//!
//! ```text
//! lock; heal unpublished snapshot objects              session.rs
//! for each directory (depth first, as frames on a stack on the heap;
//!                     files and sibling directories in parallel):   walk.rs
//!     list it, lstat each entry; fetch its baseline entries (one query)
//!     (listing.rs)
//!     merge by name: Same -> reuse content;                         classify.rs
//!                    otherwise read, chunk, hash;                   read.rs
//!                    new chunks -> packer; Extra -> close its rows  extras.rs
//!     encode its tree blob (same entries -> same id -> nothing stored)
//!     write version rows for what changed (one transaction for the run)
//! packer.finish()            # every pack durable (fsync, rename, fsync dir)
//! index COMMIT               # the snapshot exists from here on  commit.rs
//! publish snapshot object    # a crash before this is healed by the next writer
//! --move: delete what was copied                                moving.rs
//! ```
//!
//! Each file adds an `impl Run<'_>` block for its concern; [`Run`] is the
//! state one run shares between its threads.

mod classify;
mod commit;
mod extras;
mod listing;
mod moving;
mod read;
mod session;
mod walk;

use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use robovault_index::{ChildVersion, Index, PathId};
use robovault_store::{PackerStats, RootDir, TreeId};

use crate::job::{JobOptions, RunOptions};
use crate::node::Names;
use crate::paths::{absolute, check_backup_paths};
use crate::report::Reporter;
use crate::repository::local::{hostname, Repository};
use crate::repository::options::RepositoryOptions;
use crate::run_state::RunState;
use crate::summary::{Counts, RunError};
use crate::{display_bytes, Error, Result};
use moving::Moved;
use session::{Baseline, Naming, Session};

/// Which snapshot a backup compares against (ROBOCOPY.md §1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BaselineChoice {
    /// The latest committed snapshot of the series.
    #[default]
    Latest,
    /// An empty tree: everything is Lonely (`--no-baseline`).
    Empty,
    /// Any snapshot of the repository, by id or prefix (`--baseline ID`).
    Id(String),
}

/// What `--move-files` and `--move` delete after the commit (§4.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MoveMode {
    /// Nothing.
    #[default]
    Off,
    /// The files counted Copied.
    Files,
    /// Those, and source directories then empty (never the root).
    FilesAndDirs,
}

/// How a backup runs. Plain data; the CLI fills it from arguments.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// The series name; default `<host>:<absolute source>`.
    pub series: Option<String>,
    /// The baseline.
    pub baseline: BaselineChoice,
    /// Selection and class switches.
    pub job: JobOptions,
    /// Retries, threads, locking.
    pub run: RunOptions,
    /// `--move-files`, `--move`.
    pub move_mode: MoveMode,
}

/// What a backup did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupSummary {
    /// The repository (absolute).
    pub repository: PathBuf,
    /// Whether this run created it (or would have, under `--list-only`).
    pub repository_created: bool,
    /// The series.
    pub series: String,
    /// The source root (absolute).
    pub source: PathBuf,
    /// The new snapshot's id; `None` under `--list-only`.
    pub snapshot: Option<String>,
    /// The baseline's id.
    pub parent: Option<String>,
    /// Whether this was a `--list-only` run.
    pub list_only: bool,
    /// Run start.
    pub started: DateTime<Utc>,
    /// Run end.
    pub ended: DateTime<Utc>,
    /// The summary rows.
    pub counts: Counts,
    /// Time spent reading and storing file data.
    pub copy_time: Duration,
    /// Time spent waiting between retries.
    pub wait_time: Duration,
    /// Content bytes newly stored, before compression.
    pub new_data: u64,
    /// Files whose content was read.
    pub files_read: u64,
    /// Bytes of content read.
    pub bytes_read: u64,
    /// Blobs (chunks and trees) newly stored.
    pub blobs_stored: u64,
    /// Bytes written to new packs.
    pub packed_bytes: u64,
    /// Each failure.
    pub errors: Vec<RunError>,
    /// ROBOCOPY.md §4.7.
    pub exit_code: u32,
}

/// Runs one backup of `source` into the repository `repo_opts` (created
/// when missing or an empty directory).
///
/// # Errors
/// Fatal conditions only (ROBOCOPY.md §7.2): then nothing is committed.
pub fn backup(
    source: &Path,
    repo_opts: &RepositoryOptions,
    opts: &BackupOptions,
    reporter: &dyn Reporter,
) -> Result<BackupSummary> {
    let clock = &repo_opts.clock;
    let started = clock.now();
    let (source, root_meta) = check_source(source, repo_opts, opts)?;
    let host = hostname();
    let series_name = opts
        .series
        .clone()
        .unwrap_or_else(|| format!("{host}:{}", display_bytes(source.as_os_str().as_bytes())));
    let (repo, created) = session::open_repository(repo_opts, opts.job.list_only)?;
    let repo_shown = Session::shown(repo.as_ref(), repo_opts);
    let naming = Naming {
        series: &series_name,
        host: &host,
        source: source.as_os_str().as_bytes(),
    };
    let (session, base) = Session::open(repo.as_ref(), opts, &naming, |b| {
        reporter.start(&crate::report::RunStart {
            repository: repo_shown.clone(),
            repository_created: created,
            series: series_name.clone(),
            snapshot: b.snapshot.as_ref().map(|s| s.snap_id.clone()),
        })
    })?;
    let run = Run::new(session, base, opts, reporter);
    let (root, stats) = run.walk_source(&source, &root_meta)?;
    let lost = run.session.lost();
    let Run {
        session,
        base,
        state,
        new_data,
        files_read,
        bytes_read,
        moved,
        ..
    } = run;
    let totals = state.finish();
    let counts = root.counts;
    let mut summary = BackupSummary {
        repository: repo_shown,
        repository_created: created,
        series: series_name.clone(),
        source: source.clone(),
        snapshot: None,
        parent: base.snapshot.as_ref().map(|b| b.snap_id.clone()),
        list_only: opts.job.list_only,
        started,
        ended: clock.now(),
        counts,
        copy_time: totals.copy_time,
        wait_time: totals.wait_time,
        new_data: new_data.into_inner(),
        files_read: files_read.into_inner(),
        bytes_read: bytes_read.into_inner(),
        blobs_stored: stats.blobs,
        packed_bytes: stats.packed_bytes,
        errors: totals.errors,
        exit_code: counts.exit_code(),
    };
    let Session::Recording(rec) = session else {
        if opts.run.interrupt.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        return Ok(summary);
    };
    let object = commit::snapshot_object(rec.repo, &naming, &base, &root, &summary);
    let committed = rec.commit(&object, &root, &base, &summary, &lost, &opts.run)?;
    committed.publish_or_note(&mut summary, reporter);
    if opts.move_mode != MoveMode::Off {
        let moved = moved.into_inner().unwrap_or_else(|p| p.into_inner());
        committed.move_sources(&source, moved, opts, reporter, &mut summary)?;
    }
    summary.ended = clock.now();
    Ok(summary)
}

/// The absolute source root and its metadata: it must be a directory, apart
/// from the repository, and `--move` cannot follow links out of it.
fn check_source(source: &Path, repo_opts: &RepositoryOptions, opts: &BackupOptions) -> Result<(PathBuf, Metadata)> {
    let source = absolute(source)?;
    let root_meta = fs::metadata(&source).map_err(|e| Error::Source {
        path: source.clone(),
        error: e,
    })?;
    if !root_meta.is_dir() {
        return Err(Error::Source {
            path: source.clone(),
            error: std::io::Error::from_raw_os_error(rustix::io::Errno::NOTDIR.raw_os_error()),
        });
    }
    check_backup_paths(&source, repo_opts.location.local(), &opts.job.filters)?;
    if opts.job.follow_links && opts.move_mode != MoveMode::Off {
        // A followed link leads outside SOURCE: moving through it would
        // delete what the job does not own.
        return Err(Error::Usage(
            "--move-files and --move cannot be combined with --follow-links".into(),
        ));
    }
    Ok((source, root_meta))
}

fn nanos(t: &DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One run's state, shared by its threads.
struct Run<'a> {
    session: Session<'a>,
    names: Names,
    base: Baseline,
    opts: &'a BackupOptions,
    job: &'a JobOptions,
    reporter: &'a dyn Reporter,
    /// Failures, times and retries, as a restore keeps them.
    state: RunState<'a>,
    new_data: AtomicU64,
    files_read: AtomicU64,
    bytes_read: AtomicU64,
    moved: Mutex<Vec<Moved>>,
    /// Directories walked under `--follow-links` (device, inode).
    visited: Mutex<std::collections::HashSet<(u64, u64)>>,
}

/// The walked root: its tree, its own metadata and the run's counts.
struct RootDone {
    tree: TreeId,
    dir: RootDir,
    counts: Counts,
}

impl<'a> Run<'a> {
    fn new(session: Session<'a>, base: Baseline, opts: &'a BackupOptions, reporter: &'a dyn Reporter) -> Run<'a> {
        Run {
            session,
            names: Names::default(),
            base,
            opts,
            job: &opts.job,
            reporter,
            state: RunState::new(&opts.run, reporter),
            new_data: AtomicU64::new(0),
            files_read: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            moved: Mutex::new(Vec::new()),
            visited: Mutex::new(Default::default()),
        }
    }

    /// Walks the source in the run's thread pool, then makes every pack
    /// durable.
    fn walk_source(&self, source: &Path, root_meta: &Metadata) -> Result<(RootDone, PackerStats)> {
        let pool = self.opts.run.pool()?;
        match pool.install(|| self.process_root(source, root_meta)) {
            Ok(root) => Ok((root, self.session.finish_packs()?)),
            Err(e) => {
                // A failed pack write is the real cause of a stopped packer.
                self.session.abort()?;
                Err(e)
            }
        }
    }

    fn repo(&self) -> Result<&Repository> {
        self.session
            .repo()
            .ok_or_else(|| Error::Usage("internal: the run has no repository".into()))
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Index) -> robovault_index::Result<T>) -> Result<T> {
        let conn = self.repo()?.index()?;
        Ok(f(&conn)?)
    }

    fn check_interrupt(&self) -> Result<()> {
        self.state.check_interrupt()
    }

    fn fail(&self, err: RunError) {
        self.state.fail(err);
    }

    /// Records a failure that was already reported.
    fn record(&self, err: RunError) {
        self.state.record(err);
    }

    fn base_seq(&self) -> u64 {
        self.base.snapshot.as_ref().map_or(0, |b| b.seq)
    }

    fn children(&self, path: PathId) -> Result<Vec<ChildVersion>> {
        let seq = self.base_seq();
        self.with_reader(|r| r.children_at(self.base.base_series, path, seq))
    }
}

//! Restore: the job algorithm with a snapshot as the source and TARGET as the
//! destination (ROBOCOPY.md §5). Files that already match are skipped; others
//! are written under a temporary name and renamed over the old entry; extras
//! are reported and left alone.
//!
//! Confinement (§5.3): TARGET is resolved once; below it every directory is
//! opened relative to its parent with `O_NOFOLLOW`, and every entry is created
//! or replaced with `*at` calls on that directory, so no symlink inside TARGET
//! is ever followed. Names come from tree blobs, which the decoder already
//! checks, and are checked again here.
//!
//! ```text
//! restore_dir(fd, tree):
//!     list fd; for each selected node (in parallel):
//!         absent -> create | kinds differ or a link in the way -> Mismatch, leave
//!         file: mtime/size differ -> rewrite (temp, rename) | mode differs -> chmod | else skip
//!         dir -> open or mkdir with O_NOFOLLOW, a task of its own
//!     names only in TARGET -> Extras (counted, left)
//!     when its last task is done: the directory's own mode and mtime
//! ```
//!
//! Directories are tasks of a rayon scope, not calls on a thread's stack,
//! and hold no descriptor while they wait ([`target`]): a snapshot may be as
//! deep as the filesystem allows. One worker takes the tasks back last
//! pushed first, which keeps the log's depth-first order (§6.2).

mod classify;
mod entry;
mod extras;
mod metadata;
mod selection;
mod target;
mod walk;
mod write;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use robovault_index::ROOT_PATH;
use robovault_store::{BlobId, NodeKind, Reads};
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::browse::{choose, resolve, SnapshotChoice};
use crate::convert::to_blob;
use crate::job::{JobOptions, RunOptions};
use crate::paths::canonical_or_ancestor;
use crate::report::{EntryLine, Reporter};
use crate::repository::local::Repository;
use crate::repository::options::RepositoryOptions;
use crate::retry::Failure;
use crate::run_state::RunState;
use crate::summary::{Counts, RunError};
use crate::{Error, Result};
use classify::*;
use metadata::*;
use selection::*;
use target::*;
use walk::*;

/// Which metadata a restore applies (`--copy`, `--dcopy`, ROBOCOPY.md §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyFlags {
    /// `D`: file content.
    pub data: bool,
    /// `A`: the mode.
    pub attributes: bool,
    /// `T`: the mtime.
    pub times: bool,
    /// `O`: owner (where permitted).
    pub owner: bool,
    /// `S`: all extended attributes, not only `user.` ones.
    pub security: bool,
    /// `X`: no extended attributes.
    pub no_xattrs: bool,
}

impl Default for CopyFlags {
    fn default() -> Self {
        CopyFlags::parse("DAT").unwrap_or(CopyFlags {
            data: true,
            attributes: true,
            times: true,
            owner: false,
            security: false,
            no_xattrs: false,
        })
    }
}

impl CopyFlags {
    /// Parses robocopy's letters (`DAT`, `DATSOU`, `DT`, …).
    ///
    /// # Errors
    /// [`Error::Usage`] for a letter outside DATSOUX.
    pub fn parse(letters: &str) -> Result<CopyFlags> {
        let mut f = CopyFlags {
            data: false,
            attributes: false,
            times: false,
            owner: false,
            security: false,
            no_xattrs: false,
        };
        for c in letters.chars() {
            match c.to_ascii_uppercase() {
                'D' => f.data = true,
                'A' => f.attributes = true,
                'T' => f.times = true,
                'O' => f.owner = true,
                'S' => f.security = true,
                'U' => {}
                'X' => f.no_xattrs = true,
                other => {
                    return Err(Error::Usage(format!(
                        "invalid copy flag \"{other}\" in \"{letters}\": use the letters D A T S O U X"
                    )))
                }
            }
        }
        Ok(f)
    }
}

/// How a restore runs.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The series; default the repository's only one.
    pub series: Option<String>,
    /// The snapshot.
    pub snapshot: SnapshotChoice,
    /// Relative paths to restore; empty restores everything.
    pub paths: Vec<Vec<u8>>,
    /// What files get (`--copy`).
    pub copy: CopyFlags,
    /// What directories get (`--dcopy`).
    pub dcopy: CopyFlags,
    /// Selection and class switches; `job.purge` deletes extras.
    pub job: JobOptions,
    /// Retries, threads, interruption.
    pub run: RunOptions,
    /// `--force`: lift the refusals of §5.4 that may be lifted.
    pub force: bool,
    /// `--nocopy`: write no file data (with `--mirror`, only delete extras).
    pub no_copy: bool,
    /// `--attr-add R`: clear every write bit of restored files.
    pub add_readonly: bool,
    /// `--attr-remove R`: set the owner's write bit of restored files.
    pub remove_readonly: bool,
    /// The user's home directory, which a mirror restore refuses as its
    /// TARGET without `--force` (ROBOCOPY.md §5.4); the command line gives it.
    pub home: Option<PathBuf>,
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreSummary {
    /// The repository.
    pub repository: PathBuf,
    /// The series.
    pub series: String,
    /// The snapshot restored.
    pub snapshot: String,
    /// The target (resolved).
    pub target: PathBuf,
    /// Run start.
    pub started: DateTime<Utc>,
    /// Run end.
    pub ended: DateTime<Utc>,
    /// Whether this was a `--list-only` run.
    pub list_only: bool,
    /// The summary rows.
    pub counts: Counts,
    /// Time spent reading and writing file data.
    pub copy_time: Duration,
    /// Time spent waiting between retries.
    pub wait_time: Duration,
    /// Each failure.
    pub errors: Vec<RunError>,
    /// What the selection left out, as the log's `WARNING :` lines say it.
    pub warnings: Vec<String>,
    /// ROBOCOPY.md §4.7.
    pub exit_code: u32,
}

/// Restores a snapshot, or the given paths of it, into `target`.
///
/// # Errors
/// Fatal conditions only: unknown series, snapshot or path, a target that
/// cannot be created or is refused (§5.4), an unreadable root tree.
pub fn restore(
    repo: &RepositoryOptions,
    target: &Path,
    opts: &RestoreOptions,
    reporter: &dyn Reporter,
) -> Result<RestoreSummary> {
    let started = repo.clock.now();
    let repo = Repository::open(repo)?;
    let (series, snapshot) = choose(&repo, opts.series.as_deref(), &opts.snapshot)?;
    // Lets a test forget and collect the snapshot while it is restored.
    robovault_store::pause_point("restore-chosen");
    let protected = check_restore_target(&repo, target, opts)?;
    let selection = Selection::from_paths(&opts.paths)?;
    let mut named = Vec::new();
    for p in &opts.paths {
        named.push((p.as_slice(), resolve(&repo, &snapshot, p)?));
    }
    let (warnings, selects_any) = selection_warnings(&repo, &snapshot, &opts.job.filters, &named)?;
    // Nothing to restore: no directory is created for nothing (a mirror
    // still walks, to find its extras).
    let nothing = !selects_any && !opts.job.purge;
    let list_only = opts.job.list_only;
    let created = !target.exists();
    let (target, root_fd) = open_target(target, list_only, nothing, created)?;
    reporter.start(&crate::report::RunStart {
        repository: repo.location(),
        repository_created: false,
        series: series.name.clone(),
        snapshot: Some(snapshot.snap_id.clone()),
    });
    for w in &warnings {
        reporter.warning(w);
    }
    let run = RestoreRun {
        repo: &repo,
        opts,
        reporter,
        state: RunState::new(&opts.run, reporter),
        links: Mutex::new(HashMap::new()),
        dirs: TargetDirs::new(root_fd),
        protected,
        prefetched: Mutex::new(HashMap::new()),
        counts: Mutex::new(Counts::default()),
        fatal: Mutex::new(None),
        aborted: AtomicBool::new(false),
    };
    let pool = restore_pool(&repo, &opts.run)?;
    let mut counts = if nothing {
        Counts::default()
    } else {
        let walked = pool.install(|| run.restore_tree(&to_blob(&snapshot.root_tree), &selection, created));
        // A forget and gc may run meanwhile: content the snapshot alone held
        // then fails to read, which is the snapshot's going, not damage.
        match walked {
            Err(_) if forgotten(&repo, &snapshot)? => return Err(Error::ForgottenMeanwhile(snapshot.snap_id)),
            other => other?,
        }
    };
    counts.dirs.total += 1;
    if created && !nothing {
        counts.dirs.copied += 1;
    } else {
        counts.dirs.skipped += 1;
    }
    if let (Selection::All, false) = (&selection, list_only) {
        run.apply_root_meta(series.key, snapshot.seq, &mut counts)?;
    }
    let totals = run.state.finish();
    if !totals.errors.is_empty() && forgotten(&repo, &snapshot)? {
        return Err(Error::ForgottenMeanwhile(snapshot.snap_id));
    }
    if opts.run.interrupt.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    Ok(RestoreSummary {
        repository: repo.location(),
        series: series.name,
        snapshot: snapshot.snap_id,
        target,
        list_only,
        started,
        ended: repo.clock().now(),
        copy_time: totals.copy_time,
        wait_time: totals.wait_time,
        exit_code: counts.exit_code(),
        counts,
        errors: totals.errors,
        warnings,
    })
}

/// TARGET, made absolute, and its descriptor: created unless nothing is
/// written; no descriptor where nothing is there to read.
fn open_target(target: &Path, list_only: bool, nothing: bool, created: bool) -> Result<(PathBuf, Option<OwnedFd>)> {
    let target = if list_only || nothing {
        crate::paths::absolute(target)?
    } else {
        std::fs::create_dir_all(target).map_err(|e| Error::io("creating target directory", target, e))?;
        std::fs::canonicalize(target).map_err(|e| Error::io("resolving", target, e))?
    };
    if (created && list_only) || nothing {
        return Ok((target, None));
    }
    let fd = rustix::fs::open(
        &target,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("opening target directory", &target, e.into()))?;
    Ok((target, Some(fd)))
}

/// The workers of a restore. Reading a remote store is bound by request
/// latency, not by cores: without --threads, many requests are kept in
/// flight.
fn restore_pool(repo: &Repository, run: &RunOptions) -> Result<rayon::ThreadPool> {
    match (repo.store().backend().reads(), run.threads) {
        (Reads::Requests, None) => RunOptions {
            threads: Some(REMOTE_THREADS),
            ..run.clone()
        }
        .pool(),
        _ => run.pool(),
    }
}

impl RestoreRun<'_> {
    /// The metadata of TARGET itself, as the snapshot's root had it, when
    /// the whole snapshot is restored into an open TARGET.
    fn apply_root_meta(&self, series: robovault_index::SeriesKey, seq: u64, counts: &mut Counts) -> Result<()> {
        let Some(fd) = self.dirs.root() else { return Ok(()) };
        let Some(root) = self.repo.index()?.version_at(series, ROOT_PATH, seq)? else {
            return Ok(());
        };
        let meta = DirMeta {
            mode: root.entry.mode,
            uid: root.entry.uid,
            gid: root.entry.gid,
            mtime: (root.entry.mtime_sec, root.entry.mtime_nsec),
        };
        if let Err(e) = self.apply_dir_meta(fd, &meta) {
            self.fail(RunError::from_io(b"", "Copying Directory Metadata", &e, 1));
            counts.dirs.failed += 1;
        }
        Ok(())
    }
}

/// Whether `snapshot` is gone from the index (forgotten since it was chosen).
fn forgotten(repo: &Repository, snapshot: &robovault_index::SnapshotRecord) -> Result<bool> {
    Ok(repo.index()?.snapshots_by_prefix(&snapshot.snap_id)?.is_empty())
}

/// The first restored member of a hard-link group, behind the group's lock.
type LinkSlot = Arc<Mutex<Option<Vec<u8>>>>;

struct RestoreRun<'a> {
    repo: &'a Repository,
    opts: &'a RestoreOptions,
    reporter: &'a dyn Reporter,
    /// Failures, times and retries, as a backup keeps them.
    state: RunState<'a>,
    /// Hard-link groups: (dev, ino) of the source → path relative to TARGET
    /// of the first member restored, behind the group's own lock.
    links: Mutex<HashMap<(u64, u64), LinkSlot>>,
    dirs: TargetDirs,
    /// The repository inside TARGET under a forced mirror: never deleted.
    protected: Option<Vec<u8>>,
    /// Blobs fetched ahead from a remote store, taken when written.
    prefetched: Mutex<HashMap<BlobId, Vec<u8>>>,
    /// What the directory tasks counted.
    counts: Mutex<Counts>,
    /// The first fatal error of a task; the others then stop.
    fatal: Mutex<Option<Error>>,
    aborted: AtomicBool,
}

/// Worker threads of a restore from a remote repository by default.
const REMOTE_THREADS: usize = 32;

impl RestoreRun<'_> {
    fn fail(&self, err: RunError) {
        self.state.fail(err);
    }
    /// Records a failure that was already reported.
    fn record(&self, err: RunError) {
        self.state.record(err);
    }
    /// Runs a retried action and books its time (§4.6 Times row).
    fn timed<T>(
        &self,
        rel: &[u8],
        line: Option<EntryLine<'_>>,
        attempt: impl FnMut() -> Result<std::result::Result<T, Failure>>,
    ) -> Result<std::result::Result<T, RunError>> {
        self.state.timed(rel, line, attempt)
    }
    fn writes(&self) -> bool {
        !self.opts.job.list_only
    }
    fn add(&self, c: &Counts) {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).add(c);
    }
    fn abort(&self, e: Error) {
        self.aborted.store(true, Ordering::SeqCst);
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
    }
}

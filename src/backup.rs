//! Backup: one run of a job. Walk the source, classify each entry against the
//! series' baseline snapshot (ROBOCOPY.md §4), read only what may have
//! changed, store new chunks and trees, then commit the snapshot.
//!
//! ```text
//! lock; heal unpublished snapshot objects
//! for each directory (depth first, as frames on a stack on the heap;
//!                     files and sibling directories in parallel):
//!     list it, lstat each entry; fetch its baseline entries (one query)
//!     merge by name: Same -> reuse content; otherwise read, chunk, hash;
//!                    new chunks -> packer; Extra -> close its rows
//!     encode its tree blob (same entries -> same id -> nothing stored)
//!     write version rows for what changed (one transaction for the run)
//! packer.finish()            # every pack durable (fsync, rename, fsync dir)
//! index COMMIT               # the snapshot exists from here on
//! publish snapshot object    # a crash before this is healed by the next writer
//! ```

use std::collections::VecDeque;
use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rayon::prelude::*;
use robovault_index::{
    ChildVersion, Entry, Index, NewSnapshot, PathId, RunErrorRow, SeriesKey, SnapshotRecord, VersionKey, Writer,
    ROOT_PATH,
};
use robovault_store::{
    crash_point, pause_point, valid_name, BlobId, BlobKind, Chunker, EncodedNode, NodeContent, NodeKind, Packer,
    RootDir, RunErrorRecord, SnapshotObject, Tree, TreeId, SNAPSHOT_VERSION,
};
use rustix::fs::{Mode, OFlags};

use crate::convert::{to_blob, to_hash, to_pack};
use crate::job::{tags, ClassSwitches, JobOptions, RunOptions};
use crate::node::{entry_of, make_node, node_of_entry, read_xattrs, Names, SourceMeta};
use crate::options::RepositoryOptions;
use crate::packcheck::{Lost, PackCheck, Presence};
use crate::paths::{absolute, check_backup_paths, child_rel};
use crate::repo::{hostname, packer_into, Repository};
use crate::report::{DirLine, EntryLine, Progress, Reporter};
use crate::retry::{ChangedWhileReading, Failure};
use crate::run_state::RunState;
use crate::summary::{Class, Counts, RunError};
use crate::{display_bytes, Error, Result};

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

/// The parts of a run that write: absent under `--list-only`.
struct Sink<'a> {
    writer: &'a Mutex<Writer>,
    packer: &'a Packer,
    /// Which packs blobs may be reused from.
    packs: PackCheck,
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
    let host = hostname();
    let series_name = opts
        .series
        .clone()
        .unwrap_or_else(|| format!("{host}:{}", display_bytes(source.as_os_str().as_bytes())));
    let list_only = opts.job.list_only;

    // A list-only run takes no lock and creates nothing (§4.8).
    let (repo, created) = if list_only {
        if Repository::would_create(repo_opts)? {
            (None, true)
        } else {
            (Some(Repository::open(repo_opts)?), false)
        }
    } else {
        let (r, c) = Repository::open_or_create(repo_opts)?;
        (Some(r), c)
    };
    let _lock = match (&repo, list_only) {
        (Some(r), false) => {
            let lock = r.lock_writer(opts.run.lock_wait)?;
            r.heal()?;
            Some(lock)
        }
        _ => None,
    };
    let index = repo.as_ref().map(|r| r.index()).transpose()?;
    let series_row = match &index {
        Some(ix) => ix.series_by_name(&series_name)?,
        None => None,
    };
    let latest = match (&index, &series_row) {
        (Some(ix), Some(s)) => ix.latest_snapshot(s.key)?,
        _ => None,
    };
    let baseline = match (&opts.baseline, &repo) {
        (BaselineChoice::Latest, _) => latest.clone(),
        (BaselineChoice::Empty, _) => None,
        (BaselineChoice::Id(id), Some(r)) => Some(crate::browse::snapshot_by_prefix(r, id)?),
        (BaselineChoice::Id(id), None) => return Err(Error::UnknownSnapshot(id.clone())),
    };
    let new_seq = latest.as_ref().map_or(1, |b| b.seq + 1);
    // Rows are diffed against the series' latest snapshot; against any other
    // baseline the whole tree is recorded afresh.
    let fresh = latest.is_some() && baseline.as_ref().map(|b| b.key) != latest.as_ref().map(|l| l.key);
    let repo_shown = match &repo {
        Some(r) => r.location(),
        None => PathBuf::from(repo_opts.location.to_string()),
    };
    reporter.start(&crate::report::RunStart {
        repository: repo_shown.clone(),
        repository_created: created,
        series: series_name.clone(),
        snapshot: baseline.as_ref().map(|b| b.snap_id.clone()),
    });

    let writer = match (&index, list_only) {
        (Some(ix), false) => {
            let mut w = ix.writer()?;
            let series = w.ensure_series(&series_name, &host, source.as_os_str().as_bytes())?;
            if fresh {
                w.close_all_versions(series, new_seq)?;
            }
            Some((Arc::new(Mutex::new(w)), series))
        }
        _ => None,
    };
    let series = match (&writer, &series_row) {
        (Some((_, s)), _) => *s,
        (None, Some(s)) => s.key,
        (None, None) => SeriesKey(0),
    };
    let packer = match (&repo, &writer) {
        (Some(r), Some((w, _))) => Some(packer_into(r.store(), w)),
        _ => None,
    };
    let sink = match (&writer, &packer, &repo, &index) {
        (Some((w, _)), Some(p), Some(r), Some(ix)) => Some(Sink {
            writer: w,
            packer: p,
            packs: PackCheck::new(r.store(), ix.packs()?, r.remote().is_some()),
        }),
        _ => None,
    };

    let run = Run {
        repo: repo.as_ref(),
        sink,
        names: Names::default(),
        series,
        base_series: baseline.as_ref().map_or(series, |b| b.series),
        baseline: baseline.clone(),
        fresh,
        new_seq,
        opts,
        job: &opts.job,
        reporter,
        state: RunState::new(&opts.run, reporter),
        new_data: AtomicU64::new(0),
        files_read: AtomicU64::new(0),
        bytes_read: AtomicU64::new(0),
        moved: Mutex::new(Vec::new()),
        visited: Mutex::new(Default::default()),
    };
    let pool = opts.run.pool()?;
    let walked = pool.install(|| run.process_root(&source, &root_meta));
    let root = match walked {
        Ok(r) => r,
        Err(e) => {
            // A failed pack write is the real cause of a stopped packer.
            if let Some(p) = &packer {
                p.abort()?;
            }
            return Err(e);
        }
    };
    let stats = match &packer {
        Some(p) => p.finish()?,
        None => Default::default(),
    };
    let lost = run.sink.as_ref().map(|s| s.packs.lost()).unwrap_or_default();
    let Run {
        state,
        new_data,
        files_read,
        bytes_read,
        moved,
        ..
    } = run;
    let totals = state.finish();
    drop(packer);
    let new_data = new_data.into_inner();
    let mut counts = root.counts;
    let exit_code = counts.exit_code();
    let ended = clock.now();
    let mut summary = BackupSummary {
        repository: repo_shown,
        repository_created: created,
        series: series_name.clone(),
        source: source.clone(),
        snapshot: None,
        parent: baseline.as_ref().map(|b| b.snap_id.clone()),
        list_only,
        started,
        ended,
        counts,
        copy_time: totals.copy_time,
        wait_time: totals.wait_time,
        new_data,
        files_read: files_read.into_inner(),
        bytes_read: bytes_read.into_inner(),
        blobs_stored: stats.blobs,
        packed_bytes: stats.packed_bytes,
        errors: totals.errors,
        exit_code,
    };
    let (Some(repo), Some(index), Some((writer, series))) = (repo.as_ref(), index, writer) else {
        if opts.run.interrupt.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        return Ok(summary);
    };

    let object = SnapshotObject {
        version: SNAPSHOT_VERSION,
        repository: repo.store().config().id.clone(),
        series: series_name.clone(),
        host,
        source: display_bytes(source.as_os_str().as_bytes()),
        seq: new_seq,
        started: started.to_rfc3339_opts(SecondsFormat::Nanos, true),
        ended: ended.to_rfc3339_opts(SecondsFormat::Nanos, true),
        parent: summary.parent.clone(),
        root: root.tree.to_hex(),
        root_dir: root.dir,
        exit_code,
        partial: counts.dirs.failed + counts.files.failed > 0,
        dirs: counts.dirs.into(),
        files: counts.files.into(),
        bytes: counts.bytes.into(),
        new_data,
        errors: summary.errors.iter().map(RunErrorRecord::from).collect(),
    };
    let bytes = object.encode();
    let snap_id = robovault_store::SnapshotId::of(&bytes);
    let mut writer = Arc::try_unwrap(writer)
        .map_err(|_| Error::Usage("internal: index writer still shared".into()))?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    // A lost pack whose every blob this run stored again is no longer the
    // index's: later runs need not look for it.
    for pack in &lost {
        writer.delete_pack_if_empty(pack)?;
    }
    let key = writer.add_snapshot(
        &NewSnapshot {
            snap_id: snap_id.to_hex(),
            series,
            seq: new_seq,
            started_ns: nanos(&started),
            ended_ns: nanos(&ended),
            parent: object.parent.clone(),
            root_tree: to_hash(&root.tree),
            exit_code,
            partial: object.partial,
            counts: counts.into(),
            new_data,
            object: bytes.clone(),
        },
        &summary.errors.iter().map(RunErrorRow::from).collect::<Vec<_>>(),
    )?;
    pause_point("before-commit");
    if opts.run.interrupt.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    crash_point("before-commit");
    writer.commit()?;
    crash_point("after-commit");
    summary.snapshot = Some(snap_id.to_hex());
    // The snapshot exists from here on. A failure to publish it is no fatal
    // error (a fatal run commits no snapshot, ROBOCOPY.md §7.2) but a failure
    // the log names, with exit bit 8; the next writer publishes it (heal).
    if let Err(e) = publish(repo, &index, key, &bytes) {
        let err = RunError {
            path: Vec::new(),
            action: "Publishing Snapshot".into(),
            code: 0,
            message: format!("{e}; the snapshot is committed, and the next run publishes it"),
            attempts: 1,
        };
        reporter.error(&err, crate::report::Next::NotRetried);
        summary.errors.push(err);
        summary.exit_code |= 8;
    }

    if opts.move_mode != MoveMode::Off {
        let moved = moved.into_inner().unwrap_or_else(|p| p.into_inner());
        let failures = move_sources(&source, moved, opts, reporter)?;
        if !failures.is_empty() {
            // The snapshot object stays as committed; the run's record gets
            // the final counts and exit code (§4.8).
            for f in &failures {
                counts.files.failed += u64::from(!f.dir);
                counts.dirs.failed += u64::from(f.dir);
                summary.errors.push(f.error.clone());
            }
            summary.counts = counts;
            summary.exit_code = counts.exit_code();
            let mut w = index.writer()?;
            w.update_run(
                key,
                &counts.into(),
                summary.exit_code,
                &failures.iter().map(|f| RunErrorRow::from(&f.error)).collect::<Vec<_>>(),
            )?;
            w.commit()?;
        }
    }
    summary.ended = clock.now();
    Ok(summary)
}

/// Writes a committed snapshot's object, then, for a remote repository, a
/// new copy of the index.
fn publish(repo: &Repository, index: &Index, key: robovault_index::SnapshotKey, object: &[u8]) -> Result<()> {
    repo.store().write_snapshot(object)?;
    crash_point("after-publish");
    index.mark_published(key)?;
    crate::remote::publish_index(repo)
}

/// A source entry `--move-files`/`--move` may delete once the snapshot is durable.
struct Moved {
    rel: Vec<u8>,
    dir: bool,
    /// What was backed up: device, inode, mtime, and a file's size. An entry
    /// that no longer matches changed after its read and is not deleted.
    seen: (u64, u64, (i64, u32), Option<u64>),
}

struct MoveFailure {
    dir: bool,
    error: RunError,
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
        let action = if m.dir {
            "Deleting Source Directory"
        } else {
            "Deleting Source File"
        };
        let result = retry.run(&m.rel, || {
            // Only what was backed up is deleted: an entry written or
            // replaced since its read stays (and fails the move).
            match fs::symlink_metadata(&abs) {
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
                        return Ok(Err(Failure::fatal_for_item(
                            action,
                            "it changed after it was backed up; it was not deleted".into(),
                        )));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(())),
                Err(e) => return Ok(Err(Failure::io(action, e))),
            }
            let r = if m.dir {
                fs::remove_dir(&abs)
            } else {
                fs::remove_file(&abs)
            };
            match r {
                Ok(()) => Ok(Ok(())),
                // A directory that still holds entries (excluded, failed or
                // new ones) stays, silently: it is not empty.
                Err(e) if m.dir && e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) => Ok(Ok(())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ok(())),
                Err(e) => Ok(Err(Failure::io(action, e))),
            }
        })?;
        if let Err(error) = result {
            failures.push(MoveFailure { dir: m.dir, error });
        }
    }
    Ok(failures)
}

fn nanos(t: &DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Files below this size are read in one call as one chunk, sparing the
/// chunker's buffer (the chunker never cuts below its minimum anyway).
const SMALL_FILE: u64 = 256 * 1024;
/// Chunks of one file hashed and compressed in parallel, by total size.
const BATCH_BYTES: usize = 4 << 20;

struct Run<'a> {
    repo: Option<&'a Repository>,
    sink: Option<Sink<'a>>,
    names: Names,
    /// The series the new snapshot joins.
    series: SeriesKey,
    /// The series of the baseline (another one under `--baseline`).
    base_series: SeriesKey,
    baseline: Option<SnapshotRecord>,
    /// Every entry gets a new row: the baseline is not the series' latest.
    fresh: bool,
    new_seq: u64,
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

struct RootDone {
    tree: TreeId,
    dir: RootDir,
    counts: Counts,
}

struct DirDone {
    tree: TreeId,
    empty: bool,
    counts: Counts,
}

/// A directory being walked: listed, its extras and files done, its
/// subdirectories opened a few at a time and closed depth first.
struct DirState {
    /// Where it is read, short however deep it lies (see [`shorten`]).
    abs: PathBuf,
    /// The descriptor that keeps a shortened `abs` valid.
    held: Option<OwnedFd>,
    path: PathId,
    /// Subdirectories not opened yet, the next one by name last.
    pending: Vec<Item>,
    /// Subdirectories opened and still to walk, in name order.
    opened: VecDeque<Box<Frame>>,
    /// The tree's entries and the rows, of the entries done so far.
    nodes: Vec<EncodedNode>,
    rows: Vec<RowAction>,
    counts: Counts,
}

impl DirState {
    fn is_leaf(&self) -> bool {
        self.pending.is_empty() && self.opened.is_empty()
    }

    fn absorb(&mut self, o: Outcome) {
        self.counts.add(&o.counts);
        self.nodes.extend(o.node.as_ref().map(EncodedNode::new));
        self.rows.extend(o.rows);
    }

    fn take(&mut self, step: Step) {
        match step {
            Step::Done(o) => self.absorb(o),
            Step::Open(f) => self.opened.push_back(f),
        }
    }
}

/// A subdirectory being walked, with what its closing needs: its own node
/// and row, which go to its parent.
struct Frame {
    dir: DirState,
    name: Vec<u8>,
    meta: SourceMeta,
    base: Option<ChildVersion>,
    /// What the entry itself decided before the walk (counts, rows).
    out: Outcome,
}

/// What processing one entry gave: its outcome, or a directory to walk.
// Done is every file's step: boxing it would cost an allocation per entry.
#[allow(clippy::large_enum_variant)]
enum Step {
    Done(Outcome),
    Open(Box<Frame>),
}

/// Subdirectories of one directory opened together, per thread: enough to
/// keep the threads busy on a wide tree without holding many open at once.
const SIBLINGS_PER_THREAD: usize = 16;

/// Files of one directory processed together: their outcomes and rows are
/// held only until the batch is done.
const FILE_BATCH: usize = 1024;

fn push_name(rel: &mut Vec<u8>, name: &[u8]) {
    if !rel.is_empty() {
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
}

fn pop_name(rel: &mut Vec<u8>) {
    let keep = rel.iter().rposition(|c| *c == b'/').unwrap_or(0);
    rel.truncate(keep);
}

/// A change to the catalog that a directory's processing decided.
enum RowAction {
    Open {
        path: Option<PathId>,
        name: Vec<u8>,
        entry: Entry,
    },
    Replace {
        old: VersionKey,
        path: PathId,
        entry: Entry,
    },
    Update {
        old: VersionKey,
        entry: Entry,
    },
    Close(VersionKey),
    /// A baseline subtree carried unchanged into a fresh run: its rows are
    /// copied into the new snapshot's series.
    Reopen {
        path: PathId,
        entry: Entry,
        subtree: bool,
    },
}

#[derive(Default)]
struct Outcome {
    node: Option<robovault_store::Node>,
    rows: Vec<RowAction>,
    counts: Counts,
}

struct FileData {
    chunks: Vec<BlobId>,
    meta: SourceMeta,
}

fn is_vanished(e: &std::io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(rustix::io::Errno::NOENT.raw_os_error()) || code == Some(rustix::io::Errno::NOTDIR.raw_os_error())
}

fn is_dir_entry(b: &ChildVersion) -> bool {
    b.entry.kind == NodeKind::Dir.code()
}

impl Run<'_> {
    fn repo(&self) -> Result<&Repository> {
        self.repo
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
        self.baseline.as_ref().map_or(0, |b| b.seq)
    }

    fn children(&self, path: PathId) -> Result<Vec<ChildVersion>> {
        let seq = self.base_seq();
        self.with_reader(|r| r.children_at(self.base_series, path, seq))
    }

    fn intern(&self, parent: PathId, name: &[u8]) -> Result<PathId> {
        match &self.sink {
            Some(s) => Ok(lock(s.writer).intern_path(parent, name)?),
            // A list-only run records nothing; new paths need no id.
            None => Ok(PathId(0)),
        }
    }

    fn process_root(&self, source: &Path, meta: &Metadata) -> Result<RootDone> {
        let meta = SourceMeta::from_metadata(meta);
        let base_root = match &self.baseline {
            Some(b) => self.with_reader(|r| r.version_at(self.base_series, ROOT_PATH, b.seq))?,
            None => None,
        };
        // The root is never retried here: an unreadable source root is
        // fatal (ROBOCOPY.md §7.1; `--tbd` waited for it before).
        let listed = list_dir(source).map_err(|e| Error::Source {
            path: source.to_owned(),
            error: e,
        })?;
        let root = self.open_dir((source.to_owned(), None), b"", ROOT_PATH, base_root.is_some(), listed)?;
        let done = self.walk(root)?;
        let mut counts = done.counts;
        counts.dirs.total += 1;
        let base = base_root.as_ref().map(|b| (b.key, &b.entry));
        let (_, action) = self.dir_record(b"", source, &meta, done.tree, ROOT_PATH, base, &mut counts);
        self.apply(ROOT_PATH, action.into_iter().collect())?;
        Ok(RootDone {
            tree: done.tree,
            dir: RootDir {
                mode: meta.mode,
                uid: meta.uid,
                gid: meta.gid,
                mtime_sec: meta.mtime.0,
                mtime_nsec: meta.mtime.1,
            },
            counts,
        })
    }

    /// Lists a subdirectory, retrying per ROBOCOPY.md §7.1 (an unreadable
    /// directory is retried like an unreadable file). The inner error is
    /// the directory's failure, already reported.
    fn list_subdir(&self, abs: &Path, rel: &[u8]) -> Result<std::result::Result<Listing, RunError>> {
        // Lets a test remove or swap a directory its parent's listing saw.
        pause_point("before-list");
        self.state.retried(rel, || {
            Ok(list_dir(abs).map_err(|e| Failure::io("Scanning Source Directory", e)))
        })
    }

    /// Opens one directory, listed by the caller: its line, its extras and
    /// its files (ROBOCOPY.md §6.2 order). Its subdirectories are left
    /// pending in the returned state, for [`Run::walk`].
    fn open_dir(
        &self,
        (abs, held): (PathBuf, Option<OwnedFd>),
        rel: &[u8],
        path: PathId,
        has_base: bool,
        mut items: Listing,
    ) -> Result<DirState> {
        self.check_interrupt()?;
        // Boxed as read: a large directory's baseline is held once.
        let mut base: Vec<Box<ChildVersion>> = Vec::new();
        if has_base {
            let seq = self.base_seq();
            self.with_reader(|r| r.each_child_at(self.base_series, path, seq, |c| base.push(Box::new(c))))?;
        }
        // A baseline name no entry may have (a crafted or damaged index) is
        // never compared, carried or written into a tree: its rows close.
        let invalid: Vec<_> = base.extract_if(.., |c| !valid_name(&c.name)).collect();
        let mut dropped = Outcome::default();
        for b in &invalid {
            self.close_subtree(b, &mut dropped)?;
        }
        let extras = merge(&mut items, base);
        if self.job.follow_links {
            if let Ok(m) = fs::metadata(&abs) {
                lock(&self.visited).insert((m.dev(), m.ino()));
            }
            for item in &mut items {
                self.follow(&abs, item);
            }
        }
        let filters = &self.job.filters;
        let count = items
            .iter()
            .filter(|i| {
                matches!(&i.src, Some(Ok(m)) if m.kind != Some(NodeKind::Dir))
                    && filters.included(&child_rel(rel, &i.name))
            })
            .count();
        self.reporter.dir(&DirLine {
            rel,
            tag: if has_base {
                tags::DIR
            } else {
                Class::Lonely.tag(true, true)
            },
            count: Some(count as i64),
            verbose_only: false,
        });
        let bytes = items
            .iter()
            .filter_map(|i| match &i.src {
                Some(Ok(m)) if m.kind == Some(NodeKind::File) && filters.included(&child_rel(rel, &i.name)) => {
                    Some(m.size)
                }
                _ => None,
            })
            .sum();
        self.reporter.progress(Progress::Found {
            files: count as u64,
            bytes,
        });
        // Taken out in place: a large directory's entries are not copied.
        let mut pending: Vec<Item> = items
            .extract_if(.., |i| matches!(&i.src, Some(Ok(m)) if m.kind == Some(NodeKind::Dir)))
            .collect();
        // Taken from the end, in name order.
        pending.reverse();
        let mut dir = DirState {
            abs,
            held,
            path,
            pending,
            opened: VecDeque::new(),
            nodes: Vec::new(),
            rows: Vec::new(),
            counts: Counts::default(),
        };
        dir.absorb(dropped);
        for item in extras {
            let step = self.process_item(&dir.abs, rel, path, item)?;
            dir.take(step);
        }
        // In batches, each batch's rows written before the next: what a file
        // costs until its directory closes is its item and its node.
        items.reverse();
        while !items.is_empty() {
            let mut batch = items.split_off(items.len().saturating_sub(FILE_BATCH));
            batch.reverse();
            if items.len() < items.capacity() / 2 {
                items.shrink_to_fit();
            }
            let steps: Vec<Step> = batch
                .into_par_iter()
                .map(|item| self.process_item(&dir.abs, rel, path, item))
                .collect::<Result<_>>()?;
            for step in steps {
                dir.take(step);
            }
            self.apply(path, std::mem::take(&mut dir.rows))?;
        }
        Ok(dir)
    }

    /// Walks the subdirectories below an opened root, depth first. The
    /// directories being walked are frames on a stack on the heap, never
    /// calls on a thread's stack: a frame closes (tree stored, rows applied)
    /// once its last subdirectory has, and its outcome joins its parent's.
    fn walk(&self, mut root: DirState) -> Result<DirDone> {
        // With one thread, one subdirectory at a time keeps the log in
        // ROBOCOPY.md §6.2 order; with more, siblings open in parallel.
        let threads = rayon::current_num_threads();
        let width = if threads > 1 { threads * SIBLINGS_PER_THREAD } else { 1 };
        let mut stack: Vec<Box<Frame>> = Vec::new();
        // The relative path of the frame on top.
        let mut rel: Vec<u8> = Vec::new();
        loop {
            let top = match stack.last_mut() {
                Some(f) => &mut f.dir,
                None => &mut root,
            };
            if let Some(child) = top.opened.pop_front() {
                push_name(&mut rel, &child.name);
                stack.push(child);
                continue;
            }
            if !top.pending.is_empty() {
                self.open_siblings(top, &rel, width)?;
                continue;
            }
            let Some(frame) = stack.pop() else {
                return self.seal(root.path, root.nodes, root.rows, root.counts);
            };
            let out = self.close_subdir(*frame, &rel)?;
            pop_name(&mut rel);
            match stack.last_mut() {
                Some(f) => f.dir.absorb(out),
                None => root.absorb(out),
            }
        }
    }

    /// Opens the next subdirectories of `dir` (up to `width`, in parallel);
    /// those without subdirectories of their own close at once.
    fn open_siblings(&self, dir: &mut DirState, rel: &[u8], width: usize) -> Result<()> {
        let at = dir.pending.len().saturating_sub(width);
        let mut batch = dir.pending.split_off(at);
        batch.reverse();
        let steps: Vec<Step> = batch
            .into_par_iter()
            .map(|item| match self.process_item(&dir.abs, rel, dir.path, item)? {
                Step::Open(f) if f.dir.is_leaf() => {
                    let child = child_rel(rel, &f.name);
                    Ok(Step::Done(self.close_subdir(*f, &child)?))
                }
                step => Ok(step),
            })
            .collect::<Result<_>>()?;
        for step in steps {
            dir.take(step);
        }
        Ok(())
    }

    /// Stores a directory's tree and applies its rows, once every entry
    /// below it is done.
    fn seal(&self, path: PathId, mut nodes: Vec<EncodedNode>, rows: Vec<RowAction>, counts: Counts) -> Result<DirDone> {
        nodes.sort_by(|a, b| a.name().cmp(b.name()));
        self.apply(path, rows)?;
        let empty = nodes.is_empty();
        let tree = self.store_tree(Tree::encode_from(&nodes))?;
        Ok(DirDone { tree, empty, counts })
    }

    /// `--follow-links`: a symlink is replaced by what it resolves to, unless
    /// it is dangling (recorded as a link) or a directory link that would
    /// loop: to the root, an ancestor or a directory already walked (§4.5).
    fn follow(&self, parent: &Path, item: &mut Item) {
        let Some(Ok(m)) = &item.src else { return };
        if m.kind != Some(NodeKind::Symlink) {
            return;
        }
        let Ok(target) = fs::metadata(parent.join(std::ffi::OsStr::from_bytes(&item.name))) else {
            return;
        };
        if target.is_dir() && lock(&self.visited).contains(&(target.dev(), target.ino())) {
            item.link = Link::Cycle;
            return;
        }
        item.link = Link::Followed;
        item.src = Some(Ok(SourceMeta::from_metadata(&target)));
    }

    fn store_tree(&self, bytes: Vec<u8>) -> Result<TreeId> {
        let id = TreeId::of(&bytes);
        let Some(sink) = &self.sink else { return Ok(id) };
        if !sink.packer.contains(&id) && !self.with_reader(|r| self.reusable(sink, r, &to_hash(&id)))? {
            sink.packer.add(id, BlobKind::Tree, &bytes)?;
        }
        Ok(id)
    }

    fn apply(&self, parent: PathId, rows: Vec<RowAction>) -> Result<()> {
        let Some(sink) = &self.sink else { return Ok(()) };
        if rows.is_empty() {
            return Ok(());
        }
        let seq = self.new_seq;
        for row in rows {
            // Reopening walks the baseline with its own reads; keep the
            // writer's lock only around writes.
            if let RowAction::Reopen { path, entry, subtree } = row {
                self.reopen(sink, path, entry, subtree)?;
                continue;
            }
            let mut w = lock(sink.writer);
            match row {
                RowAction::Open { path, name, entry } => {
                    let path = match path {
                        Some(p) => p,
                        None => w.intern_path(parent, &name)?,
                    };
                    w.open_version(self.series, path, seq, &entry)?;
                }
                RowAction::Replace { old, path, entry } => {
                    if !self.fresh {
                        w.close_version(old, seq)?;
                    }
                    w.open_version(self.series, path, seq, &entry)?;
                }
                RowAction::Update { old, entry } => w.update_change_info(old, &entry)?,
                RowAction::Close(old) => {
                    if !self.fresh {
                        w.close_version(old, seq)?;
                    }
                }
                RowAction::Reopen { .. } => {}
            }
        }
        Ok(())
    }

    /// Copies a carried baseline entry's row, and those of its subtree,
    /// into the new snapshot's series.
    fn reopen(&self, sink: &Sink<'_>, path: PathId, entry: Entry, subtree: bool) -> Result<()> {
        let seq = self.new_seq;
        // A stack on the heap, as the subtree may be as deep as the
        // filesystem allows.
        let mut todo = vec![(path, entry, subtree)];
        while let Some((path, entry, subtree)) = todo.pop() {
            lock(sink.writer).open_version(self.series, path, seq, &entry)?;
            if subtree {
                for c in self.children(path)? {
                    let dir = is_dir_entry(&c);
                    todo.push((c.path, c.entry, dir));
                }
            }
        }
        Ok(())
    }

    /// The row change for an entry present in the baseline.
    fn row_for(&self, b: &ChildVersion, entry: Entry) -> Option<RowAction> {
        if self.fresh {
            return Some(RowAction::Open {
                path: Some(b.path),
                name: b.name.clone(),
                entry,
            });
        }
        row_for(b.key, b.path, &b.entry, entry)
    }

    /// Keeps a baseline entry (and its subtree) in the new snapshot as it was.
    fn keep(&self, rel: &[u8], b: &ChildVersion, out: &mut Outcome) -> Result<()> {
        out.node = self.carry(&b.name, rel, Some(b))?;
        if self.fresh && out.node.is_some() {
            out.rows.push(RowAction::Reopen {
                path: b.path,
                entry: b.entry.clone(),
                subtree: is_dir_entry(b),
            });
        }
        Ok(())
    }

    /// Drops a baseline entry the run did not select (§1 "Excluded"), or
    /// keeps it under `--keep-extras`.
    fn excluded(&self, rel: &[u8], b: &ChildVersion, out: &mut Outcome) -> Result<()> {
        if self.job.carries_unselected() {
            return self.keep(rel, b, out);
        }
        self.close_subtree(b, out)
    }

    /// Closes the rows of a baseline entry and of everything below it.
    fn close_subtree(&self, b: &ChildVersion, out: &mut Outcome) -> Result<()> {
        if self.fresh || self.sink.is_none() {
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

    fn process_item(&self, parent_abs: &Path, parent_rel: &[u8], parent: PathId, item: Item) -> Result<Step> {
        let abs = parent_abs.join(std::ffi::OsStr::from_bytes(&item.name));
        let rel = child_rel(parent_rel, &item.name);
        let mut out = Outcome::default();
        let filters = &self.job.filters;
        let meta = match item.src {
            None => {
                if let Some(b) = &item.base {
                    self.base_only(&rel, b, &mut out)?;
                }
                return Ok(Step::Done(out));
            }
            Some(Err(e)) => {
                // Listed, then gone or unreadable before lstat.
                if !filters.included(&rel) {
                    return Ok(Step::Done(out));
                }
                out.counts.files.total += 1;
                if is_vanished(&e) {
                    return self
                        .vanished(&rel, item.base.as_deref(), Gone::Io(&e), false, out)
                        .map(Step::Done);
                }
                out.counts.files.failed += 1;
                self.fail(RunError::from_io(&rel, "Copying File", &e, 1));
                if let Some(b) = &item.base {
                    self.keep(&rel, b, &mut out)?;
                }
                return Ok(Step::Done(out));
            }
            Some(Ok(m)) => m,
        };
        let base = item.base.map(|b| *b);
        if item.link == Link::Cycle {
            // Counted as the link it is, 0 bytes, and not recorded.
            if filters.included(&rel) {
                out.counts.files.total += 1;
                out.counts.files.skipped += 1;
                self.reporter.entry(&EntryLine {
                    rel: &rel,
                    tag: tags::JUNCTION,
                    size: 0,
                    mtime: meta.mtime,
                    verbose_only: true,
                    full_path: false,
                });
            }
            if let Some(b) = &base {
                self.excluded(&rel, b, &mut out)?;
            }
            return Ok(Step::Done(out));
        }
        let Some(kind) = meta.kind else {
            // Sockets are not recorded: Files row, Skipped, no data.
            if filters.included(&rel) {
                out.counts.files.total += 1;
                out.counts.files.skipped += 1;
            }
            if let Some(b) = &base {
                self.base_only(&rel, b, &mut out)?;
            }
            return Ok(Step::Done(out));
        };
        if kind == NodeKind::Dir {
            self.dir_item(&abs, &rel, parent, &item.name, meta, base, out)
        } else {
            let follow = item.link == Link::Followed;
            let counted = out.counts.files.total;
            let out = self.nondir_item(&abs, &rel, &item.name, meta, (kind, follow), base, out)?;
            if out.counts.files.total > counted {
                self.reporter.progress(Progress::Done {
                    bytes: out.counts.bytes.total,
                });
            }
            Ok(Step::Done(out))
        }
    }

    /// A baseline entry the source lacks: an extra when in scope, else
    /// excluded (§4.5).
    fn base_only(&self, rel: &[u8], b: &ChildVersion, out: &mut Outcome) -> Result<()> {
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
    fn report_unselected(&self, rel: &[u8], b: &ChildVersion) {
        if self.job.report_all_extras {
            self.reporter.entry(&EntryLine {
                rel,
                tag: Class::Extra.tag(false, false),
                size: b.entry.size,
                mtime: (b.entry.mtime_sec, b.entry.mtime_nsec),
                verbose_only: false,
                full_path: true,
            });
        }
    }

    /// Counts and reports a baseline entry the source lacks, and every entry
    /// in scope below it (§4.6), depth first in name order.
    fn count_extras(&self, rel: &[u8], b: &ChildVersion, in_scope: bool, out: &mut Outcome) -> Result<()> {
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

    fn count_extra_file(&self, rel: &[u8], b: &ChildVersion, out: &mut Outcome) {
        let size = if b.entry.kind == NodeKind::File.code() {
            b.entry.size
        } else {
            0
        };
        out.counts.files.extras += 1;
        out.counts.bytes.extras += size;
        self.reporter.entry(&EntryLine {
            rel,
            tag: Class::Extra.tag(false, false),
            size,
            mtime: (b.entry.mtime_sec, b.entry.mtime_nsec),
            verbose_only: false,
            full_path: true,
        });
    }

    /// A source entry facing a baseline entry of another kind (§4.4): with
    /// purging (the default) the baseline side leaves as extras and the
    /// source comes in as Lonely (`Ok(true)`); under `--keep-extras` or
    /// `--xx` the pair is reported `*MISMATCH` and the baseline kept.
    fn mismatch(
        &self,
        rel: &[u8],
        b: &ChildVersion,
        src_is_dir: bool,
        size: u64,
        mtime: (i64, u32),
        out: &mut Outcome,
    ) -> Result<bool> {
        if !self.job.keeps_mismatches() {
            self.count_extras(rel, b, true, out)?;
            self.close_subtree(b, out)?;
            return Ok(true);
        }
        if src_is_dir {
            out.counts.dirs.mismatch += 1;
        } else {
            out.counts.files.mismatch += 1;
            out.counts.bytes.mismatch += size;
        }
        self.reporter.entry(&EntryLine {
            rel,
            tag: Class::Mismatched.tag(src_is_dir, false),
            size,
            mtime,
            verbose_only: false,
            full_path: true,
        });
        self.keep(rel, b, out)?;
        Ok(false)
    }

    /// A source directory: walked (its frame returned, for the walk to
    /// open its subdirectories and close it) unless the job leaves it out.
    #[allow(clippy::too_many_arguments)]
    fn dir_item(
        &self,
        abs: &Path,
        rel: &[u8],
        parent: PathId,
        name: &[u8],
        meta: SourceMeta,
        base: Option<ChildVersion>,
        mut out: Outcome,
    ) -> Result<Step> {
        let filters = &self.job.filters;
        if !filters.within_levels(rel) {
            // Below --lev: not walked, not counted.
            if let Some(b) = &base {
                self.excluded(rel, b, &mut out)?;
            }
            return Ok(Step::Done(out));
        }
        out.counts.dirs.total += 1;
        if filters.dir_excluded(rel) {
            out.counts.dirs.skipped += 1;
            self.reporter.dir(&DirLine {
                rel,
                tag: tags::NAMED_DIR,
                count: None,
                verbose_only: true,
            });
            if let Some(b) = &base {
                self.excluded(rel, b, &mut out)?;
            }
            return Ok(Step::Done(out));
        }
        let base = match base {
            Some(b) if !is_dir_entry(&b) => {
                if !self.mismatch(rel, &b, true, 0, meta.mtime, &mut out)? {
                    return Ok(Step::Done(out));
                }
                None
            }
            other => other,
        };
        if base.is_none() && self.job.classes.exclude_lonely {
            out.counts.dirs.skipped += 1;
            self.reporter.dir(&DirLine {
                rel,
                tag: Class::Lonely.tag(true, false),
                count: None,
                verbose_only: true,
            });
            return Ok(Step::Done(out));
        }
        let path = match &base {
            Some(b) => b.path,
            None => self.intern(parent, name)?,
        };
        let (held, short) = shorten(abs);
        let listed = match self.list_subdir(&short, rel)? {
            Ok(listed) => listed,
            Err(err) if is_vanished(&std::io::Error::from_raw_os_error(err.code)) => {
                return self
                    .vanished(rel, base.as_ref(), Gone::Reported(err), true, out)
                    .map(Step::Done)
            }
            Err(err) => {
                out.counts.dirs.failed += 1;
                self.record(err);
                if let Some(b) = &base {
                    self.keep(rel, b, &mut out)?;
                }
                return Ok(Step::Done(out));
            }
        };
        let dir = self.open_dir((short, held), rel, path, base.is_some(), listed)?;
        Ok(Step::Open(Box::new(Frame {
            dir,
            name: name.to_vec(),
            meta,
            base,
            out,
        })))
    }

    /// Closes a walked subdirectory whose subdirectories have all closed:
    /// its tree is stored and its rows applied, and its own node and row
    /// go to its parent in the outcome.
    fn close_subdir(&self, frame: Frame, rel: &[u8]) -> Result<Outcome> {
        let Frame {
            dir,
            name,
            meta,
            base,
            mut out,
        } = frame;
        let filters = &self.job.filters;
        let (abs, _held) = (dir.abs, dir.held);
        let done = self.seal(dir.path, dir.nodes, dir.rows, dir.counts)?;
        out.counts.add(&done.counts);
        if done.empty && filters.subdirs_only && !(self.job.keep_extras && base.is_some()) {
            // -s: an empty directory is left out (§4.5).
            out.counts.dirs.skipped += 1;
            if let Some(b) = &base {
                self.close_subtree(b, &mut out)?;
            }
            return Ok(out);
        }
        let path = dir.path;
        let base_ref = base.as_ref().map(|b| (b.key, &b.entry));
        let (node, action) = self.dir_record(&name, &abs, &meta, done.tree, path, base_ref, &mut out.counts);
        let action = match (&base, self.fresh) {
            (Some(b), true) => Some(RowAction::Open {
                path: Some(b.path),
                name: name.clone(),
                entry: entry_of(&node, &meta),
            }),
            _ => action,
        };
        out.rows.extend(action);
        if self.opts.move_mode == MoveMode::FilesAndDirs {
            lock(&self.moved).push(Moved {
                rel: rel.to_vec(),
                dir: true,
                seen: (meta.dev, meta.ino, meta.mtime, None),
            });
        }
        out.node = Some(node);
        Ok(out)
    }

    /// The node and row change of a walked directory (the root included),
    /// counted New Dir when the baseline lacks it and Skipped otherwise.
    #[allow(clippy::too_many_arguments)]
    fn dir_record(
        &self,
        name: &[u8],
        abs: &Path,
        meta: &SourceMeta,
        tree: TreeId,
        path: PathId,
        base: Option<(VersionKey, &Entry)>,
        counts: &mut Counts,
    ) -> (robovault_store::Node, Option<RowAction>) {
        let xattrs = read_xattrs(abs).unwrap_or_default();
        let node = make_node(
            name,
            meta,
            NodeKind::Dir,
            xattrs,
            &self.names,
            NodeContent::Subtree(tree),
        );
        let entry = entry_of(&node, meta);
        let action = match base {
            None => {
                counts.dirs.copied += 1;
                Some(RowAction::Open {
                    path: Some(path),
                    name: name.to_vec(),
                    entry,
                })
            }
            Some((key, base)) => {
                counts.dirs.skipped += 1;
                if self.fresh {
                    Some(RowAction::Open {
                        path: Some(path),
                        name: name.to_vec(),
                        entry,
                    })
                } else {
                    row_for(key, path, base, entry)
                }
            }
        };
        (node, action)
    }

    /// An entry that vanished between the walk and its read: not in the new
    /// snapshot; FAILED, or Skipped under `--ignore-vanished` (§1, §7.1).
    fn vanished(
        &self,
        rel: &[u8],
        base: Option<&ChildVersion>,
        gone: Gone<'_>,
        is_dir: bool,
        mut out: Outcome,
    ) -> Result<Outcome> {
        // The caller has counted the entry in its row's Total.
        let row = if is_dir {
            &mut out.counts.dirs
        } else {
            &mut out.counts.files
        };
        if self.job.ignore_vanished {
            row.skipped += 1;
        } else {
            row.failed += 1;
            match gone {
                Gone::Reported(err) => self.record(err),
                Gone::Io(e) => {
                    let action = if is_dir {
                        "Scanning Source Directory"
                    } else {
                        "Copying File"
                    };
                    self.fail(RunError::from_io(rel, action, e, 1));
                }
            }
        }
        if let Some(b) = base {
            self.close_subtree(b, &mut out)?;
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn nondir_item(
        &self,
        abs: &Path,
        rel: &[u8],
        name: &[u8],
        mut meta: SourceMeta,
        (kind, follow): (NodeKind, bool),
        base: Option<ChildVersion>,
        mut out: Outcome,
    ) -> Result<Outcome> {
        let filters = &self.job.filters;
        let classes = &self.job.classes;
        if !filters.included(rel) {
            // Not a matching file: not counted, not in the snapshot.
            if let Some(b) = &base {
                if !is_dir_entry(b) {
                    self.report_unselected(rel, b);
                }
                if is_dir_entry(b) {
                    self.base_only(rel, b, &mut out)?;
                } else {
                    self.excluded(rel, b, &mut out)?;
                }
            }
            return Ok(out);
        }
        let listed_size = if kind == NodeKind::File { meta.size } else { 0 };
        out.counts.files.total += 1;
        out.counts.bytes.total += listed_size;
        let skip = |out: &mut Outcome, tag: &'static str| {
            out.counts.files.skipped += 1;
            out.counts.bytes.skipped += listed_size;
            self.reporter.entry(&EntryLine {
                rel,
                tag,
                size: listed_size,
                mtime: meta.mtime,
                verbose_only: true,
                full_path: false,
            });
        };
        let link_to_dir = kind == NodeKind::Symlink && fs::metadata(abs).is_ok_and(|m| m.is_dir());
        let rejected = if filters.file_excluded(rel) {
            Some(tags::NAMED)
        } else {
            filters.reject(rel, &meta, kind, link_to_dir)
        };
        if let Some(tag) = rejected {
            skip(&mut out, tag);
            if let Some(b) = &base {
                if is_dir_entry(b) {
                    self.base_only(rel, b, &mut out)?;
                } else {
                    self.excluded(rel, b, &mut out)?;
                }
            }
            return Ok(out);
        }
        let base = match base {
            Some(b) if b.entry.kind != kind.code() => {
                // Mismatched.
                if !self.mismatch(rel, &b, false, listed_size, meta.mtime, &mut out)? {
                    return Ok(out);
                }
                None
            }
            other => other,
        };
        let xattrs = match read_xattrs(abs) {
            Ok(x) => x,
            Err(e) => return self.failed_item(rel, listed_size, base.as_ref(), &e, out),
        };
        let target = if kind == NodeKind::Symlink {
            match fs::read_link(abs) {
                Ok(t) => Some(t.into_os_string().into_vec()),
                Err(e) => return self.failed_item(rel, listed_size, base.as_ref(), &e, out),
            }
        } else {
            None
        };
        let class = match &base {
            None => Class::Lonely,
            Some(b) => classify(&meta, &xattrs, target.as_deref(), &b.entry, &self.names, classes),
        };
        let class = self.unless_lost(class, kind, base.as_ref())?;
        if classes.skips(class) {
            skip(&mut out, class.tag(false, false));
            if let Some(b) = &base {
                self.keep(rel, b, &mut out)?;
            }
            return Ok(out);
        }
        // Whether the content is read again; Same without --is is not.
        let reread = match class {
            Class::Same => classes.include_same,
            _ => true,
        };
        // Tweaked and Modified count as copied only if the content changed
        // (or --it forces Tweaked): their line waits for the outcome.
        let decided_after = matches!(class, Class::Modified) || (class == Class::Tweaked && !classes.include_tweaked);
        let planned = EntryLine {
            rel,
            tag: class.tag(false, true),
            size: listed_size,
            mtime: meta.mtime,
            verbose_only: false,
            full_path: false,
        };
        if class == Class::Same && !reread {
            // Reported below, with the skip.
        } else if !decided_after {
            self.reporter.entry(&planned);
        }
        let base_chunks = base.as_ref().and_then(|b| b.entry.chunks.clone());
        if kind == NodeKind::File && reread && !self.job.list_only {
            // Lets a test change the file between the walk and the read.
            pause_point("before-read");
        }
        let content = match kind {
            NodeKind::File if !reread || self.job.list_only => {
                NodeContent::Chunks(base_chunks.iter().flatten().map(to_blob).collect())
            }
            NodeKind::File => match self.read_file(abs, rel, &meta, follow, (!decided_after).then_some(planned))? {
                Ok(data) => {
                    meta = data.meta;
                    NodeContent::Chunks(data.chunks)
                }
                Err(err) => {
                    let vanished = err.code == rustix::io::Errno::NOENT.raw_os_error()
                        || err.code == rustix::io::Errno::NOTDIR.raw_os_error();
                    if vanished {
                        if self.job.ignore_vanished {
                            out.counts.files.skipped += 1;
                            out.counts.bytes.skipped += listed_size;
                        } else {
                            out.counts.files.failed += 1;
                            out.counts.bytes.failed += listed_size;
                            self.record(err);
                        }
                        if let Some(b) = &base {
                            self.close_subtree(b, &mut out)?;
                        }
                        return Ok(out);
                    }
                    out.counts.files.failed += 1;
                    out.counts.bytes.failed += listed_size;
                    self.record(err);
                    if let Some(b) = &base {
                        self.keep(rel, b, &mut out)?;
                    }
                    return Ok(out);
                }
            },
            NodeKind::Symlink => NodeContent::Target(target.unwrap_or_default()),
            _ => NodeContent::None,
        };
        let node = make_node(name, &meta, kind, xattrs, &self.names, content);
        let entry = entry_of(&node, &meta);
        let same_content = kind != NodeKind::File || entry.chunks == base_chunks;
        let copied = match class {
            Class::Same => reread,
            Class::Tweaked if classes.include_tweaked => true,
            // Under --list-only nothing is read: the content is presumed
            // unchanged, the common case (a chmod, a touch).
            Class::Tweaked | Class::Modified => !same_content,
            _ => true,
        };
        // Links and special files count in the Files row with 0 bytes.
        let size = if kind == NodeKind::File { node.size } else { 0 };
        out.counts.bytes.total = out.counts.bytes.total - listed_size + size;
        if copied {
            out.counts.files.copied += 1;
            out.counts.bytes.copied += size;
            if self.opts.move_mode != MoveMode::Off {
                let file_size = (kind == NodeKind::File).then_some(meta.size);
                lock(&self.moved).push(Moved {
                    rel: rel.to_vec(),
                    dir: false,
                    seen: (meta.dev, meta.ino, meta.mtime, file_size),
                });
            }
        } else {
            out.counts.files.skipped += 1;
            out.counts.bytes.skipped += size;
        }
        if decided_after || (class == Class::Same && !reread) {
            self.reporter.entry(&EntryLine {
                tag: class.tag(false, copied),
                size,
                verbose_only: !copied,
                ..planned
            });
        }
        match &base {
            None => out.rows.push(RowAction::Open {
                path: None,
                name: name.to_vec(),
                entry,
            }),
            Some(b) => out.rows.extend(self.row_for(b, entry)),
        }
        out.node = Some(node);
        Ok(out)
    }

    /// A non-directory that failed before its content was read; `size` is
    /// what it added to the Bytes row's Total.
    fn failed_item(
        &self,
        rel: &[u8],
        size: u64,
        base: Option<&ChildVersion>,
        e: &std::io::Error,
        mut out: Outcome,
    ) -> Result<Outcome> {
        if is_vanished(e) {
            if self.job.ignore_vanished {
                out.counts.bytes.skipped += size;
            } else {
                out.counts.bytes.failed += size;
            }
            return self.vanished(rel, base, Gone::Io(e), false, out);
        }
        out.counts.files.failed += 1;
        out.counts.bytes.failed += size;
        self.fail(RunError::from_io(rel, "Copying File", e, 1));
        if let Some(b) = base {
            self.keep(rel, b, &mut out)?;
        }
        Ok(out)
    }

    /// The baseline's node for an entry that is carried into the new
    /// snapshot unchanged (its version row stays open).
    fn carry(&self, name: &[u8], rel: &[u8], base: Option<&ChildVersion>) -> Result<Option<robovault_store::Node>> {
        let Some(b) = base else { return Ok(None) };
        let chunks = b.entry.chunks.as_ref().map(|c| c.iter().map(to_blob).collect());
        let subtree = if is_dir_entry(b) {
            self.carried_tree(rel, b)?
        } else {
            None
        };
        Ok(node_of_entry(name, &b.entry, chunks, subtree))
    }

    /// The tree of directory `rel` in the baseline snapshot, found by walking
    /// the baseline's trees from its root.
    fn baseline_tree(&self, rel: &[u8]) -> Result<Option<TreeId>> {
        let Some(b) = &self.baseline else { return Ok(None) };
        let mut tree = to_blob(&b.root_tree);
        for part in rel.split(|c| *c == b'/') {
            let t = self.repo()?.read_tree(&tree).inspect_err(|_| {
                if let Some(sink) = &self.sink {
                    sink.packs.mark_unreadable(&to_hash(&tree));
                }
            })?;
            match t.nodes.binary_search_by(|n| n.name.as_slice().cmp(part)) {
                Ok(i) => match &t.nodes[i].content {
                    NodeContent::Subtree(id) => tree = *id,
                    _ => return Ok(None),
                },
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(tree))
    }

    /// Reads, chunks and stores a file, retrying per ROBOCOPY.md §7.1. The
    /// inner error is the file's failure after the retries.
    fn read_file(
        &self,
        abs: &Path,
        rel: &[u8],
        meta: &SourceMeta,
        follow: bool,
        line: Option<EntryLine<'_>>,
    ) -> Result<std::result::Result<FileData, RunError>> {
        self.state.timed(rel, line, || {
            Ok(self
                .read_once(abs, meta.size, (meta.dev, meta.ino), follow)?
                .map_err(|e| Failure::io("Copying File", e)))
        })
    }

    fn read_once(
        &self,
        abs: &Path,
        listed_size: u64,
        listed: (u64, u64),
        follow: bool,
    ) -> Result<std::io::Result<FileData>> {
        // No link is followed unless --follow-links resolved this one: an
        // entry swapped for a symlink since the walk must not bring another
        // file's content in under this name.
        let flags = if follow { OFlags::empty() } else { OFlags::NOFOLLOW };
        // Non-blocking: an entry swapped for a FIFO since the walk would
        // block the open until a writer came; the fstat below then refuses
        // it. Reads of a regular file ignore the flag.
        let opened = rustix::fs::open(
            abs,
            OFlags::RDONLY | OFlags::NONBLOCK | flags | OFlags::CLOEXEC,
            Mode::empty(),
        );
        let mut file = match opened {
            Ok(fd) => File::from(fd),
            Err(e) if e == rustix::io::Errno::LOOP => return Ok(Err(changed())),
            Err(e) => return Ok(Err(e.into())),
        };
        let before = match file.metadata() {
            Ok(m) if m.is_file() && (m.dev(), m.ino()) == listed => m,
            Ok(_) => return Ok(Err(changed())),
            Err(e) => return Ok(Err(e)),
        };
        let size = before.len();
        let mut chunks = Vec::new();
        if size < SMALL_FILE && listed_size < SMALL_FILE {
            pause_point("mid-read");
            let mut buf = Vec::with_capacity(size as usize + 1);
            if let Err(e) = file.read_to_end(&mut buf) {
                return Ok(Err(e));
            }
            if buf.len() as u64 != size {
                return Ok(Err(changed()));
            }
            if !buf.is_empty() {
                chunks.push(self.store_chunk(&buf)?);
            }
        } else {
            // Reading the next batch overlaps hashing and compressing this one.
            let mut chunker = Chunker::new(&mut file, &self.repo()?.store().config().chunker);
            let mut total = 0u64;
            let mut next = next_batch(&mut chunker);
            // Lets a test change the file while it is being read.
            pause_point("mid-read");
            loop {
                let batch = match next {
                    Ok(b) if b.is_empty() => break,
                    Ok(b) => b,
                    Err(e) => return Ok(Err(e)),
                };
                self.check_interrupt()?;
                total += batch.iter().map(|c| c.len() as u64).sum::<u64>();
                let (stored, read) = rayon::join(|| self.store_batch(&batch), || next_batch(&mut chunker));
                chunks.extend(stored?);
                next = read;
            }
            if total != size {
                return Ok(Err(changed()));
            }
        }
        let after = match file.metadata() {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        if after.nlink() == 0 {
            // Deleted while it was read (which moved its ctime too):
            // vanished if nothing took its name, else changed (retried,
            // the new file read).
            return Ok(Err(match fs::symlink_metadata(abs) {
                Err(e) if is_vanished(&e) => e,
                _ => changed(),
            }));
        }
        // Size, mtime and ctime of the open file before and after: a write
        // during the read moves them (ctime too when the writer then put the
        // mtime back), and the entry recorded must match its content.
        let stat_of = |m: &Metadata| (m.len(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec());
        if stat_of(&after) != stat_of(&before) {
            return Ok(Err(changed()));
        }
        self.files_read.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(size, Ordering::Relaxed);
        Ok(Ok(FileData {
            chunks,
            meta: SourceMeta::from_metadata(&before),
        }))
    }

    fn store_batch(&self, batch: &[Vec<u8>]) -> Result<Vec<BlobId>> {
        batch.par_iter().map(|c| self.store_chunk(c)).collect()
    }

    fn store_chunk(&self, data: &[u8]) -> Result<BlobId> {
        let id = BlobId::of(data);
        let Some(sink) = &self.sink else { return Ok(id) };
        if sink.packer.contains(&id) || self.with_reader(|r| self.reusable(sink, r, &to_hash(&id)))? {
            return Ok(id);
        }
        if sink.packer.add(id, BlobKind::Data, data)? {
            self.new_data.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        Ok(id)
    }
}

/// Reuse of stored blobs: only from packs known to be there (see
/// [`crate::packcheck`]).
impl Run<'_> {
    /// Whether blob `id` is stored in a pack this run may point into. A lost
    /// pack is named in the log the first time the run meets it.
    fn reusable(&self, sink: &Sink<'_>, index: &Index, id: &robovault_index::Hash32) -> robovault_index::Result<bool> {
        if sink.packs.is_unreadable(id) {
            return Ok(false);
        }
        let Some(rec) = index.blob(id)? else { return Ok(false) };
        match sink.packs.presence(&rec.pack) {
            Presence::Present => Ok(true),
            Presence::Lost(why) => {
                if sink.packs.first_notice(&rec.pack) {
                    self.reporter.note(&lost_note(&rec.pack, why));
                }
                Ok(false)
            }
        }
    }

    /// The tree of a baseline directory carried unchanged. While a pack is
    /// lost the baseline's trees may be among its blobs (and unreadable):
    /// the tree is then built again from the index's rows and stored
    /// where needed, so the new snapshot never points into the lost pack.
    /// So is it when a tree on the way cannot be read (damaged within a
    /// pack of the right size): that tree is stored again when its
    /// directory's tree is written.
    fn carried_tree(&self, rel: &[u8], b: &ChildVersion) -> Result<Option<TreeId>> {
        let Some(sink) = &self.sink else {
            return self.baseline_tree(rel);
        };
        if !sink.packs.all_present() {
            return self.rebuild_tree(b.path).map(Some);
        }
        match self.baseline_tree(rel) {
            Err(Error::Store(e)) if !matches!(e, robovault_store::Error::Interrupted) => {
                self.reporter.note(&format!(
                    "a tree of the baseline cannot be read ({e}); the tree of {} is built again from the index",
                    crate::display_bytes(rel)
                ));
                self.rebuild_tree(b.path).map(Some)
            }
            other => other,
        }
    }

    /// The baseline's subtree of directory `path`, built from its version
    /// rows, deepest directories first, on a heap stack (a tree may be
    /// deeper than a thread's stack allows recursion).
    fn rebuild_tree(&self, path: PathId) -> Result<TreeId> {
        struct Frame {
            children: std::vec::IntoIter<ChildVersion>,
            nodes: Vec<robovault_store::Node>,
            /// The directory this frame builds, as its parent lists it.
            dir: Option<ChildVersion>,
        }
        let valid =
            |v: Vec<ChildVersion>| -> Vec<ChildVersion> { v.into_iter().filter(|c| valid_name(&c.name)).collect() };
        let mut stack = vec![Frame {
            children: valid(self.children(path)?).into_iter(),
            nodes: Vec::new(),
            dir: None,
        }];
        loop {
            let top = stack
                .last_mut()
                .ok_or_else(|| Error::Usage("internal: empty tree stack".into()))?;
            if let Some(c) = top.children.next() {
                if is_dir_entry(&c) {
                    let children = valid(self.children(c.path)?).into_iter();
                    stack.push(Frame {
                        children,
                        nodes: Vec::new(),
                        dir: Some(c),
                    });
                } else {
                    let chunks = c.entry.chunks.as_ref().map(|v| v.iter().map(to_blob).collect());
                    top.nodes.extend(node_of_entry(&c.name, &c.entry, chunks, None));
                }
                continue;
            }
            let Some(done) = stack.pop() else { break };
            let mut nodes = done.nodes;
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            let tree = self.store_tree(Tree { nodes }.encode())?;
            match (done.dir, stack.last_mut()) {
                (Some(dir), Some(parent)) => {
                    parent
                        .nodes
                        .extend(node_of_entry(&dir.name, &dir.entry, None, Some(tree)))
                }
                _ => return Ok(tree),
            }
        }
        Err(Error::Usage("internal: empty tree stack".into()))
    }

    /// A Same file whose baseline content is not all in packs the run may
    /// reuse is read again (Lost): the source still has what the
    /// repository lost.
    fn unless_lost(&self, class: Class, kind: NodeKind, base: Option<&ChildVersion>) -> Result<Class> {
        let Some(sink) = &self.sink else { return Ok(class) };
        if class != Class::Same || kind != NodeKind::File || self.job.classes.include_same {
            return Ok(class);
        }
        // The common case: no pack is lost, no chunk needs looking up.
        if sink.packs.all_present() {
            return Ok(class);
        }
        let Some(chunks) = base.and_then(|b| b.entry.chunks.as_deref()) else {
            return Ok(class);
        };
        let lost = self.with_reader(|r| {
            for c in chunks {
                if !self.reusable(sink, r, c)? {
                    return Ok(true);
                }
            }
            Ok(false)
        })?;
        Ok(if lost { Class::Lost } else { class })
    }
}

/// The log's note on a pack the run found lost.
fn lost_note(pack: &robovault_index::Hash32, why: Lost) -> String {
    let what = match why {
        Lost::Missing => "is missing from the repository",
        Lost::Damaged => "is damaged (not as the index recorded it)",
    };
    format!(
        "pack {} {what}; its content is stored again where the source still has it",
        to_pack(pack).to_hex()
    )
}

/// The next chunks of a file, up to about [`BATCH_BYTES`]; empty at the end.
fn next_batch<R: Read>(chunker: &mut Chunker<R>) -> std::io::Result<Vec<Vec<u8>>> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while bytes < BATCH_BYTES {
        match chunker.next() {
            Some(chunk) => {
                let chunk = chunk?;
                bytes += chunk.len();
                batch.push(chunk);
            }
            None => break,
        }
    }
    Ok(batch)
}

fn changed() -> std::io::Error {
    ChangedWhileReading::io()
}

/// The row change for an entry present in the baseline: none when it is the
/// same version, an in-place update when only change-detection fields moved,
/// else a new version.
fn row_for(old: VersionKey, path: PathId, base: &Entry, entry: Entry) -> Option<RowAction> {
    if entry.same_version(base) {
        let moved = (entry.dev, entry.ino, entry.ctime_sec, entry.ctime_nsec)
            != (base.dev, base.ino, base.ctime_sec, base.ctime_nsec);
        return moved.then_some(RowAction::Update { old, entry });
    }
    Some(RowAction::Replace { old, path, entry })
}

/// ROBOCOPY.md §4.2, for a non-directory present on both sides with the same kind.
fn classify(
    m: &SourceMeta,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    target: Option<&[u8]>,
    b: &Entry,
    names: &Names,
    switches: &ClassSwitches,
) -> Class {
    match switches.compare_mtime(m.mtime, (b.mtime_sec, b.mtime_nsec)) {
        std::cmp::Ordering::Greater => return Class::Newer,
        std::cmp::Ordering::Less => return Class::Older,
        std::cmp::Ordering::Equal => {}
    }
    let size = target.map_or(m.size, |t| t.len() as u64);
    if size != b.size || target != b.target.as_deref() {
        return Class::Changed;
    }
    let attrs_differ = m.mode != b.mode
        || m.uid != b.uid
        || m.gid != b.gid
        || m.rdev != b.rdev
        || m.hardlink().unwrap_or((0, 0)) != b.link
        || crate::node::encode_xattrs(xattrs) != b.xattrs
        || names.user(m.uid) != b.user
        || names.group(m.gid) != b.group;
    if attrs_differ {
        return Class::Tweaked;
    }
    if (m.ctime, m.ino, m.dev) != ((b.ctime_sec, b.ctime_nsec), b.ino, b.dev) {
        return Class::Modified;
    }
    Class::Same
}

/// A directory entry seen on either side.
struct Item {
    name: Vec<u8>,
    src: Option<std::io::Result<SourceMeta>>,
    /// Boxed: most entries of a first backup have none.
    base: Option<Box<ChildVersion>>,
    link: Link,
}

/// What `--follow-links` made of a source entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Link {
    /// Not a followed link: recorded as found.
    #[default]
    AsIs,
    /// A symlink whose target is recorded in its place.
    Followed,
    /// A directory link that would loop: skipped (`    junction`).
    Cycle,
}

/// Directory paths from this length on are reached through a descriptor.
const LONG_PATH: usize = 2048;

/// A path for a directory that works however deep it lies. Past
/// [`LONG_PATH`] bytes the directory is opened (`O_PATH`, no read right
/// needed) and named `/proc/self/fd/N` while the descriptor is held, so the
/// paths of the entries below it stay far from `PATH_MAX` (4096 bytes);
/// without `/proc` the long path is kept and fails with ENAMETOOLONG.
fn shorten(abs: &Path) -> (Option<OwnedFd>, PathBuf) {
    if abs.as_os_str().len() < LONG_PATH {
        return (None, abs.to_owned());
    }
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match rustix::fs::open(abs, flags, Mode::empty()) {
        Ok(fd) => {
            let short = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            if short.is_dir() {
                (Some(fd), short)
            } else {
                (None, abs.to_owned())
            }
        }
        Err(_) => (None, abs.to_owned()),
    }
}

/// A path for `abs` however long, for calls that take a path: past
/// [`LONG_PATH`] bytes its parent is opened piece by piece, each piece
/// below the last, and the entry named `/proc/self/fd/N/<name>` while the
/// descriptor is held. On any failure the long path is kept (and fails
/// with ENAMETOOLONG).
fn reach(abs: &Path) -> (Option<OwnedFd>, PathBuf) {
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        return (None, abs.to_owned());
    };
    if abs.as_os_str().len() < LONG_PATH {
        return (None, abs.to_owned());
    }
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut fd: Option<OwnedFd> = None;
    let mut rest = parent.as_os_str().as_bytes();
    while !rest.is_empty() {
        // Cut at a separator: names are at most 255 bytes, so there is one.
        let cut = if rest.len() <= LONG_PATH {
            rest.len()
        } else {
            match rest[..LONG_PATH].iter().rposition(|c| *c == b'/') {
                Some(i) if i > 0 => i,
                _ => return (None, abs.to_owned()),
            }
        };
        let piece = std::ffi::OsStr::from_bytes(&rest[..cut]);
        let opened = match &fd {
            None => rustix::fs::open(piece, flags, Mode::empty()),
            Some(dir) => rustix::fs::openat(dir, piece, flags, Mode::empty()),
        };
        match opened {
            Ok(next) => fd = Some(next),
            Err(_) => return (None, abs.to_owned()),
        }
        rest = &rest[cut..];
        while let [b'/', tail @ ..] = rest {
            rest = tail;
        }
    }
    match fd {
        Some(fd) => {
            let short = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())).join(name);
            (Some(fd), short)
        }
        None => (None, abs.to_owned()),
    }
}

/// How an entry vanished after the walk listed it.
enum Gone<'a> {
    /// This error, not reported yet.
    Io(&'a std::io::Error),
    /// A failure the retries already reported.
    Reported(RunError),
}

/// A directory's entries with their `lstat`, sorted by name bytes.
type Listing = Vec<Item>;

/// Lists a directory with `lstat` of each entry, sorted by name bytes.
fn list_dir(dir: &Path) -> std::io::Result<Listing> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let meta = fs::symlink_metadata(e.path()).map(|m| SourceMeta::from_metadata(&m));
        out.push(Item {
            name: e.file_name().into_vec(),
            src: Some(meta),
            base: None,
            link: Link::AsIs,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Gives each listed entry its baseline entry, both sorted by name; returns
/// the baseline entries the source lacks, in name order.
// Boxed: each entry moves into its item as it is, without a copy.
#[allow(clippy::vec_box)]
fn merge(items: &mut [Item], base: Vec<Box<ChildVersion>>) -> Vec<Item> {
    let mut extras = Vec::new();
    let mut at = 0;
    for b in base {
        while at < items.len() && items[at].name < b.name {
            at += 1;
        }
        match items.get_mut(at) {
            Some(item) if item.name == b.name => {
                item.base = Some(b);
                at += 1;
            }
            _ => extras.push(Item {
                name: b.name.clone(),
                src: None,
                base: Some(b),
                link: Link::AsIs,
            }),
        }
    }
    extras
}

use std::os::unix::ffi::OsStringExt;

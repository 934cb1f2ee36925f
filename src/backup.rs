//! Backup: one run of a job. Walk the source, classify each entry against the
//! series' baseline snapshot (ROBOCOPY.md §4), read only what may have
//! changed, store new chunks and trees, then commit the snapshot.
//!
//! ```text
//! lock; heal unpublished snapshot objects
//! for each directory (in parallel, depth first):
//!     list it, lstat each entry; fetch its baseline entries (one query)
//!     merge by name: Same -> reuse content; otherwise read, chunk, hash;
//!                    new chunks -> packer; Extra -> close its rows
//!     encode its tree blob (same entries -> same id -> nothing stored)
//!     write version rows for what changed (one transaction for the run)
//! packer.finish()            # every pack durable (fsync, rename, fsync dir)
//! index COMMIT               # the snapshot exists from here on
//! publish snapshot object    # a crash before this is healed by the next writer
//! ```

use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rayon::prelude::*;
use robovault_index::{
    ChildVersion, Counts as IndexCounts, Entry, Index, NewSnapshot, PathId, RunErrorRow, SeriesKey, SnapshotRecord,
    VersionKey, Writer, ROOT_PATH,
};
use robovault_store::{
    crash_point, pause_point, BlobId, BlobKind, Chunker, CountsRow, NodeContent, NodeKind, Packer, RootDir,
    RunErrorRecord, SnapshotObject, Tree, TreeId, SNAPSHOT_VERSION,
};
use rustix::fs::{Mode, OFlags};

use crate::node::{entry_of, make_node, node_of_entry, read_xattrs, Names, SourceMeta};
use crate::paths::{absolute, check_backup_paths, child_rel};
use crate::repo::{hostname, packer_into, to_blob, to_hash, Repository};
use crate::report::Reporter;
use crate::retry::{Failure, Retry, CHANGED_WHILE_READING};
use crate::summary::{Class, Counts, Row, RunError};
use crate::{display_bytes, Error, Result};

/// How a backup runs. Plain data; the CLI fills it from arguments.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// The series name; default `<host>:<absolute source>`.
    pub series: Option<String>,
    /// Retries per failed item (ROBOCOPY.md §7.1).
    pub retries: u32,
    /// Wait between retries.
    pub wait: Duration,
    /// How long to wait for another writer's lock.
    pub lock_wait: Duration,
    /// Worker threads; `None` uses every core.
    pub threads: Option<usize>,
    /// Set by a signal handler to stop the run; nothing is committed then.
    pub interrupt: Arc<AtomicBool>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            series: None,
            retries: 3,
            wait: Duration::from_secs(5),
            lock_wait: Duration::ZERO,
            threads: None,
            interrupt: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// What a backup did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupSummary {
    /// The repository (absolute).
    pub repository: PathBuf,
    /// Whether this run created it.
    pub repository_created: bool,
    /// The series.
    pub series: String,
    /// The source root (absolute).
    pub source: PathBuf,
    /// The new snapshot's id.
    pub snapshot: String,
    /// The baseline's id.
    pub parent: Option<String>,
    /// Run start.
    pub started: DateTime<Utc>,
    /// Run end.
    pub ended: DateTime<Utc>,
    /// The summary rows.
    pub counts: Counts,
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

/// Runs one backup of `source` into the repository at `repo_path` (created
/// when missing or an empty directory).
///
/// # Errors
/// Fatal conditions only (ROBOCOPY.md §7.2): then nothing is committed.
pub fn backup(source: &Path, repo_path: &Path, opts: &BackupOptions, reporter: &dyn Reporter) -> Result<BackupSummary> {
    let started = Utc::now();
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
    check_backup_paths(&source, repo_path)?;
    let host = hostname();
    let series_name = opts
        .series
        .clone()
        .unwrap_or_else(|| format!("{host}:{}", display_bytes(source.as_os_str().as_bytes())));

    let (repo, created) = Repository::open_or_create(repo_path)?;
    let _lock = repo.lock_writer(opts.lock_wait)?;
    repo.heal()?;

    let index = repo.index()?;
    let baseline = match index.series_by_name(&series_name)? {
        Some(s) => index.latest_snapshot(s.key)?,
        None => None,
    };
    let new_seq = baseline.as_ref().map_or(1, |b| b.seq + 1);
    reporter.start(&crate::report::RunStart {
        repository: repo.path().to_owned(),
        repository_created: created,
        series: series_name.clone(),
        snapshot: baseline.as_ref().map(|b| b.snap_id.clone()),
    });
    let mut writer = index.writer()?;
    let series = writer.ensure_series(&series_name, &host, source.as_os_str().as_bytes())?;
    let writer = Arc::new(Mutex::new(writer));
    let packer = packer_into(repo.store(), &writer);

    let run = Run {
        repo: &repo,
        writer: &writer,
        packer: &packer,
        names: Names::default(),
        series,
        baseline: baseline.clone(),
        new_seq,
        opts,
        reporter,
        errors: Mutex::new(Vec::new()),
        new_data: AtomicU64::new(0),
        files_read: AtomicU64::new(0),
        bytes_read: AtomicU64::new(0),
    };
    let threads = opts.threads.unwrap_or_else(default_threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {threads} worker threads: {e}")))?;
    let walked = pool.install(|| run.process_root(&source, &root_meta));
    let root = match walked {
        Ok(r) => r,
        Err(e) => {
            // A failed pack write is the real cause of a stopped packer.
            packer.abort()?;
            return Err(e);
        }
    };
    let stats = packer.finish()?;
    let Run {
        errors,
        new_data,
        files_read,
        bytes_read,
        ..
    } = run;
    drop(packer);
    let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    let new_data = new_data.into_inner();
    let counts = root.counts;
    let exit_code = counts.exit_code();
    let ended = Utc::now();

    let object = SnapshotObject {
        version: SNAPSHOT_VERSION,
        repository: repo.store().config().id.clone(),
        series: series_name.clone(),
        host,
        source: display_bytes(source.as_os_str().as_bytes()),
        seq: new_seq,
        started: started.to_rfc3339_opts(SecondsFormat::Nanos, true),
        ended: ended.to_rfc3339_opts(SecondsFormat::Nanos, true),
        parent: baseline.as_ref().map(|b| b.snap_id.clone()),
        root: root.tree.to_hex(),
        root_dir: root.dir,
        exit_code,
        partial: counts.dirs.failed + counts.files.failed > 0,
        dirs: counts_row(&counts.dirs),
        files: counts_row(&counts.files),
        bytes: counts_row(&counts.bytes),
        new_data,
        errors: errors
            .iter()
            .map(|e| RunErrorRecord {
                path: display_bytes(&e.path),
                action: e.action.clone(),
                code: e.code,
                message: e.message.clone(),
                attempts: e.attempts,
            })
            .collect(),
    };
    let bytes = object.encode();
    let snap_id = robovault_store::SnapshotId::of(&bytes);
    let mut writer = Arc::try_unwrap(writer)
        .map_err(|_| Error::Usage("internal: index writer still shared".into()))?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
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
            counts: index_counts(&counts),
            new_data,
            object: bytes.clone(),
        },
        &errors
            .iter()
            .map(|e| RunErrorRow {
                path: e.path.clone(),
                action: e.action.clone(),
                code: e.code,
                message: e.message.clone(),
                attempts: e.attempts,
            })
            .collect::<Vec<_>>(),
    )?;
    pause_point("before-commit");
    if opts.interrupt.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    crash_point("before-commit");
    writer.commit()?;
    crash_point("after-commit");
    repo.store().write_snapshot(&bytes)?;
    crash_point("after-publish");
    index.mark_published(key)?;

    Ok(BackupSummary {
        repository: repo.path().to_owned(),
        repository_created: created,
        series: series_name,
        source,
        snapshot: snap_id.to_hex(),
        parent: object.parent,
        started,
        ended,
        counts,
        new_data,
        files_read: files_read.into_inner(),
        bytes_read: bytes_read.into_inner(),
        blobs_stored: stats.blobs,
        packed_bytes: stats.packed_bytes,
        errors,
        exit_code,
    })
}

/// One worker thread per logical CPU, at most 128 (ROBOCOPY.md §3.1).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(128)
}

fn nanos(t: &DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn counts_row(r: &Row) -> CountsRow {
    CountsRow {
        total: r.total,
        copied: r.copied,
        skipped: r.skipped,
        mismatch: r.mismatch,
        failed: r.failed,
        extras: r.extras,
    }
}

fn index_counts(c: &Counts) -> IndexCounts {
    IndexCounts {
        dirs: c.dirs.columns(),
        files: c.files.columns(),
        bytes: c.bytes.columns(),
    }
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
    repo: &'a Repository,
    writer: &'a Mutex<Writer>,
    packer: &'a Packer,
    names: Names,
    series: SeriesKey,
    baseline: Option<SnapshotRecord>,
    new_seq: u64,
    opts: &'a BackupOptions,
    reporter: &'a dyn Reporter,
    errors: Mutex<Vec<RunError>>,
    new_data: AtomicU64,
    files_read: AtomicU64,
    bytes_read: AtomicU64,
}

struct RootDone {
    tree: TreeId,
    dir: RootDir,
    counts: Counts,
}

struct DirDone {
    tree: TreeId,
    counts: Counts,
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

impl Run<'_> {
    fn with_reader<T>(&self, f: impl FnOnce(&Index) -> robovault_index::Result<T>) -> Result<T> {
        let conn = self.repo.index()?;
        Ok(f(&conn)?)
    }

    fn check_interrupt(&self) -> Result<()> {
        if self.opts.interrupt.load(Ordering::Relaxed) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    fn fail(&self, err: RunError) {
        self.reporter.error(&err, crate::report::Next::NotRetried);
        self.record(err);
    }

    /// Records a failure that was already reported.
    fn record(&self, err: RunError) {
        lock(&self.errors).push(err);
    }

    fn base_seq(&self) -> u64 {
        self.baseline.as_ref().map_or(0, |b| b.seq)
    }

    fn process_root(&self, source: &Path, meta: &Metadata) -> Result<RootDone> {
        let meta = SourceMeta::from_metadata(meta);
        let base_root = match &self.baseline {
            Some(b) => self.with_reader(|r| r.version_at(self.series, ROOT_PATH, b.seq))?,
            None => None,
        };
        let done = self
            .process_dir(source, b"", ROOT_PATH, base_root.is_some())?
            .map_err(|e| Error::Source {
                path: source.to_owned(),
                error: e,
            })?;
        let mut counts = done.counts;
        counts.dirs.total += 1;
        let base = base_root.as_ref().map(|b| (b.key, &b.entry));
        let (_, action) = self.dir_record(b"", b"", source, &meta, done.tree, ROOT_PATH, base, &mut counts);
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

    /// Processes one directory; the inner error is a directory that could not
    /// be listed (the caller decides whether that is fatal).
    fn process_dir(&self, abs: &Path, rel: &[u8], path: PathId, has_base: bool) -> Result<std::io::Result<DirDone>> {
        self.check_interrupt()?;
        let src = match list_dir(abs) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let base = if has_base {
            let seq = self.base_seq();
            self.with_reader(|r| r.children_at(self.series, path, seq))?
        } else {
            Vec::new()
        };
        let items = merge(src, base);
        let outcomes: Vec<Outcome> = items
            .into_par_iter()
            .map(|item| self.process_item(abs, rel, path, item))
            .collect::<Result<_>>()?;
        let mut nodes = Vec::with_capacity(outcomes.len());
        let mut counts = Counts::default();
        let mut rows = Vec::new();
        for o in outcomes {
            counts.add(&o.counts);
            nodes.extend(o.node);
            rows.extend(o.rows);
        }
        self.apply(path, rows)?;
        let tree = self.store_tree(&Tree { nodes })?;
        Ok(Ok(DirDone { tree, counts }))
    }

    fn store_tree(&self, tree: &Tree) -> Result<TreeId> {
        let bytes = tree.encode();
        let id = TreeId::of(&bytes);
        if !self.packer.contains(&id) && !self.with_reader(|r| r.has_blob(&to_hash(&id)))? {
            self.packer.add(id, BlobKind::Tree, &bytes)?;
        }
        Ok(id)
    }

    fn apply(&self, parent: PathId, rows: Vec<RowAction>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut w = lock(self.writer);
        let seq = self.new_seq;
        for row in rows {
            match row {
                RowAction::Open { path, name, entry } => {
                    let path = match path {
                        Some(p) => p,
                        None => w.intern_path(parent, &name)?,
                    };
                    w.open_version(self.series, path, seq, &entry)?;
                }
                RowAction::Replace { old, path, entry } => {
                    w.close_version(old, seq)?;
                    w.open_version(self.series, path, seq, &entry)?;
                }
                RowAction::Update { old, entry } => w.update_change_info(old, &entry)?,
                RowAction::Close(old) => w.close_version(old, seq)?,
            }
        }
        Ok(())
    }

    fn process_item(&self, parent_abs: &Path, parent_rel: &[u8], parent: PathId, item: Item) -> Result<Outcome> {
        let abs = parent_abs.join(std::ffi::OsStr::from_bytes(&item.name));
        let rel = child_rel(parent_rel, &item.name);
        let mut out = Outcome::default();
        let meta = match item.src {
            None => {
                if let Some(b) = &item.base {
                    self.extra(&rel, b, &mut out)?;
                }
                return Ok(out);
            }
            Some(Err(e)) => {
                // Listed, then gone or unreadable before lstat: FAILED, the
                // baseline entry (if any) carried.
                out.counts.files.total += 1;
                out.counts.files.failed += 1;
                self.fail(RunError::from_io(&rel, "Copying File", &e, 1));
                out.node = self.carry(&item.name, &rel, item.base.as_ref())?;
                return Ok(out);
            }
            Some(Ok(m)) => SourceMeta::from_metadata(&m),
        };
        let base = item.base;
        let kind = match meta.kind {
            Some(k) => k,
            None => {
                // Sockets are not recorded: Files row, Skipped, no data.
                out.counts.files.total += 1;
                out.counts.files.skipped += 1;
                if let Some(b) = &base {
                    self.extra(&rel, b, &mut out)?;
                }
                return Ok(out);
            }
        };
        let base = match base {
            Some(b) if b.entry.kind != kind.code() => {
                // Mismatched: the baseline entry leaves as an extra, the
                // source entry comes in as Lonely.
                self.extra(&rel, &b, &mut out)?;
                None
            }
            other => other,
        };
        if kind == NodeKind::Dir {
            self.dir_item(&abs, &rel, parent, &item.name, meta, base, out)
        } else {
            self.nondir_item(&abs, &rel, &item.name, meta, kind, base, out)
        }
    }

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
    ) -> Result<Outcome> {
        let path = match &base {
            Some(b) => b.path,
            None => lock(self.writer).intern_path(parent, name)?,
        };
        out.counts.dirs.total += 1;
        let done = match self.process_dir(abs, rel, path, base.is_some())? {
            Ok(done) => done,
            Err(e) => {
                out.counts.dirs.failed += 1;
                self.fail(RunError::from_io(rel, "Scanning Source Directory", &e, 1));
                out.node = self.carry(name, rel, base.as_ref())?;
                return Ok(out);
            }
        };
        out.counts.add(&done.counts);
        let base = base.as_ref().map(|b| (b.key, &b.entry));
        let (node, action) = self.dir_record(name, rel, abs, &meta, done.tree, path, base, &mut out.counts);
        out.rows.extend(action);
        out.node = Some(node);
        Ok(out)
    }

    /// The node and row change of a walked directory (the root included),
    /// counted New Dir when the baseline lacks it and Skipped otherwise.
    #[allow(clippy::too_many_arguments)]
    fn dir_record(
        &self,
        name: &[u8],
        rel: &[u8],
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
                self.reporter.dir(rel, Class::Lonely, true);
                Some(RowAction::Open {
                    path: Some(path),
                    name: name.to_vec(),
                    entry,
                })
            }
            Some((key, base)) => {
                counts.dirs.skipped += 1;
                self.reporter.dir(rel, Class::Same, false);
                row_for(key, path, base, entry)
            }
        };
        (node, action)
    }

    #[allow(clippy::too_many_arguments)]
    fn nondir_item(
        &self,
        abs: &Path,
        rel: &[u8],
        name: &[u8],
        mut meta: SourceMeta,
        kind: NodeKind,
        base: Option<ChildVersion>,
        mut out: Outcome,
    ) -> Result<Outcome> {
        out.counts.files.total += 1;
        out.counts.bytes.total += meta.size;
        let xattrs = match read_xattrs(abs) {
            Ok(x) => x,
            Err(e) => return self.failed_item(name, rel, &meta, base.as_ref(), &e, out),
        };
        let target = if kind == NodeKind::Symlink {
            match fs::read_link(abs) {
                Ok(t) => Some(t.into_os_string().into_vec()),
                Err(e) => return self.failed_item(name, rel, &meta, base.as_ref(), &e, out),
            }
        } else {
            None
        };
        let class = match &base {
            None => Class::Lonely,
            Some(b) => classify(&meta, &xattrs, target.as_deref(), &b.entry, &self.names),
        };
        let base_chunks = base.as_ref().and_then(|b| b.entry.chunks.clone());
        let content = match kind {
            NodeKind::File if class == Class::Same => {
                NodeContent::Chunks(base_chunks.iter().flatten().map(to_blob).collect())
            }
            NodeKind::File => match self.read_file(abs, rel, &meta)? {
                Ok(data) => {
                    meta = data.meta;
                    NodeContent::Chunks(data.chunks)
                }
                Err(err) => {
                    out.counts.files.failed += 1;
                    out.counts.bytes.failed += meta.size;
                    self.record(err);
                    out.node = self.carry(name, rel, base.as_ref())?;
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
            Class::Same => false,
            Class::Tweaked | Class::Modified => !same_content,
            _ => true,
        };
        // Links and special files count in the Files row with 0 bytes.
        let size = if kind == NodeKind::File { node.size } else { 0 };
        if copied {
            out.counts.files.copied += 1;
            out.counts.bytes.copied += size;
        } else {
            out.counts.files.skipped += 1;
            out.counts.bytes.skipped += size;
        }
        self.reporter.file(rel, class, copied, size);
        match &base {
            None => out.rows.push(RowAction::Open {
                path: None,
                name: name.to_vec(),
                entry,
            }),
            Some(b) => out.rows.extend(row_for(b.key, b.path, &b.entry, entry)),
        }
        out.node = Some(node);
        Ok(out)
    }

    fn failed_item(
        &self,
        name: &[u8],
        rel: &[u8],
        meta: &SourceMeta,
        base: Option<&ChildVersion>,
        e: &std::io::Error,
        mut out: Outcome,
    ) -> Result<Outcome> {
        out.counts.files.failed += 1;
        out.counts.bytes.failed += meta.size;
        self.fail(RunError::from_io(rel, "Copying File", e, 1));
        out.node = self.carry(name, rel, base)?;
        Ok(out)
    }

    /// The baseline's node for an entry that failed, carried into the new
    /// snapshot unchanged (its version row stays open).
    fn carry(&self, name: &[u8], rel: &[u8], base: Option<&ChildVersion>) -> Result<Option<robovault_store::Node>> {
        let Some(b) = base else { return Ok(None) };
        let chunks = b.entry.chunks.as_ref().map(|c| c.iter().map(to_blob).collect());
        let subtree = if b.entry.kind == NodeKind::Dir.code() {
            self.baseline_tree(rel)?
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
            let t = self.repo.read_tree(&tree)?;
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

    /// Counts a baseline entry the source lacks (and everything below it) as
    /// Extras and closes their rows.
    fn extra(&self, rel: &[u8], b: &ChildVersion, out: &mut Outcome) -> Result<()> {
        out.rows.push(RowAction::Close(b.key));
        if b.entry.kind == NodeKind::Dir.code() {
            out.counts.dirs.extras += 1;
            self.reporter.dir(rel, Class::Extra, false);
            let seq = self.base_seq();
            let children = self.with_reader(|r| r.children_at(self.series, b.path, seq))?;
            for c in &children {
                self.extra(&child_rel(rel, &c.name), c, out)?;
            }
        } else {
            out.counts.files.extras += 1;
            if b.entry.kind == NodeKind::File.code() {
                out.counts.bytes.extras += b.entry.size;
            }
            self.reporter.file(rel, Class::Extra, false, b.entry.size);
        }
        Ok(())
    }

    /// Reads, chunks and stores a file, retrying per ROBOCOPY.md §7.1. The
    /// inner error is the file's failure after the retries.
    fn read_file(&self, abs: &Path, rel: &[u8], meta: &SourceMeta) -> Result<std::result::Result<FileData, RunError>> {
        let retry = Retry {
            retries: self.opts.retries,
            wait: self.opts.wait,
            interrupt: &self.opts.interrupt,
            reporter: self.reporter,
        };
        retry.run(rel, || {
            Ok(self
                .read_once(abs, meta.size, (meta.dev, meta.ino))?
                .map_err(|e| Failure::io("Copying File", e)))
        })
    }

    fn read_once(&self, abs: &Path, listed_size: u64, listed: (u64, u64)) -> Result<std::io::Result<FileData>> {
        // No link is followed: an entry swapped for a symlink since the walk
        // must not bring another file's content in under this name.
        let opened = rustix::fs::open(abs, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty());
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
            let mut chunker = Chunker::new(&mut file, &self.repo.store().config().chunker);
            let mut total = 0u64;
            let mut next = next_batch(&mut chunker);
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
        if after.len() != size || after.modified().ok() != before.modified().ok() {
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
        if self.packer.contains(&id) || self.with_reader(|r| r.has_blob(&to_hash(&id)))? {
            return Ok(id);
        }
        if self.packer.add(id, BlobKind::Data, data)? {
            self.new_data.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        Ok(id)
    }
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
    std::io::Error::other(CHANGED_WHILE_READING)
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
fn classify(m: &SourceMeta, xattrs: &[(Vec<u8>, Vec<u8>)], target: Option<&[u8]>, b: &Entry, names: &Names) -> Class {
    if m.mtime != (b.mtime_sec, b.mtime_nsec) {
        return if m.mtime > (b.mtime_sec, b.mtime_nsec) {
            Class::Newer
        } else {
            Class::Older
        };
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
    src: Option<std::io::Result<Metadata>>,
    base: Option<ChildVersion>,
}

/// Lists a directory with `lstat` of each entry, sorted by name bytes.
fn list_dir(dir: &Path) -> std::io::Result<Vec<(Vec<u8>, std::io::Result<Metadata>)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().into_vec();
        out.push((name, fs::symlink_metadata(e.path())));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Merges source entries and baseline entries, both sorted by name.
fn merge(src: Vec<(Vec<u8>, std::io::Result<Metadata>)>, base: Vec<ChildVersion>) -> Vec<Item> {
    let mut out = Vec::with_capacity(src.len().max(base.len()));
    let mut s = src.into_iter().peekable();
    let mut b = base.into_iter().peekable();
    loop {
        let order = match (s.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.0.cmp(&y.name),
        };
        out.push(match order {
            std::cmp::Ordering::Less => {
                let (name, m) = s.next().expect("peeked");
                Item {
                    name,
                    src: Some(m),
                    base: None,
                }
            }
            std::cmp::Ordering::Greater => {
                let c = b.next().expect("peeked");
                Item {
                    name: c.name.clone(),
                    src: None,
                    base: Some(c),
                }
            }
            std::cmp::Ordering::Equal => {
                let (name, m) = s.next().expect("peeked");
                Item {
                    name,
                    src: Some(m),
                    base: b.next(),
                }
            }
        });
    }
    out
}

use std::os::unix::ffi::OsStringExt;

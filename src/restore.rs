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

mod target;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use robovault_index::ROOT_PATH;
use robovault_store::{valid_name, BlobId, Node, NodeContent, NodeKind, Reads, TreeId};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, Timespec, Timestamps};

use crate::browse::{choose, resolve, SnapshotChoice};
use crate::convert::to_blob;
use crate::job::{tags, JobOptions, RunOptions};
use crate::node::SourceMeta;
use crate::options::RepositoryOptions;
use crate::paths::{canonical_or_ancestor, child_rel, components};
use crate::repo::Repository;
use crate::report::{DirLine, EntryLine, Progress, Reporter};
use crate::retry::Failure;
use crate::run_state::RunState;
use crate::summary::{Class, Counts, RunError};
use crate::{Error, Result};
use target::TargetDirs;

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

/// Which entries of a directory are selected.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selection {
    /// Everything, extras in scope.
    All,
    /// Only these names, each with its own selection; no extras.
    Some(BTreeMap<Vec<u8>, Selection>),
}

impl Selection {
    fn from_paths(paths: &[Vec<u8>]) -> Result<Selection> {
        if paths.is_empty() {
            return Ok(Selection::All);
        }
        let mut root = Selection::Some(BTreeMap::new());
        for p in paths {
            let parts = components(p)?;
            if parts.is_empty() {
                return Ok(Selection::All);
            }
            let mut cur = &mut root;
            for (i, part) in parts.iter().enumerate() {
                let Selection::Some(map) = cur else { break };
                let last = i + 1 == parts.len();
                let next = map.entry(part.to_vec()).or_insert_with(|| {
                    if last {
                        Selection::All
                    } else {
                        Selection::Some(BTreeMap::new())
                    }
                });
                if last {
                    *next = Selection::All;
                }
                cur = next;
            }
        }
        Ok(root)
    }
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
    let target = if list_only || nothing {
        crate::paths::absolute(target)?
    } else {
        std::fs::create_dir_all(target).map_err(|e| Error::io("creating target directory", target, e))?;
        std::fs::canonicalize(target).map_err(|e| Error::io("resolving", target, e))?
    };
    let root_fd = if (created && list_only) || nothing {
        None
    } else {
        Some(
            rustix::fs::open(
                &target,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io("opening target directory", &target, e.into()))?,
        )
    };

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
    // Reading a remote store is bound by request latency, not by cores:
    // without --threads, many requests are kept in flight.
    let pool = match (repo.store().backend().reads(), opts.run.threads) {
        (Reads::Requests, None) => RunOptions {
            threads: Some(REMOTE_THREADS),
            ..opts.run.clone()
        }
        .pool()?,
        _ => opts.run.pool()?,
    };
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
    if let (Selection::All, Some(fd), false) = (&selection, run.dirs.root(), list_only) {
        if let Some(root) = repo.index()?.version_at(series.key, ROOT_PATH, snapshot.seq)? {
            let meta = DirMeta {
                mode: root.entry.mode,
                uid: root.entry.uid,
                gid: root.entry.gid,
                mtime: (root.entry.mtime_sec, root.entry.mtime_nsec),
            };
            if let Err(e) = run.apply_dir_meta(fd, &meta) {
                run.fail(RunError::from_io(b"", "Copying Directory Metadata", &e, 1));
                counts.dirs.failed += 1;
            }
        }
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

/// Whether `snapshot` is gone from the index (forgotten since it was chosen).
fn forgotten(repo: &Repository, snapshot: &robovault_index::SnapshotRecord) -> Result<bool> {
    Ok(repo.index()?.snapshots_by_prefix(&snapshot.snap_id)?.is_empty())
}

/// What a restore's selection leaves out, as warning lines: a named file
/// that the file selection (filespecs, `--xf`) drops, a named directory
/// in which it selects nothing, a filespec that matches no file. Returns
/// them and whether any file is selected at all. Without filespecs or
/// `--xf` everything is, and no tree is read.
///
/// # Errors
/// [`Error::PathNotFound`] for a name without wildcards that no entry of
/// the snapshot has: the user named something that is not there.
fn selection_warnings(
    repo: &Repository,
    snapshot: &robovault_index::SnapshotRecord,
    filters: &crate::job::Filters,
    named: &[(&[u8], crate::browse::Found)],
) -> Result<(Vec<String>, bool)> {
    use crate::browse::Found;
    if filters.include.is_empty() && filters.exclude_files.is_empty() {
        return Ok((Vec::new(), true));
    }
    let selected = |rel: &[u8]| filters.included(rel) && !filters.file_excluded(rel);
    // Without filespecs, `--xf` alone asks for the directories as they are
    // (`--xf *` restores the tree of directories): they count as something
    // to restore, as empty ones do unless `-s`. Filespecs that match no file
    // restore no empty skeleton.
    let keep_empty_dirs = filters.include.is_empty() && !filters.subdirs_only;
    let mut matched = Matched {
        files: vec![false; filters.include.len()],
        dirs: vec![false; filters.include.len()],
        pruned: false,
    };
    let mut warnings = Vec::new();
    let mut any = false;
    let root = [(&b""[..], Found::Root(to_blob(&snapshot.root_tree)))];
    let starts = if named.is_empty() { &root[..] } else { named };
    for (path, found) in starts {
        let rel: Vec<u8> = components(path)?.join(&b'/');
        let tree = match found {
            Found::Root(id) => *id,
            Found::Node(Node {
                content: NodeContent::Subtree(id),
                kind: NodeKind::Dir,
                ..
            }) => *id,
            Found::Node(_) => {
                for (m, p) in matched.files.iter_mut().zip(&filters.include) {
                    *m |= p.matches(&rel);
                }
                if selected(&rel) {
                    any = true;
                } else {
                    warnings.push(format!(
                        "\"{}\" is excluded by the file selection",
                        crate::display_bytes(&rel)
                    ));
                }
                continue;
            }
        };
        let here = selects_below(repo, filters, tree, &rel, keep_empty_dirs, &mut matched)?;
        any |= here;
        if !here && !rel.is_empty() {
            warnings.push(format!(
                "nothing in \"{}\" matches the file selection",
                crate::display_bytes(&rel)
            ));
        }
    }
    for (i, p) in filters.include.iter().enumerate() {
        let literal = !p.text().contains(['*', '?']);
        match (matched.files[i], matched.dirs[i]) {
            (true, _) => {}
            (false, true) => warnings.push(format!(
                "no file matches \"{0}\"; to restore the directory, give it as a path: \"{0}/\"",
                p.text()
            )),
            (false, false) if literal && !matched.pruned => {
                return Err(Error::PathNotFound {
                    path: p.text().to_owned(),
                    snapshot: snapshot.snap_id.clone(),
                })
            }
            (false, false) => warnings.push(format!("no file matches \"{}\"", p.text())),
        }
    }
    Ok((warnings, any))
}

/// Which filespecs match a file, and which a directory, of the selection.
struct Matched {
    files: Vec<bool>,
    dirs: Vec<bool>,
    /// A directory was left unread (`--xd`, `--lev`): a name not found may
    /// still be in it.
    pruned: bool,
}

/// Whether the restore has anything to write below tree `tree` (at
/// `rel`), within `--lev` and outside `--xd`: a selected file, or, when
/// empty directories are kept, a directory (`--xf *` restores the tree of
/// directories alone); marks in `matched` the filespecs that match a file
/// or a directory there. Stops once every filespec matched a file and
/// something is selected.
fn selects_below(
    repo: &Repository,
    filters: &crate::job::Filters,
    tree: TreeId,
    rel: &[u8],
    keep_empty_dirs: bool,
    matched: &mut Matched,
) -> Result<bool> {
    let mut any = false;
    let mut pending = vec![(tree, rel.to_vec())];
    while let Some((id, dir)) = pending.pop() {
        if any && matched.files.iter().all(|m| *m) {
            break;
        }
        // An unreadable tree is reported where it is restored: it may hold
        // anything, so the walk must run and nothing is called unmatched.
        let Ok(t) = repo.read_tree(&id) else {
            any = true;
            matched
                .files
                .iter_mut()
                .chain(matched.dirs.iter_mut())
                .for_each(|m| *m = true);
            continue;
        };
        for n in t.nodes {
            let child = child_rel(&dir, &n.name);
            match n.content {
                NodeContent::Subtree(sub) if n.kind == NodeKind::Dir => {
                    for (m, p) in matched.dirs.iter_mut().zip(&filters.include) {
                        *m |= p.matches(&child);
                    }
                    if filters.within_levels(&child) && !filters.dir_excluded(&child) {
                        any |= keep_empty_dirs;
                        pending.push((sub, child));
                    } else {
                        matched.pruned = true;
                    }
                }
                _ => {
                    for (m, p) in matched.files.iter_mut().zip(&filters.include) {
                        *m |= p.matches(&child);
                    }
                    any |= filters.included(&child) && !filters.file_excluded(&child);
                }
            }
        }
    }
    Ok(any)
}

/// The restore refusals of ROBOCOPY.md §5.4, checked before anything is
/// written. Returns the path of the repository relative to TARGET when a
/// forced mirror must protect it.
fn check_restore_target(repo: &Repository, target: &Path, opts: &RestoreOptions) -> Result<Option<Vec<u8>>> {
    if std::fs::metadata(target).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::Usage(format!(
            "TARGET \"{}\" is not a directory; restore into a directory, or a path that does not exist yet",
            crate::paths::absolute(target)?.display()
        )));
    }
    let target_canon = canonical_or_ancestor(target)?;
    if target_canon.starts_with(repo.path()) {
        return Err(Error::Refused(format!(
            "Target \"{}\" is the repository or lies inside it; restore elsewhere.",
            target_canon.display()
        )));
    }
    if !opts.job.purge {
        return Ok(None);
    }
    let home = opts.home.as_ref().and_then(|h| std::fs::canonicalize(h).ok());
    let dangerous = target_canon.parent().is_none() || home.as_deref() == Some(target_canon.as_path());
    if dangerous && !opts.force {
        return Err(Error::Refused(format!(
            "Target \"{}\" is a filesystem root or the home directory; a mirror restore would delete \
             everything else in it. Restore into a subdirectory, or give --force.",
            target_canon.display()
        )));
    }
    if let Ok(inside) = repo.path().strip_prefix(&target_canon) {
        if !opts.force {
            return Err(Error::Refused(format!(
                "Target \"{}\" contains the repository \"{}\"; a mirror restore would delete it. \
                 Restore elsewhere, or give --force (the repository is then kept).",
                target_canon.display(),
                repo.path().display()
            )));
        }
        return Ok(Some(inside.as_os_str().as_bytes().to_vec()));
    }
    Ok(None)
}

struct DirMeta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, u32),
}

/// The first restored member of a hard-link group, behind the group's lock.
type LinkSlot = Arc<Mutex<Option<Vec<u8>>>>;

// `struct stat` field types differ between architectures.
#[allow(clippy::unnecessary_cast)]
fn stat_mtime(st: &Stat) -> (i64, u32) {
    (st.st_mtime as i64, st.st_mtime_nsec as u32)
}

#[allow(clippy::unnecessary_cast)]
fn stat_rdev(st: &Stat) -> u64 {
    st.st_rdev as u64
}

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

/// A directory whose entries are being restored: what is left to do when
/// the last of them is done. Holds no descriptor (a tree may be deeper than
/// the descriptor limit) and no path (the chain of them would hold paths of
/// every length), only its name under its parent.
struct DirDone {
    name: Vec<u8>,
    parent: Option<Arc<DirDone>>,
    /// Whether it is in TARGET (not so for a new one under `--list-only`).
    exists: bool,
    /// Applied after its content, when selected whole and written.
    meta: Option<DirMeta>,
    /// Its own task and each subdirectory's not yet done.
    pending: AtomicUsize,
}

impl Drop for DirDone {
    // Released one ancestor at a time: a chain of thousands of levels must
    // not be dropped recursively.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(p) = next {
            next = Arc::into_inner(p).and_then(|mut d| d.parent.take());
        }
    }
}

/// What [`RestoreRun::extra_entry`] leaves to do.
enum ExtraStep {
    /// Nothing more: whether the entry is gone.
    Done(bool),
    /// An extra directory in scope: walk its entries.
    Enter,
}

/// A snapshot directory to walk into, as [`RestoreRun::restore_node`] found it.
struct Descend {
    fd: Option<OwnedFd>,
    tree: TreeId,
    exists: bool,
    meta: Option<DirMeta>,
}

/// Files up to this size are fetched ahead from a remote store.
const PREFETCH_FILE: u64 = 4 << 20;
/// Content fetched ahead per batch, at most (memory stays bounded).
const PREFETCH_BATCH: u64 = 32 << 20;

/// Splits a directory's files into batches of at most [`PREFETCH_BATCH`]
/// bytes of small files each.
fn prefetch_batches<'a>(files: Vec<(&'a Node, &'a Selection)>) -> Vec<Vec<(&'a Node, &'a Selection)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for f in files {
        let size = if f.0.size <= PREFETCH_FILE { f.0.size } else { 0 };
        if bytes + size > PREFETCH_BATCH && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += size;
        cur.push(f);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn timespec(t: (i64, u32)) -> Timespec {
    Timespec {
        tv_sec: t.0,
        tv_nsec: t.1 as _,
    }
}

fn times(t: (i64, u32)) -> Timestamps {
    Timestamps {
        last_access: timespec(t),
        last_modification: timespec(t),
    }
}

fn kind_of(st: &Stat) -> Option<NodeKind> {
    match FileType::from_raw_mode(st.st_mode as _) {
        FileType::Directory => Some(NodeKind::Dir),
        FileType::RegularFile => Some(NodeKind::File),
        FileType::Symlink => Some(NodeKind::Symlink),
        FileType::Fifo => Some(NodeKind::Fifo),
        FileType::CharacterDevice => Some(NodeKind::CharDevice),
        FileType::BlockDevice => Some(NodeKind::BlockDevice),
        _ => None,
    }
}

/// How restore's temporary files start; 16 hex digits follow.
const TEMP_PREFIX: &str = ".rvtmp-";

fn temp_name() -> Vec<u8> {
    format!("{TEMP_PREFIX}{:016x}", rand_u64()).into_bytes()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    // Each RandomState has keys of its own (randomly seeded, then stepped),
    // so hashing a counter gives a fresh value every call.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    RandomState::new().hash_one(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Worker threads of a restore from a remote repository by default.
const REMOTE_THREADS: usize = 32;

/// Chunks of one file decoded in parallel before they are written in order.
const RESTORE_WINDOW: usize = 4;

/// Removes a temporary entry unless disarmed.
struct TempEntry<'a> {
    dir: &'a OwnedFd,
    name: Vec<u8>,
    armed: bool,
}

impl Drop for TempEntry<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = rustix::fs::unlinkat(self.dir, OsStr::from_bytes(&self.name), AtFlags::empty());
        }
    }
}

/// What a restore does with one snapshot entry, decided before it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Leave the target entry as it is.
    Skip,
    /// Apply metadata only (Tweaked).
    Meta,
    /// Write the entry (temporary name, then rename).
    Write,
}

fn meta_of_node(node: &Node) -> SourceMeta {
    SourceMeta {
        kind: Some(node.kind),
        mode: node.mode,
        uid: node.uid,
        gid: node.gid,
        size: node.size,
        mtime: (node.mtime_sec, node.mtime_nsec),
        // Restore has no access time: the snapshot's mtime stands in.
        atime: node.mtime_sec,
        ..SourceMeta::default()
    }
}

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

    /// Whether `name` in `dir` is a temporary file a killed restore left (a
    /// regular file named as `temp_name` names them). It is no extra of the
    /// user's: it is removed (unless nothing may be written) and not listed.
    fn left_by_a_killed_restore(&self, dir: &OwnedFd, name: &[u8]) -> bool {
        let ours = name
            .strip_prefix(TEMP_PREFIX.as_bytes())
            .is_some_and(|rest| rest.len() == 16 && rest.iter().all(u8::is_ascii_hexdigit));
        let is_file = ours
            && rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| kind_of(&st) == Some(NodeKind::File));
        if is_file && self.writes() {
            let _ = rustix::fs::unlinkat(dir, OsStr::from_bytes(name), AtFlags::empty());
        }
        is_file
    }

    /// Restores the snapshot's tree `tree` into TARGET, its directories as
    /// tasks; returns what they counted.
    fn restore_tree(&self, tree: &TreeId, sel: &Selection, new: bool) -> Result<Counts> {
        let root = Arc::new(DirDone {
            name: Vec::new(),
            parent: None,
            exists: self.dirs.root().is_some(),
            meta: None,
            pending: AtomicUsize::new(1),
        });
        let fd = self.dirs.open(b"").ok();
        rayon::scope(|scope| self.walk(scope, root, fd, tree, b"", sel, new));
        if let Some(e) = self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        Ok(*self.counts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn add(&self, c: &Counts) {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).add(c);
    }

    fn abort(&self, e: Error) {
        self.aborted.store(true, Ordering::SeqCst);
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
    }

    /// Restores directory `rel` (open as `dir`), then hands each of its
    /// subdirectories to a task of its own.
    #[allow(clippy::too_many_arguments)]
    fn walk<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        done: Arc<DirDone>,
        dir: Option<Arc<OwnedFd>>,
        tree: &TreeId,
        rel: &[u8],
        sel: &'s Selection,
        new: bool,
    ) {
        let subdirs = match self.restore_dir(dir.as_deref(), tree, rel, sel, new) {
            Ok((counts, subdirs)) => {
                self.add(&counts);
                subdirs
            }
            Err(e) => {
                self.abort(e);
                Vec::new()
            }
        };
        drop(dir);
        // The siblings share their parent's path.
        let parent_rel: Arc<[u8]> = Arc::from(if subdirs.is_empty() { b"" } else { rel });
        // Pushed last first: a worker takes its own tasks back last pushed
        // first, so that one thread walks depth first in name order.
        for (node, s) in subdirs.into_iter().rev() {
            done.pending.fetch_add(1, Ordering::AcqRel);
            let parent = Arc::clone(&done);
            let parent_rel = Arc::clone(&parent_rel);
            scope.spawn(move |scope| self.enter(scope, parent, &parent_rel, node, s));
        }
        drop(parent_rel);
        self.complete(done, rel.to_vec());
    }

    /// The task of subdirectory `node` of `parent` (at `parent_rel`).
    fn enter<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        parent: Arc<DirDone>,
        parent_rel: &Arc<[u8]>,
        node: Node,
        sel: &'s Selection,
    ) {
        if self.aborted.load(Ordering::SeqCst) {
            return;
        }
        let dir = if parent.exists {
            match self.dirs.open(parent_rel) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    self.fail(RunError::from_io(parent_rel, "Accessing Destination Directory", &e, 1));
                    // A queued subdirectory, counted as restore_node would
                    // have counted it: in Total as well as FAILED.
                    let mut c = Counts::default();
                    if node.kind == NodeKind::Dir {
                        c.dirs.total += 1;
                    }
                    add_failed(&mut c, &node);
                    self.add(&c);
                    self.complete(parent, parent_rel.to_vec());
                    return;
                }
            }
        } else {
            None
        };
        match self.restore_node(dir.as_deref(), parent_rel, &node, sel) {
            Err(e) => self.abort(e),
            Ok((counts, None)) => self.add(&counts),
            Ok((counts, Some(d))) => {
                self.add(&counts);
                drop(dir);
                let rel = child_rel(parent_rel, &node.name);
                let fd = d.fd.map(Arc::new);
                if let Some(fd) = &fd {
                    self.dirs.keep(&rel, fd);
                }
                let done = Arc::new(DirDone {
                    name: node.name.clone(),
                    parent: Some(Arc::clone(&parent)),
                    exists: fd.is_some(),
                    meta: d.meta,
                    pending: AtomicUsize::new(1),
                });
                // Its own completion completes this task of the parent.
                self.walk(scope, done, fd, &d.tree, &rel, sel, !d.exists);
                return;
            }
        }
        self.complete(parent, parent_rel.to_vec());
    }

    /// One task of directory `done` (at `rel`) is over; when it was the
    /// last, applies the directory's metadata (after its content, which
    /// would change its mtime) and so on up.
    fn complete(&self, done: Arc<DirDone>, mut rel: Vec<u8>) {
        let mut cur = done;
        loop {
            if cur.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
                return;
            }
            if let Some(meta) = cur.meta.as_ref().filter(|_| !self.aborted.load(Ordering::SeqCst)) {
                if let Err(e) = self.dirs.open(&rel).and_then(|fd| self.apply_dir_meta(&fd, meta)) {
                    self.fail(RunError::from_io(&rel, "Copying Directory Metadata", &e, 1));
                    let mut c = Counts::default();
                    c.dirs.failed += 1;
                    self.add(&c);
                }
            }
            if !rel.is_empty() {
                self.dirs.forget(&rel);
            }
            let Some(parent) = cur.parent.clone() else { return };
            rel.truncate(rel.len().saturating_sub(cur.name.len() + 1));
            cur = parent;
        }
    }

    /// Restores one directory of the snapshot into `dir` (`None`: it does
    /// not exist, under `--list-only`): its line, its extras, its files.
    /// Returns its selected subdirectories, for the caller to walk.
    fn restore_dir<'s>(
        &self,
        dir: Option<&OwnedFd>,
        tree: &TreeId,
        rel: &[u8],
        sel: &'s Selection,
        new: bool,
    ) -> Result<(Counts, Vec<(Node, &'s Selection)>)> {
        if self.opts.run.interrupt.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let mut counts = Counts::default();
        let filters = &self.opts.job.filters;
        let nodes = match self.repo.read_tree(tree) {
            Ok(t) => t.nodes,
            Err(e) => {
                // Damaged repository data fails this directory, not the run.
                self.fail(RunError {
                    path: rel.to_vec(),
                    action: "Reading Repository Data".into(),
                    code: 0,
                    message: e.to_string(),
                    attempts: 1,
                });
                counts.dirs.failed += 1;
                return Ok((counts, Vec::new()));
            }
        };
        let mut existing = dir.map(|d| list_fd(d).unwrap_or_default()).unwrap_or_default();
        if let Some(d) = dir {
            existing.retain(|name| !self.left_by_a_killed_restore(d, name));
        }
        existing.sort();
        let chosen: Vec<(&Node, &'s Selection)> = nodes
            .iter()
            .filter_map(|n| match sel {
                Selection::All => Some((n, &Selection::All)),
                Selection::Some(map) => map.get(&n.name).map(|s| (n, s)),
            })
            .collect();
        let count = chosen
            .iter()
            .filter(|(n, _)| n.kind != NodeKind::Dir && filters.included(&child_rel(rel, &n.name)))
            .count();
        self.reporter.dir(&DirLine {
            rel,
            tag: if new { Class::Lonely.tag(true, true) } else { tags::DIR },
            count: Some(count as i64),
            verbose_only: false,
        });
        let bytes = chosen
            .iter()
            .filter(|(n, _)| n.kind == NodeKind::File && filters.included(&child_rel(rel, &n.name)))
            .map(|(n, _)| n.size)
            .sum();
        self.reporter.progress(Progress::Found {
            files: count as u64,
            bytes,
        });
        if *sel == Selection::All {
            if let Some(d) = dir {
                for name in &existing {
                    if nodes.binary_search_by(|n| n.name.as_slice().cmp(name)).is_err() {
                        self.extra(d, &child_rel(rel, name), name, true, &mut counts)?;
                    }
                }
            }
        }
        let (subdirs, files): (Vec<_>, Vec<_>) = chosen.into_iter().partition(|(n, _)| n.kind == NodeKind::Dir);
        // From a remote store, the files of a directory are fetched a batch
        // at a time, blobs of one pack in one request.
        let batches: Vec<Vec<(&Node, &Selection)>> = if self.repo.store().backend().reads() == Reads::Requests {
            prefetch_batches(files)
        } else {
            vec![files]
        };
        for part in batches {
            let fetched = self.prefetch(dir, &part)?;
            let results: Vec<Counts> = part
                .par_iter()
                .map(|(node, s)| {
                    let (c, _) = self.restore_node(dir, rel, node, s)?;
                    if c.files.total > 0 {
                        self.reporter.progress(Progress::Done { bytes: c.bytes.total });
                    }
                    Ok(c)
                })
                .collect::<Result<_>>()?;
            self.forget_prefetched(&fetched);
            for c in &results {
                counts.add(c);
            }
        }
        let subdirs = subdirs.into_iter().map(|(n, s)| (n.clone(), s)).collect();
        Ok((counts, subdirs))
    }

    /// Fetches the chunks of the batch's files that will be written (absent
    /// from TARGET) with coalesced reads; returns the ids fetched.
    fn prefetch(&self, dir: Option<&OwnedFd>, part: &[(&Node, &Selection)]) -> Result<Vec<BlobId>> {
        if self.repo.store().backend().reads() == Reads::Disk || self.opts.job.list_only || self.opts.no_copy {
            return Ok(Vec::new());
        }
        let mut wanted = Vec::new();
        for (node, _) in part {
            let NodeContent::Chunks(chunks) = &node.content else {
                continue;
            };
            let absent = dir.is_none_or(|d| {
                rustix::fs::statat(d, OsStr::from_bytes(&node.name), AtFlags::SYMLINK_NOFOLLOW).is_err()
            });
            if node.kind == NodeKind::File && node.size <= PREFETCH_FILE && absent {
                for id in chunks {
                    // A blob the index cannot place is read (and reported) later.
                    if let Ok(loc) = self.repo.locate(id) {
                        wanted.push((*id, loc));
                    }
                }
            }
        }
        let ids: Vec<BlobId> = wanted.iter().map(|(id, _)| *id).collect();
        let store = self.repo.store();
        let got: Vec<(BlobId, Result<Vec<u8>, robovault_store::Error>)> = robovault_store::Store::coalesce(&wanted)
            .par_iter()
            .flat_map_iter(|run| store.read_run(run))
            .collect();
        let mut map = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
        for (id, data) in got {
            // A blob that failed is read again where it is needed, and its
            // error reported there.
            if let Ok(d) = data {
                map.insert(id, d);
            }
        }
        Ok(ids)
    }

    fn forget_prefetched(&self, ids: &[BlobId]) {
        let mut map = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            map.remove(id);
        }
    }

    /// A data blob: prefetched, else read now.
    fn blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let hit = self.prefetched.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        match hit {
            Some(d) => Ok(d),
            None => self.repo.read_blob(id),
        }
    }

    /// Whether a TARGET entry at `rel` is within the scope of extras (§4.5)
    /// and not the protected repository.
    fn extra_in_scope(&self, rel: &[u8], is_dir: bool) -> bool {
        if self.protected.as_deref() == Some(rel) {
            return false;
        }
        let filters = &self.opts.job.filters;
        if is_dir {
            filters.dir_in_scope(rel)
        } else {
            filters.file_in_scope(rel)
        }
    }

    /// A TARGET entry the snapshot lacks: counted and reported with all in
    /// scope below it; deleted under `--purge` unless protected (§5.2).
    /// Returns whether the entry is gone (or would be, under `--list-only`).
    fn extra(&self, dir: &OwnedFd, rel: &[u8], name: &[u8], top: bool, counts: &mut Counts) -> Result<bool> {
        if let ExtraStep::Done(gone) = self.extra_entry(dir, rel, name, top, counts)? {
            return Ok(gone);
        }
        // An extra directory, walked depth first with a list of the levels
        // open in the walk (names left, whether all so far are gone), not a
        // call per level: it may be as deep as the filesystem allows.
        struct Level {
            names: std::vec::IntoIter<Vec<u8>>,
            all_gone: bool,
            parent_len: usize,
        }
        let listed = |path: &[u8]| -> Level {
            let mut names = self.dirs.open(path).and_then(|fd| list_fd(&fd)).unwrap_or_default();
            names.sort();
            Level {
                names: names.into_iter(),
                all_gone: true,
                parent_len: path.iter().rposition(|c| *c == b'/').unwrap_or(0),
            }
        };
        let mut path = rel.to_vec();
        let mut levels = vec![listed(&path)];
        while let Some(level) = levels.last_mut() {
            if let Some(child) = level.names.next() {
                let child_path = child_rel(&path, &child);
                let step = match self.dirs.open(&path) {
                    Ok(fd) => self.extra_entry(&fd, &child_path, &child, false, counts)?,
                    Err(_) => ExtraStep::Done(false),
                };
                match step {
                    ExtraStep::Done(gone) => level.all_gone &= gone,
                    ExtraStep::Enter => {
                        path = child_path;
                        levels.push(listed(&path));
                    }
                }
                continue;
            }
            let (all_gone, parent_len) = (level.all_gone, level.parent_len);
            levels.pop();
            let gone = self.extra_dir_emptied(&path, all_gone, counts)?;
            path.truncate(parent_len);
            match levels.last_mut() {
                Some(up) => up.all_gone &= gone,
                None => return Ok(gone),
            }
        }
        Ok(false)
    }

    /// An extra directory whose entries were all walked: deleted when
    /// purging and all of them are gone. Returns whether it is gone.
    fn extra_dir_emptied(&self, rel: &[u8], all_gone: bool, counts: &mut Counts) -> Result<bool> {
        let purge = self.opts.job.purge && !self.opts.job.classes.exclude_extra;
        if !purge || !all_gone {
            return Ok(false);
        }
        if !self.writes() {
            return Ok(true);
        }
        let (parent, name) = match rel.iter().rposition(|c| *c == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&b""[..], rel),
        };
        let parent_fd = match self.dirs.open(parent) {
            Ok(fd) => fd,
            Err(e) => {
                self.fail(RunError::from_io(rel, "Deleting Extra Directory", &e, 1));
                counts.dirs.failed += 1;
                return Ok(false);
            }
        };
        let gone = self.delete(&parent_fd, rel, name, true, counts)?;
        if gone {
            self.dirs.forget(rel);
        }
        Ok(gone)
    }

    /// One TARGET entry the snapshot lacks, as [`RestoreRun::extra`] says;
    /// an extra directory in scope is counted and reported, and its entries
    /// are left to the caller.
    fn extra_entry(&self, dir: &OwnedFd, rel: &[u8], name: &[u8], top: bool, counts: &mut Counts) -> Result<ExtraStep> {
        let Ok(st) = rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW) else {
            return Ok(ExtraStep::Done(false));
        };
        let is_dir = kind_of(&st) == Some(NodeKind::Dir);
        if self.opts.job.report_all_extras && !is_dir && !self.opts.job.filters.included(rel) {
            self.reporter.entry(&EntryLine {
                rel,
                tag: Class::Extra.tag(false, false),
                size: st.st_size as u64,
                mtime: stat_mtime(&st),
                verbose_only: false,
                full_path: true,
            });
        }
        if !self.extra_in_scope(rel, is_dir) || (top && self.opts.job.classes.exclude_extra) {
            if self.opts.job.purge && self.protected.as_deref() != Some(rel) && !top {
                // A protected entry inside a purged directory: kept, reported under -v.
                self.reporter.entry(&EntryLine {
                    rel,
                    tag: if is_dir { "  *named dir" } else { " *named file" },
                    size: if is_dir { 0 } else { st.st_size as u64 },
                    mtime: stat_mtime(&st),
                    verbose_only: true,
                    full_path: true,
                });
            }
            return Ok(ExtraStep::Done(false));
        }
        let purge = self.opts.job.purge && !self.opts.job.classes.exclude_extra;
        if is_dir {
            counts.dirs.extras += 1;
            self.reporter.dir(&DirLine {
                rel,
                tag: Class::Extra.tag(true, false),
                count: Some(-1),
                verbose_only: false,
            });
            return Ok(ExtraStep::Enter);
        }
        let size = if kind_of(&st) == Some(NodeKind::File) {
            st.st_size as u64
        } else {
            0
        };
        counts.files.extras += 1;
        counts.bytes.extras += size;
        self.reporter.entry(&EntryLine {
            rel,
            tag: Class::Extra.tag(false, false),
            size,
            mtime: stat_mtime(&st),
            verbose_only: false,
            full_path: true,
        });
        if !purge {
            return Ok(ExtraStep::Done(false));
        }
        if !self.writes() {
            return Ok(ExtraStep::Done(true));
        }
        self.delete(dir, rel, name, false, counts).map(ExtraStep::Done)
    }

    /// Deletes one TARGET entry (a directory already emptied), retried; a
    /// failure counts in FAILED only (§4.6).
    fn delete(&self, dir: &OwnedFd, rel: &[u8], name: &[u8], is_dir: bool, counts: &mut Counts) -> Result<bool> {
        let flags = if is_dir { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        let action = if is_dir {
            "Deleting Extra Directory"
        } else {
            "Deleting Extra File"
        };
        let r = self.timed(rel, None, || {
            match rustix::fs::unlinkat(dir, OsStr::from_bytes(name), flags) {
                Ok(()) => Ok(Ok(())),
                Err(e) if e == rustix::io::Errno::NOENT => Ok(Ok(())),
                Err(e) => Ok(Err(Failure::io(action, e.into()))),
            }
        })?;
        match r {
            Ok(()) => Ok(true),
            Err(err) => {
                self.record(err);
                if is_dir {
                    counts.dirs.failed += 1;
                } else {
                    counts.files.failed += 1;
                }
                Ok(false)
            }
        }
    }

    /// Restores one entry into `dir`; a directory to walk into is returned,
    /// opened (or created), not walked.
    fn restore_node(
        &self,
        dir: Option<&OwnedFd>,
        parent_rel: &[u8],
        node: &Node,
        sel: &Selection,
    ) -> Result<(Counts, Option<Descend>)> {
        let rel = child_rel(parent_rel, &node.name);
        let mut counts = Counts::default();
        let is_dir = node.kind == NodeKind::Dir;
        let filters = &self.opts.job.filters;
        let classes = &self.opts.job.classes;
        let size = file_bytes(node);
        let mtime = (node.mtime_sec, node.mtime_nsec);
        if self.protected.as_deref() == Some(rel.as_slice()) {
            // The repository inside a forced mirror's TARGET: never entered,
            // written or deleted, whatever the snapshot holds there (§5.4).
            let row = if is_dir { &mut counts.dirs } else { &mut counts.files };
            row.total += 1;
            row.skipped += 1;
            self.reporter.dir(&DirLine {
                rel: &rel,
                tag: "  *named dir",
                count: None,
                verbose_only: true,
            });
            return Ok((counts, None));
        }
        if is_dir {
            if !filters.within_levels(&rel) {
                return Ok((counts, None));
            }
            counts.dirs.total += 1;
            if filters.dir_excluded(&rel) {
                counts.dirs.skipped += 1;
                self.reporter.dir(&DirLine {
                    rel: &rel,
                    tag: tags::NAMED_DIR,
                    count: None,
                    verbose_only: true,
                });
                return Ok((counts, None));
            }
        } else {
            if !filters.included(&rel) {
                return Ok((counts, None));
            }
            counts.files.total += 1;
            counts.bytes.total += size;
            let rejected = if filters.file_excluded(&rel) {
                Some(tags::NAMED)
            } else {
                filters.reject(&rel, &meta_of_node(node), node.kind, false)
            };
            if let Some(tag) = rejected {
                counts.files.skipped += 1;
                counts.bytes.skipped += size;
                self.reporter.entry(&EntryLine {
                    rel: &rel,
                    tag,
                    size,
                    mtime,
                    verbose_only: true,
                    full_path: false,
                });
                return Ok((counts, None));
            }
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
        let name = OsStr::from_bytes(&node.name);
        let existing = match dir.map(|d| rustix::fs::statat(d, name, AtFlags::SYMLINK_NOFOLLOW)) {
            None => None,
            Some(Ok(st)) => Some(st),
            Some(Err(e)) if e == rustix::io::Errno::NOENT => None,
            Some(Err(e)) => {
                self.fail(RunError::from_io(&rel, "Accessing Destination Directory", &e.into(), 1));
                add_failed(&mut counts, node);
                return Ok((counts, None));
            }
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
            let purge = self.opts.job.purge && !classes.exclude_extra;
            if !purge {
                // A link or another kind in the way: reported and left alone.
                self.mismatch_left(&rel, node, &mut counts);
                return Ok((counts, None));
            }
            // Purging: the target entry leaves as extras (a link itself,
            // never its target), the snapshot's comes in as Lonely.
            let Some(d) = dir else { return Ok((counts, None)) };
            let failed_before = counts.dirs.failed + counts.files.failed;
            if !self.extra(d, &rel, &node.name, false, &mut counts)? {
                let deletion_failed = counts.dirs.failed + counts.files.failed > failed_before;
                if deletion_failed {
                    // The deletion is reported and counted (FAILED only);
                    // the snapshot's entry could not be placed: FAILED too.
                    add_failed(&mut counts, node);
                    return Ok((counts, None));
                }
                // A protected entry (or one holding protected entries) stays:
                // the pair is a mismatch, reported, no error (§5.2).
                self.mismatch_left(&rel, node, &mut counts);
                return Ok((counts, None));
            }
            class = Class::Lonely;
            exists = false;
        }
        if is_dir {
            if class == Class::Lonely && classes.exclude_lonely {
                counts.dirs.skipped += 1;
                return Ok((counts, None));
            }
            return self.restore_subdir(dir, &rel, node, sel, exists, counts);
        }
        let plan = if classes.skips(class) || self.opts.no_copy {
            Plan::Skip
        } else {
            match class {
                Class::Same if classes.include_same => Plan::Write,
                Class::Same => Plan::Skip,
                Class::Tweaked if classes.include_tweaked => Plan::Write,
                // Special files are re-created: opening a device node may act.
                Class::Tweaked if matches!(node.kind, NodeKind::File | NodeKind::Symlink) => Plan::Meta,
                _ => Plan::Write,
            }
        };
        let copied = plan == Plan::Write;
        let line = EntryLine {
            rel: &rel,
            tag: class.tag(false, copied),
            size,
            mtime,
            verbose_only: !copied,
            full_path: false,
        };
        self.reporter.entry(&line);
        let result = match (plan, dir, self.writes()) {
            (Plan::Skip, ..) | (_, None, _) | (_, _, false) => Ok(()),
            (Plan::Meta, Some(d), true) => self.timed(&rel, Some(line), || Ok(self.apply_meta_at(d, node)))?,
            (Plan::Write, Some(d), true) => self.timed(&rel, Some(line), || {
                self.write_entry(d, &rel, node).map(|r| r.map(|_| ()))
            })?,
        };
        match result {
            Ok(()) => {
                if copied {
                    counts.files.copied += 1;
                    counts.bytes.copied += size;
                } else {
                    counts.files.skipped += 1;
                    counts.bytes.skipped += size;
                }
            }
            Err(err) => {
                self.record(err);
                counts.files.failed += 1;
                counts.bytes.failed += size;
            }
        }
        Ok((counts, None))
    }

    /// A snapshot entry facing a target entry of another kind that stays:
    /// counted in Mismatch and reported with its full path.
    fn mismatch_left(&self, rel: &[u8], node: &Node, counts: &mut Counts) {
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

    fn restore_subdir(
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

    /// Whether a snapshot directory holds no file, link or special file at
    /// any depth (an unreadable tree counts as not empty: its failure is
    /// reported where it is restored).
    fn empty_subtree(&self, tree: &TreeId) -> bool {
        let mut stack = vec![*tree];
        while let Some(id) = stack.pop() {
            let Ok(t) = self.repo.read_tree(&id) else { return false };
            for n in t.nodes {
                match n.content {
                    NodeContent::Subtree(sub) if n.kind == NodeKind::Dir => stack.push(sub),
                    _ => return false,
                }
            }
        }
        true
    }

    fn apply_dir_meta(&self, fd: &OwnedFd, m: &DirMeta) -> std::io::Result<()> {
        let d = &self.opts.dcopy;
        if d.owner {
            chown_if_permitted(fd, m.uid, m.gid)?;
        }
        if d.attributes {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(m.mode))?;
        }
        if d.times {
            rustix::fs::futimens(fd, &times(m.mtime))?;
        }
        Ok(())
    }

    /// The mode a restored file gets: the recorded one, adjusted by
    /// `--attr-add R` / `--attr-remove R` (§3.3).
    fn file_mode(&self, mode: u32) -> u32 {
        let mut mode = mode;
        if self.opts.add_readonly {
            mode &= !0o222;
        }
        if self.opts.remove_readonly {
            mode |= 0o200;
        }
        mode
    }

    /// ROBOCOPY.md §4.2 for restore: change times are never compared.
    fn classify(&self, node: &Node, st: &Stat, dir: &OwnedFd) -> Class {
        let mtime = stat_mtime(st);
        if node.kind == NodeKind::Dir {
            return Class::Same;
        }
        match self
            .opts
            .job
            .classes
            .compare_mtime((node.mtime_sec, node.mtime_nsec), mtime)
        {
            std::cmp::Ordering::Greater => return Class::Newer,
            std::cmp::Ordering::Less => return Class::Older,
            std::cmp::Ordering::Equal => {}
        }
        let differs = match node.kind {
            NodeKind::File => st.st_size as u64 != node.size,
            NodeKind::Symlink => {
                let target = rustix::fs::readlinkat(dir, OsStr::from_bytes(&node.name), Vec::new());
                match (&node.content, target) {
                    (NodeContent::Target(t), Ok(found)) => found.as_bytes() != t.as_slice(),
                    _ => true,
                }
            }
            NodeKind::CharDevice | NodeKind::BlockDevice => stat_rdev(st) != node.rdev,
            _ => false,
        };
        if differs {
            return Class::Changed;
        }
        let mode_differs = self.opts.copy.attributes
            && node.kind != NodeKind::Symlink
            && (st.st_mode & 0o7777) != self.file_mode(node.mode);
        let owner_differs = self.opts.copy.owner && (st.st_uid, st.st_gid) != (node.uid, node.gid);
        if mode_differs || owner_differs {
            return Class::Tweaked;
        }
        Class::Same
    }

    /// Applies owner, mode and mtime to an existing entry of the right kind
    /// (Tweaked). A regular file is opened without following links and
    /// changed through its descriptor, so a link swapped in meanwhile is
    /// never followed; a symlink gets owner and times without following it.
    /// Owner first: chown clears setuid and setgid.
    fn apply_meta_at(&self, dir: &OwnedFd, node: &Node) -> std::result::Result<(), Failure> {
        let name = OsStr::from_bytes(&node.name);
        let fail = |e: std::io::Error| Failure::io("Copying File", e);
        if node.kind == NodeKind::Symlink {
            if self.opts.copy.owner {
                chown_at_if_permitted(dir, name, node.uid, node.gid).map_err(fail)?;
            }
            return rustix::fs::utimensat(
                dir,
                name,
                &times((node.mtime_sec, node.mtime_nsec)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| fail(e.into()));
        }
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail(e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| fail(e.into()))?;
        if kind_of(&st) != Some(node.kind) {
            return Err(Failure::fatal_for_item(
                "Copying File",
                "the entry changed during the restore".into(),
            ));
        }
        if self.opts.copy.owner {
            chown_if_permitted(&fd, node.uid, node.gid).map_err(fail)?;
        }
        if self.opts.copy.attributes {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(self.file_mode(node.mode))).map_err(|e| fail(e.into()))?;
        }
        if self.opts.copy.times {
            rustix::fs::futimens(&fd, &times((node.mtime_sec, node.mtime_nsec))).map_err(|e| fail(e.into()))?;
        }
        Ok(())
    }

    /// Creates the entry under a temporary name, then renames it over `name`.
    /// Members of a hard-link group are written once and linked after: the
    /// group's lock is held from the first member's write to its rename.
    fn write_entry(&self, dir: &OwnedFd, rel: &[u8], node: &Node) -> Result<std::result::Result<bool, Failure>> {
        let Some(key) = node.hardlink.filter(|_| node.kind == NodeKind::File) else {
            return self.create_and_rename(dir, node, None);
        };
        let slot = Arc::clone(
            self.links
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key)
                .or_default(),
        );
        let mut first = slot.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.create_and_rename(dir, node, first.as_deref())?;
        if result.is_ok() && first.is_none() {
            *first = Some(rel.to_vec());
        }
        Ok(result)
    }

    fn create_and_rename(
        &self,
        dir: &OwnedFd,
        node: &Node,
        link_from: Option<&[u8]>,
    ) -> Result<std::result::Result<bool, Failure>> {
        let tmp = temp_name();
        let tmp_os = OsStr::from_bytes(&tmp);
        let mut guard = TempEntry {
            dir,
            name: tmp.clone(),
            armed: true,
        };
        let mtime = (node.mtime_sec, node.mtime_nsec);
        let made: std::result::Result<(), Failure> = match (&node.kind, &node.content) {
            (NodeKind::File, NodeContent::Chunks(chunks)) => {
                if link_from.is_some_and(|from| self.link_to(from, dir, &tmp)) {
                    Ok(())
                } else {
                    self.write_file(dir, tmp_os, node, chunks)?
                }
            }
            (NodeKind::Symlink, NodeContent::Target(t)) => rustix::fs::symlinkat(OsStr::from_bytes(t), dir, tmp_os)
                .and_then(|_| rustix::fs::utimensat(dir, tmp_os, &times(mtime), AtFlags::SYMLINK_NOFOLLOW))
                .map_err(|e| Failure::io("Copying File", e.into()))
                .and_then(|_| {
                    if self.opts.copy.owner {
                        chown_at_if_permitted(dir, tmp_os, node.uid, node.gid)
                            .map_err(|e| Failure::io("Copying File", e))
                    } else {
                        Ok(())
                    }
                }),
            (NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice, _) => {
                let ft = match node.kind {
                    NodeKind::Fifo => FileType::Fifo,
                    NodeKind::CharDevice => FileType::CharacterDevice,
                    _ => FileType::BlockDevice,
                };
                rustix::fs::mknodat(dir, tmp_os, ft, Mode::from_raw_mode(node.mode), node.rdev as _)
                    .map_err(std::io::Error::from)
                    .and_then(|_| {
                        if self.opts.copy.owner {
                            chown_at_if_permitted(dir, tmp_os, node.uid, node.gid)
                        } else {
                            Ok(())
                        }
                    })
                    .and_then(|_| chmod_nofollow(dir, tmp_os, node.mode))
                    .and_then(|_| {
                        rustix::fs::utimensat(dir, tmp_os, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(std::io::Error::from)
                    })
                    .map_err(|e| Failure::io("Copying File", e))
            }
            _ => Err(Failure::fatal_for_item(
                "Reading Repository Data",
                "entry without its content".into(),
            )),
        };
        if let Err(f) = made {
            return Ok(Err(f));
        }
        robovault_store::crash_point("restore-before-rename");
        if let Err(e) = rustix::fs::renameat(dir, tmp_os, dir, OsStr::from_bytes(&node.name)) {
            return Ok(Err(Failure::io("Copying File", e.into())));
        }
        guard.armed = false;
        Ok(Ok(true))
    }

    /// Links `tmp` in `dir` to the already restored `first` (relative to
    /// TARGET); false when that fails and the content must be written.
    fn link_to(&self, first: &[u8], dir: &OwnedFd, tmp: &[u8]) -> bool {
        let (parent, name) = match first.iter().rposition(|c| *c == b'/') {
            Some(i) => (&first[..i], &first[i + 1..]),
            None => (&b""[..], first),
        };
        let Ok(parent_fd) = self.dirs.open(parent) else {
            return false;
        };
        rustix::fs::linkat(
            &parent_fd,
            OsStr::from_bytes(name),
            dir,
            OsStr::from_bytes(tmp),
            AtFlags::empty(),
        )
        .is_ok()
    }

    fn write_file(
        &self,
        dir: &OwnedFd,
        tmp: &OsStr,
        node: &Node,
        chunks: &[robovault_store::BlobId],
    ) -> Result<std::result::Result<(), Failure>> {
        let fd = match rustix::fs::openat(
            dir,
            tmp,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => fd,
            Err(e) => return Ok(Err(Failure::io("Copying File", e.into()))),
        };
        let mut file = File::from(fd);
        // Chunks are read, verified and decompressed a few at a time in
        // parallel, then appended in order: a large file is not restored on
        // one core, and the filesystem sees one sequential writer.
        let mut written = 0u64;
        for window in chunks.chunks(RESTORE_WINDOW) {
            if self.opts.run.interrupt.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let decoded: Vec<Result<Vec<u8>>> = window.par_iter().map(|id| self.blob(id)).collect();
            for data in decoded {
                let data = match data {
                    Ok(d) => d,
                    Err(e) => return Ok(Err(Failure::fatal_for_item("Reading Repository Data", e.to_string()))),
                };
                if let Err(e) = write_sparse(&mut file, &data) {
                    return Ok(Err(Failure::io("Copying File", e)));
                }
                written += data.len() as u64;
            }
        }
        // A hole at the end was sought over, not written: set the size.
        if let Err(e) = file.set_len(written) {
            return Ok(Err(Failure::io("Copying File", e)));
        }
        if written != node.size {
            return Ok(Err(Failure::fatal_for_item(
                "Reading Repository Data",
                format!("the chunks hold {written} bytes, the snapshot records {}", node.size),
            )));
        }
        Ok(self
            .finish_file(&file, node)
            .map_err(|e| Failure::io("Copying File", e)))
    }

    fn finish_file(&self, file: &File, node: &Node) -> std::io::Result<()> {
        if self.opts.copy.owner {
            chown_if_permitted(file, node.uid, node.gid)?;
        }
        let copy = &self.opts.copy;
        for (k, v) in node.xattrs.iter().filter(|_| !copy.no_xattrs) {
            // User attributes by default, the others with S (ROBOCOPY.md
            // §3.4); a filesystem without them loses nothing else.
            if k.starts_with(b"user.") || copy.security {
                let _ = xattr::FileExt::set_xattr(file, OsStr::from_bytes(k), v);
            }
        }
        // Without A a restored file gets the usual mode of a new file.
        let mode = self.file_mode(if copy.attributes { node.mode } else { 0o644 });
        rustix::fs::fchmod(file, Mode::from_raw_mode(mode))?;
        if copy.times {
            rustix::fs::futimens(file, &times((node.mtime_sec, node.mtime_nsec)))?;
        }
        Ok(())
    }
}

/// Zero runs this long (aligned in the chunk) are sought over, not written.
const HOLE: usize = 64 << 10;

/// Writes `data` at the file's position, seeking over all-zero pieces of
/// [`HOLE`] bytes: a sparse file comes back sparse (the filesystem leaves
/// the skipped blocks unallocated), and a dense one is written as before.
fn write_sparse(file: &mut File, data: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut pending = 0;
    for (i, piece) in data.chunks(HOLE).enumerate() {
        if piece.iter().all(|b| *b == 0) {
            let at = i * HOLE;
            file.write_all(&data[pending..at])?;
            file.seek(SeekFrom::Current(piece.len() as i64))?;
            pending = at + piece.len();
        }
    }
    file.write_all(&data[pending..])
}

fn file_bytes(node: &Node) -> u64 {
    if node.kind == NodeKind::File {
        node.size
    } else {
        0
    }
}

fn add_failed(counts: &mut Counts, node: &Node) {
    if node.kind == NodeKind::Dir {
        counts.dirs.failed += 1;
    } else {
        counts.files.failed += 1;
        counts.bytes.failed += file_bytes(node);
    }
}

/// Changes the owner; without the privilege to do so, leaves it (§3.4).
fn chown_if_permitted(fd: impl AsFd, uid: u32, gid: u32) -> std::io::Result<()> {
    use rustix::fs::{Gid, Uid};
    match rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::PERM => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn chown_at_if_permitted(dir: &OwnedFd, name: &OsStr, uid: u32, gid: u32) -> std::io::Result<()> {
    use rustix::fs::{Gid, Uid};
    match rustix::fs::chownat(
        dir,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    ) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::PERM => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sets the mode of `name` in `dir` without following a symlink (the umask
/// trimmed what `mknodat` set). Kernels without `fchmodat2` keep that mode.
fn chmod_nofollow(dir: &OwnedFd, name: &OsStr, mode: u32) -> std::io::Result<()> {
    use rustix::io::Errno;
    match rustix::fs::chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(e) if e == Errno::NOSYS || e == Errno::OPNOTSUPP || e == Errno::NOTSUP => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Opens directory `name` inside `dir` without following a symlink.
fn open_dir_at(dir: &OwnedFd, name: &[u8]) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        OsStr::from_bytes(name),
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The names in a directory, `.` and `..` left out.
fn list_fd(dir: &OwnedFd) -> std::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let d = rustix::fs::Dir::read_from(dir)?;
    for entry in d {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_of_nested_paths() {
        let s = Selection::from_paths(&[b"a/b".to_vec(), b"c".to_vec()]).unwrap();
        let Selection::Some(map) = s else { panic!() };
        assert_eq!(map.get(b"c".as_slice()), Some(&Selection::All));
        let Some(Selection::Some(inner)) = map.get(b"a".as_slice()) else {
            panic!()
        };
        assert_eq!(inner.get(b"b".as_slice()), Some(&Selection::All));
        assert_eq!(Selection::from_paths(&[]).unwrap(), Selection::All);
    }
}

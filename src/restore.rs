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
//!         dir -> open or mkdir with O_NOFOLLOW, recurse
//!     names only in TARGET -> Extras (counted, left)
//!     then the directory's own mode and mtime
//! ```

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use robovault_index::ROOT_PATH;
use robovault_store::{valid_name, Node, NodeContent, NodeKind, TreeId};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, Timespec, Timestamps, CWD};

use crate::browse::{choose, resolve, SnapshotChoice};
use crate::paths::{canonical_or_ancestor, child_rel, components};
use crate::repo::{to_blob, Repository};
use crate::report::Reporter;
use crate::retry::{Failure, Retry};
use crate::summary::{Class, Counts, RunError};
use crate::{Error, Result};

/// How a restore runs.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The series; default the repository's only one.
    pub series: Option<String>,
    /// The snapshot.
    pub snapshot: SnapshotChoice,
    /// Relative paths to restore; empty restores everything.
    pub paths: Vec<Vec<u8>>,
    /// Restore owners (uid, gid) where permitted (`/COPY:…O`).
    pub owner: bool,
    /// Retries per failed item.
    pub retries: u32,
    /// Wait between retries.
    pub wait: Duration,
    /// Worker threads; `None` uses every core.
    pub threads: Option<usize>,
    /// Set by a signal handler to stop the run.
    pub interrupt: Arc<AtomicBool>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            series: None,
            snapshot: SnapshotChoice::Latest,
            paths: Vec::new(),
            owner: false,
            retries: 3,
            wait: Duration::from_secs(5),
            threads: None,
            interrupt: Arc::new(AtomicBool::new(false)),
        }
    }
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
    /// The summary rows.
    pub counts: Counts,
    /// Each failure.
    pub errors: Vec<RunError>,
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
/// cannot be created or is the repository, an unreadable root tree.
pub fn restore(
    repo_path: &Path,
    target: &Path,
    opts: &RestoreOptions,
    reporter: &dyn Reporter,
) -> Result<RestoreSummary> {
    let started = Utc::now();
    let repo = Repository::open(repo_path)?;
    let (series, snapshot) = choose(&repo, opts.series.as_deref(), &opts.snapshot)?;
    let target_canon = canonical_or_ancestor(target)?;
    if target_canon.starts_with(repo.path()) {
        return Err(Error::Refused(format!(
            "Target \"{}\" is the repository or lies inside it; restore elsewhere.",
            target_canon.display()
        )));
    }
    let selection = Selection::from_paths(&opts.paths)?;
    for p in &opts.paths {
        resolve(&repo, &snapshot, p)?;
    }
    let created = !target.exists();
    std::fs::create_dir_all(target).map_err(|e| Error::io("creating target directory", target, e))?;
    let target = std::fs::canonicalize(target).map_err(|e| Error::io("resolving", target, e))?;
    let root_fd = rustix::fs::open(
        &target,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("opening target directory", &target, e.into()))?;

    reporter.start(&crate::report::RunStart {
        repository: repo.path().to_owned(),
        repository_created: false,
        series: series.name.clone(),
        snapshot: Some(snapshot.snap_id.clone()),
    });
    let run = RestoreRun {
        repo: &repo,
        opts,
        reporter,
        errors: Mutex::new(Vec::new()),
        links: Mutex::new(HashMap::new()),
        target: target.clone(),
    };
    let threads = opts.threads.unwrap_or_else(crate::backup::default_threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {threads} worker threads: {e}")))?;
    let mut counts = pool.install(|| run.restore_dir(&root_fd, &to_blob(&snapshot.root_tree), b"", &selection))?;
    counts.dirs.total += 1;
    if created {
        counts.dirs.copied += 1;
        reporter.dir(b"", Class::Lonely, true);
    } else {
        counts.dirs.skipped += 1;
        reporter.dir(b"", Class::Same, false);
    }
    if selection == Selection::All {
        if let Some(root) = repo.index()?.version_at(series.key, ROOT_PATH, snapshot.seq)? {
            let meta = DirMeta {
                mode: root.entry.mode,
                uid: root.entry.uid,
                gid: root.entry.gid,
                mtime: (root.entry.mtime_sec, root.entry.mtime_nsec),
            };
            if let Err(e) = run.apply_dir_meta(&root_fd, &meta) {
                run.fail(RunError::from_io(b"", "Copying Directory Metadata", &e, 1));
                counts.dirs.failed += 1;
            }
        }
    }
    let mut errors = run.errors.into_inner().unwrap_or_else(|p| p.into_inner());
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    if opts.interrupt.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    Ok(RestoreSummary {
        repository: repo.path().to_owned(),
        series: series.name,
        snapshot: snapshot.snap_id,
        target,
        started,
        ended: Utc::now(),
        exit_code: counts.exit_code(),
        counts,
        errors,
    })
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
    errors: Mutex<Vec<RunError>>,
    /// Hard-link groups: (dev, ino) of the source → path relative to TARGET
    /// of the first member restored, behind the group's own lock.
    links: Mutex<HashMap<(u64, u64), LinkSlot>>,
    target: PathBuf,
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

fn temp_name() -> Vec<u8> {
    format!(".rvtmp-{:016x}", rand_u64()).into_bytes()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

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

impl RestoreRun<'_> {
    fn fail(&self, err: RunError) {
        self.reporter.error(&err, crate::report::Next::NotRetried);
        self.record(err);
    }

    /// Records a failure that was already reported.
    fn record(&self, err: RunError) {
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).push(err);
    }

    fn retry(&self) -> Retry<'_> {
        Retry {
            retries: self.opts.retries,
            wait: self.opts.wait,
            interrupt: &self.opts.interrupt,
            reporter: self.reporter,
        }
    }

    fn restore_dir(&self, dir: &OwnedFd, tree: &TreeId, rel: &[u8], sel: &Selection) -> Result<Counts> {
        if self.opts.interrupt.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let mut counts = Counts::default();
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
                return Ok(counts);
            }
        };
        let existing = list_fd(dir).unwrap_or_default();
        let chosen: Vec<(&Node, &Selection)> = nodes
            .iter()
            .filter_map(|n| match sel {
                Selection::All => Some((n, &Selection::All)),
                Selection::Some(map) => map.get(&n.name).map(|s| (n, s)),
            })
            .collect();
        let results: Vec<Counts> = chosen
            .par_iter()
            .map(|(node, s)| self.restore_node(dir, rel, node, s))
            .collect::<Result<_>>()?;
        for c in &results {
            counts.add(c);
        }
        if *sel == Selection::All {
            for name in existing {
                if nodes.binary_search_by(|n| n.name.as_slice().cmp(&name)).is_err() {
                    self.count_extra(dir, &child_rel(rel, &name), &name, &mut counts);
                }
            }
        }
        Ok(counts)
    }

    /// Counts a TARGET entry the snapshot lacks, and all below it (§4.6).
    fn count_extra(&self, dir: &OwnedFd, rel: &[u8], name: &[u8], counts: &mut Counts) {
        let Ok(st) = rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW) else {
            return;
        };
        if kind_of(&st) == Some(NodeKind::Dir) {
            counts.dirs.extras += 1;
            self.reporter.dir(rel, Class::Extra, false);
            if let Ok(sub) = open_dir_at(dir, name) {
                for child in list_fd(&sub).unwrap_or_default() {
                    self.count_extra(&sub, &child_rel(rel, &child), &child, counts);
                }
            }
        } else {
            counts.files.extras += 1;
            let size = if kind_of(&st) == Some(NodeKind::File) {
                st.st_size as u64
            } else {
                0
            };
            counts.bytes.extras += size;
            self.reporter.file(rel, Class::Extra, false, size);
        }
    }

    fn restore_node(&self, dir: &OwnedFd, parent_rel: &[u8], node: &Node, sel: &Selection) -> Result<Counts> {
        let rel = child_rel(parent_rel, &node.name);
        let mut counts = Counts::default();
        let is_dir = node.kind == NodeKind::Dir;
        if is_dir {
            counts.dirs.total += 1;
        } else {
            counts.files.total += 1;
            counts.bytes.total += file_bytes(node);
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
            return Ok(counts);
        }
        let name = OsStr::from_bytes(&node.name);
        let existing = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(st),
            Err(e) if e == rustix::io::Errno::NOENT => None,
            Err(e) => {
                self.fail(RunError::from_io(&rel, "Accessing Destination", &e.into(), 1));
                add_failed(&mut counts, node);
                return Ok(counts);
            }
        };
        let class = match &existing {
            None => Class::Lonely,
            Some(st) if kind_of(st) != Some(node.kind) => Class::Mismatched,
            Some(st) => self.classify(node, st, dir),
        };
        if class == Class::Mismatched {
            // A link or another kind in the way: reported and left alone.
            if is_dir {
                counts.dirs.mismatch += 1;
            } else {
                counts.files.mismatch += 1;
                counts.bytes.mismatch += file_bytes(node);
            }
            self.reporter.file(&rel, Class::Mismatched, false, file_bytes(node));
            return Ok(counts);
        }
        if is_dir {
            return self.restore_subdir(dir, &rel, node, sel, existing.is_some(), counts);
        }
        let result = match class {
            Class::Same => Ok(Ok(false)),
            // Special files are re-created: opening a device node may act.
            Class::Tweaked if matches!(node.kind, NodeKind::File | NodeKind::Symlink) => self
                .retry()
                .run(&rel, || Ok(self.apply_meta_at(dir, node).map(|_| false))),
            _ => self.retry().run(&rel, || self.write_entry(dir, &rel, node)),
        };
        let size = file_bytes(node);
        match result? {
            Ok(_) => {
                let copied = !matches!(class, Class::Same | Class::Tweaked);
                if copied {
                    counts.files.copied += 1;
                    counts.bytes.copied += size;
                } else {
                    counts.files.skipped += 1;
                    counts.bytes.skipped += size;
                }
                self.reporter.file(&rel, class, copied, size);
            }
            Err(err) => {
                self.record(err);
                counts.files.failed += 1;
                counts.bytes.failed += size;
            }
        }
        Ok(counts)
    }

    fn restore_subdir(
        &self,
        dir: &OwnedFd,
        rel: &[u8],
        node: &Node,
        sel: &Selection,
        exists: bool,
        mut counts: Counts,
    ) -> Result<Counts> {
        let NodeContent::Subtree(tree) = &node.content else {
            self.fail(RunError {
                path: rel.to_vec(),
                action: "Reading Repository Data".into(),
                code: 0,
                message: "directory without a tree".into(),
                attempts: 1,
            });
            counts.dirs.failed += 1;
            return Ok(counts);
        };
        let name = OsStr::from_bytes(&node.name);
        let opened = self.retry().run(rel, || {
            if !exists {
                match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(e) if e == rustix::io::Errno::EXIST => {}
                    Err(e) => return Ok(Err(Failure::io("Creating Destination Directory", e.into()))),
                }
            }
            Ok(open_dir_at(dir, &node.name).map_err(|e| Failure::io("Creating Destination Directory", e)))
        })?;
        let sub = match opened {
            Ok(fd) => fd,
            Err(err) => {
                self.record(err);
                counts.dirs.failed += 1;
                return Ok(counts);
            }
        };
        if exists {
            counts.dirs.skipped += 1;
            self.reporter.dir(rel, Class::Same, false);
        } else {
            counts.dirs.copied += 1;
            self.reporter.dir(rel, Class::Lonely, true);
        }
        counts.add(&self.restore_dir(&sub, tree, rel, sel)?);
        let meta = DirMeta {
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            mtime: (node.mtime_sec, node.mtime_nsec),
        };
        if *sel == Selection::All {
            if let Err(e) = self.apply_dir_meta(&sub, &meta) {
                self.fail(RunError::from_io(rel, "Copying Directory Metadata", &e, 1));
                counts.dirs.failed += 1;
            }
        }
        Ok(counts)
    }

    fn apply_dir_meta(&self, fd: &OwnedFd, m: &DirMeta) -> std::io::Result<()> {
        if self.opts.owner {
            chown_if_permitted(fd, m.uid, m.gid)?;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(m.mode))?;
        rustix::fs::futimens(fd, &times(m.mtime))?;
        Ok(())
    }

    /// ROBOCOPY.md §4.2 for restore: change times are never compared.
    fn classify(&self, node: &Node, st: &Stat, dir: &OwnedFd) -> Class {
        let mtime = stat_mtime(st);
        if node.kind == NodeKind::Dir {
            return Class::Same;
        }
        let node_mtime = (node.mtime_sec, node.mtime_nsec);
        if mtime != node_mtime {
            return if node_mtime > mtime { Class::Newer } else { Class::Older };
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
        let mode_differs = node.kind != NodeKind::Symlink && (st.st_mode & 0o7777) != node.mode;
        let owner_differs = self.opts.owner && (st.st_uid, st.st_gid) != (node.uid, node.gid);
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
            if self.opts.owner {
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
        if self.opts.owner {
            chown_if_permitted(&fd, node.uid, node.gid).map_err(fail)?;
        }
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(node.mode)).map_err(|e| fail(e.into()))?;
        rustix::fs::futimens(&fd, &times((node.mtime_sec, node.mtime_nsec))).map_err(|e| fail(e.into()))
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
                    if self.opts.owner {
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
                        if self.opts.owner {
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
        let Ok(parent_fd) = open_rel_dir(&self.target, parent) else {
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
            if self.opts.interrupt.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let decoded: Vec<Result<Vec<u8>>> = window.par_iter().map(|id| self.repo.read_blob(id)).collect();
            for data in decoded {
                let data = match data {
                    Ok(d) => d,
                    Err(e) => return Ok(Err(Failure::fatal_for_item("Reading Repository Data", e.to_string()))),
                };
                if let Err(e) = file.write_all(&data) {
                    return Ok(Err(Failure::io("Copying File", e)));
                }
                written += data.len() as u64;
            }
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
        if self.opts.owner {
            chown_if_permitted(file, node.uid, node.gid)?;
        }
        for (k, v) in &node.xattrs {
            // User attributes by default (ROBOCOPY.md §3.4); a filesystem
            // without them loses nothing else.
            if k.starts_with(b"user.") {
                let _ = xattr::FileExt::set_xattr(file, OsStr::from_bytes(k), v);
            }
        }
        rustix::fs::fchmod(file, Mode::from_raw_mode(node.mode))?;
        rustix::fs::futimens(file, &times((node.mtime_sec, node.mtime_nsec)))?;
        Ok(())
    }
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

/// Opens `rel` below `root` one component at a time, never following links.
fn open_rel_dir(root: &Path, rel: &[u8]) -> std::io::Result<OwnedFd> {
    let mut fd = rustix::fs::openat(
        CWD,
        root,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for part in rel.split(|c| *c == b'/').filter(|p| !p.is_empty()) {
        fd = open_dir_at(&fd, part)?;
    }
    Ok(fd)
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

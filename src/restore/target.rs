//! The directories of TARGET, opened by their path below it.
//!
//! A restore walks as deep as the snapshot goes, and the filesystem allows
//! more levels than a process has descriptors: no descriptor is held per
//! level. A few recently opened directories are kept; any other is opened
//! again from TARGET's root, or from its parent when that one is kept, with
//! `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH)` on pieces of its path
//! shorter than `PATH_MAX`: no symlink is followed on the way, as when each
//! level was opened from the one above (ROBOCOPY.md §5.3).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::*;

/// Directories kept open, at most; with a few per worker thread in use,
/// a restore stays far below a low descriptor limit.
const KEPT: usize = 32;

/// Levels above a directory opened from afar that are kept with it.
const AHEAD: usize = 16;

/// One `openat2` resolves at most this many bytes of path (below `PATH_MAX`).
const PIECE: usize = 3072;

/// TARGET's root and a few directories below it, by relative path.
pub(super) struct TargetDirs {
    root: Option<Arc<OwnedFd>>,
    kept: Mutex<VecDeque<(Vec<u8>, Arc<OwnedFd>)>>,
}

impl TargetDirs {
    /// `root` is TARGET, or `None` when it does not exist (`--list-only`).
    pub(super) fn new(root: Option<OwnedFd>) -> TargetDirs {
        TargetDirs {
            root: root.map(Arc::new),
            kept: Mutex::new(VecDeque::new()),
        }
    }

    pub(super) fn root(&self) -> Option<&OwnedFd> {
        self.root.as_deref()
    }

    /// The directory `rel` below TARGET, never through a symlink.
    pub(super) fn open(&self, rel: &[u8]) -> std::io::Result<Arc<OwnedFd>> {
        let Some(root) = &self.root else {
            return Err(Errno::NOENT.into());
        };
        if rel.is_empty() {
            return Ok(Arc::clone(root));
        }
        if let Some(fd) = self.kept(rel) {
            return Ok(fd);
        }
        let parent = match rel.iter().rposition(|c| *c == b'/') {
            Some(i) => self.kept(&rel[..i]).map(|fd| (fd, i + 1)),
            None => Some((Arc::clone(root), 0)),
        };
        if let Some((parent, at)) = parent {
            let fd = Arc::new(open_dir_at(&parent, &rel[at..])?);
            self.keep(rel, &fd);
            return Ok(fd);
        }
        self.open_missed(root, rel)
    }

    /// Opens `rel`, whose parent is not kept, from its nearest kept
    /// ancestor (or the root), and keeps it and the [`AHEAD`] levels above
    /// it: the next directory asked for is most often its parent, when a
    /// walk goes back up to apply metadata.
    fn open_missed(&self, root: &Arc<OwnedFd>, rel: &[u8]) -> std::io::Result<Arc<OwnedFd>> {
        let (mut fd, start) = self.nearest_kept(rel).unwrap_or_else(|| (Arc::clone(root), 0));
        let seps: Vec<usize> = rel[start..]
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == b'/')
            .map(|(i, _)| start + i)
            .collect();
        // Levels above the last AHEAD are passed in a few calls.
        if seps.len() > AHEAD {
            let upto = seps[seps.len() - AHEAD];
            fd = Arc::new(open_below(&fd, &rel[start..upto])?);
            self.keep(&rel[..upto], &fd);
        }
        let mut at = if seps.len() > AHEAD {
            seps[seps.len() - AHEAD] + 1
        } else {
            start
        };
        for end in seps.iter().rev().take(AHEAD).rev().copied().chain([rel.len()]) {
            if end < at {
                continue;
            }
            fd = Arc::new(open_dir_at(&fd, &rel[at..end])?);
            self.keep(&rel[..end], &fd);
            at = end + 1;
        }
        Ok(fd)
    }

    /// The deepest kept directory above `rel`, and where below it `rel`
    /// goes on.
    fn nearest_kept(&self, rel: &[u8]) -> Option<(Arc<OwnedFd>, usize)> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter()
            .filter(|(k, _)| rel.len() > k.len() && rel[k.len()] == b'/' && rel.starts_with(k))
            .max_by_key(|(k, _)| k.len())
            .map(|(k, fd)| (Arc::clone(fd), k.len() + 1))
    }

    /// Keeps `fd` as the directory `rel` (just created or opened).
    pub(super) fn keep(&self, rel: &[u8], fd: &Arc<OwnedFd>) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|(k, _)| k != rel);
        if kept.len() >= KEPT {
            kept.pop_front();
        }
        kept.push_back((rel.to_vec(), Arc::clone(fd)));
    }

    /// Forgets `rel` and everything below it: it was deleted, and a
    /// directory created there later is another one.
    pub(super) fn forget(&self, rel: &[u8]) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|(k, _)| !(k.starts_with(rel) && (k.len() == rel.len() || k[rel.len()] == b'/')));
    }

    fn kept(&self, rel: &[u8]) -> Option<Arc<OwnedFd>> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().rev().find(|(k, _)| k == rel).map(|(_, fd)| Arc::clone(fd))
    }
}

/// Opens `rel` below `dir` a piece of at most [`PIECE`] bytes at a time,
/// following no symlink; one component at a time where `openat2` is not
/// available.
pub(super) fn open_below(dir: &OwnedFd, rel: &[u8]) -> std::io::Result<OwnedFd> {
    let mut cur: Option<OwnedFd> = None;
    for piece in pieces(rel) {
        let from = cur.as_ref().unwrap_or(dir);
        let next = match rustix::fs::openat2(
            from,
            OsStr::from_bytes(piece),
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            // Seccomp filters answer ENOSYS or EPERM for calls they do not know.
            Err(e) if e == Errno::NOSYS || e == Errno::PERM => by_components(from, piece)?,
            Err(e) => return Err(e.into()),
        };
        cur = Some(next);
    }
    cur.ok_or_else(|| Errno::INVAL.into())
}

fn by_components(dir: &OwnedFd, rel: &[u8]) -> std::io::Result<OwnedFd> {
    let mut cur: Option<OwnedFd> = None;
    for part in rel.split(|c| *c == b'/').filter(|p| !p.is_empty()) {
        let next = open_dir_at(cur.as_ref().unwrap_or(dir), part)?;
        cur = Some(next);
    }
    cur.ok_or_else(|| Errno::INVAL.into())
}

/// `rel` cut at separators into pieces of at most [`PIECE`] bytes (a name
/// longer than that, which no filesystem allows, is a piece of its own).
fn pieces(rel: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = rel;
    while rest.len() > PIECE {
        let cut = match rest[..=PIECE].iter().rposition(|c| *c == b'/') {
            Some(s) if s > 0 => s,
            _ => match rest.iter().skip(1).position(|c| *c == b'/') {
                Some(j) => j + 1,
                None => break,
            },
        };
        out.push(&rest[..cut]);
        rest = &rest[cut + 1..];
    }
    out.push(rest);
    out.retain(|p| !p.is_empty());
    out
}

/// The restore refusals of ROBOCOPY.md §5.4, checked before anything is
/// written. Returns the path of the repository relative to TARGET when a
/// forced mirror must protect it.
pub(super) fn check_restore_target(repo: &Repository, target: &Path, opts: &RestoreOptions) -> Result<Option<Vec<u8>>> {
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

/// How restore's temporary files start; 16 hex digits follow.
pub(super) const TEMP_PREFIX: &str = ".rvtmp-";

pub(super) fn temp_name() -> Vec<u8> {
    format!("{TEMP_PREFIX}{:016x}", rand_u64()).into_bytes()
}

pub(super) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    // Each RandomState has keys of its own (randomly seeded, then stepped),
    // so hashing a counter gives a fresh value every call.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    RandomState::new().hash_one(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Removes a temporary entry unless disarmed.
pub(super) struct TempEntry<'a> {
    pub(super) dir: &'a OwnedFd,
    pub(super) name: Vec<u8>,
    pub(super) armed: bool,
}

impl Drop for TempEntry<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = rustix::fs::unlinkat(self.dir, OsStr::from_bytes(&self.name), AtFlags::empty());
        }
    }
}

/// Opens directory `name` inside `dir` without following a symlink.
pub(super) fn open_dir_at(dir: &OwnedFd, name: &[u8]) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        OsStr::from_bytes(name),
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The names in a directory, `.` and `..` left out.
pub(super) fn list_fd(dir: &OwnedFd) -> std::io::Result<Vec<Vec<u8>>> {
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

impl RestoreRun<'_> {
    /// Whether `name` in `dir` is a temporary file a killed restore left (a
    /// regular file named as `temp_name` names them). It is no extra of the
    /// user's: it is removed (unless nothing may be written) and not listed.
    pub(super) fn left_by_a_killed_restore(&self, dir: &OwnedFd, name: &[u8]) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_short_and_rejoin_to_the_path() {
        let rel: Vec<u8> = std::iter::repeat_n(&b"abc/"[..], 5000).flatten().copied().collect();
        let rel = &rel[..rel.len() - 1];
        let ps = pieces(rel);
        assert!(ps.len() > 1);
        assert!(ps
            .iter()
            .all(|p| p.len() <= PIECE && !p.starts_with(b"/") && !p.ends_with(b"/")));
        assert_eq!(ps.join(&b'/'), rel);
        assert_eq!(pieces(b"a/b"), vec![&b"a/b"[..]]);
    }
}

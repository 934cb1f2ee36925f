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
            let fd = Arc::new(super::open_dir_at(&parent, &rel[at..])?);
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
            fd = Arc::new(super::open_dir_at(&fd, &rel[at..end])?);
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
        let next = super::open_dir_at(cur.as_ref().unwrap_or(dir), part)?;
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

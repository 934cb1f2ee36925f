//! Modes, owners, times and extended attributes of restored entries, as
//! `--copy` and `--dcopy` ask (ROBOCOPY.md §3.4). Everything is applied
//! through a descriptor or an `*at` call that does not follow a symlink
//! (§5.3); an owner is changed only where the process may.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use robovault_store::{Node, NodeKind};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};

use crate::retry::Failure;

use super::*;

pub(super) struct DirMeta {
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: (i64, u32),
}

pub(super) fn timespec(t: (i64, u32)) -> Timespec {
    Timespec {
        tv_sec: t.0,
        tv_nsec: t.1 as _,
    }
}

pub(super) fn times(t: (i64, u32)) -> Timestamps {
    Timestamps {
        last_access: timespec(t),
        last_modification: timespec(t),
    }
}

/// Changes the owner; without the privilege to do so, leaves it (§3.4).
pub(super) fn chown_if_permitted(fd: impl AsFd, uid: u32, gid: u32) -> std::io::Result<()> {
    use rustix::fs::{Gid, Uid};
    match rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::PERM => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn chown_at_if_permitted(dir: &OwnedFd, name: &OsStr, uid: u32, gid: u32) -> std::io::Result<()> {
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
pub(super) fn chmod_nofollow(dir: &OwnedFd, name: &OsStr, mode: u32) -> std::io::Result<()> {
    use rustix::io::Errno;
    match rustix::fs::chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(e) if e == Errno::NOSYS || e == Errno::OPNOTSUPP || e == Errno::NOTSUP => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl RestoreRun<'_> {
    pub(super) fn apply_dir_meta(&self, fd: &OwnedFd, m: &DirMeta) -> std::io::Result<()> {
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
    pub(super) fn file_mode(&self, mode: u32) -> u32 {
        let mut mode = mode;
        if self.opts.add_readonly {
            mode &= !0o222;
        }
        if self.opts.remove_readonly {
            mode |= 0o200;
        }
        mode
    }
    /// Applies owner, mode and mtime to an existing entry of the right kind
    /// (Tweaked). A regular file is opened without following links and
    /// changed through its descriptor, so a link swapped in meanwhile is
    /// never followed; a symlink gets owner and times without following it.
    /// Owner first: chown clears setuid and setgid.
    pub(super) fn apply_meta_at(&self, dir: &OwnedFd, node: &Node) -> std::result::Result<(), Failure> {
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
}

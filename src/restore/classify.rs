//! Deciding, without writing: a snapshot entry against what TARGET holds
//! under its name (ROBOCOPY.md §4.2), the [`Plan`] for it, and whether a
//! TARGET entry is an extra in scope (§4.5). The acting code carries the
//! decisions out.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use robovault_store::{Node, NodeContent, NodeKind};
use rustix::fs::{FileType, Stat};

use crate::node::SourceMeta;
use crate::summary::{Class, Counts};

use super::*;

// `struct stat` field types differ between architectures.
#[allow(clippy::unnecessary_cast)]
pub(super) fn stat_mtime(st: &Stat) -> (i64, u32) {
    (st.st_mtime as i64, st.st_mtime_nsec as u32)
}

#[allow(clippy::unnecessary_cast)]
pub(super) fn stat_rdev(st: &Stat) -> u64 {
    st.st_rdev as u64
}

pub(super) fn kind_of(st: &Stat) -> Option<NodeKind> {
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

/// What a restore does with one snapshot entry, decided before it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Leave the target entry as it is.
    Skip,
    /// Apply metadata only (Tweaked).
    Meta,
    /// Write the entry (temporary name, then rename).
    Write,
}

pub(super) fn meta_of_node(node: &Node) -> SourceMeta {
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

pub(super) fn file_bytes(node: &Node) -> u64 {
    if node.kind == NodeKind::File {
        node.size
    } else {
        0
    }
}

pub(super) fn add_failed(counts: &mut Counts, node: &Node) {
    if node.kind == NodeKind::Dir {
        counts.dirs.failed += 1;
    } else {
        counts.files.failed += 1;
        counts.bytes.failed += file_bytes(node);
    }
}

impl RestoreRun<'_> {
    /// Whether a TARGET entry at `rel` is within the scope of extras (§4.5)
    /// and not the protected repository.
    pub(super) fn extra_in_scope(&self, rel: &[u8], is_dir: bool) -> bool {
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
    /// ROBOCOPY.md §4.2 for restore: change times are never compared.
    pub(super) fn classify(&self, node: &Node, st: &Stat, dir: &OwnedFd) -> Class {
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
}

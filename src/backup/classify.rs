//! Deciding, without reading: the class of an entry against its baseline
//! entry (ROBOCOPY.md §4.2), the row change it makes in the index, kind
//! mismatches (§4.4), vanished and failed entries, and whether a stored
//! blob may be reused while a pack is lost.

use robovault_index::{ChildVersion, Entry, Index, PathId, VersionKey};
use robovault_store::NodeKind;

use super::listing::Link;
use super::session::Recording;
use super::Run;
use crate::convert::to_pack;
use crate::job::ClassSwitches;
use crate::node::{Names, SourceMeta};
use crate::packcheck::{Lost, Presence};
use crate::report::EntryLine;
use crate::summary::{Class, Counts, RunError};
use crate::Result;

/// A change to the catalog that a directory's processing decided.
pub(super) enum RowAction {
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
pub(super) struct Outcome {
    pub(super) node: Option<robovault_store::Node>,
    pub(super) rows: Vec<RowAction>,
    pub(super) counts: Counts,
}

pub(super) fn is_vanished(e: &std::io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(rustix::io::Errno::NOENT.raw_os_error()) || code == Some(rustix::io::Errno::NOTDIR.raw_os_error())
}

pub(super) fn is_dir_entry(b: &ChildVersion) -> bool {
    b.entry.kind == NodeKind::Dir.code()
}

/// The log's note on a pack the run found lost.
pub(super) fn lost_note(pack: &robovault_index::Hash32, why: Lost) -> String {
    let what = match why {
        Lost::Missing => "is missing from the repository",
        Lost::Damaged => "is damaged (not as the index recorded it)",
    };
    format!(
        "pack {} {what}; its content is stored again where the source still has it",
        to_pack(pack).to_hex()
    )
}

/// The row change for an entry present in the baseline: none when it is the
/// same version, an in-place update when only change-detection fields moved,
/// else a new version.
pub(super) fn row_for(old: VersionKey, path: PathId, base: &Entry, entry: Entry) -> Option<RowAction> {
    if entry.same_version(base) {
        let moved = (entry.dev, entry.ino, entry.ctime_sec, entry.ctime_nsec)
            != (base.dev, base.ino, base.ctime_sec, base.ctime_nsec);
        return moved.then_some(RowAction::Update { old, entry });
    }
    Some(RowAction::Replace { old, path, entry })
}

/// ROBOCOPY.md §4.2, for a non-directory present on both sides with the same kind.
pub(super) fn classify(
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

/// How an entry vanished after the walk listed it.
pub(super) enum Gone<'a> {
    /// This error, not reported yet.
    Io(&'a std::io::Error),
    /// A failure the retries already reported.
    Reported(RunError),
}

impl Run<'_> {
    /// The row change for an entry present in the baseline.
    pub(super) fn row_for(&self, b: &ChildVersion, entry: Entry) -> Option<RowAction> {
        if self.base.fresh {
            return Some(RowAction::Open {
                path: Some(b.path),
                name: b.name.clone(),
                entry,
            });
        }
        row_for(b.key, b.path, &b.entry, entry)
    }

    /// A source entry facing a baseline entry of another kind (§4.4): with
    /// purging (the default) the baseline side leaves as extras and the
    /// source comes in as Lonely (`Ok(true)`); under `--keep-extras` or
    /// `--xx` the pair is reported `*MISMATCH` and the baseline kept.
    pub(super) fn mismatch(
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

    /// An entry that vanished between the walk and its read: not in the new
    /// snapshot; FAILED, or Skipped under `--ignore-vanished` (§1, §7.1).
    pub(super) fn vanished(
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

    /// A non-directory that failed before its content was read; `size` is
    /// what it added to the Bytes row's Total.
    pub(super) fn failed_item(
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

    /// Whether blob `id` is stored in a pack this run may point into. A lost
    /// pack is named in the log the first time the run meets it.
    pub(super) fn reusable(
        &self,
        sink: &Recording<'_>,
        index: &Index,
        id: &robovault_index::Hash32,
    ) -> robovault_index::Result<bool> {
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

    /// A Same file whose baseline content is not all in packs the run may
    /// reuse is read again (Lost): the source still has what the
    /// repository lost.
    pub(super) fn unless_lost(&self, class: Class, kind: NodeKind, base: Option<&ChildVersion>) -> Result<Class> {
        let Some(sink) = self.session.recording() else {
            return Ok(class);
        };
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

/// What a selected non-directory's class means for its run (ROBOCOPY.md
/// §4.2, §4.3): whether its content is read again, and when its line is
/// written.
pub(super) struct FilePlan {
    pub(super) class: Class,
    /// Whether the content is read again; Same without `--is` is not.
    pub(super) reread: bool,
    /// Tweaked and Modified count as copied only if the content changed
    /// (or `--it` forces Tweaked): their line waits for the outcome.
    pub(super) decided_after: bool,
}

impl FilePlan {
    pub(super) fn new(class: Class, switches: &ClassSwitches) -> FilePlan {
        FilePlan {
            class,
            reread: class != Class::Same || switches.include_same,
            decided_after: class == Class::Modified || (class == Class::Tweaked && !switches.include_tweaked),
        }
    }

    /// Whether the entry's line is written before its content is read;
    /// otherwise it is written with the outcome (a Same file not read is
    /// listed with its skip).
    pub(super) fn line_first(&self) -> bool {
        !self.decided_after && (self.class != Class::Same || self.reread)
    }

    /// Whether the entry counts Copied, given whether its content is the
    /// baseline's. Under `--list-only` nothing is read: the content is
    /// presumed unchanged, the common case (a chmod, a touch).
    pub(super) fn copied(&self, switches: &ClassSwitches, same_content: bool) -> bool {
        match self.class {
            Class::Same => self.reread,
            Class::Tweaked if switches.include_tweaked => true,
            Class::Tweaked | Class::Modified => !same_content,
            _ => true,
        }
    }
}

/// What a listed source entry is to the run, from its `lstat` and what
/// `--follow-links` made of it.
pub(super) enum Seen {
    /// A directory link that would loop (§4.5).
    Cycle,
    /// A socket: counted, never recorded.
    Unrecorded,
    Dir,
    NonDir {
        kind: NodeKind,
        /// A symlink whose target is recorded in its place.
        follow: bool,
    },
}

impl Seen {
    pub(super) fn of(meta: &SourceMeta, link: Link) -> Seen {
        if link == Link::Cycle {
            return Seen::Cycle;
        }
        match meta.kind {
            None => Seen::Unrecorded,
            Some(NodeKind::Dir) => Seen::Dir,
            Some(kind) => Seen::NonDir {
                kind,
                follow: link == Link::Followed,
            },
        }
    }
}

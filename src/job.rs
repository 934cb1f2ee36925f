//! What a job selects and how it treats each class (ROBOCOPY.md §3.1, §3.3,
//! §4.3, §4.5): name patterns, depth, attribute, size, age and link filters,
//! and the class switches. Backup and restore share these rules; the CLI
//! fills [`JobOptions`] from switches and job files.

use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use wildmatch::WildMatch;

use crate::node::SourceMeta;
use crate::{Error, Result};
use robovault_store::NodeKind;

/// A name or path pattern with `*` and `?` (§3.3).
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    /// One matcher per path component; a single one for a name pattern.
    parts: Vec<Part>,
    /// A pattern with a separator is a path anchored at the job root.
    is_path: bool,
}

#[derive(Debug, Clone)]
enum Part {
    /// `*.*` and `*`: every name, with or without a dot.
    Any,
    Wild(WildMatch),
}

impl Part {
    fn matches(&self, name: &str) -> bool {
        match self {
            Part::Any => true,
            Part::Wild(w) => w.matches(name),
        }
    }
}

impl Pattern {
    /// Parses a pattern; an absolute one must lie under `root` and is made
    /// relative to it.
    ///
    /// # Errors
    /// [`Error::Usage`] for an empty pattern, or an absolute one outside the root.
    pub fn new(text: &str, root: &std::path::Path, case_sensitive: bool) -> Result<Pattern> {
        let unified = text.replace('\\', "/");
        let rel = if unified.starts_with('/') {
            let root = root.as_os_str().as_bytes();
            let root = String::from_utf8_lossy(root);
            let root = root.trim_end_matches('/');
            match unified.strip_prefix(root) {
                Some(rest) if rest.starts_with('/') || rest.is_empty() => rest.to_owned(),
                _ => {
                    return Err(Error::Usage(format!(
                        "the pattern \"{text}\" is an absolute path outside the job root {root}/"
                    )))
                }
            }
        } else {
            unified
        };
        let components: Vec<&str> = rel.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        if components.is_empty() {
            return Err(Error::Usage(format!("the pattern \"{text}\" names no entry")));
        }
        let is_path = components.len() > 1 || text.contains(['/', '\\']);
        let parts = components
            .iter()
            .map(|c| {
                if *c == "*.*" || *c == "*" {
                    Part::Any
                } else if case_sensitive {
                    Part::Wild(WildMatch::new(c))
                } else {
                    Part::Wild(WildMatch::new_case_insensitive(c))
                }
            })
            .collect();
        Ok(Pattern {
            text: text.to_owned(),
            parts,
            is_path,
        })
    }

    /// The pattern as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the entry at `rel` (relative to the job root) matches.
    pub fn matches(&self, rel: &[u8]) -> bool {
        let rel = String::from_utf8_lossy(rel);
        if !self.is_path {
            let name = rel.rsplit('/').next().unwrap_or(&rel);
            return self.parts[0].matches(name);
        }
        let comps: Vec<&str> = rel.split('/').collect();
        comps.len() == self.parts.len() && self.parts.iter().zip(&comps).all(|(p, c)| p.matches(c))
    }
}

/// The selection of a job.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Include filespecs; empty means `*.*`. Non-directories only.
    pub include: Vec<Pattern>,
    /// `--xf`: excluded non-directories.
    pub exclude_files: Vec<Pattern>,
    /// `--xd`: directories not walked.
    pub exclude_dirs: Vec<Pattern>,
    /// `--lev N`: walk the top N levels only (the root is level 1).
    pub levels: Option<u32>,
    /// `-s` without `-e`: leave out empty directories.
    pub subdirs_only: bool,
    /// `--ia`: only files with any of these attribute letters.
    pub include_attrs: String,
    /// `--xa`: exclude files with any of these attribute letters.
    pub exclude_attrs: String,
    /// `--max-size`: exclude files larger than this.
    pub max_size: Option<u64>,
    /// `--min-size`: exclude files smaller than this.
    pub min_size: Option<u64>,
    /// `--max-age`, resolved: exclude files whose mtime is before this (Unix seconds).
    pub max_age: Option<i64>,
    /// `--min-age`, resolved: exclude files whose mtime is after this.
    pub min_age: Option<i64>,
    /// `--max-lad`, resolved: the same with the access time.
    pub max_lad: Option<i64>,
    /// `--min-lad`, resolved.
    pub min_lad: Option<i64>,
    /// `--xj`: exclude every symlink.
    pub exclude_links: bool,
    /// `--xjd`: exclude links to directories.
    pub exclude_dir_links: bool,
    /// `--xjf`: exclude the other links, dangling ones included.
    pub exclude_file_links: bool,
}

/// The skip tags of the source filters (§4.1).
pub mod tags {
    /// `--xf`.
    pub const NAMED: &str = "       named";
    /// `--ia`, `--xa`.
    pub const ATTRIB: &str = "      attrib";
    /// `--max-size`.
    pub const LARGE: &str = "       large";
    /// `--min-size`.
    pub const SMALL: &str = "       small";
    /// `--max-age`, `--max-lad`.
    pub const TOO_OLD: &str = "     too old";
    /// `--min-age`, `--min-lad`.
    pub const TOO_NEW: &str = "     too new";
    /// `--xj*`, and links skipped by cycle protection.
    pub const JUNCTION: &str = "    junction";
    /// A directory excluded by `--xd`.
    pub const NAMED_DIR: &str = "   named dir";
    /// An existing directory.
    pub const DIR: &str = "            ";
}

impl Filters {
    /// Whether a non-directory name is in the include filespecs.
    pub fn included(&self, rel: &[u8]) -> bool {
        self.include.is_empty() || self.include.iter().any(|p| p.matches(rel))
    }

    /// Whether a non-directory is named by `--xf`.
    pub fn file_excluded(&self, rel: &[u8]) -> bool {
        self.exclude_files.iter().any(|p| p.matches(rel))
    }

    /// Whether a directory is named by `--xd`.
    pub fn dir_excluded(&self, rel: &[u8]) -> bool {
        self.exclude_dirs.iter().any(|p| p.matches(rel))
    }

    /// Whether a non-directory at `rel` is within the scope of extras:
    /// its name matches the filespecs and not `--xf` (§4.5).
    pub fn file_in_scope(&self, rel: &[u8]) -> bool {
        self.included(rel) && !self.file_excluded(rel)
    }

    /// Whether a directory at `rel` is walked: within `--lev` and not `--xd`.
    pub fn dir_in_scope(&self, rel: &[u8]) -> bool {
        self.within_levels(rel) && !self.dir_excluded(rel)
    }

    /// Whether a directory at `rel` lies within `--lev` (the root is level 1).
    pub fn within_levels(&self, rel: &[u8]) -> bool {
        let level = if rel.is_empty() {
            1
        } else {
            rel.iter().filter(|c| **c == b'/').count() as u32 + 2
        };
        self.levels.is_none_or(|n| level <= n)
    }

    /// The tag of the first source filter that rejects a non-directory that
    /// passed the name filters, or `None` when it is selected. `link_to_dir`
    /// says whether a symlink resolves to a directory.
    pub fn reject(&self, rel: &[u8], meta: &SourceMeta, kind: NodeKind, link_to_dir: bool) -> Option<&'static str> {
        if kind == NodeKind::Symlink
            && (self.exclude_links
                || (link_to_dir && self.exclude_dir_links)
                || (!link_to_dir && self.exclude_file_links))
        {
            return Some(tags::JUNCTION);
        }
        if !self.include_attrs.is_empty() || !self.exclude_attrs.is_empty() {
            let has = attributes(rel, meta.mode);
            if !self.include_attrs.is_empty() && !self.include_attrs.chars().any(|c| has.contains(c)) {
                return Some(tags::ATTRIB);
            }
            if self.exclude_attrs.chars().any(|c| has.contains(c)) {
                return Some(tags::ATTRIB);
            }
        }
        let size = if kind == NodeKind::File { meta.size } else { 0 };
        if self.max_size.is_some_and(|m| size > m) {
            return Some(tags::LARGE);
        }
        if self.min_size.is_some_and(|m| size < m) {
            return Some(tags::SMALL);
        }
        if self.max_age.is_some_and(|t| meta.mtime.0 < t) || self.max_lad.is_some_and(|t| meta.atime < t) {
            return Some(tags::TOO_OLD);
        }
        if self.min_age.is_some_and(|t| meta.mtime.0 > t) || self.min_lad.is_some_and(|t| meta.atime > t) {
            return Some(tags::TOO_NEW);
        }
        None
    }
}

/// The RASHCNETO letters an entry has on Unix: `R` when the owner write bit
/// is clear, `H` when the name starts with a dot (§3.3).
pub fn attributes(rel: &[u8], mode: u32) -> String {
    let mut s = String::new();
    if mode & 0o200 == 0 {
        s.push('R');
    }
    let name = rel.rsplit(|c| *c == b'/').next().unwrap_or(rel);
    if name.first() == Some(&b'.') {
        s.push('H');
    }
    s
}

/// How classes are treated (§4.1, §4.3, §4.4).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassSwitches {
    /// `--xo`: skip Older.
    pub exclude_older: bool,
    /// `--xn`: skip Newer.
    pub exclude_newer: bool,
    /// `--xc`: skip Changed.
    pub exclude_changed: bool,
    /// `--xl`: skip Lonely.
    pub exclude_lonely: bool,
    /// `--xx`: ignore extras (carried in backup, left in restore).
    pub exclude_extra: bool,
    /// `--is`: copy Same files too.
    pub include_same: bool,
    /// `--it`: copy Tweaked files.
    pub include_tweaked: bool,
    /// `--fft`: 2-second time tolerance.
    pub fft: bool,
    /// `--dst`: one-hour tolerance.
    pub dst: bool,
}

impl ClassSwitches {
    /// Compares two mtimes under the tolerances of §4.3: `Equal` when they
    /// count as the same time.
    pub fn compare_mtime(&self, source: (i64, u32), dest: (i64, u32)) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        if source == dest {
            return Ordering::Equal;
        }
        let diff =
            (source.0 as i128 * 1_000_000_000 + source.1 as i128) - (dest.0 as i128 * 1_000_000_000 + dest.1 as i128);
        let tolerance: i128 = if self.fft { 2_000_000_000 } else { 0 };
        if diff.abs() <= tolerance {
            return Ordering::Equal;
        }
        if self.dst && (diff.abs() - 3_600_000_000_000).abs() <= tolerance {
            return Ordering::Equal;
        }
        diff.cmp(&0)
    }

    /// Whether a copy-class entry is skipped by `--xl`, `--xn`, `--xo` or `--xc`.
    pub fn skips(&self, class: crate::Class) -> bool {
        use crate::Class::*;
        match class {
            Lonely => self.exclude_lonely,
            Newer => self.exclude_newer,
            Older => self.exclude_older,
            Changed => self.exclude_changed,
            _ => false,
        }
    }
}

/// Everything a backup or restore selects and decides, beyond where it runs.
#[derive(Debug, Clone, Default)]
pub struct JobOptions {
    /// The selection.
    pub filters: Filters,
    /// Class switches.
    pub classes: ClassSwitches,
    /// `--list-only`: plan and report only.
    pub list_only: bool,
    /// `--purge` or `--mirror` (restore: delete extras).
    pub purge: bool,
    /// `--keep-extras` (backup).
    pub keep_extras: bool,
    /// `--ignore-vanished` (backup).
    pub ignore_vanished: bool,
    /// `--follow-links` (backup): follow symlinks, with cycle protection.
    pub follow_links: bool,
    /// `--report-all-extras` (`/X`): also list destination files left out
    /// by the include filespecs, uncounted.
    pub report_all_extras: bool,
}

impl JobOptions {
    /// Whether baseline entries this run did not select are carried:
    /// `--keep-extras` carries all of them (§1).
    pub fn carries_unselected(&self) -> bool {
        self.keep_extras
    }

    /// Whether mismatches are handled without purging (§3.1 `--xx`, §1
    /// `--keep-extras`): the destination entry kept, the pair reported as
    /// `*MISMATCH`.
    pub fn keeps_mismatches(&self) -> bool {
        self.keep_extras || self.classes.exclude_extra
    }
}

/// How a backup or restore runs: retries, threads, locking, interruption.
#[derive(Debug, Clone)]
pub struct RunOptions {
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

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            retries: 3,
            wait: Duration::from_secs(5),
            lock_wait: Duration::ZERO,
            threads: None,
            interrupt: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl RunOptions {
    /// The worker pool of a run.
    ///
    /// # Errors
    /// [`Error::Usage`] when the threads cannot be started.
    pub fn pool(&self) -> Result<rayon::ThreadPool> {
        let threads = self.threads.unwrap_or_else(default_threads);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::Usage(format!("cannot start {threads} worker threads: {e}")))
    }
}

/// One worker thread per logical CPU, at most 128 (ROBOCOPY.md §3.1).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn p(t: &str) -> Pattern {
        Pattern::new(t, Path::new("/srv/data"), false).unwrap()
    }

    #[test]
    fn names_match_at_any_depth_and_paths_are_anchored() {
        assert!(p("*.log").matches(b"a/b/x.LOG"));
        assert!(p("*.*").matches(b"README"));
        assert!(!p("*.log").matches(b"a/x.txt"));
        assert!(p("a/*/c").matches(b"a/b/c"));
        assert!(!p("a/*/c").matches(b"x/a/b/c"));
        assert!(p("/srv/data/tmp").matches(b"tmp"));
        assert!(p("docs\\old").matches(b"docs/old"));
        assert!(Pattern::new("/etc/x", Path::new("/srv/data"), false).is_err());
        assert!(!Pattern::new("*.LOG", Path::new("/"), true).unwrap().matches(b"x.log"));
    }

    #[test]
    fn levels_count_the_root_as_one() {
        let f = Filters {
            levels: Some(2),
            ..Filters::default()
        };
        assert!(f.within_levels(b""));
        assert!(f.within_levels(b"a"));
        assert!(!f.within_levels(b"a/b"));
    }

    #[test]
    fn time_tolerances() {
        use std::cmp::Ordering::*;
        let exact = ClassSwitches::default();
        assert_eq!(exact.compare_mtime((10, 1), (10, 0)), Greater);
        let fft = ClassSwitches {
            fft: true,
            ..ClassSwitches::default()
        };
        assert_eq!(fft.compare_mtime((12, 0), (10, 0)), Equal);
        assert_eq!(fft.compare_mtime((12, 1), (10, 0)), Greater);
        let dst = ClassSwitches {
            dst: true,
            ..ClassSwitches::default()
        };
        assert_eq!(dst.compare_mtime((3610, 0), (10, 0)), Equal);
        assert_eq!(dst.compare_mtime((3611, 0), (10, 0)), Greater);
        let both = ClassSwitches {
            dst: true,
            fft: true,
            ..ClassSwitches::default()
        };
        assert_eq!(both.compare_mtime((3612, 0), (10, 0)), Equal);
    }
}

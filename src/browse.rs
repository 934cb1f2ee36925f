//! The read commands: choosing a series and a snapshot (ROBOCOPY.md §2), and
//! `history`, `ls`, `cat` and `versions`. Entries come from the tree blobs;
//! the index only says where they are and which snapshots exist.

use std::io::Write;

use robovault_index::{Entry, RunErrorRow, SeriesRecord, SnapshotRecord, ROOT_PATH};
use robovault_store::{Node, NodeContent, NodeKind, TreeId};

use crate::convert::to_blob;
use crate::paths::components;
use crate::repository::local::Repository;
use crate::{display_bytes, Error, Result};

/// Which snapshot a command reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SnapshotChoice {
    /// The newest of the series.
    #[default]
    Latest,
    /// An id or a unique prefix of at least 8 hex digits.
    Id(String),
    /// The last snapshot that started at or before this moment.
    At {
        /// Nanoseconds since the epoch.
        ns: i64,
        /// The moment as shown in messages.
        moment: String,
    },
}

/// The series `name`, or the repository's only series.
///
/// # Errors
/// [`Error::UnknownSeries`], [`Error::AmbiguousSeries`], or
/// [`Error::NoSnapshots`] for an empty repository.
pub fn choose_series(repo: &Repository, name: Option<&str>) -> Result<SeriesRecord> {
    let index = repo.index()?;
    if let Some(name) = name {
        return index
            .series_by_name(name)?
            .ok_or_else(|| Error::UnknownSeries(name.to_owned()));
    }
    let mut all = index.all_series()?;
    match all.len() {
        0 => Err(Error::NoSnapshots("(any)".into())),
        1 => Ok(all.remove(0)),
        _ => Err(Error::AmbiguousSeries(all.into_iter().map(|s| s.name).collect())),
    }
}

/// The series and snapshot a read command works on. An id alone also picks
/// its series, even in a repository of several.
///
/// # Errors
/// As [`choose_series`], and [`Error::UnknownSnapshot`],
/// [`Error::AmbiguousSnapshot`], [`Error::WrongSeries`], [`Error::NoSnapshotAt`].
pub fn choose(
    repo: &Repository,
    series: Option<&str>,
    choice: &SnapshotChoice,
) -> Result<(SeriesRecord, SnapshotRecord)> {
    let index = repo.index()?;
    match choice {
        SnapshotChoice::Id(prefix) => {
            let snap = snapshot_by_prefix(repo, prefix)?;
            let owner = index
                .all_series()?
                .into_iter()
                .find(|s| s.key == snap.series)
                .ok_or_else(|| Error::UnknownSnapshot(prefix.clone()))?;
            if let Some(wanted) = series {
                if wanted != owner.name {
                    return Err(Error::WrongSeries {
                        id: snap.snap_id,
                        series: owner.name,
                        wanted: wanted.to_owned(),
                    });
                }
            }
            Ok((owner, snap))
        }
        SnapshotChoice::Latest => {
            let s = choose_series(repo, series)?;
            let snap = index
                .latest_snapshot(s.key)?
                .ok_or_else(|| Error::NoSnapshots(s.name.clone()))?;
            Ok((s, snap))
        }
        SnapshotChoice::At { ns, moment } => {
            let s = choose_series(repo, series)?;
            let snap = index.snapshot_at(s.key, *ns)?.ok_or_else(|| Error::NoSnapshotAt {
                series: s.name.clone(),
                moment: moment.clone(),
            })?;
            Ok((s, snap))
        }
    }
}

/// The snapshot whose id starts with `prefix`.
///
/// # Errors
/// [`Error::Usage`] for fewer than 8 hex digits; [`Error::UnknownSnapshot`];
/// [`Error::AmbiguousSnapshot`].
pub fn snapshot_by_prefix(repo: &Repository, prefix: &str) -> Result<SnapshotRecord> {
    let prefix = prefix.to_ascii_lowercase();
    if prefix.len() < 8 || prefix.len() > 64 || !prefix.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::Usage(format!(
            "snapshot id \"{prefix}\": give at least 8 hex digits of the id, or latest"
        )));
    }
    let mut found = repo.index()?.snapshots_by_prefix(&prefix)?;
    match found.len() {
        0 => Err(Error::UnknownSnapshot(prefix)),
        1 => Ok(found.remove(0)),
        _ => Err(Error::AmbiguousSnapshot(prefix)),
    }
}

/// One series' runs for `history`.
#[derive(Debug, Clone)]
pub struct SeriesHistory {
    /// The series.
    pub series: SeriesRecord,
    /// Its snapshots, oldest first, each with its failures when asked for.
    pub runs: Vec<(SnapshotRecord, Vec<RunErrorRow>)>,
}

/// The runs of `series`, or of every series; an unknown series has none.
///
/// # Errors
/// Index errors.
pub fn history(repo: &Repository, series: Option<&str>, with_errors: bool) -> Result<Vec<SeriesHistory>> {
    let index = repo.index()?;
    let all: Vec<SeriesRecord> = index
        .all_series()?
        .into_iter()
        .filter(|s| series.is_none_or(|n| n == s.name))
        .collect();
    let mut out = Vec::new();
    for s in all {
        let mut runs = Vec::new();
        for snap in index.snapshots(Some(s.key))? {
            let errors = if with_errors {
                index.run_errors(snap.key)?
            } else {
                Vec::new()
            };
            runs.push((snap, errors));
        }
        out.push(SeriesHistory { series: s, runs });
    }
    Ok(out)
}

/// What a path inside a snapshot names.
#[derive(Debug, Clone)]
pub enum Found {
    /// The root directory, with its tree.
    Root(TreeId),
    /// An entry.
    Node(Node),
}

/// Resolves `path` (relative to the series root) in the tree `root`.
///
/// # Errors
/// [`Error::PathNotFound`]; store errors for unreadable trees.
pub fn resolve(repo: &Repository, snapshot: &SnapshotRecord, path: &[u8]) -> Result<Found> {
    let parts = components(path)?;
    let mut found = Found::Root(to_blob(&snapshot.root_tree));
    for part in parts {
        let tree = match &found {
            Found::Root(id) => *id,
            Found::Node(Node {
                content: NodeContent::Subtree(id),
                ..
            }) => *id,
            Found::Node(_) => return Err(not_found(path, snapshot)),
        };
        let t = repo.read_tree(&tree)?;
        match t.nodes.binary_search_by(|n| n.name.as_slice().cmp(part)) {
            Ok(i) => found = Found::Node(t.nodes[i].clone()),
            Err(_) => return Err(not_found(path, snapshot)),
        }
    }
    Ok(found)
}

fn not_found(path: &[u8], snapshot: &SnapshotRecord) -> Error {
    Error::PathNotFound {
        path: display_bytes(path),
        snapshot: snapshot.snap_id.clone(),
    }
}

/// The entries directly inside `path` (a directory), or the entry `path`
/// itself when it is not one.
///
/// # Errors
/// As [`resolve`].
pub fn ls(repo: &Repository, snapshot: &SnapshotRecord, path: &[u8]) -> Result<Vec<Node>> {
    match resolve(repo, snapshot, path)? {
        Found::Root(id)
        | Found::Node(Node {
            content: NodeContent::Subtree(id),
            ..
        }) => Ok(repo.read_tree(&id)?.nodes),
        Found::Node(n) => Ok(vec![n]),
    }
}

/// Writes the content of file `path` to `out`, every chunk verified.
///
/// # Errors
/// [`Error::WrongKind`] when `path` is not a file; store errors naming a
/// damaged blob; [`Error::Io`] when `out` fails.
pub fn cat(repo: &Repository, snapshot: &SnapshotRecord, path: &[u8], out: &mut dyn Write) -> Result<()> {
    let node = match resolve(repo, snapshot, path)? {
        Found::Node(n) if n.kind == NodeKind::File => n,
        _ => {
            return Err(Error::WrongKind {
                path: display_bytes(path),
                reason: format!(
                    "not a regular file in snapshot {}; cat writes files, ls lists directories",
                    snapshot.snap_id
                ),
            })
        }
    };
    if let NodeContent::Chunks(chunks) = &node.content {
        for id in chunks {
            let data = repo.read_blob(id)?;
            out.write_all(&data)
                .map_err(|e| Error::io("writing", "standard output", e))?;
        }
    }
    out.flush().map_err(|e| Error::io("writing", "standard output", e))
}

/// One version of a path: the first and last snapshot holding it.
#[derive(Debug, Clone)]
pub struct VersionSpan {
    /// The first snapshot holding it.
    pub from: SnapshotRecord,
    /// The last snapshot holding it.
    pub to: SnapshotRecord,
    /// What was recorded.
    pub entry: Entry,
}

/// Every version of `path` in `series`, oldest first. `path` is relative to
/// the series root, or absolute under its source root.
///
/// # Errors
/// [`Error::PathNeverInSeries`] for a path never backed up.
pub fn versions(repo: &Repository, series: &SeriesRecord, path: &[u8]) -> Result<Vec<VersionSpan>> {
    let index = repo.index()?;
    let rel = relative_to_source(path, &series.source);
    let mut id = ROOT_PATH;
    let never = || Error::PathNeverInSeries {
        path: display_bytes(path),
        series: series.name.clone(),
    };
    for part in components(rel)? {
        id = index.lookup_path(id, part)?.ok_or_else(never)?;
    }
    let snaps = index.snapshots(Some(series.key))?;
    let rows = index.versions_of(series.key, id)?;
    let mut out = Vec::new();
    for row in rows {
        let held: Vec<&SnapshotRecord> = snaps
            .iter()
            .filter(|s| s.seq >= row.from_seq && row.to_seq.is_none_or(|t| s.seq < t))
            .collect();
        if let (Some(first), Some(last)) = (held.first(), held.last()) {
            out.push(VersionSpan {
                from: (*first).clone(),
                to: (*last).clone(),
                entry: row.entry,
            });
        }
    }
    if out.is_empty() {
        return Err(never());
    }
    Ok(out)
}

/// `path` relative to the source root when it is absolute under it.
fn relative_to_source<'a>(path: &'a [u8], source: &[u8]) -> &'a [u8] {
    if path.starts_with(b"/") && path.starts_with(source) {
        let rest = &path[source.len()..];
        if rest.is_empty() || rest.starts_with(b"/") || source.ends_with(b"/") {
            return rest;
        }
    }
    path
}

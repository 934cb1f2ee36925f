//! `diff` and `find` (ROBOCOPY.md §2): what changed between two snapshots,
//! from their trees (equal subtrees are skipped by id); and where a name or
//! path pattern occurs in a series' history, from the temporal index.

use std::collections::HashMap;

use robovault_index::SnapshotRecord;
use robovault_store::{Node, NodeContent, NodeKind, TreeId};
use wildmatch::WildMatch;

use crate::convert::to_blob;
use crate::node::entry_of_tree_node;
use crate::paths::child_rel;
use crate::repository::local::Repository;
use crate::{display_bytes, Result};

/// One line of `diff`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// `+` added, `-` removed, `M` content changed, `U` metadata only, `T` kind changed.
    pub marker: char,
    /// The path; directories end in `/`.
    pub path: String,
    /// Size in the first snapshot.
    pub size_a: Option<u64>,
    /// Size in the second snapshot.
    pub size_b: Option<u64>,
}

/// The changes from snapshot `a` to snapshot `b`, sorted by path.
///
/// # Errors
/// Store errors for unreadable trees.
pub fn diff(repo: &Repository, a: &SnapshotRecord, b: &SnapshotRecord) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    // A work list of directory pairs, not recursion: trees may be as deep
    // as the filesystem allows. The order does not matter: `out` is sorted.
    let mut pending = vec![(Some(to_blob(&a.root_tree)), Some(to_blob(&b.root_tree)), Vec::new())];
    while let Some((ta, tb, rel)) = pending.pop() {
        diff_dir(repo, ta, tb, &rel, &mut out, &mut pending)?;
    }
    out.sort_by(|x, y| x.path.trim_end_matches('/').cmp(y.path.trim_end_matches('/')));
    Ok(out)
}

fn shown(rel: &[u8], n: &Node) -> String {
    let mut p = display_bytes(rel);
    if n.kind == NodeKind::Dir {
        p.push('/');
    }
    p
}

fn subtree(n: &Node) -> Option<TreeId> {
    match &n.content {
        NodeContent::Subtree(id) => Some(*id),
        _ => None,
    }
}

/// Directory pairs still to compare: the trees on each side and the path.
type Pending = Vec<(Option<TreeId>, Option<TreeId>, Vec<u8>)>;

/// Compares one directory; its subdirectories go to `pending`.
fn diff_dir(
    repo: &Repository,
    a: Option<TreeId>,
    b: Option<TreeId>,
    rel: &[u8],
    out: &mut Vec<Change>,
    pending: &mut Pending,
) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let load = |t: Option<TreeId>| -> Result<Vec<Node>> {
        Ok(match t {
            Some(id) => repo.read_tree(&id)?.nodes,
            None => Vec::new(),
        })
    };
    let (na, nb) = (load(a)?, load(b)?);
    let by_name: HashMap<&[u8], &Node> = na.iter().map(|n| (n.name.as_slice(), n)).collect();
    for n in &nb {
        let path = child_rel(rel, &n.name);
        match by_name.get(n.name.as_slice()) {
            None => {
                out.push(change('+', &path, None, Some(n)));
                pending.push((None, subtree(n), path));
            }
            Some(old) if old.kind != n.kind => {
                out.push(change('T', &path, Some(old), Some(n)));
                pending.push((subtree(old), subtree(n), path));
            }
            Some(old) => {
                let content_differs = match (&old.content, &n.content) {
                    (NodeContent::Subtree(_), NodeContent::Subtree(_)) => false,
                    (x, y) => x != y,
                };
                let mut meta_old = entry_of_tree_node(old);
                let meta_new = entry_of_tree_node(n);
                meta_old.chunks = meta_new.chunks.clone();
                meta_old.target = meta_new.target.clone();
                meta_old.size = meta_new.size;
                if content_differs {
                    out.push(change('M', &path, Some(old), Some(n)));
                } else if !meta_old.same_version(&meta_new) {
                    out.push(change('U', &path, Some(old), Some(n)));
                }
                pending.push((subtree(old), subtree(n), path));
            }
        }
    }
    let names_b: HashMap<&[u8], ()> = nb.iter().map(|n| (n.name.as_slice(), ())).collect();
    for old in &na {
        if !names_b.contains_key(old.name.as_slice()) {
            let path = child_rel(rel, &old.name);
            out.push(change('-', &path, Some(old), None));
            pending.push((subtree(old), None, path));
        }
    }
    Ok(())
}

fn change(marker: char, rel: &[u8], a: Option<&Node>, b: Option<&Node>) -> Change {
    let node = b.or(a).expect("one side exists");
    Change {
        marker,
        path: shown(rel, node),
        size_a: a.map(|n| n.size),
        size_b: b.map(|n| n.size),
    }
}

/// One line of `find`: a maximal run of snapshots holding the path.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FindHit {
    /// The series.
    pub series: String,
    /// The path, relative to the series root.
    pub path: String,
    /// The first snapshot of the run.
    pub first: String,
    /// Its start, ns.
    pub first_started_ns: i64,
    /// The last snapshot of the run.
    pub last: String,
    /// Its start, ns.
    pub last_started_ns: i64,
}

/// Where `pattern` (ROBOCOPY.md §3.3: `*` and `?`, case-insensitive; with a
/// separator a path anchored at the root, else a name at any depth) occurs
/// in the history of `series`, or of every series.
///
/// # Errors
/// Index errors; [`crate::Error::UnknownSeries`].
pub fn find(repo: &Repository, pattern: &str, series: Option<&str>) -> Result<Vec<FindHit>> {
    let index = repo.index()?;
    let pattern = pattern.replace('\\', "/");
    let anchored = pattern.contains('/');
    let matcher = WildMatch::new_case_insensitive(pattern.trim_start_matches('/'));
    let paths = index.all_paths()?;
    let mut names: HashMap<i64, String> = HashMap::new();
    let mut out = Vec::new();
    let all = index.all_series()?;
    if let Some(s) = series {
        if !all.iter().any(|x| x.name == s) {
            return Err(crate::Error::UnknownSeries(s.to_owned()));
        }
    }
    for s in all.iter().filter(|x| series.is_none_or(|n| n == x.name)) {
        let snaps = index.snapshots(Some(s.key))?;
        let ranges = index.version_ranges(s.key)?;
        let mut i = 0;
        while i < ranges.len() {
            let path_id = ranges[i].0;
            // Merge the consecutive versions of one path into runs.
            let mut runs: Vec<(u64, Option<u64>)> = Vec::new();
            while i < ranges.len() && ranges[i].0 == path_id {
                let (_, from, to) = ranges[i];
                match runs.last_mut() {
                    Some(last) if last.1 == Some(from) => last.1 = to,
                    _ => runs.push((from, to)),
                }
                i += 1;
            }
            if path_id == robovault_index::ROOT_PATH.0 {
                continue;
            }
            // A name pattern needs only the name; the full path, built from
            // every ancestor, only for a hit.
            let matched = if anchored {
                matcher.matches(&full_path(path_id, &paths, Some(&mut names)))
            } else {
                paths
                    .get(&path_id)
                    .is_some_and(|(_, name)| matcher.matches(&display_bytes(name)))
            };
            if !matched {
                continue;
            }
            let full = full_path(path_id, &paths, anchored.then_some(&mut names));
            for (from, to) in runs {
                let held: Vec<&SnapshotRecord> = snaps
                    .iter()
                    .filter(|x| x.seq >= from && to.is_none_or(|t| x.seq < t))
                    .collect();
                if let (Some(first), Some(last)) = (held.first(), held.last()) {
                    out.push(FindHit {
                        series: s.name.clone(),
                        path: full.clone(),
                        first: first.snap_id.clone(),
                        first_started_ns: first.started_ns,
                        last: last.snap_id.clone(),
                        last_started_ns: last.started_ns,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.series, &a.path, a.first_started_ns).cmp(&(&b.series, &b.path, b.first_started_ns)));
    Ok(out)
}

/// The path of `id` from the root, its parents climbed in a loop, not by
/// recursion; with `memo`, each directory's path is computed once.
fn full_path(id: i64, paths: &HashMap<i64, (i64, Vec<u8>)>, mut memo: Option<&mut HashMap<i64, String>>) -> String {
    let mut chain = Vec::new();
    let mut cur = id;
    let mut base = String::new();
    loop {
        if let Some(p) = memo.as_ref().and_then(|m| m.get(&cur)) {
            base = p.clone();
            break;
        }
        let Some((parent, name)) = paths.get(&cur) else { break };
        chain.push((cur, name));
        // A chain longer than the table loops (a damaged index): the path
        // is shown as far as it was climbed.
        if *parent <= robovault_index::ROOT_PATH.0 || chain.len() > paths.len() {
            break;
        }
        cur = *parent;
    }
    for (at, name) in chain.into_iter().rev() {
        if !base.is_empty() {
            base.push('/');
        }
        base.push_str(&display_bytes(name));
        if let Some(m) = memo.as_mut() {
            m.insert(at, base.clone());
        }
    }
    base
}

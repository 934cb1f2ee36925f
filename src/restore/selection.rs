//! Which paths of the snapshot a restore takes: the [`Selection`] tree built
//! from the paths given, and, before anything is written, what the file
//! selection leaves out of it ([`selection_warnings`]).

use std::collections::BTreeMap;

use robovault_store::{Node, NodeContent, NodeKind, TreeId};

use crate::convert::to_blob;
use crate::paths::{child_rel, components};
use crate::repository::local::Repository;
use crate::{Error, Result};

/// Which entries of a directory are selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Selection {
    /// Everything, extras in scope.
    All,
    /// Only these names, each with its own selection; no extras.
    Some(BTreeMap<Vec<u8>, Selection>),
}

impl Selection {
    pub(super) fn from_paths(paths: &[Vec<u8>]) -> Result<Selection> {
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

/// What a restore's selection leaves out, as warning lines: a named file
/// that the file selection (filespecs, `--xf`) drops, a named directory
/// in which it selects nothing, a filespec that matches no file. Returns
/// them and whether any file is selected at all. Without filespecs or
/// `--xf` everything is, and no tree is read.
///
/// # Errors
/// [`Error::PathNotFound`] for a name without wildcards that no entry of
/// the snapshot has: the user named something that is not there.
pub(super) fn selection_warnings(
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
pub(super) struct Matched {
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
pub(super) fn selects_below(
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

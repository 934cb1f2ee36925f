//! Paths as the user gives them: made absolute lexically, checked against the
//! safety rules of ROBOCOPY.md §5.4, and relative paths inside a snapshot;
//! and the names that tell a local repository's directory.

use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// The name of the index file inside a repository.
pub const INDEX_FILE: &str = "index.sqlite";

/// Whether `path` holds a robovault repository: its config, index and
/// packs directory together (a lone file named `config` is common).
pub(crate) fn looks_like_repository(path: &Path) -> bool {
    path.join("config").is_file() && path.join(INDEX_FILE).is_file() && path.join("packs").is_dir()
}

/// `path` made absolute against the current directory and normalised
/// lexically (`.` and `..` resolved, symlinks not), as series names need.
///
/// # Errors
/// [`Error::Io`] when the current directory is unknown.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::io("resolving", path, e))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The canonical form of `path`, or, when it does not exist yet, of its
/// nearest existing ancestor with the rest appended.
pub fn canonical_or_ancestor(path: &Path) -> Result<PathBuf> {
    let abs = absolute(path)?;
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = std::fs::canonicalize(cur) {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Ok(out);
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                cur = parent;
            }
            _ => return Ok(abs),
        }
    }
}

/// The backup refusals of ROBOCOPY.md §5.4: SOURCE inside the repository
/// (arguments swapped?), and the repository inside SOURCE unless `--xd`
/// excludes it or a directory above it.
///
/// # Errors
/// [`Error::Refused`] naming the paths and the remedy.
/// `repo` is the local repository's directory, `None` for a remote one.
pub fn check_backup_paths(source: &Path, repo: Option<&Path>, filters: &crate::job::Filters) -> Result<()> {
    let src = canonical_or_ancestor(source)?;
    let Some(repo) = repo else {
        // A remote repository cannot lie inside the source; the source may
        // still be a local repository (arguments swapped).
        if src.ancestors().any(looks_like_repository) {
            return Err(Error::Refused(format!(
                "Source \"{}\" is a repository or lies inside one; are SOURCE and REPO swapped? \
                 Usage: robovault backup SOURCE REPO",
                src.display()
            )));
        }
        return Ok(());
    };
    let repo = canonical_or_ancestor(repo)?;
    // SOURCE inside any repository, not only the one named: the arguments
    // were swapped when REPO is in fact the source.
    let in_a_repository = src.ancestors().any(looks_like_repository);
    if src.starts_with(&repo) || in_a_repository {
        return Err(Error::Refused(format!(
            "Source \"{}\" is the repository or lies inside it; are SOURCE and REPO swapped? \
             Usage: robovault backup SOURCE REPO",
            src.display()
        )));
    }
    if let Ok(inside) = repo.strip_prefix(&src) {
        use std::os::unix::ffi::OsStrExt;
        let mut rel = Vec::new();
        for part in inside.components() {
            rel = child_rel(&rel, part.as_os_str().as_bytes());
            if filters.dir_excluded(&rel) {
                return Ok(());
            }
        }
        return Err(Error::Refused(format!(
            "Repository \"{}\" lies inside source \"{}\"; the backup would back itself up. \
             Put the repository outside the source, or exclude it with --xd.",
            repo.display(),
            src.display()
        )));
    }
    Ok(())
}

/// `parent/name` as bytes, with no leading separator at the root.
pub fn child_rel(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        name.to_vec()
    } else {
        let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
        out.extend_from_slice(parent);
        out.push(b'/');
        out.extend_from_slice(name);
        out
    }
}

/// Splits a path inside a snapshot into its components, dropping empty ones
/// and `.`; `..` is refused.
///
/// # Errors
/// [`Error::Usage`] for a path with `..`.
pub fn components(path: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    for part in path.split(|c| *c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                return Err(Error::Usage(format!(
                    "{}: \"..\" is not allowed here",
                    crate::display_bytes(path)
                )))
            }
            p => out.push(p),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_resolves_dots_lexically() {
        assert_eq!(absolute(Path::new("/a/./b/../c/")).unwrap(), PathBuf::from("/a/c"));
        assert_eq!(absolute(Path::new("/")).unwrap(), PathBuf::from("/"));
    }

    #[test]
    fn swapped_arguments_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let none = crate::job::Filters::default();
        let at = |p: &Path| Some(p.to_owned());
        assert!(check_backup_paths(&repo, at(&dir.path().join("src")).as_deref(), &none).is_ok());
        assert!(check_backup_paths(&repo.join("x"), at(&repo).as_deref(), &none).is_err());
        assert!(check_backup_paths(dir.path(), at(&repo).as_deref(), &none).is_err());
        let xd = crate::job::Filters {
            exclude_dirs: vec![crate::job::Pattern::new("repo", dir.path(), false).unwrap()],
            ..Default::default()
        };
        assert!(check_backup_paths(dir.path(), at(&repo).as_deref(), &xd).is_ok());
    }

    #[test]
    fn components_refuse_dotdot() {
        assert_eq!(components(b"/a//b/./c").unwrap(), vec![&b"a"[..], b"b", b"c"]);
        assert!(components(b"a/../b").is_err());
    }
}

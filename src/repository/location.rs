//! Where a repository lives: a local directory or an `s3://BUCKET/PREFIX`
//! URL. Parsed once from what the user gave, so that every command, message
//! and hook names the same place.

use std::path::{Path, PathBuf};

use robovault_store::S3Url;

use crate::Result;

/// A repository's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory, made absolute lexically ([`crate::absolute`]).
    Local(PathBuf),
    /// A prefix in an S3 bucket.
    S3(S3Url),
}

impl Location {
    /// Parses a repository argument: `s3://BUCKET[/PREFIX]`, else a path.
    ///
    /// # Errors
    /// An `s3://` URL without a bucket; [`crate::Error::Io`] when a relative
    /// path cannot be made absolute.
    pub fn parse(given: &Path) -> Result<Location> {
        if let Some(url) = given.to_str().map(S3Url::parse).transpose()?.flatten() {
            return Ok(Location::S3(url));
        }
        Ok(Location::Local(crate::absolute(given)?))
    }

    /// The directory of a local repository.
    pub fn local(&self) -> Option<&Path> {
        match self {
            Location::Local(path) => Some(path),
            Location::S3(_) => None,
        }
    }

    /// The S3 URL of a remote repository.
    pub fn remote(&self) -> Option<&S3Url> {
        match self {
            Location::S3(url) => Some(url),
            Location::Local(_) => None,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3(url) => write!(f, "{url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_stays_a_url_and_a_path_becomes_absolute() {
        let url = Location::parse(Path::new("s3://bucket/a/b/")).unwrap();
        assert_eq!(url.to_string(), "s3://bucket/a/b");
        assert!(url.remote().is_some());
        let local = Location::parse(Path::new("repo")).unwrap();
        let Location::Local(path) = &local else {
            panic!("{local:?} is not local")
        };
        assert!(path.is_absolute() && path.ends_with("repo"), "{}", path.display());
        assert!(Location::parse(Path::new("s3://")).is_err());
    }
}

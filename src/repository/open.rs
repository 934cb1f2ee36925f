//! Opening a repository wherever it lives: the one place that chooses
//! between a local directory (`repo`) and an object store (`remote`) by the
//! [`Location`] the caller gave.

use crate::repository::local::is_free;
use crate::{Location, Repository, RepositoryOptions, Result};
use robovault_store::ObjectKind;

impl Repository {
    /// Creates a new repository: a local directory that must not exist or
    /// be empty (missing parents are created), or an S3 prefix without a
    /// config.
    ///
    /// # Errors
    /// [`crate::Error::RepositoryExists`] when something else is there.
    pub fn init(opts: &RepositoryOptions) -> Result<Repository> {
        match &opts.location {
            Location::Local(path) => Repository::init_local(path, opts),
            Location::S3(url) => crate::repository::remote::init(url, opts),
        }
    }

    /// Opens the repository.
    ///
    /// # Errors
    /// [`crate::Error::NotARepository`] when there is none; store and index
    /// errors for a damaged or newer one.
    pub fn open(opts: &RepositoryOptions) -> Result<Repository> {
        match &opts.location {
            Location::Local(path) => Repository::open_local(path, opts),
            Location::S3(url) => crate::repository::remote::open(url, opts),
        }
    }

    /// Opens the repository, or creates it where there is none (a missing
    /// or empty directory, an S3 prefix without a config). Returns whether
    /// it was created.
    ///
    /// # Errors
    /// As [`Repository::open`] and [`Repository::init`].
    pub fn open_or_create(opts: &RepositoryOptions) -> Result<(Repository, bool)> {
        match &opts.location {
            Location::Local(path) if is_free(path)? => Ok((Repository::init_local(path, opts)?, true)),
            Location::Local(path) => Ok((Repository::open_local(path, opts)?, false)),
            Location::S3(url) => match crate::repository::remote::open(url, opts) {
                Err(crate::Error::NotARepository { .. }) => Ok((crate::repository::remote::init(url, opts)?, true)),
                other => other.map(|r| (r, false)),
            },
        }
    }

    /// Whether [`Repository::open_or_create`] would create the repository.
    ///
    /// # Errors
    /// [`crate::Error::Io`] when a local path cannot be examined; store
    /// errors from an object store.
    pub fn would_create(opts: &RepositoryOptions) -> Result<bool> {
        match &opts.location {
            Location::Local(path) => is_free(path),
            Location::S3(url) => {
                let backend = crate::repository::remote::connect(url, &opts.s3)?;
                Ok(!backend.exists(ObjectKind::Config, "config")?)
            }
        }
    }
}

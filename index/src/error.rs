//! The index's error type.

use std::path::PathBuf;

/// Errors of the SQLite catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite failed on the named database.
    #[error("index {}: {error}", .path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        error: rusqlite::Error,
    },
    /// The database was written by a newer robovault.
    #[error("index {} has schema version {found}; this robovault knows versions up to {supported}", .path.display())]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A row holds a value that cannot be right.
    #[error("index {}: {what}", .path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// The index's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

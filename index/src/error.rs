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
    /// A read-only open met an older schema, which only a writer migrates.
    #[error("index {} has schema version {found}, older than this robovault's; open it once where it may be written, to migrate it", .path.display())]
    OlderSchema {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// The file is not a whole SQLite database (empty, truncated, overwritten).
    /// The index lives in its repository's directory, so the message can
    /// name the repair of that repository.
    #[error("the index of repository {}/ is damaged ({}: {reason}); run: robovault repair index {}", repo_of(.path).display(), file_of(.path), repo_of(.path).display())]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the check found.
        reason: String,
    },
    /// The disk holding the database is full.
    #[error("repository {}/: No space left on device (writing its index {})", repo_of(.path).display(), .path.display())]
    NoSpace {
        /// The database file.
        path: PathBuf,
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

impl Error {
    /// Whether a read-only open failed for want of what a read-only
    /// directory cannot give (the WAL's `-shm` file) or of a migration: a
    /// private copy of the database can still be read.
    pub fn wants_private_copy(&self) -> bool {
        match self {
            Error::OlderSchema { .. } => true,
            Error::Sqlite {
                error: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => matches!(
                e.code,
                rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::SystemIoFailure
            ),
            _ => false,
        }
    }
}

/// The repository directory holding the index file `path`.
fn repo_of(path: &std::path::Path) -> &std::path::Path {
    path.parent().unwrap_or(path)
}

fn file_of(path: &std::path::Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// The index's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The store's error type: every variant names the object it concerns.

use std::path::PathBuf;

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed on a named path.
    #[error("{action} {}: {error}", .path.display())]
    Io {
        /// What was being done ("reading", "writing", …).
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The system error.
        error: std::io::Error,
    },
    /// A request to a remote object store failed (after its retries).
    #[error("{action} {object}: {message}")]
    Remote {
        /// What was being done.
        action: &'static str,
        /// The object or location.
        object: String,
        /// The store's message.
        message: String,
    },
    /// A pack was stored, but its record (the caller's index) could not be
    /// written: nothing is wrong with the pack.
    #[error("pack {pack} is stored but could not be recorded in the index: {error}")]
    Recording {
        /// The pack.
        pack: String,
        /// Why the record failed.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An operation the repository's state forbids (removing its last key).
    #[error("{0}")]
    Refused(String),
    /// An object that must exist does not.
    #[error("{kind} {name} is missing from the repository")]
    NotFound {
        /// The kind of object ("pack", "snapshot", …).
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// An object that may only be created once already exists.
    #[error("{kind} {name} already exists")]
    AlreadyExists {
        /// The kind of object.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// Bytes read from the repository do not decode.
    #[error("{object} is corrupt: {reason}")]
    Corrupt {
        /// The object, e.g. `pack 3fa2… footer` or `tree 91bc…`.
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// A blob's content does not hash to its id.
    #[error("blob {id} in pack {pack} at offset {offset}: content does not match its id")]
    HashMismatch {
        /// The blob's id.
        id: String,
        /// The pack holding it.
        pack: String,
        /// Its offset in the pack.
        offset: u64,
    },
    /// Text that should be an id is not.
    #[error("not a valid id: {0:?}")]
    BadId(String),
    /// The repository was written by a newer, unknown format version.
    #[error("{object} has format version {found}; this robovault reads version {supported} only")]
    UnsupportedVersion {
        /// The object.
        object: String,
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The writer lock is held by another process.
    #[error("repository is locked by {holder}; wait or pass --lock-wait")]
    Locked {
        /// Who holds it (pid, host, start time), as written by the holder.
        holder: String,
    },
    /// A sealed object does not open: damaged, altered, moved to another
    /// name, or sealed under another repository's key.
    #[error("{object} does not authenticate: it was damaged or altered, or sealed with another key")]
    Unauthentic {
        /// The object.
        object: String,
    },
    /// No key file accepts the password given.
    #[error("wrong password: none of the {keys} key files of repository {repository} accepts it")]
    WrongPassword {
        /// The repository id.
        repository: String,
        /// How many key files were tried.
        keys: usize,
    },
    /// No password could be had for an encrypted repository: no source was
    /// given, or the one given failed (the message names it).
    #[error("{0}")]
    Password(String),
    /// The repository's chunker is keyed (`keyed-gear-aes128`), and no
    /// chunker key was given to cut with.
    #[error("the keyed chunker (keyed-gear-aes128) needs the repository's chunker key, and none was given")]
    ChunkerKeyMissing,
    /// The operating system gave no random bytes.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    /// The run was interrupted by a signal.
    #[error("interrupted")]
    Interrupted,
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path and what was being done.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            error: source,
        }
    }

    /// The OS error number behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { error, .. } => error.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn corrupt(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            object: object.into(),
            reason: reason.into(),
        }
    }
}

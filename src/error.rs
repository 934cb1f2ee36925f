//! The engine's error type: what makes a command meaningless (fatal, exit 16).
//! A failure on one file is not an error: it is a [`crate::RunError`], counted
//! in the summary while the run goes on.

use std::path::PathBuf;

/// Fatal errors of the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The blob store failed.
    #[error(transparent)]
    Store(#[from] robovault_store::Error),
    /// The catalog failed.
    #[error(transparent)]
    Index(#[from] robovault_index::Error),
    /// The source root is missing or unreadable.
    #[error("source {}: {error}", .path.display())]
    Source {
        /// The source root.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The path is not a robovault repository.
    #[error("{} is not a robovault repository ({reason}); check the path, or create one with robovault init", .path.display())]
    NotARepository {
        /// The path given.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// A writing command on a repository this process may only read.
    #[error("repository {}/ is read-only ({reason}); reading commands work, writing ones need write access to it", .path.display())]
    ReadOnly {
        /// The repository.
        path: PathBuf,
        /// Why it cannot be written.
        reason: String,
    },
    /// A repository whose index and packs are there, but not its config.
    #[error("repository {}/ has lost its config file (its index and packs are there); run: robovault repair index {}", .path.display(), .path.display())]
    ConfigMissing {
        /// The repository.
        path: PathBuf,
    },
    /// The local cache of a remote repository's index is damaged.
    #[error("the cached index {} is damaged ({reason}); remove it, and the next command downloads the repository's index again", .path.display())]
    CacheDamaged {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `init` found something already there.
    #[error("{} already exists and is not an empty directory", .path.display())]
    RepositoryExists {
        /// The path given.
        path: PathBuf,
    },
    /// An I/O call on a named path failed.
    #[error("{action} {}: {error}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The system error.
        error: std::io::Error,
    },
    /// No series has that name.
    #[error("no series named \"{0}\" in the repository; robovault history REPO lists them")]
    UnknownSeries(String),
    /// Several series and none was chosen.
    #[error("the repository holds several series; choose one with --series: {}", .0.join(", "))]
    AmbiguousSeries(Vec<String>),
    /// The repository holds no snapshot (of the series).
    #[error("series \"{0}\" has no snapshot")]
    NoSnapshots(String),
    /// No snapshot matches the id or prefix.
    #[error("no snapshot {0} in the repository; robovault history REPO lists them")]
    UnknownSnapshot(String),
    /// The snapshot being read was forgotten, and what only it held was
    /// collected, while the command ran.
    #[error(
        "no snapshot {0} in the repository any more: it was forgotten (and collected) while this command read it; \
         what was written from it is partial"
    )]
    ForgottenMeanwhile(String),
    /// A prefix matches several snapshots.
    #[error("snapshot prefix {0} is ambiguous; give more digits")]
    AmbiguousSnapshot(String),
    /// The snapshot belongs to another series.
    #[error("snapshot {id} belongs to series \"{series}\", not \"{wanted}\"")]
    WrongSeries {
        /// The snapshot id.
        id: String,
        /// Its series.
        series: String,
        /// The series asked for.
        wanted: String,
    },
    /// `--at` before the first snapshot.
    #[error("No snapshot of series \"{series}\" at or before {moment}.")]
    NoSnapshotAt {
        /// The series.
        series: String,
        /// The moment, as the user gave it resolved.
        moment: String,
    },
    /// A path that is not in the snapshot.
    #[error("{path} is not in snapshot {snapshot}; robovault ls REPO lists its entries")]
    PathNotFound {
        /// The path asked for.
        path: String,
        /// The snapshot.
        snapshot: String,
    },
    /// A path that was never in the series.
    #[error("{path} was never in series \"{series}\"")]
    PathNeverInSeries {
        /// The path asked for.
        path: String,
        /// The series.
        series: String,
    },
    /// A path that is not what the command needs (a directory for `cat`, …).
    #[error("{path}: {reason}")]
    WrongKind {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A safety refusal (ROBOCOPY.md §5.4).
    #[error("{0}")]
    Refused(String),
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
    /// SIGINT or SIGTERM.
    #[error("interrupted; nothing was committed")]
    Interrupted,
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            error: source,
        }
    }
}

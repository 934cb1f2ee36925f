//! What the engine is told about the world instead of looking: where the
//! repository is and how to reach it, where a remote repository's cache
//! lives, and what time it is. The command line builds these once, from its
//! arguments, the environment and the stored defaults; below it nothing
//! reads an environment variable, the home directory or the wall clock,
//! and nothing asks for a password but through the source given here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use robovault_store::crypto::KdfParams;
use robovault_store::S3Options;
use zeroize::Zeroizing;

use crate::repository::keys::NewRepository;
use crate::{Error, Location, Result};

/// The time, as the engine asks for it: snapshot and run times, the grace
/// period of a remote gc, the names of index copies, retention.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Why a password is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordPurpose {
    /// To unlock an existing key.
    Unlock,
    /// To set a new one (a new repository, `key add`, `key passwd`): a
    /// prompt asks twice.
    New,
}

/// Where the password of an encrypted repository comes from. The command
/// line decides the source (ROBOVAULT_PASSWORD* precedence, README); the
/// engine asks only when it opens or creates an encrypted repository, so a
/// plaintext one never prompts.
pub trait PasswordSource: Send + Sync + std::fmt::Debug {
    /// The password.
    ///
    /// # Errors
    /// A message naming the source and why it gave nothing (no source, a
    /// command that failed, an unreadable file, no terminal).
    fn password(&self, purpose: PasswordPurpose) -> std::result::Result<Zeroizing<String>, String>;
}

/// No password source: opening an encrypted repository fails, naming the
/// sources there are.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPassword;

impl PasswordSource for NoPassword {
    fn password(&self, _: PasswordPurpose) -> std::result::Result<Zeroizing<String>, String> {
        Err(
            "the repository is encrypted and no password was given: pass --password-file F or \
             --password-command CMD, or set ROBOVAULT_PASSWORD_FILE, ROBOVAULT_PASSWORD_COMMAND or ROBOVAULT_PASSWORD"
                .into(),
        )
    }
}

/// A fixed password, for tests and callers that already hold one.
#[derive(Clone)]
pub struct GivenPassword(pub Zeroizing<String>);

impl std::fmt::Debug for GivenPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GivenPassword(withheld)")
    }
}

impl PasswordSource for GivenPassword {
    fn password(&self, _: PasswordPurpose) -> std::result::Result<Zeroizing<String>, String> {
        Ok(self.0.clone())
    }
}

/// A repository to open or create, and everything needed to reach it.
#[derive(Debug, Clone)]
pub struct RepositoryOptions {
    /// Where it is.
    pub location: Location,
    /// How to reach an S3 repository's gateway; unused for a local one.
    pub s3: S3Options,
    /// Where remote repositories keep their local index and lock files, one
    /// directory per repository id below it; none when the user has no
    /// cache directory (then a remote repository cannot be opened).
    pub cache_dir: Option<PathBuf>,
    /// The clock every command on this repository asks.
    pub clock: Arc<dyn Clock>,
    /// Where an encrypted repository's password comes from.
    pub password: Arc<dyn PasswordSource>,
    /// Argon2id's costs for a key file this command creates.
    pub kdf: KdfParams,
    /// What a repository this command creates is made as.
    pub create: NewRepository,
}

impl RepositoryOptions {
    /// A repository at `location`, with the system clock, no S3 settings
    /// and no cache directory.
    pub fn new(location: Location) -> RepositoryOptions {
        RepositoryOptions {
            location,
            s3: S3Options::default(),
            cache_dir: None,
            clock: Arc::new(SystemClock),
            password: Arc::new(NoPassword),
            kdf: KdfParams::DEFAULT,
            create: NewRepository::default(),
        }
    }

    /// A local repository at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] when a relative path cannot be made absolute.
    pub fn local(path: &Path) -> Result<RepositoryOptions> {
        Ok(RepositoryOptions::new(Location::Local(crate::absolute(path)?)))
    }

    /// The cache directory of repository `id` (remote, or version 2),
    /// created, mode 0700.
    ///
    /// # Errors
    /// No cache directory was given, or it cannot be created.
    pub(crate) fn cache_for(&self, id: &str) -> Result<PathBuf> {
        let base = self.cache_dir.as_ref().ok_or_else(|| {
            Error::Usage("no cache directory: set HOME, XDG_CACHE_HOME or ROBOVAULT_CACHE_DIR".into())
        })?;
        let dir = base.join(id);
        // The cache holds the whole catalog in plaintext (FORMAT.md "Threat
        // model"): only its user may enter it.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)
            .map_err(|e| Error::io("creating the cache directory", &dir, e))?;
        // Tightens a cache made before; one of another user (a shared
        // ROBOVAULT_CACHE_DIR) stays as its owner made it.
        match std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)) {
            Err(e) if e.kind() != std::io::ErrorKind::PermissionDenied => {
                return Err(Error::io("restricting to its owner", &dir, e))
            }
            _ => {}
        }
        Ok(dir)
    }
}

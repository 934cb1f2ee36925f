//! Stored retry defaults (`--save-retry-defaults`, ROBOCOPY.md §7.1): a small
//! TOML file under the user's config directory. Its format (FORMAT.md,
//! "Retry defaults"): `version = 1`, `retries` and `wait`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The content of `defaults.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDefaults {
    /// Format version ([`DEFAULTS_VERSION`]).
    pub version: u32,
    /// `/R:n`.
    pub retries: u32,
    /// `/W:n`, seconds.
    pub wait: u64,
}

/// The format version of the retry defaults file.
pub const DEFAULTS_VERSION: u32 = 1;

fn defaults_path() -> Option<PathBuf> {
    Some(crate::env::config_dir()?.join("robovault").join("defaults.toml"))
}

/// The stored defaults, if there are any.
///
/// # Errors
/// An unreadable or malformed file, naming it.
pub fn stored_defaults() -> Result<Option<RetryDefaults>> {
    let Some(path) = defaults_path() else { return Ok(None) };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        // Not there, or under a home this user cannot read (a job run with
        // dropped privileges): the built-in defaults apply.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    decode(&bytes, &path).map(Some)
}

/// Decodes the bytes of the defaults file at `path` and checks its version.
///
/// # Errors
/// Text that is not UTF-8 TOML of this format, naming `path`.
pub fn decode(bytes: &[u8], path: &Path) -> Result<RetryDefaults> {
    let text = std::str::from_utf8(bytes).with_context(|| format!("reading {}: not UTF-8", path.display()))?;
    let d: RetryDefaults = toml::from_str(text).with_context(|| format!("reading {}", path.display()))?;
    if d.version != DEFAULTS_VERSION {
        bail!(
            "{} has format version {}; this robovault reads version {DEFAULTS_VERSION}",
            path.display(),
            d.version
        );
    }
    Ok(d)
}

/// Stores `d` as the new defaults; returns where.
///
/// # Errors
/// No home directory, or the file cannot be written.
pub fn save_defaults(d: RetryDefaults) -> Result<PathBuf> {
    let path = defaults_path().context("no home directory to store the retry defaults in")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = toml::to_string(&d).context("encoding the retry defaults")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

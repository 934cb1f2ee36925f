//! What the command line takes from the environment it runs in: the user's
//! directories. Read here, once, and handed down as options; nothing below
//! the command line looks at `HOME` or the XDG variables itself.

use std::path::PathBuf;

/// The user's home directory (`HOME`), if set.
pub fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The user's configuration directory: `XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".config")))
}

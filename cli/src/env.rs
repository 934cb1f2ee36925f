//! What the command line takes from the world it runs in: the environment
//! (`AWS_*`, `ROBOVAULT_*`, `HOME` and the XDG directories) and the clock.
//! Read here, and only here, into typed options that the engine receives;
//! nothing below the command line looks at the environment or the time
//! itself (DESIGN.md "Configuration"). The `ROBOVAULT_PASSWORD*` variables
//! are read here too, and kept from every hook robovault starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use robovault::S3Options;
use robovault::{Clock, Location, PasswordSource, RepositoryOptions, SystemClock};
use zeroize::Zeroizing;

use crate::password::{self, Choice};

/// The variables that can carry a password or say where one is. No hook or
/// password command robovault starts sees them.
pub const PASSWORD_VARS: [&str; 3] = [
    "ROBOVAULT_PASSWORD",
    "ROBOVAULT_PASSWORD_FILE",
    "ROBOVAULT_PASSWORD_COMMAND",
];

/// The user's home directory (`HOME`), if set.
pub fn home() -> Option<PathBuf> {
    var_path("HOME")
}

/// The user's configuration directory: `XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_dir() -> Option<PathBuf> {
    var_path("XDG_CONFIG_HOME").or_else(|| home().map(|h| h.join(".config")))
}

/// Where remote repositories keep their caches: `ROBOVAULT_CACHE_DIR`, else
/// `XDG_CACHE_HOME/robovault`, else `~/.cache/robovault`.
pub fn cache_dir() -> Option<PathBuf> {
    var_path("ROBOVAULT_CACHE_DIR")
        .or_else(|| var_path("XDG_CACHE_HOME").map(|c| c.join("robovault")))
        .or_else(|| home().map(|h| h.join(".cache/robovault")))
}

/// `ROBOVAULT_PASSWORD_FILE`, `ROBOVAULT_PASSWORD_COMMAND` and
/// `ROBOVAULT_PASSWORD`, each if set and not empty.
pub fn password_vars() -> password::Vars {
    password::Vars {
        file: var_path("ROBOVAULT_PASSWORD_FILE"),
        command: var("ROBOVAULT_PASSWORD_COMMAND"),
        password: var("ROBOVAULT_PASSWORD").map(Zeroizing::new),
    }
}

/// Removes the [`PASSWORD_VARS`] from the environment `c` will run in.
pub fn without_password_vars(c: &mut std::process::Command) -> &mut std::process::Command {
    for v in PASSWORD_VARS {
        c.env_remove(v);
    }
    c
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn var_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// How to reach an S3 gateway, as the global options give it; the
/// environment fills in what they leave out.
#[derive(Debug, Clone, Default)]
pub struct S3Flags {
    /// `--s3-endpoint`, else `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    /// `--s3-region`, else `AWS_REGION`.
    pub region: Option<String>,
    /// `--s3-allow-http`, else `ROBOVAULT_S3_ALLOW_HTTP=1`.
    pub allow_http: bool,
}

/// The settings every command builds its repository options from.
#[derive(Debug, Clone)]
pub struct Edge {
    s3: S3Flags,
    clock: Arc<dyn Clock>,
    password: Choice,
}

impl Edge {
    /// The command line's global options, with the system clock; the
    /// password source is chosen from `--password-file` and
    /// `--password-command`, then the environment, then the terminal.
    pub fn new(s3: S3Flags, password_file: Option<&Path>, password_command: Option<&str>) -> Edge {
        Edge {
            s3,
            clock: Arc::new(SystemClock),
            password: password::choose(
                password_file,
                password_command,
                password_vars(),
                password::on_a_terminal(),
            ),
        }
    }

    /// Where the password comes from, should one be needed.
    pub fn password(&self) -> &Choice {
        &self.password
    }

    /// The clock the commands ask.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The repository given as `given` (a path or `s3://BUCKET/PREFIX`),
    /// with what reaching it needs.
    ///
    /// # Errors
    /// A malformed URL, a path that cannot be made absolute, or a
    /// `ROBOVAULT_S3_*` limit that is not a number.
    pub fn repository(&self, given: &Path) -> Result<RepositoryOptions> {
        let location = Location::parse(given)?;
        let s3 = match location {
            Location::S3(_) => self.s3_options()?,
            Location::Local(_) => S3Options::default(),
        };
        Ok(RepositoryOptions {
            s3,
            cache_dir: cache_dir(),
            clock: Arc::clone(&self.clock),
            password: Arc::new(password::CliPassword(self.password.clone())) as Arc<dyn PasswordSource>,
            ..RepositoryOptions::new(location)
        })
    }

    /// The S3 options: the flags, then the environment. `ROBOVAULT_S3_TIMEOUT`
    /// (seconds) and `ROBOVAULT_S3_RETRIES` replace the limits on one request.
    fn s3_options(&self) -> Result<S3Options> {
        let timeout = parse_var("ROBOVAULT_S3_TIMEOUT", |t| {
            t.parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok())
        })?;
        let retries = parse_var("ROBOVAULT_S3_RETRIES", |t| t.parse::<usize>().ok())?;
        Ok(S3Options {
            endpoint: self.s3.endpoint.clone().or_else(|| var("AWS_ENDPOINT_URL")),
            region: self.s3.region.clone().or_else(|| var("AWS_REGION")),
            settings: aws_settings(),
            allow_http: self.s3.allow_http || var("ROBOVAULT_S3_ALLOW_HTTP").is_some_and(|v| v == "1" || v == "true"),
            timeout,
            retries,
        })
    }
}

/// Credentials and the S3 client's other settings, by their `AWS_*` names.
/// A variable that is not Unicode cannot be one of them and is passed over
/// (`std::env::vars` would panic on it).
fn aws_settings() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect()
}

/// The environment variable `name` parsed, if set; a clear error naming it
/// when it does not parse.
fn parse_var<T>(name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>> {
    let Some(text) = var(name) else {
        return Ok(None);
    };
    parse(text.trim())
        .map(Some)
        .ok_or_else(|| anyhow!("{name}={text:?}: not a number of zero or more"))
        .context("reading the S3 settings")
}

/// `ROBOVAULT_FORMAT_VERSION`: the format version of repositories this
/// command creates when `--format-version` is not given.
///
/// # Errors
/// A value that is not a number.
pub fn format_version() -> Result<Option<u32>> {
    let Some(text) = var("ROBOVAULT_FORMAT_VERSION") else {
        return Ok(None);
    };
    text.trim()
        .parse::<u32>()
        .map(Some)
        .map_err(|_| anyhow!("ROBOVAULT_FORMAT_VERSION={text:?}: give 1 or 2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_started_without_the_password_variables() {
        let mut c = std::process::Command::new("sh");
        for v in PASSWORD_VARS {
            c.env(v, "secret");
        }
        c.env("ROBOVAULT_SERIES", "kept");
        without_password_vars(&mut c);
        let envs: Vec<_> = c.get_envs().collect();
        for v in PASSWORD_VARS {
            assert!(envs.contains(&(std::ffi::OsStr::new(v), None)), "{v} removed: {envs:?}");
        }
        assert!(envs.contains(&(
            std::ffi::OsStr::new("ROBOVAULT_SERIES"),
            Some(std::ffi::OsStr::new("kept"))
        )));
    }
}

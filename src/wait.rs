//! Waiting for a path that is not there yet (`/TBD`, ROBOCOPY.md §7.1): a
//! share that is still being mounted. The attempts and the waits between
//! them are those of per-item retries, so an interrupt ends the wait.

use std::path::Path;

use crate::retry::{Failure, Retry};
use crate::{Reporter, Result, RunOptions};

/// Tries `path` until it can be read, up to `run.retries` retries
/// `run.wait` apart. Each failed attempt is reported through `reporter` as
/// an error of `action` on the path itself (an empty relative path), with
/// [`crate::Next::Retry`] before a wait and [`crate::Next::LimitExceeded`]
/// after the last. A path still missing then is not an error here: the
/// caller meets it when it opens the path.
///
/// # Errors
/// [`crate::Error::Interrupted`] when `run.interrupt` is set during a wait.
pub fn wait_for_path(path: &Path, action: &'static str, run: &RunOptions, reporter: &dyn Reporter) -> Result<()> {
    let retry = Retry::new(run, reporter, None);
    // A path still missing after the last attempt is the caller's to meet.
    let _still_missing = retry.run(b"", || {
        Ok(std::fs::metadata(path).map(|_| ()).map_err(|error| Failure {
            action,
            error,
            // Any error: the share may come up whatever its absence says.
            retry: true,
        }))
    })?;
    Ok(())
}

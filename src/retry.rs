//! Per-item retries (ROBOCOPY.md §7.1): an item that fails with a retryable
//! error is tried again after a wait, up to the configured number of retries,
//! and then counted FAILED; other errors fail it at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::report::{EntryLine, Next, Reporter};
use crate::summary::{io_message, RunError};
use crate::{Error, Result};

/// One failed attempt at an item.
#[derive(Debug)]
pub struct Failure {
    /// The robocopy action that failed.
    pub action: &'static str,
    /// The error.
    pub error: std::io::Error,
    /// Whether another attempt may succeed.
    pub retry: bool,
}

impl Failure {
    /// A failure from an I/O error, retried when the error is retryable.
    pub fn io(action: &'static str, error: std::io::Error) -> Failure {
        let retry = retryable(&error);
        Failure { action, error, retry }
    }

    /// A failure that no retry can cure (damaged repository data).
    pub fn fatal_for_item(action: &'static str, message: String) -> Failure {
        Failure {
            action,
            error: std::io::Error::other(message),
            retry: false,
        }
    }
}

/// A file that changed while it was read: worth another attempt, and told
/// apart by its type, not by its text (another error may say the same).
#[derive(Debug, thiserror::Error)]
#[error("the file changed while it was being read")]
pub struct ChangedWhileReading;

impl ChangedWhileReading {
    /// As the I/O error of a read.
    pub fn io() -> std::io::Error {
        std::io::Error::other(ChangedWhileReading)
    }
}

/// Errors worth another attempt (ROBOCOPY.md §7.1), and a file that changed
/// while it was read.
pub fn retryable(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    let Some(code) = e.raw_os_error() else {
        return e.get_ref().is_some_and(|inner| inner.is::<ChangedWhileReading>());
    };
    [
        Errno::ACCESS,
        Errno::PERM,
        Errno::BUSY,
        Errno::TXTBSY,
        Errno::AGAIN,
        Errno::INTR,
        Errno::IO,
        Errno::STALE,
        Errno::TIMEDOUT,
        Errno::NOTCONN,
        Errno::CONNRESET,
        Errno::CONNABORTED,
        Errno::NETDOWN,
        Errno::NETUNREACH,
        Errno::HOSTUNREACH,
        Errno::HOSTDOWN,
    ]
    .iter()
    .any(|e| e.raw_os_error() == code)
}

/// How retries run.
pub struct Retry<'a> {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Wait between attempts.
    pub wait: Duration,
    /// Stops the waiting when set.
    pub interrupt: &'a AtomicBool,
    /// Told of each failed attempt.
    pub reporter: &'a dyn Reporter,
    /// The item's file line, repeated before each retry so that every retry
    /// group reads on its own (ROBOCOPY.md §6.2).
    pub line: Option<EntryLine<'a>>,
    /// Time spent waiting so far (the FAILED column of the Times row).
    pub waited: std::cell::Cell<Duration>,
}

impl<'a> Retry<'a> {
    /// The retries `run` asks for, of one item whose file line is `line`.
    pub fn new(run: &'a crate::RunOptions, reporter: &'a dyn Reporter, line: Option<EntryLine<'a>>) -> Retry<'a> {
        Retry {
            retries: run.retries,
            wait: run.wait,
            interrupt: &run.interrupt,
            reporter,
            line,
            waited: Default::default(),
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries run
    /// out. The outer error is fatal (the run stops); the inner is the item's
    /// failure, already reported, to be counted.
    ///
    /// # Errors
    /// [`Error::Interrupted`] when interrupted while waiting; whatever fatal
    /// error `attempt` returns.
    pub fn run<T>(
        &self,
        rel: &[u8],
        mut attempt: impl FnMut() -> Result<std::result::Result<T, Failure>>,
    ) -> Result<std::result::Result<T, RunError>> {
        let attempts = self.retries + 1;
        for n in 1..=attempts {
            let failure = match attempt()? {
                Ok(v) => return Ok(Ok(v)),
                Err(f) => f,
            };
            let err = RunError {
                path: rel.to_vec(),
                action: failure.action.into(),
                code: failure.error.raw_os_error().unwrap_or(0),
                message: io_message(&failure.error),
                attempts: n,
            };
            if !failure.retry {
                self.reporter.error(&err, Next::NotRetried);
                return Ok(Err(err));
            }
            if n == attempts {
                self.reporter.error(&err, Next::LimitExceeded);
                return Ok(Err(err));
            }
            self.reporter.error(&err, Next::Retry(self.wait));
            self.sleep()?;
            if let Some(line) = &self.line {
                self.reporter.entry(line);
            }
        }
        unreachable!("the last attempt returns")
    }

    fn sleep(&self) -> Result<()> {
        let end = Instant::now() + self.wait;
        loop {
            if self.interrupt.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let now = Instant::now();
            if now >= end {
                self.waited.set(self.waited.get() + self.wait);
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_while_reading_is_retried_by_its_kind_not_its_text() {
        assert!(retryable(&ChangedWhileReading::io()));
        // Another error that happens to say the same is not a change.
        let lookalike = std::io::Error::other(ChangedWhileReading.to_string());
        assert!(!retryable(&lookalike));
        assert!(!retryable(&std::io::Error::other("anything else")));
        assert!(retryable(&std::io::Error::from_raw_os_error(libc_eio())));
    }

    fn libc_eio() -> i32 {
        rustix::io::Errno::IO.raw_os_error()
    }
}

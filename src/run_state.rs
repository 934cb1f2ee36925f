//! What a backup and a restore keep while they run, the same for both: the
//! items that failed (ROBOCOPY.md §7.1), the time spent copying and waiting
//! between retries (the Times row of §4.6), the interrupt, and the retries
//! themselves. The walks differ; this part of them does not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::report::{EntryLine, Next, Reporter};
use crate::retry::{Failure, Retry};
use crate::summary::RunError;
use crate::{Error, Result, RunOptions};

/// The shared state of one run, borrowed by its worker threads.
pub(crate) struct RunState<'a> {
    pub run: &'a RunOptions,
    pub reporter: &'a dyn Reporter,
    errors: Mutex<Vec<RunError>>,
    copy_nanos: AtomicU64,
    wait_nanos: AtomicU64,
}

/// What is left of a run's state when it is over.
pub(crate) struct RunTotals {
    /// Every failed item, by path.
    pub errors: Vec<RunError>,
    pub copy_time: Duration,
    pub wait_time: Duration,
}

impl<'a> RunState<'a> {
    pub fn new(run: &'a RunOptions, reporter: &'a dyn Reporter) -> RunState<'a> {
        RunState {
            run,
            reporter,
            errors: Mutex::new(Vec::new()),
            copy_nanos: AtomicU64::new(0),
            wait_nanos: AtomicU64::new(0),
        }
    }

    /// Stops the run when it was interrupted (nothing is committed then).
    pub fn check_interrupt(&self) -> Result<()> {
        if self.run.interrupt.load(Ordering::Relaxed) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Reports and records an item that failed without a retry.
    pub fn fail(&self, err: RunError) {
        self.reporter.error(&err, Next::NotRetried);
        self.record(err);
    }

    /// Records a failure that was already reported.
    pub fn record(&self, err: RunError) {
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).push(err);
    }

    /// The retries of ROBOCOPY.md §7.1 for one item, `line` repeated before
    /// each.
    pub fn retry<'b>(&'b self, line: Option<EntryLine<'b>>) -> Retry<'b> {
        Retry::new(self.run, self.reporter, line)
    }

    /// Runs a retried action whose time is not copying (listing a
    /// directory): only its waits are booked.
    pub fn retried<T>(
        &self,
        rel: &[u8],
        attempt: impl FnMut() -> Result<std::result::Result<T, Failure>>,
    ) -> Result<std::result::Result<T, RunError>> {
        let retry = self.retry(None);
        let result = retry.run(rel, attempt);
        self.wait_nanos
            .fetch_add(retry.waited.get().as_nanos() as u64, Ordering::Relaxed);
        result
    }

    /// Runs a retried copy and books its time: the waits as waiting, the
    /// rest as copying (§4.6 Times row).
    pub fn timed<T>(
        &self,
        rel: &[u8],
        line: Option<EntryLine<'_>>,
        attempt: impl FnMut() -> Result<std::result::Result<T, Failure>>,
    ) -> Result<std::result::Result<T, RunError>> {
        let retry = self.retry(line);
        let start = Instant::now();
        let result = retry.run(rel, attempt);
        let total = start.elapsed();
        let waited = retry.waited.get().min(total);
        self.wait_nanos.fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        self.copy_nanos
            .fetch_add((total - waited).as_nanos() as u64, Ordering::Relaxed);
        result
    }

    /// The failures, sorted by path, and the times.
    pub fn finish(self) -> RunTotals {
        let mut errors = self.errors.into_inner().unwrap_or_else(|p| p.into_inner());
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        RunTotals {
            errors,
            copy_time: Duration::from_nanos(self.copy_nanos.into_inner()),
            wait_time: Duration::from_nanos(self.wait_nanos.into_inner()),
        }
    }
}

//! The status line of ROBOCOPY.md §6.5: on a terminal only, never with
//! `--np`, in a pipe or in a log file. It counts items (files, or packs for
//! verify and gc) and bytes done of those found so far, with throughput and
//! an ETA, redrawn in place by indicatif.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use robovault::Progress;

use crate::output::{hms, line_bytes};

/// A status line below the log lines.
pub struct Status {
    bar: indicatif::ProgressBar,
    unit: &'static str,
    started: Instant,
    tally: Mutex<Tally>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    found: u64,
    found_bytes: u64,
    done: u64,
    done_bytes: u64,
}

impl Status {
    /// A status line counting `unit`s, when stdout is a terminal and
    /// `enabled` (no `--np`, output going to stdout).
    pub fn new(unit: &'static str, enabled: bool) -> Option<Status> {
        if !enabled || !std::io::stdout().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stdout());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{msg}") {
            bar.set_style(style);
        }
        Some(Status {
            bar,
            unit,
            started: Instant::now(),
            tally: Mutex::new(Tally::default()),
        })
    }

    /// Runs `print` with the status line out of the way.
    pub fn suspend<T>(&self, print: impl FnOnce() -> T) -> T {
        self.bar.suspend(print)
    }

    /// Counts progress and redraws.
    pub fn update(&self, p: Progress) {
        let t = {
            let mut t = self.tally.lock().unwrap_or_else(|p| p.into_inner());
            match p {
                Progress::Found { files, bytes } => {
                    t.found += files;
                    t.found_bytes += bytes;
                }
                Progress::Done { bytes } => {
                    t.done += 1;
                    t.done_bytes += bytes;
                }
            }
            *t
        };
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = t.done_bytes as f64 / secs;
        let left = t.found_bytes.saturating_sub(t.done_bytes) as f64;
        let eta = if rate > 0.0 {
            hms((left / rate) as u64)
        } else {
            "-:--:--".into()
        };
        self.bar.set_message(format!(
            "{} of {} {}, {} of {}, {}/s, ETA {eta}",
            t.done,
            t.found,
            self.unit,
            line_bytes(t.done_bytes, false),
            line_bytes(t.found_bytes, false),
            line_bytes(rate as u64, false),
        ));
    }

    /// Clears the line for good.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        // A run that ended early leaves no half-drawn line.
        self.bar.finish_and_clear();
    }
}

impl robovault::Reporter for Status {
    fn progress(&self, p: Progress) {
        self.update(p);
    }
}

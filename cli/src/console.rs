//! The console log: error and retry lines (ROBOCOPY.md §6.3), each written
//! and flushed as a whole line, whatever thread reports it.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use robovault::{display_bytes, Next, Reporter, RunError, RunStart};

use crate::output::{header_time, BANNER, RULE};

/// Which job the log is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// A backup: entries live under the source.
    Backup,
    /// A restore: entries live under the target.
    Restore,
}

/// Writes the log of a run to stdout (or nothing, under `--json`): the header
/// once the run has started, and per-item error lines.
pub struct Console {
    job: Job,
    /// The directory the entries live under, with a trailing `/`.
    root: String,
    /// The other side: the repository (backup) or the target (restore).
    options: String,
    quiet: bool,
    out: Mutex<()>,
}

fn dir_text(p: &Path) -> String {
    let mut s = display_bytes(p.as_os_str().as_encoded_bytes());
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

impl Console {
    /// A log for a run whose entries live under `root`; `options` is the
    /// Options line.
    pub fn new(job: Job, root: &Path, options: String, quiet: bool) -> Console {
        Console {
            job,
            root: dir_text(root),
            options,
            quiet,
            out: Mutex::new(()),
        }
    }

    fn write(&self, text: &str) {
        if self.quiet {
            return;
        }
        let _guard = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// The two lines of an error (§6.3).
pub fn error_lines(root: &str, err: &RunError) -> String {
    let now = chrono::Local::now().format("%Y/%m/%d %H:%M:%S");
    format!(
        "{now} ERROR {} (0x{:08X}) {} {}{}\n{}\n",
        err.code,
        err.code,
        err.action,
        root,
        display_bytes(&err.path),
        err.message
    )
}

impl Reporter for Console {
    fn start(&self, run: &RunStart) {
        let mut head = format!(
            "{BANNER}\n   ROBOVAULT    ::     Robust Versioned Backup   v{}\n{BANNER}\n\n",
            env!("CARGO_PKG_VERSION")
        );
        head.push_str(&format!("  Started : {}\n", header_time(&chrono::Utc::now())));
        let repo = dir_text(&run.repository);
        let id = run.snapshot.clone().unwrap_or_else(|| "none".into());
        match self.job {
            Job::Backup => {
                head.push_str(&format!("   Source : {}\n", self.root));
                head.push_str(&format!("     Dest : {repo} [series {}, baseline {id}]\n", run.series));
                if run.repository_created {
                    head.push_str(&format!(" New Repo : {repo} (created)\n"));
                }
            }
            Job::Restore => {
                head.push_str(&format!("   Source : {repo} [series {}, snapshot {id}]\n", run.series));
                head.push_str(&format!("     Dest : {}\n", self.root));
            }
        }
        head.push_str(&format!(
            "\n    Files : *.*\n\n  Options : {}\n\n{RULE}\n\n",
            self.options
        ));
        self.write(&head);
    }

    fn error(&self, err: &RunError, next: Next) {
        let mut text = error_lines(&self.root, err);
        match next {
            Next::Retry(wait) => text.push_str(&format!("Waiting {} seconds... Retrying...\n", wait.as_secs())),
            Next::LimitExceeded => text.push_str("ERROR: RETRY LIMIT EXCEEDED.\n"),
            Next::NotRetried => {}
        }
        self.write(&text);
    }
}

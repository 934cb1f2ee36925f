//! The console log: error and retry lines (ROBOCOPY.md §6.3), each written
//! and flushed as a whole line, whatever thread reports it.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use robovault::{display_bytes, Next, Reporter, RunError};

/// Writes per-item error lines of a run to stdout (or nowhere, under `--json`).
pub struct Console {
    root: String,
    quiet: bool,
    out: Mutex<()>,
}

impl Console {
    /// A log for a run whose entries live under `root`.
    pub fn new(root: &Path, quiet: bool) -> Console {
        let mut root = display_bytes(root.as_os_str().as_encoded_bytes());
        if !root.ends_with('/') {
            root.push('/');
        }
        Console {
            root,
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

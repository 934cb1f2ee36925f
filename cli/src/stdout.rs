//! Standard output. Every answer goes through here, so that a command that
//! fails after it answered does not answer twice (ROBOCOPY.md §6.6).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

/// Whether anything went to stdout: a command that fails after it answered
/// must not answer twice.
static ANSWERED: AtomicBool = AtomicBool::new(false);

/// Writes text to stdout and flushes; a closed pipe is ignored here (the
/// log's other destinations still get it).
pub(crate) fn print_flush(text: &str) {
    ANSWERED.store(true, Ordering::SeqCst);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// One JSON document and a newline on stdout; a closed pipe is an error the
/// caller ends quietly on, never a panic.
pub(crate) fn write_line(v: &impl std::fmt::Display) -> Result<()> {
    write_out(format!("{v}\n").as_bytes())
}

pub(crate) fn write_out(bytes: &[u8]) -> Result<()> {
    ANSWERED.store(true, Ordering::SeqCst);
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).context("writing standard output")?;
    out.flush().context("writing standard output")?;
    Ok(())
}

/// Whether anything went to standard output.
pub(crate) fn answered() -> bool {
    ANSWERED.load(Ordering::SeqCst)
}

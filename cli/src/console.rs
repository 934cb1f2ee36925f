//! The run log (ROBOCOPY.md §6): header, directory and file lines, error and
//! retry lines, and the summary, each written and flushed as a whole line to
//! every destination (stdout, the log file, or both under `--tee`),
//! whatever thread reports it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{Local, TimeZone};
use robovault::{display_bytes, DirLine, EntryLine, Next, Progress, Reporter, RunError, RunStart};

use crate::output::{header_time, line_bytes, BANNER, RULE};
use crate::progress::Status;

/// Which job the log is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// A backup: entries live under the source.
    Backup,
    /// A restore: entries live under the target.
    Restore,
}

/// The logging switches (§3.1, §6.2).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogFlags {
    /// `--np`.
    pub no_progress: bool,
    /// `--ndl`.
    pub no_dir_list: bool,
    /// `--nfl`.
    pub no_file_list: bool,
    /// `--njh`.
    pub no_job_header: bool,
    /// `--njs`.
    pub no_job_summary: bool,
    /// `--nc`.
    pub no_class: bool,
    /// `--ns`.
    pub no_size: bool,
    /// `--bytes`.
    pub bytes: bool,
    /// `--ts`.
    pub timestamps: bool,
    /// `--fp`.
    pub full_paths: bool,
    /// `--eta`.
    pub eta: bool,
    /// `-v`.
    pub verbose: bool,
}

/// The header's fixed parts, known before the run starts.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// `Files :` (the include filespecs, `*.*` by default).
    pub files: String,
    /// `Exc Files :`, when used.
    pub exc_files: String,
    /// `Exc Dirs :`, when used.
    pub exc_dirs: String,
    /// `Options :`.
    pub options: String,
    /// `Log File :`, when used.
    pub log_file: Option<PathBuf>,
    /// `Job File :`, when used.
    pub job_file: Option<PathBuf>,
    /// The run is `--list-only`.
    pub list_only: bool,
}

/// Writes the log of a run.
pub struct Console {
    job: Job,
    /// The directory the entries live under, with a trailing `/`.
    root: String,
    header: Header,
    flags: LogFlags,
    to_stdout: bool,
    file: Option<Mutex<File>>,
    out: Mutex<()>,
    started: Instant,
    copied_bytes: Mutex<u64>,
    /// The status line, only on a terminal without `--np` (§6.5).
    status: Option<Status>,
}

/// A path as a log shows a directory: absolute, ending in `/`.
pub fn dir_text(p: &Path) -> String {
    let mut s = display_bytes(p.as_os_str().as_encoded_bytes());
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// Opens the log file of `--log` (truncating) or `--log-append`.
///
/// # Errors
/// The system error, for the `Opening Log File` error line.
pub fn open_log(path: &Path, append: bool) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(path)
}

impl Console {
    /// A log for a run whose entries live under `root`. `to_stdout` is false
    /// under `--json`, or with a log file and no `--tee`.
    pub fn new(job: Job, root: &Path, header: Header, flags: LogFlags, to_stdout: bool, file: Option<File>) -> Console {
        Console {
            status: Status::new("files", to_stdout && !flags.no_progress),
            job,
            root: dir_text(root),
            header,
            flags,
            to_stdout,
            file: file.map(Mutex::new),
            out: Mutex::new(()),
            started: Instant::now(),
            copied_bytes: Mutex::new(0),
        }
    }

    /// Writes whole lines to every destination, flushed at once (§6.5).
    pub fn write(&self, text: &str) {
        let _guard = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if self.to_stdout {
            let print = || {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            };
            // The status line steps aside for log lines and comes back below.
            match &self.status {
                Some(status) => status.suspend(print),
                None => print(),
            }
        }
        if let Some(f) = &self.file {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            let _ = f.write_all(text.as_bytes());
            let _ = f.flush();
        }
    }

    /// The summary block, unless `--njs`; the status line is cleared first.
    pub fn summary(&self, text: &str) {
        if let Some(status) = &self.status {
            status.clear();
        }
        if !self.flags.no_job_summary {
            self.write(text);
        }
    }

    fn eta(&self, size: u64) -> String {
        let now = Local::now();
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let done = *self.copied_bytes.lock().unwrap_or_else(|p| p.into_inner());
        // Throughput so far; until something was copied, assume 100 MB/s.
        let rate = if done > 0 {
            done as f64 / elapsed
        } else {
            100.0 * 1_048_576.0
        };
        // A slow start can promise an end past any calendar: shown as unknown.
        let end = chrono::Duration::try_milliseconds((size as f64 / rate * 1000.0) as i64)
            .and_then(|d| now.checked_add_signed(d))
            .map_or_else(|| "--:--".to_owned(), |e| e.format("%H:%M").to_string());
        format!("\t{} -> {end}", now.format("%H:%M"))
    }
}

/// The two lines of an error (§6.3), the path under `root`. A failure that
/// is no system call's (a damaged blob, a checksum) has no errno to print:
/// its line goes without `<code> (0x…)` rather than show a made-up 0.
pub fn error_lines(root: &str, err: &RunError) -> String {
    let now = chrono::Local::now().format("%Y/%m/%d %H:%M:%S");
    let code = match err.code {
        0 => String::new(),
        c => format!("{c} (0x{c:08X}) "),
    };
    format!(
        "{now} ERROR {code}{} {}{}\n{}\n",
        err.action,
        root,
        display_bytes(&err.path),
        err.message
    )
}

impl Reporter for Console {
    fn start(&self, run: &RunStart) {
        if self.flags.no_job_header {
            return;
        }
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
                    let how = if self.header.list_only {
                        "(would be created)"
                    } else {
                        "(created)"
                    };
                    head.push_str(&format!(" New Repo : {repo} {how}\n"));
                }
            }
            Job::Restore => {
                head.push_str(&format!("   Source : {repo} [series {}, snapshot {id}]\n", run.series));
                head.push_str(&format!("     Dest : {}\n", self.root));
            }
        }
        let h = &self.header;
        head.push_str(&format!("\n    Files : {}\n", h.files));
        if !h.exc_files.is_empty() {
            head.push_str(&format!("Exc Files : {}\n", h.exc_files));
        }
        if !h.exc_dirs.is_empty() {
            head.push_str(&format!(" Exc Dirs : {}\n", h.exc_dirs));
        }
        head.push_str(&format!("\n  Options : {}\n", h.options));
        if let Some(f) = &h.log_file {
            head.push_str(&format!(" Log File : {}\n", f.display()));
        }
        if let Some(f) = &h.job_file {
            head.push_str(&format!(" Job File : {}\n", f.display()));
        }
        head.push_str(&format!("\n{RULE}\n\n"));
        self.write(&head);
    }

    fn dir(&self, line: &DirLine) {
        if self.flags.no_dir_list || (line.verbose_only && !self.flags.verbose) {
            return;
        }
        let tag = if self.flags.no_class { "            " } else { line.tag };
        let count = line.count.map(|c| format!("{c:>8}")).unwrap_or_else(|| " ".repeat(8));
        let path = if line.rel.is_empty() {
            self.root.clone()
        } else {
            format!("{}{}/", self.root, display_bytes(line.rel))
        };
        self.write(&format!("\t{tag}{count}\t{path}\n"));
    }

    fn entry(&self, line: &EntryLine) {
        if self.flags.no_file_list || (line.verbose_only && !self.flags.verbose) {
            return;
        }
        let tag = if self.flags.no_class { "            " } else { line.tag };
        let size = if self.flags.no_size {
            String::new()
        } else {
            line_bytes(line.size, self.flags.bytes)
        };
        let name = if line.full_path || self.flags.full_paths {
            format!("{}{}", self.root, display_bytes(line.rel))
        } else {
            let base = line.rel.rsplit(|c| *c == b'/').next().unwrap_or(line.rel);
            display_bytes(base)
        };
        let ts = if self.flags.timestamps {
            let t = Local
                .timestamp_opt(line.mtime.0, line.mtime.1)
                .single()
                .map(|t| t.format("%Y/%m/%d %H:%M:%S").to_string())
                .unwrap_or_else(|| " ".repeat(19));
            format!("{t}\t")
        } else {
            String::new()
        };
        let copied = line.tag.starts_with("  ") && line.tag.trim_start().starts_with(char::is_uppercase);
        let eta = if self.flags.eta && copied && !line.full_path {
            self.eta(line.size)
        } else {
            String::new()
        };
        if copied {
            *self.copied_bytes.lock().unwrap_or_else(|p| p.into_inner()) += line.size;
        }
        self.write(&format!("\t{tag}\t{size:>14}\t{ts}{name}{eta}\n"));
    }

    fn note(&self, text: &str) {
        self.write(&format!("NOTE : {text}\n"));
    }

    fn progress(&self, p: Progress) {
        if let Some(status) = &self.status {
            status.update(p);
        }
    }

    fn warning(&self, text: &str) {
        let line = format!("WARNING : {text}\n");
        self.write(&line);
        eprint!("{line}");
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

//! `backup`: a robocopy job from a source directory into the repository
//! (ROBOCOPY.md §3); the job frame does the rest.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;
use chrono::Local;
use robovault::{
    BackupOptions, BackupSummary, BaselineChoice, CopyFlags, JobOptions, MoveMode, Next, Reporter, RepositoryOptions,
    RunError, RunOptions, EXIT_FATAL,
};
use serde_json::json;

use crate::args::BackupArgs;
use crate::console::{error_lines, Console, Job};
use crate::env::Edge;
use crate::job::{
    console, copy_letters, dcopy_letters, effective, execute, filespec_check, header, job_options, parse_age,
    parse_duration, run_options, save_and_quit, times, usage, with_hooks, JobKind, Outcome, RunJson,
};
use crate::output::{summary_bytes, summary_table};

/// Runs `backup`, then its hooks.
///
/// # Errors
/// A usage or fatal error.
pub(super) fn backup(
    edge: &Edge,
    a: &BackupArgs,
    raw: &[OsString],
    job_file: Option<PathBuf>,
    interrupt: &Arc<AtomicBool>,
) -> Result<u32> {
    with_hooks("backup", &a.job, |o| backup_job(edge, a, raw, job_file, interrupt, o))
}

fn backup_job(
    edge: &Edge,
    a: &BackupArgs,
    raw: &[OsString],
    job_file: Option<PathBuf>,
    interrupt: &Arc<AtomicBool>,
    o: &mut Outcome,
) -> Result<u32> {
    let j = &a.job;
    filespec_check(&a.filespecs, raw, false)?;
    if a.archive || a.archive_reset {
        return Err(usage("/A and /M (the Archive attribute) exist on Windows only"));
    }
    // Backup records everything whatever --copy says, but a bad letter is
    // still a usage error (§3.2 rule 6).
    CopyFlags::parse(&copy_letters(j, false)).map_err(|e| usage(e.to_string()))?;
    CopyFlags::parse(&dcopy_letters(j)).map_err(|e| usage(e.to_string()))?;
    let source = robovault::absolute(&a.source)?;
    o.root = Some(source.clone());
    let mut repo = edge.repository(&a.repo)?;
    super::init::new_repository(&a.new, &mut repo)?;
    o.repository = Some(repo.location.to_string());
    o.series = j.series.clone();
    let lock_wait = parse_duration(a.lock_wait.as_deref().unwrap_or("0"))?;
    let run = run_options(j, interrupt, lock_wait)?;
    let job = selection(edge, a, &source)?;
    let ours = our_switches(a);
    let eff = effective(j, &a.filespecs, &run, &ours);
    if save_and_quit(
        j,
        &eff,
        &run,
        (&a.source, &a.repo),
        &a.filespecs,
        &saved_switches(a, &ours),
    )? {
        return Ok(0);
    }
    let opts = options(a, job, run);
    let console = console(j, Job::Backup, &source, header(j, &a.filespecs, &eff, job_file))?;
    let kind = Backup { a, repo, opts, source };
    execute(&kind, j, &console, o)
}

/// The selection and class switches, with backup's own.
fn selection(edge: &Edge, a: &BackupArgs, source: &Path) -> Result<JobOptions> {
    let start = edge.clock().now().with_timezone(&Local);
    let mut job = job_options(&a.job, &a.filespecs, source, false, start)?;
    job.keep_extras = a.keep_extras;
    job.ignore_vanished = a.ignore_vanished;
    job.follow_links = a.follow_links;
    let lad = |t: &Option<String>| t.as_deref().map(|t| parse_age(t, start)).transpose();
    job.filters.max_lad = lad(&a.max_lad)?;
    job.filters.min_lad = lad(&a.min_lad)?;
    Ok(job)
}

/// The engine options of the run.
fn options(a: &BackupArgs, job: JobOptions, run: RunOptions) -> BackupOptions {
    BackupOptions {
        series: a.job.series.clone(),
        baseline: match (&a.baseline, a.no_baseline) {
            (Some(id), _) => BaselineChoice::Id(id.clone()),
            (None, true) => BaselineChoice::Empty,
            _ => BaselineChoice::Latest,
        },
        job,
        run,
        move_mode: if a.move_all {
            MoveMode::FilesAndDirs
        } else if a.move_files {
            MoveMode::Files
        } else {
            MoveMode::Off
        },
    }
}

/// Backup's own switches on the Options line.
fn our_switches(a: &BackupArgs) -> Vec<String> {
    let mut ours = Vec::new();
    if a.keep_extras {
        ours.push("/KEEPEXTRAS".to_owned());
    }
    if a.no_baseline {
        ours.push("/NOBASELINE".into());
    }
    if let Some(b) = &a.baseline {
        ours.push(format!("/BASELINE:{b}"));
    }
    if a.move_all {
        ours.push("/MOVE".into());
    } else if a.move_files {
        ours.push("/MOV".into());
    }
    if a.ignore_vanished {
        ours.push("/IGNOREVANISHED".into());
    }
    if a.follow_links {
        ours.push("/FOLLOWLINKS".into());
    }
    ours
}

/// Backup's own switches in a saved job: those of the Options line, and
/// those it leaves out.
fn saved_switches(a: &BackupArgs, ours: &[String]) -> Vec<String> {
    let mut save_extra = ours.to_vec();
    if let Some(l) = &a.lock_wait {
        save_extra.push(format!("/LOCKWAIT:{l}"));
    }
    for (switch, v) in [("MAXLAD", &a.max_lad), ("MINLAD", &a.min_lad)] {
        if let Some(v) = v {
            save_extra.push(format!("/{switch}:{v}"));
        }
    }
    save_extra
}

/// A backup's own fields in its JSON object (ROBOCOPY.md §6.6).
#[derive(serde::Serialize)]
struct BackupJson<'a> {
    snapshot: Option<&'a str>,
    parent: Option<&'a str>,
    repository_created: bool,
    /// Null under list-only, which stores nothing.
    new_data: Option<u64>,
    read: ReadJson,
    stored: StoredJson,
}

#[derive(serde::Serialize)]
struct ReadJson {
    files: u64,
    bytes: u64,
}

#[derive(serde::Serialize)]
struct StoredJson {
    blobs: u64,
    packed_bytes: u64,
}

/// A backup run inside the job frame.
struct Backup<'a> {
    a: &'a BackupArgs,
    repo: RepositoryOptions,
    opts: BackupOptions,
    /// The source, absolute.
    source: PathBuf,
}

impl JobKind for Backup<'_> {
    type Summary = BackupSummary;

    fn run(&self, console: &Console) -> robovault::Result<BackupSummary> {
        wait_for_root(&self.a.job, &self.source, &self.opts.run, console)?;
        robovault::backup(&self.a.source, &self.repo, &self.opts, console)
    }

    fn failure_json(&self, error: &str) -> serde_json::Value {
        json!({"command": "backup", "repository": self.a.repo.display().to_string(), "snapshot": null,
               "list_only": self.a.job.list_only, "exit_code": EXIT_FATAL, "error": error})
    }

    fn record(&self, s: &BackupSummary, o: &mut Outcome) {
        o.series = Some(s.series.clone());
        o.snapshot = s.snapshot.clone();
        o.counts = Some(s.counts);
        o.new_data = (!s.list_only).then_some(s.new_data);
    }

    fn json(&self, s: &BackupSummary) -> serde_json::Value {
        RunJson {
            command: "backup",
            repository: &s.repository,
            series: &s.series,
            started: s.started,
            ended: s.ended,
            exit_code: s.exit_code,
            list_only: s.list_only,
            counts: &s.counts,
            errors: &s.errors,
        }
        .value(BackupJson {
            snapshot: s.snapshot.as_deref(),
            parent: s.parent.as_deref(),
            repository_created: s.repository_created,
            new_data: (!s.list_only).then_some(s.new_data),
            read: ReadJson {
                files: s.files_read,
                bytes: s.bytes_read,
            },
            stored: StoredJson {
                blobs: s.blobs_stored,
                packed_bytes: s.packed_bytes,
            },
        })
    }

    fn table(&self, s: &BackupSummary, bytes: bool) -> String {
        let ext = [
            ("Snapshot", s.snapshot.clone().unwrap_or_else(|| "(none)".into())),
            ("Parent", s.parent.clone().unwrap_or_else(|| "none".into())),
            // Right-aligned in 10 characters after the colon (ROBOCOPY.md §6.4).
            (
                "New Data",
                if s.list_only {
                    "n/a".into()
                } else {
                    format!("{:>9}", summary_bytes(s.new_data))
                },
            ),
        ];
        let t = times(s.started, s.ended, s.copy_time, s.wait_time);
        summary_table(&s.counts, t, bytes, &ext, &s.ended)
    }

    fn exit_code(&self, s: &BackupSummary) -> u32 {
        s.exit_code
    }
}

/// `--wait-for-share`: retry a missing source root (§7.1); an interrupt
/// ends the wait as it ends a run.
fn wait_for_root(j: &crate::args::JobArgs, root: &Path, run: &RunOptions, console: &Console) -> robovault::Result<()> {
    if !j.wait_for_share {
        return Ok(());
    }
    let lines = WaitLines {
        console,
        root: root.display().to_string(),
    };
    robovault::wait_for_path(root, "Accessing Source Directory", run, &lines)
}

/// The log lines of a wait for the source root: the root as given, without
/// the trailing `/` of entry paths, and nothing after the last attempt (the
/// run's own error follows).
struct WaitLines<'a> {
    console: &'a Console,
    root: String,
}

impl Reporter for WaitLines<'_> {
    fn error(&self, err: &RunError, next: Next) {
        if let Next::Retry(wait) = next {
            self.console.write(&format!(
                "{}Waiting {} seconds... Retrying...\n",
                error_lines(&self.root, err),
                wait.as_secs()
            ));
        }
    }
}

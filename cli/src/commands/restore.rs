//! `restore`: a robocopy job from a snapshot into a target directory
//! (ROBOCOPY.md §3, §5); the job frame does the rest.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::Local;
use robovault::{CopyFlags, JobOptions, RepositoryOptions, RestoreOptions, RestoreSummary, RunOptions, EXIT_FATAL};
use serde_json::json;

use crate::args::RestoreArgs;
use crate::console::{Console, Job};
use crate::env::Edge;
use crate::job::RunJson;
use crate::job::{
    attrs, console, copy_letters, dcopy_letters, effective, execute, filespec_check, header, job_options, run_options,
    save_and_quit, times, usage, with_hooks, JobKind, Outcome,
};
use crate::output::summary_table;

/// Runs `restore`, then its hooks.
///
/// # Errors
/// A usage or fatal error.
pub(super) fn restore(
    edge: &Edge,
    a: &RestoreArgs,
    raw: &[OsString],
    job_file: Option<PathBuf>,
    interrupt: &Arc<AtomicBool>,
) -> Result<u32> {
    with_hooks("restore", &a.job, |o| restore_job(edge, a, raw, job_file, interrupt, o))
}

fn restore_job(
    edge: &Edge,
    a: &RestoreArgs,
    raw: &[OsString],
    job_file: Option<PathBuf>,
    interrupt: &Arc<AtomicBool>,
    o: &mut Outcome,
) -> Result<u32> {
    let j = &a.job;
    filespec_check(&a.filespecs, raw, true)?;
    let target = robovault::absolute(&a.target)?;
    o.root = Some(target.clone());
    let repo = edge.repository(&a.repo)?;
    o.repository = Some(repo.location.to_string());
    o.series = j.series.clone();
    let run = run_options(j, interrupt, Duration::ZERO)?;
    // Relative paths select entries (as positionals or /IF values, so that
    // a saved job keeps them); names and wildcards are filespecs.
    let (paths, names): (Vec<String>, Vec<String>) = a
        .filespecs
        .iter()
        .chain(&j.include_files)
        .cloned()
        .partition(|f| f.contains(['/', '\\']));
    filespec_check(&paths, raw, true)?;
    let mut j_names = j.clone();
    j_names.include_files.clear();
    let job = job_options(
        &j_names,
        &names,
        &target,
        true,
        edge.clock().now().with_timezone(&Local),
    )?;
    let ours = our_switches(a);
    let eff = effective(j, &a.filespecs, &run, &ours);
    if save_and_quit(
        j,
        &eff,
        &run,
        (&a.repo, &a.target),
        &a.filespecs,
        &saved_switches(a, &ours),
    )? {
        return Ok(0);
    }
    let opts = options(edge, a, &paths, job, run)?;
    let console = console(j, Job::Restore, &target, header(j, &names, &eff, job_file))?;
    let kind = Restore { a, repo, opts, target };
    execute(&kind, j, &console, o)
}

/// The engine options of the run; `paths` the entries it selects.
fn options(edge: &Edge, a: &RestoreArgs, paths: &[String], job: JobOptions, run: RunOptions) -> Result<RestoreOptions> {
    let j = &a.job;
    let letters = |v: &Option<String>| -> Result<bool> {
        match v.as_deref().map(str::to_uppercase) {
            None => Ok(false),
            // Other letters act on Windows only (§3.3).
            Some(l) => Ok(attrs(&Some(l))?.contains('R')),
        }
    };
    Ok(RestoreOptions {
        series: j.series.clone(),
        snapshot: super::choice(&a.snapshot, edge.clock().now())?,
        paths: paths.iter().map(|p| p.replace('\\', "/").into_bytes()).collect(),
        copy: CopyFlags::parse(&copy_letters(j, a.owner)).map_err(|e| usage(e.to_string()))?,
        dcopy: CopyFlags::parse(&dcopy_letters(j)).map_err(|e| usage(e.to_string()))?,
        job,
        run,
        force: a.force,
        no_copy: a.nocopy,
        add_readonly: letters(&a.attr_add)?,
        remove_readonly: letters(&a.attr_remove)?,
        home: crate::env::home(),
    })
}

/// Restore's own switches on the Options line.
fn our_switches(a: &RestoreArgs) -> Vec<String> {
    let mut ours = Vec::new();
    if a.force {
        ours.push("/FORCE".to_owned());
    }
    if a.nocopy {
        ours.push("/NOCOPY".into());
    }
    ours
}

/// Restore's own switches in a saved job: those of the Options line, and
/// those it leaves out.
fn saved_switches(a: &RestoreArgs, ours: &[String]) -> Vec<String> {
    let mut save_extra = ours.to_vec();
    if a.owner {
        save_extra.push("/OWNER".into());
    }
    for (switch, v) in [
        ("SNAPSHOT", &a.snapshot.snapshot),
        ("AT", &a.snapshot.at),
        ("A+", &a.attr_add),
        ("A-", &a.attr_remove),
    ] {
        if let Some(v) = v {
            save_extra.push(format!("/{switch}:{v}"));
        }
    }
    save_extra
}

/// A restore run inside the job frame.
struct Restore<'a> {
    a: &'a RestoreArgs,
    repo: RepositoryOptions,
    opts: RestoreOptions,
    /// The target, absolute.
    target: PathBuf,
}

/// A restore's own fields in its JSON object (ROBOCOPY.md §6.6); those of
/// a backup that a restore has not are null or false.
#[derive(serde::Serialize)]
struct RestoreJson<'a> {
    snapshot: &'a str,
    parent: Option<&'a str>,
    target: String,
    repository_created: bool,
    new_data: Option<u64>,
    warnings: &'a [String],
}

impl JobKind for Restore<'_> {
    type Summary = RestoreSummary;

    fn run(&self, console: &Console) -> robovault::Result<RestoreSummary> {
        robovault::restore(&self.repo, &self.a.target, &self.opts, console)
    }

    fn failure_json(&self, error: &str) -> serde_json::Value {
        json!({"command": "restore", "repository": self.a.repo.display().to_string(), "snapshot": null,
               "target": self.target.display().to_string(), "list_only": self.a.job.list_only,
               "exit_code": EXIT_FATAL, "error": error})
    }

    fn record(&self, s: &RestoreSummary, o: &mut Outcome) {
        o.series = Some(s.series.clone());
        o.snapshot = Some(s.snapshot.clone());
        o.counts = Some(s.counts);
    }

    fn json(&self, s: &RestoreSummary) -> serde_json::Value {
        RunJson {
            command: "restore",
            repository: &s.repository,
            series: &s.series,
            started: s.started,
            ended: s.ended,
            exit_code: s.exit_code,
            list_only: s.list_only,
            counts: &s.counts,
            errors: &s.errors,
        }
        .value(RestoreJson {
            snapshot: &s.snapshot,
            parent: None,
            target: s.target.display().to_string(),
            repository_created: false,
            new_data: None,
            warnings: &s.warnings,
        })
    }

    fn table(&self, s: &RestoreSummary, bytes: bool) -> String {
        let t = times(s.started, s.ended, s.copy_time, s.wait_time);
        summary_table(&s.counts, t, bytes, &[("Snapshot", s.snapshot.clone())], &s.ended)
    }

    fn exit_code(&self, s: &RestoreSummary) -> u32 {
        s.exit_code
    }
}

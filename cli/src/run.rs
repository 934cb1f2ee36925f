//! `backup` and `restore` as robocopy jobs: switches and job files turned
//! into engine options (ROBOCOPY.md §3, §8), the log set up (§6), the run,
//! and its summary or JSON object.

use crate::env::Edge;
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{Local, NaiveDate, TimeZone};
use robovault::{
    BackupOptions, BaselineChoice, ClassSwitches, CopyFlags, Filters, JobOptions, MoveMode, Pattern, RestoreOptions,
    RunOptions, EXIT_FATAL,
};
use serde_json::json;

use crate::alias::UsageError;
use crate::args::{BackupArgs, JobArgs, RestoreArgs};
use crate::console::{dir_text, error_lines, open_log, Console, Header, Job, LogFlags};
use crate::defaults::{save_defaults, stored_defaults, RetryDefaults, DEFAULTS_VERSION};
use crate::jobfile::{self, Section};
use crate::missing::{NotSpecified, Side};
use crate::output::{counts_json, errors_json, summary_bytes, summary_table, Times};

/// A usage error of a job's options: `ERROR : <text>`, exit 16.
fn usage(text: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(text.into()))
}

/// A size with an optional K, M or G suffix (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| usage(format!("Invalid size \"{text}\": use bytes, or K, M, G")))
}

/// An age or date of `--max-age` and friends: N < 1900 days before the run's
/// start, else YYYYMMDD at 00:00 local (§3.1). Unix seconds.
pub fn parse_age(text: &str, start: chrono::DateTime<Local>) -> Result<i64> {
    let bad = || usage(format!("Invalid age \"{text}\": use days (N < 1900) or YYYYMMDD"));
    let n: u64 = text.trim().parse().map_err(|_| bad())?;
    if n < 1900 {
        return Ok(start.timestamp() - n as i64 * 86_400);
    }
    let s = format!("{n:08}");
    let date = NaiveDate::parse_from_str(&s, "%Y%m%d").map_err(|_| bad())?;
    let midnight = date.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
    Local
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.timestamp())
        .ok_or_else(bad)
}

fn attrs(text: &Option<String>) -> Result<String> {
    let Some(t) = text else { return Ok(String::new()) };
    let up = t.to_uppercase();
    if let Some(c) = up.chars().find(|c| !"RASHCNETO".contains(*c)) {
        return Err(usage(format!(
            "Invalid attribute \"{c}\" in \"{t}\": use letters of RASHCNETO"
        )));
    }
    Ok(up)
}

/// The selection and class switches of a job, patterns anchored at `root`.
fn job_options(
    j: &JobArgs,
    filespecs: &[String],
    root: &Path,
    purge_applies: bool,
    start: chrono::DateTime<Local>,
) -> Result<JobOptions> {
    let cs = j.case_sensitive_match;
    let patterns = |list: &[String]| -> Result<Vec<Pattern>> {
        list.iter()
            .map(|p| Pattern::new(p, root, cs).map_err(|e| usage(e.to_string())))
            .collect()
    };
    let age = |t: &Option<String>| t.as_deref().map(|t| parse_age(t, start)).transpose();
    let include: Vec<String> = filespecs.iter().chain(&j.include_files).cloned().collect();
    let filters = Filters {
        include: patterns(&include)?,
        exclude_files: patterns(&j.exclude_file)?,
        exclude_dirs: patterns(&j.exclude_dir)?,
        levels: j.lev,
        subdirs_only: j.subdirs && !j.empty_dirs && !j.mirror,
        include_attrs: attrs(&j.include_attrs)?,
        exclude_attrs: attrs(&j.exclude_attrs)?,
        max_size: j.max_size.as_deref().map(parse_size).transpose()?,
        min_size: j.min_size.as_deref().map(parse_size).transpose()?,
        max_age: age(&j.max_age)?,
        min_age: age(&j.min_age)?,
        max_lad: None,
        min_lad: None,
        exclude_links: j.exclude_links,
        exclude_dir_links: j.exclude_dir_links,
        exclude_file_links: j.exclude_file_links,
    };
    Ok(JobOptions {
        filters,
        classes: ClassSwitches {
            exclude_older: j.exclude_older,
            exclude_newer: j.exclude_newer,
            exclude_changed: j.exclude_changed,
            exclude_lonely: j.exclude_lonely,
            exclude_extra: j.exclude_extra,
            include_same: j.include_same,
            include_tweaked: j.include_tweaked,
            fft: j.fft,
            dst: j.dst,
        },
        list_only: j.list_only,
        purge: purge_applies && (j.purge || j.mirror),
        keep_extras: false,
        ignore_vanished: false,
        follow_links: false,
        report_all_extras: j.report_all_extras,
    })
}

/// Retries, wait and threads: command line (job file merged in), stored
/// defaults, then 3 and 5.
fn run_options(j: &JobArgs, interrupt: &Arc<AtomicBool>, lock_wait: Duration) -> Result<RunOptions> {
    let stored = stored_defaults()?;
    let retries = j.retries.or(stored.map(|d| d.retries)).unwrap_or(3);
    let wait = j.wait.or(stored.map(|d| d.wait)).unwrap_or(5);
    if j.save_retry_defaults {
        save_defaults(RetryDefaults {
            version: DEFAULTS_VERSION,
            retries,
            wait,
        })?;
    }
    Ok(RunOptions {
        retries,
        wait: Duration::from_secs(wait),
        lock_wait,
        threads: j.threads.map(|t| t as usize),
        interrupt: Arc::clone(interrupt),
    })
}

/// `30s`, `5m`, `1h` or bare seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let bad = || usage(format!("Invalid duration \"{text}\": use 30s, 5m, 1h or seconds"));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(n.checked_mul(mult).ok_or_else(bad)?))
}

fn log_flags(j: &JobArgs) -> LogFlags {
    LogFlags {
        no_progress: j.no_progress,
        no_dir_list: j.no_dir_list,
        no_file_list: j.no_file_list,
        no_job_header: j.no_job_header,
        no_job_summary: j.no_job_summary,
        no_class: j.no_class,
        no_size: j.no_size,
        bytes: j.bytes,
        timestamps: j.timestamps,
        // With more than one thread the entries of directories interleave
        // (§6.2 Order): a base name would not say which file it is.
        full_paths: j.full_paths || j.threads.map_or_else(robovault::default_threads, |t| t as usize) > 1,
        eta: j.eta,
        verbose: j.verbose,
    }
}

/// The effective switches in robocopy spelling (§6.2 Options line), also
/// the body of a saved job file.
struct Effective {
    /// The Options line.
    line: Vec<String>,
    /// How many of its first items are filespecs.
    filespecs: usize,
}

fn copy_letters(j: &JobArgs, owner: bool) -> String {
    let mut copy = if j.copyall {
        "DATSOU".to_owned()
    } else if j.sec {
        "DATS".to_owned()
    } else {
        j.copy.clone().unwrap_or_else(|| "DAT".into()).to_uppercase()
    };
    if owner && !copy.contains('O') {
        copy.push('O');
    }
    copy
}

fn dcopy_letters(j: &JobArgs) -> String {
    if j.nodcopy {
        String::new()
    } else {
        j.dcopy.clone().unwrap_or_else(|| "DAT".into()).to_uppercase()
    }
}

fn effective(j: &JobArgs, filespecs: &[String], run: &RunOptions, ours: &[String]) -> Effective {
    let mut line: Vec<String> = if filespecs.is_empty() && j.include_files.is_empty() {
        vec!["*.*".into()]
    } else {
        filespecs.iter().chain(&j.include_files).cloned().collect()
    };
    let n_filespecs = line.len();
    if j.subdirs && !j.empty_dirs && !j.mirror {
        line.push("/S".into());
    } else {
        line.push("/S /E".into());
    }
    if let Some(n) = j.lev {
        line.push(format!("/LEV:{n}"));
    }
    let mut flag = |on: bool, text: &str| {
        if on {
            line.push(text.into());
        }
    };
    flag(j.purge || j.mirror, "/PURGE");
    flag(j.mirror, "/MIR");
    flag(j.exclude_older, "/XO");
    flag(j.exclude_newer, "/XN");
    flag(j.exclude_changed, "/XC");
    flag(j.exclude_lonely, "/XL");
    flag(j.exclude_extra, "/XX");
    flag(j.include_same, "/IS");
    flag(j.include_tweaked, "/IT");
    flag(j.include_modified, "/IM");
    flag(j.exclude_links, "/XJ");
    flag(j.exclude_dir_links, "/XJD");
    flag(j.exclude_file_links, "/XJF");
    flag(j.fft, "/FFT");
    flag(j.dst, "/DST");
    flag(j.list_only, "/L");
    flag(j.wait_for_share, "/TBD");
    flag(j.no_progress, "/NP");
    flag(j.no_dir_list, "/NDL");
    flag(j.no_file_list, "/NFL");
    flag(j.no_job_header, "/NJH");
    flag(j.no_job_summary, "/NJS");
    flag(j.no_class, "/NC");
    flag(j.no_size, "/NS");
    flag(j.bytes, "/BYTES");
    flag(j.timestamps, "/TS");
    flag(j.full_paths, "/FP");
    flag(j.eta, "/ETA");
    flag(j.verbose, "/V");
    flag(j.report_all_extras, "/X");
    flag(j.tee, "/TEE");
    flag(j.case_sensitive_match, "/CASESENSITIVEMATCH");
    let mut value = |v: &Option<String>, name: &str| {
        if let Some(v) = v {
            line.push(format!("/{name}:{v}"));
        }
    };
    value(&j.include_attrs, "IA");
    value(&j.exclude_attrs, "XA");
    value(&j.max_size, "MAX");
    value(&j.min_size, "MIN");
    value(&j.max_age, "MAXAGE");
    value(&j.min_age, "MINAGE");
    line.push(dcopy_switch(j));
    line.push(format!("/COPY:{}", copy_letters(j, false)));
    line.push(format!(
        "/MT:{}",
        run.threads.unwrap_or_else(robovault::default_threads)
    ));
    line.push(format!("/R:{}", run.retries));
    line.push(format!("/W:{}", run.wait.as_secs()));
    line.extend(ours.iter().cloned());
    line.extend(j.compat.iter().cloned());
    Effective {
        line,
        filespecs: n_filespecs,
    }
}

/// `/DCOPY:F`, or `/NODCOPY` when nothing is copied for directories.
fn dcopy_switch(j: &JobArgs) -> String {
    if j.nodcopy {
        "/NODCOPY".into()
    } else {
        format!("/DCOPY:{}", dcopy_letters(j))
    }
}

fn header(j: &JobArgs, filespecs: &[String], eff: &Effective, job_file: Option<PathBuf>) -> Header {
    let files: Vec<String> = filespecs.iter().chain(&j.include_files).cloned().collect();
    Header {
        files: if files.is_empty() {
            "*.*".into()
        } else {
            files.join(" ")
        },
        exc_files: j.exclude_file.join(" "),
        exc_dirs: j.exclude_dir.join(" "),
        options: eff.line.join(" "),
        log_file: j
            .log
            .clone()
            .or_else(|| j.log_append.clone())
            .map(|p| robovault::absolute(&p).unwrap_or(p)),
        job_file,
        list_only: j.list_only,
    }
}

/// Opens the log destinations: stdout unless `--json` or a log file without
/// `--tee`.
fn console(j: &JobArgs, job: Job, root: &Path, header: Header) -> Result<Console> {
    let file = match (&j.log, &j.log_append) {
        (Some(p), _) => Some((p, false)),
        (None, Some(p)) => Some((p, true)),
        _ => None,
    };
    let file = match file {
        Some((p, append)) => Some(open_log(p, append).map_err(|e| {
            let err = robovault::RunError::from_io(b"", "Opening Log File", &e, 1);
            anyhow::Error::new(Shown(error_lines(&p.display().to_string(), &err)))
        })?),
        None => None,
    };
    let to_stdout = !j.json && (file.is_none() || j.tee);
    Ok(Console::new(job, root, header, log_flags(j), to_stdout, file))
}

/// A fatal error already formatted as robocopy error lines.
#[derive(Debug)]
pub struct Shown(pub String);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.trim_end())
    }
}

impl std::error::Error for Shown {}

/// Saves the job (§8 `--save-job`) when asked; returns whether to stop
/// (`--quit`). `filespecs` are the positional ones (saved as `/IF`
/// values); `extra` the switches of this command that the Options line
/// leaves out but a job must keep.
fn save_and_quit(
    j: &JobArgs,
    eff: &Effective,
    run: &RunOptions,
    (source, dest): (&Path, &Path),
    filespecs: &[String],
    extra: &[String],
) -> Result<bool> {
    if let Some(name) = &j.save_job {
        let path = jobfile::job_path(name);
        let list = |switch: &str, values: &[String]| -> Vec<String> {
            if values.is_empty() {
                return Vec::new();
            }
            std::iter::once(format!("/{switch}"))
                .chain(values.iter().map(|v| format!("\t{v}")))
                .collect()
        };
        // Switches of the Options line, after its filespecs; the ones the
        // job writes in their own sections are left out here.
        let own_section = |s: &str| {
            ["/R:", "/W:", "/COPY:", "/DCOPY:", "/NODCOPY", "/MT:", "/LEV:"]
                .iter()
                .any(|p| s.starts_with(p))
                || s == "/S"
                || s == "/S /E"
        };
        let is_log = |s: &str| {
            [
                "/NP", "/NDL", "/NFL", "/NJH", "/NJS", "/NC", "/NS", "/BYTES", "/TS", "/FP", "/ETA", "/V", "/X", "/TEE",
            ]
            .contains(&s)
        };
        let switches: Vec<&String> = eff.line[eff.filespecs..].iter().filter(|s| !own_section(s)).collect();
        let mut copy = vec!["/S".to_owned()];
        if !(j.subdirs && !j.empty_dirs && !j.mirror) {
            copy.push("/E".into());
        }
        if let Some(n) = j.lev {
            copy.push(format!("/LEV:{n}"));
        }
        copy.push(dcopy_switch(j));
        copy.push(format!("/COPY:{}", copy_letters(j, false)));
        copy.extend(switches.iter().filter(|s| !is_log(s)).map(|s| s.to_string()));
        let mut logging: Vec<String> = switches.iter().filter(|s| is_log(s)).map(|s| s.to_string()).collect();
        if let Some(l) = &j.log {
            logging.push(format!("/LOG:{}", robovault::absolute(l)?.display()));
        }
        if let Some(l) = &j.log_append {
            logging.push(format!("/LOG+:{}", robovault::absolute(l)?.display()));
        }
        let mut retry = vec![format!("/R:{}", run.retries), format!("/W:{}", run.wait.as_secs())];
        if let Some(t) = j.threads {
            retry.push(format!("/MT:{t}"));
        }
        let dir = |switch: &str, p: &Path| -> Result<Vec<String>> {
            Ok(vec![format!("/{switch}:{}", dir_text(&robovault::absolute(p)?))])
        };
        let include: Vec<String> = filespecs.iter().chain(&j.include_files).cloned().collect();
        let mut ours: Vec<String> = extra.to_vec();
        if let Some(s) = &j.series {
            ours.push(format!("/SERIES:{s}"));
        }
        for (flag, cmd) in [
            ("ONSUCCESS", &j.on_success),
            ("ONFAILURE", &j.on_failure),
            ("ONFINISH", &j.on_finish),
        ] {
            if let Some(c) = cmd {
                ours.push(format!("/{flag}:{c}"));
            }
        }
        let sections = [
            Section {
                title: "Source Directory",
                lines: if j.no_source { Vec::new() } else { dir("SD", source)? },
            },
            Section {
                title: "Destination Directory",
                lines: if j.no_dest { Vec::new() } else { dir("DD", dest)? },
            },
            Section {
                title: "Include These Files",
                lines: list("IF", &include),
            },
            Section {
                title: "Exclude These Directories",
                lines: list("XD", &j.exclude_dir),
            },
            Section {
                title: "Exclude These Files",
                lines: list("XF", &j.exclude_file),
            },
            Section {
                title: "Copy options",
                lines: copy,
            },
            Section {
                title: "Retry Options",
                lines: retry,
            },
            Section {
                title: "Logging Options",
                lines: logging,
            },
            Section {
                title: "robovault Options",
                lines: ours,
            },
        ];
        jobfile::write(&path, &sections).with_context(|| format!("writing job file {}", path.display()))?;
    }
    if j.quit {
        crate::print_flush(" Quitting : /QUIT Specified on Command Line.\n");
        return Ok(true);
    }
    Ok(false)
}

/// The checks of a backup or restore that come after parsing: what
/// `schedule add` runs before saving a job.
///
/// # Errors
/// A usage error.
pub fn validate(cmd: &crate::args::Command, raw: &[OsString]) -> Result<()> {
    match cmd {
        crate::args::Command::Backup(a) => filespec_check(&a.filespecs, raw, false),
        crate::args::Command::Restore(a) => filespec_check(&a.filespecs, raw, true),
        _ => Ok(()),
    }
}

fn filespec_check(filespecs: &[String], raw: &[OsString], allow_paths: bool) -> Result<()> {
    for f in filespecs {
        let has_sep = f.contains(['/', '\\']);
        let ok = if allow_paths {
            !f.starts_with(['/', '\\']) && !f.split(['/', '\\']).any(|c| c == "..")
        } else {
            !has_sep
        };
        if !ok && allow_paths {
            return Err(usage(format!("\"{f}\": paths are relative to the snapshot root")));
        }
        if !ok {
            let n = raw
                .iter()
                .position(|a| a.to_str() == Some(f.as_str()))
                .map_or(0, |i| i + 1);
            return Err(usage(crate::alias::invalid_parameter(n, f).0));
        }
    }
    Ok(())
}

/// What a hook learns about a run, in `ROBOVAULT_*` environment variables.
#[derive(Debug, Default)]
struct Outcome {
    command: &'static str,
    /// The repository's location (a directory or a URL), for the hooks.
    repository: Option<String>,
    series: Option<String>,
    snapshot: Option<String>,
    /// The source (backup) or target (restore).
    root: Option<PathBuf>,
    counts: Option<robovault::Counts>,
    new_data: Option<u64>,
}

/// Runs `backup`, then its hooks.
pub fn backup(
    edge: &Edge,
    a: &BackupArgs,
    raw: &[OsString],
    job_file: Option<PathBuf>,
    interrupt: &Arc<AtomicBool>,
) -> Result<u32> {
    let mut o = Outcome {
        command: "backup",
        ..Outcome::default()
    };
    let r = backup_inner(edge, a, raw, job_file, interrupt, &mut o);
    run_hooks(&a.job, &o, &r);
    r
}

/// Runs `restore`, then its hooks.
pub fn restore(
    edge: &Edge,
    a: &RestoreArgs,
    raw: &[OsString],
    job_file: Option<PathBuf>,
    interrupt: &Arc<AtomicBool>,
) -> Result<u32> {
    let mut o = Outcome {
        command: "restore",
        ..Outcome::default()
    };
    let r = restore_inner(edge, a, raw, job_file, interrupt, &mut o);
    run_hooks(&a.job, &o, &r);
    r
}

/// `--on-success`, `--on-failure` and `--on-finish`: each runs with `sh -c`,
/// its stdout sent to stderr so that the log or JSON on stdout stays clean.
/// A failing hook is reported and changes no exit code.
fn run_hooks(j: &JobArgs, o: &Outcome, r: &Result<u32>) {
    let code = match r {
        Ok(c) => *c,
        Err(_) => EXIT_FATAL,
    };
    let hooks = [
        ("--on-success", j.on_success.as_ref().filter(|_| code < 8)),
        ("--on-failure", j.on_failure.as_ref().filter(|_| code >= 8)),
        ("--on-finish", j.on_finish.as_ref()),
    ];
    for (flag, cmd) in hooks {
        let Some(cmd) = cmd else { continue };
        let mut c = std::process::Command::new("sh");
        c.arg("-c").arg(cmd);
        for (k, v) in hook_env(j, o, code, r) {
            c.env(k, v);
        }
        if let Ok(err) = std::io::stderr().as_fd().try_clone_to_owned() {
            c.stdout(std::process::Stdio::from(err));
        }
        let status = c.status();
        let problem = match status {
            Ok(s) if s.success() => None,
            Ok(s) => Some(format!(
                "exited with {}",
                s.code().map_or("a signal".into(), |n| n.to_string())
            )),
            Err(e) => Some(format!("could not start: {e}")),
        };
        if let Some(p) = problem {
            let _ = writeln!(std::io::stderr(), "ERROR : hook {flag} \"{cmd}\" {p}");
        }
    }
}

fn hook_env(j: &JobArgs, o: &Outcome, code: u32, r: &Result<u32>) -> Vec<(String, String)> {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let mut env: Vec<(String, String)> = [
        ("ROBOVAULT_COMMAND", o.command.to_owned()),
        ("ROBOVAULT_EXIT_CODE", code.to_string()),
        (
            "ROBOVAULT_STATUS",
            if code < 8 { "success" } else { "failure" }.to_owned(),
        ),
        ("ROBOVAULT_REPOSITORY", o.repository.clone().unwrap_or_default()),
        ("ROBOVAULT_SERIES", o.series.clone().unwrap_or_default()),
        ("ROBOVAULT_SNAPSHOT", o.snapshot.clone().unwrap_or_default()),
        (
            if o.command == "backup" {
                "ROBOVAULT_SOURCE"
            } else {
                "ROBOVAULT_TARGET"
            },
            path(&o.root),
        ),
        (
            "ROBOVAULT_LOG",
            path(
                &j.log
                    .clone()
                    .or_else(|| j.log_append.clone())
                    .map(|p| robovault::absolute(&p).unwrap_or(p)),
            ),
        ),
        (
            "ROBOVAULT_NEW_DATA",
            o.new_data.map(|n| n.to_string()).unwrap_or_default(),
        ),
        (
            "ROBOVAULT_ERROR",
            r.as_ref().err().map(|e| format!("{e:#}")).unwrap_or_default(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(c) = &o.counts {
        for (row, r) in [("DIRS", c.dirs), ("FILES", c.files), ("BYTES", c.bytes)] {
            for (col, v) in ["TOTAL", "COPIED", "SKIPPED", "MISMATCH", "FAILED", "EXTRAS"]
                .iter()
                .zip(r.columns())
            {
                env.push((format!("ROBOVAULT_{row}_{col}"), v.to_string()));
            }
        }
    }
    env
}

fn backup_inner(
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
    let repo = edge.repository(&a.repo)?;
    o.repository = Some(repo.location.to_string());
    o.series = j.series.clone();
    let lock_wait = parse_duration(a.lock_wait.as_deref().unwrap_or("0"))?;
    let run = run_options(j, interrupt, lock_wait)?;
    let start = edge.clock().now().with_timezone(&Local);
    let mut job = job_options(j, &a.filespecs, &source, false, start)?;
    job.keep_extras = a.keep_extras;
    job.ignore_vanished = a.ignore_vanished;
    job.follow_links = a.follow_links;
    let lad = |t: &Option<String>| t.as_deref().map(|t| parse_age(t, start)).transpose();
    job.filters.max_lad = lad(&a.max_lad)?;
    job.filters.min_lad = lad(&a.min_lad)?;
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
    let mut save_extra = ours.clone();
    if let Some(l) = &a.lock_wait {
        save_extra.push(format!("/LOCKWAIT:{l}"));
    }
    for (switch, v) in [("MAXLAD", &a.max_lad), ("MINLAD", &a.min_lad)] {
        if let Some(v) = v {
            save_extra.push(format!("/{switch}:{v}"));
        }
    }
    let eff = effective(j, &a.filespecs, &run, &ours);
    if save_and_quit(j, &eff, &run, (&a.source, &a.repo), &a.filespecs, &save_extra)? {
        return Ok(0);
    }
    let opts = BackupOptions {
        series: j.series.clone(),
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
    };
    let console = console(j, Job::Backup, &source, header(j, &a.filespecs, &eff, job_file))?;
    wait_for_root(j, &source, &opts.run, &console)?;
    let s = match robovault::backup(&a.source, &repo, &opts, &console) {
        Ok(s) => s,
        Err(e) => {
            let e = fatal(e, &source, &console);
            if j.json {
                crate::print_flush(&format!(
                    "{}\n",
                    json!({"command": "backup", "repository": a.repo.display().to_string(), "snapshot": null,
                           "list_only": j.list_only, "exit_code": EXIT_FATAL, "error": format!("{e:#}")})
                ));
            }
            return Err(e);
        }
    };
    o.series = Some(s.series.clone());
    o.snapshot = s.snapshot.clone();
    o.counts = Some(s.counts);
    o.new_data = (!s.list_only).then_some(s.new_data);
    let times = Times {
        total: (s.ended - s.started).num_milliseconds() as f64 / 1000.0,
        copied: s.copy_time.as_secs_f64(),
        failed: s.wait_time.as_secs_f64(),
    };
    if j.json {
        let (dirs, files, bytes) = counts_json(&s.counts);
        let v = json!({
            "command": "backup",
            "repository": s.repository.display().to_string(),
            "series": s.series,
            "snapshot": s.snapshot,
            "parent": s.parent,
            "started": s.started.with_timezone(&Local).to_rfc3339(),
            "ended": s.ended.with_timezone(&Local).to_rfc3339(),
            "exit_code": s.exit_code,
            "partial": s.counts.files.failed + s.counts.dirs.failed > 0,
            "list_only": s.list_only,
            "repository_created": s.repository_created,
            "dirs": dirs, "files": files, "bytes": bytes,
            "new_data": if s.list_only { serde_json::Value::Null } else { json!(s.new_data) },
            "errors": errors_json(&s.errors),
            "read": {"files": s.files_read, "bytes": s.bytes_read},
            "stored": {"blobs": s.blobs_stored, "packed_bytes": s.packed_bytes},
        });
        crate::print_flush(&format!("{v}\n"));
    }
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
    console.summary(&format!(
        "\n{}",
        summary_table(&s.counts, times, j.bytes, &ext, &s.ended)
    ));
    Ok(s.exit_code)
}

/// A fatal error: its lines go to the log as well as stderr (§7.2).
fn fatal(e: robovault::Error, root: &Path, console: &Console) -> anyhow::Error {
    let text = match &e {
        robovault::Error::Source { path, error } => {
            let err = robovault::RunError::from_io(b"", "Accessing Source Directory", error, 1);
            error_lines(&path.display().to_string(), &err)
        }
        other => format!("ERROR : {other}\n"),
    };
    console.write(&text);
    let _ = root;
    anyhow::Error::new(Shown(text))
}

/// `--wait-for-share`: retry a missing source root (§7.1).
fn wait_for_root(j: &JobArgs, root: &Path, run: &RunOptions, console: &Console) -> Result<()> {
    if !j.wait_for_share {
        return Ok(());
    }
    for attempt in 0..=run.retries {
        match std::fs::metadata(root) {
            Ok(_) => return Ok(()),
            Err(e) if attempt < run.retries => {
                let err = robovault::RunError::from_io(b"", "Accessing Source Directory", &e, attempt + 1);
                console.write(&format!(
                    "{}Waiting {} seconds... Retrying...\n",
                    error_lines(&root.display().to_string(), &err),
                    run.wait.as_secs()
                ));
                std::thread::sleep(run.wait);
            }
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

fn restore_inner(
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
    // Relative paths select entries; names and wildcards are filespecs.
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
    let mut ours = Vec::new();
    if a.force {
        ours.push("/FORCE".to_owned());
    }
    if a.nocopy {
        ours.push("/NOCOPY".into());
    }
    let eff = effective(j, &a.filespecs, &run, &ours);
    let mut save_extra = ours.clone();
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
    if save_and_quit(j, &eff, &run, (&a.repo, &a.target), &a.filespecs, &save_extra)? {
        return Ok(0);
    }
    let letters = |v: &Option<String>| -> Result<bool> {
        match v.as_deref().map(str::to_uppercase) {
            None => Ok(false),
            // Other letters act on Windows only (§3.3).
            Some(l) => Ok(attrs(&Some(l))?.contains('R')),
        }
    };
    let opts = RestoreOptions {
        series: j.series.clone(),
        snapshot: crate::choice(&a.snapshot, edge.clock().now())?,
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
    };
    let console = console(j, Job::Restore, &target, header(j, &names, &eff, job_file))?;
    let s = match robovault::restore(&repo, &a.target, &opts, &console) {
        Ok(s) => s,
        Err(e) => {
            let e = fatal(e, &target, &console);
            if j.json {
                crate::print_flush(&format!(
                    "{}\n",
                    json!({"command": "restore", "repository": a.repo.display().to_string(), "snapshot": null,
                           "target": target.display().to_string(), "list_only": j.list_only,
                           "exit_code": EXIT_FATAL, "error": format!("{e:#}")})
                ));
            }
            return Err(e);
        }
    };
    o.series = Some(s.series.clone());
    o.snapshot = Some(s.snapshot.clone());
    o.counts = Some(s.counts);
    if j.json {
        let (dirs, files, bytes) = counts_json(&s.counts);
        let v = json!({
            "command": "restore",
            "repository": s.repository.display().to_string(),
            "series": s.series,
            "snapshot": s.snapshot,
            "parent": null,
            "target": s.target.display().to_string(),
            "started": s.started.with_timezone(&Local).to_rfc3339(),
            "ended": s.ended.with_timezone(&Local).to_rfc3339(),
            "exit_code": s.exit_code,
            "partial": s.counts.files.failed + s.counts.dirs.failed > 0,
            "list_only": s.list_only,
            "repository_created": false,
            "dirs": dirs, "files": files, "bytes": bytes,
            "new_data": null,
            "errors": errors_json(&s.errors),
            "warnings": s.warnings,
        });
        crate::print_flush(&format!("{v}\n"));
    }
    let times = Times {
        total: (s.ended - s.started).num_milliseconds() as f64 / 1000.0,
        copied: s.copy_time.as_secs_f64(),
        failed: s.wait_time.as_secs_f64(),
    };
    console.summary(&format!(
        "\n{}",
        summary_table(&s.counts, times, j.bytes, &[("Snapshot", s.snapshot.clone())], &s.ended)
    ));
    Ok(s.exit_code)
}

/// Positions of positional arguments in translated arguments, skipping
/// option values (a list option takes every following non-option).
fn positionals(args: &[OsString], cmd: &clap::Command) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_list = false;
    let takes = |name: &str| -> Option<bool> {
        // Some(list?) when the option takes a value.
        let arg = cmd.get_arguments().find(|a| {
            a.get_long() == Some(name)
                || a.get_all_aliases().into_iter().flatten().any(|al| al == name)
                || (name.len() == 1 && a.get_short() == name.chars().next())
        })?;
        if !arg.get_action().takes_values() {
            return None;
        }
        Some(arg.get_num_args().is_some_and(|n| n.max_values() > 1))
    };
    while i < args.len() {
        let Some(a) = args[i].to_str() else {
            if !in_list {
                out.push(i);
            }
            i += 1;
            continue;
        };
        if a == "--" {
            out.extend(i + 1..args.len());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            in_list = false;
            let optional_number = name == "threads" || name == "mt";
            match takes(name) {
                Some(true) => in_list = !inline,
                Some(false) if !inline && !optional_number => i += 1,
                // `--threads N`: N is its value when it is a number.
                Some(false)
                    if !inline
                        && args
                            .get(i + 1)
                            .and_then(|a| a.to_str())
                            .is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit())) =>
                {
                    i += 1
                }
                _ => {}
            }
        } else if a.starts_with('-') && a.len() > 1 {
            in_list = false;
            let name = &a[1..2];
            if takes(name) == Some(false) && a.len() == 2 {
                i += 1;
            }
        } else if !in_list {
            out.push(i);
        }
        i += 1;
    }
    out
}

/// Rewrites robocopy switches and merges a job file (§8) into the
/// arguments of `backup` or `restore`: the job's switches first, so that
/// command-line scalars override them; positional arguments override
/// `/SD:` and `/DD:`. Returns the arguments for clap and the job file's path.
///
/// # Errors
/// Usage errors and job-file errors, already in robocopy's words.
pub fn prepare(cmd: &clap::Command, args: &[OsString]) -> Result<(Vec<OsString>, Option<PathBuf>)> {
    let switches = crate::alias::Switches::of(cmd);
    let cli = crate::alias::translate(args, &switches).map_err(anyhow::Error::new)?;
    let job_name = find_value(&cli, "job");
    let Some(name) = job_name else { return Ok((cli, None)) };
    let encoding = find_value(&cli, "job-encoding").unwrap_or_else(|| "utf-8".into());
    let job = match jobfile::read(&name, &encoding, &switches) {
        Ok(j) => j,
        Err(jobfile::ReadError::Open(path, e)) => {
            let err = robovault::RunError::from_io(b"", "Opening Job File", &e, 1);
            bail!(Shown(error_lines(&path.display().to_string(), &err)));
        }
        Err(jobfile::ReadError::Parse(e)) => return Err(anyhow::Error::new(e)),
    };
    // Each switch line is checked on its own, so that a bad value names its
    // line (§8); list values need no check.
    let mut job_args: Vec<OsString> = Vec::new();
    for (line, arg) in &job.args {
        let translated =
            crate::alias::translate(&[OsString::from(arg.arg())], &switches).map_err(anyhow::Error::new)?;
        if let jobfile::JobArg::Switch(text) = arg {
            let lone_list = ["/IF", "/XD", "/XF"].contains(&text.to_uppercase().as_str());
            if lone_list {
                // Its values follow as --LIST=VALUE, one by one.
                continue;
            }
            let probe = ["robovault-job", "SOURCE", "DEST"]
                .map(OsString::from)
                .into_iter()
                .chain(translated.clone());
            if !lone_list {
                if let Err(e) = cmd.clone().try_get_matches_from(probe) {
                    if !matches!(
                        e.kind(),
                        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                    ) {
                        bail!(UsageError(format!("Invalid Job File, Line #{line} :\"{text}\"")));
                    }
                }
            }
        }
        job_args.extend(translated);
    }
    let pos = positionals(&cli, cmd);
    let mut out: Vec<OsString> = pos.iter().map(|i| cli[*i].clone()).collect();
    let given = out.len();
    let mut fill = Vec::new();
    if given < 1 {
        fill.push(job.source.clone());
    }
    if given < 2 {
        fill.push(job.dest.clone());
    }
    let insert_at = given.min(2);
    for (k, v) in fill.into_iter().enumerate() {
        match v {
            Some(v) => out.insert(insert_at + k, v.into()),
            None if insert_at + k == 0 => bail!(NotSpecified(Side::Source)),
            None => bail!(NotSpecified(Side::Destination)),
        }
    }
    out.extend(job_args);
    out.extend(
        cli.iter()
            .enumerate()
            .filter(|(i, _)| !pos.contains(i))
            .map(|(_, a)| a.clone()),
    );
    Ok((out, Some(job.path)))
}

fn find_value(args: &[OsString], name: &str) -> Option<String> {
    let long = format!("--{name}");
    let eq = format!("--{name}=");
    let mut it = args.iter().filter_map(|a| a.to_str());
    let mut found = None;
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix(&eq) {
            found = Some(v.to_owned());
        } else if a == long {
            found = it.next().map(str::to_owned);
        }
    }
    found
}

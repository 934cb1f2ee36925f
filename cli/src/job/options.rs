//! A job's switches as engine options: selection and class switches, sizes,
//! ages and attributes (ROBOCOPY.md §3.1), retries and threads (§7.1), the
//! logging switches (§6).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::{Local, NaiveDate, TimeZone};
use robovault::{ClassSwitches, Filters, JobOptions, Pattern, RunOptions};

use super::alias::UsageError;
use crate::args::JobArgs;
use crate::console::LogFlags;
use crate::defaults::{save_defaults, stored_defaults, RetryDefaults, DEFAULTS_VERSION};

/// A usage error of a job's options: `ERROR : <text>`, exit 16.
pub(crate) fn usage(text: impl Into<String>) -> anyhow::Error {
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

pub(crate) fn attrs(text: &Option<String>) -> Result<String> {
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
pub(crate) fn job_options(
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
pub(crate) fn run_options(j: &JobArgs, interrupt: &Arc<AtomicBool>, lock_wait: Duration) -> Result<RunOptions> {
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

pub(crate) fn log_flags(j: &JobArgs) -> LogFlags {
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

pub(crate) fn copy_letters(j: &JobArgs, owner: bool) -> String {
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

pub(crate) fn dcopy_letters(j: &JobArgs) -> String {
    if j.nodcopy {
        String::new()
    } else {
        j.dcopy.clone().unwrap_or_else(|| "DAT".into()).to_uppercase()
    }
}

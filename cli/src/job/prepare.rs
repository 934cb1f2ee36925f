//! The arguments of `backup` and `restore` before clap sees them: robocopy
//! switches rewritten and a job file merged in (ROBOCOPY.md §3.2, §8), and
//! the checks of filespecs that come after parsing.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Result};

use super::alias::UsageError;
use super::file as jobfile;
use super::frame::Shown;
use super::options::usage;
use crate::console::error_lines;
use crate::missing::{NotSpecified, Side};

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

pub(crate) fn filespec_check(filespecs: &[String], raw: &[OsString], allow_paths: bool) -> Result<()> {
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
            return Err(usage(super::alias::invalid_parameter(n, f).0));
        }
    }
    Ok(())
}

/// Positions of positional arguments in translated arguments, skipping
/// option values (a list option takes every following non-option). The
/// global options (`--password-file F`) count as the command's own.
fn positionals(args: &[OsString], cmd: &clap::Command) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_list = false;
    let root = <crate::args::Cli as clap::CommandFactory>::command();
    let globals: Vec<&clap::Arg> = root.get_arguments().filter(|a| a.is_global_set()).collect();
    let takes = |name: &str| -> Option<bool> {
        // Some(list?) when the option takes a value.
        let arg = cmd.get_arguments().chain(globals.iter().copied()).find(|a| {
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
    let switches = super::alias::Switches::of(cmd);
    let cli = super::alias::translate(args, &switches).map_err(anyhow::Error::new)?;
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
            super::alias::translate(&[OsString::from(arg.arg())], &switches).map_err(anyhow::Error::new)?;
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

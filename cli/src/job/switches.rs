//! The effective switches of a job in robocopy spelling: the Options line
//! of the log header (ROBOCOPY.md §6.2) and the body of a saved job file
//! (§8).

use std::path::Path;

use anyhow::{Context, Result};
use robovault::RunOptions;

use super::file::{self as jobfile, Section};
use super::options::copy_letters;
use super::table::{self, Echo, Saved, SWITCHES};
use crate::args::JobArgs;
use crate::console::dir_text;

/// The effective switches in robocopy spelling (§6.2 Options line), also
/// the body of a saved job file.
pub(crate) struct Effective {
    /// The Options line.
    pub(crate) line: Vec<String>,
    /// How many of its first items are filespecs.
    pub(crate) filespecs: usize,
}

pub(crate) fn effective(j: &JobArgs, filespecs: &[String], run: &RunOptions, ours: &[String]) -> Effective {
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
    for row in SWITCHES {
        match row.echo {
            Echo::Flag(on) if on(j) => line.push(format!("/{}", row.name)),
            Echo::Value(given) => {
                if let Some(v) = given(j) {
                    line.push(format!("/{}:{v}", row.name));
                }
            }
            _ => {}
        }
    }
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
pub(crate) fn dcopy_switch(j: &JobArgs) -> String {
    if j.nodcopy {
        "/NODCOPY".into()
    } else {
        format!("/DCOPY:{}", super::options::dcopy_letters(j))
    }
}

/// Saves the job (§8 `--save-job`) when asked; returns whether to stop
/// (`--quit`). `filespecs` are the positional ones (saved as `/IF`
/// values); `extra` the switches of this command that the Options line
/// leaves out but a job must keep.
pub(crate) fn save_and_quit(
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
        let (copy, mut logging) = copy_and_logging(j, eff);
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
        crate::stdout::print_flush(" Quitting : /QUIT Specified on Command Line.\n");
        return Ok(true);
    }
    Ok(false)
}

/// The Copy options and Logging options sections of a saved job: the
/// Options line's switches after its filespecs, split by section, without
/// those written in sections of their own.
fn copy_and_logging(j: &JobArgs, eff: &Effective) -> (Vec<String>, Vec<String>) {
    // Switches of the Options line, after its filespecs; the ones the
    // job writes in sections of their own are left out here. Items that are
    // no robocopy switch (a command's own) go with the copy options.
    let saved = |s: &str| table::of_item(s).map_or(Saved::Copy, |row| row.saved);
    let own_section = |s: &str| saved(s) == Saved::Own;
    let is_log = |s: &str| saved(s) == Saved::Logging;
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
    let logging: Vec<String> = switches.iter().filter(|s| is_log(s)).map(|s| s.to_string()).collect();
    (copy, logging)
}

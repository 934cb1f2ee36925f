//! `schedule add|list|remove|run`: nightly runs as systemd timers or cron
//! lines; a scheduled command is checked when it is added.

use std::ffi::OsString;

use anyhow::{Context, Result};
use robovault::EXIT_FATAL;

use super::{write_line, write_out};
use crate::args::{self, Cli};
use crate::{env, job, password, schedule};
use clap::Parser;

pub(super) fn schedule(edge: &env::Edge, what: &args::ScheduleCmd) -> Result<u32> {
    use args::ScheduleCmd;
    match what {
        ScheduleCmd::Add(a) => {
            schedule::check_name(&a.name)?;
            schedule::parse_time(&a.daily)?;
            let days = a
                .weekly
                .as_deref()
                .map(schedule::parse_days)
                .transpose()?
                .unwrap_or_default();
            let cmd: Vec<String> = match &a.job {
                Some(job) => vec![
                    "backup".into(),
                    "--job".into(),
                    robovault::absolute(job)?.display().to_string(),
                ],
                None => a.command.clone(),
            };
            if !matches!(cmd.first().map(String::as_str), Some("backup" | "restore")) {
                anyhow::bail!(
                    "give the run after --, as in: robovault schedule add {} --daily 02:00 -- backup SOURCE REPO, or --job FILE",
                    a.name
                );
            }
            // A typo must fail now, not at two in the morning.
            let argv: Vec<OsString> = std::iter::once(OsString::from("robovault"))
                .chain(cmd.iter().map(OsString::from))
                .collect();
            let (parsed, _) = crate::prepare_args(argv).context("checking the scheduled command")?;
            let cli = Cli::try_parse_from(&parsed)
                .map_err(|e| anyhow::anyhow!("checking the scheduled command: {}", crate::clap_usage(&e, &parsed)))?;
            let raw: Vec<OsString> = cmd.iter().skip(1).map(OsString::from).collect();
            job::validate(&cli.command, &raw).context("checking the scheduled command")?;
            // The run has no terminal and no environment of ours: the
            // password source becomes options of the run itself.
            let source = match (&cli.password_file, &cli.password_command) {
                (None, None) => edge.password().clone(),
                (file, command) => {
                    password::choose(file.as_deref(), command.as_deref(), password::Vars::default(), false)
                }
            };
            check_repository(edge, &cli.command, &source)?;
            let mut args = password::saved_options(&source).context("saving the password source")?;
            args.extend(schedule::without_password_options(&cmd));
            let d = schedule::Definition {
                version: schedule::SCHEDULE_VERSION,
                name: a.name.clone(),
                time: a.daily.clone(),
                days,
                args,
                dir: std::env::current_dir()
                    .context("reading the current directory")?
                    .display()
                    .to_string(),
            };
            let places = schedule::Places::new(a.scope.system, a.scope.unit_dir.as_deref())?;
            let exe = std::env::current_exe().context("finding the robovault executable")?;
            let lines = schedule::add(&d, &places, &exe, a.cron)?;
            write_out((lines.join("\n") + "\n").as_bytes())?;
            Ok(0)
        }
        ScheduleCmd::List { scope, json } => {
            let places = schedule::Places::new(scope.system, scope.unit_dir.as_deref())?;
            let all = schedule::list(&places)?;
            if *json {
                write_line(&serde_json::to_value(&all)?)?;
                return Ok(0);
            }
            let mut out = String::new();
            for d in &all {
                let when = if d.days.is_empty() {
                    format!("daily {}", d.time)
                } else {
                    format!("{} {}", d.days.join(","), d.time)
                };
                let args: Vec<String> = d.args.iter().map(|a| schedule::shell_quote(a)).collect();
                out.push_str(&format!("{}  {when}  robovault {}\n", d.name, args.join(" ")));
            }
            write_out(out.as_bytes())?;
            Ok(0)
        }
        ScheduleCmd::Remove { name, scope } => {
            let places = schedule::Places::new(scope.system, scope.unit_dir.as_deref())?;
            let lines = schedule::remove(name, &places)?;
            write_out((lines.join("\n") + "\n").as_bytes())?;
            Ok(0)
        }
        ScheduleCmd::Run { name, system } => {
            let places = schedule::Places::new(*system, None)?;
            let d = schedule::load(name, &places)?;
            let exe = std::env::current_exe().context("finding the robovault executable")?;
            // A source given to `schedule run` itself (the unit's
            // credential) replaces the one the definition saved.
            let args = schedule::run_args(&d, password::given_options(edge.password())?);
            let status = std::process::Command::new(exe)
                .args(&args)
                .current_dir(&d.dir)
                .status()
                .with_context(|| format!("running schedule {name} in {}", d.dir))?;
            // The run's own exit code (already in the style it asked for).
            Ok(status.code().map_or(EXIT_FATAL, |c| c as u32))
        }
    }
}

/// Opens the scheduled run's repository once, with the password source the
/// run will have, so that a wrong or missing password fails now rather than
/// at night. A repository the run will create, or one inside a job file, is
/// not opened.
fn check_repository(edge: &env::Edge, command: &crate::args::Command, source: &password::Choice) -> Result<()> {
    let repo = match command {
        crate::args::Command::Backup(a) if a.job.job.is_none() => &a.repo,
        crate::args::Command::Restore(a) if a.job.job.is_none() => &a.repo,
        _ => return Ok(()),
    };
    let mut opts = edge.repository(repo)?;
    opts.password = std::sync::Arc::new(password::CliPassword(source.clone()));
    if robovault::Repository::would_create(&opts)? {
        return Ok(());
    }
    robovault::Repository::open(&opts)
        .map(drop)
        .with_context(|| format!("checking the scheduled run's repository {}", repo.display()))
}

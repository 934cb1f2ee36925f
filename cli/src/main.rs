//! The `robovault` binary: parses the command line, runs the engine, prints
//! the log, summaries and listings, and turns the outcome into the exit code
//! of ROBOCOPY.md §4.7 and §7.3.

mod alias;
mod args;
mod console;
mod defaults;
mod env;
#[cfg(test)]
mod fuzzing;
mod jobfile;
mod missing;
mod output;
mod progress;
mod report;
mod run;
mod schedule;
mod when;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use robovault::{display_bytes, Repository, SnapshotChoice, EXIT_FATAL};
use serde_json::json;

use args::{
    CatArgs, Cli, Command, DiffArgs, ExitCodes, FindArgs, ForgetArgs, GcArgs, HistoryArgs, LsArgs, RepairWhat,
    SnapshotArgs, VerifyArgs, VersionsArgs,
};
use output::*;

/// The exit-code style, found before parsing so that even a usage error
/// maps to it (`--exit-codes posix` turns 16 into 2).
fn exit_style(args: &[OsString]) -> ExitCodes {
    let mut style = ExitCodes::Robocopy;
    let mut it = args.iter().filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        let v = match a {
            "--exit-codes" => it.next(),
            _ => a.strip_prefix("--exit-codes=").or_else(|| {
                a.get(..12)
                    .filter(|p| p.eq_ignore_ascii_case("/EXITCODES:"))
                    .map(|_| &a[12..])
            }),
        };
        match v {
            Some("posix") => style = ExitCodes::Posix,
            Some("robocopy") => style = ExitCodes::Robocopy,
            _ => {}
        }
    }
    style
}

/// Rewrites the arguments of `backup` and `restore` (robocopy switches, job
/// files); other commands pass unchanged.
fn prepare_args(args: Vec<OsString>) -> Result<(Vec<OsString>, Option<std::path::PathBuf>)> {
    let cmd = Cli::command();
    let i = subcommand_at(&args);
    let Some(name) = args.get(i).and_then(|a| a.to_str()) else {
        return Ok((args, None));
    };
    let Some(sub) = cmd
        .find_subcommand(name)
        .filter(|s| matches!(s.get_name(), "backup" | "restore"))
    else {
        return Ok((args, None));
    };
    let (rest, job) = run::prepare(sub, &args[i + 1..])?;
    let mut out: Vec<OsString> = args[..=i].to_vec();
    out.extend(rest);
    Ok((out, job))
}

/// A clap error in robocopy's words where it names an argument.
fn clap_usage(e: &clap::Error, args: &[OsString]) -> String {
    use clap::error::{ContextKind, ContextValue};
    let after_globals = args.get(subcommand_at(args)..).unwrap_or_default();
    if let Some(text) = missing::missing_text(e, &Cli::command(), after_globals) {
        return text;
    }
    if let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) {
        let bad = bad.split_whitespace().next().unwrap_or(bad);
        let bad = bad.split('=').next().unwrap_or(bad);
        if e.kind() == clap::error::ErrorKind::UnknownArgument {
            let n = args
                .iter()
                .skip(2)
                .position(|a| a.to_str().is_some_and(|s| s.starts_with(bad)));
            return format!("Invalid Parameter #{} : \"{bad}\"", n.map_or(0, |n| n + 1));
        }
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    first.trim_start_matches("error: ").to_owned()
}

/// Whether anything went to stdout: a command that fails after it answered
/// must not answer twice.
static ANSWERED: AtomicBool = AtomicBool::new(false);

/// The index of the subcommand in `args`: the first argument that is not a
/// global option.
fn subcommand_at(args: &[OsString]) -> usize {
    let mut i = 1;
    while i < args.len() {
        match args[i].to_str() {
            Some("--exit-codes") => i += 2,
            Some(a) if a.starts_with("--exit-codes=") || a == "--s3-allow-http" => i += 1,
            _ => break,
        }
    }
    i
}

/// The command's name as its JSON names it, when `--json` is among its
/// arguments (before any `--`): a command asked for JSON answers in JSON
/// even when its arguments do not parse.
fn json_command(args: &[OsString]) -> Option<String> {
    let i = subcommand_at(args);
    let given = args.get(i)?.to_str()?;
    let cmd = Cli::command();
    let sub = cmd.find_subcommand(given)?;
    let rest = &args[i + 1..];
    if !rest
        .iter()
        .take_while(|a| a.to_str() != Some("--"))
        .any(|a| a.to_str() == Some("--json"))
    {
        return None;
    }
    let mut name = sub.get_name().to_owned();
    // `repair index`, `schedule list`: the nested command is part of the name.
    if let Some(nested) = rest
        .first()
        .and_then(|a| a.to_str())
        .and_then(|n| sub.find_subcommand(n))
    {
        name = format!("{name} {}", nested.get_name());
    }
    Some(name)
}

/// The one JSON object of a command given `--json` that failed before it
/// answered (ROBOCOPY.md §6.6: `error` and `exit_code`).
fn answer_failure(command: Option<&str>, error: &str) {
    if let Some(command) = command {
        if !ANSWERED.load(Ordering::SeqCst) {
            print_flush(&format!(
                "{}\n",
                json!({"command": command, "error": error, "exit_code": EXIT_FATAL})
            ));
        }
    }
}

fn main() -> ExitCode {
    let raw: Vec<OsString> = std::env::args_os().collect();
    let style = exit_style(&raw);
    let json = json_command(&raw);
    let (args, job_file) = match prepare_args(raw.clone()) {
        Ok(a) => a,
        Err(e) => {
            answer_failure(json.as_deref(), &error_text(&e));
            return fail(&e, style);
        }
    };
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                _ => {
                    let text = clap_usage(&e, &args);
                    answer_failure(json.as_deref(), &text);
                    let _ = writeln!(std::io::stderr(), "ERROR : {text}");
                    let _ = writeln!(std::io::stderr(), "{}", missing::USAGE_HINT);
                    ExitCode::from(map_exit(EXIT_FATAL, style))
                }
            };
        }
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupt);
        // Without a handler the process would die with temporary files and
        // the lock file's holder text left behind; with it, the run stops
        // cleanly and commits nothing.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    // The raw arguments after the subcommand, for robocopy's parameter numbers.
    let after_cmd: Vec<OsString> = raw.iter().skip(2).cloned().collect();
    let edge = env::Edge::new(env::S3Flags {
        endpoint: cli.s3_endpoint.clone(),
        region: cli.s3_region.clone(),
        allow_http: cli.s3_allow_http,
    });
    let code = match run(&cli, &edge, &after_cmd, job_file, &interrupt) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            answer_failure(json.as_deref(), &error_text(&e));
            return fail(&e, cli.exit_codes);
        }
    };
    ExitCode::from(map_exit(code, cli.exit_codes))
}

/// Prints a fatal or usage error to stderr and returns exit 16 (mapped).
fn fail(e: &anyhow::Error, style: ExitCodes) -> ExitCode {
    // A closed stderr must not turn a clean failure into a panic.
    let mut err = std::io::stderr();
    if let Some(shown) = e.downcast_ref::<run::Shown>() {
        let _ = writeln!(err, "{shown}");
    } else {
        let _ = writeln!(err, "ERROR : {}", error_text(e));
    }
    if e.is::<missing::NotSpecified>() {
        let _ = writeln!(err, "{}", missing::USAGE_HINT);
    }
    ExitCode::from(map_exit(EXIT_FATAL, style))
}

/// A fatal or usage error's text, as its `ERROR :` line gives it.
fn error_text(e: &anyhow::Error) -> String {
    if let Some(shown) = e.downcast_ref::<run::Shown>() {
        shown.0.trim_end().to_owned()
    } else if let Some(u) = e.downcast_ref::<alias::UsageError>() {
        u.to_string()
    } else {
        format!("{e:#}")
    }
}

/// Whether the error is a closed stdout (`robovault cat … | head`), by its
/// kind: the engine's I/O errors carry the system error as a field.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let io = c
            .downcast_ref::<std::io::Error>()
            .or_else(|| match c.downcast_ref::<robovault::Error>() {
                Some(robovault::Error::Io { error, .. }) => Some(error),
                _ => None,
            });
        io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `--exit-codes posix`: 0–7 → 0, 8–15 → 1, 16 → 2.
fn map_exit(code: u32, style: ExitCodes) -> u8 {
    match style {
        ExitCodes::Robocopy => code.min(255) as u8,
        ExitCodes::Posix => match code {
            0..=7 => 0,
            8..=15 => 1,
            _ => 2,
        },
    }
}

fn run(
    cli: &Cli,
    edge: &env::Edge,
    raw: &[OsString],
    job_file: Option<std::path::PathBuf>,
    interrupt: &Arc<AtomicBool>,
) -> Result<u32> {
    match &cli.command {
        Command::Init { repo } => {
            let r = Repository::init(&edge.repository(repo)?)
                .with_context(|| format!("creating repository {}", repo.display()))?;
            write_line(&format!(
                "created repository {} (id {})",
                r.location().display(),
                r.store().config().id
            ))?;
            Ok(0)
        }
        Command::Backup(a) => run::backup(edge, a, raw, job_file, interrupt),
        Command::Restore(a) => run::restore(edge, a, raw, job_file, interrupt),
        Command::History(a) => history(edge, a),
        Command::Ls(a) => ls(edge, a),
        Command::Versions(a) => versions(edge, a),
        Command::Cat(a) => cat(edge, a),
        Command::Verify(a) => verify(edge, a),
        Command::Forget(a) => forget(edge, a),
        Command::Gc(a) => gc(edge, a),
        Command::Repair {
            what: RepairWhat::Index { repo, lock_wait, json },
        } => repair(edge, repo, lock_wait, *json),
        Command::Diff(a) => diff(edge, a),
        Command::Find(a) => find(edge, a),
        Command::Stats(a) => stats(edge, a),
        Command::Schedule { what } => schedule_cmd(what),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "robovault", &mut out);
            write_out(&out)?;
            Ok(0)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .context("rendering the manual page")?;
            write_out(&out)?;
            Ok(0)
        }
    }
}

fn stats(edge: &env::Edge, a: &args::StatsArgs) -> Result<u32> {
    let s = robovault::stats(&edge.repository(&a.repo)?, a.series.as_deref())
        .with_context(|| format!("reading repository {}", a.repo.display()))?;
    if let Some(path) = &a.html {
        std::fs::write(path, report::html(&s)).with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        let mut v = serde_json::to_value(&s)?;
        v["command"] = json!("stats");
        write_line(&v)?;
    } else {
        write_out(report::text(&s).as_bytes())?;
        if let Some(path) = &a.html {
            write_line(&format!("wrote {}", path.display()))?;
        }
    }
    Ok(0)
}

fn schedule_cmd(what: &args::ScheduleCmd) -> Result<u32> {
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
            let (parsed, _) = prepare_args(argv).context("checking the scheduled command")?;
            let cli = Cli::try_parse_from(&parsed)
                .map_err(|e| anyhow::anyhow!("checking the scheduled command: {}", clap_usage(&e, &parsed)))?;
            let raw: Vec<OsString> = cmd.iter().skip(1).map(OsString::from).collect();
            run::validate(&cli.command, &raw).context("checking the scheduled command")?;
            let d = schedule::Definition {
                version: schedule::SCHEDULE_VERSION,
                name: a.name.clone(),
                time: a.daily.clone(),
                days,
                args: cmd,
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
            let status = std::process::Command::new(exe)
                .args(&d.args)
                .current_dir(&d.dir)
                .status()
                .with_context(|| format!("running schedule {name} in {}", d.dir))?;
            // The run's own exit code (already in the style it asked for).
            Ok(status.code().map_or(EXIT_FATAL, |c| c as u32))
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration> {
    run::parse_duration(text)
}

/// Writes text to stdout and flushes; a closed pipe is ignored here (the
/// log's other destinations still get it).
pub(crate) fn print_flush(text: &str) {
    ANSWERED.store(true, Ordering::SeqCst);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

pub(crate) fn choice(a: &SnapshotArgs, now: chrono::DateTime<chrono::Utc>) -> Result<SnapshotChoice> {
    if let Some(at) = &a.at {
        let now = now.with_timezone(&chrono::Local);
        let t = when::parse_at(at, now).map_err(anyhow::Error::msg)?;
        return Ok(SnapshotChoice::At {
            ns: when::saturating_nanos(&t),
            moment: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        });
    }
    Ok(match a.snapshot.as_deref() {
        None | Some("latest") => SnapshotChoice::Latest,
        Some(id) => SnapshotChoice::Id(id.to_owned()),
    })
}

fn open(edge: &env::Edge, repo: &std::path::Path) -> Result<Repository> {
    Repository::open(&edge.repository(repo)?).with_context(|| format!("opening repository {}", repo.display()))
}

fn history(edge: &env::Edge, a: &HistoryArgs) -> Result<u32> {
    let repo = open(edge, &a.repo)?;
    let all = robovault::history(&repo, a.series.as_deref(), a.verbose)?;
    let repo_text = repo.location().display().to_string();
    if a.json {
        let items: Vec<_> = all
            .iter()
            .flat_map(|h| h.runs.iter().map(|(s, _)| history_json(&repo_text, &h.series.name, s)))
            .collect();
        write_line(&serde_json::Value::Array(items))?;
        return Ok(0);
    }
    let mut out = String::new();
    for h in &all {
        if a.series.is_none() {
            out.push_str(&format!("series {}\n", h.series.name));
        }
        for (s, errors) in &h.runs {
            out.push_str(&history_line(s));
            out.push('\n');
            for e in errors {
                // As on the log's ERROR line, no errno is no code.
                let code = match e.code {
                    0 => String::new(),
                    c => format!(" (error {c})"),
                };
                out.push_str(&format!(
                    "    FAILED  {}  {}  {}{code}  attempts={}\n",
                    display_bytes(&e.path),
                    e.action,
                    e.message,
                    e.attempts
                ));
            }
        }
    }
    write_out(out.as_bytes())?;
    Ok(0)
}

/// One JSON document and a newline on stdout; a closed pipe is an error the
/// caller ends quietly on, never a panic.
fn write_line(v: &impl std::fmt::Display) -> Result<()> {
    write_out(format!("{v}\n").as_bytes())
}

fn write_out(bytes: &[u8]) -> Result<()> {
    ANSWERED.store(true, Ordering::SeqCst);
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).context("writing standard output")?;
    out.flush().context("writing standard output")?;
    Ok(())
}

/// The repository and the snapshot that `--series`, `--snapshot` or `--at`
/// choose in it.
fn open_snapshot(
    edge: &env::Edge,
    repo: &std::path::Path,
    a: &args::SeriesSnapshotArgs,
) -> Result<(Repository, robovault::SnapshotRecord)> {
    let repo = open(edge, repo)?;
    let (_, snap) = robovault::choose(&repo, a.series.as_deref(), &choice(&a.snapshot, edge.clock().now())?)?;
    Ok((repo, snap))
}

fn ls(edge: &env::Edge, a: &LsArgs) -> Result<u32> {
    let (repo, snap) = open_snapshot(edge, &a.repo, &a.snapshot)?;
    let path = a.path.as_deref().unwrap_or("");
    let nodes = robovault::ls(&repo, &snap, path.as_bytes())?;
    if a.json {
        write_line(&serde_json::Value::Array(nodes.iter().map(ls_json).collect()))?;
    } else {
        write_out(ls_lines(&nodes).as_bytes())?;
    }
    Ok(0)
}

fn versions(edge: &env::Edge, a: &VersionsArgs) -> Result<u32> {
    let repo = open(edge, &a.repo)?;
    let series = robovault::choose_series(&repo, a.series.as_deref())?;
    let spans = robovault::versions(&repo, &series, a.path.as_bytes())?;
    if a.json {
        let items: Vec<_> = spans.iter().map(|v| version_json(&v.from, &v.to, &v.entry)).collect();
        write_line(&serde_json::Value::Array(items))?;
    } else {
        let text: String = spans
            .iter()
            .map(|v| version_line(&v.from, &v.to, &v.entry) + "\n")
            .collect();
        write_out(text.as_bytes())?;
    }
    Ok(0)
}

fn cat(edge: &env::Edge, a: &CatArgs) -> Result<u32> {
    let (repo, snap) = open_snapshot(edge, &a.repo, &a.snapshot)?;
    let mut out = std::io::stdout().lock();
    robovault::cat(&repo, &snap, a.path.as_bytes(), &mut out)?;
    Ok(0)
}

fn read_data_spec(a: &VerifyArgs) -> Result<robovault::ReadData> {
    use robovault::ReadData;
    if a.read_data {
        return Ok(ReadData::All);
    }
    let Some(spec) = a.read_data_subset.as_deref() else {
        return Ok(ReadData::None);
    };
    let bad = || anyhow::anyhow!("invalid --read-data-subset \"{spec}\": use n/m (1 <= n <= m) or p% (0 < p <= 100)");
    if let Some(p) = spec.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(bad());
        }
        return Ok(ReadData::Percent(p));
    }
    let (n, m) = spec.split_once('/').ok_or_else(bad)?;
    let (n, m): (u32, u32) = (
        n.trim().parse().map_err(|_| bad())?,
        m.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || m == 0 || n > m {
        return Err(bad());
    }
    Ok(ReadData::Part { n, m })
}

fn verify(edge: &env::Edge, a: &VerifyArgs) -> Result<u32> {
    let read = read_data_spec(a)?;
    let repo = edge.repository(&a.repo)?;
    let status = progress::Status::new("packs", !a.json && !a.no_progress);
    let s = match &status {
        Some(st) => robovault::verify_with(&repo, read, st),
        None => robovault::verify(&repo, read),
    }
    .with_context(|| format!("verifying repository {}", a.repo.display()))?;
    drop(status);
    let code = if s.problems.is_empty() { 0 } else { 8 };
    if a.json {
        let mut v = serde_json::to_value(&s)?;
        v["command"] = json!("verify");
        v["repository"] = json!(a.repo.display().to_string());
        v["exit_code"] = json!(code);
        write_line(&v)?;
        return Ok(code);
    }
    let mut out = String::new();
    for p in &s.problems {
        out.push_str(&format!("damaged {}: {}\n", p.object, p.message));
        if !p.snapshots.is_empty() {
            out.push_str(&format!("    snapshots: {}\n", p.snapshots.join(" ")));
        }
        for path in &p.paths {
            out.push_str(&format!("    path: {path}\n"));
        }
    }
    if s.problems
        .iter()
        .any(|p| p.object.starts_with("pack ") || p.object.starts_with("blob "))
    {
        out.push_str(
            "To recover: run robovault backup again while the files are still on the source, so that \
             their content is stored again; the paths listed stay lost in the snapshots listed, every \
             other path restores as usual\n",
        );
    }
    for p in &s.unreferenced_packs {
        out.push_str(&format!(
            "note: pack {p} is not referenced by the index (left by an interrupted run)\n"
        ));
    }
    out.push_str(&format!(
        "checked {} packs ({} read, {} bytes, {} blobs re-hashed), {} snapshots, {} trees: {}\n",
        s.packs,
        s.packs_read,
        s.bytes_read,
        s.blobs_read,
        s.snapshots,
        s.trees,
        if s.problems.is_empty() {
            "no damage found".to_owned()
        } else {
            format!("{} problems found", s.problems.len())
        }
    ));
    write_out(out.as_bytes())?;
    Ok(code)
}

/// `1y2m3w4d5h`: years (365 days), months (30 days), weeks, days, hours.
fn parse_within(text: &str) -> Result<Duration> {
    let bad = || anyhow::anyhow!("invalid --keep-within \"{text}\": use e.g. 30d, 2w, 6m, 1y2m, 12h");
    if text.trim().starts_with('-') {
        anyhow::bail!("invalid --keep-within \"{text}\": a duration must not be negative");
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            'y' => 365 * 86_400,
            'm' => 30 * 86_400,
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3600,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// `5%` or `0.05`.
fn parse_fraction(text: &str) -> Result<f64> {
    let bad = || anyhow::anyhow!("invalid --max-unused \"{text}\": use a percentage (5%) or a fraction (0.05)");
    let v = match text.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => text.trim().parse::<f64>().map_err(|_| bad())?,
    };
    if !(0.0..=1.0).contains(&v) {
        return Err(bad());
    }
    Ok(v)
}

fn forget(edge: &env::Edge, a: &ForgetArgs) -> Result<u32> {
    let opts = robovault::ForgetOptions {
        series: a.series.clone(),
        policy: robovault::KeepPolicy {
            last: a.keep_last,
            hourly: a.keep_hourly,
            daily: a.keep_daily,
            weekly: a.keep_weekly,
            monthly: a.keep_monthly,
            yearly: a.keep_yearly,
            within: a.keep_within.as_deref().map(parse_within).transpose()?,
        },
        snapshot: a.snapshot.clone(),
        dry_run: a.dry_run,
        lock_wait: parse_duration(&a.lock_wait)?,
    };
    let repo = edge.repository(&a.repo)?;
    let s = robovault::forget(&repo, &opts).with_context(|| format!("forgetting in {}", a.repo.display()))?;
    let pruned = if a.prune && !a.dry_run {
        Some(robovault::gc(
            &repo,
            &robovault::GcOptions {
                dry_run: false,
                max_unused: parse_fraction(&a.max_unused)?,
                lock_wait: opts.lock_wait,
                ..robovault::GcOptions::default()
            },
        )?)
    } else {
        None
    };
    if a.json {
        let mut v = serde_json::to_value(&s)?;
        v["command"] = json!("forget");
        if let Some(g) = &pruned {
            v["gc"] = serde_json::to_value(g)?;
        }
        write_line(&v)?;
        return Ok(0);
    }
    let mut out = String::new();
    for (series, decisions) in &s.series {
        out.push_str(&format!("series {series}\n"));
        for d in decisions {
            let verb = if d.keep {
                "keep  "
            } else if s.dry_run {
                "would remove"
            } else {
                "remove"
            };
            out.push_str(&format!("{verb}  {}  {}", d.snapshot, rfc3339_ns(d.started_ns)));
            if d.keep {
                out.push_str(&format!("  {}", d.reasons.join(", ")));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "{} snapshots {}\n",
        s.removed,
        if s.dry_run {
            "would be forgotten (dry run)"
        } else {
            "forgotten"
        }
    ));
    if let Some(g) = &pruned {
        out.push_str(&gc_text(g));
    }
    write_out(out.as_bytes())?;
    Ok(0)
}

fn gc_text(g: &robovault::GcSummary) -> String {
    let condemned = if g.packs_condemned > 0 {
        format!(
            " ({} condemned: a gc after the grace period deletes them)",
            g.packs_condemned
        )
    } else {
        String::new()
    };
    let temporaries = match g.temporaries_removed {
        0 => String::new(),
        n => format!("; {n} temporary files of killed runs removed"),
    };
    format!(
        "{}{} packs: {} deleted, {} repacked{condemned}, {} orphans removed; {} unused blobs; {} bytes of packs freed, {} written; {} forgotten snapshot objects removed{temporaries}\n",
        if g.dry_run { "dry run: " } else { "" },
        g.packs,
        g.packs_deleted,
        g.packs_repacked,
        g.orphan_packs,
        g.blobs_removed,
        g.bytes_deleted,
        g.bytes_written,
        g.forgotten_objects_removed
    )
}

fn gc(edge: &env::Edge, a: &GcArgs) -> Result<u32> {
    let opts = robovault::GcOptions {
        dry_run: a.dry_run,
        max_unused: parse_fraction(&a.max_unused)?,
        lock_wait: parse_duration(&a.lock_wait)?,
        grace: parse_duration(&a.grace)?,
    };
    let repo = edge.repository(&a.repo)?;
    let status = progress::Status::new("packs", !a.json && !a.no_progress);
    let g = match &status {
        Some(st) => robovault::gc_with(&repo, &opts, st),
        None => robovault::gc(&repo, &opts),
    }
    .with_context(|| format!("collecting garbage in {}", a.repo.display()))?;
    drop(status);
    if a.json {
        let mut v = serde_json::to_value(&g)?;
        v["command"] = json!("gc");
        write_line(&v)?;
    } else {
        write_out(gc_text(&g).as_bytes())?;
    }
    Ok(0)
}

fn repair(edge: &env::Edge, repo: &std::path::Path, lock_wait: &str, as_json: bool) -> Result<u32> {
    let s = robovault::repair_index(&edge.repository(repo)?, parse_duration(lock_wait)?)
        .with_context(|| format!("rebuilding the index of {}", repo.display()))?;
    if as_json {
        let mut v = serde_json::to_value(&s)?;
        v["command"] = json!("repair index");
        write_line(&v)?;
        return Ok(0);
    }
    let mut out = format!(
        "rebuilt the index from {} packs ({} blobs): {} snapshots in {} series; {} forgotten snapshots left out\n",
        s.packs, s.blobs, s.snapshots, s.series, s.forgotten
    );
    for p in &s.damaged_packs {
        out.push_str(&format!(
            "damaged pack {p}: its footer does not decode; its blobs are not indexed\n"
        ));
    }
    for p in &s.damaged_snapshots {
        out.push_str(&format!("damaged snapshot object {p}: left out\n"));
    }
    write_out(out.as_bytes())?;
    Ok(0)
}

fn diff(edge: &env::Edge, a: &DiffArgs) -> Result<u32> {
    let repo = open(edge, &a.repo)?;
    let pick = |id: &str| -> Result<robovault::SnapshotRecord> {
        let choice = if id == "latest" {
            SnapshotChoice::Latest
        } else {
            SnapshotChoice::Id(id.to_owned())
        };
        Ok(robovault::choose(&repo, None, &choice)?.1)
    };
    let (sa, sb) = (pick(&a.snap_a)?, pick(&a.snap_b)?);
    let changes = robovault::diff(&repo, &sa, &sb)?;
    if a.json {
        write_line(&serde_json::to_value(&changes)?)?;
    } else {
        let text: String = changes.iter().map(|c| format!("{} {}\n", c.marker, c.path)).collect();
        write_out(text.as_bytes())?;
    }
    Ok(0)
}

fn find(edge: &env::Edge, a: &FindArgs) -> Result<u32> {
    let repo = open(edge, &a.repo)?;
    let hits = robovault::find(&repo, &a.pattern, a.series.as_deref())?;
    if a.json {
        let items: Vec<_> = hits
            .iter()
            .map(|h| {
                json!({"series": h.series, "path": h.path,
                       "first": {"snapshot": h.first, "started": rfc3339_full(h.first_started_ns)},
                       "last": {"snapshot": h.last, "started": rfc3339_full(h.last_started_ns)}})
            })
            .collect();
        write_line(&serde_json::Value::Array(items))?;
    } else {
        let text: String = hits
            .iter()
            .map(|h| format!("{}  {}  {}  {}\n", h.series, h.path, h.first, h.last))
            .collect();
        write_out(text.as_bytes())?;
    }
    Ok(0)
}

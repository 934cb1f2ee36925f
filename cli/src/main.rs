//! The `robovault` binary: parses the command line, runs the engine, prints
//! the log, summaries and listings, and turns the outcome into the exit code
//! of ROBOCOPY.md §4.7 and §7.3.

mod args;
mod commands;
mod console;
mod defaults;
mod env;
#[cfg(test)]
mod fuzzing;
mod job;
mod missing;
mod output;
mod password;
mod progress;
mod report;
mod schedule;
mod stdout;
mod when;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use clap::{CommandFactory, Parser};
use robovault::EXIT_FATAL;
use serde_json::json;

use args::{Cli, ExitCodes};
use job::alias;
use stdout::print_flush;

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
pub(crate) fn prepare_args(args: Vec<OsString>) -> Result<(Vec<OsString>, Option<std::path::PathBuf>)> {
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
    let (rest, job) = job::prepare(sub, &args[i + 1..])?;
    let mut out: Vec<OsString> = args[..=i].to_vec();
    out.extend(rest);
    Ok((out, job))
}

/// A clap error in robocopy's words where it names an argument.
pub(crate) fn clap_usage(e: &clap::Error, args: &[OsString]) -> String {
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

/// The index of the subcommand in `args`: the first argument that is not a
/// global option.
fn subcommand_at(args: &[OsString]) -> usize {
    let mut i = 1;
    while i < args.len() {
        match args[i].to_str() {
            Some("--exit-codes") => i += 2,
            Some("--password-file" | "--password-command") => i += 2,
            Some(a)
                if a.starts_with("--exit-codes=")
                    || a.starts_with("--password-file=")
                    || a.starts_with("--password-command=")
                    || a == "--s3-allow-http" =>
            {
                i += 1
            }
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
        if !stdout::answered() {
            print_flush(&format!(
                "{}\n",
                json!({"command": command, "error": error, "exit_code": EXIT_FATAL})
            ));
        }
    }
}

fn main() -> ExitCode {
    not_dumpable();
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
    // clap sees a conflict only among the options given at one level
    // (`history REPO --password-file F --password-command C`), not across
    // levels (`--password-file F history REPO --password-command C`).
    if cli.password_file.is_some() && cli.password_command.is_some() {
        let text = "the argument '--password-file <FILE>' cannot be used with '--password-command <CMD>'";
        answer_failure(json.as_deref(), text);
        let _ = writeln!(std::io::stderr(), "ERROR : {text}");
        let _ = writeln!(std::io::stderr(), "{}", missing::USAGE_HINT);
        return ExitCode::from(map_exit(EXIT_FATAL, cli.exit_codes));
    }
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
    let edge = env::Edge::new(
        env::S3Flags {
            endpoint: cli.s3_endpoint.clone(),
            region: cli.s3_region.clone(),
            allow_http: cli.s3_allow_http,
        },
        cli.password_file.as_deref(),
        cli.password_command.as_deref(),
    );
    let code = match commands::run(&cli, &edge, &after_cmd, job_file, &interrupt) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            answer_failure(json.as_deref(), &error_text(&e));
            return fail(&e, cli.exit_codes);
        }
    };
    ExitCode::from(map_exit(code, cli.exit_codes))
}

/// Keeps other processes of the same user from reading this one's memory
/// (ptrace, /proc/PID/mem) and the kernel from writing a core dump: it may
/// hold a repository's password and keys. A failure is no reason to stop.
fn not_dumpable() {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
}

/// Prints a fatal or usage error to stderr and returns exit 16 (mapped).
fn fail(e: &anyhow::Error, style: ExitCodes) -> ExitCode {
    // A closed stderr must not turn a clean failure into a panic.
    let mut err = std::io::stderr();
    if let Some(shown) = e.downcast_ref::<job::Shown>() {
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
    if let Some(shown) = e.downcast_ref::<job::Shown>() {
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

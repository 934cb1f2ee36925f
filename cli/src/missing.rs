//! Missing positional arguments in words that name them (ROBOCOPY.md §8 for
//! `backup` and `restore`): clap's own message lists them on lines that the
//! one `ERROR :` line of §6.3 would drop.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// The line printed after every usage error.
pub const USAGE_HINT: &str = "       (robovault help, or robovault COMMAND --help)";

/// A job's source or destination given neither on the command line nor in
/// its job file: a usage error, so the usage line follows it.
#[derive(Debug)]
pub struct NotSpecified(pub Side);

/// Which of a job's two directories is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// What the job reads from: SOURCE of a backup, REPO of a restore.
    Source,
    /// What the job writes to: REPO of a backup, TARGET of a restore.
    Destination,
}

impl std::fmt::Display for NotSpecified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Side::Source => f.write_str("No Source Directory Specified."),
            Side::Destination => f.write_str("No Destination Directory Specified."),
        }
    }
}

impl std::error::Error for NotSpecified {}

/// The `ERROR :` text of a clap error for missing arguments, or None for any
/// other error. `args` starts at the subcommand's name.
pub fn missing_text(e: &clap::Error, cli: &clap::Command, args: &[OsString]) -> Option<String> {
    if e.kind() != ErrorKind::MissingRequiredArgument {
        return None;
    }
    let Some(ContextValue::Strings(missing)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let (path, cmd) = subcommand(cli, args)?;
    let positionals: Vec<&clap::Arg> = cmd.get_positionals().collect();
    let is_missing = |a: &clap::Arg| missing.iter().any(|m| *m == a.to_string());
    if matches!(cmd.get_name(), "backup" | "restore") {
        // The first two positionals are robocopy's source and destination:
        // SOURCE and REPO for a backup, REPO and TARGET for a restore (§8).
        if positionals.first().is_some_and(|a| is_missing(a)) {
            return Some(NotSpecified(Side::Source).to_string());
        }
        if positionals.get(1).is_some_and(|a| is_missing(a)) {
            return Some(NotSpecified(Side::Destination).to_string());
        }
    }
    // Positionals first, in their order on the command line; then any
    // required option, as clap spells it.
    let mut names: Vec<String> = positionals
        .iter()
        .filter(|a| is_missing(a))
        .map(|a| value_name(a))
        .collect();
    names.extend(
        missing
            .iter()
            .filter(|m| !positionals.iter().any(|a| **m == a.to_string()))
            .cloned(),
    );
    let (word, list) = match names.as_slice() {
        [one] => ("argument", one.clone()),
        [first @ .., last] => ("arguments", format!("{} and {last}", first.join(", "))),
        [] => return None,
    };
    Some(format!("missing {word} {list} (usage: {})", usage(&path, cmd)))
}

/// The subcommand `args` names, nested ones included, with its words
/// (`robovault repair index`).
fn subcommand<'a>(cli: &'a clap::Command, args: &[OsString]) -> Option<(String, &'a clap::Command)> {
    let mut path = cli.get_name().to_owned();
    let mut cmd = cli;
    for a in args {
        let Some(sub) = a.to_str().and_then(|n| cmd.find_subcommand(n)) else {
            break;
        };
        path = format!("{path} {}", sub.get_name());
        cmd = sub;
    }
    (!std::ptr::eq(cmd, cli)).then_some((path, cmd))
}

fn value_name(a: &clap::Arg) -> String {
    a.get_value_names()
        .and_then(|v| v.first())
        .map_or_else(|| a.get_id().as_str().to_uppercase(), |v| v.to_string())
}

/// `robovault ls REPO [PATH] [options]`, in the shape of ROBOCOPY.md §2.
fn usage(path: &str, cmd: &clap::Command) -> String {
    let mut out = path.to_owned();
    for a in cmd.get_positionals() {
        let many = if a.get_num_args().is_some_and(|n| n.max_values() > 1) {
            "..."
        } else {
            ""
        };
        let name = value_name(a);
        let word = match (a.is_required_set(), a.is_last_set()) {
            (_, true) => format!("[-- {name}{many}]"),
            (true, false) => format!("{name}{many}"),
            (false, false) => format!("[{name}{many}]"),
        };
        out = format!("{out} {word}");
    }
    // Global options and --help do not make a command's options worth a
    // mention; anything of its own does.
    let own =
        |a: &clap::Arg| !a.is_positional() && !a.is_global_set() && !matches!(a.get_id().as_str(), "help" | "version");
    if cmd.get_arguments().any(own) {
        out.push_str(" [options]");
    }
    out
}

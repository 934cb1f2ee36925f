//! Robocopy spellings (ROBOCOPY.md §3.2): `/XD`, `/R:3`, `/LOG+:F`, and our
//! own options in slash spelling (`/KEEPEXTRAS`, `/SERIES:S`), rewritten to
//! the GNU options clap parses. An argument is a switch only when it names
//! one; any other argument starting with `/` is a path.

use std::collections::HashMap;
use std::ffi::OsString;

use super::table::{self, Map};

/// A usage error in robocopy's words (§6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `ERROR : Invalid Parameter #<n> : "<arg>"`, n counted from 1 after the command.
pub fn invalid_parameter(n: usize, arg: &str) -> UsageError {
    UsageError(format!("Invalid Parameter #{n} : \"{arg}\""))
}

/// The switches one command knows: robocopy's names and our options' slash
/// spellings (upper case, dashes dropped), each with whether it takes a value.
pub struct Switches {
    ours: HashMap<String, (String, bool)>,
}

impl Switches {
    /// The switches of a subcommand of `cmd`.
    pub fn of(cmd: &clap::Command) -> Switches {
        let mut ours = HashMap::new();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let takes = arg.get_action().takes_values();
            ours.insert(long.replace('-', "").to_uppercase(), (long.to_owned(), takes));
            for alias in arg.get_all_aliases().into_iter().flatten() {
                ours.insert(alias.replace('-', "").to_uppercase(), (long.to_owned(), takes));
            }
        }
        Switches { ours }
    }

    fn lookup(&self, name: &str) -> Option<Map<'_>> {
        let upper = name.to_uppercase();
        if let Some(row) = table::find(&upper).filter(|r| r.map != Map::Ours) {
            return Some(row.map);
        }
        let (long, takes) = self.ours.get(&upper)?;
        Some(if *takes { Map::Value(long) } else { Map::Flag(long) })
    }

    /// Whether `arg` is a switch by rule 1 of §3.2.
    pub fn is_switch(&self, arg: &str) -> bool {
        switch_parts(arg).is_some_and(|(name, _)| self.lookup(name).is_some())
    }
}

/// `/NAME[:VALUE]` split, when the part before the first `:` has no other `/`.
fn switch_parts(arg: &str) -> Option<(&str, Option<&str>)> {
    let rest = arg.strip_prefix('/')?;
    let (name, value) = match rest.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    };
    (!name.is_empty() && !name.contains('/')).then_some((name, value))
}

/// The arguments after the subcommand, with robocopy switches rewritten.
/// `/Z`-style compatibility switches become `--compat=/Z` so that the
/// Options line can echo them.
///
/// # Errors
/// A usage error for an unsupported switch or a malformed value.
pub fn translate(args: &[OsString], switches: &Switches) -> Result<Vec<OsString>, UsageError> {
    let mut out = Vec::with_capacity(args.len());
    let mut options_ended = false;
    for (i, raw) in args.iter().enumerate() {
        let Some(arg) = raw.to_str() else {
            out.push(raw.clone());
            continue;
        };
        if options_ended || arg == "--" {
            options_ended = true;
            out.push(raw.clone());
            continue;
        }
        let Some((name, value)) = switch_parts(arg) else {
            out.push(raw.clone());
            continue;
        };
        let Some(map) = switches.lookup(name) else {
            // Not a switch: a path (rule 2).
            out.push(raw.clone());
            continue;
        };
        let bad = || invalid_parameter(i + 1, arg);
        match (map, value) {
            (Map::Flag(long), None) => out.push(format!("--{long}").into()),
            (Map::List(long), None) => out.push(format!("--{long}").into()),
            (Map::Value(long), Some(v)) if !v.is_empty() => out.push(format!("--{long}={v}").into()),
            (Map::Optional(long, default), v) => {
                out.push(format!("--{long}={}", v.filter(|v| !v.is_empty()).unwrap_or(default)).into())
            }
            (Map::Fixed(long, v), None) => out.push(format!("--{long}={v}").into()),
            (Map::Compat, None) => out.push(format!("--compat=/{}", name.to_uppercase()).into()),
            (Map::Unsupported, _) => return Err(UsageError(format!("Option not supported : \"{arg}\""))),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn tr(args: &[&str]) -> Result<Vec<String>, UsageError> {
        let cmd = crate::args::Cli::command();
        let backup = cmd.find_subcommand("backup").expect("backup");
        let sw = Switches::of(backup);
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        translate(&args, &sw).map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn switches_and_paths() {
        assert_eq!(
            tr(&[
                "/srv/data",
                "/data",
                "/XD",
                "Temp",
                "/r:3",
                "/LOG+:/var/log/x.log",
                "/MT",
                "/mt:4"
            ])
            .unwrap(),
            [
                "/srv/data",
                "/data",
                "--exclude-dir",
                "Temp",
                "--retries=3",
                "--log-append=/var/log/x.log",
                "--threads=8",
                "--threads=4"
            ]
        );
        assert_eq!(
            tr(&["/KEEPEXTRAS", "/SERIES:fin", "/LOCKWAIT:5m"]).unwrap(),
            ["--keep-extras", "--series=fin", "--lock-wait=5m"]
        );
        assert_eq!(tr(&["/s/"]).unwrap(), ["/s/"]);
        assert_eq!(tr(&["/Z", "/SEC"]).unwrap(), ["--compat=/Z", "--copy=DATS"]);
    }

    #[test]
    fn bad_switches() {
        assert_eq!(
            tr(&["a", "/CREATE"]).unwrap_err().0,
            "Option not supported : \"/CREATE\""
        );
        assert_eq!(tr(&["/R:"]).unwrap_err().0, "Invalid Parameter #1 : \"/R:\"");
        assert_eq!(tr(&["x", "/NP:3"]).unwrap_err().0, "Invalid Parameter #2 : \"/NP:3\"");
    }
}

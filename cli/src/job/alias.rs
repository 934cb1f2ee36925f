//! Robocopy spellings (ROBOCOPY.md §3.2): `/XD`, `/R:3`, `/LOG+:F`, and our
//! own options in slash spelling (`/KEEPEXTRAS`, `/SERIES:S`), rewritten to
//! the GNU options clap parses. An argument is a switch only when it names
//! one; any other argument starting with `/` is a path.

use std::collections::HashMap;
use std::ffi::OsString;

/// How a robocopy switch maps to our options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Map<'a> {
    /// A flag: `/NP` → `--no-progress`.
    Flag(&'a str),
    /// A value after `:`: `/R:3` → `--retries=3`.
    Value(&'a str),
    /// A list taking the following arguments: `/XD a b` → `--exclude-dir a b`.
    List(&'a str),
    /// A value after `:`, or this one when there is none: `/MT` → `--threads=8`.
    Optional(&'a str, &'a str),
    /// A fixed option and value: `/SEC` → `--copy=DATS`.
    Fixed(&'a str, &'a str),
    /// Accepted and echoed, without effect.
    Compat,
    /// Known but not supported: a usage error.
    Unsupported,
}

/// Robocopy's own switch names, upper case.
const ROBOCOPY: &[(&str, Map<'static>)] = &[
    ("S", Map::Flag("subdirs")),
    ("E", Map::Flag("empty-dirs")),
    ("LEV", Map::Value("lev")),
    ("PURGE", Map::Flag("purge")),
    ("MIR", Map::Flag("mirror")),
    ("XO", Map::Flag("exclude-older")),
    ("XN", Map::Flag("exclude-newer")),
    ("XC", Map::Flag("exclude-changed")),
    ("XL", Map::Flag("exclude-lonely")),
    ("XX", Map::Flag("exclude-extra")),
    ("IS", Map::Flag("include-same")),
    ("IT", Map::Flag("include-tweaked")),
    ("IM", Map::Flag("include-modified")),
    ("IF", Map::List("include-files")),
    ("XF", Map::List("exclude-file")),
    ("XD", Map::List("exclude-dir")),
    ("IA", Map::Value("include-attrs")),
    ("XA", Map::Value("exclude-attrs")),
    ("A", Map::Flag("archive")),
    ("M", Map::Flag("archive-reset")),
    ("MAX", Map::Value("max-size")),
    ("MIN", Map::Value("min-size")),
    ("MAXAGE", Map::Value("max-age")),
    ("MINAGE", Map::Value("min-age")),
    ("MAXLAD", Map::Value("max-lad")),
    ("MINLAD", Map::Value("min-lad")),
    ("XJ", Map::Flag("exclude-links")),
    ("XJD", Map::Flag("exclude-dir-links")),
    ("XJF", Map::Flag("exclude-file-links")),
    ("SL", Map::Flag("copy-links")),
    ("SJ", Map::Flag("copy-junctions")),
    ("FFT", Map::Flag("fft")),
    ("DST", Map::Flag("dst")),
    ("COPY", Map::Value("copy")),
    ("DCOPY", Map::Value("dcopy")),
    ("SEC", Map::Fixed("copy", "DATS")),
    ("COPYALL", Map::Fixed("copy", "DATSOU")),
    ("NODCOPY", Map::Flag("nodcopy")),
    ("NOCOPY", Map::Flag("nocopy")),
    ("A+", Map::Value("attr-add")),
    ("A-", Map::Value("attr-remove")),
    ("L", Map::Flag("list-only")),
    ("MT", Map::Optional("threads", "8")),
    ("R", Map::Value("retries")),
    ("W", Map::Value("wait")),
    ("REG", Map::Flag("save-retry-defaults")),
    ("TBD", Map::Flag("wait-for-share")),
    ("MOV", Map::Flag("move-files")),
    ("MOVE", Map::Flag("move")),
    ("NP", Map::Flag("no-progress")),
    ("NDL", Map::Flag("no-dir-list")),
    ("NFL", Map::Flag("no-file-list")),
    ("NJH", Map::Flag("no-job-header")),
    ("NJS", Map::Flag("no-job-summary")),
    ("NC", Map::Flag("no-class")),
    ("NS", Map::Flag("no-size")),
    ("BYTES", Map::Flag("bytes")),
    ("TS", Map::Flag("timestamps")),
    ("FP", Map::Flag("full-paths")),
    ("ETA", Map::Flag("eta")),
    ("V", Map::Flag("verbose")),
    ("X", Map::Flag("report-all-extras")),
    ("LOG", Map::Value("log")),
    ("LOG+", Map::Value("log-append")),
    ("TEE", Map::Flag("tee")),
    ("JOB", Map::Value("job")),
    ("SAVE", Map::Value("save-job")),
    ("QUIT", Map::Flag("quit")),
    ("NOSD", Map::Flag("no-source")),
    ("NODD", Map::Flag("no-dest")),
    ("Z", Map::Compat),
    ("B", Map::Compat),
    ("ZB", Map::Compat),
    ("J", Map::Compat),
    ("UNICODE", Map::Compat),
    ("CREATE", Map::Unsupported),
    ("UNILOG", Map::Unsupported),
    ("UNILOG+", Map::Unsupported),
    ("IPG", Map::Unsupported),
    ("EFSRAW", Map::Unsupported),
];

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
        if let Some((_, m)) = ROBOCOPY.iter().find(|(n, _)| *n == upper) {
            return Some(*m);
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

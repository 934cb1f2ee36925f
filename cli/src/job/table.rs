//! The one table of robocopy switches (ROBOCOPY.md §3): for each, the
//! option it stands for, how it shows on the Options line of the header
//! (§6.2), and the section a saved job (§8) writes it in. Parsing
//! (`alias`), the Options echo and job-file saving (`switches`) all read it.
//!
//! Rows whose echo is [`Echo::Flag`] or [`Echo::Value`] are echoed in table
//! order, so their order here is the order of the Options line. Switches
//! echoed or saved by code of their own (`/S /E`, `/LEV`, `/COPY`, `/DCOPY`,
//! `/MT`, `/R`, `/W`: their values are computed, not copied) say
//! [`Echo::ByCode`] and [`Saved::Own`]; a command's own switches (`/MOV`,
//! `/NOCOPY`, ...) are echoed by the command and saved with the copy
//! options.

use crate::args::JobArgs;

/// How a robocopy switch maps to our options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Map<'a> {
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
    /// Our own option in slash spelling, known only to the commands that
    /// have it (resolved through the command's options, not here).
    Ours,
}

/// How a switch shows on the Options line.
#[derive(Clone, Copy)]
pub enum Echo {
    /// Not shown.
    No,
    /// `/NAME` when the option is on.
    Flag(fn(&JobArgs) -> bool),
    /// `/NAME:value` when the option is given.
    Value(fn(&JobArgs) -> Option<&str>),
    /// Shown by code of its own, with a computed value.
    ByCode,
}

/// Where a saved job writes a switch the Options line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// In "Copy options", as the Options line shows it.
    Copy,
    /// In "Logging Options", as the Options line shows it.
    Logging,
    /// By code of its own (its own section, or a computed value).
    Own,
}

/// One robocopy switch.
pub struct Switch {
    /// Its name, upper case, without the slash.
    pub name: &'static str,
    pub map: Map<'static>,
    pub echo: Echo,
    pub saved: Saved,
}

const fn row(name: &'static str, map: Map<'static>, echo: Echo, saved: Saved) -> Switch {
    Switch { name, map, echo, saved }
}

use Echo::{ByCode, Flag as On, Value as Given};
use Map::{Compat, Fixed, Flag, List, Optional, Ours, Unsupported, Value};
use Saved::{Copy as CopyOpts, Logging as LogOpts, Own};

/// Every switch. Echoed rows in the order of the Options line.
pub const SWITCHES: &[Switch] = &[
    row("S", Flag("subdirs"), ByCode, Own),
    row("E", Flag("empty-dirs"), ByCode, Own),
    row("LEV", Value("lev"), ByCode, Own),
    row("PURGE", Flag("purge"), On(|j| j.purge || j.mirror), CopyOpts),
    row("MIR", Flag("mirror"), On(|j| j.mirror), CopyOpts),
    row("XO", Flag("exclude-older"), On(|j| j.exclude_older), CopyOpts),
    row("XN", Flag("exclude-newer"), On(|j| j.exclude_newer), CopyOpts),
    row("XC", Flag("exclude-changed"), On(|j| j.exclude_changed), CopyOpts),
    row("XL", Flag("exclude-lonely"), On(|j| j.exclude_lonely), CopyOpts),
    row("XX", Flag("exclude-extra"), On(|j| j.exclude_extra), CopyOpts),
    row("IS", Flag("include-same"), On(|j| j.include_same), CopyOpts),
    row("IT", Flag("include-tweaked"), On(|j| j.include_tweaked), CopyOpts),
    row("IM", Flag("include-modified"), On(|j| j.include_modified), CopyOpts),
    row("XJ", Flag("exclude-links"), On(|j| j.exclude_links), CopyOpts),
    row("XJD", Flag("exclude-dir-links"), On(|j| j.exclude_dir_links), CopyOpts),
    row(
        "XJF",
        Flag("exclude-file-links"),
        On(|j| j.exclude_file_links),
        CopyOpts,
    ),
    row("FFT", Flag("fft"), On(|j| j.fft), CopyOpts),
    row("DST", Flag("dst"), On(|j| j.dst), CopyOpts),
    row("L", Flag("list-only"), On(|j| j.list_only), CopyOpts),
    row("TBD", Flag("wait-for-share"), On(|j| j.wait_for_share), CopyOpts),
    row("NP", Flag("no-progress"), On(|j| j.no_progress), LogOpts),
    row("NDL", Flag("no-dir-list"), On(|j| j.no_dir_list), LogOpts),
    row("NFL", Flag("no-file-list"), On(|j| j.no_file_list), LogOpts),
    row("NJH", Flag("no-job-header"), On(|j| j.no_job_header), LogOpts),
    row("NJS", Flag("no-job-summary"), On(|j| j.no_job_summary), LogOpts),
    row("NC", Flag("no-class"), On(|j| j.no_class), LogOpts),
    row("NS", Flag("no-size"), On(|j| j.no_size), LogOpts),
    row("BYTES", Flag("bytes"), On(|j| j.bytes), LogOpts),
    row("TS", Flag("timestamps"), On(|j| j.timestamps), LogOpts),
    row("FP", Flag("full-paths"), On(|j| j.full_paths), LogOpts),
    row("ETA", Flag("eta"), On(|j| j.eta), LogOpts),
    row("V", Flag("verbose"), On(|j| j.verbose), LogOpts),
    row("X", Flag("report-all-extras"), On(|j| j.report_all_extras), LogOpts),
    row("TEE", Flag("tee"), On(|j| j.tee), LogOpts),
    row("CASESENSITIVEMATCH", Ours, On(|j| j.case_sensitive_match), CopyOpts),
    row(
        "IA",
        Value("include-attrs"),
        Given(|j| j.include_attrs.as_deref()),
        CopyOpts,
    ),
    row(
        "XA",
        Value("exclude-attrs"),
        Given(|j| j.exclude_attrs.as_deref()),
        CopyOpts,
    ),
    row("MAX", Value("max-size"), Given(|j| j.max_size.as_deref()), CopyOpts),
    row("MIN", Value("min-size"), Given(|j| j.min_size.as_deref()), CopyOpts),
    row("MAXAGE", Value("max-age"), Given(|j| j.max_age.as_deref()), CopyOpts),
    row("MINAGE", Value("min-age"), Given(|j| j.min_age.as_deref()), CopyOpts),
    row("DCOPY", Value("dcopy"), ByCode, Own),
    row("NODCOPY", Flag("nodcopy"), ByCode, Own),
    row("COPY", Value("copy"), ByCode, Own),
    row("MT", Optional("threads", "8"), ByCode, Own),
    row("R", Value("retries"), ByCode, Own),
    row("W", Value("wait"), ByCode, Own),
    // Not on the Options line: they select files or change the run, and a
    // job keeps them in sections of their own, or not at all.
    row("IF", List("include-files"), Echo::No, Own),
    row("XF", List("exclude-file"), Echo::No, Own),
    row("XD", List("exclude-dir"), Echo::No, Own),
    row("A", Flag("archive"), Echo::No, Own),
    row("M", Flag("archive-reset"), Echo::No, Own),
    row("MAXLAD", Value("max-lad"), Echo::No, Own),
    row("MINLAD", Value("min-lad"), Echo::No, Own),
    row("SL", Flag("copy-links"), Echo::No, Own),
    row("SJ", Flag("copy-junctions"), Echo::No, Own),
    row("SEC", Fixed("copy", "DATS"), Echo::No, Own),
    row("COPYALL", Fixed("copy", "DATSOU"), Echo::No, Own),
    row("NOCOPY", Flag("nocopy"), ByCode, CopyOpts),
    row("A+", Value("attr-add"), Echo::No, Own),
    row("A-", Value("attr-remove"), Echo::No, Own),
    row("REG", Flag("save-retry-defaults"), Echo::No, Own),
    row("MOV", Flag("move-files"), ByCode, CopyOpts),
    row("MOVE", Flag("move"), ByCode, CopyOpts),
    row("LOG", Value("log"), Echo::No, Own),
    row("LOG+", Value("log-append"), Echo::No, Own),
    row("JOB", Value("job"), Echo::No, Own),
    row("SAVE", Value("save-job"), Echo::No, Own),
    row("QUIT", Flag("quit"), Echo::No, Own),
    row("NOSD", Flag("no-source"), Echo::No, Own),
    row("NODD", Flag("no-dest"), Echo::No, Own),
    row("Z", Compat, Echo::No, CopyOpts),
    row("B", Compat, Echo::No, CopyOpts),
    row("ZB", Compat, Echo::No, CopyOpts),
    row("J", Compat, Echo::No, CopyOpts),
    row("UNICODE", Compat, Echo::No, CopyOpts),
    row("CREATE", Unsupported, Echo::No, Own),
    row("UNILOG", Unsupported, Echo::No, Own),
    row("UNILOG+", Unsupported, Echo::No, Own),
    row("IPG", Unsupported, Echo::No, Own),
    row("EFSRAW", Unsupported, Echo::No, Own),
];

/// The row of a switch named `upper` (upper case, without the slash).
pub fn find(upper: &str) -> Option<&'static Switch> {
    SWITCHES.iter().find(|s| s.name == upper)
}

/// The row of an item of the Options line (`/R:3`, `/NP`, `/S /E`).
pub fn of_item(item: &str) -> Option<&'static Switch> {
    let first = item.split(' ').next()?;
    let name = first.strip_prefix('/')?;
    find(name.split(':').next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_switch_has_one_row() {
        for (i, s) in SWITCHES.iter().enumerate() {
            assert!(SWITCHES[i + 1..].iter().all(|t| t.name != s.name), "{} twice", s.name);
            assert_eq!(s.name, s.name.to_uppercase());
        }
    }
}

//! The command line, as clap types. Nothing here knows how a command runs:
//! `main` turns these into engine options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Versioned, content-addressed backups with the job model of robocopy.
#[derive(Debug, Parser)]
#[command(name = "robovault", version, about, max_term_width = 100, args_override_self = true)]
pub struct Cli {
    /// How exit codes are reported: robocopy's bitmask, or 0/1/2 for schedulers.
    #[arg(long, global = true, value_enum, default_value_t = ExitCodes::Robocopy)]
    pub exit_codes: ExitCodes,
    /// Allow plain-http S3 endpoints (a loopback test gateway).
    #[arg(long, global = true)]
    pub s3_allow_http: bool,
    /// The S3 gateway's endpoint URL [default: AWS_ENDPOINT_URL, else AWS].
    #[arg(long, global = true, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The S3 region [default: AWS_REGION, else us-east-1].
    #[arg(long, global = true, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Read an encrypted repository's password from the first line of FILE.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "password_command")]
    pub password_file: Option<PathBuf>,
    /// Run CMD with `sh -c`; the first line it prints is the password.
    #[arg(long, global = true, value_name = "CMD")]
    pub password_command: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `--exit-codes` (ROBOCOPY.md §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExitCodes {
    /// 0–7 success bits, 8 failures, 16 fatal.
    Robocopy,
    /// 0–7 become 0, 8–15 become 1, 16 becomes 2.
    Posix,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new, empty repository.
    Init {
        /// Where to create it (must not exist, or be an empty directory).
        repo: PathBuf,
        #[command(flatten)]
        new: NewRepoArgs,
    },
    /// Manage an encrypted repository's keys.
    Key {
        #[command(subcommand)]
        what: KeyCmd,
    },
    /// Back up SOURCE into REPO as a new snapshot (creates REPO if missing).
    Backup(BackupArgs),
    /// Restore a snapshot, or some paths of it, into TARGET.
    Restore(RestoreArgs),
    /// List the runs (snapshots) with their counts and exit codes.
    #[command(alias = "snapshots")]
    History(HistoryArgs),
    /// List the entries of a directory in a snapshot.
    Ls(LsArgs),
    /// List every version of one file, with the snapshots it spans.
    Versions(VersionsArgs),
    /// Write one file's content from a snapshot to stdout.
    Cat(CatArgs),
    /// Check the repository: structure, and with --read-data every stored byte.
    Verify(VerifyArgs),
    /// Drop snapshots by keep rules or by id (gc reclaims the space).
    Forget(ForgetArgs),
    /// Remove what no snapshot needs; repack mostly-unused packs.
    Gc(GcArgs),
    /// Rebuild parts of the repository from the store.
    Repair {
        /// What to repair.
        #[command(subcommand)]
        what: RepairWhat,
    },
    /// List the changes between two snapshots.
    Diff(DiffArgs),
    /// Find a name or path pattern in every snapshot.
    Find(FindArgs),
    /// Sizes, deduplication, compression and growth per run; an HTML report.
    Stats(StatsArgs),
    /// Run saved jobs on a timetable (systemd timers or cron).
    Schedule {
        /// What to do.
        #[command(subcommand)]
        what: ScheduleCmd,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    Man,
}

/// `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The repository.
    pub repo: PathBuf,
    /// Only this series (default: every series).
    #[arg(long)]
    pub series: Option<String>,
    /// Also write a self-contained HTML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How a repository this command creates is made (`init`, and a `backup`
/// that creates its repository).
#[derive(Debug, Args, Clone, Default)]
pub struct NewRepoArgs {
    /// Encryption of a new repository [default: xchacha20poly1305].
    #[arg(long, value_enum, value_name = "E")]
    pub encryption: Option<EncryptionArg>,
    /// Format version of a new repository: 2, or 1 for older robovault (never encrypted) [default: ROBOVAULT_FORMAT_VERSION, else 2].
    #[arg(long, value_name = "N")]
    pub format_version: Option<u32>,
    #[command(flatten)]
    pub kdf: KdfArgs,
}

/// Argon2id's costs for a new key file.
#[derive(Debug, Args, Clone, Default)]
pub struct KdfArgs {
    /// Argon2id memory of a new key (K, M, G) [default: 256M].
    #[arg(long, value_name = "SIZE")]
    pub kdf_memory: Option<String>,
    /// Argon2id passes of a new key [default: 3].
    #[arg(long, value_name = "N")]
    pub kdf_iterations: Option<u32>,
}

/// `--encryption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncryptionArg {
    /// XChaCha20-Poly1305, keyed ids and chunking (FORMAT.md).
    #[value(name = "xchacha20poly1305")]
    XChaCha20Poly1305,
    /// None: everything stored in the clear, on purpose.
    None,
}

/// `key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// List the key files: id, host, user and date of each.
    List {
        /// The repository.
        repo: PathBuf,
        /// A JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Add a key file with a new password.
    Add {
        /// The repository.
        repo: PathBuf,
        /// Read the new password from this file's first line (else a prompt).
        #[arg(long, value_name = "F")]
        new_password_file: Option<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// Remove a key file (never the last, nor the one in use).
    Remove {
        /// The repository.
        repo: PathBuf,
        /// The key id, or 8 or more of its first hex digits.
        id: String,
    },
    /// Change the password of the key in use.
    Passwd {
        /// The repository.
        repo: PathBuf,
        /// Read the new password from this file's first line (else a prompt).
        #[arg(long, value_name = "F")]
        new_password_file: Option<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// Write the key in use to FILE: with its password it opens the repository if keys/ is lost.
    Export {
        /// Where to write it (must not exist).
        file: PathBuf,
        /// The repository.
        repo: PathBuf,
    },
}

/// `schedule …`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Save a job and write its systemd service and timer (or a crontab line).
    Add(ScheduleAddArgs),
    /// List the saved schedules.
    List {
        #[command(flatten)]
        scope: ScopeArgs,
        /// A JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Remove a schedule's definition and units.
    Remove {
        /// The schedule.
        name: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Run a saved schedule now (what the timer runs).
    Run {
        /// The schedule.
        name: String,
        /// A system-wide schedule.
        #[arg(long)]
        system: bool,
    },
}

/// Where schedules live.
#[derive(Debug, Args, Clone, Default)]
pub struct ScopeArgs {
    /// System-wide (/etc/systemd/system, /etc/robovault) instead of this user's.
    #[arg(long)]
    pub system: bool,
    /// Write or look for the units here instead.
    #[arg(long, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
}

/// `schedule add`.
#[derive(Debug, Args)]
pub struct ScheduleAddArgs {
    /// The schedule's name (letters, digits, -, _, .).
    pub name: String,
    /// Run every day at this local time.
    #[arg(long, value_name = "HH:MM")]
    pub daily: String,
    /// Only on these days (MON,THU).
    #[arg(long, value_name = "DAYS")]
    pub weekly: Option<String>,
    /// Print a crontab line instead of writing systemd units.
    #[arg(long)]
    pub cron: bool,
    /// Run this job file: the same as `-- backup --job FILE`.
    #[arg(long, value_name = "FILE", conflicts_with = "command")]
    pub job: Option<PathBuf>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// The run, after `--`: `backup SOURCE REPO [options]` or `restore …`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `repair …`.
#[derive(Debug, Subcommand)]
pub enum RepairWhat {
    /// Rebuild index.sqlite from the packs, snapshot objects and markers alone.
    Index {
        /// The repository.
        repo: PathBuf,
        /// Wait up to this long for another writer's lock.
        #[arg(long, default_value = "0")]
        lock_wait: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The repository.
    pub repo: PathBuf,
    /// Only this series (default: every series).
    #[arg(long)]
    pub series: Option<String>,
    /// Keep the newest N snapshots.
    #[arg(long, default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest snapshot of each of the last N hours.
    #[arg(long, default_value_t = 0)]
    pub keep_hourly: u32,
    /// … of each of the last N days.
    #[arg(long, default_value_t = 0)]
    pub keep_daily: u32,
    /// … of each of the last N ISO weeks.
    #[arg(long, default_value_t = 0)]
    pub keep_weekly: u32,
    /// … of each of the last N months.
    #[arg(long, default_value_t = 0)]
    pub keep_monthly: u32,
    /// … of each of the last N years.
    #[arg(long, default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep every snapshot within this long of the newest (1y2m3w4d5h: years, months, weeks, days, hours).
    #[arg(long, allow_hyphen_values = true)]
    pub keep_within: Option<String>,
    /// Forget exactly this snapshot.
    #[arg(long)]
    pub snapshot: Option<String>,
    /// Show the decisions; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run gc afterwards.
    #[arg(long)]
    pub prune: bool,
    /// With --prune: gc's --max-unused.
    #[arg(long, default_value = "5%")]
    pub max_unused: String,
    /// Wait up to this long for another writer's lock.
    #[arg(long, default_value = "0")]
    pub lock_wait: String,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// The repository.
    pub repo: PathBuf,
    /// Show what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Repack a pack once more than this share of it is unused (5%, 0.05).
    #[arg(long, default_value = "5%")]
    pub max_unused: String,
    /// Wait up to this long for another writer's lock.
    #[arg(long, default_value = "0")]
    pub lock_wait: String,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// No status line on a terminal.
    #[arg(long, visible_alias = "np")]
    pub no_progress: bool,
    /// Remote repositories: spare packs younger than this (another host's
    /// run may be uploading them) and superseded index copies.
    #[arg(long, default_value = "1h")]
    pub grace: String,
}

/// `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The repository.
    pub repo: PathBuf,
    /// The older snapshot (id, prefix or latest).
    pub snap_a: String,
    /// The newer snapshot.
    pub snap_b: String,
    /// A JSON array with sizes.
    #[arg(long)]
    pub json: bool,
}

/// `find`.
#[derive(Debug, Args)]
pub struct FindArgs {
    /// The repository.
    pub repo: PathBuf,
    /// A name or path with `*` and `?`, matched case-insensitively.
    pub pattern: String,
    /// Only this series.
    #[arg(long)]
    pub series: Option<String>,
    /// A JSON array with dates.
    #[arg(long)]
    pub json: bool,
}

/// The options backup and restore share (ROBOCOPY.md §3.1, rows marked B R).
#[derive(Debug, Args, Clone, Default)]
pub struct JobArgs {
    /// Walk the tree but leave out empty directories (/S).
    #[arg(short = 's', long, help_heading = "Selection")]
    pub subdirs: bool,
    /// Walk the whole tree, empty directories included (/E; the default).
    #[arg(short = 'e', long, help_heading = "Selection")]
    pub empty_dirs: bool,
    /// Walk the top N levels only; the root is level 1 (/LEV:n).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Selection")]
    pub lev: Option<u32>,
    /// Restore: delete extras in TARGET (/PURGE). Backup: no effect.
    #[arg(long, help_heading = "Selection")]
    pub purge: bool,
    /// -e --purge (/MIR).
    #[arg(long, help_heading = "Selection")]
    pub mirror: bool,
    /// Skip Older entries (/XO).
    #[arg(long, visible_alias = "xo", help_heading = "Classes")]
    pub exclude_older: bool,
    /// Skip Newer entries (/XN).
    #[arg(long, visible_alias = "xn", help_heading = "Classes")]
    pub exclude_newer: bool,
    /// Skip Changed entries (/XC).
    #[arg(long, visible_alias = "xc", help_heading = "Classes")]
    pub exclude_changed: bool,
    /// Skip Lonely entries: add nothing new (/XL).
    #[arg(long, visible_alias = "xl", help_heading = "Classes")]
    pub exclude_lonely: bool,
    /// Ignore extras: not reported, counted, dropped or deleted (/XX).
    #[arg(long, visible_alias = "xx", help_heading = "Classes")]
    pub exclude_extra: bool,
    /// Copy Same files too (/IS).
    #[arg(long, visible_alias = "is", help_heading = "Classes")]
    pub include_same: bool,
    /// Copy Tweaked files (/IT).
    #[arg(long, visible_alias = "it", help_heading = "Classes")]
    pub include_tweaked: bool,
    /// Accepted; changes nothing (/IM).
    #[arg(long, visible_alias = "im", help_heading = "Classes")]
    pub include_modified: bool,
    /// Include only files matching these names, wildcards or paths (/IF).
    #[arg(long, visible_alias = "if", value_name = "P", num_args = 1.., help_heading = "Selection")]
    pub include_files: Vec<String>,
    /// Exclude files by name, wildcard or path (/XF).
    #[arg(long, visible_alias = "xf", value_name = "P", num_args = 1.., help_heading = "Selection")]
    pub exclude_file: Vec<String>,
    /// Exclude directories: they are not walked (/XD).
    #[arg(long, visible_alias = "xd", value_name = "P", num_args = 1.., help_heading = "Selection")]
    pub exclude_dir: Vec<String>,
    /// Match patterns case-sensitively.
    #[arg(long, help_heading = "Selection")]
    pub case_sensitive_match: bool,
    /// Only files with any of these attributes, from RASHCNETO (/IA:L).
    #[arg(long, visible_alias = "ia", value_name = "L", help_heading = "Selection")]
    pub include_attrs: Option<String>,
    /// Exclude files with any of these attributes (/XA:L).
    #[arg(long, visible_alias = "xa", value_name = "L", help_heading = "Selection")]
    pub exclude_attrs: Option<String>,
    /// Exclude files larger than N bytes (K, M, G suffixes) (/MAX:n).
    #[arg(long, visible_alias = "max", value_name = "N", help_heading = "Selection")]
    pub max_size: Option<String>,
    /// Exclude files smaller than N bytes (/MIN:n).
    #[arg(long, visible_alias = "min", value_name = "N", help_heading = "Selection")]
    pub min_size: Option<String>,
    /// Exclude files older than N days, or than YYYYMMDD (/MAXAGE:n).
    #[arg(long, value_name = "N", allow_hyphen_values = true, help_heading = "Selection")]
    pub max_age: Option<String>,
    /// Exclude files newer than N days, or than YYYYMMDD (/MINAGE:n).
    #[arg(long, value_name = "N", allow_hyphen_values = true, help_heading = "Selection")]
    pub min_age: Option<String>,
    /// Exclude all symlinks (/XJ).
    #[arg(long, visible_alias = "xj", help_heading = "Selection")]
    pub exclude_links: bool,
    /// Exclude links to directories (/XJD).
    #[arg(long, visible_alias = "xjd", help_heading = "Selection")]
    pub exclude_dir_links: bool,
    /// Exclude the other links, dangling ones included (/XJF).
    #[arg(long, visible_alias = "xjf", help_heading = "Selection")]
    pub exclude_file_links: bool,
    /// Times within 2 seconds count as equal (/FFT).
    #[arg(long, help_heading = "Classes")]
    pub fft: bool,
    /// Times one hour apart count as equal (/DST).
    #[arg(long, help_heading = "Classes")]
    pub dst: bool,
    /// What to copy for files, from DATSOUX (/COPY:F; default DAT).
    #[arg(long, value_name = "F", help_heading = "Copy")]
    pub copy: Option<String>,
    /// What to copy for directories (/DCOPY:F; default DAT).
    #[arg(long, value_name = "F", help_heading = "Copy")]
    pub dcopy: Option<String>,
    /// --copy DATS (/SEC).
    #[arg(long, help_heading = "Copy")]
    pub sec: bool,
    /// --copy DATSOU (/COPYALL).
    #[arg(long, help_heading = "Copy")]
    pub copyall: bool,
    /// Copy nothing for directories (/NODCOPY).
    #[arg(long, help_heading = "Copy")]
    pub nodcopy: bool,
    /// Plan and report only: read no content, write nothing (/L).
    #[arg(short = 'l', long, visible_alias = "dry-run", help_heading = "Run")]
    pub list_only: bool,
    /// Worker threads, 1–128 (/MT[:n]; --mt alone means 8); default: every core.
    #[arg(long, visible_alias = "mt", value_name = "N", num_args = 0..=1, default_missing_value = "8",
          value_parser = clap::value_parser!(u32).range(1..=128), help_heading = "Run")]
    pub threads: Option<u32>,
    /// Retries per failed item (/R:n; default 3).
    #[arg(short = 'r', long, value_name = "N", help_heading = "Run")]
    pub retries: Option<u32>,
    /// Seconds between retries (/W:n; default 5).
    #[arg(short = 'w', long, value_name = "S", help_heading = "Run")]
    pub wait: Option<u64>,
    /// Store the effective --retries and --wait as this user's defaults (/REG).
    #[arg(long, help_heading = "Run")]
    pub save_retry_defaults: bool,
    /// Retry a missing source or target root instead of failing at once (/TBD).
    #[arg(long, visible_alias = "tbd", help_heading = "Run")]
    pub wait_for_share: bool,
    /// The series (default: HOST:/absolute/source for backup; the only one for restore).
    #[arg(long, help_heading = "Run")]
    pub series: Option<String>,
    /// No progress line (/NP).
    #[arg(long, visible_alias = "np", help_heading = "Log")]
    pub no_progress: bool,
    /// No directory lines (/NDL).
    #[arg(long, visible_alias = "ndl", help_heading = "Log")]
    pub no_dir_list: bool,
    /// No file lines (/NFL).
    #[arg(long, visible_alias = "nfl", help_heading = "Log")]
    pub no_file_list: bool,
    /// No header (/NJH).
    #[arg(long, visible_alias = "njh", help_heading = "Log")]
    pub no_job_header: bool,
    /// No summary (/NJS).
    #[arg(long, visible_alias = "njs", help_heading = "Log")]
    pub no_job_summary: bool,
    /// Blank class tags (/NC).
    #[arg(long, visible_alias = "nc", help_heading = "Log")]
    pub no_class: bool,
    /// Blank sizes (/NS).
    #[arg(long, visible_alias = "ns", help_heading = "Log")]
    pub no_size: bool,
    /// Sizes as byte counts (/BYTES).
    #[arg(long, help_heading = "Log")]
    pub bytes: bool,
    /// Add the source mtime to file lines (/TS).
    #[arg(long, visible_alias = "ts", help_heading = "Log")]
    pub timestamps: bool,
    /// Print full paths on file lines (/FP).
    #[arg(long, visible_alias = "fp", help_heading = "Log")]
    pub full_paths: bool,
    /// End copied-file lines with start and estimated end times (/ETA).
    #[arg(long, help_heading = "Log")]
    pub eta: bool,
    /// Also list skipped entries and protected extras (/V).
    #[arg(short = 'v', long, help_heading = "Log")]
    pub verbose: bool,
    /// Also list destination files left out by the include filespecs (/X).
    #[arg(long, help_heading = "Log")]
    pub report_all_extras: bool,
    /// Write the log to F, truncating it (/LOG:F).
    #[arg(long, value_name = "F", help_heading = "Log")]
    pub log: Option<PathBuf>,
    /// Append the log to F (/LOG+:F).
    #[arg(long, value_name = "F", help_heading = "Log")]
    pub log_append: Option<PathBuf>,
    /// With --log: also write the log to stdout (/TEE).
    #[arg(long, help_heading = "Log")]
    pub tee: bool,
    /// One JSON summary object on stdout instead of the log.
    #[arg(long, conflicts_with = "tee", help_heading = "Log")]
    pub json: bool,
    /// Read options from a job file (/JOB:NAME).
    #[arg(long, value_name = "NAME", help_heading = "Job files")]
    pub job: Option<String>,
    /// Write the effective options to a job file (/SAVE:NAME).
    #[arg(long, value_name = "NAME", help_heading = "Job files")]
    pub save_job: Option<String>,
    /// Stop after parsing (and saving) (/QUIT).
    #[arg(long, help_heading = "Job files")]
    pub quit: bool,
    /// Leave /SD: out of the saved job (/NOSD).
    #[arg(long, help_heading = "Job files")]
    pub no_source: bool,
    /// Leave /DD: out of the saved job (/NODD).
    #[arg(long, help_heading = "Job files")]
    pub no_dest: bool,
    /// Encoding of job files written by robocopy: utf-8, cp850 or cp1252.
    #[arg(long, value_name = "E", help_heading = "Job files")]
    pub job_encoding: Option<String>,
    /// Run this shell command after a run that ends with exit code 0–7.
    #[arg(long, value_name = "CMD", help_heading = "Hooks")]
    pub on_success: Option<String>,
    /// Run this shell command after a run that ends with exit code 8 or more.
    #[arg(long, value_name = "CMD", help_heading = "Hooks")]
    pub on_failure: Option<String>,
    /// Run this shell command after every run.
    #[arg(long, value_name = "CMD", help_heading = "Hooks")]
    pub on_finish: Option<String>,
    /// Robocopy switches accepted without effect (/Z /B /ZB /J /UNICODE), echoed.
    #[arg(long, hide = true)]
    pub compat: Vec<String>,
}

/// `backup`.
#[derive(Debug, Args, Clone, Default)]
pub struct BackupArgs {
    /// The directory to back up.
    pub source: PathBuf,
    /// The repository.
    pub repo: PathBuf,
    /// Include filespecs: names or wildcards (default *.*).
    pub filespecs: Vec<String>,
    /// Carry baseline entries not selected or not found (robocopy without /PURGE).
    #[arg(long, conflicts_with_all = ["purge", "mirror"])]
    pub keep_extras: bool,
    /// Windows only: the Archive attribute (/A).
    #[arg(long, hide = true)]
    pub archive: bool,
    /// Windows only: clear the Archive attribute (/M).
    #[arg(long, hide = true)]
    pub archive_reset: bool,
    /// Exclude files last accessed before N days / YYYYMMDD (/MAXLAD:n).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub max_lad: Option<String>,
    /// Exclude files last accessed after N days / YYYYMMDD (/MINLAD:n).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub min_lad: Option<String>,
    /// Record links as links (/SL; the default).
    #[arg(long, visible_alias = "sl")]
    pub copy_links: bool,
    /// Record junctions as such (/SJ; the default).
    #[arg(long, visible_alias = "sj")]
    pub copy_junctions: bool,
    /// Follow symlinks, as robocopy does, with cycle protection.
    #[arg(long)]
    pub follow_links: bool,
    /// Delete copied source files after the commit (/MOV).
    #[arg(long)]
    pub move_files: bool,
    /// --move-files, and remove emptied source directories (/MOVE).
    #[arg(long = "move")]
    pub move_all: bool,
    /// Compare against this snapshot instead of the series' latest.
    #[arg(long, value_name = "ID", conflicts_with = "no_baseline")]
    pub baseline: Option<String>,
    /// Compare against an empty tree: everything is Lonely.
    #[arg(long)]
    pub no_baseline: bool,
    /// Count entries that vanished between the walk and their read as Skipped.
    #[arg(long)]
    pub ignore_vanished: bool,
    /// Wait up to this long for another writer's lock (30s, 5m, 1h; bare number: seconds).
    #[arg(long, value_name = "D")]
    pub lock_wait: Option<String>,
    #[command(flatten)]
    pub new: NewRepoArgs,
    #[command(flatten)]
    pub job: JobArgs,
}

/// Which snapshot a read command uses.
#[derive(Debug, Args, Clone, Default)]
pub struct SnapshotArgs {
    /// A snapshot id (8 or more hex digits) or `latest`.
    #[arg(long, conflicts_with = "at")]
    pub snapshot: Option<String>,
    /// The last snapshot started at or before DATE (2025-03-04, "2025-03-04 13:00", RFC 3339, yesterday, "3 days ago").
    #[arg(long, allow_hyphen_values = true)]
    pub at: Option<String>,
}

/// Which snapshot a read command uses, with its series.
#[derive(Debug, Args, Clone, Default)]
pub struct SeriesSnapshotArgs {
    /// The series (default: the repository's only one).
    #[arg(long)]
    pub series: Option<String>,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
}

/// `restore`.
#[derive(Debug, Args, Clone, Default)]
pub struct RestoreArgs {
    /// The repository.
    pub repo: PathBuf,
    /// Where to restore (created if missing).
    pub target: PathBuf,
    /// Names, wildcards, or paths relative to the snapshot root (default: everything).
    pub filespecs: Vec<String>,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Restore owners too, where permitted (--copy DATO).
    #[arg(long)]
    pub owner: bool,
    /// Lift the refusals that may be lifted (a mirror into / or $HOME, or around the repository).
    #[arg(long)]
    pub force: bool,
    /// Write no file data; with --mirror, only delete extras (/NOCOPY).
    #[arg(long)]
    pub nocopy: bool,
    /// Adjust restored files: R clears every write bit (/A+:L).
    #[arg(long, value_name = "L")]
    pub attr_add: Option<String>,
    /// Adjust restored files: R sets the owner's write bit (/A-:L).
    #[arg(long, value_name = "L")]
    pub attr_remove: Option<String>,
    #[command(flatten)]
    pub job: JobArgs,
}

/// `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The repository.
    pub repo: PathBuf,
    /// Only this series.
    #[arg(long)]
    pub series: Option<String>,
    /// Also list each run's failures.
    #[arg(short, long)]
    pub verbose: bool,
    /// A JSON array of run objects.
    #[arg(long)]
    pub json: bool,
}

/// `ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The repository.
    pub repo: PathBuf,
    /// A directory inside the snapshot (default: the root).
    pub path: Option<String>,
    #[command(flatten)]
    pub snapshot: SeriesSnapshotArgs,
    /// A JSON array of entries.
    #[arg(long)]
    pub json: bool,
}

/// `versions`.
#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// The repository.
    pub repo: PathBuf,
    /// The path, relative to the series root or absolute under its source.
    pub path: String,
    /// The series (default: the repository's only one).
    #[arg(long)]
    pub series: Option<String>,
    /// A JSON array of versions.
    #[arg(long)]
    pub json: bool,
}

/// `cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// The repository.
    pub repo: PathBuf,
    /// The file, relative to the snapshot root.
    pub path: String,
    #[command(flatten)]
    pub snapshot: SeriesSnapshotArgs,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The repository.
    pub repo: PathBuf,
    /// Also read every pack, decompress and re-hash every blob.
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read a subset of the packs: `n/m` (part n of m) or `p%`.
    #[arg(long, value_name = "n/m|p%")]
    pub read_data_subset: Option<String>,
    /// No status line on a terminal.
    #[arg(long, visible_alias = "np")]
    pub no_progress: bool,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

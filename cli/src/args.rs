//! The command line, as clap types. Nothing here knows how a command runs:
//! `main` turns these into engine options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Versioned, content-addressed backups with the job model of robocopy.
#[derive(Debug, Parser)]
#[command(name = "robovault", version, about, max_term_width = 100)]
pub struct Cli {
    /// How exit codes are reported: robocopy's bitmask, or 0/1/2 for schedulers.
    #[arg(long, global = true, value_enum, default_value_t = ExitCodes::Robocopy)]
    pub exit_codes: ExitCodes,
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
    #[arg(long)]
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

/// Options every run takes for retries and threads.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Retries per failed item (robocopy /R:n).
    #[arg(short = 'r', long, default_value_t = 3)]
    pub retries: u32,
    /// Seconds between retries (robocopy /W:n).
    #[arg(short = 'w', long, default_value_t = 5)]
    pub wait: u64,
    /// Worker threads, 1–128 (robocopy /MT:n); default: every core.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=128))]
    pub threads: Option<u32>,
    /// Print one JSON summary object instead of the log.
    #[arg(long)]
    pub json: bool,
}

/// `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The directory to back up.
    pub source: PathBuf,
    /// The repository.
    pub repo: PathBuf,
    /// The series (default: HOST:/absolute/source).
    #[arg(long)]
    pub series: Option<String>,
    /// Wait up to this long for another writer's lock (30s, 5m, 1h; bare number: seconds).
    #[arg(long, default_value = "0")]
    pub lock_wait: String,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Which snapshot a read command uses.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The series (default: the repository's only one).
    #[arg(long)]
    pub series: Option<String>,
    /// A snapshot id (8 or more hex digits) or `latest`.
    #[arg(long, conflicts_with = "at")]
    pub snapshot: Option<String>,
    /// The last snapshot started at or before DATE (2025-03-04, "2025-03-04 13:00", RFC 3339, yesterday, "3 days ago").
    #[arg(long)]
    pub at: Option<String>,
}

/// `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The repository.
    pub repo: PathBuf,
    /// Where to restore (created if missing).
    pub target: PathBuf,
    /// Paths relative to the snapshot root to restore (default: everything).
    pub paths: Vec<String>,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Restore owners too, where permitted (robocopy /COPY:DATO).
    #[arg(long)]
    pub owner: bool,
    #[command(flatten)]
    pub run: RunArgs,
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
    pub snapshot: SnapshotArgs,
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
    pub snapshot: SnapshotArgs,
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
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

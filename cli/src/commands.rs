//! One module per subcommand, each turning its arguments into engine calls
//! and the results into text or JSON; `run` picks the module. What several
//! commands share (opening a repository, choosing a snapshot) is here.

mod backup;
mod cat;
mod completions;
mod diff;
mod find;
mod forget;
mod gc;
mod history;
mod init;
mod key;
mod ls;
mod man;
mod repair;
mod restore;
mod schedule;
mod stats;
mod verify;
mod versions;

use std::ffi::OsString;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use robovault::{Repository, SnapshotChoice};

use crate::args::{Cli, Command, RepairWhat, SnapshotArgs};
pub(crate) use crate::stdout::{write_line, write_out};
use crate::{args, env, when};

/// Runs the parsed command; its exit code before `--exit-codes` maps it.
///
/// # Errors
/// A fatal or usage error, printed once by `main`.
pub fn run(
    cli: &Cli,
    edge: &env::Edge,
    raw: &[OsString],
    job_file: Option<std::path::PathBuf>,
    interrupt: &Arc<AtomicBool>,
) -> Result<u32> {
    match &cli.command {
        Command::Init { repo, new } => init::init(edge, repo, new),
        Command::Key { what } => key::key(edge, what),
        Command::Backup(a) => backup::backup(edge, a, raw, job_file, interrupt),
        Command::Restore(a) => restore::restore(edge, a, raw, job_file, interrupt),
        Command::History(a) => history::history(edge, a),
        Command::Ls(a) => ls::ls(edge, a),
        Command::Versions(a) => versions::versions(edge, a),
        Command::Cat(a) => cat::cat(edge, a),
        Command::Verify(a) => verify::verify(edge, a),
        Command::Forget(a) => forget::forget(edge, a),
        Command::Gc(a) => gc::gc(edge, a),
        Command::Repair {
            what: RepairWhat::Index { repo, lock_wait, json },
        } => repair::repair(edge, repo, lock_wait, *json),
        Command::Diff(a) => diff::diff(edge, a),
        Command::Find(a) => find::find(edge, a),
        Command::Stats(a) => stats::stats(edge, a),
        Command::Schedule { what } => schedule::schedule(edge, what),
        Command::Completions { shell } => completions::completions(*shell),
        Command::Man => man::man(),
    }
}

fn parse_duration(text: &str) -> Result<Duration> {
    crate::job::parse_duration(text)
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

//! What a run writes into. A recording run holds the writer lock, one index
//! transaction, the packer and the packs it may reuse blobs from; a
//! `--list-only` run holds at most the repository, to read its baseline, and
//! writes nothing (ROBOCOPY.md §4.8). The methods here say once what each
//! kind of run does with a path, a chunk, a tree or a row.
//!
//! Opening a run also lives here: the repository (created when missing, but
//! never by a list-only run), the series and the baseline snapshot.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use robovault_index::{Index, PathId, SeriesKey, SnapshotRecord, Writer};
use robovault_store::{BlobId, BlobKind, Packer, PackerStats, WriterLock};

use super::{lock, BackupOptions, BaselineChoice};
use crate::convert::to_hash;
use crate::packcheck::PackCheck;
use crate::repository::local::{packer_into, Repository};
use crate::repository::options::RepositoryOptions;
use crate::{Error, Result};

/// The repository side of one run.
// One per run, built once and never moved in a loop: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Session<'r> {
    /// A run that stores blobs and records a snapshot.
    Recording(Recording<'r>),
    /// A `--list-only` run: no lock, no writes; no repository when it would
    /// have been created.
    ListOnly { repo: Option<&'r Repository> },
}

/// The parts of a run that write.
pub(super) struct Recording<'r> {
    pub repo: &'r Repository,
    /// Shared with the packer, which records each pack as it is durable.
    pub writer: Arc<Mutex<Writer>>,
    pub packer: Packer,
    /// Which packs blobs may be reused from.
    pub packs: PackCheck,
    /// Held until the run is over, the moves of `--move` included.
    pub lock: WriterLock,
}

/// Where the new snapshot goes in its series, and what it is compared with.
pub(super) struct Baseline {
    /// The series the new snapshot joins.
    pub series: SeriesKey,
    /// The series of the baseline (another one under `--baseline`).
    pub base_series: SeriesKey,
    pub snapshot: Option<SnapshotRecord>,
    /// Every entry gets a new row: the baseline is not the series' latest.
    pub fresh: bool,
    pub new_seq: u64,
}

/// Who the run records as.
pub(super) struct Naming<'a> {
    pub series: &'a str,
    pub host: &'a str,
    pub source: &'a [u8],
}

/// Opens (or, unless listing only, creates) the repository; returns it and
/// whether it is (or would be) new.
pub(super) fn open_repository(repo_opts: &RepositoryOptions, list_only: bool) -> Result<(Option<Repository>, bool)> {
    // A list-only run takes no lock and creates nothing (§4.8).
    if !list_only {
        let (r, created) = Repository::open_or_create(repo_opts)?;
        return Ok((Some(r), created));
    }
    if Repository::would_create(repo_opts)? {
        Ok((None, true))
    } else {
        Ok((Some(Repository::open(repo_opts)?), false))
    }
}

impl<'r> Session<'r> {
    /// Locks the repository (healing unpublished snapshot objects), finds the
    /// baseline, lets `announce` report the run's start, then opens the
    /// run's index transaction and packer. A list-only run only reads.
    pub fn open(
        repo: Option<&'r Repository>,
        opts: &BackupOptions,
        naming: &Naming<'_>,
        announce: impl FnOnce(&Baseline),
    ) -> Result<(Session<'r>, Baseline)> {
        let list_only = opts.job.list_only;
        let held = match (repo, list_only) {
            (Some(r), false) => {
                let lock = r.lock_writer(opts.run.lock_wait)?;
                r.heal()?;
                Some(lock)
            }
            _ => None,
        };
        let index = repo.map(|r| r.index()).transpose()?;
        let mut baseline = find_baseline(repo, index.as_deref(), &opts.baseline, naming.series)?;
        announce(&baseline);
        let (Some(repo), Some(index), Some(lock)) = (repo, index, held) else {
            return Ok((Session::ListOnly { repo }, baseline));
        };
        let mut w = index.writer()?;
        let series = w.ensure_series(naming.series, naming.host, naming.source)?;
        if baseline.fresh {
            w.close_all_versions(series, baseline.new_seq)?;
        }
        baseline.series = series;
        if baseline.snapshot.is_none() {
            baseline.base_series = series;
        }
        let writer = Arc::new(Mutex::new(w));
        let packer = packer_into(repo.store(), &writer);
        let packs = PackCheck::new(repo.store(), index.packs()?, repo.index_is_cache());
        let rec = Recording {
            repo,
            writer,
            packer,
            packs,
            lock,
        };
        Ok((Session::Recording(rec), baseline))
    }

    pub fn repo(&self) -> Option<&'r Repository> {
        match self {
            Session::Recording(rec) => Some(rec.repo),
            Session::ListOnly { repo } => *repo,
        }
    }

    /// The writing parts; `None` under `--list-only`.
    pub fn recording(&self) -> Option<&Recording<'r>> {
        match self {
            Session::Recording(rec) => Some(rec),
            Session::ListOnly { .. } => None,
        }
    }

    /// Where the repository is shown: its location, or the one given when
    /// a list-only run found none.
    pub fn shown(repo: Option<&Repository>, repo_opts: &RepositoryOptions) -> PathBuf {
        match repo {
            Some(r) => r.location(),
            None => PathBuf::from(repo_opts.location.to_string()),
        }
    }

    /// The id of a new path; a list-only run records nothing, and new paths
    /// need no id then.
    pub fn intern(&self, parent: PathId, name: &[u8]) -> Result<PathId> {
        match self.recording() {
            Some(rec) => Ok(lock(&rec.writer).intern_path(parent, name)?),
            None => Ok(PathId(0)),
        }
    }

    /// Writes the open packs and waits until every pack is durable; a
    /// list-only run has stored nothing.
    pub fn finish_packs(&self) -> Result<PackerStats> {
        match self.recording() {
            Some(rec) => Ok(rec.packer.finish()?),
            None => Ok(PackerStats::default()),
        }
    }

    /// Stops the packer after a failed walk and returns its error, the real
    /// cause of a stopped packer when a pack write failed.
    pub fn abort(&self) -> Result<()> {
        match self.recording() {
            Some(rec) => Ok(rec.packer.abort()?),
            None => Ok(()),
        }
    }

    /// Stores blob `data` unless the packer or a pack this run may reuse
    /// (`reusable`, looked up in the index) holds it; returns whether it was
    /// newly stored. A list-only run stores nothing.
    pub fn store_blob(
        &self,
        id: BlobId,
        kind: BlobKind,
        data: &[u8],
        reusable: impl FnOnce(&Recording<'r>, &Index, &robovault_index::Hash32) -> robovault_index::Result<bool>,
    ) -> Result<bool> {
        let Some(rec) = self.recording() else { return Ok(false) };
        if rec.packer.contains(&id) {
            return Ok(false);
        }
        let conn = rec.repo.index()?;
        if reusable(rec, &conn, &to_hash(&id))? {
            return Ok(false);
        }
        Ok(rec.packer.add(id, kind, data)?)
    }

    /// The lost packs met during the run.
    pub fn lost(&self) -> Vec<robovault_index::Hash32> {
        self.recording().map(|rec| rec.packs.lost()).unwrap_or_default()
    }
}

/// The series' latest snapshot and the baseline chosen (ROBOCOPY.md §1).
fn find_baseline(
    repo: Option<&Repository>,
    index: Option<&Index>,
    choice: &BaselineChoice,
    series_name: &str,
) -> Result<Baseline> {
    let series_row = match index {
        Some(ix) => ix.series_by_name(series_name)?,
        None => None,
    };
    let latest = match (index, &series_row) {
        (Some(ix), Some(s)) => ix.latest_snapshot(s.key)?,
        _ => None,
    };
    let snapshot = match (choice, repo) {
        (BaselineChoice::Latest, _) => latest.clone(),
        (BaselineChoice::Empty, _) => None,
        (BaselineChoice::Id(id), Some(r)) => Some(crate::browse::snapshot_by_prefix(r, id)?),
        (BaselineChoice::Id(id), None) => return Err(Error::UnknownSnapshot(id.clone())),
    };
    let new_seq = latest.as_ref().map_or(1, |b| b.seq + 1);
    // Rows are diffed against the series' latest snapshot; against any other
    // baseline the whole tree is recorded afresh.
    let fresh = latest.is_some() && snapshot.as_ref().map(|b| b.key) != latest.as_ref().map(|l| l.key);
    let series = series_row.map_or(SeriesKey(0), |s| s.key);
    Ok(Baseline {
        series,
        base_series: snapshot.as_ref().map_or(series, |b| b.series),
        snapshot,
        fresh,
        new_seq,
    })
}

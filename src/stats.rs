//! `stats`: what a repository holds and how it grew. Sizes on disk come from
//! the files themselves; logical sizes, deduplication and compression from
//! the index; the per-run figures from each run's record.

use std::path::{Path, PathBuf};

use robovault_store::{BlobKind, NodeKind};

use crate::repository::local::Repository;
use crate::repository::options::RepositoryOptions;
use crate::summary::{Counts, RunError};
use crate::{Error, Result};

/// One run of a series, as `stats` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunStats {
    /// The snapshot id.
    pub snapshot: String,
    /// Its sequence number in the series.
    pub seq: u64,
    /// Start, nanoseconds since the epoch.
    pub started_ns: i64,
    /// Wall time of the run, seconds.
    pub duration_secs: f64,
    /// Its exit code.
    pub exit_code: u32,
    /// Whether some entry failed.
    pub partial: bool,
    /// Regular files in the snapshot.
    pub files: u64,
    /// Their bytes: what a full restore writes.
    pub bytes: u64,
    /// Content bytes this run stored for the first time, before compression.
    pub new_data: u64,
    /// Files copied by the run.
    pub files_copied: u64,
    /// Entries (files and directories) that failed.
    pub failed: u64,
}

/// One series.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeriesStats {
    /// Its name.
    pub name: String,
    /// Every run, oldest first.
    pub runs: Vec<RunStats>,
    /// The failures of the latest run.
    pub latest_failures: Vec<RunError>,
}

/// What `stats` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatsSummary {
    /// The repository.
    pub repository: PathBuf,
    /// Bytes of every file in the repository directory.
    pub disk_bytes: u64,
    /// Packs and their bytes.
    pub packs: u64,
    /// Bytes in packs.
    pub pack_bytes: u64,
    /// Unique content chunks.
    pub data_blobs: u64,
    /// Their bytes before compression.
    pub data_raw: u64,
    /// Their bytes as stored.
    pub data_stored: u64,
    /// Tree blobs.
    pub tree_blobs: u64,
    /// Their bytes as stored.
    pub tree_stored: u64,
    /// Content before compression over content stored (1 when empty).
    pub compression_ratio: f64,
    /// The bytes of every file of every snapshot over the unique content
    /// before compression (1 when empty): what deduplication saves.
    pub dedup_ratio: f64,
    /// The series reported.
    pub series: Vec<SeriesStats>,
}

/// Reports on a repository, one series or all.
///
/// # Errors
/// An unreadable repository or an unknown series.
pub fn stats(repo: &RepositoryOptions, series: Option<&str>) -> Result<StatsSummary> {
    let repo = Repository::open(repo)?;
    let index = repo.index()?;
    let all = index.all_series()?;
    if let Some(name) = series {
        if !all.iter().any(|s| s.name == name) {
            return Err(Error::UnknownSeries(name.to_owned()));
        }
    }
    let data = index.blob_totals(BlobKind::Data.code())?;
    let trees = index.blob_totals(BlobKind::Tree.code())?;
    let (packs, pack_bytes) = index.pack_totals()?;
    let mut logical_all = 0u64;
    let mut out = Vec::new();
    for s in &all {
        let sizes = index.logical_sizes(s.key, NodeKind::File.code())?;
        logical_all += sizes.iter().map(|(_, _, b)| b).sum::<u64>();
        if series.is_some_and(|n| n != s.name) {
            continue;
        }
        let snaps = index.snapshots(Some(s.key))?;
        let mut runs = Vec::with_capacity(snaps.len());
        for snap in &snaps {
            let (files, bytes) = sizes
                .iter()
                .find(|(k, _, _)| *k == snap.key)
                .map_or((0, 0), |(_, f, b)| (*f, *b));
            let counts = Counts::from(snap.counts);
            runs.push(RunStats {
                snapshot: snap.snap_id.clone(),
                seq: snap.seq,
                started_ns: snap.started_ns,
                duration_secs: (snap.ended_ns - snap.started_ns).max(0) as f64 / 1e9,
                exit_code: snap.exit_code,
                partial: snap.partial,
                files,
                bytes,
                new_data: snap.new_data,
                files_copied: counts.files.copied,
                failed: counts.files.failed + counts.dirs.failed,
            });
        }
        let latest_failures = match snaps.last() {
            Some(last) => index.run_errors(last.key)?.into_iter().map(RunError::from).collect(),
            None => Vec::new(),
        };
        out.push(SeriesStats {
            name: s.name.clone(),
            runs,
            latest_failures,
        });
    }
    // A remote repository's disk is the store's: its packs (the cache is ours).
    let local = if repo.remote().is_some() {
        None
    } else {
        Some(repo.path())
    };
    let disk_bytes = walkdir::WalkDir::new(local.unwrap_or(Path::new("/nonexistent")))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    Ok(StatsSummary {
        repository: repo.location(),
        disk_bytes: if local.is_some() { disk_bytes } else { pack_bytes },
        packs,
        pack_bytes,
        data_blobs: data.count,
        data_raw: data.raw,
        data_stored: data.stored,
        tree_blobs: trees.count,
        tree_stored: trees.stored,
        compression_ratio: ratio(data.raw, data.stored),
        dedup_ratio: ratio(logical_all, data.raw),
        series: out,
    })
}

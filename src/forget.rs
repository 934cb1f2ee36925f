//! Forget: drop snapshots by keep rules (restic's semantics) or by id. A
//! forgotten snapshot leaves the index in one transaction, after a deletion
//! marker is in the store (so `repair index` never brings it back); `gc`
//! reclaims the space later. Deciding is [`forget_plan`], a [`ForgetPlan`]
//! that changes nothing and is all `--dry-run` reports; acting is
//! [`ForgetPlan::execute`].

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Timelike};
use robovault_index::{SeriesKey, SnapshotRecord};
use robovault_store::ObjectKind;

use crate::browse::snapshot_by_prefix;
use crate::repository::local::Repository;
use crate::repository::options::RepositoryOptions;
use crate::{Error, Result};

/// Keep rules; 0 means the rule is not used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeepPolicy {
    /// The newest N.
    pub last: u32,
    /// The newest of each of the last N hours that have snapshots.
    pub hourly: u32,
    /// … days.
    pub daily: u32,
    /// … ISO weeks.
    pub weekly: u32,
    /// … months.
    pub monthly: u32,
    /// … years.
    pub yearly: u32,
    /// Everything started within this long before the newest snapshot.
    pub within: Option<Duration>,
}

impl KeepPolicy {
    /// True when no rule is set.
    pub fn is_empty(&self) -> bool {
        *self == KeepPolicy::default()
    }
}

/// How `forget` runs.
#[derive(Debug, Clone, Default)]
pub struct ForgetOptions {
    /// Only this series (default: every series).
    pub series: Option<String>,
    /// The keep rules.
    pub policy: KeepPolicy,
    /// Drop exactly this snapshot instead of applying rules.
    pub snapshot: Option<String>,
    /// Show the decisions without changing anything.
    pub dry_run: bool,
    /// How long to wait for another writer.
    pub lock_wait: Duration,
}

/// The decision on one snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    /// The snapshot id.
    pub snapshot: String,
    /// Its start, ns since the epoch.
    pub started_ns: i64,
    /// Kept or forgotten.
    pub keep: bool,
    /// The rules that keep it (`last`, `hourly`, …, `within`, `newest`).
    pub reasons: Vec<&'static str>,
}

/// What `forget` decided (and did, unless a dry run).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ForgetSummary {
    /// Per series, oldest snapshot first.
    pub series: BTreeMap<String, Vec<Decision>>,
    /// Snapshots forgotten (or that would be).
    pub removed: u64,
    /// Version rows no remaining snapshot needs, deleted.
    pub versions_deleted: u64,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// Applies the keep rules to one series' snapshots (oldest first); `tz`
/// decides where hours, days, weeks, months and years begin.
pub fn apply_policy<Tz: TimeZone>(
    snaps: &[SnapshotRecord],
    policy: &KeepPolicy,
    tz: &Tz,
) -> Vec<(bool, Vec<&'static str>)> {
    let mut out = vec![(false, Vec::new()); snaps.len()];
    let newest_ns = snaps.iter().map(|s| s.started_ns).max().unwrap_or(0);
    type Bucket = fn(&DateTime<chrono::FixedOffset>) -> (i32, u32, u32, u32);
    let rules: [(&'static str, u32, Bucket); 5] = [
        ("hourly", policy.hourly, |t| (t.year(), t.month(), t.day(), t.hour())),
        ("daily", policy.daily, |t| (t.year(), t.month(), t.day(), 0)),
        ("weekly", policy.weekly, |t| {
            (t.iso_week().year(), t.iso_week().week(), 0, 0)
        }),
        ("monthly", policy.monthly, |t| (t.year(), t.month(), 0, 0)),
        ("yearly", policy.yearly, |t| (t.year(), 0, 0, 0)),
    ];
    let mut remaining: Vec<u32> = rules.iter().map(|r| r.1).collect();
    let mut last_bucket: Vec<Option<(i32, u32, u32, u32)>> = vec![None; rules.len()];
    // Newest first, ties broken by sequence.
    let mut order: Vec<usize> = (0..snaps.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((snaps[i].started_ns, snaps[i].seq)));
    for (rank, &i) in order.iter().enumerate() {
        let s = &snaps[i];
        let t = tz.timestamp_nanos(s.started_ns).fixed_offset();
        let reasons = &mut out[i].1;
        if (rank as u32) < policy.last {
            reasons.push("last");
        }
        for (k, (name, _, bucket)) in rules.iter().enumerate() {
            let b = bucket(&t);
            if remaining[k] > 0 && last_bucket[k] != Some(b) {
                reasons.push(name);
                last_bucket[k] = Some(b);
                remaining[k] -= 1;
            }
        }
        if let Some(within) = policy.within {
            let within_ns = i64::try_from(within.as_nanos()).unwrap_or(i64::MAX);
            if newest_ns.saturating_sub(s.started_ns) <= within_ns {
                reasons.push("within");
            }
        }
        if rank == 0 && reasons.is_empty() {
            reasons.push("newest");
        }
        out[i].0 = !reasons.is_empty();
    }
    out
}

/// What a forget decided, before it changes anything: the decision on each
/// snapshot of the chosen series, and the snapshots that go. `--dry-run`
/// reports it ([`ForgetPlan::summary`]); a real run carries it out
/// ([`ForgetPlan::execute`]).
#[derive(Debug, Clone, Default)]
pub struct ForgetPlan {
    /// Per series, oldest snapshot first.
    series: BTreeMap<String, Vec<Decision>>,
    /// The snapshots to forget, with their series.
    doomed: Vec<(SeriesKey, SnapshotRecord)>,
}

/// Forgets snapshots of the repository `repo`.
///
/// # Errors
/// [`Error::Usage`] when neither rules nor a snapshot are given; lock, store
/// and index errors.
pub fn forget(repo: &RepositoryOptions, opts: &ForgetOptions) -> Result<ForgetSummary> {
    if opts.policy.is_empty() && opts.snapshot.is_none() {
        return Err(Error::Usage(
            "give at least one --keep-* rule, or --snapshot ID; forget never removes everything".into(),
        ));
    }
    let repo = Repository::open(repo)?;
    let _lock = if opts.dry_run {
        None
    } else {
        let lock = repo.lock_writer(opts.lock_wait)?;
        repo.heal()?;
        Some(lock)
    };
    let plan = forget_plan(&repo, opts)?;
    if opts.dry_run || plan.doomed.is_empty() {
        return Ok(plan.summary(opts.dry_run));
    }
    plan.execute(&repo)
}

/// Decides which snapshots of `repo` a forget keeps, by which rule, and which
/// it removes, changing nothing. A real run holds the writer lock
/// ([`Repository::lock_writer`]) until the plan is executed.
///
/// # Errors
/// [`Error::UnknownSeries`], an unknown or ambiguous snapshot id; index
/// errors.
pub fn forget_plan(repo: &Repository, opts: &ForgetOptions) -> Result<ForgetPlan> {
    let index = repo.index()?;
    let all = index.all_series()?;
    let chosen: Vec<_> = match &opts.series {
        Some(name) => vec![all
            .iter()
            .find(|s| &s.name == name)
            .cloned()
            .ok_or_else(|| Error::UnknownSeries(name.clone()))?],
        None => all,
    };
    let target = match &opts.snapshot {
        Some(id) => Some(snapshot_by_prefix(repo, id)?),
        None => None,
    };
    let mut plan = ForgetPlan::default();
    for s in &chosen {
        let snaps = index.snapshots(Some(s.key))?;
        if snaps.is_empty() {
            continue;
        }
        let mut list = Vec::new();
        for (snap, (keep, reasons)) in snaps.iter().zip(decide(&snaps, target.as_ref(), &opts.policy)) {
            if !keep {
                plan.doomed.push((s.key, snap.clone()));
            }
            list.push(Decision {
                snapshot: snap.snap_id.clone(),
                started_ns: snap.started_ns,
                keep,
                reasons,
            });
        }
        if target.as_ref().is_none_or(|t| snaps.iter().any(|x| x.key == t.key)) {
            plan.series.insert(s.name.clone(), list);
        }
    }
    Ok(plan)
}

/// The decision on each of one series' snapshots: with a `target`, every
/// snapshot but it is kept ("not chosen"); else the keep rules decide.
fn decide(
    snaps: &[SnapshotRecord],
    target: Option<&SnapshotRecord>,
    policy: &KeepPolicy,
) -> Vec<(bool, Vec<&'static str>)> {
    match target {
        Some(t) => snaps
            .iter()
            .map(|x| {
                if x.key == t.key {
                    (false, vec![])
                } else {
                    (true, vec!["not chosen"])
                }
            })
            .collect(),
        None => apply_policy(snaps, policy, &chrono::Local),
    }
}

impl ForgetPlan {
    /// The decisions, as a run reports them before (or without) executing;
    /// `dry_run` says that nothing will be changed.
    pub fn summary(&self, dry_run: bool) -> ForgetSummary {
        ForgetSummary {
            series: self.series.clone(),
            removed: self.doomed.len() as u64,
            versions_deleted: 0,
            dry_run,
        }
    }

    /// Forgets the doomed snapshots of `repo` (the one the plan was computed
    /// on, under the same writer lock): markers first, then one index
    /// transaction.
    ///
    /// # Errors
    /// Store and index errors.
    pub fn execute(self, repo: &Repository) -> Result<ForgetSummary> {
        let mut summary = self.summary(false);
        // FORMAT.md invariant 7: markers first. A crash after them and before
        // the commit leaves a snapshot the index still lists but repair would
        // drop, never the reverse.
        let now = repo.clock().now().to_rfc3339();
        for (_, snap) in &self.doomed {
            let marker = serde_json::json!({"version": 1, "snapshot": snap.snap_id, "forgotten": now});
            let id = robovault_store::SnapshotId::from_hex(&snap.snap_id)?;
            let sealed = repo.store().sealing().seal_object(
                robovault_store::crypto::Purpose::Marker,
                &id.0,
                format!("{marker}\n").as_bytes(),
            )?;
            match repo
                .store()
                .backend()
                .write_new(ObjectKind::Marker, &snap.snap_id, &sealed)
            {
                Ok(()) | Err(robovault_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut w = repo.index()?.writer()?;
        let mut series_touched = Vec::new();
        for (series, snap) in &self.doomed {
            w.delete_snapshot(snap.key)?;
            if !series_touched.contains(series) {
                series_touched.push(*series);
            }
        }
        for series in series_touched {
            summary.versions_deleted += w.prune_versions(series)?;
        }
        w.commit()?;
        crate::repository::remote::publish_index(repo, crate::repository::remote::Publish::IfDue)?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;
    use robovault_index::{Counts, Hash32, SeriesKey, SnapshotKey};

    fn snap(seq: u64, rfc3339: &str) -> SnapshotRecord {
        let t = DateTime::parse_from_rfc3339(rfc3339).unwrap();
        SnapshotRecord {
            key: SnapshotKey(seq as i64),
            snap_id: format!("{seq:064x}"),
            series: SeriesKey(1),
            seq,
            started_ns: t.timestamp_nanos_opt().unwrap(),
            ended_ns: 0,
            parent: None,
            root_tree: Hash32::default(),
            exit_code: 0,
            partial: false,
            counts: Counts::default(),
            new_data: 0,
            published: true,
        }
    }

    fn kept(snaps: &[SnapshotRecord], p: &KeepPolicy, tz: &FixedOffset) -> Vec<u64> {
        apply_policy(snaps, p, tz)
            .iter()
            .zip(snaps)
            .filter(|((k, _), _)| *k)
            .map(|(_, s)| s.seq)
            .collect()
    }

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[test]
    fn keep_last_keeps_the_newest_n() {
        let s: Vec<_> = (1..=5).map(|i| snap(i, &format!("2025-01-0{i}T02:00:00Z"))).collect();
        let p = KeepPolicy {
            last: 2,
            ..Default::default()
        };
        assert_eq!(kept(&s, &p, &utc()), vec![4, 5]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        let s = vec![
            snap(1, "2025-01-01T01:00:00Z"),
            snap(2, "2025-01-01T23:00:00Z"),
            snap(3, "2025-01-02T01:00:00Z"),
            snap(4, "2025-01-02T05:00:00Z"),
            snap(5, "2025-01-03T05:00:00Z"),
        ];
        let p = KeepPolicy {
            daily: 2,
            ..Default::default()
        };
        assert_eq!(kept(&s, &p, &utc()), vec![4, 5]);
        let p = KeepPolicy {
            daily: 10,
            ..Default::default()
        };
        assert_eq!(kept(&s, &p, &utc()), vec![2, 4, 5]);
    }

    #[test]
    fn days_begin_in_the_given_time_zone() {
        // 23:30 UTC on the 1st is already the 2nd at +01:00.
        let s = vec![snap(1, "2025-01-01T23:30:00Z"), snap(2, "2025-01-02T10:00:00Z")];
        let p = KeepPolicy {
            daily: 5,
            ..Default::default()
        };
        assert_eq!(kept(&s, &p, &utc()), vec![1, 2]);
        assert_eq!(kept(&s, &p, &FixedOffset::east_opt(3600).unwrap()), vec![2]);
    }

    #[test]
    fn weekly_uses_iso_weeks_and_monthly_months() {
        // 2024-12-30 (Mon) and 2025-01-05 (Sun) are both ISO week 2025-W01.
        let s = vec![
            snap(1, "2024-12-29T12:00:00Z"),
            snap(2, "2024-12-30T12:00:00Z"),
            snap(3, "2025-01-05T12:00:00Z"),
            snap(4, "2025-01-06T12:00:00Z"),
        ];
        let p = KeepPolicy {
            weekly: 10,
            ..Default::default()
        };
        assert_eq!(kept(&s, &p, &utc()), vec![1, 3, 4]);
        let p = KeepPolicy {
            monthly: 10,
            ..Default::default()
        };
        assert_eq!(kept(&s, &p, &utc()), vec![2, 4]);
        let p = KeepPolicy {
            yearly: 1,
            ..Default::default()
        };
        assert_eq!(kept(&s, &p, &utc()), vec![4]);
    }

    #[test]
    fn ties_and_the_newest_snapshot() {
        // Two snapshots in the same second: the higher sequence is newer.
        let s = vec![snap(1, "2025-01-01T00:00:00Z"), snap(2, "2025-01-01T00:00:00Z")];
        let p = KeepPolicy {
            last: 1,
            ..Default::default()
        };
        assert_eq!(kept(&s, &p, &utc()), vec![2]);
        // A rule that keeps nothing recent still keeps the newest.
        let p = KeepPolicy {
            within: Some(Duration::from_secs(0)),
            ..Default::default()
        };
        assert_eq!(kept(&s, &p, &utc()), vec![1, 2]);
        let s = vec![snap(1, "2020-01-01T00:00:00Z"), snap(2, "2025-01-01T00:00:00Z")];
        let p = KeepPolicy {
            within: Some(Duration::from_secs(86_400)),
            ..Default::default()
        };
        assert_eq!(kept(&s, &p, &utc()), vec![2]);
    }
}

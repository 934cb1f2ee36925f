//! `gc`: removes what no snapshot needs and repacks mostly-empty packs.

use anyhow::{Context, Result};
use serde_json::json;

use super::{parse_duration, write_line, write_out};
use crate::args::GcArgs;
use crate::{env, progress};

/// `5%` or `0.05`.
pub(super) fn parse_fraction(text: &str) -> Result<f64> {
    let bad = || anyhow::anyhow!("invalid --max-unused \"{text}\": use a percentage (5%) or a fraction (0.05)");
    let v = match text.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => text.trim().parse::<f64>().map_err(|_| bad())?,
    };
    if !(0.0..=1.0).contains(&v) {
        return Err(bad());
    }
    Ok(v)
}

pub(super) fn gc_text(g: &robovault::GcSummary) -> String {
    let condemned = if g.packs_condemned > 0 {
        format!(
            " ({} condemned: a gc after the grace period deletes them)",
            g.packs_condemned
        )
    } else {
        String::new()
    };
    let temporaries = match g.temporaries_removed {
        0 => String::new(),
        n => format!("; {n} temporary files of killed runs removed"),
    };
    format!(
        "{}{} packs: {} deleted, {} repacked{condemned}, {} orphans removed; {} unused blobs; {} bytes of packs freed, {} written; {} forgotten snapshot objects removed{temporaries}\n",
        if g.dry_run { "dry run: " } else { "" },
        g.packs,
        g.packs_deleted,
        g.packs_repacked,
        g.orphan_packs,
        g.blobs_removed,
        g.bytes_deleted,
        g.bytes_written,
        g.forgotten_objects_removed
    )
}

pub(super) fn gc(edge: &env::Edge, a: &GcArgs) -> Result<u32> {
    let opts = robovault::GcOptions {
        dry_run: a.dry_run,
        max_unused: parse_fraction(&a.max_unused)?,
        lock_wait: parse_duration(&a.lock_wait)?,
        grace: parse_duration(&a.grace)?,
    };
    let repo = edge.repository(&a.repo)?;
    let status = progress::Status::new("packs", !a.json && !a.no_progress);
    let g = match &status {
        Some(st) => robovault::gc_with(&repo, &opts, st),
        None => robovault::gc(&repo, &opts),
    }
    .with_context(|| format!("collecting garbage in {}", a.repo.display()))?;
    drop(status);
    if a.json {
        let mut v = serde_json::to_value(&g)?;
        v["command"] = json!("gc");
        write_line(&v)?;
    } else {
        write_out(gc_text(&g).as_bytes())?;
    }
    Ok(0)
}

//! `repair index`: rebuilds the index from the store alone.

use anyhow::{Context, Result};
use serde_json::json;

use super::{parse_duration, write_line, write_out};
use crate::env;

pub(super) fn repair(edge: &env::Edge, repo: &std::path::Path, lock_wait: &str, as_json: bool) -> Result<u32> {
    let s = robovault::repair_index(&edge.repository(repo)?, parse_duration(lock_wait)?)
        .with_context(|| format!("rebuilding the index of {}", repo.display()))?;
    if as_json {
        let mut v = serde_json::to_value(&s)?;
        v["command"] = json!("repair index");
        write_line(&v)?;
        return Ok(0);
    }
    let mut out = format!(
        "rebuilt the index from {} packs ({} blobs): {} snapshots in {} series; {} forgotten snapshots left out\n",
        s.packs, s.blobs, s.snapshots, s.series, s.forgotten
    );
    for p in &s.damaged_packs {
        out.push_str(&format!(
            "damaged pack {p}: its footer does not decode; its blobs are not indexed\n"
        ));
    }
    for p in &s.damaged_snapshots {
        out.push_str(&format!("damaged snapshot object {p}: left out\n"));
    }
    write_out(out.as_bytes())?;
    Ok(0)
}

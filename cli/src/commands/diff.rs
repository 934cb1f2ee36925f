//! `diff`: what changed between two snapshots.

use anyhow::Result;
use robovault::SnapshotChoice;

use super::{open, write_line, write_out};
use crate::args::DiffArgs;
use crate::env;

pub(super) fn diff(edge: &env::Edge, a: &DiffArgs) -> Result<u32> {
    let repo = open(edge, &a.repo)?;
    let pick = |id: &str| -> Result<robovault::SnapshotRecord> {
        let choice = if id == "latest" {
            SnapshotChoice::Latest
        } else {
            SnapshotChoice::Id(id.to_owned())
        };
        Ok(robovault::choose(&repo, None, &choice)?.1)
    };
    let (sa, sb) = (pick(&a.snap_a)?, pick(&a.snap_b)?);
    let changes = robovault::diff(&repo, &sa, &sb)?;
    if a.json {
        write_line(&serde_json::to_value(&changes)?)?;
    } else {
        let text: String = changes.iter().map(|c| format!("{} {}\n", c.marker, c.path)).collect();
        write_out(text.as_bytes())?;
    }
    Ok(0)
}

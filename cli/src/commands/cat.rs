//! `cat`: one file of a snapshot to standard output.

use anyhow::Result;

use super::open_snapshot;
use crate::args::CatArgs;
use crate::env;

pub(super) fn cat(edge: &env::Edge, a: &CatArgs) -> Result<u32> {
    let (repo, snap) = open_snapshot(edge, &a.repo, &a.snapshot)?;
    let mut out = std::io::stdout().lock();
    robovault::cat(&repo, &snap, a.path.as_bytes(), &mut out)?;
    Ok(0)
}

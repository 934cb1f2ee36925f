//! `ls`: the entries of a directory in a snapshot.

use anyhow::Result;

use super::{open_snapshot, write_line, write_out};
use crate::args::LsArgs;
use crate::env;
use crate::output::{ls_json, ls_lines};

pub(super) fn ls(edge: &env::Edge, a: &LsArgs) -> Result<u32> {
    let (repo, snap) = open_snapshot(edge, &a.repo, &a.snapshot)?;
    let path = a.path.as_deref().unwrap_or("");
    let nodes = robovault::ls(&repo, &snap, path.as_bytes())?;
    if a.json {
        write_line(&serde_json::Value::Array(nodes.iter().map(ls_json).collect()))?;
    } else {
        write_out(ls_lines(&nodes).as_bytes())?;
    }
    Ok(0)
}

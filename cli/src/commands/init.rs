//! `init`: creates a repository.

use std::path::Path;

use anyhow::{Context, Result};
use robovault::Repository;

use super::write_line;
use crate::env;

pub(super) fn init(edge: &env::Edge, repo: &Path) -> Result<u32> {
    let r =
        Repository::init(&edge.repository(repo)?).with_context(|| format!("creating repository {}", repo.display()))?;
    write_line(&format!(
        "created repository {} (id {})",
        r.location().display(),
        r.store().config().id
    ))?;
    Ok(0)
}

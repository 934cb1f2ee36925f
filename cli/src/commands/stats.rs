//! `stats`: what the repository holds per series, as text, JSON or an HTML
//! report.

use anyhow::{Context, Result};
use serde_json::json;

use super::{write_line, write_out};
use crate::{args, env, report};

pub(super) fn stats(edge: &env::Edge, a: &args::StatsArgs) -> Result<u32> {
    let s = robovault::stats(&edge.repository(&a.repo)?, a.series.as_deref())
        .with_context(|| format!("reading repository {}", a.repo.display()))?;
    if let Some(path) = &a.html {
        std::fs::write(path, report::html(&s)).with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        let mut v = serde_json::to_value(&s)?;
        v["command"] = json!("stats");
        write_line(&v)?;
    } else {
        write_out(report::text(&s).as_bytes())?;
        if let Some(path) = &a.html {
            write_line(&format!("wrote {}", path.display()))?;
        }
    }
    Ok(0)
}

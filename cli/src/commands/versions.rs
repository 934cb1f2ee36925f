//! `versions`: every distinct version of one path, with its date range.

use anyhow::Result;

use super::{open, write_line, write_out};
use crate::args::VersionsArgs;
use crate::env;
use crate::output::{version_json, version_line};

pub(super) fn versions(edge: &env::Edge, a: &VersionsArgs) -> Result<u32> {
    let repo = open(edge, &a.repo)?;
    let series = robovault::choose_series(&repo, a.series.as_deref())?;
    let spans = robovault::versions(&repo, &series, a.path.as_bytes())?;
    if a.json {
        let items: Vec<_> = spans.iter().map(|v| version_json(&v.from, &v.to, &v.entry)).collect();
        write_line(&serde_json::Value::Array(items))?;
    } else {
        let text: String = spans
            .iter()
            .map(|v| version_line(&v.from, &v.to, &v.entry) + "\n")
            .collect();
        write_out(text.as_bytes())?;
    }
    Ok(0)
}

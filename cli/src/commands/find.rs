//! `find`: paths matching a pattern in any snapshot, with the first and
//! last snapshot holding them.

use anyhow::Result;
use serde_json::json;

use super::{open, write_line, write_out};
use crate::args::FindArgs;
use crate::env;
use crate::output::rfc3339_full;

pub(super) fn find(edge: &env::Edge, a: &FindArgs) -> Result<u32> {
    let repo = open(edge, &a.repo)?;
    let hits = robovault::find(&repo, &a.pattern, a.series.as_deref())?;
    if a.json {
        let items: Vec<_> = hits
            .iter()
            .map(|h| {
                json!({"series": h.series, "path": h.path,
                       "first": {"snapshot": h.first, "started": rfc3339_full(h.first_started_ns)},
                       "last": {"snapshot": h.last, "started": rfc3339_full(h.last_started_ns)}})
            })
            .collect();
        write_line(&serde_json::Value::Array(items))?;
    } else {
        let text: String = hits
            .iter()
            .map(|h| format!("{}  {}  {}  {}\n", h.series, h.path, h.first, h.last))
            .collect();
        write_out(text.as_bytes())?;
    }
    Ok(0)
}

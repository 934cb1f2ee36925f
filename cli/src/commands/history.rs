//! `history`: the runs of each series with their counts, exit codes and
//! failures.

use anyhow::Result;
use robovault::display_bytes;

use super::{open, write_line, write_out};
use crate::args::HistoryArgs;
use crate::env;
use crate::output::{history_json, history_line};

pub(super) fn history(edge: &env::Edge, a: &HistoryArgs) -> Result<u32> {
    let repo = open(edge, &a.repo)?;
    let all = robovault::history(&repo, a.series.as_deref(), a.verbose)?;
    let repo_text = repo.location().display().to_string();
    if a.json {
        let items: Vec<_> = all
            .iter()
            .flat_map(|h| h.runs.iter().map(|(s, _)| history_json(&repo_text, &h.series.name, s)))
            .collect();
        write_line(&serde_json::Value::Array(items))?;
        return Ok(0);
    }
    let mut out = String::new();
    for h in &all {
        if a.series.is_none() {
            out.push_str(&format!("series {}\n", h.series.name));
        }
        for (s, errors) in &h.runs {
            out.push_str(&history_line(s));
            out.push('\n');
            for e in errors {
                // As on the log's ERROR line, no errno is no code.
                let code = match e.code {
                    0 => String::new(),
                    c => format!(" (error {c})"),
                };
                out.push_str(&format!(
                    "    FAILED  {}  {}  {}{code}  attempts={}\n",
                    display_bytes(&e.path),
                    e.action,
                    e.message,
                    e.attempts
                ));
            }
        }
    }
    write_out(out.as_bytes())?;
    Ok(0)
}

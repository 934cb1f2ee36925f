//! `forget`: the keep rules applied per series, with `--prune` running gc
//! after them.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use super::gc::{gc_text, parse_fraction};
use super::{parse_duration, write_line, write_out};
use crate::args::ForgetArgs;
use crate::env;
use crate::output::rfc3339_ns;

/// `1y2m3w4d5h`: years (365 days), months (30 days), weeks, days, hours.
fn parse_within(text: &str) -> Result<Duration> {
    let bad = || anyhow::anyhow!("invalid --keep-within \"{text}\": use e.g. 30d, 2w, 6m, 1y2m, 12h");
    if text.trim().starts_with('-') {
        anyhow::bail!("invalid --keep-within \"{text}\": a duration must not be negative");
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            'y' => 365 * 86_400,
            'm' => 30 * 86_400,
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3600,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

pub(super) fn forget(edge: &env::Edge, a: &ForgetArgs) -> Result<u32> {
    let opts = robovault::ForgetOptions {
        series: a.series.clone(),
        policy: robovault::KeepPolicy {
            last: a.keep_last,
            hourly: a.keep_hourly,
            daily: a.keep_daily,
            weekly: a.keep_weekly,
            monthly: a.keep_monthly,
            yearly: a.keep_yearly,
            within: a.keep_within.as_deref().map(parse_within).transpose()?,
        },
        snapshot: a.snapshot.clone(),
        dry_run: a.dry_run,
        lock_wait: parse_duration(&a.lock_wait)?,
    };
    let repo = edge.repository(&a.repo)?;
    let s = robovault::forget(&repo, &opts).with_context(|| format!("forgetting in {}", a.repo.display()))?;
    let pruned = if a.prune && !a.dry_run {
        Some(robovault::gc(
            &repo,
            &robovault::GcOptions {
                dry_run: false,
                max_unused: parse_fraction(&a.max_unused)?,
                lock_wait: opts.lock_wait,
                ..robovault::GcOptions::default()
            },
        )?)
    } else {
        None
    };
    if a.json {
        let mut v = serde_json::to_value(&s)?;
        v["command"] = json!("forget");
        if let Some(g) = &pruned {
            v["gc"] = serde_json::to_value(g)?;
        }
        write_line(&v)?;
        return Ok(0);
    }
    let mut out = String::new();
    for (series, decisions) in &s.series {
        out.push_str(&format!("series {series}\n"));
        for d in decisions {
            let verb = if d.keep {
                "keep  "
            } else if s.dry_run {
                "would remove"
            } else {
                "remove"
            };
            out.push_str(&format!("{verb}  {}  {}", d.snapshot, rfc3339_ns(d.started_ns)));
            if d.keep {
                out.push_str(&format!("  {}", d.reasons.join(", ")));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "{} snapshots {}\n",
        s.removed,
        if s.dry_run {
            "would be forgotten (dry run)"
        } else {
            "forgotten"
        }
    ));
    if let Some(g) = &pruned {
        out.push_str(&gc_text(g));
    }
    write_out(out.as_bytes())?;
    Ok(0)
}

//! `stats` as text with a compact growth chart, and as a self-contained HTML
//! report (inline CSS and SVG, no network, no script needed to read it).

use robovault::{display_bytes, RunStats, SeriesStats, StatsSummary};

use crate::output::{rfc3339_ns, summary_bytes};

/// The last runs a terminal chart shows.
const CHART_RUNS: usize = 30;
/// Width of a chart bar, in cells.
const BAR: usize = 30;

fn bar(v: u64, max: u64) -> String {
    if max == 0 {
        return String::new();
    }
    // Eighths of a cell: a small value still shows.
    let eighths = ((v as u128 * (BAR as u128 * 8)) / max as u128) as usize;
    let mut s = "█".repeat(eighths / 8);
    let rest = eighths % 8;
    if rest > 0 {
        s.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][rest - 1]);
    } else if v > 0 && eighths == 0 {
        s.push('▏');
    }
    s
}

/// The text report.
pub fn text(s: &StatsSummary) -> String {
    let mut out = format!("repository {}\n", s.repository.display());
    out.push_str(&format!(
        "  on disk        {}  ({} in {} packs)\n",
        summary_bytes(s.disk_bytes),
        summary_bytes(s.pack_bytes),
        s.packs
    ));
    out.push_str(&format!(
        "  unique data    {} in {} chunks, {} stored: compression {:.2}x\n",
        summary_bytes(s.data_raw),
        s.data_blobs,
        summary_bytes(s.data_stored),
        s.compression_ratio
    ));
    out.push_str(&format!(
        "  trees          {} in {} blobs\n",
        summary_bytes(s.tree_stored),
        s.tree_blobs
    ));
    out.push_str(&format!(
        "  deduplication  {:.2}x (every file of every snapshot over the unique data)\n",
        s.dedup_ratio
    ));
    for series in &s.series {
        out.push_str(&series_text(series));
    }
    out
}

fn series_text(s: &SeriesStats) -> String {
    let mut out = format!("series {}\n", s.name);
    let Some(last) = s.runs.last() else {
        out.push_str("  no runs\n");
        return out;
    };
    let total_new: u64 = s.runs.iter().map(|r| r.new_data).sum();
    out.push_str(&format!(
        "  latest         {}  {}  {} files, {}  exit={}{}\n",
        last.snapshot,
        rfc3339_ns(last.started_ns),
        last.files,
        summary_bytes(last.bytes),
        last.exit_code,
        if last.partial { "  partial" } else { "" }
    ));
    out.push_str(&format!(
        "  runs           {}, new data {} in all\n",
        s.runs.len(),
        summary_bytes(total_new)
    ));
    let shown = &s.runs[s.runs.len().saturating_sub(CHART_RUNS)..];
    let max_size = shown.iter().map(|r| r.bytes).max().unwrap_or(0);
    let max_new = shown.iter().map(|r| r.new_data).max().unwrap_or(0);
    out.push_str("  size of each snapshot | new data of each run\n");
    for r in shown {
        let day = rfc3339_ns(r.started_ns);
        out.push_str(&format!(
            "  {}  {:<w$} {:>9}  {:<w$} +{:>9}{}\n",
            &day[..16.min(day.len())],
            bar(r.bytes, max_size),
            summary_bytes(r.bytes),
            bar(r.new_data, max_new),
            summary_bytes(r.new_data),
            if r.failed > 0 {
                format!("  {} failed", r.failed)
            } else {
                String::new()
            },
            w = BAR + 1
        ));
    }
    out
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// An SVG bar chart of one value per run.
fn svg_chart(
    title: &str,
    runs: &[RunStats],
    value: impl Fn(&RunStats) -> f64,
    label: impl Fn(f64) -> String,
) -> String {
    let (w, h, pad) = (720.0, 160.0, 24.0);
    let max = runs.iter().map(&value).fold(0.0f64, f64::max);
    let n = runs.len().max(1) as f64;
    let slot = (w - 2.0 * pad) / n;
    let mut bars = String::new();
    for (i, r) in runs.iter().enumerate() {
        let v = value(r);
        let bh = if max > 0.0 { v / max * (h - 2.0 * pad) } else { 0.0 };
        let x = pad + i as f64 * slot;
        let class = if r.failed > 0 { "bar failed" } else { "bar" };
        bars.push_str(&format!(
            "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"><title>{} {}</title></rect>",
            h - pad - bh,
            (slot * 0.8).max(1.0),
            esc(&rfc3339_ns(r.started_ns)),
            esc(&label(v)),
        ));
    }
    format!(
        "<figure><figcaption>{} (max {})</figcaption><svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">\
         <line class=\"axis\" x1=\"{pad}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\"/>{bars}</svg></figure>\n",
        esc(title),
        esc(&label(max)),
        esc(title),
        y = h - pad,
        x2 = w - pad,
    )
}

/// The self-contained HTML report.
pub fn html(s: &StatsSummary) -> String {
    let mut body = String::new();
    body.push_str(&format!(
        "<h1>robovault report</h1>\n<p class=\"repo\">{}</p>\n<table class=\"totals\">\n\
         <tr><th>On disk</th><td>{}</td></tr>\n<tr><th>Packs</th><td>{} ({})</td></tr>\n\
         <tr><th>Unique data</th><td>{} raw, {} stored, compression {:.2}&times;</td></tr>\n\
         <tr><th>Deduplication</th><td>{:.2}&times;</td></tr>\n</table>\n",
        esc(&s.repository.display().to_string()),
        esc(&summary_bytes(s.disk_bytes)),
        s.packs,
        esc(&summary_bytes(s.pack_bytes)),
        esc(&summary_bytes(s.data_raw)),
        esc(&summary_bytes(s.data_stored)),
        s.compression_ratio,
        s.dedup_ratio
    ));
    for series in &s.series {
        body.push_str(&format!(
            "<section class=\"series\">\n<h2>Series {}</h2>\n",
            esc(&series.name)
        ));
        let runs = &series.runs;
        body.push_str(&svg_chart(
            "Size of each snapshot",
            runs,
            |r| r.bytes as f64,
            |v| summary_bytes(v as u64),
        ));
        body.push_str(&svg_chart(
            "New data of each run",
            runs,
            |r| r.new_data as f64,
            |v| summary_bytes(v as u64),
        ));
        body.push_str(&svg_chart(
            "Duration of each run",
            runs,
            |r| r.duration_secs,
            |v| format!("{v:.1} s"),
        ));
        body.push_str(&svg_chart(
            "Failures of each run",
            runs,
            |r| r.failed as f64,
            |v| format!("{v:.0}"),
        ));
        body.push_str(
            "<table class=\"runs\">\n<thead><tr><th>Snapshot</th><th>Started</th><th>Duration</th><th>Exit</th>\
             <th>Files</th><th>Size</th><th>Copied</th><th>New data</th><th>Failed</th></tr></thead>\n<tbody>\n",
        );
        for r in runs {
            body.push_str(&format!(
                "<tr class=\"run{}\"><td><code>{}</code></td><td>{}</td><td>{:.1} s</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                if r.failed > 0 { " failed" } else { "" },
                esc(&r.snapshot[..r.snapshot.len().min(12)]),
                esc(&rfc3339_ns(r.started_ns)),
                r.duration_secs,
                r.exit_code,
                r.files,
                esc(&summary_bytes(r.bytes)),
                r.files_copied,
                esc(&summary_bytes(r.new_data)),
                r.failed
            ));
        }
        body.push_str("</tbody>\n</table>\n");
        if series.latest_failures.is_empty() {
            body.push_str("<p class=\"ok\">The latest run had no failures.</p>\n");
        } else {
            body.push_str("<h3>Failures of the latest run</h3>\n<ul class=\"failures\">\n");
            for e in &series.latest_failures {
                body.push_str(&format!(
                    "<li><code>{}</code>: {} &mdash; {} (error {}, {} attempts)</li>\n",
                    esc(&display_bytes(&e.path)),
                    esc(&e.action),
                    esc(&e.message),
                    e.code,
                    e.attempts
                ));
            }
            body.push_str("</ul>\n");
        }
        body.push_str("</section>\n");
    }
    let runs: usize = s.series.iter().map(|x| x.runs.len()).sum();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>robovault report: {}</title>\n<style>{CSS}</style>\n</head>\n<body data-runs=\"{runs}\">\n{body}\
         <footer>robovault {}</footer>\n</body>\n</html>\n",
        esc(&s.repository.display().to_string()),
        env!("CARGO_PKG_VERSION")
    )
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.5em}table{border-collapse:collapse;margin:1em 0}\
th,td{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}\
td{font-variant-numeric:tabular-nums}tr.failed td{background:#fde8e8}\
figure{margin:1em 0}figcaption{font-weight:600}svg{width:100%;max-width:720px;height:auto;background:#fafafa}\
.bar{fill:#4a7bd0}.bar.failed{fill:#d04a4a}.axis{stroke:#999}.ok{color:#2a7a2a}\
footer{margin-top:2em;color:#888;font-size:.9em}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_and_show_small_values() {
        assert_eq!(bar(0, 10), "");
        assert_eq!(bar(10, 10).chars().count(), BAR);
        assert_eq!(bar(1, 1_000_000), "▏");
        assert_eq!(esc("<a & 'b'>"), "&lt;a &amp; &#39;b&#39;&gt;");
    }
}

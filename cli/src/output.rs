//! Turning engine results into text and JSON: the summary table and byte
//! formats of ROBOCOPY.md §6.4, history, ls and versions lines (§2), and the
//! JSON objects of §6.6.

use chrono::{DateTime, Local, TimeZone, Utc};
use robovault::{display_bytes, Counts, Row};
use robovault::{Entry, Node, NodeContent, NodeKind, SnapshotRecord};
use serde_json::{json, Value};

/// The 79-dash banner rule.
pub const BANNER: &str = "-------------------------------------------------------------------------------";
/// The 78-dash separator.
pub const RULE: &str = "------------------------------------------------------------------------------";

/// Bytes as the summary rows print them: under 1024 an integer, else scaled
/// by 1024 with `k` (1 decimal) or `m`, `g`, `t` (2 decimals), half-up.
pub fn summary_bytes(n: u64) -> String {
    scaled(n, |unit| if unit == 'k' { 1 } else { 2 })
}

fn scaled(n: u64, decimals: impl Fn(char) -> usize) -> String {
    if n < 1024 {
        return n.to_string();
    }
    let mut v = n as f64;
    let mut unit = ' ';
    for u in ['k', 'm', 'g', 't'] {
        if v < 1024.0 && unit != ' ' {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    let d = decimals(unit);
    let factor = 10f64.powi(d as i32);
    // Half-up, not banker's or float-formatting rounding.
    let rounded = (v * factor + 0.5).floor() / factor;
    format!("{rounded:.d$} {unit}")
}

/// `h:mm:ss`.
pub fn hms(secs: u64) -> String {
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `YYYY-MM-DD hh:mm:ss ±hh:mm`, local.
pub fn header_time(t: &DateTime<Utc>) -> String {
    t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

/// RFC 3339, local, to the second.
pub fn rfc3339_ns(ns: i64) -> String {
    Local.timestamp_nanos(ns).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// RFC 3339 with nanoseconds, local (JSON).
pub fn rfc3339_full(ns: i64) -> String {
    Local
        .timestamp_nanos(ns)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false)
}

/// An mtime (seconds, nanoseconds) as RFC 3339, local.
pub fn mtime_text(sec: i64, nsec: u32) -> String {
    match Local.timestamp_opt(sec, nsec) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
        }
        chrono::LocalResult::None => format!("@{sec}"),
    }
}

/// An mtime with nanoseconds (JSON).
pub fn mtime_full(sec: i64, nsec: u32) -> String {
    match Local.timestamp_opt(sec, nsec) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, false)
        }
        chrono::LocalResult::None => format!("@{sec}.{nsec:09}"),
    }
}

/// The times of the summary's Times row (§4.6).
#[derive(Debug, Clone, Copy, Default)]
pub struct Times {
    /// Wall time.
    pub total: f64,
    /// Reading and writing file data.
    pub copied: f64,
    /// Waiting between retries.
    pub failed: f64,
}

/// Sizes on file lines: under 1024 an integer, else scaled with 1 decimal
/// for every unit (§6.4); raw bytes under `--bytes`.
pub fn line_bytes(n: u64, raw: bool) -> String {
    if raw {
        return n.to_string();
    }
    scaled(n, |_| 1)
}

/// The summary block from its 78-dash rule to `Ended` (§6.4).
pub fn summary_table(
    counts: &Counts,
    times: Times,
    raw_bytes: bool,
    extension: &[(&str, String)],
    ended: &DateTime<Utc>,
) -> String {
    let mut out = String::new();
    out.push_str(RULE);
    out.push_str("\n\n");
    out.push_str("               Total    Copied   Skipped  Mismatch    FAILED    Extras\n");
    let row = |label: &str, r: &Row, fmt: &dyn Fn(u64) -> String| {
        let cells: String = r.columns().iter().map(|v| format!("{:>10}", fmt(*v))).collect();
        format!("{label:>8} :{cells}\n")
    };
    out.push_str(&row("Dirs", &counts.dirs, &|v| v.to_string()));
    out.push_str(&row("Files", &counts.files, &|v| v.to_string()));
    if raw_bytes {
        out.push_str(&row("Bytes", &counts.bytes, &|v| v.to_string()));
    } else {
        out.push_str(&row("Bytes", &counts.bytes, &summary_bytes));
    }
    let secs = |t: f64| t.max(0.0).round() as u64;
    let rest = (times.total - times.copied - times.failed).max(0.0);
    out.push_str(&format!(
        "{:>8} :{:>10}{:>10}{:>20}{:>10}{:>10}\n\n",
        "Times",
        hms(secs(times.total)),
        hms(secs(times.copied)),
        "",
        hms(secs(times.failed)),
        hms(secs(rest))
    ));
    let basis = if times.copied > 0.0 { times.copied } else { times.total };
    let basis = basis.max(0.001);
    let per_sec = (counts.bytes.copied as f64 / basis) as u64;
    let mb_min = counts.bytes.copied as f64 / basis * 60.0 / 1_048_576.0;
    out.push_str(&format!("{:>8} :{:>20} Bytes/sec.\n", "Speed", per_sec));
    out.push_str(&format!("{:>8} :{:>20.3} MegaBytes/min.\n", "Speed", mb_min));
    for (k, v) in extension {
        out.push_str(&format!("{k:>8} : {v}\n"));
    }
    out.push_str(&format!("{:>8} : {}\n", "Ended", header_time(ended)));
    out
}

/// `ls`'s mode string: type letter and `rwx` triplets with s/S/t/T.
pub fn mode_string(kind: NodeKind, mode: u32) -> String {
    let t = match kind {
        NodeKind::Dir => 'd',
        NodeKind::File => '-',
        NodeKind::Symlink => 'l',
        NodeKind::Fifo => 'p',
        NodeKind::CharDevice => 'c',
        NodeKind::BlockDevice => 'b',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let special = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (i, shift) in [6u32, 3, 0].iter().enumerate() {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let (flag, on, off) = special[i];
        let x = bits & 1 != 0;
        s.push(match (mode & flag != 0, x) {
            (true, true) => on,
            (true, false) => off,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// `file`, `dir`, `link` or `special`.
pub fn kind_word(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Dir => "dir",
        NodeKind::File => "file",
        NodeKind::Symlink => "link",
        _ => "special",
    }
}

/// `ls` lines: `<mode>  <size>  <mtime>  <name>`, sizes right-aligned.
pub fn ls_lines(nodes: &[Node]) -> String {
    let width = nodes.iter().map(|n| n.size.to_string().len()).max().unwrap_or(1);
    let mut out = String::new();
    for n in nodes {
        let mut name = display_bytes(&n.name);
        match (&n.kind, &n.content) {
            (NodeKind::Dir, _) => name.push('/'),
            (NodeKind::Symlink, NodeContent::Target(t)) => {
                name.push_str(" -> ");
                name.push_str(&display_bytes(t));
            }
            _ => {}
        }
        out.push_str(&format!(
            "{}  {:>width$}  {}  {}\n",
            mode_string(n.kind, n.mode),
            n.size,
            mtime_text(n.mtime_sec, n.mtime_nsec),
            name
        ));
    }
    out
}

/// One `ls --json` entry.
pub fn ls_json(n: &Node) -> Value {
    let mut v = json!({
        "name": display_bytes(&n.name),
        "kind": kind_word(n.kind),
        "type": format!("{:?}", n.kind).to_lowercase(),
        "mode": format!("{:04o}", n.mode),
        "mode_string": mode_string(n.kind, n.mode),
        "size": n.size,
        "mtime": mtime_full(n.mtime_sec, n.mtime_nsec),
        "uid": n.uid,
        "gid": n.gid,
        "user": display_bytes(&n.user),
        "group": display_bytes(&n.group),
    });
    if let NodeContent::Target(t) = &n.content {
        v["target"] = json!(display_bytes(t));
    }
    v
}

fn row_text(r: &Row) -> String {
    r.columns().iter().map(|v| v.to_string()).collect::<Vec<_>>().join("/")
}

/// A `history` line (§2).
pub fn history_line(s: &SnapshotRecord) -> String {
    let counts = Counts::from(s.counts);
    let mut line = format!(
        "{}  {}  exit={}  dirs={}  files={}  bytes={}",
        s.snap_id,
        rfc3339_ns(s.started_ns),
        s.exit_code,
        row_text(&counts.dirs),
        row_text(&counts.files),
        row_text(&counts.bytes)
    );
    if s.partial {
        line.push_str("  partial");
    }
    line
}

fn row_json(r: &Row) -> Value {
    // Plain numbers: serializing them cannot fail.
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// A §6.6 object for a committed run, as `history --json` prints it.
pub fn history_json(repo: &str, series: &str, s: &SnapshotRecord) -> Value {
    let (dirs, files, bytes) = counts_json(&Counts::from(s.counts));
    json!({
        "command": "backup",
        "repository": repo,
        "series": series,
        "snapshot": s.snap_id,
        "parent": s.parent,
        "started": rfc3339_full(s.started_ns),
        "ended": rfc3339_full(s.ended_ns),
        "exit_code": s.exit_code,
        "partial": s.partial,
        "list_only": false,
        "dirs": dirs,
        "files": files,
        "bytes": bytes,
        "new_data": s.new_data,
    })
}

/// A `versions` line (§2).
pub fn version_line(from: &SnapshotRecord, to: &SnapshotRecord, e: &Entry) -> String {
    let kind = NodeKind::from_code(e.kind).map_or("special", kind_word);
    format!(
        "{}  {}  {}  {}  {}  {}  {}  {:04o}",
        from.snap_id,
        rfc3339_ns(from.started_ns),
        to.snap_id,
        rfc3339_ns(to.started_ns),
        kind,
        e.size,
        mtime_text(e.mtime_sec, e.mtime_nsec),
        e.mode
    )
}

/// One `versions --json` element.
pub fn version_json(from: &SnapshotRecord, to: &SnapshotRecord, e: &Entry) -> Value {
    let kind = NodeKind::from_code(e.kind).map_or("special", kind_word);
    json!({
        "from": {"snapshot": from.snap_id, "started": rfc3339_full(from.started_ns)},
        "to": {"snapshot": to.snap_id, "started": rfc3339_full(to.started_ns)},
        "kind": kind,
        "size": e.size,
        "mtime": mtime_full(e.mtime_sec, e.mtime_nsec),
        "mode": format!("{:04o}", e.mode),
        "uid": e.uid,
        "gid": e.gid,
    })
}

/// The Dirs/Files/Bytes members of §6.6.
pub fn counts_json(c: &Counts) -> (Value, Value, Value) {
    (row_json(&c.dirs), row_json(&c.files), row_json(&c.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_formats_follow_the_summary_rules() {
        assert_eq!(summary_bytes(0), "0");
        assert_eq!(summary_bytes(1023), "1023");
        assert_eq!(summary_bytes(1024), "1.0 k");
        assert_eq!(summary_bytes(7578), "7.4 k");
        assert_eq!(summary_bytes(1536 * 1024), "1.50 m");
        assert_eq!(summary_bytes(3 * 1024 * 1024 * 1024), "3.00 g");
        // 1.25 k rounds half-up to 1.3 k, not to even.
        assert_eq!(summary_bytes(1280), "1.3 k");
    }

    #[test]
    fn mode_strings() {
        assert_eq!(mode_string(NodeKind::File, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(NodeKind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(NodeKind::File, 0o4644), "-rwSr--r--");
    }

    #[test]
    fn times_are_h_mm_ss() {
        assert_eq!(hms(3725), "1:02:05");
    }
}

//! `verify`: the repository's structure and, when asked, its data, with
//! what a damaged object costs and how to recover.

use anyhow::{Context, Result};
use serde_json::json;

use super::{write_line, write_out};
use crate::args::VerifyArgs;
use crate::{env, progress};

fn read_data_spec(a: &VerifyArgs) -> Result<robovault::ReadData> {
    use robovault::ReadData;
    if a.read_data {
        return Ok(ReadData::All);
    }
    let Some(spec) = a.read_data_subset.as_deref() else {
        return Ok(ReadData::None);
    };
    let bad = || anyhow::anyhow!("invalid --read-data-subset \"{spec}\": use n/m (1 <= n <= m) or p% (0 < p <= 100)");
    if let Some(p) = spec.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(bad());
        }
        return Ok(ReadData::Percent(p));
    }
    let (n, m) = spec.split_once('/').ok_or_else(bad)?;
    let (n, m): (u32, u32) = (
        n.trim().parse().map_err(|_| bad())?,
        m.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || m == 0 || n > m {
        return Err(bad());
    }
    Ok(ReadData::Part { n, m })
}

pub(super) fn verify(edge: &env::Edge, a: &VerifyArgs) -> Result<u32> {
    let read = read_data_spec(a)?;
    let repo = edge.repository(&a.repo)?;
    let status = progress::Status::new("packs", !a.json && !a.no_progress);
    let s = match &status {
        Some(st) => robovault::verify_with(&repo, read, st),
        None => robovault::verify(&repo, read),
    }
    .with_context(|| format!("verifying repository {}", a.repo.display()))?;
    drop(status);
    let code = if s.problems.is_empty() { 0 } else { 8 };
    if a.json {
        let mut v = serde_json::to_value(&s)?;
        v["command"] = json!("verify");
        v["repository"] = json!(a.repo.display().to_string());
        v["exit_code"] = json!(code);
        write_line(&v)?;
        return Ok(code);
    }
    let mut out = String::new();
    for p in &s.problems {
        out.push_str(&format!("damaged {}: {}\n", p.object, p.message));
        if !p.snapshots.is_empty() {
            out.push_str(&format!("    snapshots: {}\n", p.snapshots.join(" ")));
        }
        for path in &p.paths {
            out.push_str(&format!("    path: {path}\n"));
        }
    }
    if s.problems
        .iter()
        .any(|p| p.object.starts_with("pack ") || p.object.starts_with("blob "))
    {
        out.push_str(
            "To recover: run robovault backup again while the files are still on the source, so that \
             their content is stored again; the paths listed stay lost in the snapshots listed, every \
             other path restores as usual\n",
        );
    }
    for p in &s.unreferenced_packs {
        out.push_str(&format!(
            "note: pack {p} is not referenced by the index (left by an interrupted run)\n"
        ));
    }
    out.push_str(&format!(
        "checked {} packs ({} read, {} bytes, {} blobs re-hashed), {} snapshots, {} trees: {}\n",
        s.packs,
        s.packs_read,
        s.bytes_read,
        s.blobs_read,
        s.snapshots,
        s.trees,
        if s.problems.is_empty() {
            "no damage found".to_owned()
        } else {
            format!("{} problems found", s.problems.len())
        }
    ));
    write_out(out.as_bytes())?;
    Ok(code)
}

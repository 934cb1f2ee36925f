//! Seeds for the fuzz corpora, taken from a real repository: `seeds REPO OUT`
//! copies its config, snapshot objects and small packs, and writes every
//! blob of those packs in the `blob` target's layout and every tree blob's
//! content, into `OUT/<target>/`. run.sh makes the repository with the
//! robovault binary first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use robovault_store::{decode_blob, pack, BlobKind, Compression, PackId};

/// Packs larger than this are left out: libFuzzer works best on small inputs.
const MAX_SEED: usize = 64 << 10;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [repo, out] = args.as_slice() else {
        eprintln!("usage: seeds REPO OUT");
        return ExitCode::from(2);
    };
    match run(repo, out) {
        Ok(n) => {
            println!("{n} seeds written under {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seeds: {e}");
            ExitCode::FAILURE
        }
    }
}

fn put(out: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in walk(dir)? {
        if entry.is_file() {
            out.push(entry);
        }
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

fn run(repo: &Path, out: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    let mut n = 0;
    put(out, "config", "config", &std::fs::read(repo.join("config"))?)?;
    n += 1;
    for f in files(&repo.join("snapshots"))? {
        let name = f
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        put(out, "snapshot", &name, &std::fs::read(&f)?)?;
        n += 1;
    }
    put(
        out,
        "lock",
        "holder",
        b"pid 4242 on host fs01 since 2025-01-07 02:00:00 +01:00\n",
    )?;
    n += 1;
    for f in files(&repo.join("packs"))? {
        let bytes = std::fs::read(&f)?;
        if bytes.len() > MAX_SEED {
            continue;
        }
        let name = f
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Temporary files of an interrupted write are not packs.
        let Ok(id) = PackId::from_hex(&name) else { continue };
        put(out, "pack", &name, &bytes)?;
        n += 1;
        for e in pack::parse_pack(&id, &bytes)? {
            let stored = &bytes[e.offset as usize..(e.offset + u64::from(e.stored_len)) as usize];
            let mut seed = vec![u8::from(e.compression == Compression::Zstd)];
            seed.extend_from_slice(&e.raw_len.to_le_bytes());
            seed.extend_from_slice(stored);
            put(out, "blob", &e.id.to_hex(), &seed)?;
            n += 1;
            if e.kind == BlobKind::Tree {
                put(
                    out,
                    "tree",
                    &e.id.to_hex(),
                    &decode_blob(&e.id, &e.location(id), stored)?,
                )?;
                n += 1;
            }
        }
    }
    Ok(n)
}

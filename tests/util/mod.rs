//! Shared test helpers: building trees, describing a tree for comparison, and
//! small filesystem utilities.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What a comparison of two trees looks at, per entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub kind: &'static str,
    pub mode: u32,
    pub mtime: (i64, i64),
    pub content: Vec<u8>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Every entry below `root` (relative path → description), the root's own
/// mode and mtime included under "".
pub fn describe(root: &Path) -> BTreeMap<Vec<u8>, Described> {
    let mut out = BTreeMap::new();
    describe_into(root, root, &mut out);
    out
}

fn describe_into(root: &Path, path: &Path, out: &mut BTreeMap<Vec<u8>, Described>) {
    let m = fs::symlink_metadata(path).unwrap();
    let rel = path.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
    let t = m.file_type();
    let (kind, content) = if t.is_dir() {
        ("dir", Vec::new())
    } else if t.is_file() {
        ("file", fs::read(path).unwrap())
    } else if t.is_symlink() {
        ("link", fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec())
    } else {
        ("special", m.rdev().to_le_bytes().to_vec())
    };
    let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = if t.is_symlink() {
        Vec::new()
    } else {
        xattr::list(path)
            .map(|names| {
                names
                    .filter(|n| n.as_bytes().starts_with(b"user."))
                    .map(|n| (n.as_bytes().to_vec(), xattr::get(path, &n).unwrap().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    };
    xattrs.sort();
    out.insert(
        rel,
        Described {
            kind,
            mode: if t.is_symlink() { 0 } else { m.mode() & 0o7777 },
            mtime: (m.mtime(), m.mtime_nsec()),
            content,
            xattrs,
        },
    );
    if t.is_dir() {
        let mut names: Vec<PathBuf> = fs::read_dir(path).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for p in names {
            describe_into(root, &p, out);
        }
    }
}

/// Asserts two trees are equal entry by entry, naming the first difference.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let da = describe(a);
    let db = describe(b);
    let ka: Vec<_> = da.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    let kb: Vec<_> = db.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    assert_eq!(ka, kb, "the trees hold different paths");
    for (k, va) in &da {
        let vb = &db[k];
        assert_eq!(va, vb, "entry {:?} differs", String::from_utf8_lossy(k));
    }
}

/// Sets a path's mtime (not following links) to (seconds, nanoseconds).
pub fn set_mtime(path: &Path, sec: i64, nsec: u32) {
    use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD};
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a file, creating parents.
pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, data).unwrap();
}

/// True when running in CI, where a missing prerequisite fails the test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

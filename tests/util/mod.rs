//! Shared test helpers of the engine and CLI tests: a temp directory with a
//! source and a repository, building trees, describing a tree for
//! comparison, and small filesystem utilities. Running the binary is in
//! `cli.rs`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
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
///
/// Walked with a work list on directory descriptors, not by recursion on
/// paths: a tree may be deeper than the stack allows and its paths longer
/// than `PATH_MAX`.
pub fn describe(root: &Path) -> BTreeMap<Vec<u8>, Described> {
    use rustix::fs::{AtFlags, CWD};
    let mut out = BTreeMap::new();
    let st = rustix::fs::statat(CWD, root, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    let root_fd = open_dir(None, root.as_os_str().as_bytes());
    out.insert(Vec::new(), describe_entry(&root_fd, b".", &st));
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return out;
    }
    let mut pending: Vec<Vec<u8>> = vec![Vec::new()];
    // The directory listed last: most often the parent of the next one.
    let mut last: Option<(Vec<u8>, rustix::fd::OwnedFd)> = None;
    while let Some(rel) = pending.pop() {
        let fd = match (&last, rel.iter().rposition(|c| *c == b'/')) {
            _ if rel.is_empty() => open_dir(Some(&root_fd), b"."),
            (Some((l, lfd)), Some(i)) if l[..] == rel[..i] => open_dir(Some(lfd), &rel[i + 1..]),
            _ => open_dir(Some(&root_fd), &rel),
        };
        let mut names: Vec<Vec<u8>> = rustix::fs::Dir::read_from(&fd)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_bytes().to_vec())
            .filter(|n| n != b"." && n != b"..")
            .collect();
        names.sort();
        let first_subdir = pending.len();
        for name in names {
            let st = rustix::fs::statat(&fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW).unwrap();
            let child = if rel.is_empty() {
                name.clone()
            } else {
                [&rel[..], b"/", &name[..]].concat()
            };
            let d = describe_entry(&fd, &name, &st);
            if d.kind == "dir" {
                pending.push(child.clone());
            }
            out.insert(child, d);
        }
        pending[first_subdir..].reverse();
        last = Some((rel, fd));
    }
    out
}

/// Opens directory `rel` below `dir` (or the current directory), in
/// pieces shorter than `PATH_MAX`.
fn open_dir(dir: Option<&rustix::fd::OwnedFd>, rel: &[u8]) -> rustix::fd::OwnedFd {
    use rustix::fs::{openat, Mode, OFlags, CWD};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut cur: Option<rustix::fd::OwnedFd> = None;
    let mut rest = rel;
    loop {
        let cut = if rest.len() > 3000 {
            rest[..3000].iter().rposition(|c| *c == b'/').unwrap()
        } else {
            rest.len()
        };
        let piece = if cut == 0 { &b"/"[..] } else { &rest[..cut] };
        let next = match (&cur, dir) {
            (Some(c), _) => openat(c, piece, flags, Mode::empty()),
            (None, Some(d)) => openat(d, piece, flags, Mode::empty()),
            (None, None) => openat(CWD, piece, flags, Mode::empty()),
        }
        .unwrap_or_else(|e| panic!("opening {:?}: {e}", String::from_utf8_lossy(piece)));
        cur = Some(next);
        if cut >= rest.len() {
            return cur.unwrap();
        }
        rest = &rest[cut + 1..];
    }
}

/// One entry `name` of directory `dir`, whose status is `st`. Content and
/// attributes are read through the directory's descriptor
/// (`/proc/self/fd/N/name`), never through a long path.
fn describe_entry(dir: &rustix::fd::OwnedFd, name: &[u8], st: &rustix::fs::Stat) -> Described {
    use rustix::fs::{FileType, Mode, OFlags};
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let via_fd = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(std::ffi::OsStr::from_bytes(name));
    let t = FileType::from_raw_mode(st.st_mode);
    let (kind, content) = match t {
        FileType::Directory => ("dir", Vec::new()),
        FileType::RegularFile => {
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap();
            let mut data = Vec::new();
            fs::File::from(fd).read_to_end(&mut data).unwrap();
            ("file", data)
        }
        FileType::Symlink => (
            "link",
            rustix::fs::readlinkat(dir, name, Vec::new()).unwrap().into_bytes(),
        ),
        #[allow(clippy::unnecessary_cast)]
        _ => ("special", (st.st_rdev as u64).to_le_bytes().to_vec()),
    };
    let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = if t == FileType::Symlink {
        Vec::new()
    } else {
        xattr::list(&via_fd)
            .map(|names| {
                names
                    .filter(|n| n.as_bytes().starts_with(b"user."))
                    .map(|n| {
                        (
                            n.as_bytes().to_vec(),
                            xattr::get(&via_fd, &n).unwrap().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    xattrs.sort();
    #[allow(clippy::unnecessary_cast)]
    Described {
        kind,
        mode: if t == FileType::Symlink {
            0
        } else {
            st.st_mode as u32 & 0o7777
        },
        mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
        content,
        xattrs,
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

/// Directory `name` below `at`, opened through the descriptor (a deep
/// tree's paths pass PATH_MAX), never following a link.
pub fn open_dir_at(at: &rustix::fd::OwnedFd, name: &str) -> rustix::fd::OwnedFd {
    use rustix::fs::{openat, Mode, OFlags};
    openat(
        at,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .unwrap()
}

/// The directory `levels` levels of `d` below `root`, opened one level at a
/// time (the path is too long for one call).
pub fn dir_below(root: &Path, levels: usize) -> rustix::fd::OwnedFd {
    use rustix::fs::{openat, Mode, OFlags, CWD};
    let mut fd = openat(CWD, root, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    for _ in 0..levels {
        fd = open_dir_at(&fd, "d");
    }
    fd
}

/// Writes file `name` in directory `dir` (mode 0644), through its descriptor.
pub fn write_at(dir: &rustix::fd::OwnedFd, name: &str, data: &[u8]) {
    use rustix::fs::{openat, Mode, OFlags};
    let f = openat(
        dir,
        name,
        OFlags::CREATE | OFlags::TRUNC | OFlags::WRONLY,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::io::write(&f, data).unwrap();
}

/// The options of the local repository at `path`, as the engine takes them.
#[allow(dead_code)]
pub fn at(path: &Path) -> robovault::RepositoryOptions {
    robovault::RepositoryOptions::local(path).expect("an absolute repository path")
}

/// A temp directory for a source tree (`src`) and a repository (`repo`),
/// removed when dropped.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn src(&self) -> PathBuf {
        self.path("src")
    }

    pub fn repo(&self) -> PathBuf {
        self.path("repo")
    }
}

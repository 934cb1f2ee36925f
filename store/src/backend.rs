//! Where objects live. A backend stores immutable objects keyed by (kind, name)
//! and does only what object stores do well: create-only writes, whole and
//! ranged reads, listing by kind, and deletes.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::{crash_point, Error, Result};

/// The kinds of object a repository holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// The repository config (one object, named `config`).
    Config,
    /// Pack files, named by their id in hex.
    Pack,
    /// Snapshot objects, named by their id in hex.
    Snapshot,
    /// Deletion markers of forgotten snapshots, named by the snapshot id.
    Marker,
    /// Copies of the index uploaded by remote repositories, named
    /// `TIMESTAMP-HOST-HASH` (FORMAT.md "Remote repositories").
    Index,
    /// Lists of packs a remote gc found unused, named like index copies;
    /// deleted by a later gc (FORMAT.md "Remote repositories").
    Condemned,
    /// Key files of an encrypted repository, named by the key id in hex.
    Key,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 7] = [
        ObjectKind::Config,
        ObjectKind::Pack,
        ObjectKind::Snapshot,
        ObjectKind::Marker,
        ObjectKind::Index,
        ObjectKind::Condemned,
        ObjectKind::Key,
    ];

    /// The directory below the repository's root that holds this kind
    /// (the config lies in the root itself: `""`).
    pub fn dir_name(self) -> &'static str {
        match self {
            ObjectKind::Config => "",
            ObjectKind::Pack => "packs",
            ObjectKind::Snapshot => "snapshots",
            ObjectKind::Marker => "deleted",
            ObjectKind::Index => "index",
            ObjectKind::Condemned => "condemned",
            ObjectKind::Key => "keys",
        }
    }

    /// A word for messages.
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Config => "config",
            ObjectKind::Pack => "pack",
            ObjectKind::Snapshot => "snapshot object",
            ObjectKind::Marker => "deletion marker",
            ObjectKind::Index => "index copy",
            ObjectKind::Condemned => "condemned-pack list",
            ObjectKind::Key => "key file",
        }
    }
}

/// When a delete may happen, as the backend's sharing model allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletes {
    /// At once: one writer lock covers every writer (a local directory).
    AtOnce,
    /// After a grace period: hosts write the store without a common lock,
    /// so what one host finds unused another may be reusing right now.
    /// gc condemns first and deletes a grace later (FORMAT.md "Remote
    /// repositories").
    AfterGrace,
}

/// What bounds reading: the disk, or the latency of one request each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// A read costs what the disk takes to serve it.
    Disk,
    /// A read is a request with a round trip: readers keep many in flight
    /// and fetch neighbouring blobs in one request.
    Requests,
}

/// Storage for repository objects.
///
/// Contract, for every implementation:
/// - `write_new` MUST be atomic and durable when it returns `Ok`: a reader sees
///   the whole object or nothing, and a crash after `Ok` keeps it. It MUST NOT
///   replace an existing object: it returns [`Error::AlreadyExists`] instead,
///   which for content-addressed objects means the same bytes are there.
/// - `read` and `read_range` return exactly the stored bytes or an error
///   naming the object; a range past the end is an error, never short data.
/// - `list` returns the names of every complete object of a kind, and never a
///   temporary one.
pub trait Backend: Send + Sync {
    /// A human-readable location, for messages.
    fn location(&self) -> String;
    /// When unused objects may be deleted.
    fn deletes(&self) -> Deletes {
        Deletes::AtOnce
    }
    /// What bounds a read.
    fn reads(&self) -> Reads {
        Reads::Disk
    }
    /// Names of all objects of `kind`.
    fn list(&self, kind: ObjectKind) -> Result<Vec<String>>;
    /// Names of all objects of `kind` with their last-modified time, where
    /// the backend knows it (remote gc spares young packs: they may belong
    /// to another host's run in progress).
    fn list_modified(&self, kind: ObjectKind) -> Result<Vec<(String, Option<std::time::SystemTime>)>> {
        Ok(self.list(kind)?.into_iter().map(|n| (n, None)).collect())
    }
    /// The whole object.
    fn read(&self, kind: ObjectKind, name: &str) -> Result<Vec<u8>>;
    /// `len` bytes starting at `offset`.
    fn read_range(&self, kind: ObjectKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// The object's size in bytes.
    fn size(&self, kind: ObjectKind, name: &str) -> Result<u64>;
    /// Whether the object exists.
    fn exists(&self, kind: ObjectKind, name: &str) -> Result<bool>;
    /// Creates the object atomically and durably (see the trait's contract).
    fn write_new(&self, kind: ObjectKind, name: &str, data: &[u8]) -> Result<()>;
    /// Removes the object; removing a missing object is not an error.
    fn delete(&self, kind: ObjectKind, name: &str) -> Result<()>;
    /// Starts an object of `kind` written piece by piece, for objects too
    /// large to hold in memory whose name is known only at the end (a pack's
    /// name is the hash of its bytes). Dropping the writer without
    /// [`ObjectWriter::commit`] leaves no object.
    fn create(&self, kind: ObjectKind) -> Result<Box<dyn ObjectWriter>>;
    /// Removes what killed writers left behind (temporary files) and returns
    /// how many. Only under the writer lock: a live writer's temporaries
    /// look the same. Object stores keep nothing of an unfinished write.
    fn remove_temporaries(&self) -> Result<u64> {
        Ok(0)
    }
}

/// An object being written; see [`Backend::create`].
pub trait ObjectWriter: Send {
    /// Appends bytes.
    fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Makes the bytes written the object `name`, with the guarantees of
    /// [`Backend::write_new`]: atomic, durable, never replacing an existing
    /// object ([`Error::AlreadyExists`] then).
    fn commit(self: Box<Self>, name: &str) -> Result<()>;
}

/// Objects as files under a local directory (FORMAT.md "Repository layout").
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// A backend over the repository directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into() }
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, kind: ObjectKind) -> PathBuf {
        match kind {
            ObjectKind::Config => self.root.clone(),
            _ => self.root.join(kind.dir_name()),
        }
    }

    /// The file of an object. Packs are sharded by the first two hex digits of
    /// their name, so no directory grows past a few thousand entries.
    pub fn path(&self, kind: ObjectKind, name: &str) -> PathBuf {
        match kind {
            ObjectKind::Pack => match name.get(..2) {
                Some(shard) if name.len() > 2 => self.dir(kind).join(shard).join(name),
                _ => self.dir(kind).join(name),
            },
            _ => self.dir(kind).join(name),
        }
    }

    /// Creates the top-level directories of a new repository.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory that could not be created.
    pub fn create_layout(&self) -> Result<()> {
        // keys/ only where there are keys: an unencrypted repository has none.
        for kind in ObjectKind::ALL
            .into_iter()
            .filter(|k| !matches!(k, ObjectKind::Config | ObjectKind::Key))
        {
            let dir = self.dir(kind);
            fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        }
        sync_dir(&self.root)
    }

    fn not_found(kind: ObjectKind, name: &str, path: &Path, e: std::io::Error, action: &'static str) -> Error {
        if e.kind() == ErrorKind::NotFound {
            Error::NotFound {
                kind: kind.noun(),
                name: name.to_owned(),
            }
        } else {
            Error::io(action, path, e)
        }
    }
}

/// Whether `name` can be an object of `kind`: objects are named by 64 hex
/// digits, index copies by letters, digits, `.`, `_` and `-`; temporary
/// files start with a dot, and anything else is not ours.
pub fn is_object_name(kind: ObjectKind, name: &str) -> bool {
    match kind {
        ObjectKind::Config => name == "config",
        ObjectKind::Index | ObjectKind::Condemned => {
            !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        }
        _ => name.len() == 64 && name.bytes().all(|c| c.is_ascii_hexdigit()),
    }
}

/// Makes a directory's entries (a rename, a new file) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self, kind: ObjectKind) -> Result<Vec<String>> {
        let dir = self.dir(kind);
        let mut out = Vec::new();
        let mut dirs = vec![dir.clone()];
        if kind == ObjectKind::Pack {
            dirs.clear();
            match fs::read_dir(&dir) {
                Ok(rd) => {
                    for e in rd {
                        let e = e.map_err(|e| Error::io("listing", &dir, e))?;
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            dirs.push(e.path());
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(Error::io("listing", &dir, e)),
            }
        }
        for d in dirs {
            let rd = match fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("listing", &d, e)),
            };
            for e in rd {
                let e = e.map_err(|e| Error::io("listing", &d, e))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if is_object_name(kind, &name) && e.file_type().is_ok_and(|t| t.is_file()) {
                    out.push(name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn read(&self, kind: ObjectKind, name: &str) -> Result<Vec<u8>> {
        let path = self.path(kind, name);
        fs::read(&path).map_err(|e| Self::not_found(kind, name, &path, e, "reading"))
    }

    fn read_range(&self, kind: ObjectKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let path = self.path(kind, name);
        let file = File::open(&path).map_err(|e| Self::not_found(kind, name, &path, e, "opening"))?;
        // The range comes from the index or a footer and may be damaged:
        // check it against the file before allocating a buffer for it.
        let size = file
            .metadata()
            .map_err(|e| Error::io("reading metadata of", &path, e))?
            .len();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::corrupt(
                format!("{} {name}", kind.noun()),
                format!("range {offset}+{len} lies past the end of the file ({size} bytes)"),
            ));
        }
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, offset).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                Error::corrupt(
                    format!("{} {name}", kind.noun()),
                    format!("range {offset}+{len} lies past the end of the file"),
                )
            } else {
                Error::io("reading", &path, e)
            }
        })?;
        Ok(buf)
    }

    fn size(&self, kind: ObjectKind, name: &str) -> Result<u64> {
        let path = self.path(kind, name);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| Self::not_found(kind, name, &path, e, "reading metadata of"))
    }

    fn exists(&self, kind: ObjectKind, name: &str) -> Result<bool> {
        let path = self.path(kind, name);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("reading metadata of", &path, e)),
        }
    }

    fn write_new(&self, kind: ObjectKind, name: &str, data: &[u8]) -> Result<()> {
        let mut w = self.create(kind)?;
        w.write(data)?;
        w.commit(name)
    }

    fn delete(&self, kind: ObjectKind, name: &str) -> Result<()> {
        let path = self.path(kind, name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("deleting", &path, e)),
        }
    }

    fn create(&self, kind: ObjectKind) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(self.create_local(kind)?))
    }

    fn remove_temporaries(&self) -> Result<u64> {
        let mut removed = 0;
        for kind in ObjectKind::ALL {
            let dir = self.dir(kind);
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("listing", &dir, e)),
            };
            for e in rd {
                let e = e.map_err(|e| Error::io("listing", &dir, e))?;
                if e.file_name().as_encoded_bytes().starts_with(TEMP_PREFIX.as_bytes()) {
                    let path = e.path();
                    fs::remove_file(&path).map_err(|e| Error::io("deleting", &path, e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// How temporary files start (a dot keeps them out of every listing).
const TEMP_PREFIX: &str = ".tmp-";

impl LocalBackend {
    fn create_local(&self, kind: ObjectKind) -> Result<LocalWriter> {
        // Temporary files live in the kind's top directory (for packs, beside
        // the shards), named with a leading dot so no listing sees them.
        let dir = self.dir(kind);
        if kind == ObjectKind::Key && !dir.is_dir() {
            // The first key file of a repository makes keys/ (durably: the
            // key file's own rename syncs only keys/ itself).
            fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
            sync_dir(&self.root)?;
        }
        let tmp = dir.join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io("creating", &tmp, e))?;
        Ok(LocalWriter {
            backend: self.clone(),
            kind,
            out: std::io::BufWriter::with_capacity(256 << 10, file),
            tmp,
            done: false,
        })
    }
}

/// A local object being written: a temporary file, renamed into place.
struct LocalWriter {
    backend: LocalBackend,
    kind: ObjectKind,
    out: std::io::BufWriter<File>,
    tmp: PathBuf,
    done: bool,
}

impl ObjectWriter for LocalWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.out.write_all(data).map_err(|e| Error::io("writing", &self.tmp, e))
    }

    fn commit(mut self: Box<Self>, name: &str) -> Result<()> {
        let path = self.backend.path(self.kind, name);
        let dir = path.parent().expect("object paths have a parent").to_path_buf();
        self.out.flush().map_err(|e| Error::io("writing", &self.tmp, e))?;
        // The content must be on disk before the name points at it.
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| Error::io("syncing", &self.tmp, e))?;
        if self.kind == ObjectKind::Pack {
            crash_point("pack-written");
        }
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
            // The new shard directory's entry lives in its parent.
            sync_dir(dir.parent().unwrap_or(self.backend.root()))?;
        }
        match rename_noreplace(&self.tmp, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists && !self.repairs(&path, name) => {
                return Err(Error::AlreadyExists {
                    kind: self.kind.noun(),
                    name: name.to_owned(),
                })
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                // The pack there is damaged and these bytes, which hash to
                // its name, are what it should hold: they replace it.
                fs::rename(&self.tmp, &path).map_err(|e| Error::io("renaming into place", &path, e))?;
            }
            Err(e) => return Err(Error::io("renaming into place", &path, e)),
        }
        self.done = true;
        // The rename itself must survive a crash.
        sync_dir(&dir)?;
        if self.kind == ObjectKind::Pack {
            crash_point("pack-renamed");
        }
        Ok(())
    }
}

impl LocalWriter {
    /// Whether the pack at `path` is a damaged copy that these bytes repair:
    /// a pack's name is the BLAKE3 of its bytes, so when the new bytes hash
    /// to `name` and the old ones do not, the old file can only be damaged
    /// (a truncated or overwritten pack that a later run writes again).
    /// Anything else that exists under the name is never replaced.
    fn repairs(&self, path: &Path, name: &str) -> bool {
        self.kind == ObjectKind::Pack
            && file_hash(&self.tmp).is_some_and(|h| h == name)
            && file_hash(path).is_some_and(|h| h != name)
    }
}

/// The BLAKE3 of a file's bytes in hex, or None when it cannot be read
/// (then nothing is replaced).
fn file_hash(path: &Path) -> Option<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(File::open(path).ok()?).ok()?;
    Some(hasher.finalize().to_hex().to_string())
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Renames without replacing an existing file (FORMAT.md invariant 1: a
/// pack never replaces another). Filesystems without
/// `RENAME_NOREPLACE` fall back to a check and a plain rename, which is safe
/// because objects are content-addressed and the writer lock excludes a
/// second writer.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::EXIST => Err(ErrorKind::AlreadyExists.into()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            if to.exists() {
                Err(ErrorKind::AlreadyExists.into())
            } else {
                fs::rename(from, to)
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_new_is_create_only_and_lists_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create_layout().unwrap();
        let name = "ab".repeat(32);
        b.write_new(ObjectKind::Pack, &name, b"hello").unwrap();
        assert!(matches!(
            b.write_new(ObjectKind::Pack, &name, b"other"),
            Err(Error::AlreadyExists { .. })
        ));
        assert_eq!(b.read(ObjectKind::Pack, &name).unwrap(), b"hello");
        assert_eq!(b.read_range(ObjectKind::Pack, &name, 1, 3).unwrap(), b"ell");
        assert!(b.read_range(ObjectKind::Pack, &name, 3, 3).is_err());
        fs::write(b.path(ObjectKind::Pack, &name).with_file_name(".tmp-x"), b"").unwrap();
        assert_eq!(b.list(ObjectKind::Pack).unwrap(), vec![name.clone()]);
        b.delete(ObjectKind::Pack, &name).unwrap();
        assert!(matches!(b.read(ObjectKind::Pack, &name), Err(Error::NotFound { .. })));
    }
}

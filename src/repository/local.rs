//! A repository: the store (config, packs, snapshot objects) and the index,
//! under one directory. Opening checks that both belong together; writers take
//! the lock and heal what a crashed writer left unpublished.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use robovault_index::{Access, Index, Writer};
use robovault_store::{
    Backend, BlobId, BlobLocation, Config, LocalBackend, ObjectKind, Packer, ReaderLock, S3Url, Store, TreeId,
    WriterLock, FORMAT_VERSION_2,
};

use crate::convert::{blob_location, index_rows, pack_hash, to_hash, to_pack};
pub use crate::paths::INDEX_FILE;
use crate::repository::keys::{self, NewRepository};
use crate::repository::options::{Clock, RepositoryOptions};
use crate::repository::remote;
use crate::{Error, Location, Result};

/// An open repository.
pub struct Repository {
    /// The local directory: the repository itself, or for a remote one the
    /// cache holding its index and lock files.
    path: PathBuf,
    /// Where it is: for a local repository its resolved directory.
    location: Location,
    /// The clock its commands ask.
    clock: Arc<dyn Clock>,
    store: Arc<Store>,
    /// The database every connection of the pool opens, and how.
    index_path: PathBuf,
    access: Access,
    /// Why this process may not write the repository, if it may not.
    read_only: Option<String>,
    /// A private copy of the index, for a read-only repository whose own
    /// file SQLite cannot open where it is; removed on drop.
    _private_index: Option<tempfile::TempDir>,
    /// Idle connections to the index: SQLite connections are not shared
    /// between threads, so each worker borrows one.
    pool: Mutex<Vec<Index>>,
    /// Held shared while this process may read packs (see `gc`).
    reader_lock: Mutex<Option<ReaderLock>>,
}

/// A connection borrowed from the repository's pool; returned on drop.
pub struct PooledIndex<'a> {
    pool: &'a Mutex<Vec<Index>>,
    conn: Option<Index>,
}

impl std::ops::Deref for PooledIndex<'_> {
    type Target = Index;
    fn deref(&self) -> &Index {
        self.conn.as_ref().expect("present until drop")
    }
}

impl Drop for PooledIndex<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        }
    }
}

/// What is at a path given as a repository.
enum Found {
    Repository,
    /// An index or packs directory without its config.
    ConfigMissing,
    Missing,
    EmptyDir,
    /// Key files without a config: an `init` killed between the two.
    KeysOnly,
    Other(String),
}

const KEYS_ONLY: &str = "it holds key files but no config (an init that was interrupted leaves this: \
                         if the directory holds nothing else of value, remove it and init again)";

/// Moves a rebuilt index (`index.sqlite.new`, left by `repair index`) into
/// place, if there is one. The old database moves aside whole first, with
/// its WAL, so the new one never meets the old one's WAL. Run under the
/// writer lock; safe to run again after a crash at any point (FORMAT.md
/// invariant 9).
///
/// # Errors
/// [`Error::Io`] naming the file that could not be moved.
pub(crate) fn finish_index_swap(root: &Path) -> Result<()> {
    let new = root.join(format!("{INDEX_FILE}.new"));
    if !new.exists() {
        return Ok(());
    }
    let aside = root.join(format!("{INDEX_FILE}.old"));
    for suffix in ["", "-wal", "-shm"] {
        let from = root.join(format!("{INDEX_FILE}{suffix}"));
        let to = PathBuf::from(format!("{}{suffix}", aside.display()));
        robovault_store::storage_op("move aside the old index");
        match fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("moving aside", from, e)),
        }
    }
    robovault_store::sync_dir(root)?;
    robovault_store::storage_op("move the new index into place");
    fs::rename(&new, root.join(INDEX_FILE)).map_err(|e| Error::io("renaming into place", &new, e))?;
    robovault_store::sync_dir(root)?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", aside.display()));
    }
    Ok(())
}

/// Whether `path` is free for a new repository: missing, or an empty
/// directory.
///
/// # Errors
/// [`Error::Io`] when the path cannot be examined.
pub(crate) fn is_free(path: &Path) -> Result<bool> {
    Ok(matches!(probe(path)?, Found::Missing | Found::EmptyDir))
}

fn probe(path: &Path) -> Result<Found> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(Error::io("reading", path, e)),
    };
    if !meta.is_dir() {
        return Ok(Found::Other("it is not a directory".into()));
    }
    if path.join("config").exists() {
        return Ok(Found::Repository);
    }
    if path.join(INDEX_FILE).is_file() && path.join("packs").is_dir() {
        return Ok(Found::ConfigMissing);
    }
    if path.join("keys").is_dir() {
        return Ok(Found::KeysOnly);
    }
    if only_empty_layout(path)? {
        Ok(Found::EmptyDir)
    } else {
        Ok(Found::Other("the directory holds no repository config".into()))
    }
}

/// Whether `path` holds nothing, or only the empty directories an `init`
/// killed before its first file left (so `init` may start again there).
fn only_empty_layout(path: &Path) -> Result<bool> {
    let layout: Vec<&str> = ObjectKind::ALL
        .iter()
        .map(|k| k.dir_name())
        .filter(|d| !d.is_empty())
        .collect();
    for entry in fs::read_dir(path).map_err(|e| Error::io("listing", path, e))? {
        let entry = entry.map_err(|e| Error::io("listing", path, e))?;
        let name = entry.file_name();
        let is_layout = layout.iter().any(|d| name == std::ffi::OsStr::new(d));
        let empty = entry.file_type().is_ok_and(|t| t.is_dir())
            && fs::read_dir(entry.path()).is_ok_and(|mut d| d.next().is_none());
        if !(is_layout && empty) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The backend of a local repository. Under the `testing` feature, crash
/// tests may number its durable steps, and the index's, to crash at each.
pub(crate) fn local_backend(root: &Path) -> Arc<dyn Backend> {
    #[cfg(feature = "testing")]
    robovault_index::observe_commits(robovault_store::storage_op);
    robovault_store::crash_model(Arc::new(LocalBackend::new(root)), false)
}

impl Repository {
    /// Creates a new local repository at `path`, which must not exist or be
    /// an empty directory (missing parents are created).
    ///
    /// # Errors
    /// [`Error::RepositoryExists`] when something else is there.
    pub(crate) fn init_local(path: &Path, opts: &RepositoryOptions) -> Result<Repository> {
        match probe(path)? {
            Found::Missing => {}
            Found::EmptyDir => {
                if let Some(reason) = unwritable(path) {
                    return Err(Error::ReadOnly {
                        path: path.to_owned(),
                        reason,
                    });
                }
            }
            Found::KeysOnly => {
                return Err(Error::Refused(format!(
                    "{} is not free for a new repository: {KEYS_ONLY}",
                    path.display()
                )))
            }
            Found::Repository | Found::ConfigMissing | Found::Other(_) => {
                return Err(Error::RepositoryExists { path: path.to_owned() })
            }
        }
        fs::create_dir_all(path).map_err(|e| Error::io("creating", path, e))?;
        let path = fs::canonicalize(path).map_err(|e| Error::io("resolving", path, e))?;
        LocalBackend::new(&path).create_layout()?;
        let backend = local_backend(&path);
        if opts.create != NewRepository::Version1 {
            // Version 2: the index is a cache, outside the repository, like
            // a remote one's (FORMAT.md "Version 1 and version 2").
            let store = Arc::new(keys::create_store(backend, opts)?);
            let id = store.config().id.clone();
            let index = remote::fresh_index(&opts.cache_for(&id)?, &id)?;
            keys::check_cache(&index, store.config())?;
            return Repository::assemble(path.clone(), Location::Local(path), opts, store, index);
        }
        let config = Config::new();
        // The index first, then the config: a crash in between leaves a
        // directory without config, which `init` may reuse.
        let index = Index::open_or_create(&path.join(INDEX_FILE))?;
        let mut w = index.writer()?;
        w.set_meta("repository", &config.id)?;
        w.commit()?;
        let store = Arc::new(Store::create(backend, config)?);
        Repository::assemble(path.clone(), Location::Local(path), opts, store, index)
    }

    /// Opens the local repository at `path`.
    ///
    /// # Errors
    /// [`Error::NotARepository`] when `path` holds none; store and index
    /// errors for a damaged or newer one.
    pub(crate) fn open_local(path: &Path, opts: &RepositoryOptions) -> Result<Repository> {
        match probe(path)? {
            Found::Repository => {}
            Found::ConfigMissing => {
                let path = fs::canonicalize(path).map_err(|e| Error::io("resolving", path, e))?;
                return Err(Error::ConfigMissing { path });
            }
            Found::Missing => {
                return Err(Error::NotARepository {
                    path: path.to_owned(),
                    reason: "it does not exist".into(),
                })
            }
            Found::EmptyDir => {
                return Err(Error::NotARepository {
                    path: path.to_owned(),
                    reason: "the directory is empty".into(),
                })
            }
            Found::Other(reason) => {
                return Err(Error::NotARepository {
                    path: path.to_owned(),
                    reason,
                })
            }
            Found::KeysOnly => {
                return Err(Error::NotARepository {
                    path: path.to_owned(),
                    reason: KEYS_ONLY.into(),
                })
            }
        }
        let path = fs::canonicalize(path).map_err(|e| Error::io("resolving", path, e))?;
        let store = Arc::new(keys::open_store(local_backend(&path), opts)?);
        let read_only = unwritable(&path);
        if store.config().version >= FORMAT_VERSION_2 {
            let id = store.config().id.clone();
            let index = remote::local_index(&opts.cache_for(&id)?, &store)?;
            keys::check_cache(&index, store.config())?;
            let mut repo = Repository::assemble(path.clone(), Location::Local(path), opts, store, index)?;
            repo.read_only = read_only;
            remote::sync(&repo)?;
            return Ok(repo);
        }
        keys::check_remembered(opts, store.config())?;
        let (index, private) = open_local_index(&path, &store, read_only.is_some())?;
        let mut repo = Repository::assemble(path.clone(), Location::Local(path), opts, store, index)?;
        repo.read_only = read_only;
        repo._private_index = private;
        Ok(repo)
    }

    pub(crate) fn assemble(
        path: PathBuf,
        location: Location,
        opts: &RepositoryOptions,
        store: Arc<Store>,
        index: Index,
    ) -> Result<Repository> {
        let reader_lock = ReaderLock::shared(&path)?;
        Ok(Repository {
            path,
            location,
            clock: Arc::clone(&opts.clock),
            store,
            index_path: index.path().to_owned(),
            access: index.access(),
            read_only: None,
            _private_index: None,
            pool: Mutex::new(vec![index]),
            reader_lock: Mutex::new(Some(reader_lock)),
        })
    }

    /// Waits until no other process reads packs, and keeps them out until the
    /// returned lock is dropped (`gc`, before deleting packs).
    ///
    /// # Errors
    /// [`Error::Store`] when the lock file cannot be locked.
    pub fn exclude_readers(&self) -> Result<ReaderLock> {
        // Our own shared hold would block us: give it up first.
        self.reader_lock.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok(ReaderLock::exclusive(&self.path)?)
    }

    /// The local directory: the repository, or a remote repository's cache
    /// (index and lock files).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the index is a cache of what the store holds, synced from it
    /// and published to it as index copies: for remote repositories and
    /// every version-2 one.
    pub fn index_is_cache(&self) -> bool {
        self.remote().is_some() || self.store.config().version >= FORMAT_VERSION_2
    }

    /// The directory the index file lives in.
    pub(crate) fn index_dir(&self) -> &Path {
        self.index_path.parent().unwrap_or(&self.path)
    }

    /// Why this process may not write the repository, if it may not.
    pub(crate) fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// Where the repository is, for messages: its directory or its URL.
    pub fn location(&self) -> PathBuf {
        PathBuf::from(self.location.to_string())
    }

    /// A remote repository's URL.
    pub fn remote(&self) -> Option<&S3Url> {
        self.location.remote()
    }

    /// The clock this repository's commands ask.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// A connection to the index, from the pool or newly opened.
    ///
    /// # Errors
    /// [`Error::Index`] when a new connection cannot be opened.
    pub fn index(&self) -> Result<PooledIndex<'_>> {
        let idle = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => Index::open_as(&self.index_path, self.access)?,
        };
        Ok(PooledIndex {
            pool: &self.pool,
            conn: Some(conn),
        })
    }

    /// Takes the writer lock, waiting up to `wait`.
    ///
    /// # Errors
    /// [`robovault_store::Error::Locked`] naming the holder.
    pub fn lock_writer(&self, wait: Duration) -> Result<WriterLock> {
        if let Some(reason) = &self.read_only {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
                reason: reason.clone(),
            });
        }
        let since = self
            .clock
            .now()
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S %:z");
        // A version-2 repository names no host anywhere in the clear.
        let holder = if self.store.config().version >= FORMAT_VERSION_2 {
            format!("pid {} since {since}", std::process::id())
        } else {
            format!("pid {} on host {} since {since}", std::process::id(), hostname())
        };
        // While waiting, hold no readers' lock: a gc holding the writer lock
        // may be waiting for the readers to go before it deletes packs.
        let held = self.reader_lock.lock().unwrap_or_else(|p| p.into_inner()).take();
        let waited = held.is_some();
        drop(held);
        let lock = WriterLock::acquire(&self.path, &holder, wait);
        if waited {
            *self.reader_lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(ReaderLock::shared(&self.path)?);
        }
        Ok(lock?)
    }

    /// Publishes the snapshot objects of committed snapshots that a crashed
    /// writer did not publish (DESIGN.md, data flow step 7). Needs the lock.
    ///
    /// # Errors
    /// Store and index errors.
    pub fn heal(&self) -> Result<()> {
        let index = self.index()?;
        for (key, id, object) in index.unpublished()? {
            let written = self.store.write_snapshot(&object)?;
            if written.to_hex() != id {
                return Err(Error::Store(robovault_store::Error::Corrupt {
                    object: format!("snapshot {id} in {INDEX_FILE}"),
                    reason: "its stored object does not hash to its id".into(),
                }));
            }
            index.mark_published(key)?;
        }
        Ok(())
    }

    /// Packs in the store that the index does not know (left by interrupted
    /// runs).
    ///
    /// # Errors
    /// Store and index errors.
    pub fn orphan_packs(&self) -> Result<Vec<String>> {
        let known: std::collections::HashSet<String> = self
            .index()?
            .packs()?
            .iter()
            .map(|(p, _)| to_pack(p).to_hex())
            .collect();
        Ok(self
            .store
            .backend()
            .list(ObjectKind::Pack)?
            .into_iter()
            .filter(|p| !known.contains(p))
            .collect())
    }

    /// Where blob `id` lives, or an error naming it when the index lacks it.
    ///
    /// # Errors
    /// [`robovault_store::Error::NotFound`] for an unknown blob.
    pub fn locate(&self, id: &BlobId) -> Result<BlobLocation> {
        Self::locate_in(&*self.index()?, id)
    }

    /// [`Repository::locate`] through `index`, which may hold a pinned view.
    fn locate_in(index: &Index, id: &BlobId) -> Result<BlobLocation> {
        match index.blob(&to_hash(id))? {
            Some(rec) => blob_location(id, &rec),
            None => Err(Error::Store(robovault_store::Error::NotFound {
                kind: "blob",
                name: id.to_hex(),
            })),
        }
    }

    /// Reads and verifies data blob `id`.
    ///
    /// # Errors
    /// Store errors naming the blob and its pack.
    pub fn read_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let loc = self.locate(id)?;
        Ok(self.store.read_blob(id, &loc)?)
    }

    /// Reads, verifies and decodes tree `id`.
    ///
    /// # Errors
    /// Store errors naming the tree and its pack.
    pub fn read_tree(&self, id: &TreeId) -> Result<robovault_store::Tree> {
        self.read_tree_in(&*self.index()?, id)
    }

    /// [`Repository::read_tree`], locating the tree through `index` (a
    /// pinned view, see [`Index::pin`]).
    ///
    /// # Errors
    /// As [`Repository::read_tree`].
    pub fn read_tree_in(&self, index: &Index, id: &TreeId) -> Result<robovault_store::Tree> {
        let loc = Self::locate_in(index, id)?;
        Ok(self.store.read_tree(id, &loc)?)
    }
}

/// Opens the index of the local repository at `path` (canonical), whose
/// store is `store`: checked to be whole and to belong to that store.
fn open_local_index(path: &Path, store: &Store, read_only: bool) -> Result<(Index, Option<tempfile::TempDir>)> {
    let mut index_path = path.join(INDEX_FILE);
    let swapped = path.join(format!("{INDEX_FILE}.new"));
    if !index_path.exists() && swapped.exists() {
        if read_only {
            // A repair crashed while swapping its new index in, and we
            // may not finish it: its new index is whole, read that.
            index_path = swapped;
        } else {
            // Finish the swap, under the lock (the repair itself may
            // still be running).
            let holder = format!("pid {} on host {} (finishing a repair)", std::process::id(), hostname());
            let _lock = WriterLock::acquire(path, &holder, Duration::ZERO)?;
            finish_index_swap(path)?;
        }
    }
    match fs::metadata(&index_path) {
        // The config is there (see `probe`): the store is, and `repair
        // index` rebuilds the index from it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(damaged(&index_path, "the file is missing")),
        Err(e) => return Err(Error::io("reading", &index_path, e)),
        // SQLite takes an empty file for a new database, and would
        // migrate it into an index that knows no repository.
        Ok(m) if m.len() == 0 => return Err(damaged(&index_path, "the file is empty")),
        Ok(_) => {}
    }
    let (index, private) = if read_only {
        open_read_only(path, &index_path)?
    } else {
        (Index::open(&index_path)?, None)
    };
    match index.meta("repository")? {
        Some(id) if id == store.config().id => {}
        None => return Err(damaged(&index_path, "it records no repository id")),
        Some(other) => {
            return Err(damaged(
                &index_path,
                &format!("it belongs to repository {other}, the config to {}", store.config().id),
            ))
        }
    }
    Ok((index, private))
}

/// Why this process may not write the repository directory `dir`, if it
/// may not: a read-only mount, or a directory or index file of another user.
pub(crate) fn unwritable(dir: &Path) -> Option<String> {
    for p in [dir.to_path_buf(), dir.join(INDEX_FILE)] {
        match rustix::fs::access(&p, rustix::fs::Access::WRITE_OK) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => {
                return Some(format!(
                    "{} cannot be written: {}",
                    p.display(),
                    std::io::Error::from(e)
                ))
            }
        }
    }
    None
}

/// [`unwritable`] as the error of a writing command.
///
/// # Errors
/// [`Error::ReadOnly`] naming the repository.
pub(crate) fn check_writable(dir: &Path) -> Result<()> {
    match unwritable(dir) {
        None => Ok(()),
        Some(reason) => Err(Error::ReadOnly {
            path: dir.to_owned(),
            reason,
        }),
    }
}

fn damaged(index_path: &Path, reason: &str) -> Error {
    Error::Index(robovault_index::Error::Damaged {
        path: index_path.to_owned(),
        reason: reason.to_owned(),
    })
}

/// Opens the index of a repository this process may not write. SQLite's
/// own read-only open serves when the WAL's `-shm` file can be used or made.
/// Otherwise, on a read-only mount without a WAL nothing can change the file
/// and `immutable` reads it as it is; anywhere else (a WAL left by a crashed
/// writer, which `immutable` would ignore with its committed transactions,
/// or a directory of another user, whose writer may start at any time, or an
/// older schema to migrate) a private copy of the database and its WAL is
/// opened instead, in a temporary directory removed with the repository.
fn open_read_only(dir: &Path, index_path: &Path) -> Result<(Index, Option<tempfile::TempDir>)> {
    let first = match Index::open_as(index_path, Access::ReadOnly) {
        Ok(index) => return Ok((index, None)),
        Err(e) if e.wants_private_copy() => e,
        Err(e) => return Err(e.into()),
    };
    let wal = sibling(index_path, "-wal");
    let has_wal = fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    let older = matches!(first, robovault_index::Error::OlderSchema { .. });
    if !has_wal && !older && mounted_read_only(dir) {
        match Index::open_as(index_path, Access::Immutable) {
            Ok(index) => return Ok((index, None)),
            Err(e) if e.wants_private_copy() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix("robovault-index-")
        .tempdir()
        .map_err(|e| Error::io("creating a private copy of", index_path, e))?;
    let copy = tmp.path().join(INDEX_FILE);
    fs::copy(index_path, &copy).map_err(|e| Error::io("copying", index_path, e))?;
    if has_wal {
        fs::copy(&wal, sibling(&copy, "-wal")).map_err(|e| Error::io("copying", &wal, e))?;
    }
    Ok((Index::open(&copy)?, Some(tmp)))
}

/// `path` with `suffix` appended to its file name (`index.sqlite-wal`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn mounted_read_only(dir: &Path) -> bool {
    rustix::fs::statvfs(dir).is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// A packer whose every durable pack is recorded in `writer`'s transaction.
pub fn packer_into(store: &Arc<Store>, writer: &Arc<Mutex<Writer>>) -> Packer {
    let writer = Arc::clone(writer);
    Packer::new(
        store,
        Box::new(move |pack, size, entries| {
            writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add_pack(&pack_hash(&pack), size, &index_rows(entries))
                .map_err(|e| robovault_store::Error::Recording {
                    pack: pack.to_hex(),
                    error: Box::new(e),
                })
        }),
    )
}

/// The host name, as the system reports it.
pub fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

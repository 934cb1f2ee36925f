//! robovault's blob store: content-defined chunking, BLAKE3 ids, zstd blobs in
//! pack files, tree blobs, snapshot objects, the [`Backend`] trait with its local
//! directory implementation, and the writer lock.
//!
//! It knows nothing of SQLite, series or the command line: the engine asks it
//! to store blobs ([`Packer`]) and to read them back by location
//! ([`Store::read_blob`]), and every read is verified against the blob's id.
//!
//! ```no_run
//! use std::sync::Arc;
//! use robovault_store::{LocalBackend, Store, Config};
//! let backend = Arc::new(LocalBackend::new("/srv/vault"));
//! backend.create_layout()?;
//! let store = Store::create(backend, Config::new())?;
//! # Ok::<(), robovault_store::Error>(())
//! ```

mod backend;
mod blob;
mod chunker;
mod config;
pub mod crypto;
mod error;
pub mod fuzz;
mod id;
mod lock;
pub mod pack;
mod packer;
#[cfg(feature = "s3")]
mod s3;
mod sealing;
mod snapshot;
mod testing;
pub mod tree;

use std::sync::Arc;

pub use backend::{is_object_name, sync_dir, Backend, Deletes, LocalBackend, ObjectKind, ObjectWriter, Reads};
pub use blob::{compress, decode as decode_blob, BlobKind, BlobLocation, Compression};
pub use chunker::Chunker;
pub use config::{
    ChunkerAlgorithm, ChunkerParams, CompressionParams, Config, Encryption, FORMAT_VERSION, FORMAT_VERSION_2,
};
pub use error::{Error, Result};
pub use id::{BlobId, PackId, SnapshotId, TreeId};
pub use lock::{lock_holder, ReaderLock, WriterLock};
pub use pack::PackEntry;
pub use packer::{OnPack, Packer, PackerStats};
#[cfg(feature = "s3")]
pub use s3::{S3Backend, S3Options, S3Url};
pub use sealing::Sealing;
pub use snapshot::{CountsRow, RootDir, RunErrorRecord, SnapshotObject, SNAPSHOT_VERSION};
pub use testing::{crash_model, crash_point, pause_point, storage_op, CrashBackend};
pub use tree::{valid_name, EncodedNode, Node, NodeContent, NodeKind, Tree};

/// A repository's objects: its backend, its config, and how its objects
/// are sealed.
pub struct Store {
    backend: Arc<dyn Backend>,
    config: Config,
    sealing: Sealing,
    /// The id of the key file that unlocked an encrypted store.
    key: Option<String>,
}

impl Store {
    /// Writes `config` into an empty backend and returns the new store.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the backend already holds a config.
    pub fn create(backend: Arc<dyn Backend>, config: Config) -> Result<Store> {
        backend.write_new(ObjectKind::Config, "config", &config.encode())?;
        Ok(Store {
            backend,
            config,
            sealing: Sealing::Plain,
            key: None,
        })
    }

    /// Creates an encrypted repository in an empty backend: a new key set,
    /// its first key file (wrapping it under `password`), then the config
    /// with its MAC. The key file comes first, so that no crash leaves a
    /// repository without a usable key: a config is what makes a repository.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the backend holds a config;
    /// [`Error::Random`]; the backend's write errors.
    pub fn create_sealed(
        backend: Arc<dyn Backend>,
        mut config: Config,
        password: &[u8],
        kdf: crypto::KdfParams,
        label: &crypto::KeyLabel,
    ) -> Result<(Store, crypto::KeyFile)> {
        if backend.exists(ObjectKind::Config, "config")? {
            return Err(Error::AlreadyExists {
                kind: "config",
                name: "config".into(),
            });
        }
        let keys = Arc::new(crypto::Keys::new(config.id_bytes()?, crypto::KeySet::generate()?));
        config.seal(|b| keys.config_mac(b));
        let key = crypto::KeyFile::create(&keys, password, kdf, label)?;
        testing::crash_point("init-before-key-file");
        backend.write_new(ObjectKind::Key, &key.id(), &key.encode())?;
        testing::crash_point("init-before-config");
        backend.write_new(ObjectKind::Config, "config", &config.encode())?;
        Ok((
            Store {
                backend,
                config,
                sealing: Sealing::Sealed(keys),
                key: Some(key.id()),
            },
            key,
        ))
    }

    /// Opens the store in `backend`, reading and checking its config; an
    /// encrypted one is unlocked with the password `password` gives (asked
    /// only then), and its config's MAC checked.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no config (not a repository),
    /// [`Error::Corrupt`] or [`Error::UnsupportedVersion`] for a bad one;
    /// [`Error::Password`] from `password`; [`Error::WrongPassword`] when
    /// no key file accepts it; [`Error::Unauthentic`] for an altered config.
    pub fn open_with(
        backend: Arc<dyn Backend>,
        password: &dyn Fn() -> Result<zeroize::Zeroizing<String>>,
    ) -> Result<Store> {
        let config = Self::read_config(backend.as_ref())?;
        if !config.encrypted() {
            return Ok(Store {
                backend,
                config,
                sealing: Sealing::Plain,
                key: None,
            });
        }
        let (keys, key) = Self::unlock(backend.as_ref(), &config, password()?.as_bytes())?;
        Ok(Store {
            backend,
            config,
            sealing: Sealing::Sealed(Arc::new(keys)),
            key: Some(key),
        })
    }

    /// Opens an unencrypted store; an encrypted one is refused with the
    /// message of a missing password.
    ///
    /// # Errors
    /// As [`Store::open_with`].
    pub fn open(backend: Arc<dyn Backend>) -> Result<Store> {
        Self::open_with(backend, &|| {
            Err(Error::Password(
                "the repository is encrypted and no password was given".into(),
            ))
        })
    }

    /// Reads and checks the config alone (its MAC needs the keys).
    ///
    /// # Errors
    /// As [`Store::open_with`].
    pub fn read_config(backend: &dyn Backend) -> Result<Config> {
        Config::decode(&backend.read(ObjectKind::Config, "config")?)
    }

    /// The key files of the repository, decoded, by id.
    ///
    /// # Errors
    /// The backend's errors; [`Error::Corrupt`] for a damaged key file.
    pub fn key_files(backend: &dyn Backend) -> Result<Vec<crypto::KeyFile>> {
        backend
            .list(ObjectKind::Key)?
            .iter()
            .map(|name| crypto::KeyFile::decode(name, &backend.read(ObjectKind::Key, name)?))
            .collect()
    }

    /// Unlocks an encrypted repository's keys with `password`: the first key
    /// file (by id) that accepts it. Returns the keys and that key file's id.
    ///
    /// # Errors
    /// [`Error::WrongPassword`] when none does; [`Error::Corrupt`] when
    /// there is no key file, or one belongs to another repository;
    /// [`Error::Unauthentic`] for an altered config or key file.
    pub fn unlock(backend: &dyn Backend, config: &Config, password: &[u8]) -> Result<(crypto::Keys, String)> {
        let id = config.id_bytes()?;
        let files = Self::key_files(backend)?;
        if files.is_empty() {
            return Err(Error::corrupt(
                "repository",
                "it is encrypted but keys/ holds no key file: without one (or an exported key) its data cannot be read",
            ));
        }
        for file in &files {
            if file.repository() != &id {
                return Err(Error::corrupt(
                    format!("key file keys/{}", file.id()),
                    "it belongs to another repository",
                ));
            }
            if let Some(set) = file.unlock(password)? {
                let keys = crypto::Keys::new(id, set);
                config.check_mac(|b| keys.config_mac(b))?;
                return Ok((keys, file.id()));
            }
        }
        Err(Error::WrongPassword {
            repository: config.id.clone(),
            keys: files.len(),
        })
    }

    /// The id of the key file that unlocked this store; none when it is
    /// not encrypted.
    pub fn key_id(&self) -> Option<&str> {
        self.key.as_deref()
    }

    fn keys_or_refuse(&self, what: &str) -> Result<&Arc<crypto::Keys>> {
        self.sealing
            .keys()
            .ok_or_else(|| Error::Refused(format!("{what}: the repository is not encrypted and has no keys")))
    }

    /// The key files with their labels, by id.
    ///
    /// # Errors
    /// [`Error::Refused`] for an unencrypted store; a key file that does not
    /// decode or whose label does not open, naming it.
    pub fn keys_listed(&self) -> Result<Vec<(crypto::KeyFile, crypto::KeyLabel)>> {
        let keys = self.keys_or_refuse("key list")?;
        let mut files = Self::key_files(self.backend.as_ref())?;
        files.sort_by_key(|f| f.id());
        files
            .into_iter()
            .map(|f| {
                let label = f.label(keys)?;
                Ok((f, label))
            })
            .collect()
    }

    /// Wraps this store's key set in a new key file under `password` and
    /// writes it (`key add`, and the first step of `key passwd`).
    ///
    /// # Errors
    /// [`Error::Refused`] for an unencrypted store; store errors.
    pub fn add_key(
        &self,
        password: &[u8],
        kdf: crypto::KdfParams,
        label: &crypto::KeyLabel,
    ) -> Result<crypto::KeyFile> {
        let keys = self.keys_or_refuse("key add")?;
        let key = crypto::KeyFile::create(keys, password, kdf, label)?;
        testing::crash_point("key-before-write");
        self.backend.write_new(ObjectKind::Key, &key.id(), &key.encode())?;
        Ok(key)
    }

    /// Removes key file `id`. The key this store was unlocked with, and the
    /// last key file, are refused: a repository never has no usable key.
    ///
    /// # Errors
    /// [`Error::Refused`]; [`Error::NotFound`] for an unknown id.
    pub fn remove_key(&self, id: &str) -> Result<()> {
        self.keys_or_refuse("key remove")?;
        let files = Self::key_files(self.backend.as_ref())?;
        if !files.iter().any(|f| f.id() == id) {
            return Err(Error::NotFound {
                kind: "key file",
                name: format!("keys/{id}"),
            });
        }
        if files.len() < 2 {
            return Err(Error::Refused(format!(
                "key {id} is the repository's last key: without a key its data cannot be read; add another first"
            )));
        }
        if self.key.as_deref() == Some(id) {
            return Err(Error::Refused(format!(
                "key {id} is the key this command unlocked the repository with; \
                 give another key's password to remove it (or use key passwd)"
            )));
        }
        testing::crash_point("key-before-remove");
        self.backend.delete(ObjectKind::Key, id)
    }

    /// A chunker over `source` as this repository cuts: its parameters,
    /// keyed by its chunker key when encrypted.
    ///
    /// # Errors
    /// [`Error::ChunkerKeyMissing`] for a keyed chunker without keys.
    pub fn chunker<R: std::io::Read>(&self, source: R) -> Result<Chunker<R>> {
        let key = self.sealing.keys().map(|k| k.set().chunker_key());
        Chunker::with_key(source, &self.config.chunker, key)
    }

    /// How this store's objects are sealed.
    pub fn sealing(&self) -> &Sealing {
        &self.sealing
    }

    /// The id of a blob or tree with content `data` in this repository.
    pub fn blob_id(&self, data: &[u8]) -> BlobId {
        self.sealing.blob_id(data)
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Reads blob `id` at `loc`, decompresses it and checks it against its id.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing pack, [`Error::Corrupt`] or
    /// [`Error::HashMismatch`] naming the blob and the pack.
    pub fn read_blob(&self, id: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>> {
        let stored = self
            .backend
            .read_range(ObjectKind::Pack, &loc.pack.to_hex(), loc.offset, loc.stored_len as u64)
            // A range outside the pack comes from a damaged location: say
            // which blob it was, as a damaged blob's own message does.
            .map_err(|e| match e {
                Error::Corrupt { object, reason } => Error::Corrupt {
                    object: format!("blob {id} in {object} at offset {}", loc.offset),
                    reason,
                },
                other => other,
            })?;
        self.sealing.decode_blob(id, loc, &stored)
    }

    /// Groups blobs into runs that one ranged read can fetch: blobs of one
    /// pack that lie close together (gaps up to 1 MiB, runs up to 16 MiB).
    pub fn coalesce(wanted: &[(BlobId, BlobLocation)]) -> Vec<Vec<(BlobId, BlobLocation)>> {
        const GAP: u64 = 1 << 20;
        const SPAN: u64 = 16 << 20;
        let mut sorted: Vec<(BlobId, BlobLocation)> = wanted.to_vec();
        sorted.sort_by_key(|a| (a.1.pack.0, a.1.offset));
        let mut runs: Vec<Vec<(BlobId, BlobLocation)>> = Vec::new();
        let mut span = (0u64, 0u64);
        for item in sorted {
            let (start, end) = (item.1.offset, item.1.offset + item.1.stored_len as u64);
            let joins = runs.last().is_some_and(|run| {
                run[0].1.pack == item.1.pack && start <= span.1 + GAP && end.max(span.1) - span.0 <= SPAN
            });
            if joins {
                span.1 = span.1.max(end);
                if let Some(run) = runs.last_mut() {
                    run.push(item);
                }
            } else {
                span = (start, end);
                runs.push(vec![item]);
            }
        }
        runs
    }

    /// Reads one run of [`Store::coalesce`] with one ranged read, then
    /// decodes and verifies each blob on its own. When the read fails, each
    /// blob is read alone, so each error names its blob.
    pub fn read_run(&self, run: &[(BlobId, BlobLocation)]) -> Vec<(BlobId, Result<Vec<u8>>)> {
        let Some(first) = run.first() else { return Vec::new() };
        let start = run.iter().map(|(_, l)| l.offset).min().unwrap_or(first.1.offset);
        let end = run
            .iter()
            .map(|(_, l)| l.offset + l.stored_len as u64)
            .max()
            .unwrap_or(start);
        match self
            .backend
            .read_range(ObjectKind::Pack, &first.1.pack.to_hex(), start, end - start)
        {
            Ok(bytes) => run
                .iter()
                .map(|(id, loc)| {
                    let at = (loc.offset - start) as usize;
                    let stored = &bytes[at..at + loc.stored_len as usize];
                    (*id, self.sealing.decode_blob(id, loc, stored))
                })
                .collect(),
            Err(_) => run.iter().map(|(id, loc)| (*id, self.read_blob(id, loc))).collect(),
        }
    }

    /// Reads and decodes tree `id` at `loc`.
    ///
    /// # Errors
    /// As [`Store::read_blob`], and [`Error::Corrupt`] when it does not decode.
    pub fn read_tree(&self, id: &TreeId, loc: &BlobLocation) -> Result<Tree> {
        Tree::decode(id, &self.read_blob(id, loc)?)
    }

    /// Reads and checks the footer of pack `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing pack, [`Error::Corrupt`] for a bad footer.
    pub fn read_pack_footer(&self, id: &PackId) -> Result<Vec<PackEntry>> {
        let name = id.to_hex();
        let len = self.backend.size(ObjectKind::Pack, &name)?;
        if len < pack::HEADER_LEN + pack::SEALED_TRAILER_LEN as u64 {
            return Err(Error::corrupt(format!("pack {id}"), "too short to be a pack"));
        }
        let tail_len = len.min(pack::TRAILER_LEN as u64);
        let tail = self
            .backend
            .read_range(ObjectKind::Pack, &name, len - tail_len, tail_len)?;
        let tail = pack::parse_tail(&self.sealing, id, &tail, len)?;
        let footer = self
            .backend
            .read_range(ObjectKind::Pack, &name, tail.footer_start, tail.footer_len as u64)?;
        pack::parse_footer(&self.sealing, id, &tail, &footer)
    }

    /// Publishes a snapshot object and returns its id. Publishing the same
    /// object twice is not an error.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn write_snapshot(&self, bytes: &[u8]) -> Result<SnapshotId> {
        let id = self.sealing.snapshot_id(bytes);
        let stored = self.sealing.seal_object(crypto::Purpose::Snapshot, &id.0, bytes)?;
        match self.backend.write_new(ObjectKind::Snapshot, &id.to_hex(), &stored) {
            Ok(()) | Err(Error::AlreadyExists { .. }) => Ok(id),
            Err(e) => Err(e),
        }
    }

    /// Reads and checks snapshot object `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Corrupt`] or [`Error::UnsupportedVersion`].
    pub fn read_snapshot(&self, id: &SnapshotId) -> Result<SnapshotObject> {
        let bytes = self.read_snapshot_bytes(id)?;
        SnapshotObject::decode_with(&self.sealing, id, &bytes)
    }

    /// The plaintext bytes of snapshot object `id` (unchecked against the id:
    /// [`SnapshotObject::decode_with`] checks).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Unauthentic`] or [`Error::Corrupt`].
    pub fn read_snapshot_bytes(&self, id: &SnapshotId) -> Result<Vec<u8>> {
        let stored = self.backend.read(ObjectKind::Snapshot, &id.to_hex())?;
        self.sealing.open_object(crypto::Purpose::Snapshot, &id.0, stored, &|| {
            format!("snapshot object {id}")
        })
    }

    /// Whether snapshot object `id` is published.
    ///
    /// # Errors
    /// [`Error::Io`] when the backend cannot tell.
    pub fn has_snapshot(&self, id: &SnapshotId) -> Result<bool> {
        self.backend.exists(ObjectKind::Snapshot, &id.to_hex())
    }
}

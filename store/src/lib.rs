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
mod snapshot;
mod testing;
pub mod tree;

use std::sync::Arc;

pub use backend::{is_object_name, sync_dir, Backend, Deletes, LocalBackend, ObjectKind, ObjectWriter, Reads};
pub use blob::{compress, decode as decode_blob, BlobKind, BlobLocation, Compression};
pub use chunker::Chunker;
pub use config::{ChunkerParams, CompressionParams, Config, FORMAT_VERSION};
pub use error::{Error, Result};
pub use id::{BlobId, PackId, SnapshotId, TreeId};
pub use lock::{lock_holder, ReaderLock, WriterLock};
pub use pack::PackEntry;
pub use packer::{OnPack, Packer, PackerStats};
#[cfg(feature = "s3")]
pub use s3::{S3Backend, S3Options, S3Url};
pub use snapshot::{CountsRow, RootDir, RunErrorRecord, SnapshotObject, SNAPSHOT_VERSION};
pub use testing::{crash_model, crash_point, pause_point, storage_op, CrashBackend};
pub use tree::{valid_name, EncodedNode, Node, NodeContent, NodeKind, Tree};

/// A repository's objects: its backend and its config.
pub struct Store {
    backend: Arc<dyn Backend>,
    config: Config,
}

impl Store {
    /// Writes `config` into an empty backend and returns the new store.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the backend already holds a config.
    pub fn create(backend: Arc<dyn Backend>, config: Config) -> Result<Store> {
        backend.write_new(ObjectKind::Config, "config", &config.encode())?;
        Ok(Store { backend, config })
    }

    /// Opens the store in `backend`, reading and checking its config.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no config (not a repository),
    /// [`Error::Corrupt`] or [`Error::UnsupportedVersion`] for a bad one.
    pub fn open(backend: Arc<dyn Backend>) -> Result<Store> {
        let bytes = backend.read(ObjectKind::Config, "config")?;
        let config = Config::decode(&bytes)?;
        Ok(Store { backend, config })
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
        blob::decode(id, loc, &stored)
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
                    (*id, blob::decode(id, loc, stored))
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
        if len < pack::HEADER_LEN + pack::TRAILER_LEN as u64 {
            return Err(Error::corrupt(format!("pack {id}"), "too short to be a pack"));
        }
        let trailer = self.backend.read_range(
            ObjectKind::Pack,
            &name,
            len - pack::TRAILER_LEN as u64,
            pack::TRAILER_LEN as u64,
        )?;
        let (footer_len, hash) = pack::parse_trailer(id, &trailer, len)?;
        let start = len - pack::TRAILER_LEN as u64 - footer_len as u64;
        let footer = self
            .backend
            .read_range(ObjectKind::Pack, &name, start, footer_len as u64)?;
        pack::parse_footer(id, &footer, &hash, len)
    }

    /// Publishes a snapshot object and returns its id. Publishing the same
    /// object twice is not an error.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn write_snapshot(&self, bytes: &[u8]) -> Result<SnapshotId> {
        let id = SnapshotId::of(bytes);
        match self.backend.write_new(ObjectKind::Snapshot, &id.to_hex(), bytes) {
            Ok(()) | Err(Error::AlreadyExists { .. }) => Ok(id),
            Err(e) => Err(e),
        }
    }

    /// Reads and checks snapshot object `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Corrupt`] or [`Error::UnsupportedVersion`].
    pub fn read_snapshot(&self, id: &SnapshotId) -> Result<SnapshotObject> {
        SnapshotObject::decode(id, &self.backend.read(ObjectKind::Snapshot, &id.to_hex())?)
    }

    /// Whether snapshot object `id` is published.
    ///
    /// # Errors
    /// [`Error::Io`] when the backend cannot tell.
    pub fn has_snapshot(&self, id: &SnapshotId) -> Result<bool> {
        self.backend.exists(ObjectKind::Snapshot, &id.to_hex())
    }
}

//! The packer: collects new blobs from many threads into packs, each written
//! straight to the backend as blobs come (never held in memory), and hands
//! each full pack to one writer thread that seals it (footer, fsync, rename),
//! so compression, hashing and the durable write of the previous pack overlap.

use std::collections::HashSet;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::backend::ObjectKind;
use crate::blob::{compress, BlobKind};
use crate::pack::{PackEntry, PackWriter};
use crate::{BlobId, Error, PackId, Result, Store};

/// Called on the writer thread once a pack is durable, with what it holds.
pub type OnPack = Box<dyn FnMut(PackId, u64, &[PackEntry]) -> Result<()> + Send>;

/// What a packer stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackerStats {
    /// Packs written.
    pub packs: u64,
    /// Blobs stored.
    pub blobs: u64,
    /// Content bytes of the stored blobs.
    pub raw_bytes: u64,
    /// Bytes written to packs, headers and footers included.
    pub packed_bytes: u64,
}

/// Bytes and packs the writer thread wrote.
type Written = (u64, u64);

struct State {
    data: Option<PackWriter>,
    tree: Option<PackWriter>,
    seen: HashSet<BlobId>,
    stats: PackerStats,
}

/// Accepts blobs from any thread; see the module docs.
pub struct Packer {
    state: Mutex<State>,
    tx: Mutex<Option<SyncSender<PackWriter>>>,
    store: Arc<Store>,
    writer: Mutex<Option<JoinHandle<Result<Written>>>>,
    level: i32,
    target: usize,
}

impl Packer {
    /// A packer writing into `store`; `on_pack` learns of every durable pack.
    pub fn new(store: &Arc<Store>, mut on_pack: OnPack) -> Packer {
        // A rendezvous channel: one pack being written, one being filled,
        // none waiting in between, to bound memory.
        let (tx, rx) = sync_channel::<PackWriter>(0);
        let writer = std::thread::Builder::new()
            .name("pack-writer".into())
            .spawn(move || -> Result<Written> {
                let (mut written, mut packs) = (0, 0);
                for pack in rx {
                    // Same bytes, same id: a pack an interrupted run left counts.
                    let (id, len, entries) = pack.finish()?;
                    written += len;
                    packs += 1;
                    on_pack(id, len, &entries)?;
                }
                Ok((written, packs))
            })
            .expect("spawning the pack writer thread");
        Packer {
            state: Mutex::new(State {
                data: None,
                tree: None,
                seen: HashSet::new(),
                stats: PackerStats::default(),
            }),
            tx: Mutex::new(Some(tx)),
            store: Arc::clone(store),
            writer: Mutex::new(Some(writer)),
            level: store.config().compression.level,
            target: store.config().pack_target_size as usize,
        }
    }

    /// Stores blob `id` (whose content is `raw`) unless this packer already has
    /// it. Returns whether it was stored now. The caller checks the index first.
    ///
    /// # Errors
    /// [`Error::Interrupted`] when the writer thread has stopped; [`Packer::finish`]
    /// then returns its error.
    pub fn add(&self, id: BlobId, kind: BlobKind, raw: &[u8]) -> Result<bool> {
        if self.lock().seen.contains(&id) {
            return Ok(false);
        }
        // Compress outside the lock: this is where the time goes.
        let (compression, stored) = compress(raw, self.level);
        let stored = self.store.sealing().seal_blob(kind, &id, stored)?;
        let full = {
            let mut st = self.lock();
            if !st.seen.insert(id) {
                return Ok(false);
            }
            st.stats.blobs += 1;
            st.stats.raw_bytes += raw.len() as u64;
            let slot = match kind {
                BlobKind::Data => &mut st.data,
                BlobKind::Tree => &mut st.tree,
            };
            let pack = match slot {
                Some(p) => p,
                None => slot.insert(PackWriter::new(
                    self.store.backend().create(ObjectKind::Pack)?,
                    self.store.sealing(),
                )?),
            };
            pack.add(id, kind, compression, raw.len() as u32, &stored)?;
            if pack.len() >= self.target as u64 {
                slot.take()
            } else {
                None
            }
        };
        if let Some(pack) = full {
            self.send(pack)?;
        }
        Ok(true)
    }

    /// Whether this packer already holds blob `id`.
    pub fn contains(&self, id: &BlobId) -> bool {
        self.lock().seen.contains(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, pack: PackWriter) -> Result<()> {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match tx {
            Some(tx) => tx.send(pack).map_err(|_| Error::Interrupted),
            None => Err(Error::Interrupted),
        }
    }

    /// Writes the open packs, waits until every pack is durable and reported,
    /// and returns what was stored.
    ///
    /// # Errors
    /// The first error of the writer thread (a full disk, say).
    pub fn finish(&self) -> Result<PackerStats> {
        let (data, tree) = {
            let mut st = self.lock();
            (st.data.take(), st.tree.take())
        };
        let mut send_result = Ok(());
        for pack in [data, tree].into_iter().flatten() {
            if !pack.is_empty() && send_result.is_ok() {
                send_result = self.send(pack);
            }
        }
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (written, packs) = match handle {
            Some(h) => h.join().map_err(|_| Error::Interrupted)??,
            None => return Err(Error::Interrupted),
        };
        send_result?;
        let mut stats = self.lock().stats;
        stats.packed_bytes = written;
        stats.packs = packs;
        Ok(stats)
    }
}

impl Packer {
    /// Stops without writing the open packs (the run failed or was
    /// interrupted) and returns the writer thread's error, if it had one.
    ///
    /// # Errors
    /// The writer thread's first error.
    pub fn abort(&self) -> Result<()> {
        {
            // Dropping an unsealed pack removes its temporary file.
            let mut st = self.lock();
            st.data = None;
            st.tree = None;
        }
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        match self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(h) => h.join().map_err(|_| Error::Interrupted)?.map(|_| ()),
            None => Ok(()),
        }
    }
}

impl Drop for Packer {
    fn drop(&mut self) {
        // Unfinished: stop the writer without writing the open packs.
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
    }
}

//! Which packs a backup may point into. The index says where each blob was
//! stored, but a pack can be lost or damaged since (a deleted file, a bad
//! disk, a restored repository copy): a blob whose pack is gone must be
//! stored again, never reused, or every later snapshot loses that content.
//!
//! ```text
//! local repository: each pack the run would reuse is looked at once
//!                   (stat): missing, or not the size the index recorded
//!                   -> lost; the answer is kept for the rest of the run
//! remote (S3):      the sync at open dropped the blobs of every pack the
//!                   store's listing lacks: what the index still places
//!                   in a pack is there
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use robovault_index::Hash32;
use robovault_store::{ObjectKind, Store};

use crate::convert::to_pack;

/// Why a pack cannot be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// The repository has no such pack.
    Missing,
    /// It is there but not as the index recorded it (truncated, replaced),
    /// or could not be looked at.
    Damaged,
}

/// A pack's presence as the run found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Its blobs may be reused.
    Present,
    /// Lost.
    Lost(Lost),
}

/// The presence of packs, each looked at once per run.
pub(crate) struct PackCheck {
    store: Arc<Store>,
    /// Sizes the index recorded, by pack; `None` for a remote repository,
    /// whose index the sync keeps to the store's listing.
    recorded: Option<HashMap<Hash32, u64>>,
    seen: Mutex<HashMap<Hash32, Presence>>,
    /// Lost packs the run has named in its log.
    noted: Mutex<HashSet<Hash32>>,
    /// Whether every pack the index knew at the start is there.
    all: OnceLock<bool>,
    /// Blobs this run failed to read: never reused, whatever their pack.
    unreadable: Mutex<HashSet<Hash32>>,
}

impl PackCheck {
    /// A check for a run on `store`; `packs` are the packs the index knows
    /// with their sizes, ignored when `remote`.
    pub(crate) fn new(store: &Arc<Store>, packs: Vec<(Hash32, u64)>, remote: bool) -> PackCheck {
        PackCheck {
            store: Arc::clone(store),
            recorded: (!remote).then(|| packs.into_iter().collect()),
            seen: Mutex::new(HashMap::new()),
            noted: Mutex::new(HashSet::new()),
            all: OnceLock::new(),
            unreadable: Mutex::new(HashSet::new()),
        }
    }

    /// Whether blobs of `pack` may be reused.
    pub(crate) fn presence(&self, pack: &Hash32) -> Presence {
        let Some(recorded) = &self.recorded else {
            return Presence::Present;
        };
        if let Some(p) = self.lock().get(pack) {
            return *p;
        }
        // Looked at outside the lock: a slow disk must not serialise the run.
        let name = to_pack(pack).to_hex();
        let found = match self.store.backend().size(ObjectKind::Pack, &name) {
            Ok(size) if recorded.get(pack).is_none_or(|r| *r == size) => Presence::Present,
            Ok(_) => Presence::Lost(Lost::Damaged),
            Err(robovault_store::Error::NotFound { .. }) => Presence::Lost(Lost::Missing),
            // Storing the content again is always safe; reusing a pack that
            // cannot even be looked at is not.
            Err(_) => Presence::Lost(Lost::Damaged),
        };
        *self.lock().entry(*pack).or_insert(found)
    }

    /// True once per lost pack: the first caller names it in the log.
    pub(crate) fn first_notice(&self, pack: &Hash32) -> bool {
        self.noted.lock().unwrap_or_else(|p| p.into_inner()).insert(*pack)
    }

    /// Records that blob `id` could not be read in this run.
    pub(crate) fn mark_unreadable(&self, id: &Hash32) {
        self.unreadable.lock().unwrap_or_else(|p| p.into_inner()).insert(*id);
    }

    /// Whether blob `id` could not be read in this run.
    pub(crate) fn is_unreadable(&self, id: &Hash32) -> bool {
        self.unreadable.lock().unwrap_or_else(|p| p.into_inner()).contains(id)
    }

    /// The packs found lost so far.
    pub(crate) fn lost(&self) -> Vec<Hash32> {
        self.lock()
            .iter()
            .filter(|(_, p)| **p != Presence::Present)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether every pack the index knew at the start is there: each is
    /// looked at once, the first time a caller asks. When they all are,
    /// what a baseline entry records needs no check per blob.
    pub(crate) fn all_present(&self) -> bool {
        let Some(recorded) = &self.recorded else { return true };
        *self
            .all
            .get_or_init(|| recorded.keys().all(|p| self.presence(p) == Presence::Present))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Hash32, Presence>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

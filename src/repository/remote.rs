//! Repositories in an object store (`s3://BUCKET/PREFIX`). The store holds
//! everything that matters (config, packs, snapshot objects, markers); the
//! SQLite index is a local cache under the user's cache directory, keyed by
//! the repository id (FORMAT.md "Remote repositories").
//!
//! ```text
//! open:    cache has no index -> newest index copy in the store, else empty
//!          sync: packs and snapshot objects the cache lacks are added (pack
//!                footers, snapshot trees); packs gone from the store and
//!                snapshots with markers are dropped
//! commit:  after a committing command, a compacted copy of the index is
//!          uploaded as index/TIMESTAMP-HOST-HASH (immutable, never replaced)
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use robovault_index::{Hash32, Index, SeriesKey, Writer};
use robovault_store::crypto::{Purpose, StreamReader, StreamWriter};
use robovault_store::{
    Backend, ObjectKind, PackId, S3Backend, S3Options, S3Url, SnapshotId, SnapshotObject, Store, TreeId,
};

use crate::convert::{index_rows, pack_hash, to_blob, to_hash, to_pack};
use crate::repository::keys;
use crate::repository::local::{hostname, Repository, INDEX_FILE};
use crate::repository::options::{Clock, RepositoryOptions};
use crate::{Error, Location, Result};

/// Connects to a remote repository's store.
///
/// # Errors
/// A bad configuration.
pub(crate) fn connect(url: &S3Url, opts: &S3Options) -> Result<Arc<dyn Backend>> {
    #[cfg(feature = "testing")]
    robovault_index::observe_commits(robovault_store::storage_op);
    // An object store's delete is durable when it returns.
    Ok(robovault_store::crash_model(
        Arc::new(S3Backend::new(url.clone(), opts)?),
        true,
    ))
}

/// Creates a new repository at `url`, with an empty cached index.
///
/// # Errors
/// [`Error::RepositoryExists`] when the prefix holds a config; store errors.
pub(crate) fn init(url: &S3Url, opts: &RepositoryOptions) -> Result<Repository> {
    let backend = connect(url, &opts.s3)?;
    if backend.exists(ObjectKind::Config, "config")? {
        return Err(Error::RepositoryExists {
            path: PathBuf::from(url.to_string()),
        });
    }
    // A prefix that held a repository whose config was lost is not free:
    // a new repository there would mingle with its objects.
    for kind in [ObjectKind::Key, ObjectKind::Pack, ObjectKind::Snapshot] {
        if !backend.list(kind)?.is_empty() {
            return Err(Error::NotARepository {
                path: PathBuf::from(url.to_string()),
                reason: format!(
                    "it holds no config but {} objects of a repository: restore its config, or use another prefix",
                    kind.dir_name()
                ),
            });
        }
    }
    let store = Arc::new(keys::create_store(backend, opts)?);
    let id = store.config().id.clone();
    let dir = opts.cache_for(&id)?;
    let index = fresh_index(&dir, &id)?;
    keys::check_cache(&index, store.config())?;
    Repository::assemble(dir, Location::S3(url.clone()), opts, store, index)
}

/// Opens the repository at `url`, its cached index brought up to date.
///
/// # Errors
/// [`Error::NotARepository`] without a config; store and index errors.
pub(crate) fn open(url: &S3Url, opts: &RepositoryOptions) -> Result<Repository> {
    let backend = connect(url, &opts.s3)?;
    let store = match keys::open_store(backend, opts) {
        Ok(s) => Arc::new(s),
        Err(Error::Store(robovault_store::Error::NotFound { .. })) => {
            return Err(Error::NotARepository {
                path: PathBuf::from(url.to_string()),
                reason: "it holds no config".into(),
            })
        }
        Err(e) => return Err(e),
    };
    let dir = opts.cache_for(&store.config().id)?;
    let index = local_index(&dir, &store)?;
    keys::check_cache(&index, store.config())?;
    let repo = Repository::assemble(dir, Location::S3(url.clone()), opts, store, index)?;
    sync(&repo)?;
    Ok(repo)
}

/// An empty index for repository `id` in `dir`.
pub(crate) fn fresh_index(dir: &Path, id: &str) -> Result<Index> {
    let index = Index::open_or_create(&dir.join(INDEX_FILE))?;
    let mut w = index.writer()?;
    w.set_meta("repository", id)?;
    w.commit()?;
    Ok(index)
}

/// An index copy's database: opened when sealed, decompressed with a cap
/// (a copy whose content claims more than 64 GiB, or 1000 times its stored
/// size, is refused rather than filling the disk).
fn read_index_copy(store: &Store, name: &str, stored: &[u8]) -> Result<Vec<u8>> {
    let object = format!("index copy {name}");
    let cap = (stored.len() as u64).saturating_mul(1000).min(64 << 30);
    let corrupt = |reason: String| robovault_store::Error::Corrupt {
        object: object.clone(),
        reason,
    };
    let plain: Box<dyn std::io::Read + '_> = match store.sealing().keys() {
        None => Box::new(stored),
        Some(keys) => Box::new(StreamReader::new(
            keys,
            Purpose::IndexCopy,
            name.as_bytes(),
            stored,
            &object,
        )?),
    };
    let decoder = zstd::stream::read::Decoder::new(plain).map_err(|e| corrupt(e.to_string()))?;
    let mut out = Vec::new();
    let read = std::io::Read::read_to_end(&mut std::io::Read::take(decoder, cap + 1), &mut out);
    match read {
        Ok(_) if out.len() as u64 > cap => Err(corrupt(format!("it decompresses to more than {cap} bytes")).into()),
        Ok(_) => Ok(out),
        // A sealed segment that does not open arrives as an io error around
        // the store's own error: keep its message.
        Err(e) => match e.into_inner().map(|inner| inner.downcast::<robovault_store::Error>()) {
            Some(Ok(store_error)) => Err((*store_error).into()),
            Some(Err(other)) => Err(corrupt(other.to_string()).into()),
            None => Err(corrupt("it does not decompress".into()).into()),
        },
    }
}

/// The cached index, or the newest copy from the store, or an empty one.
pub(crate) fn local_index(dir: &Path, store: &Store) -> Result<Index> {
    let path = dir.join(INDEX_FILE);
    let id = &store.config().id;
    if !path.exists() {
        let copies = store.backend().list(ObjectKind::Index)?;
        match copies.iter().max() {
            Some(newest) => {
                let stored = store.backend().read(ObjectKind::Index, newest)?;
                let bytes = read_index_copy(store, newest, &stored)?;
                let tmp = dir.join(format!("{INDEX_FILE}.download"));
                std::fs::write(&tmp, bytes).map_err(|e| Error::io("writing", &tmp, e))?;
                std::fs::rename(&tmp, &path).map_err(|e| Error::io("renaming", &tmp, e))?;
            }
            None => return fresh_index(dir, id),
        }
    }
    let index = Index::open(&path).map_err(|e| match e {
        // `repair index` of the cache's directory would be the wrong advice:
        // the cache is only a copy of what the repository holds.
        robovault_index::Error::Damaged { reason, .. } => Error::CacheDamaged {
            path: path.clone(),
            reason,
        },
        other => other.into(),
    })?;
    if index.meta("repository")?.as_deref() != Some(id.as_str()) {
        return Err(Error::NotARepository {
            path: path.clone(),
            reason: format!(
                "the cached index does not belong to repository {id}; remove {}",
                path.display()
            ),
        });
    }
    Ok(index)
}

/// Brings the cached index up to date with the store: what other hosts (or
/// other caches) committed, forgot or collected. Skipped while another local
/// process writes (it holds the lock and syncs itself).
///
/// # Errors
/// Store and index errors.
pub(crate) fn sync(repo: &Repository) -> Result<()> {
    // A local repository this process may not write cannot be locked, and
    // no writer of this cache can run on it: the cache's own lock serves.
    let lock = match repo.read_only() {
        None => repo.lock_writer(Duration::ZERO).map_err(drop),
        Some(_) => robovault_store::WriterLock::acquire(
            repo.index_dir(),
            &format!("pid {} (syncing the index cache)", std::process::id()),
            Duration::ZERO,
        )
        .map_err(drop),
    };
    let Ok(_lock) = lock else {
        return Ok(());
    };
    let store = repo.store();
    let backend = store.backend();
    let index = repo.index()?;
    let mut w = sync_packs(store, &index)?;
    let markers: HashSet<String> = backend.list(ObjectKind::Marker)?.into_iter().collect();
    let objects: HashSet<String> = backend.list(ObjectKind::Snapshot)?.into_iter().collect();
    drop_forgotten(store, &index, &mut w, &markers, &objects)?;
    w.commit()?;
    import_snapshots(store, &index, objects, &markers)
}

/// Packs: new ones indexed from their footers; vanished and condemned ones
/// dropped, so that no backup reuses a blob a gc may delete. The returned
/// transaction holds these changes, not yet committed.
fn sync_packs(store: &Store, index: &Index) -> Result<Writer> {
    let backend = store.backend();
    let condemned = condemned_packs(store)?;
    let in_store: HashSet<String> = backend
        .list(ObjectKind::Pack)?
        .into_iter()
        .filter(|p| !condemned.contains(p))
        .collect();
    let known: HashMap<String, Hash32> = index
        .packs()?
        .into_iter()
        .map(|(p, _)| (to_pack(&p).to_hex(), p))
        .collect();
    let mut w = index.writer()?;
    for name in in_store.iter().filter(|n| !known.contains_key(*n)) {
        let id = PackId::from_hex(name)?;
        let entries = store.read_pack_footer(&id)?;
        let size = backend.size(ObjectKind::Pack, name)?;
        w.add_pack(&pack_hash(&id), size, &index_rows(&entries))?;
    }
    let gone: HashSet<Hash32> = known
        .iter()
        .filter(|(n, _)| !in_store.contains(*n))
        .map(|(_, h)| *h)
        .collect();
    if gone.is_empty() {
        return Ok(w);
    }
    let mut blobs = Vec::new();
    index.for_each_pack_blobs::<Error>(|pack, list| {
        if gone.contains(&pack) {
            blobs.extend(list.into_iter().map(|(id, _)| id));
        }
        Ok(())
    })?;
    w.delete_blobs(&blobs)?;
    for p in &gone {
        w.delete_pack(p)?;
    }
    Ok(w)
}

/// Snapshots forgotten elsewhere leave: marked, or (after a gc) gone from
/// the store although this cache saw them published.
fn drop_forgotten(
    store: &Store,
    index: &Index,
    w: &mut Writer,
    markers: &HashSet<String>,
    objects: &HashSet<String>,
) -> Result<()> {
    let mut pruned: HashSet<SeriesKey> = HashSet::new();
    for snap in index.snapshots(None)? {
        let collected = snap.published && !objects.contains(&snap.snap_id);
        let marked = markers.contains(&snap.snap_id);
        if marked && store.config().encrypted() {
            // A marker planted by someone without the keys must not make
            // this cache forget a snapshot: it opens, under its name, or
            // the sync stops naming it.
            check_marker(store, &snap.snap_id)?;
        }
        if marked || collected {
            w.delete_snapshot(snap.key)?;
            pruned.insert(snap.series);
        }
    }
    for s in pruned {
        w.prune_versions(s)?;
    }
    Ok(())
}

/// Opens deletion marker `name` under its snapshot's id (sealed stores).
///
/// # Errors
/// The marker does not open; store errors.
pub(crate) fn check_marker(store: &Store, name: &str) -> Result<()> {
    let id = SnapshotId::from_hex(name)?;
    let bytes = match store.backend().read(ObjectKind::Marker, name) {
        Ok(b) => b,
        // Collected by a gc since the listing: its snapshot went with it.
        Err(robovault_store::Error::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let object = || format!("deletion marker deleted/{name}");
    store.sealing().open_object(Purpose::Marker, &id.0, bytes, &object)?;
    Ok(())
}

/// Snapshots committed elsewhere come in, per series, after the newest one
/// the cache has (one series is written by one host at a time).
fn import_snapshots(store: &Store, index: &Index, objects: HashSet<String>, markers: &HashSet<String>) -> Result<()> {
    let have: HashSet<String> = index.snapshots(None)?.into_iter().map(|s| s.snap_id).collect();
    let mut new: BTreeMap<String, Vec<(Vec<u8>, SnapshotObject)>> = BTreeMap::new();
    for name in objects {
        if have.contains(&name) || markers.contains(&name) {
            continue;
        }
        let id = SnapshotId::from_hex(&name)?;
        let bytes = store.read_snapshot_bytes(&id)?;
        let obj = SnapshotObject::decode_with(store.sealing(), &id, &bytes)?;
        if obj.repository == store.config().id {
            new.entry(obj.series.clone()).or_default().push((bytes, obj));
        }
    }
    for (name, mut snaps) in new {
        snaps.sort_by_key(|(_, o)| o.seq);
        let series = match index.series_by_name(&name)? {
            Some(s) => s.key,
            None => {
                let mut w = index.writer()?;
                let first = &snaps[0].1;
                let key = w.ensure_series(&name, &first.host, first.source.as_bytes())?;
                w.commit()?;
                key
            }
        };
        let mut prev = index.latest_snapshot(series)?.map(|s| (s.seq, to_blob(&s.root_tree)));
        for (bytes, obj) in &snaps {
            if prev.is_some_and(|(seq, _)| obj.seq <= seq) {
                // Two writers of one series: the cache keeps its own line.
                continue;
            }
            crate::rebuild::rebuild_snapshot(store, index, series, prev, bytes, obj)?;
            prev = Some((obj.seq, TreeId::from_hex(&obj.root)?));
        }
    }
    Ok(())
}

/// The stamp of names older than `grace`: empty (nothing is that old) when
/// the grace reaches before any date.
fn cutoff_stamp(clock: &dyn Clock, grace: Duration) -> String {
    chrono::Duration::from_std(grace)
        .ok()
        .and_then(|g| clock.now().checked_sub_signed(g))
        .map(|t| t.format("%Y%m%dT%H%M%S").to_string())
        .unwrap_or_default()
}

/// The packs named by every condemned-pack list.
fn condemned_packs(store: &Store) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for name in store.backend().list(ObjectKind::Condemned)? {
        out.extend(condemned_list(store, &name)?);
    }
    Ok(out)
}

/// The pack ids (hex) of condemned-pack list `name`, opened when sealed.
fn condemned_list(store: &Store, name: &str) -> Result<Vec<String>> {
    let stored = store.backend().read(ObjectKind::Condemned, name)?;
    let text = store
        .sealing()
        .open_object(Purpose::Condemned, name.as_bytes(), stored, &|| {
            format!("condemned-pack list {name}")
        })?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

/// A name for a new index copy or condemned list. Version 1:
/// `TIMESTAMP-HOST-HASH`; version 2 names no host: `TIMESTAMP-RANDOM` (16
/// hex digits from the OS), chosen before the object is sealed, since the
/// name is part of its envelope.
fn stamped_name(store: &Store, clock: &dyn Clock, bytes: &[u8]) -> Result<String> {
    let stamp = clock.now().format("%Y%m%dT%H%M%S%.6fZ");
    if store.config().version >= robovault_store::FORMAT_VERSION_2 {
        let random: [u8; 8] = robovault_store::crypto::random_bytes()?;
        return Ok(format!("{stamp}-{}", hex::encode(random)));
    }
    let host: String = hostname()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' })
        .collect();
    Ok(format!("{stamp}-{host}-{}", &blake3::hash(bytes).to_hex()[..16]))
}

/// Phase one of a remote gc: the packs it found unused are listed in a new
/// condemned-pack list instead of deleted; every cache drops them at its
/// next sync, so no later backup reuses their blobs.
///
/// # Errors
/// Store errors.
pub(crate) fn condemn(repo: &Repository, packs: &[String]) -> Result<()> {
    if packs.is_empty() {
        return Ok(());
    }
    let text = packs.join("\n") + "\n";
    let store = repo.store();
    let name = stamped_name(store, repo.clock(), text.as_bytes())?;
    let sealed = store
        .sealing()
        .seal_object(Purpose::Condemned, name.as_bytes(), text.as_bytes())?;
    match store.backend().write_new(ObjectKind::Condemned, &name, &sealed) {
        Ok(()) | Err(robovault_store::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Phase two of a remote gc: the packs of condemned lists older than
/// `grace` are deleted unless a snapshot committed meanwhile uses one of
/// their blobs (`used`); those stay and are indexed again. Returns the
/// packs deleted.
///
/// # Errors
/// Store errors.
pub(crate) fn collect_condemned(repo: &Repository, grace: Duration, used: &HashSet<Hash32>) -> Result<u64> {
    let backend = repo.store().backend();
    let cutoff = cutoff_stamp(repo.clock(), grace);
    let mut deleted = 0;
    for name in backend.list(ObjectKind::Condemned)? {
        if name.get(..15).is_none_or(|stamp| stamp >= cutoff.as_str()) {
            continue;
        }
        for hex in condemned_list(repo.store(), &name)? {
            let hex = hex.as_str();
            let id = PackId::from_hex(hex)?;
            let entries = match repo.store().read_pack_footer(&id) {
                Ok(e) => e,
                Err(robovault_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            // Needed only by a blob that a snapshot uses and that has no other
            // copy (the cache dropped this pack's rows: an indexed blob lives
            // in another pack).
            let index = repo.index()?;
            let mut needed = false;
            for e in &entries {
                let h = to_hash(&e.id);
                if used.contains(&h) && !index.has_blob(&h)? {
                    needed = true;
                    break;
                }
            }
            if needed {
                continue;
            }
            backend.delete(ObjectKind::Pack, hex)?;
            deleted += 1;
        }
        backend.delete(ObjectKind::Condemned, &name)?;
    }
    Ok(deleted)
}

/// How many snapshots may be committed after the newest index copy before a
/// backup or forget publishes a new one; until then the snapshot objects and
/// pack footers the store holds anyway are the deltas a new machine's sync
/// applies to that copy (FORMAT.md "Index copies").
pub const SNAPSHOTS_PER_COPY: usize = 16;

/// The age past which the newest index copy is replaced at the next commit.
const COPY_MAX_AGE_DAYS: i64 = 7;

/// When a committing command uploads an index copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Always: gc and repair, which compact.
    Always,
    /// When the newest copy is missing, older than a week, or
    /// [`SNAPSHOTS_PER_COPY`] snapshots behind: backup and forget.
    IfDue,
}

/// Whether the newest index copy is due for replacement.
fn copy_due(repo: &Repository) -> Result<bool> {
    let Some(newest) = repo.store().backend().list(ObjectKind::Index)?.into_iter().max() else {
        return Ok(true);
    };
    let stamp = newest.split('-').next().unwrap_or_default();
    let Ok(at) = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.fZ") else {
        return Ok(true);
    };
    let at = at.and_utc();
    if repo.clock().now() - at > chrono::Duration::days(COPY_MAX_AGE_DAYS) {
        return Ok(true);
    }
    let at_ns = at.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let since = repo
        .index()?
        .snapshots(None)?
        .iter()
        .filter(|s| s.ended_ns >= at_ns)
        .count();
    Ok(since >= SNAPSHOTS_PER_COPY)
}

/// Uploads a compacted copy of the index (after a committing command, when
/// `when` says) as `index/TIMESTAMP-…`; a new machine starts from the newest
/// and syncs what was committed since.
///
/// # Errors
/// Store and index errors.
pub fn publish_index(repo: &Repository, when: Publish) -> Result<()> {
    if !repo.index_is_cache() {
        return Ok(());
    }
    if when == Publish::IfDue && !copy_due(repo)? {
        return Ok(());
    }
    let tmp = repo.index_dir().join(format!("{INDEX_FILE}.copy"));
    let _ = std::fs::remove_file(&tmp);
    repo.index()?.vacuum_into(&tmp)?;
    let bytes = std::fs::read(&tmp).map_err(|e| Error::io("reading", &tmp, e))?;
    let _ = std::fs::remove_file(&tmp);
    let packed = zstd::encode_all(bytes.as_slice(), 3).map_err(|e| Error::io("compressing", &tmp, e))?;
    let store = repo.store();
    let name = stamped_name(store, repo.clock(), &packed)?;
    let stored = match store.sealing().keys() {
        None => packed,
        Some(keys) => {
            let mut w = StreamWriter::new(keys, Purpose::IndexCopy, name.as_bytes(), Vec::new())?;
            std::io::Write::write_all(&mut w, &packed).map_err(|e| Error::io("sealing", &tmp, e))?;
            w.finish()?
        }
    };
    match store.backend().write_new(ObjectKind::Index, &name, &stored) {
        Ok(()) | Err(robovault_store::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes index copies superseded by a newer copy of the same host and
/// older than `grace` (gc). Returns how many were removed.
///
/// # Errors
/// Store errors.
pub fn prune_index_copies(repo: &Repository, grace: Duration) -> Result<u64> {
    let backend = repo.store().backend();
    let v1 = repo.store().config().version < robovault_store::FORMAT_VERSION_2;
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in backend.list(ObjectKind::Index)? {
        let mut parts = name.splitn(2, '-');
        let (Some(_ts), Some(rest)) = (parts.next(), parts.next()) else {
            continue;
        };
        // Version-2 names carry no host: the newest copy of any host
        // supersedes the others (a copy only seeds a new cache).
        let host = match rest.rsplit_once('-') {
            Some((h, _)) if v1 => h.to_owned(),
            _ if v1 => rest.to_owned(),
            _ => String::new(),
        };
        by_host.entry(host).or_default().push(name);
    }
    let cutoff = cutoff_stamp(repo.clock(), grace);
    let mut removed = 0;
    for (_, mut names) in by_host {
        names.sort();
        names.pop(); // the newest stays
        for n in names {
            if n[..15.min(n.len())] < *cutoff.as_str() {
                backend.delete(ObjectKind::Index, &n)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

//! robovault's catalog: a SQLite database (WAL) of series, snapshots, their
//! runs, and a temporal record of file versions. A version is one row with the
//! range of snapshots `[from_seq, to_seq)` of its series that hold it, so an
//! unchanged nightly run writes one snapshot row and nothing else, and both
//! "the tree at snapshot S" and "every version of PATH" are indexed queries.
//!
//! All SQL of the project lives in this crate. Reads go through [`Index`]
//! (any number of connections, each a consistent view in WAL mode); a write is
//! a [`Writer`], one `IMMEDIATE` transaction that `commit` consumes and `Drop`
//! rolls back.
//!
//! ```no_run
//! let index = robovault_index::Index::open_or_create("/srv/vault/index.sqlite".as_ref())?;
//! for s in index.snapshots(None)? {
//!     println!("{} {}", s.snap_id, s.exit_code);
//! }
//! # Ok::<(), robovault_index::Error>(())
//! ```

mod error;
mod schema;
mod types;
mod writer;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

pub use error::{Error, Result};
pub use schema::SCHEMA_VERSION;
pub use types::*;
#[cfg(feature = "testing")]
pub use writer::observe_commits;
pub use writer::Writer;

/// A connection to the catalog.
pub struct Index {
    path: PathBuf,
    conn: Connection,
    access: Access,
}

/// How a connection reaches the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads and writes; an older schema is migrated on open.
    ReadWrite,
    /// Reads only, taking SQLite's locks: needs a directory it may create
    /// the WAL's `-shm` file in, or one that a writer left there.
    ReadOnly,
    /// Reads only, taking no locks at all (`immutable=1`): for a file that
    /// nothing can change while it is open, such as one on a read-only
    /// mount with no WAL beside it.
    Immutable,
}

const SNAPSHOT_COLUMNS: &str =
    "id, snap_id, series_id, seq, started_ns, ended_ns, parent, root_tree, exit_code, partial, \
     dirs_total, dirs_copied, dirs_skipped, dirs_mismatch, dirs_failed, dirs_extras, \
     files_total, files_copied, files_skipped, files_mismatch, files_failed, files_extras, \
     bytes_total, bytes_copied, bytes_skipped, bytes_mismatch, bytes_failed, bytes_extras, \
     new_data, published";

pub(crate) const ENTRY_COLUMNS: &str =
    "v.kind, v.size, v.mtime_sec, v.mtime_nsec, v.mode, v.uid, v.gid, v.user, v.grp, \
     v.rdev, v.link_dev, v.link_ino, v.xattrs, v.chunks, v.target, v.dev, v.ino, v.ctime_sec, v.ctime_nsec";

impl Index {
    /// Opens the catalog at `path`, creating it if missing, and brings its
    /// schema up to date.
    ///
    /// # Errors
    /// [`Error::NewerSchema`] for a database written by a newer robovault;
    /// [`Error::Sqlite`] when it cannot be opened or migrated.
    pub fn open_or_create(path: &Path) -> Result<Index> {
        let conn = Connection::open(path).map_err(|e| sql(path, e))?;
        let index = Index::configure(path, conn)?;
        index.migrate()?;
        Ok(index)
    }

    /// Opens an existing catalog without creating it, migrating an older schema.
    ///
    /// # Errors
    /// As [`Index::open_or_create`]; a missing file is [`Error::Sqlite`].
    pub fn open(path: &Path) -> Result<Index> {
        Index::open_as(path, Access::ReadWrite)
    }

    /// Opens an existing catalog with `access`. A read-only open never
    /// migrates: an older schema is [`Error::OlderSchema`], and the caller
    /// may migrate a private copy instead.
    ///
    /// # Errors
    /// [`Error::NewerSchema`], [`Error::OlderSchema`] (read-only only),
    /// [`Error::Sqlite`].
    pub fn open_as(path: &Path, access: Access) -> Result<Index> {
        let index = match access {
            Access::ReadWrite => {
                let flags =
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
                let conn = Connection::open_with_flags(path, flags).map_err(|e| sql(path, e))?;
                Index::configure(path, conn)?
            }
            Access::ReadOnly | Access::Immutable => {
                let flags =
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
                let target = if access == Access::Immutable {
                    format!("{}?immutable=1", file_uri(path))
                } else {
                    file_uri(path)
                };
                let conn = Connection::open_with_flags(target, flags).map_err(|e| sql(path, e))?;
                conn.busy_timeout(std::time::Duration::from_secs(30))
                    .map_err(|e| sql(path, e))?;
                conn.set_prepared_statement_cache_capacity(64);
                Index {
                    path: path.to_owned(),
                    conn,
                    access,
                }
            }
        };
        let version = index.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                path: path.to_owned(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            if access != Access::ReadWrite {
                return Err(Error::OlderSchema {
                    path: path.to_owned(),
                    found: version,
                });
            }
            index.migrate()?;
        }
        Ok(index)
    }

    /// How this connection reaches the database.
    pub fn access(&self) -> Access {
        self.access
    }

    fn configure(path: &Path, conn: Connection) -> Result<Index> {
        // WAL lets readers run while a backup writes; synchronous=FULL makes a
        // commit durable when COMMIT returns, which the write ordering needs.
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| sql(path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sql(path, e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| sql(path, e))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Index {
            path: path.to_owned(),
            conn,
            access: Access::ReadWrite,
        })
    }

    fn schema_version(&self) -> Result<u32> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get::<_, u32>(0))
            .map_err(|e| self.err(e))
    }

    fn migrate(&self) -> Result<()> {
        let version = self.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for (i, step) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let sql = format!("BEGIN IMMEDIATE; {step}; PRAGMA user_version = {}; COMMIT;", i + 1);
            if let Err(e) = self.conn.execute_batch(&sql) {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(self.err(e));
            }
        }
        Ok(())
    }

    /// Another connection to the same database, for another thread.
    ///
    /// # Errors
    /// [`Error::Sqlite`] when it cannot be opened.
    pub fn reopen(&self) -> Result<Index> {
        Index::open_as(&self.path, self.access)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        sql(&self.path, e)
    }

    /// Starts the one write transaction of a command, on its own connection.
    ///
    /// # Errors
    /// [`Error::Sqlite`] when the database cannot be opened or locked.
    pub fn writer(&self) -> Result<Writer> {
        Writer::begin(&self.path)
    }

    /// A value of the `meta` table.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every series, by name.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn all_series(&self) -> Result<Vec<SeriesRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, host, source FROM series ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], series_from_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// The series named `name`.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn series_by_name(&self, name: &str) -> Result<Option<SeriesRecord>> {
        self.conn
            .query_row(
                "SELECT id, name, host, source FROM series WHERE name = ?1",
                [name],
                series_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The snapshots of `series` (or of every series), by series then sequence.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn snapshots(&self, series: Option<SeriesKey>) -> Result<Vec<SnapshotRecord>> {
        let sql = format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE ?1 IS NULL OR series_id = ?1 ORDER BY series_id, seq"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([series.map(|s| s.0)], snapshot_from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// The newest snapshot of `series`.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn latest_snapshot(&self, series: SeriesKey) -> Result<Option<SnapshotRecord>> {
        let sql = format!("SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE series_id = ?1 ORDER BY seq DESC LIMIT 1");
        self.conn
            .query_row(&sql, [series.0], snapshot_from_row)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The snapshots whose id starts with `prefix` (lowercase hex).
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn snapshots_by_prefix(&self, prefix: &str) -> Result<Vec<SnapshotRecord>> {
        let sql = format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE substr(snap_id, 1, length(?1)) = ?1 ORDER BY series_id, seq"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map([prefix], snapshot_from_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// The last snapshot of `series` that started at or before `t_ns`.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn snapshot_at(&self, series: SeriesKey, t_ns: i64) -> Result<Option<SnapshotRecord>> {
        let sql = format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE series_id = ?1 AND started_ns <= ?2 \
             ORDER BY started_ns DESC, seq DESC LIMIT 1"
        );
        self.conn
            .query_row(&sql, params![series.0, t_ns], snapshot_from_row)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Committed snapshots whose object may not be published yet:
    /// (row, snapshot id, object bytes).
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn unpublished(&self) -> Result<Vec<(SnapshotKey, String, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, snap_id, object FROM snapshots WHERE published = 0 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((SnapshotKey(r.get(0)?), r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Records that snapshot `key`'s object is in the store.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn mark_published(&self, key: SnapshotKey) -> Result<()> {
        self.conn
            .execute("UPDATE snapshots SET published = 1 WHERE id = ?1", [key.0])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The failures of snapshot `key`'s run.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn run_errors(&self, key: SnapshotKey) -> Result<Vec<RunErrorRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT path, action, code, message, attempts FROM run_errors WHERE snapshot = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([key.0], |r| {
                Ok(RunErrorRow {
                    path: r.get(0)?,
                    action: r.get(1)?,
                    code: r.get(2)?,
                    message: r.get(3)?,
                    attempts: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// The entries directly inside directory `parent` in snapshot `seq` of
    /// `series`, sorted by name bytes.
    ///
    /// # Errors
    /// [`Error::Sqlite`], or [`Error::Corrupt`] for a malformed chunk list.
    pub fn children_at(&self, series: SeriesKey, parent: PathId, seq: u64) -> Result<Vec<ChildVersion>> {
        let mut out = Vec::new();
        self.each_child_at(series, parent, seq, |c| out.push(c))?;
        Ok(out)
    }

    /// [`Index::children_at`], each entry given to `f` as it is read: a
    /// caller that keeps them in its own form holds no second copy.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn each_child_at(
        &self,
        series: SeriesKey,
        parent: PathId,
        seq: u64,
        mut f: impl FnMut(ChildVersion),
    ) -> Result<()> {
        let sql = format!(
            "SELECT v.id, p.id, p.name, {ENTRY_COLUMNS} \
             FROM paths p JOIN versions v ON v.path_id = p.id \
             WHERE p.parent = ?1 AND v.series_id = ?2 AND v.from_seq <= ?3 AND (v.to_seq IS NULL OR v.to_seq > ?3) \
             ORDER BY p.name"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![parent.0, series.0, seq as i64], |r| {
                Ok(ChildVersion {
                    key: VersionKey(r.get(0)?),
                    path: PathId(r.get(1)?),
                    name: r.get(2)?,
                    entry: entry_from_row(r, 3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            f(row.map_err(|e| self.err(e))?);
        }
        Ok(())
    }

    /// The version of `path` itself in snapshot `seq` of `series`.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn version_at(&self, series: SeriesKey, path: PathId, seq: u64) -> Result<Option<VersionRow>> {
        Ok(self
            .versions_of(series, path)?
            .into_iter()
            .find(|v| v.from_seq <= seq && v.to_seq.is_none_or(|t| t > seq)))
    }

    /// The interned path `name` inside `parent`, if any entry ever had it.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn lookup_path(&self, parent: PathId, name: &[u8]) -> Result<Option<PathId>> {
        self.conn
            .prepare_cached("SELECT id FROM paths WHERE parent = ?1 AND name = ?2")
            .and_then(|mut s| s.query_row(params![parent.0, name], |r| r.get(0)).optional())
            .map(|o| o.map(PathId))
            .map_err(|e| self.err(e))
    }

    /// Every version of `path` in `series`, oldest first.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn versions_of(&self, series: SeriesKey, path: PathId) -> Result<Vec<VersionRow>> {
        let sql = format!(
            "SELECT v.id, v.from_seq, v.to_seq, {ENTRY_COLUMNS} FROM versions v \
             WHERE v.path_id = ?1 AND v.series_id = ?2 ORDER BY v.from_seq"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![path.0, series.0], |r| {
                Ok(VersionRow {
                    key: VersionKey(r.get(0)?),
                    from_seq: r.get::<_, i64>(1)? as u64,
                    to_seq: r.get::<_, Option<i64>>(2)?.map(|t| t as u64),
                    entry: entry_from_row(r, 3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Where blob `id` lives.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn blob(&self, id: &Hash32) -> Result<Option<BlobRecord>> {
        self.conn
            .prepare_cached(
                "SELECT p.pack_id, b.kind, b.compression, b.offset, b.stored_len, b.raw_len \
                 FROM blobs b JOIN packs p ON p.id = b.pack WHERE b.id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([&id.0[..]], |r| {
                    Ok(BlobRecord {
                        pack: hash_at(r, 0, || format!("the packs row of blob {}, column pack_id", hex(&id.0)))?,
                        kind: r.get(1)?,
                        compression: r.get(2)?,
                        offset: r.get::<_, i64>(3)? as u64,
                        stored_len: r.get(4)?,
                        raw_len: r.get(5)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// Every pack the index knows: (pack id, size in bytes).
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn packs(&self) -> Result<Vec<(Hash32, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT pack_id, size, id FROM packs ORDER BY pack_id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let key: i64 = r.get(2)?;
                let id = hash_at(r, 0, || format!("packs row {key}, column pack_id"))?;
                Ok((id, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Calls `f` once per pack with the blobs the index places in it, in
    /// offset order; memory holds one pack's rows at a time.
    ///
    /// # Errors
    /// [`Error::Sqlite`], or the first error `f` returns.
    pub fn for_each_pack_blobs<E: From<Error>>(
        &self,
        mut f: impl FnMut(Hash32, Vec<(Hash32, BlobRecord)>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.pack_id, b.id, b.kind, b.compression, b.offset, b.stored_len, b.raw_len, p.id \
                 FROM blobs b JOIN packs p ON p.id = b.pack ORDER BY p.pack_id, b.offset",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut current: Option<Hash32> = None;
        let mut group = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let read = |r: &Row<'_>| -> rusqlite::Result<(Hash32, Hash32, BlobRecord)> {
                let (pack_key, offset): (i64, i64) = (r.get(7)?, r.get(4)?);
                let pack = hash_at(r, 0, || format!("packs row {pack_key}, column pack_id"))?;
                Ok((
                    pack,
                    hash_at(r, 1, || {
                        format!("the blobs row at offset {offset} of packs row {pack_key}, column id")
                    })?,
                    BlobRecord {
                        pack,
                        kind: r.get(2)?,
                        compression: r.get(3)?,
                        offset: r.get::<_, i64>(4)? as u64,
                        stored_len: r.get(5)?,
                        raw_len: r.get(6)?,
                    },
                ))
            };
            let (pack, id, rec) = read(r).map_err(|e| self.err(e))?;
            if current.is_some_and(|c| c != pack) {
                f(current.expect("checked"), std::mem::take(&mut group))?;
            }
            current = Some(pack);
            group.push((id, rec));
        }
        if let Some(pack) = current {
            f(pack, group)?;
        }
        Ok(())
    }

    /// Calls `f` with every file chunk list recorded in any version row.
    ///
    /// # Errors
    /// [`Error::Sqlite`] or [`Error::Corrupt`].
    pub fn for_each_chunk_list(&self, mut f: impl FnMut(&[Hash32])) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT chunks FROM versions WHERE chunks IS NOT NULL")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let bytes = r
                .get_ref(0)
                .map_err(|e| self.err(e))?
                .as_blob()
                .map_err(|e| self.err(e.into()))?;
            let list = chunk_list(bytes).ok_or_else(|| Error::Corrupt {
                path: self.path.clone(),
                what: "a chunk list is not a whole number of 32-byte ids".into(),
            })?;
            f(&list);
        }
        Ok(())
    }

    /// Every interned path: id → (parent id, name).
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn all_paths(&self) -> Result<std::collections::HashMap<i64, (i64, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, parent, name FROM paths")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, (r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Every version row of `series` as (path id, from_seq, to_seq), by path
    /// then from_seq.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn version_ranges(&self, series: SeriesKey) -> Result<Vec<(i64, u64, Option<u64>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path_id, from_seq, to_seq FROM versions WHERE series_id = ?1 ORDER BY path_id, from_seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([series.0], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, Option<i64>>(2)?.map(|t| t as u64),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Whether blob `id` is stored.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn has_blob(&self, id: &Hash32) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1")
            .and_then(|mut s| s.exists([&id.0[..]]))
            .map_err(|e| self.err(e))
    }

    /// How many rows a table holds (for tests and statistics).
    ///
    /// # Errors
    /// [`Error::Sqlite`]; an unknown table name is an error too.
    pub fn count_rows(&self, table: &str) -> Result<u64> {
        if ![
            "versions",
            "paths",
            "blobs",
            "packs",
            "snapshots",
            "series",
            "run_errors",
        ]
        .contains(&table)
        {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                what: format!("no table {table}"),
            });
        }
        self.conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}

/// Totals of the stored blobs of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobTotals {
    /// Blobs.
    pub count: u64,
    /// Their bytes before compression.
    pub raw: u64,
    /// Their bytes as stored in packs.
    pub stored: u64,
}

/// A pinned view of the index; see [`Index::pin`].
pub struct Pinned<'a> {
    index: &'a Index,
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        // A read transaction changes nothing: ending it cannot lose work.
        let _ = self.index.conn.execute_batch("COMMIT");
    }
}

impl Index {
    /// Pins what this connection sees: until the returned guard drops,
    /// every query on it sees the index as it was now, whatever writers
    /// commit meanwhile (a WAL read transaction). For readers that make many
    /// queries about one state, such as `verify` while a `forget` commits.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn pin(&self) -> Result<Pinned<'_>> {
        // A deferred transaction takes its snapshot at its first read.
        self.conn
            .execute_batch("BEGIN DEFERRED; SELECT count(*) FROM meta;")
            .map_err(|e| self.err(e))?;
        Ok(Pinned { index: self })
    }

    /// Totals of the stored blobs of kind `kind` (0 data, 1 tree).
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn blob_totals(&self, kind: u8) -> Result<BlobTotals> {
        self.conn
            .query_row(
                "SELECT count(*), COALESCE(SUM(raw_len), 0), COALESCE(SUM(stored_len), 0) FROM blobs WHERE kind = ?1",
                [kind],
                |r| {
                    Ok(BlobTotals {
                        count: r.get::<_, i64>(0)? as u64,
                        raw: r.get::<_, i64>(1)? as u64,
                        stored: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Writes a compacted copy of the database to `path` (`VACUUM INTO`).
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn vacuum_into(&self, path: &Path) -> Result<()> {
        let target = path.to_str().ok_or_else(|| Error::Corrupt {
            path: path.to_owned(),
            what: "the path is not UTF-8".into(),
        })?;
        self.conn
            .execute("VACUUM INTO ?1", [target])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The number of packs and their total size.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn pack_totals(&self) -> Result<(u64, u64)> {
        self.conn
            .query_row("SELECT count(*), COALESCE(SUM(size), 0) FROM packs", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| self.err(e))
    }

    /// Files and their bytes in each snapshot of a series (regular files
    /// only: the size a full restore writes), by snapshot key.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn logical_sizes(&self, series: SeriesKey, file_kind: u8) -> Result<Vec<(SnapshotKey, u64, u64)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.id, count(v.id), COALESCE(SUM(v.size), 0) FROM snapshots s \
                 LEFT JOIN versions v ON v.series_id = s.series_id AND v.kind = ?2 \
                   AND v.from_seq <= s.seq AND (v.to_seq IS NULL OR s.seq < v.to_seq) \
                 WHERE s.series_id = ?1 GROUP BY s.id ORDER BY s.seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params![series.0, file_kind], |r| {
                Ok((
                    SnapshotKey(r.get(0)?),
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }
}

fn chunk_list(bytes: &[u8]) -> Option<Vec<Hash32>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(32)
            .map(|c| Hash32(c.try_into().expect("32 bytes")))
            .collect(),
    )
}

/// `bytes` in lower-case hex, as store ids print.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A hash column holding a value that is not 32 bytes long.
#[derive(Debug, thiserror::Error)]
#[error("{what} holds {len} bytes, not a 32-byte hash")]
struct BadHash {
    /// The table, row and column.
    what: String,
    len: usize,
}

/// Column `idx` of `r` as a hash. A value of another length (a damaged row)
/// is an error naming the row, so that no reader takes it for a real hash.
fn hash_at(r: &Row<'_>, idx: usize, what: impl FnOnce() -> String) -> rusqlite::Result<Hash32> {
    let bytes: Vec<u8> = r.get(idx)?;
    match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(h) => Ok(Hash32(h)),
        Err(_) => Err(rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Blob,
            Box::new(BadHash {
                what: what(),
                len: bytes.len(),
            }),
        )),
    }
}

/// Wraps SQLite's error, telling apart the two a user acts on differently:
/// a damaged file or row (repair it) and a full disk (free space).
pub(crate) fn sql(path: &Path, source: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::FromSqlConversionFailure(_, _, e) = &source {
        if let Some(bad) = e.downcast_ref::<BadHash>() {
            return Error::Damaged {
                path: path.to_owned(),
                reason: bad.to_string(),
            };
        }
    }
    if let rusqlite::Error::SqliteFailure(e, _) = &source {
        match e.code {
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                return Error::Damaged {
                    path: path.to_owned(),
                    reason: source.to_string(),
                }
            }
            ErrorCode::DiskFull => return Error::NoSpace { path: path.to_owned() },
            // SQLite reports ENOSPC from a sync or a truncation as a plain
            // I/O error; the file system says whether it is full.
            ErrorCode::SystemIoFailure if disk_full(path) => return Error::NoSpace { path: path.to_owned() },
            _ => {}
        }
    }
    Error::Sqlite {
        path: path.to_owned(),
        error: source,
    }
}

/// Whether the file system holding `path` has no block left for us.
fn disk_full(path: &Path) -> bool {
    let dir = path.parent().unwrap_or(path);
    rustix::fs::statvfs(dir).is_ok_and(|s| s.f_bavail == 0)
}

/// `path` as an SQLite `file:` URI, escaping what a URI gives meaning to.
fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn series_from_row(r: &Row<'_>) -> rusqlite::Result<SeriesRecord> {
    Ok(SeriesRecord {
        key: SeriesKey(r.get(0)?),
        name: r.get(1)?,
        host: r.get(2)?,
        source: r.get(3)?,
    })
}

fn snapshot_from_row(r: &Row<'_>) -> rusqlite::Result<SnapshotRecord> {
    let row6 = |start: usize| -> rusqlite::Result<[u64; 6]> {
        let mut out = [0u64; 6];
        for (i, v) in out.iter_mut().enumerate() {
            *v = r.get::<_, i64>(start + i)? as u64;
        }
        Ok(out)
    };
    let key: i64 = r.get(0)?;
    let root_tree = hash_at(r, 7, || format!("snapshots row {key}, column root_tree"))?;
    Ok(SnapshotRecord {
        key: SnapshotKey(key),
        snap_id: r.get(1)?,
        series: SeriesKey(r.get(2)?),
        seq: r.get::<_, i64>(3)? as u64,
        started_ns: r.get(4)?,
        ended_ns: r.get(5)?,
        parent: r.get(6)?,
        root_tree,
        exit_code: r.get(8)?,
        partial: r.get(9)?,
        counts: Counts {
            dirs: row6(10)?,
            files: row6(16)?,
            bytes: row6(22)?,
        },
        new_data: r.get::<_, i64>(28)? as u64,
        published: r.get(29)?,
    })
}

pub(crate) fn entry_from_row(r: &Row<'_>, s: usize) -> rusqlite::Result<Entry> {
    let u = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(s + i)? as u64) };
    Ok(Entry {
        kind: r.get(s)?,
        size: u(1)?,
        mtime_sec: r.get(s + 2)?,
        mtime_nsec: r.get(s + 3)?,
        mode: r.get(s + 4)?,
        uid: r.get(s + 5)?,
        gid: r.get(s + 6)?,
        user: r.get(s + 7)?,
        group: r.get(s + 8)?,
        rdev: u(9)?,
        link: (u(10)?, u(11)?),
        xattrs: r.get(s + 12)?,
        chunks: match r.get_ref(s + 13)?.as_blob_or_null()? {
            None => None,
            Some(b) => Some(chunk_list(b).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    s + 13,
                    rusqlite::types::Type::Blob,
                    "a chunk list is not a whole number of 32-byte ids".into(),
                )
            })?),
        },
        target: r.get(s + 14)?,
        dev: u(15)?,
        ino: u(16)?,
        ctime_sec: r.get(s + 17)?,
        ctime_nsec: r.get(s + 18)?,
    })
}

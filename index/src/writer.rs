//! The write transaction: everything one command changes in the catalog, made
//! visible at once by [`Writer::commit`] or not at all.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::{sql, Entry, Hash32, NewSnapshot, PathId, Result, RunErrorRow, SeriesKey, SnapshotKey, VersionKey};

/// One open `IMMEDIATE` transaction on a connection of its own. Dropping it
/// without [`Writer::commit`] rolls everything back.
pub struct Writer {
    path: PathBuf,
    conn: Connection,
    done: bool,
    /// The next free path id, read from `meta` on first use and written back
    /// at commit (paths are a WITHOUT ROWID table keyed by (parent, name)).
    next_path: Option<i64>,
}

impl Writer {
    pub(crate) fn begin(path: &Path) -> Result<Writer> {
        let conn = Connection::open(path).map_err(|e| sql(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| sql(path, e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| sql(path, e))?;
        // A run's rows stay in this many KiB of page cache before they spill
        // to the WAL; more buys little speed and costs memory on large runs.
        conn.pragma_update(None, "cache_size", -8192)
            .map_err(|e| sql(path, e))?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| sql(path, e))?;
        Ok(Writer {
            path: path.to_owned(),
            conn,
            done: false,
            next_path: None,
        })
    }

    fn err(&self, e: rusqlite::Error) -> crate::Error {
        sql(&self.path, e)
    }

    /// Sets a `meta` value.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", [key, value])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The series named `name`, created with `host` and `source` if new.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn ensure_series(&mut self, name: &str, host: &str, source: &[u8]) -> Result<SeriesKey> {
        let found: Option<i64> = self
            .conn
            .query_row("SELECT id FROM series WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some(id) = found {
            return Ok(SeriesKey(id));
        }
        self.conn
            .execute(
                "INSERT INTO series (name, host, source) VALUES (?1, ?2, ?3)",
                params![name, host, source],
            )
            .map_err(|e| self.err(e))?;
        Ok(SeriesKey(self.conn.last_insert_rowid()))
    }

    /// The interned path `name` inside `parent`, created if new.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn intern_path(&mut self, parent: PathId, name: &[u8]) -> Result<PathId> {
        let found: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM paths WHERE parent = ?1 AND name = ?2")
            .and_then(|mut s| s.query_row(params![parent.0, name], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))?;
        if let Some(id) = found {
            return Ok(PathId(id));
        }
        let id = match self.next_path {
            Some(id) => id,
            None => self
                .conn
                .query_row("SELECT value FROM meta WHERE key = 'next_path_id'", [], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(|e| self.err(e))?
                .parse::<i64>()
                .map_err(|_| crate::Error::Corrupt {
                    path: self.path.clone(),
                    what: "meta next_path_id is not a number".into(),
                })?,
        };
        self.conn
            .prepare_cached("INSERT INTO paths (parent, name, id) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![parent.0, name, id]))
            .map_err(|e| self.err(e))?;
        self.next_path = Some(id + 1);
        Ok(PathId(id))
    }

    /// Records a durable pack and the blobs it holds:
    /// (id, kind, compression, offset, stored_len, raw_len).
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn add_pack(&mut self, pack: &Hash32, size: u64, blobs: &[(Hash32, u8, u8, u64, u32, u32)]) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO packs (pack_id, size) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![&pack.0[..], size as i64]))
            .map_err(|e| self.err(e))?;
        let pack_row: i64 = self
            .conn
            .query_row("SELECT id FROM packs WHERE pack_id = ?1", [&pack.0[..]], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO blobs (id, pack, kind, compression, offset, stored_len, raw_len) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(|e| sql(&self.path, e))?;
        for (id, kind, compression, offset, stored, raw) in blobs {
            stmt.execute(params![
                &id.0[..],
                pack_row,
                kind,
                compression,
                *offset as i64,
                stored,
                raw
            ])
            .map_err(|e| sql(&self.path, e))?;
        }
        Ok(())
    }

    /// Opens a version of `path` in `series` from sequence `from_seq` on.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn open_version(&mut self, series: SeriesKey, path: PathId, from_seq: u64, e: &Entry) -> Result<VersionKey> {
        self.conn
            .prepare_cached(
                "INSERT INTO versions (series_id, path_id, from_seq, to_seq, kind, size, mtime_sec, mtime_nsec, \
                 mode, uid, gid, user, grp, rdev, link_dev, link_ino, xattrs, chunks, target, dev, ino, \
                 ctime_sec, ctime_nsec) VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
                 ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    series.0,
                    path.0,
                    from_seq as i64,
                    e.kind,
                    e.size as i64,
                    e.mtime_sec,
                    e.mtime_nsec,
                    e.mode,
                    e.uid,
                    e.gid,
                    e.user,
                    e.group,
                    e.rdev as i64,
                    e.link.0 as i64,
                    e.link.1 as i64,
                    e.xattrs,
                    e.chunks
                        .as_ref()
                        .map(|c| c.iter().flat_map(|h| h.0).collect::<Vec<u8>>()),
                    e.target,
                    e.dev as i64,
                    e.ino as i64,
                    e.ctime_sec,
                    e.ctime_nsec
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(VersionKey(self.conn.last_insert_rowid()))
    }

    /// Ends version `key` before sequence `to_seq`.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn close_version(&mut self, key: VersionKey, to_seq: u64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE versions SET to_seq = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![key.0, to_seq as i64]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Ends every open version of a series before sequence `to_seq`: a run
    /// that does not compare against the series' latest snapshot
    /// (`--no-baseline`) records its whole tree afresh.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn close_all_versions(&mut self, series: SeriesKey, to_seq: u64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE versions SET to_seq = ?2 WHERE series_id = ?1 AND to_seq IS NULL")
            .and_then(|mut s| s.execute(params![series.0, to_seq as i64]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Updates the change-detection fields of version `key` in place: they
    /// moved, but the version (content and recorded metadata) did not.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn update_change_info(&mut self, key: VersionKey, e: &Entry) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE versions SET dev = ?2, ino = ?3, ctime_sec = ?4, ctime_nsec = ?5 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![key.0, e.dev as i64, e.ino as i64, e.ctime_sec, e.ctime_nsec]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records a snapshot and its run.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn add_snapshot(&mut self, s: &NewSnapshot, errors: &[RunErrorRow]) -> Result<SnapshotKey> {
        let c = &s.counts;
        let mut values: Vec<rusqlite::types::Value> = vec![
            s.snap_id.clone().into(),
            s.series.0.into(),
            (s.seq as i64).into(),
            s.started_ns.into(),
            s.ended_ns.into(),
            s.parent.clone().into(),
            s.root_tree.0.to_vec().into(),
            (s.exit_code as i64).into(),
            (s.partial as i64).into(),
        ];
        for row in [c.dirs, c.files, c.bytes] {
            values.extend(row.iter().map(|v| rusqlite::types::Value::from(*v as i64)));
        }
        values.push((s.new_data as i64).into());
        values.push(s.object.clone().into());
        let placeholders = (1..=values.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql_text = format!(
            "INSERT INTO snapshots (snap_id, series_id, seq, started_ns, ended_ns, parent, root_tree, exit_code, \
             partial, dirs_total, dirs_copied, dirs_skipped, dirs_mismatch, dirs_failed, dirs_extras, \
             files_total, files_copied, files_skipped, files_mismatch, files_failed, files_extras, \
             bytes_total, bytes_copied, bytes_skipped, bytes_mismatch, bytes_failed, bytes_extras, \
             new_data, object) VALUES ({placeholders})"
        );
        self.conn
            .execute(&sql_text, rusqlite::params_from_iter(values))
            .map_err(|e| self.err(e))?;
        let key = SnapshotKey(self.conn.last_insert_rowid());
        self.add_run_errors(key, errors)?;
        Ok(key)
    }

    /// Replaces the counts and exit code of a committed run and adds
    /// failures: for deletions after the commit (`--move-files`), which the
    /// immutable snapshot object cannot record.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn update_run(
        &mut self,
        key: SnapshotKey,
        c: &crate::Counts,
        exit_code: u32,
        errors: &[RunErrorRow],
    ) -> Result<()> {
        let mut values: Vec<rusqlite::types::Value> = vec![key.0.into(), (exit_code as i64).into()];
        for row in [c.dirs, c.files, c.bytes] {
            values.extend(row.iter().map(|v| rusqlite::types::Value::from(*v as i64)));
        }
        let sql_text = "UPDATE snapshots SET exit_code = ?2, \
             dirs_total = ?3, dirs_copied = ?4, dirs_skipped = ?5, dirs_mismatch = ?6, dirs_failed = ?7, dirs_extras = ?8, \
             files_total = ?9, files_copied = ?10, files_skipped = ?11, files_mismatch = ?12, files_failed = ?13, \
             files_extras = ?14, bytes_total = ?15, bytes_copied = ?16, bytes_skipped = ?17, bytes_mismatch = ?18, \
             bytes_failed = ?19, bytes_extras = ?20 WHERE id = ?1";
        self.conn
            .execute(sql_text, rusqlite::params_from_iter(values))
            .map_err(|e| self.err(e))?;
        self.add_run_errors(key, errors)
    }

    fn add_run_errors(&mut self, key: SnapshotKey, errors: &[RunErrorRow]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT INTO run_errors (snapshot, path, action, code, message, attempts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .map_err(|e| sql(&self.path, e))?;
        for e in errors {
            stmt.execute(params![key.0, e.path, e.action, e.code, e.message, e.attempts])
                .map_err(|e| sql(&self.path, e))?;
        }
        Ok(())
    }

    /// Removes a snapshot and its run's failures. Version rows are left to
    /// [`Writer::prune_versions`].
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn delete_snapshot(&mut self, key: SnapshotKey) -> Result<()> {
        self.conn
            .execute("DELETE FROM run_errors WHERE snapshot = ?1", [key.0])
            .and_then(|_| self.conn.execute("DELETE FROM snapshots WHERE id = ?1", [key.0]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// After snapshots of `series` were removed: deletes version rows that no
    /// remaining snapshot holds, and reopens rows that end after the newest
    /// remaining snapshot (they are present in it, so the next run must see
    /// them open). Returns the number of rows deleted.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn prune_versions(&mut self, series: SeriesKey) -> Result<u64> {
        let deleted = self
            .conn
            .execute(
                "DELETE FROM versions WHERE series_id = ?1 AND NOT EXISTS ( \
                   SELECT 1 FROM snapshots s WHERE s.series_id = versions.series_id \
                   AND s.seq >= versions.from_seq AND (versions.to_seq IS NULL OR s.seq < versions.to_seq))",
                [series.0],
            )
            .map_err(|e| self.err(e))?;
        let latest: Option<i64> = self
            .conn
            .query_row("SELECT max(seq) FROM snapshots WHERE series_id = ?1", [series.0], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        match latest {
            Some(latest) => self
                .conn
                .execute(
                    "UPDATE versions SET to_seq = NULL WHERE series_id = ?1 AND to_seq > ?2",
                    params![series.0, latest],
                )
                .map_err(|e| self.err(e))?,
            None => self
                .conn
                .execute("DELETE FROM series WHERE id = ?1", [series.0])
                .map_err(|e| self.err(e))?,
        };
        Ok(deleted as u64)
    }

    /// Removes the rows of blobs no snapshot needs any more.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn delete_blobs(&mut self, ids: &[Hash32]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM blobs WHERE id = ?1")
            .map_err(|e| sql(&self.path, e))?;
        for id in ids {
            stmt.execute([&id.0[..]]).map_err(|e| sql(&self.path, e))?;
        }
        Ok(())
    }

    /// Removes the row of a pack no blob points at any more (a lost pack
    /// whose content was stored again elsewhere); returns whether it did.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn delete_pack_if_empty(&mut self, pack: &Hash32) -> Result<bool> {
        self.conn
            .execute(
                "DELETE FROM packs WHERE pack_id = ?1 \
                 AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.pack = packs.id)",
                [&pack.0[..]],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Removes a pack's row; its blobs must have been deleted or moved.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`], or [`crate::Error::Corrupt`] when blobs still
    /// point at the pack.
    pub fn delete_pack(&mut self, pack: &Hash32) -> Result<()> {
        let left: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM blobs b JOIN packs p ON p.id = b.pack WHERE p.pack_id = ?1",
                [&pack.0[..]],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if left > 0 {
            return Err(crate::Error::Corrupt {
                path: self.path.clone(),
                what: format!("{left} blobs still point at a pack being removed"),
            });
        }
        self.conn
            .execute("DELETE FROM packs WHERE pack_id = ?1", [&pack.0[..]])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records that snapshot `key`'s object is in the store.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`].
    pub fn mark_published(&mut self, key: SnapshotKey) -> Result<()> {
        self.conn
            .execute("UPDATE snapshots SET published = 1 WHERE id = ?1", [key.0])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Makes every change of this transaction durable and visible at once.
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`]; nothing is committed then.
    pub fn commit(mut self) -> Result<()> {
        if let Some(next) = self.next_path {
            self.conn
                .execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'next_path_id'",
                    [next.to_string()],
                )
                .map_err(|e| self.err(e))?;
        }
        self.done = true;
        observe("index commit");
        #[cfg(feature = "testing")]
        self.conn.commit_hook(Some(|| {
            observe("index commit inside sqlite");
            false
        }));
        self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
        observe("index committed");
        // FORMAT.md invariant 10. Folding the WAL back into the database now keeps it from growing
        // across runs while readers hold it open. A checkpoint that cannot
        // finish (a reader is in the way) is no error: the commit is durable
        // in the WAL, and the next one tries again.
        let _ = self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        observe("index checkpointed");
        Ok(())
    }
}

/// A function told of each step of every commit, by crash tests.
#[cfg(feature = "testing")]
static OBSERVER: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Has `f` told of each step of every index commit (before it, inside
/// SQLite's commit, after it, after the checkpoint), so crash tests can
/// number them together with the store's steps. Only the first call counts.
#[cfg(feature = "testing")]
pub fn observe_commits(f: fn(&str)) {
    let _ = OBSERVER.set(f);
}

#[inline]
fn observe(step: &str) {
    #[cfg(feature = "testing")]
    if let Some(f) = OBSERVER.get() {
        f(step);
    }
    #[cfg(not(feature = "testing"))]
    let _ = step;
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn entry(size: u64) -> Entry {
        Entry {
            kind: 2,
            size,
            mode: 0o644,
            xattrs: vec![],
            ..Entry::default()
        }
    }

    #[test]
    fn a_version_spans_the_snapshots_that_hold_it() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open_or_create(&dir.path().join("index.sqlite")).unwrap();
        let mut w = index.writer().unwrap();
        let s = w.ensure_series("h:/src", "h", b"/src").unwrap();
        let p = w.intern_path(ROOT_PATH, b"a.txt").unwrap();
        let v1 = w.open_version(s, p, 1, &entry(1)).unwrap();
        w.commit().unwrap();
        let mut w = index.writer().unwrap();
        w.close_version(v1, 3).unwrap();
        w.open_version(s, p, 3, &entry(2)).unwrap();
        w.commit().unwrap();
        for (seq, size) in [(1, 1), (2, 1), (3, 2), (9, 2)] {
            let kids = index.children_at(s, ROOT_PATH, seq).unwrap();
            assert_eq!(kids.len(), 1);
            assert_eq!(kids[0].entry.size, size);
        }
        assert_eq!(index.versions_of(s, p).unwrap().len(), 2);
    }

    #[test]
    fn an_uncommitted_writer_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open_or_create(&dir.path().join("index.sqlite")).unwrap();
        let mut w = index.writer().unwrap();
        w.ensure_series("x", "h", b"/").unwrap();
        drop(w);
        assert!(index.all_series().unwrap().is_empty());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        drop(Index::open_or_create(&path).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        drop(conn);
        assert!(matches!(Index::open(&path), Err(Error::NewerSchema { .. })));
    }

    #[test]
    fn migrations_run_from_every_earlier_version() {
        // Version 0 is an empty database; each later version is reached by
        // applying the migrations in order.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        drop(rusqlite::Connection::open(&path).unwrap());
        let index = Index::open(&path).unwrap();
        assert_eq!(index.count_rows("paths").unwrap(), 1);
    }

    #[test]
    fn a_read_only_open_reads_any_path_and_never_migrates() {
        let dir = tempfile::tempdir().unwrap();
        // Characters a `file:` URI gives meaning to.
        let path = dir.path().join("a b?c#d%e").join("index.sqlite");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let index = Index::open_or_create(&path).unwrap();
        let mut w = index.writer().unwrap();
        w.set_meta("repository", "r").unwrap();
        w.commit().unwrap();
        drop(index);
        for access in [crate::Access::ReadOnly, crate::Access::Immutable] {
            let ro = Index::open_as(&path, access).unwrap();
            assert_eq!(ro.meta("repository").unwrap().as_deref(), Some("r"));
            assert_eq!(ro.reopen().unwrap().access(), access);
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION - 1).unwrap();
        drop(conn);
        let err = Index::open_as(&path, crate::Access::ReadOnly).err().unwrap();
        assert!(
            matches!(err, Error::OlderSchema { .. }) && err.wants_private_copy(),
            "{err}"
        );
    }
}

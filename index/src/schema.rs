//! The schema and its numbered migrations. Migration N brings a database from
//! schema version N-1 to N; the version lives in `PRAGMA user_version`.
//! Released migrations are frozen: a change is a new migration.

/// Each entry is one migration; the schema version is the number applied.
pub const MIGRATIONS: &[&str] = &[MIGRATION_1];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const MIGRATION_1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE series (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL UNIQUE,
    host   TEXT NOT NULL,
    source BLOB NOT NULL
);

CREATE TABLE snapshots (
    id              INTEGER PRIMARY KEY,
    snap_id         TEXT NOT NULL UNIQUE,
    series_id       INTEGER NOT NULL REFERENCES series(id),
    seq             INTEGER NOT NULL,
    started_ns      INTEGER NOT NULL,
    ended_ns        INTEGER NOT NULL,
    parent          TEXT,
    root_tree       BLOB NOT NULL,
    exit_code       INTEGER NOT NULL,
    partial         INTEGER NOT NULL,
    dirs_total INTEGER NOT NULL, dirs_copied INTEGER NOT NULL, dirs_skipped INTEGER NOT NULL,
    dirs_mismatch INTEGER NOT NULL, dirs_failed INTEGER NOT NULL, dirs_extras INTEGER NOT NULL,
    files_total INTEGER NOT NULL, files_copied INTEGER NOT NULL, files_skipped INTEGER NOT NULL,
    files_mismatch INTEGER NOT NULL, files_failed INTEGER NOT NULL, files_extras INTEGER NOT NULL,
    bytes_total INTEGER NOT NULL, bytes_copied INTEGER NOT NULL, bytes_skipped INTEGER NOT NULL,
    bytes_mismatch INTEGER NOT NULL, bytes_failed INTEGER NOT NULL, bytes_extras INTEGER NOT NULL,
    new_data        INTEGER NOT NULL,
    object          BLOB NOT NULL,
    published       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (series_id, seq)
);
CREATE INDEX snapshots_started ON snapshots (series_id, started_ns);

CREATE TABLE run_errors (
    snapshot INTEGER NOT NULL REFERENCES snapshots(id),
    path     BLOB NOT NULL,
    action   TEXT NOT NULL,
    code     INTEGER NOT NULL,
    message  TEXT NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX run_errors_snapshot ON run_errors (snapshot);

CREATE TABLE paths (
    parent INTEGER NOT NULL,
    name   BLOB NOT NULL,
    id     INTEGER NOT NULL,
    PRIMARY KEY (parent, name)
) WITHOUT ROWID;
INSERT INTO paths (parent, name, id) VALUES (0, x'', 1);
INSERT INTO meta (key, value) VALUES ('next_path_id', '2');

CREATE TABLE versions (
    id         INTEGER PRIMARY KEY,
    series_id  INTEGER NOT NULL REFERENCES series(id),
    path_id    INTEGER NOT NULL,
    from_seq   INTEGER NOT NULL,
    to_seq     INTEGER,
    kind       INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    mtime_sec  INTEGER NOT NULL,
    mtime_nsec INTEGER NOT NULL,
    mode       INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    gid        INTEGER NOT NULL,
    user       BLOB NOT NULL,
    grp        BLOB NOT NULL,
    rdev       INTEGER NOT NULL,
    link_dev   INTEGER NOT NULL,
    link_ino   INTEGER NOT NULL,
    xattrs     BLOB NOT NULL,
    chunks     BLOB,
    target     BLOB,
    dev        INTEGER NOT NULL,
    ino        INTEGER NOT NULL,
    ctime_sec  INTEGER NOT NULL,
    ctime_nsec INTEGER NOT NULL
);
CREATE INDEX versions_path ON versions (path_id, series_id, from_seq);

CREATE TABLE packs (
    id      INTEGER PRIMARY KEY,
    pack_id BLOB NOT NULL UNIQUE,
    size    INTEGER NOT NULL
);

CREATE TABLE blobs (
    id          BLOB PRIMARY KEY,
    pack        INTEGER NOT NULL REFERENCES packs(id),
    kind        INTEGER NOT NULL,
    compression INTEGER NOT NULL,
    offset      INTEGER NOT NULL,
    stored_len  INTEGER NOT NULL,
    raw_len     INTEGER NOT NULL
) WITHOUT ROWID;
"#;

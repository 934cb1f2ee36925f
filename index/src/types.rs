//! The plain data that crosses the index's API. The index keeps its own id
//! types, so that it shares nothing with the store; the engine converts.

/// A 32-byte digest (blob, tree or pack id) as the index keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; 32]);

/// Row id of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesKey(pub i64);

/// Row id of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SnapshotKey(pub i64);

/// An interned path: (parent, name) stored once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(pub i64);

/// The path of every series' root directory.
pub const ROOT_PATH: PathId = PathId(1);

/// Row id of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionKey(pub i64);

/// A series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRecord {
    /// Row id.
    pub key: SeriesKey,
    /// Its name.
    pub name: String,
    /// The host of its first run.
    pub host: String,
    /// The absolute source root of its first run.
    pub source: Vec<u8>,
}

/// The Dirs, Files and Bytes rows of a run's summary; each is
/// `[total, copied, skipped, mismatch, failed, extras]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Dirs row.
    pub dirs: [u64; 6],
    /// Files row.
    pub files: [u64; 6],
    /// Bytes row.
    pub bytes: [u64; 6],
}

/// A committed snapshot and its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// Row id.
    pub key: SnapshotKey,
    /// The snapshot id, 64 hex digits.
    pub snap_id: String,
    /// Its series.
    pub series: SeriesKey,
    /// Sequence number in the series, from 1.
    pub seq: u64,
    /// Run start, nanoseconds since the Unix epoch.
    pub started_ns: i64,
    /// Run end, nanoseconds since the Unix epoch.
    pub ended_ns: i64,
    /// The baseline's snapshot id.
    pub parent: Option<String>,
    /// The root tree's id.
    pub root_tree: Hash32,
    /// The run's exit code.
    pub exit_code: u32,
    /// Whether some entry failed.
    pub partial: bool,
    /// The summary counts.
    pub counts: Counts,
    /// Content bytes newly stored.
    pub new_data: u64,
    /// Whether its snapshot object is known to be in the store.
    pub published: bool,
}

/// A snapshot about to be committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSnapshot {
    /// The snapshot id, 64 hex digits.
    pub snap_id: String,
    /// Its series.
    pub series: SeriesKey,
    /// Sequence number in the series.
    pub seq: u64,
    /// Run start, ns since the epoch.
    pub started_ns: i64,
    /// Run end, ns since the epoch.
    pub ended_ns: i64,
    /// Baseline snapshot id.
    pub parent: Option<String>,
    /// Root tree id.
    pub root_tree: Hash32,
    /// Exit code.
    pub exit_code: u32,
    /// Partial flag.
    pub partial: bool,
    /// Summary counts.
    pub counts: Counts,
    /// New data bytes.
    pub new_data: u64,
    /// The snapshot object's bytes, kept so a later writer can publish it if
    /// this process dies before it does.
    pub object: Vec<u8>,
}

/// One failure of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunErrorRow {
    /// Path relative to the source root.
    pub path: Vec<u8>,
    /// The robocopy action.
    pub action: String,
    /// OS error number, 0 if none.
    pub code: i32,
    /// The message.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
}

/// What a version records of an entry. Every field but `dev`, `ino` and
/// `ctime_*` is part of the entry's identity: a change to any of them makes a
/// new version; those four only serve change detection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Entry kind (the tree encoding's kind byte).
    pub kind: u8,
    /// Size.
    pub size: u64,
    /// Modification time, seconds.
    pub mtime_sec: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Owner name.
    pub user: Vec<u8>,
    /// Group name.
    pub group: Vec<u8>,
    /// Device number of device nodes.
    pub rdev: u64,
    /// Hard-link identity, (0, 0) when none.
    pub link: (u64, u64),
    /// Encoded extended attributes (opaque to the index).
    pub xattrs: Vec<u8>,
    /// A file's chunk ids, in order.
    pub chunks: Option<Vec<Hash32>>,
    /// A symlink's target.
    pub target: Option<Vec<u8>>,
    /// Device of the inode (change detection only).
    pub dev: u64,
    /// Inode number (change detection only).
    pub ino: u64,
    /// Change time, seconds (change detection only).
    pub ctime_sec: i64,
    /// Change time, nanoseconds (change detection only).
    pub ctime_nsec: u32,
}

impl Entry {
    /// True when both record the same version: equal in everything but the
    /// change-detection fields.
    pub fn same_version(&self, other: &Entry) -> bool {
        self.kind == other.kind
            && self.size == other.size
            && self.mtime_sec == other.mtime_sec
            && self.mtime_nsec == other.mtime_nsec
            && self.mode == other.mode
            && self.uid == other.uid
            && self.gid == other.gid
            && self.user == other.user
            && self.group == other.group
            && self.rdev == other.rdev
            && self.link == other.link
            && self.xattrs == other.xattrs
            && self.chunks == other.chunks
            && self.target == other.target
    }
}

/// An entry of a directory as it was in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildVersion {
    /// The version row.
    pub key: VersionKey,
    /// The entry's path.
    pub path: PathId,
    /// The entry's name.
    pub name: Vec<u8>,
    /// What was recorded.
    pub entry: Entry,
}

/// One version of a path: the entry and the range of sequence numbers
/// `[from_seq, to_seq)` in which the series held it (`to_seq` None: still).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    /// The version row.
    pub key: VersionKey,
    /// First sequence number holding it.
    pub from_seq: u64,
    /// First sequence number no longer holding it.
    pub to_seq: Option<u64>,
    /// What was recorded.
    pub entry: Entry,
}

/// Where a blob lives, as the index records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRecord {
    /// The pack's id.
    pub pack: Hash32,
    /// Blob kind byte (pack footer encoding).
    pub kind: u8,
    /// Compression byte (pack footer encoding).
    pub compression: u8,
    /// Offset in the pack.
    pub offset: u64,
    /// Stored length.
    pub stored_len: u32,
    /// Content length.
    pub raw_len: u32,
}

//! Verify: check that a repository holds what its index says, and with
//! `--read-data` that every stored byte still decodes to its id.
//!
//! ```text
//! structure:  every pack of the index exists, has its size, and its footer
//!             lists each blob exactly where the index puts it
//!             every snapshot object decodes and matches its index row
//!             every tree of every snapshot decodes; every chunk it names is
//!             in the index; the index's entries agree with the trees
//! read-data:  every (or a subset of the) pack is read whole: its id is the
//!             hash of its bytes, and every blob decompresses to its id
//! damage:     each problem names the pack or blob, and the snapshots and
//!             paths it affects
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use rayon::prelude::*;
use robovault_index::{BlobRecord, Hash32, Index, PathId, SeriesKey, SnapshotRecord, ROOT_PATH};
use robovault_store::{pack, BlobId, NodeContent, ObjectKind, PackId, SnapshotId, TreeId};

use crate::convert::{to_blob, to_hash, to_pack};
use crate::node::entry_of_tree_node;
use crate::paths::child_rel;
use crate::repository::local::Repository;
use crate::repository::options::RepositoryOptions;
use crate::{display_bytes, Error, Result};

/// How much data `verify` reads.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ReadData {
    /// Structure only: footers, trees, snapshot objects, the index.
    #[default]
    None,
    /// Every pack, whole.
    All,
    /// Part `n` of `m` (1-based): the packs whose position in id order is
    /// `n - 1` modulo `m`.
    Part {
        /// Which part.
        n: u32,
        /// Of how many.
        m: u32,
    },
    /// About this percentage of the packs, chosen by their ids.
    Percent(f64),
}

impl ReadData {
    fn selects(&self, position: usize, id: &Hash32) -> bool {
        match *self {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Part { n, m } => position % m as usize == (n as usize - 1),
            ReadData::Percent(p) => {
                let x = u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes"));
                ((x % 10_000) as f64) < p * 100.0
            }
        }
    }
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The object: `pack <id>`, `blob <id>`, `tree <id>`, `snapshot <id>`, `index`.
    pub object: String,
    /// What is wrong.
    pub message: String,
    /// Snapshots that need the object.
    pub snapshots: Vec<String>,
    /// Paths (`<snapshot prefix>:<path>`) whose content needs it.
    pub paths: Vec<String>,
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifySummary {
    /// Packs the index knows.
    pub packs: u64,
    /// Packs read whole.
    pub packs_read: u64,
    /// Bytes read from packs under `--read-data`.
    pub bytes_read: u64,
    /// Blobs decompressed and re-hashed.
    pub blobs_read: u64,
    /// Snapshots checked.
    pub snapshots: u64,
    /// Distinct trees decoded.
    pub trees: u64,
    /// Problems found; empty when the repository is sound.
    pub problems: Vec<Problem>,
    /// Packs in the store that the index does not know (left by an
    /// interrupted run; `gc` removes them). Not damage.
    pub unreferenced_packs: Vec<String>,
}

/// Checks the repository `repo`.
///
/// # Errors
/// Only when the repository cannot be opened or its index read (exit 16);
/// damage is reported in the summary.
pub fn verify(repo: &RepositoryOptions, read: ReadData) -> Result<VerifySummary> {
    verify_with(repo, read, &crate::Silent)
}

/// [`verify`], telling `reporter` of each pack checked (a pack counts as a
/// file in [`crate::Progress`]).
///
/// # Errors
/// As [`verify`].
pub fn verify_with(repo: &RepositoryOptions, read: ReadData, reporter: &dyn crate::Reporter) -> Result<VerifySummary> {
    let repo = Repository::open(repo)?;
    let mut summary = VerifySummary::default();
    let mut damage: Vec<Damage> = Vec::new();
    // Every check below sees one state of the index: a forget or gc
    // committing meanwhile must not look like damage.
    let index = repo.index()?;
    let _view = index.pin()?;
    check_packs(&repo, &index, read, &mut summary, &mut damage, reporter)?;
    let snaps = index.snapshots(None)?;
    robovault_store::pause_point("verify-listed");
    summary.snapshots = snaps.len() as u64;
    let mut walker = TreeCheck {
        repo: &repo,
        index: &index,
        seen_trees: HashSet::new(),
        seen_dirs: HashSet::new(),
        known_blobs: HashSet::new(),
        problems: Vec::new(),
    };
    for s in &snaps {
        walker.check_snapshot(s)?;
    }
    summary.trees = walker.seen_trees.len() as u64;
    summary.problems.extend(walker.problems);
    // Name what each damaged pack or blob affects, from one walk of the trees.
    let needed: HashSet<Hash32> = damage.iter().flat_map(|d| d.blobs.iter().copied()).collect();
    let users = affected(&repo, &index, &snaps, &needed)?;
    for d in damage {
        let mut hit_snaps: HashSet<&str> = HashSet::new();
        let mut paths = BTreeSet::new();
        for b in &d.blobs {
            if let Some(u) = users.get(b) {
                hit_snaps.extend(u.snapshots.iter().map(String::as_str));
                paths.extend(u.paths.iter().cloned());
            }
        }
        summary.problems.push(Problem {
            object: d.object,
            message: d.message,
            snapshots: snaps
                .iter()
                .filter(|s| hit_snaps.contains(s.snap_id.as_str()))
                .map(|s| s.snap_id.clone())
                .collect(),
            paths: paths.into_iter().collect(),
        });
    }
    if repo.store().config().encrypted() {
        // A marker makes every cache forget its snapshot: it must be one
        // that was sealed with the repository's keys.
        for name in repo.store().backend().list(robovault_store::ObjectKind::Marker)? {
            match crate::repository::remote::check_marker(repo.store(), &name) {
                Ok(()) => {}
                Err(Error::Store(e)) => summary.problems.push(Problem {
                    object: format!("deletion marker deleted/{name}"),
                    message: e.to_string(),
                    snapshots: Vec::new(),
                    paths: Vec::new(),
                }),
                Err(e) => return Err(e),
            }
        }
    }
    summary.unreferenced_packs = repo.orphan_packs()?;
    Ok(summary)
}

fn pack_text(p: &Hash32) -> String {
    to_pack(p).to_hex()
}

/// One damaged pack or blob, and the blobs whose content it loses.
struct Damage {
    object: String,
    message: String,
    blobs: Vec<Hash32>,
}

fn check_packs(
    repo: &Repository,
    index: &Index,
    read: ReadData,
    summary: &mut VerifySummary,
    damage: &mut Vec<Damage>,
    reporter: &dyn crate::Reporter,
) -> Result<()> {
    let packs = index.packs()?;
    summary.packs = packs.len() as u64;
    let sizes: HashMap<Hash32, u64> = packs.iter().copied().collect();
    let positions: HashMap<Hash32, usize> = packs.iter().enumerate().map(|(i, (p, _))| (*p, i)).collect();
    // Group the index's blobs by pack, then check packs in parallel.
    let mut groups: Vec<(Hash32, Vec<(Hash32, BlobRecord)>)> = Vec::new();
    index.for_each_pack_blobs::<Error>(|pack, blobs| {
        groups.push((pack, blobs));
        Ok(())
    })?;
    let results = Mutex::new((0u64, 0u64, 0u64));
    reporter.progress(crate::Progress::Found {
        files: groups.len() as u64,
        bytes: groups.iter().map(|(p, _)| sizes.get(p).copied().unwrap_or(0)).sum(),
    });
    let found: Vec<Vec<(Hash32, Issue)>> = groups
        .par_iter()
        .map(|(pack, blobs)| {
            let read_it = read.selects(positions.get(pack).copied().unwrap_or(0), pack);
            let issues = check_pack(repo, pack, sizes.get(pack).copied(), blobs, read_it, &results);
            reporter.progress(crate::Progress::Done {
                bytes: sizes.get(pack).copied().unwrap_or(0),
            });
            issues
        })
        .collect();
    let (packs_read, bytes, blobs_read) = *results.lock().unwrap_or_else(|p| p.into_inner());
    summary.packs_read = packs_read;
    summary.bytes_read = bytes;
    summary.blobs_read = blobs_read;
    for ((pack, blobs), issues) in groups.iter().zip(found) {
        damage.extend(pack_damage(pack, blobs, issues));
    }
    Ok(())
}

/// What one check of a pack found wrong.
enum Issue {
    /// The whole pack: missing, wrong size, unreadable footer.
    Pack(String),
    /// The pack's bytes do not hash to its id; damaged blobs explain that.
    PackHash,
    /// One blob.
    Blob(String),
}

/// The problems of one pack: one for the pack as a whole, losing every blob
/// of it, and one per damaged blob, losing that blob only.
fn pack_damage(pack: &Hash32, blobs: &[(Hash32, BlobRecord)], issues: Vec<(Hash32, Issue)>) -> Vec<Damage> {
    let mut whole = Vec::new();
    let mut hash_mismatch = false;
    let mut per_blob: Vec<(Hash32, Vec<String>)> = Vec::new();
    for (blob, issue) in issues {
        match issue {
            Issue::Pack(m) => whole.push(m),
            Issue::PackHash => hash_mismatch = true,
            Issue::Blob(m) => match per_blob.iter_mut().find(|(b, _)| *b == blob) {
                Some((_, ms)) => ms.push(m),
                None => per_blob.push((blob, vec![m])),
            },
        }
    }
    let mut out = Vec::new();
    if hash_mismatch && per_blob.is_empty() {
        if whole.is_empty() {
            // Every blob still decodes to its id: the damage is outside
            // them, and no content is lost.
            out.push(Damage {
                object: format!("pack {}", pack_text(pack)),
                message: "content does not hash to its id (every blob in it still checks out)".into(),
                blobs: Vec::new(),
            });
            return out;
        }
        whole.push("content does not hash to its id".into());
    }
    if !whole.is_empty() {
        out.push(Damage {
            object: format!("pack {}", pack_text(pack)),
            message: whole.join("; "),
            blobs: blobs.iter().map(|(b, _)| *b).collect(),
        });
    }
    for (blob, messages) in per_blob {
        out.push(Damage {
            object: format!("blob {}", to_blob(&blob).to_hex()),
            message: messages.join("; "),
            blobs: vec![blob],
        });
    }
    out
}

/// Checks one pack; each issue names the blob (the zero id for the pack).
fn check_pack(
    repo: &Repository,
    pack: &Hash32,
    size: Option<u64>,
    blobs: &[(Hash32, BlobRecord)],
    read_it: bool,
    totals: &Mutex<(u64, u64, u64)>,
) -> Vec<(Hash32, Issue)> {
    let id = to_pack(pack);
    let whole = Hash32::default();
    let store = repo.store();
    let mut issues = Vec::new();
    let actual = match store.backend().size(ObjectKind::Pack, &id.to_hex()) {
        Ok(n) => n,
        Err(e) => return vec![(whole, Issue::Pack(e.to_string()))],
    };
    if size.is_some_and(|s| s != actual) {
        issues.push((
            whole,
            Issue::Pack(format!("is {actual} bytes, the index says {}", size.unwrap_or(0))),
        ));
    }
    let footer = match store.read_pack_footer(&id) {
        Ok(f) => f,
        Err(e) => {
            issues.push((whole, Issue::Pack(e.to_string())));
            return issues;
        }
    };
    let listed: HashMap<BlobId, &pack::PackEntry> = footer.iter().map(|e| (e.id, e)).collect();
    for (blob, rec) in blobs {
        let bid = to_blob(blob);
        match listed.get(&bid) {
            None => issues.push((*blob, Issue::Blob(format!("blob {bid} is not in its footer")))),
            Some(e)
                if (e.offset, e.stored_len, e.raw_len, e.kind.code(), e.compression.code())
                    != (rec.offset, rec.stored_len, rec.raw_len, rec.kind, rec.compression) =>
            {
                issues.push((
                    *blob,
                    Issue::Blob(format!("blob {bid}: the footer and the index disagree on where it is")),
                ))
            }
            Some(_) => {}
        }
    }
    if read_it {
        match read_whole(store, &id, actual, &footer, &mut issues) {
            Ok(n) => {
                let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                t.0 += 1;
                t.1 += actual;
                t.2 += n;
            }
            Err(e) => issues.push((whole, Issue::Pack(e.to_string()))),
        }
    }
    issues
}

/// Reads a pack from start to end, one blob at a time (memory stays at one
/// blob, not one pack): every blob is decoded and checked against its id,
/// and the whole file against the pack id. Returns the blobs checked.
fn read_whole(
    store: &robovault_store::Store,
    id: &PackId,
    len: u64,
    footer: &[pack::PackEntry],
    issues: &mut Vec<(Hash32, Issue)>,
) -> robovault_store::Result<u64> {
    let name = id.to_hex();
    let backend = store.backend();
    let mut hasher = blake3::Hasher::new();
    let mut pos = 0u64;
    let mut entries: Vec<&pack::PackEntry> = footer.iter().collect();
    entries.sort_by_key(|e| e.offset);
    for e in &entries {
        if e.offset > pos {
            hasher.update(&backend.read_range(ObjectKind::Pack, &name, pos, e.offset - pos)?);
        }
        let stored = backend.read_range(ObjectKind::Pack, &name, e.offset, e.stored_len as u64)?;
        hasher.update(&stored);
        if let Err(err) = store.sealing().decode_blob(&e.id, &e.location(*id), &stored) {
            issues.push((to_hash(&e.id), Issue::Blob(err.to_string())));
        }
        pos = e.offset + e.stored_len as u64;
    }
    // The footer and trailer, in pieces of at most 1 MiB.
    while pos < len {
        let n = (len - pos).min(1 << 20);
        hasher.update(&backend.read_range(ObjectKind::Pack, &name, pos, n)?);
        pos += n;
    }
    if PackId(*hasher.finalize().as_bytes()) != *id {
        issues.push((Hash32::default(), Issue::PackHash));
    }
    Ok(entries.len() as u64)
}

struct TreeCheck<'a> {
    repo: &'a Repository,
    index: &'a Index,
    seen_trees: HashSet<TreeId>,
    /// (series, path, tree) already compared with the index.
    seen_dirs: HashSet<(i64, PathId, TreeId)>,
    known_blobs: HashSet<BlobId>,
    problems: Vec<Problem>,
}

impl TreeCheck<'_> {
    fn problem(&mut self, object: String, message: String, snap: &SnapshotRecord, path: &[u8]) {
        self.problems.push(Problem {
            object,
            message,
            snapshots: vec![snap.snap_id.clone()],
            paths: vec![format!("{}:{}", &snap.snap_id[..8], display_bytes(path))],
        });
    }

    fn check_snapshot(&mut self, s: &SnapshotRecord) -> Result<()> {
        if s.published {
            let id = SnapshotId::from_hex(&s.snap_id)?;
            match self.repo.store().read_snapshot(&id) {
                Ok(obj) if obj.root == to_blob(&s.root_tree).to_hex() && obj.seq == s.seq => {}
                Ok(_) => self.problem(
                    format!("snapshot {}", s.snap_id),
                    "its snapshot object disagrees with the index".into(),
                    s,
                    b"",
                ),
                Err(e) => self.problem(format!("snapshot {}", s.snap_id), e.to_string(), s, b""),
            }
        }
        // A work list, not recursion: trees may be as deep as the filesystem allows.
        let mut pending = vec![(ROOT_PATH, to_blob(&s.root_tree), Vec::new())];
        while let Some((path, tree, rel)) = pending.pop() {
            self.check_dir(s, s.series, path, &tree, &rel, &mut pending)?;
        }
        Ok(())
    }

    fn check_dir(
        &mut self,
        s: &SnapshotRecord,
        series: SeriesKey,
        path: PathId,
        tree: &TreeId,
        rel: &[u8],
        pending: &mut Vec<(PathId, TreeId, Vec<u8>)>,
    ) -> Result<()> {
        if !self.seen_dirs.insert((series.0, path, *tree)) {
            return Ok(());
        }
        self.seen_trees.insert(*tree);
        let nodes = match self.repo.read_tree_in(self.index, tree) {
            Ok(t) => t.nodes,
            Err(e) => {
                self.problem(format!("tree {tree}"), e.to_string(), s, rel);
                return Ok(());
            }
        };
        let rows = self.index.children_at(series, path, s.seq)?;
        let names_match = nodes.len() == rows.len() && nodes.iter().zip(&rows).all(|(n, r)| n.name == r.name);
        if !names_match {
            self.problem(
                "index".into(),
                format!(
                    "the entries of directory \"{}\" differ from its tree {tree}",
                    display_bytes(rel)
                ),
                s,
                rel,
            );
        }
        let by_name: HashMap<&[u8], &robovault_index::ChildVersion> =
            rows.iter().map(|r| (r.name.as_slice(), r)).collect();
        let first_subdir = pending.len();
        for n in &nodes {
            let child = child_rel(rel, &n.name);
            let row = by_name.get(n.name.as_slice());
            if let Some(row) = row {
                if !entry_of_tree_node(n).same_version(&row.entry) {
                    self.problem(
                        "index".into(),
                        format!(
                            "entry \"{}\" differs between the index and its tree",
                            display_bytes(&child)
                        ),
                        s,
                        &child,
                    );
                }
            }
            match &n.content {
                NodeContent::Chunks(chunks) => {
                    for c in chunks {
                        if self.known_blobs.contains(c) {
                            continue;
                        }
                        if self.index.has_blob(&to_hash(c))? {
                            self.known_blobs.insert(*c);
                        } else {
                            self.problem(format!("blob {c}"), "is not in the index".into(), s, &child);
                        }
                    }
                }
                NodeContent::Subtree(sub) => {
                    if let Some(row) = row {
                        pending.push((row.path, *sub, child));
                    } else {
                        // Without an index row there is no path id; still decode the tree.
                        self.seen_trees.insert(*sub);
                        if let Err(e) = self.repo.read_tree_in(self.index, sub) {
                            self.problem(format!("tree {sub}"), e.to_string(), s, &child);
                        }
                    }
                }
                _ => {}
            }
        }
        pending[first_subdir..].reverse();
        Ok(())
    }
}

/// The snapshots and paths whose content needs one blob.
#[derive(Default)]
struct Users {
    snapshots: HashSet<String>,
    paths: BTreeSet<String>,
}

/// For each of `blobs` that a snapshot needs, the snapshots and paths whose
/// content needs it: a file for a data blob, a directory (`path/`) for a tree.
fn affected(
    repo: &Repository,
    index: &Index,
    snaps: &[SnapshotRecord],
    blobs: &HashSet<Hash32>,
) -> Result<HashMap<Hash32, Users>> {
    let mut users: HashMap<Hash32, Users> = HashMap::new();
    if blobs.is_empty() {
        return Ok(users);
    }
    let mut note = |blob: Hash32, s: &SnapshotRecord, path: String| {
        let u = users.entry(blob).or_default();
        u.snapshots.insert(s.snap_id.clone());
        u.paths.insert(format!("{}:{path}", &s.snap_id[..8]));
    };
    for s in snaps {
        let mut stack = vec![(to_blob(&s.root_tree), Vec::new())];
        while let Some((tree, rel)) = stack.pop() {
            if blobs.contains(&to_hash(&tree)) {
                note(to_hash(&tree), s, format!("{}/", display_bytes(&rel)));
                continue;
            }
            let Ok(t) = repo.read_tree_in(index, &tree) else {
                continue;
            };
            for n in t.nodes {
                let child = child_rel(&rel, &n.name);
                match n.content {
                    NodeContent::Subtree(sub) => stack.push((sub, child)),
                    NodeContent::Chunks(chunks) => {
                        for c in chunks.iter().filter(|c| blobs.contains(&to_hash(c))) {
                            note(to_hash(c), s, display_bytes(&child));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(users)
}

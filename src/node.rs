//! Entries as the engine sees them: metadata read from the filesystem, turned
//! into a tree node (what the store keeps) and an index entry (what the
//! catalog keeps), and back.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Mutex;

use robovault_index::Entry;
use robovault_store::{BlobId, Node, NodeContent, NodeKind};

use crate::convert::to_hash;

/// What `lstat` said of a source entry, plus what else a node records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceMeta {
    /// Its kind; `None` for sockets, which are never recorded.
    pub kind: Option<NodeKind>,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size (files), 0 otherwise until a symlink's target is known.
    pub size: u64,
    /// Modification time.
    pub mtime: (i64, u32),
    /// Change time.
    pub ctime: (i64, u32),
    /// Device of the inode.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Device number of a device node.
    pub rdev: u64,
    /// Link count.
    pub nlink: u64,
    /// Last access (seconds), for the `--max-lad`/`--min-lad` filters only:
    /// never recorded or compared.
    pub atime: i64,
}

impl SourceMeta {
    /// From `lstat` metadata.
    pub fn from_metadata(m: &Metadata) -> SourceMeta {
        let t = m.file_type();
        let kind = if t.is_dir() {
            Some(NodeKind::Dir)
        } else if t.is_file() {
            Some(NodeKind::File)
        } else if t.is_symlink() {
            Some(NodeKind::Symlink)
        } else if t.is_fifo() {
            Some(NodeKind::Fifo)
        } else if t.is_char_device() {
            Some(NodeKind::CharDevice)
        } else if t.is_block_device() {
            Some(NodeKind::BlockDevice)
        } else {
            None
        };
        let is_device = matches!(kind, Some(NodeKind::CharDevice | NodeKind::BlockDevice));
        SourceMeta {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: if kind == Some(NodeKind::File) { m.size() } else { 0 },
            mtime: (m.mtime(), m.mtime_nsec() as u32),
            ctime: (m.ctime(), m.ctime_nsec() as u32),
            dev: m.dev(),
            ino: m.ino(),
            rdev: if is_device { m.rdev() } else { 0 },
            nlink: m.nlink(),
            atime: m.atime(),
        }
    }

    /// The hard-link identity a node records: only files with several links.
    pub fn hardlink(&self) -> Option<(u64, u64)> {
        (self.kind == Some(NodeKind::File) && self.nlink > 1).then_some((self.dev, self.ino))
    }
}

/// Reads the extended attributes of `path` (not following a symlink), sorted
/// by name. A filesystem without xattr support has none.
pub fn read_xattrs(path: &Path) -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    use std::os::unix::ffi::OsStrExt;
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        // An attribute removed between list and get is simply gone.
        if let Some(value) = xattr::get(path, &name)? {
            out.push((name.as_bytes().to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// Encodes xattrs for the index: per attribute, u16 name length, name, u32
/// value length, value (little-endian), sorted by name.
pub fn encode_xattrs(xattrs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in xattrs {
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// Caches uid and gid to name lookups, which go through NSS.
#[derive(Default)]
pub struct Names {
    users: Mutex<HashMap<u32, Vec<u8>>>,
    groups: Mutex<HashMap<u32, Vec<u8>>>,
}

impl Names {
    /// The user name of `uid`, empty when unknown.
    pub fn user(&self, uid: u32) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let mut map = self.users.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(uid)
            .or_insert_with(|| {
                uzers::get_user_by_uid(uid)
                    .map(|u| u.name().as_bytes().to_vec())
                    .unwrap_or_default()
            })
            .clone()
    }

    /// The group name of `gid`, empty when unknown.
    pub fn group(&self, gid: u32) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let mut map = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(gid)
            .or_insert_with(|| {
                uzers::get_group_by_gid(gid)
                    .map(|g| g.name().as_bytes().to_vec())
                    .unwrap_or_default()
            })
            .clone()
    }
}

/// Builds the node of a source entry.
pub fn make_node(
    name: &[u8],
    meta: &SourceMeta,
    kind: NodeKind,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    names: &Names,
    content: NodeContent,
) -> Node {
    let size = match &content {
        NodeContent::Target(t) => t.len() as u64,
        _ => meta.size,
    };
    Node {
        name: name.to_vec(),
        kind,
        mode: meta.mode,
        uid: meta.uid,
        gid: meta.gid,
        user: names.user(meta.uid),
        group: names.group(meta.gid),
        mtime_sec: meta.mtime.0,
        mtime_nsec: meta.mtime.1,
        size,
        rdev: meta.rdev,
        hardlink: meta.hardlink(),
        xattrs,
        content,
    }
}

/// The index entry of a node; `meta` supplies the change-detection fields.
pub fn entry_of(node: &Node, meta: &SourceMeta) -> Entry {
    Entry {
        kind: node.kind.code(),
        size: node.size,
        mtime_sec: node.mtime_sec,
        mtime_nsec: node.mtime_nsec,
        mode: node.mode,
        uid: node.uid,
        gid: node.gid,
        user: node.user.clone(),
        group: node.group.clone(),
        rdev: node.rdev,
        link: node.hardlink.unwrap_or((0, 0)),
        xattrs: encode_xattrs(&node.xattrs),
        chunks: match &node.content {
            NodeContent::Chunks(c) => Some(c.iter().map(to_hash).collect()),
            _ => None,
        },
        target: match &node.content {
            NodeContent::Target(t) => Some(t.clone()),
            _ => None,
        },
        dev: meta.dev,
        ino: meta.ino,
        ctime_sec: meta.ctime.0,
        ctime_nsec: meta.ctime.1,
    }
}

/// The index entry a tree node records (change-detection fields zero).
pub fn entry_of_tree_node(node: &Node) -> Entry {
    entry_of(node, &SourceMeta::default())
}

/// Decodes the index's xattr encoding.
pub fn decode_xattrs(mut b: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let klen = u16::from_le_bytes(b.get(..2)?.try_into().ok()?) as usize;
        let k = b.get(2..2 + klen)?.to_vec();
        b = &b[2 + klen..];
        let vlen = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let v = b.get(4..4 + vlen)?.to_vec();
        b = &b[4 + vlen..];
        out.push((k, v));
    }
    Some(out)
}

/// Rebuilds the node a baseline index entry records (to carry it into a new
/// snapshot unchanged). `subtree` is the directory's tree, `chunks` a file's.
pub fn node_of_entry(name: &[u8], e: &Entry, chunks: Option<Vec<BlobId>>, subtree: Option<BlobId>) -> Option<Node> {
    let kind = NodeKind::from_code(e.kind)?;
    let content = match kind {
        NodeKind::Dir => NodeContent::Subtree(subtree?),
        NodeKind::File => NodeContent::Chunks(chunks?),
        NodeKind::Symlink => NodeContent::Target(e.target.clone()?),
        _ => NodeContent::None,
    };
    Some(Node {
        name: name.to_vec(),
        kind,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        user: e.user.clone(),
        group: e.group.clone(),
        mtime_sec: e.mtime_sec,
        mtime_nsec: e.mtime_nsec,
        size: e.size,
        rdev: e.rdev,
        hardlink: (e.link != (0, 0)).then_some(e.link),
        xattrs: decode_xattrs(&e.xattrs)?,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattr_encoding_round_trips() {
        let x = vec![(b"user.a".to_vec(), b"1".to_vec()), (b"user.b".to_vec(), vec![])];
        assert_eq!(decode_xattrs(&encode_xattrs(&x)).unwrap(), x);
        assert!(decode_xattrs(&[1]).is_none());
    }
}

//! Tree blobs: one per directory, listing its entries with everything a restore
//! needs. The encoding is deterministic (entries sorted by name bytes, fixed
//! field order), so an unchanged directory encodes to the same bytes, hence the
//! same id, and costs nothing to store again.
//!
//! Layout (FORMAT.md "Tree blobs"), integers little-endian:
//! ```text
//! version u8 (=1) | count u32 | count × node
//! node: name (u16 len + bytes) | kind u8 | mode u32 | uid u32 | gid u32
//!       | user (u16 len + bytes) | group (u16 len + bytes)
//!       | mtime_sec i64 | mtime_nsec u32 | size u64 | rdev u64
//!       | link_dev u64 | link_ino u64 | xattr count u32 | count × (name u16+bytes, value u32+bytes)
//!       | payload: dir: subtree id[32]; file: u32 n + n × id[32]; symlink: u32 len + target; else none
//! ```

use crate::{BlobId, Error, Result, TreeId};

/// The tree encoding version this build writes and reads.
pub const TREE_VERSION: u8 = 1;

/// The kind of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A directory; its content is a subtree.
    Dir,
    /// A regular file; its content is a list of data blobs.
    File,
    /// A symbolic link; its content is the target, verbatim.
    Symlink,
    /// A named pipe (recorded, never read).
    Fifo,
    /// A character device node.
    CharDevice,
    /// A block device node.
    BlockDevice,
}

impl NodeKind {
    /// The byte that stands for this kind (FORMAT.md).
    pub fn code(self) -> u8 {
        match self {
            NodeKind::Dir => 1,
            NodeKind::File => 2,
            NodeKind::Symlink => 3,
            NodeKind::Fifo => 4,
            NodeKind::CharDevice => 5,
            NodeKind::BlockDevice => 6,
        }
    }

    /// The kind a byte stands for.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => NodeKind::Dir,
            2 => NodeKind::File,
            3 => NodeKind::Symlink,
            4 => NodeKind::Fifo,
            5 => NodeKind::CharDevice,
            6 => NodeKind::BlockDevice,
            _ => return None,
        })
    }
}

/// What an entry holds besides its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeContent {
    /// A directory's tree.
    Subtree(TreeId),
    /// A file's chunks, in order.
    Chunks(Vec<BlobId>),
    /// A symlink's target bytes.
    Target(Vec<u8>),
    /// Special files hold nothing.
    None,
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// The name, as bytes: non-empty, not `.` or `..`, no `/` and no NUL.
    pub name: Vec<u8>,
    /// The kind.
    pub kind: NodeKind,
    /// Permission bits, setuid/setgid/sticky included (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Owner name, empty when unknown.
    pub user: Vec<u8>,
    /// Group name, empty when unknown.
    pub group: Vec<u8>,
    /// Modification time, seconds since the epoch.
    pub mtime_sec: i64,
    /// Nanoseconds of the modification time, below 10^9.
    pub mtime_nsec: u32,
    /// Content size for files; target length for symlinks; 0 otherwise.
    pub size: u64,
    /// Device number of device nodes; 0 otherwise.
    pub rdev: u64,
    /// Hard-link identity (device, inode) of a file with several links, so a
    /// restore can link them again; `None` for a single link.
    pub hardlink: Option<(u64, u64)>,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The content.
    pub content: NodeContent,
}

/// A directory: its entries, sorted by name bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    /// The entries, strictly increasing by name.
    pub nodes: Vec<Node>,
}

/// True when `name` may name a directory entry.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

/// A node in its encoded form, as a tree blob holds it: several times
/// smaller than a [`Node`], for the entries of a large directory while they
/// wait for their tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedNode(Box<[u8]>);

impl EncodedNode {
    /// Encodes `node`.
    pub fn new(node: &Node) -> EncodedNode {
        let mut out = Vec::new();
        encode_node(node, &mut out);
        EncodedNode(out.into_boxed_slice())
    }

    /// The node's name: the encoding starts with it, after its u16 length.
    pub fn name(&self) -> &[u8] {
        let len = match self.0.get(..2) {
            Some(&[a, b]) => u16::from_le_bytes([a, b]) as usize,
            _ => 0,
        };
        self.0.get(2..2 + len).unwrap_or_default()
    }
}

impl Tree {
    /// The encoding of a tree of these nodes, which must already be sorted
    /// by name: the same bytes as [`Tree::encode`] of the nodes.
    pub fn encode_from(nodes: &[EncodedNode]) -> Vec<u8> {
        debug_assert!(nodes.windows(2).all(|w| w[0].name() < w[1].name()));
        let mut out = Vec::with_capacity(5 + nodes.iter().map(|n| n.0.len()).sum::<usize>());
        out.push(TREE_VERSION);
        put_u32(&mut out, nodes.len() as u32);
        for node in nodes {
            out.extend_from_slice(&node.0);
        }
        out
    }

    /// Encodes the tree; nodes must already be sorted by name.
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.nodes.windows(2).all(|w| w[0].name < w[1].name));
        let mut out = Vec::with_capacity(64 + self.nodes.len() * 128);
        out.push(TREE_VERSION);
        put_u32(&mut out, self.nodes.len() as u32);
        for node in &self.nodes {
            encode_node(node, &mut out);
        }
        out
    }

    /// Decodes tree `id`'s bytes and checks them: version, names, order, kinds
    /// and that every byte is accounted for.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the tree, or [`Error::UnsupportedVersion`].
    pub fn decode(id: &TreeId, bytes: &[u8]) -> Result<Tree> {
        let mut r = Reader { bytes, pos: 0 };
        decode_tree(&mut r).map_err(|reason| match reason {
            DecodeError::Version(found) => Error::UnsupportedVersion {
                object: format!("tree {id}"),
                found: found.into(),
                supported: TREE_VERSION.into(),
            },
            DecodeError::Bad(reason) => Error::corrupt(format!("tree {id}"), format!("{reason} at byte {}", r.pos)),
            // The name itself, escaped, so that the report says which entry
            // a restore refused.
            DecodeError::BadNames(names) => {
                let quoted: Vec<String> = names.iter().map(|n| format!("\"{}\"", n.escape_ascii())).collect();
                Error::corrupt(
                    format!("tree {id}"),
                    format!("invalid entry names {}", quoted.join(", ")),
                )
            }
        })
    }
}

fn encode_node(n: &Node, out: &mut Vec<u8>) {
    put_bytes16(out, &n.name);
    out.push(n.kind.code());
    put_u32(out, n.mode);
    put_u32(out, n.uid);
    put_u32(out, n.gid);
    put_bytes16(out, &n.user);
    put_bytes16(out, &n.group);
    out.extend_from_slice(&n.mtime_sec.to_le_bytes());
    put_u32(out, n.mtime_nsec);
    put_u64(out, n.size);
    put_u64(out, n.rdev);
    let (dev, ino) = n.hardlink.unwrap_or((0, 0));
    put_u64(out, dev);
    put_u64(out, ino);
    put_u32(out, n.xattrs.len() as u32);
    for (k, v) in &n.xattrs {
        put_bytes16(out, k);
        put_u32(out, v.len() as u32);
        out.extend_from_slice(v);
    }
    match &n.content {
        NodeContent::Subtree(id) => out.extend_from_slice(id.as_bytes()),
        NodeContent::Chunks(ids) => {
            put_u32(out, ids.len() as u32);
            for id in ids {
                out.extend_from_slice(id.as_bytes());
            }
        }
        NodeContent::Target(t) => {
            put_u32(out, t.len() as u32);
            out.extend_from_slice(t);
        }
        NodeContent::None => {}
    }
}

enum DecodeError {
    Version(u8),
    Bad(&'static str),
    /// Names no directory entry may have ("..", "a/b", …), all of them.
    BadNames(Vec<Vec<u8>>),
}

type Decoded<T> = std::result::Result<T, DecodeError>;

fn decode_tree(r: &mut Reader<'_>) -> Decoded<Tree> {
    let version = r.u8()?;
    if version != TREE_VERSION {
        return Err(DecodeError::Version(version));
    }
    let count = r.u32()? as usize;
    // Each node takes at least 68 bytes (a FIFO with a one-byte name, no
    // user or group name, no xattrs); refuse counts the input cannot hold
    // before allocating for them.
    if count > r.remaining() / 68 {
        return Err(DecodeError::Bad("entry count exceeds the blob"));
    }
    let mut nodes: Vec<Node> = Vec::with_capacity(count);
    for _ in 0..count {
        let node = decode_node(r)?;
        if nodes.last().is_some_and(|prev| prev.name >= node.name) {
            return Err(DecodeError::Bad("entries not sorted or duplicated"));
        }
        nodes.push(node);
    }
    if r.remaining() != 0 {
        return Err(DecodeError::Bad("trailing bytes"));
    }
    // Every invalid name is reported, not only the first: a crafted tree
    // is refused whole, and the message names each entry it would write.
    let bad: Vec<Vec<u8>> = nodes
        .iter()
        .filter(|n| !valid_name(&n.name))
        .map(|n| n.name.clone())
        .collect();
    if !bad.is_empty() {
        return Err(DecodeError::BadNames(bad));
    }
    Ok(Tree { nodes })
}

fn decode_node(r: &mut Reader<'_>) -> Decoded<Node> {
    // Checked by the caller, which names every invalid one.
    let name = r.bytes16()?;
    let kind = NodeKind::from_code(r.u8()?).ok_or(DecodeError::Bad("unknown entry kind"))?;
    let mode = r.u32()?;
    if mode > 0o7777 {
        return Err(DecodeError::Bad("mode has bits beyond 0o7777"));
    }
    let uid = r.u32()?;
    let gid = r.u32()?;
    let user = r.bytes16()?;
    let group = r.bytes16()?;
    let mtime_sec = r.u64()? as i64;
    let mtime_nsec = r.u32()?;
    if mtime_nsec >= 1_000_000_000 {
        return Err(DecodeError::Bad("nanoseconds out of range"));
    }
    let size = r.u64()?;
    let rdev = r.u64()?;
    let link = (r.u64()?, r.u64()?);
    let hardlink = (link != (0, 0)).then_some(link);
    let xattr_count = r.u32()? as usize;
    if xattr_count > r.remaining() / 6 {
        return Err(DecodeError::Bad("xattr count exceeds the blob"));
    }
    let mut xattrs = Vec::with_capacity(xattr_count);
    for _ in 0..xattr_count {
        let k = r.bytes16()?;
        let len = r.u32()? as usize;
        xattrs.push((k, r.take(len)?.to_vec()));
    }
    let content = match kind {
        NodeKind::Dir => NodeContent::Subtree(BlobId(r.id()?)),
        NodeKind::File => {
            let n = r.u32()? as usize;
            if n > r.remaining() / 32 {
                return Err(DecodeError::Bad("chunk count exceeds the blob"));
            }
            NodeContent::Chunks((0..n).map(|_| r.id().map(BlobId)).collect::<Decoded<_>>()?)
        }
        NodeKind::Symlink => {
            let len = r.u32()? as usize;
            NodeContent::Target(r.take(len)?.to_vec())
        }
        _ => NodeContent::None,
    };
    Ok(Node {
        name,
        kind,
        mode,
        uid,
        gid,
        user,
        group,
        mtime_sec,
        mtime_nsec,
        size,
        rdev,
        hardlink,
        xattrs,
        content,
    })
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes16(out: &mut Vec<u8>, b: &[u8]) {
    // Names, user names and xattr names are far below 64 KiB on every system
    // robovault reads; a longer one is cut rather than corrupting the encoding.
    let b = &b[..b.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        if n > self.remaining() {
            return Err(DecodeError::Bad("truncated"));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Decoded<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Decoded<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn id(&mut self) -> Decoded<[u8; 32]> {
        Ok(self.take(32)?.try_into().expect("32 bytes"))
    }

    fn bytes16(&mut self) -> Decoded<Vec<u8>> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        Ok(self.take(len)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 1..20).prop_filter("valid name", |n| valid_name(n))
    }

    fn node() -> impl Strategy<Value = Node> {
        let kind = prop_oneof![
            Just(NodeKind::Dir),
            Just(NodeKind::File),
            Just(NodeKind::Symlink),
            Just(NodeKind::Fifo),
            Just(NodeKind::CharDevice),
            Just(NodeKind::BlockDevice)
        ];
        let id = any::<[u8; 32]>();
        (
            name(),
            kind,
            0u32..0o10000,
            any::<(u32, u32, i64)>(),
            0u32..1_000_000_000,
            any::<(u64, u64)>(),
            proptest::option::of(any::<(u64, u64)>().prop_filter("nonzero", |l| *l != (0, 0))),
            proptest::collection::btree_map(name(), proptest::collection::vec(any::<u8>(), 0..10), 0..3),
            proptest::collection::vec(id, 0..4),
            proptest::collection::vec(any::<u8>(), 0..30),
        )
            .prop_map(
                |(name, kind, mode, (uid, gid, sec), nsec, (size, rdev), hardlink, xattrs, ids, target)| {
                    let content = match kind {
                        NodeKind::Dir => NodeContent::Subtree(BlobId(ids.first().copied().unwrap_or_default())),
                        NodeKind::File => NodeContent::Chunks(ids.into_iter().map(BlobId).collect()),
                        NodeKind::Symlink => NodeContent::Target(target),
                        _ => NodeContent::None,
                    };
                    Node {
                        name,
                        kind,
                        mode,
                        uid,
                        gid,
                        user: if uid % 2 == 0 { b"root".to_vec() } else { vec![] },
                        group: vec![],
                        mtime_sec: sec,
                        mtime_nsec: nsec,
                        size,
                        rdev,
                        hardlink,
                        xattrs: xattrs.into_iter().collect(),
                        content,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn encoded_nodes_make_the_same_tree(nodes in proptest::collection::btree_map(name(), node(), 0..8)) {
            let tree = Tree {
                nodes: nodes.into_iter().map(|(name, mut n)| { n.name = name; n }).collect(),
            };
            let encoded: Vec<EncodedNode> = tree.nodes.iter().map(EncodedNode::new).collect();
            for (e, n) in encoded.iter().zip(&tree.nodes) {
                prop_assert_eq!(e.name(), n.name.as_slice());
            }
            prop_assert_eq!(Tree::encode_from(&encoded), tree.encode());
        }
    }

    proptest! {
        #[test]
        fn tree_round_trips(nodes in proptest::collection::btree_map(name(), node(), 0..8)) {
            let tree = Tree {
                nodes: nodes.into_iter().map(|(name, mut n)| { n.name = name; n }).collect(),
            };
            let bytes = tree.encode();
            let id = TreeId::of(&bytes);
            prop_assert_eq!(Tree::decode(&id, &bytes).unwrap(), tree);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..500)) {
            let _ = Tree::decode(&TreeId::default(), &bytes);
        }
    }

    #[test]
    fn the_smallest_node_decodes() {
        let tree = Tree {
            nodes: vec![fifo(b"p", 4242)],
        };
        let bytes = tree.encode();
        assert_eq!(bytes.len(), 5 + 68);
        assert_eq!(Tree::decode(&TreeId::of(&bytes), &bytes).unwrap(), tree);
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [&b".."[..], b".", b"a/b", b"a\0"] {
            let tree = Tree {
                nodes: vec![fifo(bad, 0)],
            };
            assert!(Tree::decode(&TreeId::default(), &tree.encode()).is_err());
        }
    }

    /// A FIFO node with no user or group name and no xattrs: the smallest
    /// node there is.
    fn fifo(name: &[u8], owner: u32) -> Node {
        Node {
            name: name.to_vec(),
            kind: NodeKind::Fifo,
            mode: 0o644,
            uid: owner,
            gid: owner,
            user: vec![],
            group: vec![],
            mtime_sec: 0,
            mtime_nsec: 0,
            size: 0,
            rdev: 0,
            hardlink: None,
            xattrs: vec![],
            content: NodeContent::None,
        }
    }
}

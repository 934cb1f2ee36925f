//! A directory's listing: its entries with their `lstat`, sorted by name
//! bytes, merged with the baseline's entries by name, and what
//! `--follow-links` makes of a symlink.

use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use robovault_index::ChildVersion;
use robovault_store::NodeKind;

use super::{lock, Run};
use crate::node::SourceMeta;

/// A directory entry seen on either side.
pub(super) struct Item {
    pub(super) name: Vec<u8>,
    pub(super) src: Option<std::io::Result<SourceMeta>>,
    /// Boxed: most entries of a first backup have none.
    pub(super) base: Option<Box<ChildVersion>>,
    pub(super) link: Link,
}

/// What `--follow-links` made of a source entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Link {
    /// Not a followed link: recorded as found.
    #[default]
    AsIs,
    /// A symlink whose target is recorded in its place.
    Followed,
    /// A directory link that would loop: skipped (`    junction`).
    Cycle,
}

/// A directory's entries with their `lstat`, sorted by name bytes.
pub(super) type Listing = Vec<Item>;

/// Lists a directory with `lstat` of each entry, sorted by name bytes.
pub(super) fn list_dir(dir: &Path) -> std::io::Result<Listing> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let meta = fs::symlink_metadata(e.path()).map(|m| SourceMeta::from_metadata(&m));
        out.push(Item {
            name: e.file_name().into_vec(),
            src: Some(meta),
            base: None,
            link: Link::AsIs,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Gives each listed entry its baseline entry, both sorted by name; returns
/// the baseline entries the source lacks, in name order.
// Boxed: each entry moves into its item as it is, without a copy.
#[allow(clippy::vec_box)]
pub(super) fn merge(items: &mut [Item], base: Vec<Box<ChildVersion>>) -> Vec<Item> {
    let mut extras = Vec::new();
    let mut at = 0;
    for b in base {
        while at < items.len() && items[at].name < b.name {
            at += 1;
        }
        match items.get_mut(at) {
            Some(item) if item.name == b.name => {
                item.base = Some(b);
                at += 1;
            }
            _ => extras.push(Item {
                name: b.name.clone(),
                src: None,
                base: Some(b),
                link: Link::AsIs,
            }),
        }
    }
    extras
}

impl Run<'_> {
    /// `--follow-links`: a symlink is replaced by what it resolves to, unless
    /// it is dangling (recorded as a link) or a directory link that would
    /// loop: to the root, an ancestor or a directory already walked (§4.5).
    pub(super) fn follow(&self, parent: &Path, item: &mut Item) {
        let Some(Ok(m)) = &item.src else { return };
        if m.kind != Some(NodeKind::Symlink) {
            return;
        }
        let Ok(target) = fs::metadata(parent.join(std::ffi::OsStr::from_bytes(&item.name))) else {
            return;
        };
        if target.is_dir() && lock(&self.visited).contains(&(target.dev(), target.ino())) {
            item.link = Link::Cycle;
            return;
        }
        item.link = Link::Followed;
        item.src = Some(Ok(SourceMeta::from_metadata(&target)));
    }
}

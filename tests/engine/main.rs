//! Engine tests: the library on real temp directories and real repositories,
//! one module per topic; the helpers they share are here.

#[path = "../util/mod.rs"]
mod util;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use robovault::{
    backup, restore, BackupOptions, BackupSummary, Repository, RestoreOptions, RunOptions, Silent, SnapshotChoice,
};
use robovault_index::ROOT_PATH;
use robovault_store::{BlobId, NodeContent, NodeKind, ObjectKind, PackId};
use util::*;

mod damage;
mod encrypted;
mod hostile;
mod jobs;
mod roundtrip;

fn opts() -> BackupOptions {
    BackupOptions {
        series: Some("test".into()),
        run: quick(),
        ..BackupOptions::default()
    }
}

/// No retries, no waits.
fn quick() -> RunOptions {
    RunOptions {
        retries: 0,
        wait: std::time::Duration::ZERO,
        ..RunOptions::default()
    }
}

fn run_backup(src: &Path, repo: &Path) -> BackupSummary {
    backup(src, &at(repo), &opts(), &Silent).expect("backup")
}

fn run_restore(repo: &Path, target: &Path, snapshot: SnapshotChoice) -> robovault::RestoreSummary {
    let o = RestoreOptions {
        snapshot,
        run: quick(),
        ..RestoreOptions::default()
    };
    restore(&at(repo), target, &o, &Silent).expect("restore")
}

fn rows(repo: &Path, table: &str) -> u64 {
    Repository::open(&at(repo))
        .unwrap()
        .index()
        .unwrap()
        .count_rows(table)
        .unwrap()
}

/// Walks every snapshot's trees and checks them against the index.
fn check_trees_against_index(repo_path: &Path) {
    let repo = Repository::open(&at(repo_path)).unwrap();
    let index = repo.index().unwrap();
    let series = index.all_series().unwrap();
    for s in &series {
        for snap in index.snapshots(Some(s.key)).unwrap() {
            let root = BlobId(snap.root_tree.0);
            check_dir(&repo, &index, s.key, snap.seq, ROOT_PATH, &root);
        }
    }
}

fn check_dir(
    repo: &Repository,
    index: &robovault_index::Index,
    series: robovault_index::SeriesKey,
    seq: u64,
    path: robovault_index::PathId,
    tree: &BlobId,
) {
    let nodes = repo.read_tree(tree).unwrap().nodes;
    let kids = index.children_at(series, path, seq).unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>(),
        kids.iter().map(|k| k.name.clone()).collect::<Vec<_>>(),
        "names of a directory"
    );
    for (n, k) in nodes.iter().zip(&kids) {
        let e = &k.entry;
        assert_eq!(n.kind.code(), e.kind);
        assert_eq!((n.mtime_sec, n.mtime_nsec), (e.mtime_sec, e.mtime_nsec));
        assert_eq!(
            (n.mode, n.uid, n.gid, n.size, n.rdev),
            (e.mode, e.uid, e.gid, e.size, e.rdev)
        );
        assert_eq!(n.hardlink.unwrap_or((0, 0)), e.link);
        let mut xattr_bytes = Vec::new();
        for (key, v) in &n.xattrs {
            xattr_bytes.extend_from_slice(&(key.len() as u16).to_le_bytes());
            xattr_bytes.extend_from_slice(key);
            xattr_bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
            xattr_bytes.extend_from_slice(v);
        }
        assert_eq!(xattr_bytes, e.xattrs);
        match &n.content {
            NodeContent::Chunks(c) => {
                let chunks = e.chunks.as_ref().expect("a file has a chunk list");
                assert_eq!(
                    c.iter().map(|b| b.0).collect::<Vec<_>>(),
                    chunks.iter().map(|h| h.0).collect::<Vec<_>>()
                );
            }
            NodeContent::Target(t) => assert_eq!(Some(t), e.target.as_ref()),
            NodeContent::Subtree(sub) => check_dir(repo, index, series, seq, k.path, sub),
            NodeContent::None => assert!(matches!(
                n.kind,
                NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice
            )),
        }
    }
}

fn named(template: &robovault_store::Node, name: &[u8]) -> robovault_store::Node {
    let mut n = template.clone();
    n.name = name.to_vec();
    n
}

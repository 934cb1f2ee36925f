//! The job model through the library: list-only, exclusions and another
//! baseline.

use super::*;

fn with_job(job: robovault::JobOptions) -> BackupOptions {
    BackupOptions { job, ..opts() }
}

fn pattern(p: &str, root: &Path) -> robovault::Pattern {
    robovault::Pattern::new(p, root, false).unwrap()
}

#[test]
fn list_only_writes_nothing_to_the_repository() {
    let env = Env::new();
    let (src, repo) = (env.src(), env.repo());
    write(&src.join("a"), b"a");
    let list_only = with_job(robovault::JobOptions {
        list_only: true,
        ..Default::default()
    });
    let plan = backup(&src, &at(&repo), &list_only, &Silent).unwrap();
    assert!(!repo.exists(), "no repository is created");
    assert_eq!(plan.snapshot, None);
    assert_eq!(plan.counts.files.copied, 1);
    run_backup(&src, &repo);
    write(&src.join("b"), b"b");
    let before: Vec<_> = ["snapshots", "packs"]
        .iter()
        .map(|d| walk_sorted(&repo.join(d)))
        .collect();
    let index = std::fs::read(repo.join("index.sqlite")).unwrap();
    let plan = backup(&src, &at(&repo), &list_only, &Silent).unwrap();
    assert_eq!((plan.counts.files.copied, plan.counts.files.skipped), (1, 1));
    let after: Vec<_> = ["snapshots", "packs"]
        .iter()
        .map(|d| walk_sorted(&repo.join(d)))
        .collect();
    assert_eq!(before, after);
    assert_eq!(index, std::fs::read(repo.join("index.sqlite")).unwrap());
}

fn walk_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    v.sort();
    v
}

#[test]
fn excluded_entries_leave_the_snapshot_unless_kept() {
    let env = Env::new();
    let (src, repo) = (env.src(), env.repo());
    write(&src.join("keep.txt"), b"k");
    write(&src.join("cache/c.bin"), b"c");
    write(&src.join("x.log"), b"l");
    run_backup(&src, &repo);
    let exclude = |keep_extras| {
        with_job(robovault::JobOptions {
            filters: robovault::Filters {
                exclude_dirs: vec![pattern("cache", &src)],
                exclude_files: vec![pattern("*.log", &src)],
                ..Default::default()
            },
            keep_extras,
            ..Default::default()
        })
    };
    let s = backup(&src, &at(&repo), &exclude(true), &Silent).unwrap();
    assert_eq!(s.counts.files.extras, 0, "excluded entries are not extras");
    let out = env.path("kept");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    assert!(
        out.join("cache/c.bin").exists() && out.join("x.log").exists(),
        "--keep-extras carries them"
    );
    let s = backup(&src, &at(&repo), &exclude(false), &Silent).unwrap();
    assert_eq!(s.exit_code, 0);
    let out = env.path("dropped");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    assert!(!out.join("cache").exists() && !out.join("x.log").exists());
    assert!(out.join("keep.txt").exists());
    // Earlier snapshots never change.
    let first = env.path("first");
    let hist = robovault::history(&Repository::open(&at(&repo)).unwrap(), None, false).unwrap();
    let id = hist[0].runs[0].0.snap_id.clone();
    run_restore(&repo, &first, SnapshotChoice::Id(id));
    assert!(first.join("cache/c.bin").exists());
}

#[test]
fn a_run_against_another_baseline_records_the_whole_tree_afresh() {
    let env = Env::new();
    let (src, repo) = (env.src(), env.repo());
    write(&src.join("a"), b"one");
    write(&src.join("d/b"), b"two");
    run_backup(&src, &repo);
    write(&src.join("a"), b"three");
    std::fs::remove_file(src.join("d/b")).unwrap();
    run_backup(&src, &repo);
    let fresh = BackupOptions {
        baseline: robovault::BaselineChoice::Empty,
        ..opts()
    };
    let s = backup(&src, &at(&repo), &fresh, &Silent).unwrap();
    assert_eq!(s.counts.files.copied, 1, "everything is Lonely");
    assert_eq!(s.new_data, 0);
    let out = env.path("out");
    run_restore(&repo, &out, SnapshotChoice::Latest);
    assert_same_tree(&src, &out);
    // An unchanged run after it reads nothing: the rows are right.
    let again = run_backup(&src, &repo);
    assert_eq!(again.files_read, 0);
    assert_eq!(again.exit_code, 0);
    check_trees_against_index(&repo);
}

// ---------------------------------------------------------------------------
// Malicious entries at restore (ROBOCOPY.md §5.3)
// ---------------------------------------------------------------------------

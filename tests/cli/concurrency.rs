//! Readers alongside a writer, on a local repository, for a bounded time: a
//! writer backs up a changing tree and now and then forgets and collects;
//! readers restore, list, show history and versions, and verify. A listed
//! snapshot must always restore whole and equal to what was committed; a
//! reader may fail only because its snapshot was forgotten meanwhile.
//! Seeded (`ROBOVAULT_TEST_SEED`); the seed is printed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const RUN_FOR: Duration = Duration::from_secs(25);
const READERS: usize = 3;

/// What a snapshot holds: each regular file's bytes and each directory,
/// by relative path.
type Content = BTreeMap<String, Option<Vec<u8>>>;

fn content_of(root: &Path) -> Content {
    let mut out = Content::new();
    for p in walk(root) {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let m = fs::symlink_metadata(&p).unwrap();
        out.insert(rel, m.is_file().then(|| fs::read(&p).unwrap()));
    }
    out
}

struct Shared {
    env: Env,
    /// Every snapshot the writer committed, with what it holds.
    committed: Mutex<HashMap<String, Arc<Content>>>,
    stop: AtomicBool,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    /// Reader runs that failed because their snapshot was forgotten.
    forgotten_meanwhile: AtomicU64,
}

impl Shared {
    fn count(&self, what: &'static str) {
        *self.counts.lock().unwrap().entry(what).or_default() += 1;
    }

    /// What snapshot `id` holds; a listed snapshot the writer has not yet
    /// recorded (its backup is returning) is waited for.
    fn content(&self, id: &str) -> Arc<Content> {
        let start = Instant::now();
        loop {
            if let Some(c) = self.committed.lock().unwrap().get(id) {
                return Arc::clone(c);
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "snapshot {id} is listed but no backup committed it"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The snapshot ids `history` lists, oldest first.
    fn listed(&self) -> Vec<String> {
        let out = self.env.run(&["history", "repo", "--json"]);
        assert_eq!(code(&out), 0, "history: {}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["snapshot"].as_str().unwrap().to_owned())
            .collect()
    }

    /// A reader's failure on snapshot `id` is acceptable only when the
    /// snapshot is gone from the history and the error says so (or says
    /// that what it needed was collected with it).
    fn forgotten_or_fail(&self, what: &str, id: &str, out: &Output) {
        let err = text(&out.stderr);
        let listed = self.listed();
        assert!(
            !listed.contains(&id.to_owned()),
            "{what} of listed snapshot {id} failed (exit {}): {}{err}",
            code(out),
            text(&out.stdout)
        );
        assert_eq!(code(out), 16, "{what} of forgotten {id}: {err}{}", text(&out.stdout));
        assert!(
            err.contains(&format!("no snapshot {id} in the repository")),
            "{what} of forgotten {id} failed for another reason: {err}"
        );
        self.forgotten_meanwhile.fetch_add(1, Ordering::Relaxed);
    }
}

/// One change of the source tree: add, rewrite or delete a file.
fn mutate(src: &Path, rng: &mut StdRng, step: u64) {
    let files: Vec<PathBuf> = walk(src)
        .into_iter()
        .filter(|p| fs::symlink_metadata(p).unwrap().is_file())
        .collect();
    let choice = if files.len() < 4 { 0 } else { rng.random_range(0..3) };
    match choice {
        0 => {
            let dir = ["", "a", "a/b", "c"][rng.random_range(0..4)];
            let len = rng.random_range(0..200_000);
            write(
                &src.join(dir).join(format!("f{step}.bin")),
                &random_bytes(len, rng.random()),
            );
        }
        1 => {
            let f = &files[rng.random_range(0..files.len())];
            let len = rng.random_range(0..200_000);
            write(f, &random_bytes(len, rng.random()));
        }
        _ => fs::remove_file(&files[rng.random_range(0..files.len())]).unwrap(),
    }
}

fn writer(sh: &Shared, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let src = sh.env.src();
    let mut step = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        step += 1;
        for _ in 0..rng.random_range(1..4) {
            mutate(&src, &mut rng, step);
        }
        // Only this thread changes the source: what the backup reads is
        // what is there now.
        let content = Arc::new(content_of(&src));
        let out = sh.env.run(&[
            "backup",
            "src",
            "repo",
            "--series",
            "s",
            "--json",
            "-r",
            "0",
            "-w",
            "0",
            "--lock-wait",
            "60s",
        ]);
        assert!(code(&out) < 8, "backup: {}{}", text(&out.stdout), text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let id = v["snapshot"].as_str().unwrap().to_owned();
        sh.committed.lock().unwrap().insert(id, content);
        sh.count("writer: backup");
        if step.is_multiple_of(4) {
            let out = sh
                .env
                .run(&["forget", "repo", "--keep-last", "3", "--lock-wait", "60s"]);
            assert_eq!(code(&out), 0, "forget: {}", text(&out.stderr));
            sh.count("writer: forget");
        }
        if step.is_multiple_of(6) {
            let out = sh.env.run(&["gc", "repo", "--max-unused", "0%", "--lock-wait", "60s"]);
            assert_eq!(code(&out), 0, "gc: {}", text(&out.stderr));
            sh.count("writer: gc");
        }
    }
}

fn reader(sh: &Shared, seed: u64, n: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut round = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        round += 1;
        let listed = sh.listed();
        sh.count("reader: history");
        // Never a half-committed snapshot: every listed one was committed.
        let ids: BTreeSet<&String> = listed.iter().collect();
        assert_eq!(ids.len(), listed.len(), "history lists a snapshot twice: {listed:?}");
        let latest = listed.last().expect("the first backup ran before the readers");
        let id = if rng.random_bool(0.5) {
            latest.clone()
        } else {
            listed[rng.random_range(0..listed.len())].clone()
        };
        let want = sh.content(&id);
        match rng.random_range(0..4) {
            0 | 1 => {
                let target = format!("r{n}-{round}");
                let out = sh.env.run(&["restore", "repo", &target, "--snapshot", &id]);
                if code(&out) < 8 {
                    let got = content_of(&sh.env.path(&target));
                    assert!(
                        got == *want,
                        "restore of {id}: not what was committed; paths {:?} vs {:?}",
                        got.keys().collect::<Vec<_>>(),
                        want.keys().collect::<Vec<_>>()
                    );
                    sh.count("reader: restore");
                } else {
                    sh.forgotten_or_fail("restore", &id, &out);
                }
                let _ = fs::remove_dir_all(sh.env.path(&target));
            }
            2 => {
                let out = sh.env.run(&["ls", "repo", "--snapshot", &id, "--json"]);
                if code(&out) == 0 {
                    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                    let names: BTreeSet<String> = v
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["name"].as_str().unwrap().trim_end_matches('/').to_owned())
                        .collect();
                    let top: BTreeSet<String> = want.keys().filter(|k| !k.contains('/')).cloned().collect();
                    assert_eq!(names, top, "ls of {id}");
                    sh.count("reader: ls");
                } else {
                    sh.forgotten_or_fail("ls", &id, &out);
                }
            }
            _ => {
                let files: Vec<&String> = want.iter().filter(|(_, c)| c.is_some()).map(|(k, _)| k).collect();
                if let Some(path) = files.get(rng.random_range(0..files.len().max(1))) {
                    let out = sh.env.run(&["versions", "repo", path]);
                    // Forgetting every snapshot that held it leaves no
                    // version: the path "was never in" what is left.
                    if code(&out) == 0 {
                        assert!(!text(&out.stdout).trim().is_empty(), "versions of {path}: none");
                        sh.count("reader: versions");
                    } else {
                        let err = text(&out.stderr);
                        assert!(
                            !sh.listed().contains(&id) && err.contains("was never in series"),
                            "versions of {path}: {err}"
                        );
                        sh.forgotten_meanwhile.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        if round.is_multiple_of(5) {
            let out = sh.env.run(&["verify", "repo", "--read-data", "--json"]);
            assert_eq!(code(&out), 0, "verify: {}{}", text(&out.stdout), text(&out.stderr));
            sh.count("reader: verify");
        }
    }
}

#[test]
fn readers_alongside_a_writer_see_only_whole_snapshots() {
    let seed = std::env::var("ROBOVAULT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("concurrency seed: {seed} (ROBOVAULT_TEST_SEED)");
    let sh = Shared {
        env: Env::new(),
        committed: Mutex::new(HashMap::new()),
        stop: AtomicBool::new(false),
        counts: Mutex::new(BTreeMap::new()),
        forgotten_meanwhile: AtomicU64::new(0),
    };
    let mut rng = StdRng::seed_from_u64(seed);
    fs::create_dir_all(sh.env.src()).unwrap();
    for i in 0..6 {
        mutate(&sh.env.src(), &mut rng, i);
    }
    let first = sh.env.backup_json();
    let id = first["snapshot"].as_str().unwrap().to_owned();
    sh.committed
        .lock()
        .unwrap()
        .insert(id, Arc::new(content_of(&sh.env.src())));
    let sh = &sh;
    std::thread::scope(|s| {
        let mut handles = vec![s.spawn(move || writer(sh, seed ^ 1))];
        for n in 0..READERS {
            handles.push(s.spawn(move || reader(sh, seed ^ (n as u64 + 2), n)));
        }
        std::thread::sleep(RUN_FOR);
        sh.stop.store(true, Ordering::Relaxed);
        for h in handles {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
    });
    let counts = sh.counts.lock().unwrap().clone();
    eprintln!(
        "concurrency iterations: {counts:?}; reader runs on a snapshot forgotten meanwhile: {}",
        sh.forgotten_meanwhile.load(Ordering::Relaxed)
    );
    for what in [
        "writer: backup",
        "writer: forget",
        "writer: gc",
        "reader: restore",
        "reader: verify",
    ] {
        assert!(counts.get(what).copied().unwrap_or(0) > 0, "no {what} ran: {counts:?}");
    }
}

/// The race the loop above found now and then, made certain: a verify that
/// has listed the snapshots while a forget drops some of them must still
/// check one state of the index, and find nothing wrong.
#[test]
fn a_verify_that_listed_snapshots_before_a_forget_finds_nothing_wrong() {
    let env = Env::new();
    for i in 0..3 {
        write(&env.src().join("c/changing.txt"), format!("generation {i}").as_bytes());
        write(&env.src().join(format!("c/gen{i}.txt")), &random_bytes(10_000, i));
        env.backup_json();
    }
    let verify = spawn_paused_at(&env, &["verify", "repo", "--json"], "verify-listed");
    let forget = env.run(&["forget", "repo", "--keep-last", "1"]);
    assert_eq!(code(&forget), 0, "{}", text(&forget.stderr));
    let out = verify.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["snapshots"], 3, "the verify saw the index before the forget: {v}");
    assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(out.status.code(), Some(0), "{v}");
}

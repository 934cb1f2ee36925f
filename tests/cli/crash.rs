//! Crash tests. Two kinds:
//!
//! - Simulated power losses at every durable step of a backup, a gc and a
//!   repair: the binary numbers each step (objects created, committed and
//!   deleted, and each step of an index commit and checkpoint), and
//!   `ROBOVAULT_CRASH_AT_OP=N` drops what was not yet durable and kills the
//!   process just before step N (store/src/testing.rs).
//! - Real kills: SIGKILL at random moments of backups and gcs of a tree large
//!   enough that most kills land mid-run, in a seeded loop bounded in time.
//!
//! After every crash the repository must verify clean, every snapshot
//! committed before must restore bit for bit, and the next run must succeed.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::*;

/// What a tree holds, with file contents reduced to a hash, so many states
/// can be kept and compared cheaply.
type Manifest = BTreeMap<Vec<u8>, (String, u32, (i64, i64), u64)>;

fn manifest(root: &Path) -> Manifest {
    describe(root)
        .into_iter()
        .map(|(k, d)| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            d.content.hash(&mut h);
            d.xattrs.hash(&mut h);
            (k, (d.kind.to_owned(), d.mode, d.mtime, h.finish()))
        })
        .collect()
}

fn assert_manifest(expected: &Manifest, dir: &Path, what: &str) {
    let got = manifest(dir);
    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, extra {extra:?}"
    );
    for (k, v) in expected {
        // The restore root's own mtime is the target's, not the source's.
        if k.is_empty() {
            continue;
        }
        assert_eq!(&got[k], v, "{what}: {:?} differs", String::from_utf8_lossy(k));
    }
}

fn cp_a(from: &Path, to: &Path) {
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// A repository whose packs are small (1 MiB, the least the format allows),
/// so a few megabytes of source make several packs and many steps.
fn small_pack_repo(env: &Env, repo: &str) {
    let out = env.run(&["init", repo]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let config = env.path(repo).join("config");
    let mut v: Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    v["pack_target_size"] = Value::from(1u64 << 20);
    fs::write(&config, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// The steps a command takes, from a traced run on a scratch copy of `repo`.
fn traced_steps(env: &Env, repo: &str, args: &[&str]) -> Vec<String> {
    let scratch = format!("{repo}-trace");
    cp_a(&env.path(repo), &env.path(&scratch));
    let args: Vec<&str> = args
        .iter()
        .map(|a| if *a == repo { scratch.as_str() } else { *a })
        .collect();
    let out = env.cmd().args(&args).env("ROBOVAULT_TRACE_OPS", "1").output().unwrap();
    assert!(code(&out) < 8, "traced run of {args:?}: {}", text(&out.stderr));
    fs::remove_dir_all(env.path(&scratch)).unwrap();
    text(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("robovault: storage op "))
        .map(|l| l.split_once(": ").map_or(l, |(_, what)| what))
        .map(|what| unnamed(what).to_owned())
        .collect()
}

/// A step without the object's name: names of new objects (a snapshot's
/// holds its time) differ from run to run, their order does not. Steps of
/// the backend are "VERB KIND NAME"; the index's have no name.
fn unnamed(step: &str) -> &str {
    const VERBS: [&str; 7] = ["create", "write", "wrote", "commit", "committed", "delete", "deleted"];
    let verb = step.split(' ').next().unwrap_or("");
    match step.rsplit_once(' ') {
        Some((head, _)) if VERBS.contains(&verb) => head,
        _ => step,
    }
}

/// Runs `args` on `repo` with a power loss just before step `n`, checks that
/// it died there, and returns the step (threads that seal packs and start
/// new ones may interleave their steps differently from the traced run).
fn crash_at_step(env: &Env, args: &[&str], n: usize, step: &str) -> String {
    let out = env
        .cmd()
        .args(args)
        .env("ROBOVAULT_CRASH_AT_OP", n.to_string())
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{args:?} killed at step {n} ({step}): exit {:?}\n{}",
        out.status.code(),
        text(&out.stderr)
    );
    let said = format!("robovault: crash at storage op {n}: ");
    let landed = text(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix(&said).map(|what| unnamed(what).to_owned()));
    landed.unwrap_or_else(|| panic!("step {n} ({step}) was not reached: {}", text(&out.stderr)))
}

/// Snapshot ids of `repo`, oldest first.
fn snapshot_ids(env: &Env, repo: &str) -> Vec<String> {
    let out = env.run(&["history", repo, "--json"]);
    assert_eq!(code(&out), 0, "history: {}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["snapshot"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_verifies(env: &Env, repo: &str, what: &str) -> Value {
    let out = env.run(&["verify", repo, "--read-data", "--json"]);
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{what}: verify said {}", text(&out.stderr)));
    assert_eq!(code(&out), 0, "{what}: {v}");
    assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{what}: {v}");
    v
}

fn assert_restores(env: &Env, repo: &str, id: &str, expected: &Manifest, what: &str) {
    let target = env.path(&format!("{repo}-restored"));
    let _ = fs::remove_dir_all(&target);
    let out = env.run(&["restore", repo, target.to_str().unwrap(), "--snapshot", id]);
    assert!(code(&out) < 8, "{what}: restore {id}: {}", text(&out.stdout));
    assert_manifest(expected, &target, &format!("{what}: snapshot {id}"));
    fs::remove_dir_all(&target).unwrap();
}

/// Every snapshot in `repo` must be one of `known` and restore as it was.
fn assert_all_restore(env: &Env, repo: &str, known: &BTreeMap<String, Manifest>, what: &str) {
    for id in snapshot_ids(env, repo) {
        let expected = known
            .get(&id)
            .unwrap_or_else(|| panic!("{what}: snapshot {id} was never committed"));
        assert_restores(env, repo, &id, expected, what);
    }
}

fn backup_id(env: &Env, repo: &str) -> String {
    let out = env.run(&["backup", "src", repo, "--series", "s", "--json", "-r", "0", "-w", "0"]);
    assert!(code(&out) < 8, "backup: {}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["snapshot"].as_str().unwrap().to_owned()
}

/// A first tree: a few megabytes of incompressible data over several files
/// (several 1 MiB packs), small files and a subdirectory.
fn first_tree(env: &Env) {
    for i in 0..4 {
        write(&env.src().join(format!("big{i}")), &random_bytes(700_000, i));
    }
    for i in 0..20 {
        write(
            &env.src().join(format!("d/small{i}.txt")),
            format!("small {i}").as_bytes(),
        );
    }
}

/// The second tree: one big file changed, one deleted, new ones.
fn second_tree(env: &Env) {
    write(&env.src().join("big0"), &random_bytes(700_000, 100));
    fs::remove_file(env.src().join("big1")).unwrap();
    write(&env.src().join("big4"), &random_bytes(900_000, 4));
    write(&env.src().join("e/new.txt"), b"new");
}

/// Crashes `args` (a command on "repo") at each of its steps in turn, each
/// time on a fresh copy named "w", and runs `check` on the copy after the
/// crash with a description of where it crashed. Returns the number of steps.
fn at_every_step(env: &Env, args: &[&str], mut check: impl FnMut(&str)) -> usize {
    let steps = traced_steps(env, "repo", args);
    let on_copy: Vec<&str> = args.iter().map(|a| if *a == "repo" { "w" } else { *a }).collect();
    let mut landed = std::collections::BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        cp_a(&env.repo(), &env.path("w"));
        let at = crash_at_step(env, &on_copy, n, step);
        check(&format!("{} crashed at step {n} ({at})", args[0]));
        landed.insert(at);
        fs::remove_dir_all(env.path("w")).unwrap();
    }
    let kinds: std::collections::BTreeSet<String> = steps.iter().cloned().collect();
    assert_eq!(landed, kinds, "every kind of step was crashed at");
    println!("{}: {} steps, a power loss at each: {steps:?}", args[0], steps.len());
    steps.len()
}

#[test]
fn a_power_loss_at_every_step_of_a_backup_loses_nothing() {
    let env = Env::new();
    small_pack_repo(&env, "repo");
    first_tree(&env);
    let mut known = BTreeMap::new();
    let first = backup_id(&env, "repo");
    known.insert(first, manifest(&env.src()));
    second_tree(&env);
    let second = manifest(&env.src());
    let args = ["backup", "src", "repo", "--series", "s", "-r", "0", "-w", "0"];
    let steps = traced_steps(&env, "repo", &args);
    assert!(
        steps.iter().filter(|s| *s == "commit pack").count() >= 3,
        "the run must write several packs: {steps:?}"
    );
    assert!(steps.iter().any(|s| s == "index commit inside sqlite"), "{steps:?}");
    at_every_step(&env, &args, |what| {
        assert_verifies(&env, "w", what);
        // The crashed run's snapshot, if it got committed, holds the second tree.
        let mut now = known.clone();
        for id in snapshot_ids(&env, "w") {
            now.entry(id).or_insert_with(|| second.clone());
        }
        assert_all_restore(&env, "w", &now, what);
        let next = backup_id(&env, "w");
        assert_verifies(&env, "w", &format!("{what}, then a backup"));
        assert_restores(&env, "w", &next, &second, &format!("{what}, then a backup"));
    });
}

#[test]
fn a_power_loss_at_every_step_of_a_gc_loses_nothing_kept() {
    let env = Env::new();
    small_pack_repo(&env, "repo");
    first_tree(&env);
    backup_id(&env, "repo");
    second_tree(&env);
    let kept = backup_id(&env, "repo");
    let mut known = BTreeMap::new();
    known.insert(kept.clone(), manifest(&env.src()));
    let out = env.run(&["forget", "repo", "--keep-last", "1"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let args = ["gc", "repo", "--max-unused", "1%"];
    let steps = traced_steps(&env, "repo", &args);
    assert!(steps.iter().any(|s| s == "commit pack"), "gc repacks: {steps:?}");
    assert!(steps.iter().any(|s| s == "delete pack"), "gc deletes: {steps:?}");
    at_every_step(&env, &args, |what| {
        assert_verifies(&env, "w", what);
        assert_all_restore(&env, "w", &known, what);
        let again = env.run(&["gc", "w", "--max-unused", "1%"]);
        assert_eq!(code(&again), 0, "{what}: gc again: {}", text(&again.stderr));
        let v = assert_verifies(&env, "w", &format!("{what}, then gc"));
        assert_eq!(v["unreferenced_packs"].as_array().unwrap().len(), 0, "{what}: {v}");
        assert_all_restore(&env, "w", &known, &format!("{what}, then gc"));
    });
}

#[test]
fn a_power_loss_at_every_step_of_a_repair_loses_nothing() {
    let env = Env::new();
    small_pack_repo(&env, "repo");
    let mut known = BTreeMap::new();
    first_tree(&env);
    known.insert(backup_id(&env, "repo"), manifest(&env.src()));
    second_tree(&env);
    known.insert(backup_id(&env, "repo"), manifest(&env.src()));
    at_every_step(&env, &["repair", "index", "repo"], |what| {
        assert_verifies(&env, "w", what);
        assert_all_restore(&env, "w", &known, what);
        let again = env.run(&["repair", "index", "w"]);
        assert_eq!(code(&again), 0, "{what}: repair again: {}", text(&again.stderr));
        assert_verifies(&env, "w", &format!("{what}, then repair"));
        assert_all_restore(&env, "w", &known, &format!("{what}, then repair"));
    });
}

/// The seed of the random-kill loops: `ROBOVAULT_KILL_SEED`, else the clock
/// (printed, so a failure can be replayed).
fn kill_seed() -> u64 {
    let seed = std::env::var("ROBOVAULT_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    println!("ROBOVAULT_KILL_SEED={seed}");
    seed
}

/// Starts `args`, kills it after `delay` with SIGKILL, and tells whether it
/// was still running then (the kill landed mid-run).
fn kill_after(env: &Env, args: &[&str], delay: Duration) -> bool {
    let mut child = env
        .cmd()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let status = child.wait().unwrap();
    running && status.signal() == Some(9)
}

/// Packs in "repo", temporary files not counted.
fn pack_count(env: &Env) -> usize {
    walk(&env.repo().join("packs"))
        .iter()
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .count()
}

/// How long a run of `args` takes when left alone.
fn timed(env: &Env, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = env.run(args);
    assert!(code(&out) < 8, "{args:?}: {}", text(&out.stderr));
    t.elapsed()
}

/// Rewrites a fifth of the tree's files, seeded, so every run has work.
fn churn(env: &Env, rng: &mut rand::rngs::StdRng, files: u64) {
    for _ in 0..files / 5 {
        let i = rng.random_range(0..files);
        let len = rng.random_range(1_000..200_000);
        write(
            &env.src().join(format!("d{}/f{i}", i % 10)),
            &random_bytes(len, rng.random()),
        );
    }
}

#[test]
fn random_kills_of_backups_and_gcs_lose_nothing() {
    let seed = kill_seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let env = Env::new();
    small_pack_repo(&env, "repo");
    let files = 300u64;
    for i in 0..files {
        write(&env.src().join(format!("d{}/f{i}", i % 10)), &random_bytes(60_000, i));
    }
    let backup = ["backup", "src", "repo", "--series", "s", "-r", "0", "-w", "0"];
    let mut known: BTreeMap<String, Manifest> = BTreeMap::new();
    let mut full = timed(&env, &backup);
    for id in snapshot_ids(&env, "repo") {
        known.insert(id, manifest(&env.src()));
    }
    let (mut tries, mut mid_run, mut between, mut gc_tries, mut gc_mid_run) = (0, 0, 0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        churn(&env, &mut rng, files);
        let state = manifest(&env.src());
        let delay = full.mul_f64(rng.random_range(0.05..0.95));
        tries += 1;
        let (packs, snapshots) = (pack_count(&env), snapshot_ids(&env, "repo").len());
        mid_run += u32::from(kill_after(&env, &backup, delay));
        // Packs written but no snapshot committed: the kill fell between the two.
        between += u32::from(pack_count(&env) > packs && snapshot_ids(&env, "repo").len() == snapshots);
        let what = format!("seed {seed}, backup killed after {delay:?}");
        for id in snapshot_ids(&env, "repo") {
            known.entry(id).or_insert_with(|| state.clone());
        }
        assert_verifies(&env, "repo", &what);
        if let Some(last) = snapshot_ids(&env, "repo").last() {
            assert_restores(&env, "repo", last, &known[last], &what);
        }
        // Every few rounds a gc with work to do, killed at a random moment too.
        if tries % 3 == 0 {
            full = timed(&env, &backup);
            for id in snapshot_ids(&env, "repo") {
                known.entry(id).or_insert_with(|| state.clone());
            }
            let out = env.run(&["forget", "repo", "--keep-last", "2"]);
            assert_eq!(code(&out), 0, "{what}: forget: {}", text(&out.stderr));
            let gc = ["gc", "repo", "--max-unused", "1%"];
            let scratch_time = {
                cp_a(&env.repo(), &env.path("gc-probe"));
                let t = timed(&env, &["gc", "gc-probe", "--max-unused", "1%"]);
                fs::remove_dir_all(env.path("gc-probe")).unwrap();
                t
            };
            let delay = scratch_time.mul_f64(rng.random_range(0.05..0.95));
            gc_tries += 1;
            gc_mid_run += u32::from(kill_after(&env, &gc, delay));
            let what = format!("seed {seed}, gc killed after {delay:?}");
            assert_verifies(&env, "repo", &what);
            assert_all_restore(&env, "repo", &known, &what);
        }
    }
    // The next runs succeed and everything kept restores.
    let id = backup_id(&env, "repo");
    known.insert(id, manifest(&env.src()));
    let out = env.run(&["gc", "repo", "--max-unused", "1%"]);
    assert_eq!(code(&out), 0, "final gc: {}", text(&out.stderr));
    let v = assert_verifies(&env, "repo", "at the end");
    assert_eq!(v["unreferenced_packs"].as_array().unwrap().len(), 0, "{v}");
    let temporaries: Vec<PathBuf> = walk(&env.repo())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp-")))
        .collect();
    assert!(
        temporaries.is_empty(),
        "gc removes what killed runs left: {temporaries:?}"
    );
    assert_all_restore(&env, "repo", &known, "at the end");
    println!(
        "backups killed: {tries} ({mid_run} mid-run, {between} after packs were written and before the commit); \
         gcs killed: {gc_tries} ({gc_mid_run} mid-run)"
    );
    assert!(
        mid_run * 2 >= tries,
        "most backup kills must land mid-run: {mid_run} of {tries}"
    );
    assert!(
        between >= 1,
        "some kills must fall between packs and commit: {between} of {tries}"
    );
    assert!(
        gc_tries == 0 || gc_mid_run >= 1,
        "gc kills must land mid-run: {gc_mid_run} of {gc_tries}"
    );
}

/// A power loss at every step of a backup into S3: each step on a fresh
/// prefix holding one committed snapshot, checked from the crashed machine's
/// cache and from a fresh machine's (which starts from the bucket alone).
#[test]
fn a_power_loss_at_every_step_of_a_backup_into_s3_loses_nothing() {
    let Some(bucket) = super::s3::s3_bucket() else { return };
    let env = Env::new();
    first_tree(&env);
    cp_a(&env.src(), &env.path("tree-a"));
    let a = manifest(&env.src());
    second_tree(&env);
    cp_a(&env.src(), &env.path("tree-b"));
    let b = manifest(&env.src());
    let on = |machine: &str, args: &[&str]| -> Command {
        let mut c = env.cmd();
        c.arg("--s3-allow-http")
            .args(args)
            .env("ROBOVAULT_CACHE_DIR", env.path(machine));
        c
    };
    let ok = |mut c: Command, what: &str| -> Output {
        let out = c.output().unwrap();
        assert!(code(&out) < 8, "{what}: {}{}", text(&out.stdout), text(&out.stderr));
        out
    };
    // A prefix with the first tree committed, and the source at the second.
    let prepare = |n: usize| -> (String, String) {
        let repo = format!("s3://{bucket}/crash/{:016x}", rand::random::<u64>());
        let _ = fs::remove_dir_all(env.src());
        cp_a(&env.path("tree-a"), &env.src());
        let machine = format!("m{n}");
        let out = ok(
            on(&machine, &["backup", "src", &repo, "--series", "s", "--json"]),
            "first backup",
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        // The backup under test publishes an index copy too.
        super::s3::drop_index_copies(&repo);
        let _ = fs::remove_dir_all(env.src());
        cp_a(&env.path("tree-b"), &env.src());
        (repo, v["snapshot"].as_str().unwrap().to_owned())
    };
    let backup = |repo: &str| -> Vec<String> {
        ["backup", "src", repo, "--series", "s", "-r", "0", "-w", "0"]
            .map(str::to_owned)
            .to_vec()
    };
    let (repo, _) = prepare(0);
    let traced = ok(
        {
            let mut c = on("m0", &backup(&repo).iter().map(String::as_str).collect::<Vec<_>>());
            c.env("ROBOVAULT_TRACE_OPS", "1");
            c
        },
        "traced backup",
    );
    let steps: Vec<String> = text(&traced.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("robovault: storage op "))
        .map(|l| unnamed(l.split_once(": ").map_or(l, |(_, w)| w)).to_owned())
        .collect();
    assert!(steps.iter().any(|s| s == "write index copy"), "{steps:?}");
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let (repo, first) = prepare(n);
        let machine = format!("m{n}");
        let args = backup(&repo);
        let mut c = on(&machine, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let out = c.env("ROBOVAULT_CRASH_AT_OP", n.to_string()).output().unwrap();
        assert_eq!(out.status.signal(), Some(9), "step {n} ({step}): {}", text(&out.stderr));
        let what = format!("S3 backup crashed at step {n} ({step})");
        for m in [machine.clone(), format!("fresh{n}")] {
            let v = ok(on(&m, &["verify", &repo, "--read-data", "--json"]), &what);
            let v: Value = serde_json::from_slice(&v.stdout).unwrap();
            assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{what}, on {m}: {v}");
            let h = ok(on(&m, &["history", &repo, "--json"]), &what);
            let h: Value = serde_json::from_slice(&h.stdout).unwrap();
            for s in h.as_array().unwrap() {
                let id = s["snapshot"].as_str().unwrap();
                let target = env.path(&format!("restored-{m}"));
                ok(
                    on(&m, &["restore", &repo, target.to_str().unwrap(), "--snapshot", id]),
                    &what,
                );
                let expected = if id == first { &a } else { &b };
                assert_manifest(expected, &target, &format!("{what}, on {m}, snapshot {id}"));
                fs::remove_dir_all(&target).unwrap();
            }
        }
        let out = ok(
            on(
                &machine,
                &[&args[..], &["--json".to_owned()]]
                    .concat()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
            &what,
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let next = v["snapshot"].as_str().unwrap();
        let target = env.path("restored-next");
        ok(
            on(
                &format!("fresh{n}"),
                &["restore", &repo, target.to_str().unwrap(), "--snapshot", next],
            ),
            &what,
        );
        assert_manifest(&b, &target, &format!("{what}, then a backup"));
        fs::remove_dir_all(&target).unwrap();
    }
    println!("S3 backup: {} steps, a power loss at each: {steps:?}", steps.len());
}

#[test]
fn a_restore_killed_before_a_rename_leaves_nothing_the_next_one_keeps() {
    let env = Env::new();
    write(&env.src().join("a"), &random_bytes(300_000, 1));
    write(&env.src().join("d/b"), b"bee");
    backup_id(&env, "repo");
    let killed = env
        .cmd()
        .args(["restore", "repo", "out"])
        .env("ROBOVAULT_CRASH_AT", "restore-before-rename")
        .output()
        .unwrap();
    assert_eq!(killed.status.signal(), Some(9), "{}", text(&killed.stderr));
    let left: Vec<PathBuf> = walk(&env.path("out"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".rvtmp-"))
        })
        .collect();
    assert_eq!(left.len(), 1, "the kill left one temporary file: {left:?}");
    let out = env.run(&["restore", "repo", "out", "--json"]);
    assert!(code(&out) < 8, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"]["extras"], 0, "a temporary file is no extra: {v}");
    assert!(!left[0].exists(), "the next restore removed {}", left[0].display());
    assert_same_tree(&env.src(), &env.path("out"));
}

//! Faults of the object store, end to end: the program talks to the gateway
//! through the test's fault-injecting proxy (tests/util/faultproxy.rs), which
//! drops connections, answers 500/503, cuts bodies short and answers late.
//! A backup either commits whole or fails naming what it was writing, and
//! never leaves a snapshot that references missing data; a restore retries
//! what is transient and fails, naming the pack, on what is not, never
//! writing wrong bytes. Outside CI without a gateway the tests skip; under
//! `CI=true` they fail (as in s3.rs).

use std::time::Duration;

use super::s3::s3_repo;
use super::*;
use crate::faultproxy::{Fault, FaultProxy, Rule};

/// Short limits keep the persistent-fault cases fast; the default timeout
/// stays above the gateway's slow first multipart upload.
const RETRIES: &str = "3";
const TIMEOUT: &str = "5";
/// For the delay cases: a timeout, and a delay past it.
const SHORT_TIMEOUT: &str = "1";
const DELAY: Duration = Duration::from_millis(2500);

struct Faulty {
    env: Env,
    repo: String,
    proxy: FaultProxy,
}

impl Faulty {
    fn new() -> Option<Faulty> {
        let repo = s3_repo()?;
        let upstream = std::env::var("AWS_ENDPOINT_URL").expect("s3_repo checked it");
        Some(Faulty {
            env: Env::new(),
            repo,
            proxy: FaultProxy::start(&upstream),
        })
    }

    /// Runs robovault through the proxy with cache directory `cache`.
    fn run_with(&self, cache: &str, args: &[&str], timeout: &str) -> Output {
        self.env
            .cmd()
            .arg("--s3-allow-http")
            .args(args)
            .env("ROBOVAULT_CACHE_DIR", self.env.path(cache))
            .env("AWS_ENDPOINT_URL", self.proxy.url())
            .env("ROBOVAULT_S3_RETRIES", RETRIES)
            .env("ROBOVAULT_S3_TIMEOUT", timeout)
            .output()
            .unwrap()
    }

    fn run(&self, cache: &str, args: &[&str]) -> Output {
        self.run_with(cache, args, TIMEOUT)
    }

    /// `verify --read-data` without faults finds nothing wrong.
    fn verify_clean(&self, cache: &str, what: &str) {
        self.proxy.clear();
        let out = self.run(cache, &["verify", &self.repo, "--read-data", "--json"]);
        assert_eq!(code(&out), 0, "{what}: {}{}", text(&out.stdout), text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{what}: {v}");
    }

    /// A fresh machine restores the latest snapshot equal to `src`.
    fn restores_as(&self, src: &Path, what: &str) {
        self.proxy.clear();
        let cache = format!("fresh-{:08x}", rand::random::<u32>());
        let target = self.env.path(&format!("out-{cache}"));
        let t = target.to_string_lossy().into_owned();
        let out = self.run(&cache, &["restore", &self.repo, &t]);
        assert!(code(&out) < 8, "{what}: {}{}", text(&out.stdout), text(&out.stderr));
        assert_same_tree(src, &target);
        fs::remove_dir_all(&target).unwrap();
        fs::remove_dir_all(self.env.path(&cache)).unwrap();
    }
}

/// Every file below `target` is in `src` with the same bytes: a failed
/// restore may leave files out, never write wrong ones.
fn no_wrong_bytes(src: &Path, target: &Path, what: &str) {
    if !target.exists() {
        return;
    }
    for p in walk(target) {
        if fs::symlink_metadata(&p).unwrap().is_file() {
            let rel = p.strip_prefix(target).unwrap();
            let want = fs::read(src.join(rel)).unwrap_or_else(|_| panic!("{what}: {rel:?} is not in the source"));
            assert!(fs::read(&p).unwrap() == want, "{what}: {rel:?} holds wrong bytes");
        }
    }
}

/// One backup case: which requests break, how, and what the new data is.
struct Case {
    name: &'static str,
    rules: Vec<Rule>,
    /// Bytes of new data: above 8 MiB the pack goes up in parts.
    new_bytes: usize,
    /// Whether the backup must commit (the faults are within its retries).
    commits: Option<bool>,
    /// What a failure must name.
    names: &'static [&'static str],
}

fn case(name: &'static str, rules: Vec<Rule>, commits: Option<bool>, names: &'static [&'static str]) -> Case {
    Case {
        name,
        rules,
        new_bytes: 64 << 10,
        commits,
        names,
    }
}

#[test]
fn backups_under_store_faults_commit_whole_or_fail_naming_the_object() {
    let Some(f) = Faulty::new() else { return };
    let src = f.env.src();
    write(&src.join("base.txt"), b"the first run");
    let out = f.run("m1", &["backup", "src", &f.repo, "--series", "s"]);
    assert!(code(&out) < 8, "{}{}", text(&out.stdout), text(&out.stderr));
    let big = |mut c: Case| {
        c.new_bytes = 9 << 20;
        c
    };
    use Fault::*;
    let put_pack = |fault| Rule::new("PUT", "/packs/", fault);
    let cases = vec![
        case(
            "pack PUT dropped before read",
            vec![put_pack(DropBeforeRead)],
            Some(true),
            &[],
        ),
        case(
            "pack PUT dropped after read",
            vec![put_pack(DropAfterRead)],
            Some(true),
            &[],
        ),
        case("pack PUT answer lost", vec![put_pack(DropResponse)], Some(true), &[]),
        case(
            "pack PUT 500 twice",
            vec![put_pack(Status(500)).times(2)],
            Some(true),
            &[],
        ),
        case(
            "pack PUT 503 always",
            vec![put_pack(Status(503)).always()],
            Some(false),
            &["uploading pack "],
        ),
        case("pack PUT late", vec![put_pack(Delay(DELAY))], None, &["pack "]),
        case(
            "pack HEAD 503",
            vec![Rule::new("HEAD", "/packs/", Status(503))],
            Some(true),
            &[],
        ),
        big(case(
            "part PUT 503",
            vec![Rule::new("PUT", "partNumber=", Status(503))],
            Some(true),
            &[],
        )),
        big(case(
            "part PUT answer lost",
            vec![Rule::new("PUT", "partNumber=", DropResponse)],
            Some(true),
            &[],
        )),
        big(case(
            "multipart complete answer lost",
            vec![Rule::new("POST", "uploadId=", DropResponse)],
            None,
            &["pack "],
        )),
        big(case(
            "multipart start 500 always",
            vec![Rule::new("POST", "?uploads", Status(500)).always()],
            Some(false),
            &["uploading pack "],
        )),
        case(
            "snapshot PUT 503",
            vec![Rule::new("PUT", "/snapshots/", Status(503))],
            Some(true),
            &[],
        ),
        case(
            "snapshot PUT answer lost",
            vec![Rule::new("PUT", "/snapshots/", DropResponse)],
            Some(true),
            &[],
        ),
        case(
            "snapshot PUT 500 always",
            vec![Rule::new("PUT", "/snapshots/", Status(500)).always()],
            Some(true),
            &["snapshot "],
        ),
        case(
            "index copy PUT dropped",
            vec![Rule::new("PUT", "/index/", DropAfterRead)],
            Some(true),
            &[],
        ),
        case(
            "index copy PUT 503 always",
            vec![Rule::new("PUT", "/index/", Status(503)).always()],
            Some(true),
            &["index copy "],
        ),
        case(
            "listing 500 twice",
            vec![Rule::new("GET", "list-type=2", Status(500)).times(2)],
            Some(true),
            &[],
        ),
        case(
            "listing dropped",
            vec![Rule::new("GET", "list-type=2", DropAfterRead)],
            Some(true),
            &[],
        ),
        case(
            "listing cut short",
            vec![Rule::new("GET", "list-type=2", Truncate)],
            Some(true),
            &[],
        ),
        case(
            "listing 503 always",
            vec![Rule::new("GET", "list-type=2", Status(503)).always()],
            Some(false),
            &["listing "],
        ),
    ];
    let tried = cases.len();
    for (i, c) in cases.into_iter().enumerate() {
        let what = c.name;
        write(
            &src.join(format!("case-{i:02}.bin")),
            &random_bytes(c.new_bytes, 1000 + i as u64),
        );
        write(&src.join("base.txt"), format!("changed by case {i}").as_bytes());
        let timeout = if c.rules.iter().any(|r| matches!(r.fault, Delay(_))) {
            SHORT_TIMEOUT
        } else {
            TIMEOUT
        };
        if c.rules.iter().any(|r| r.target.contains("/index/")) {
            // So that this backup publishes an index copy.
            super::s3::drop_index_copies(&f.repo);
        }
        f.proxy.set(c.rules);
        let out = f.run_with("m1", &["backup", "src", &f.repo, "--series", "s"], timeout);
        let injected = f.proxy.injected();
        f.proxy.clear();
        assert!(
            injected.iter().all(|&n| n > 0),
            "{what}: the fault was never injected ({injected:?})"
        );
        let rc = code(&out);
        eprintln!("{what}: exit {rc}");
        let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
        // A case that commits but names an object fails only to publish the
        // committed snapshot: exit bit 8, the failure in the log.
        let publish_fails = c.commits == Some(true) && !c.names.is_empty();
        if publish_fails {
            assert!((8..16).contains(&rc), "{what}: exit {rc}: {log}");
            assert!(
                log.contains("Publishing Snapshot") && c.names.iter().any(|n| log.contains(n)),
                "{what}: the log names the failed publication: {log}"
            );
        } else {
            assert!(rc < 8 || rc == 16, "{what}: exit {rc}: {log}");
            if let Some(commits) = c.commits {
                assert_eq!(rc < 8, commits, "{what}: exit {rc}: {log}");
            }
        }
        if rc == 16 {
            let err = text(&out.stderr);
            assert!(
                c.names.iter().any(|n| err.contains(n)) && err.contains(&f.repo),
                "{what}: the error names neither the object nor the repository: {err}"
            );
        }
        f.verify_clean("m1", what);
        if rc >= 8 {
            // A later run without faults commits (and publishes what the
            // failed run committed), and what it commits is whole.
            let again = f.run("m1", &["backup", "src", &f.repo, "--series", "s"]);
            assert!(code(&again) < 8, "{what}: the run after: {}", text(&again.stderr));
            f.verify_clean("m1", what);
        }
        f.restores_as(&src, what);
    }
    eprintln!("backup fault cases tried: {tried}");
}

#[test]
fn restores_retry_transient_faults_and_name_the_pack_of_persistent_ones() {
    let Some(f) = Faulty::new() else { return };
    let src = f.env.src();
    // The big file goes up first, alone: its pack is the one broken below.
    write(&src.join("big.bin"), &random_bytes(3 << 20, 21));
    let out = f.run("m1", &["backup", "src", &f.repo, "--series", "s"]);
    assert!(code(&out) < 8, "{}", text(&out.stderr));
    for i in 0..5 {
        write(
            &src.join(format!("small/{i}.txt")),
            format!("small file {i}").as_bytes(),
        );
    }
    f.proxy.clear();
    let out = f.run("m1", &["backup", "src", &f.repo, "--series", "s"]);
    assert!(code(&out) < 8, "{}", text(&out.stderr));
    // big.bin's pack: read by cat of big.bin, not by cat of a small file
    // (both read the same root tree).
    let packs_read = |path: &str, cache: &str| -> std::collections::BTreeSet<String> {
        f.proxy.clear();
        let out = f.run(cache, &["cat", &f.repo, path]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        f.proxy
            .log()
            .iter()
            .filter(|s| s.method == "GET" && s.target.contains("/packs/"))
            .filter_map(|s| s.target.split('?').next()?.rsplit('/').next().map(str::to_owned))
            .collect()
    };
    let big_only: Vec<String> = packs_read("big.bin", "probe1")
        .difference(&packs_read("small/0.txt", "probe2"))
        .cloned()
        .collect();
    assert_eq!(big_only.len(), 1, "{big_only:?}");
    let big_pack = big_only[0].clone();

    use Fault::*;
    let get_packs = |fault| Rule::new("GET", "/packs/", fault);
    let mut tried = 0;
    // Transient: within the retries, the restore is whole.
    for (what, rule) in [
        ("dropped before read", get_packs(DropBeforeRead).times(2)),
        ("dropped after read", get_packs(DropAfterRead).times(2)),
        ("500", get_packs(Status(500)).times(2)),
        ("503", get_packs(Status(503)).times(2)),
        ("cut short", get_packs(Truncate).times(2)),
        ("late", get_packs(Delay(DELAY))),
    ] {
        tried += 1;
        let fault = rule.fault;
        let timeout = if matches!(fault, Delay(_)) {
            SHORT_TIMEOUT
        } else {
            TIMEOUT
        };
        f.proxy.set(vec![rule]);
        let target = format!("t-{tried}");
        let out = f.run_with("m1", &["restore", &f.repo, &target], timeout);
        assert!(f.proxy.injected()[0] > 0, "{what}: no fault injected");
        assert_eq!(code(&out), 1, "{what}: {}{}", text(&out.stdout), text(&out.stderr));
        assert_same_tree(&src, &f.env.path(&target));
        // cat and verify --read-data ride through the same faults.
        tried += 2;
        f.proxy.set(vec![Rule::new("GET", &big_pack, fault).times(2)]);
        let cat = f.run_with("m1", &["cat", &f.repo, "big.bin"], timeout);
        assert!(f.proxy.injected()[0] > 0, "{what}: no fault injected");
        assert_eq!(code(&cat), 0, "{what}: {}", text(&cat.stderr));
        assert!(cat.stdout == random_bytes(3 << 20, 21), "cat {what}: wrong bytes");
        f.proxy.set(vec![Rule::new("GET", &big_pack, fault).times(2)]);
        let verify = f.run_with("m1", &["verify", &f.repo, "--read-data"], timeout);
        assert!(f.proxy.injected()[0] > 0, "{what}: no fault injected");
        assert_eq!(code(&verify), 0, "verify {what}: {}", text(&verify.stdout));
        fs::remove_dir_all(f.env.path(&target)).unwrap();
    }
    // Persistent, on the big file's pack: that file is FAILED naming the
    // pack, the rest is restored, nothing wrong is written.
    for (what, fault) in [
        ("503", Status(503)),
        ("cut short", Truncate),
        ("dropped after read", DropAfterRead),
    ] {
        tried += 1;
        f.proxy.set(vec![Rule::new("GET", &big_pack, fault).always()]);
        let target = format!("p-{tried}");
        let out = f.run("m1", &["restore", &f.repo, &target]);
        let log = text(&out.stdout);
        assert_eq!(code(&out), 9, "{what}: copied and FAILED: {log}{}", text(&out.stderr));
        let tpath = f.env.path(&target);
        let err_line = format!("Reading Repository Data {}", tpath.join("big.bin").display());
        let at = log
            .find(&err_line)
            .unwrap_or_else(|| panic!("{what}: no ERROR line: {log}"));
        assert!(log[..at].rsplit('\n').next().unwrap().contains(" ERROR "), "{log}");
        let message = log[at..].lines().nth(1).unwrap_or("");
        assert!(message.contains(&format!("pack {big_pack}")), "{what}: {message}");
        assert!(
            log.contains("   Files :         6         5         0         0         1         0"),
            "{what}: {log}"
        );
        assert!(!tpath.join("big.bin").exists(), "{what}");
        no_wrong_bytes(&src, &tpath, what);
        fs::remove_dir_all(&tpath).unwrap();
        // cat fails naming the pack; verify reports it.
        tried += 2;
        let cat = f.run("m1", &["cat", &f.repo, "big.bin"]);
        assert_eq!(code(&cat), 16, "cat {what}");
        assert!(cat.stdout.is_empty(), "cat {what}: wrote bytes");
        assert!(
            text(&cat.stderr).contains(&big_pack),
            "cat {what}: {}",
            text(&cat.stderr)
        );
        let verify = f.run("m1", &["verify", &f.repo, "--read-data", "--json"]);
        assert_eq!(code(&verify), 8, "verify {what}: {}", text(&verify.stderr));
        let v: Value = serde_json::from_slice(&verify.stdout).unwrap();
        let problems = v["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "verify {what}: {v}");
        assert_eq!(problems[0]["object"], format!("pack {big_pack}"), "{v}");
    }
    // Every pack unreadable, the trees' too: the target's root is FAILED
    // (nothing to copy), naming a pack.
    tried += 1;
    // The fresh machine starts from an index copy of everything (else its
    // sync reads the footers of the packs committed since, which fail
    // here): one is published by the next backup after the copies go.
    super::s3::drop_index_copies(&f.repo);
    let out = f.run("m1", &["backup", "src", &f.repo, "--series", "s"]);
    assert!(code(&out) < 8, "{}", text(&out.stderr));
    f.proxy.set(vec![get_packs(Status(503)).always()]);
    let out = f.run("fresh", &["restore", &f.repo, "none"]);
    let log = text(&out.stdout);
    assert_eq!(code(&out), 8, "{log}{}", text(&out.stderr));
    let err_line = format!("Reading Repository Data {}/", f.env.path("none").display());
    let at = log.find(&err_line).unwrap_or_else(|| panic!("no ERROR line: {log}"));
    assert!(
        log[at..].lines().nth(1).unwrap_or("").starts_with("reading pack "),
        "{log}"
    );
    no_wrong_bytes(&src, &f.env.path("none"), "all packs");
    f.verify_clean("m1", "after the faults");
    eprintln!("restore/cat/verify fault cases tried: {tried}");
}

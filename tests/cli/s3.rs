//! Every command against a real S3 gateway (the one-node Ceph cluster that
//! `.ci/ceph-up` starts; its env file gives the endpoint, bucket and keys).
//! Each test works under its own prefix. Outside CI without a gateway the
//! tests skip; under `CI=true` they fail.

use super::*;

/// The test bucket, or `None` (skip) outside CI without a gateway.
pub(super) fn s3_bucket() -> Option<String> {
    let bucket = std::env::var("ROBOVAULT_TEST_S3_BUCKET").ok();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let (Some(bucket), Some(_)) = (bucket, endpoint) else {
        assert!(!in_ci(), "CI must run the S3 tests: .ci/run starts .ci/ceph-up");
        return None;
    };
    Some(bucket)
}

/// A repository URL under a fresh prefix, or `None` (skip) outside CI.
pub(super) fn s3_repo() -> Option<String> {
    Some(format!("s3://{}/cli/{:016x}", s3_bucket()?, rand::random::<u64>()))
}

/// The store of the S3 repository `repo`, reached directly (not through
/// robovault), as the gateway's environment gives it.
pub(super) fn s3_backend(repo: &str) -> robovault_store::S3Backend {
    let url = robovault_store::S3Url::parse(repo).unwrap().unwrap();
    let opts = robovault_store::S3Options {
        endpoint: std::env::var("AWS_ENDPOINT_URL").ok(),
        settings: std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).collect(),
        allow_http: true,
        ..Default::default()
    };
    robovault_store::S3Backend::new(url, &opts).unwrap()
}

/// Removes every index copy of `repo`, so that the next committing
/// command publishes one (a backup publishes only every
/// `robovault::SNAPSHOTS_PER_COPY` snapshots).
pub(super) fn drop_index_copies(repo: &str) {
    use robovault_store::Backend;
    let backend = s3_backend(repo);
    for name in backend.list(robovault_store::ObjectKind::Index).unwrap() {
        backend.delete(robovault_store::ObjectKind::Index, &name).unwrap();
    }
}

/// Runs robovault with a cache directory of its own ("a machine").
fn on(env: &Env, cache: &str, a: &[&str]) -> Output {
    env.cmd()
        .arg("--s3-allow-http")
        .args(a)
        .env("ROBOVAULT_CACHE_DIR", env.path(cache))
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(code(o) < 8, "exit {}: {}{}", code(o), text(&o.stdout), text(&o.stderr));
    text(&o.stdout)
}

#[test]
fn every_command_against_the_gateway_and_a_fresh_machine_restores() {
    let Some(repo) = s3_repo() else { return };
    let env = Env::new();
    write(&env.src().join("a.txt"), b"version one");
    write(&env.src().join("big.bin"), &random_bytes(24 << 20, 7));
    write(&env.src().join("d/b.txt"), b"bee");
    ok(&on(&env, "m1", &["init", &repo]));
    assert_eq!(
        code(&on(&env, "m1", &["init", &repo])),
        16,
        "init refuses an existing repository"
    );
    let first = on(&env, "m1", &["backup", "src", &repo, "--series", "s", "--json"]);
    let v: Value = serde_json::from_str(&ok(&first)).unwrap();
    assert_eq!(v["files"]["copied"], 3);
    assert_eq!(v["repository"], repo.as_str());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let between = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(&env.src().join("a.txt"), b"version two");
    let second: Value = serde_json::from_str(&ok(&on(
        &env,
        "m1",
        &["backup", "src", &repo, "--series", "s", "--json"],
    )))
    .unwrap();
    assert_eq!(second["files"]["copied"], 1);
    assert_eq!(second["read"]["files"], 1, "unchanged files are not read again");
    let hist = ok(&on(&env, "m1", &["history", &repo]));
    assert_eq!(hist.lines().count(), 3, "{hist}");
    let versions = ok(&on(&env, "m1", &["versions", &repo, "a.txt"]));
    assert_eq!(versions.lines().count(), 2, "{versions}");
    // Restore by date, on a fresh machine: nothing local but the bucket.
    ok(&on(&env, "m2", &["restore", &repo, "old", "--at", &between]));
    assert_eq!(fs::read_to_string(env.path("old/a.txt")).unwrap(), "version one");
    assert_eq!(fs::read(env.path("old/big.bin")).unwrap(), random_bytes(24 << 20, 7));
    ok(&on(&env, "m3", &["restore", &repo, "new"]));
    assert_same_tree(&env.src(), &env.path("new"));
    assert_eq!(ok(&on(&env, "m3", &["cat", &repo, "a.txt"])), "version two");
    let verify = ok(&on(&env, "m2", &["verify", &repo, "--read-data"]));
    assert!(verify.contains("no damage found"), "{verify}");
    // forget + gc reclaim the first version's data in two phases: the
    // first gc condemns the unused packs, a later one deletes them.
    ok(&on(&env, "m1", &["forget", &repo, "--keep-last", "1"]));
    let gc_json = |machine: &str, extra: &[&str]| -> Value {
        let mut a = vec!["gc", repo.as_str(), "--grace", "0s", "--json"];
        a.extend_from_slice(extra);
        serde_json::from_str(&ok(&on(&env, machine, &a))).unwrap()
    };
    let gc = gc_json("m1", &["--max-unused", "0%"]);
    assert!(gc["packs_condemned"].as_u64().unwrap() >= 1, "{gc}");
    assert_eq!(gc["packs_deleted"], 0, "the first phase deletes nothing: {gc}");
    // A backup on another machine after the condemnation does not reuse
    // the condemned blobs: it stores version one again.
    write(&env.src().join("a.txt"), b"version one");
    let reuse: Value = serde_json::from_str(&ok(&on(
        &env,
        "m2",
        &["backup", "src", &repo, "--series", "s", "--json"],
    )))
    .unwrap();
    assert_eq!(reuse["new_data"], 11, "{reuse}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let gc = gc_json("m1", &[]);
    assert!(
        gc["packs_deleted"].as_u64().unwrap() >= 1,
        "the second phase deletes: {gc}"
    );
    let hist = ok(&on(&env, "m2", &["history", &repo]));
    assert_eq!(hist.lines().count(), 3, "the other machine sees the forget: {hist}");
    ok(&on(&env, "m4", &["restore", &repo, "after-gc"]));
    assert_same_tree(&env.src(), &env.path("after-gc"));
    let verify = ok(&on(&env, "m4", &["verify", &repo, "--read-data"]));
    assert!(verify.contains("no damage found"), "{verify}");
    // A backup run from inside its source: the remote repository is not
    // "inside the source".
    let inside = env
        .cmd()
        .current_dir(env.src())
        .args(["--s3-allow-http", "backup", ".", &repo, "--series", "s", "/L"])
        .env("ROBOVAULT_CACHE_DIR", env.path("m4"))
        .output()
        .unwrap();
    ok(&inside);
    // repair index rebuilds a cache from the bucket alone.
    ok(&on(&env, "m4", &["repair", "index", &repo]));
    assert_eq!(ok(&on(&env, "m4", &["history", &repo])).lines().count(), 3);
    ok(&on(&env, "m4", &["restore", &repo, "after-repair"]));
    assert_same_tree(&env.src(), &env.path("after-repair"));
}

#[test]
fn two_hosts_back_up_into_one_bucket_at_once() {
    let Some(repo) = s3_repo() else { return };
    let env = Env::new();
    let shared = random_bytes(6 << 20, 11);
    for host in ["h1", "h2"] {
        write(&env.path(&format!("{host}/shared.bin")), &shared);
        write(&env.path(&format!("{host}/own.txt")), host.as_bytes());
    }
    ok(&on(&env, "c1", &["init", &repo]));
    let spawn = |host: &'static str| {
        env.cmd()
            .arg("--s3-allow-http")
            .args(["backup", host, &repo, "--series", host, "--json"])
            .env("ROBOVAULT_CACHE_DIR", env.path(&format!("cache-{host}")))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("h1"), spawn("h2"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    ok(&a);
    ok(&b);
    for host in ["h1", "h2"] {
        let out = format!("out-{host}");
        ok(&on(&env, "c3", &["restore", &repo, &out, "--series", host]));
        assert_same_tree(&env.path(host), &env.path(&out));
    }
    // A later run of one host deduplicates against the other's data.
    write(&env.path("h1/copy-of-h2.bin"), &shared);
    let again: Value = serde_json::from_str(&ok(&on(
        &env,
        "cache-h1",
        &["backup", "h1", &repo, "--series", "h1", "--json"],
    )))
    .unwrap();
    assert_eq!(again["new_data"], 0, "{again}");
    let hist = ok(&on(&env, "cache-h2", &["history", &repo]));
    assert!(hist.contains("series h1") && hist.contains("series h2"), "{hist}");
}

#[test]
fn hooks_and_history_name_a_remote_repository_by_its_url() {
    let Some(repo) = s3_repo() else { return };
    let env = Env::new();
    write(&env.src().join("a.txt"), b"a");
    let hook = format!("env | grep ^ROBOVAULT_ > {}", env.path("finish.env").display());
    ok(&on(
        &env,
        "m1",
        &["backup", "src", &repo, "--series", "s", "--on-finish", &hook],
    ));
    let hooked = fs::read_to_string(env.path("finish.env")).unwrap();
    assert!(
        hooked.lines().any(|l| l == format!("ROBOVAULT_REPOSITORY={repo}")),
        "{hooked}"
    );
    let history: Value = serde_json::from_str(&ok(&on(&env, "m1", &["history", &repo, "--json"]))).unwrap();
    assert_eq!(history[0]["repository"], repo.as_str(), "{history}");
}

#[test]
fn endpoint_and_region_given_only_as_options_reach_the_gateway() {
    let Some(repo) = s3_repo() else { return };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the gateway's endpoint");
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let env = Env::new();
    write(&env.src().join("a.txt"), b"by the options alone");
    write(&env.src().join("d/b.bin"), &random_bytes(3 << 20, 11));
    // The environment names no endpoint or region, or a dead one: the
    // options must be what reaches the gateway, and they win over it.
    let run = |cache: &str, env_endpoint: Option<&str>, a: &[&str]| {
        let mut c = env.cmd();
        c.env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("ROBOVAULT_S3_ALLOW_HTTP")
            .env("ROBOVAULT_CACHE_DIR", env.path(cache))
            .env("ROBOVAULT_S3_RETRIES", "0")
            .env("ROBOVAULT_S3_TIMEOUT", "10");
        if let Some(e) = env_endpoint {
            c.env("AWS_ENDPOINT_URL", e);
        }
        c.args(a)
            .args(["--s3-endpoint", &endpoint, "--s3-region", &region, "--s3-allow-http"])
            .output()
            .unwrap()
    };
    let first: Value = serde_json::from_str(&ok(&run("m1", None, &["backup", "src", &repo, "--json"]))).unwrap();
    assert_eq!(first["files"]["copied"], 2, "{first}");
    assert_eq!(first["repository"], repo.as_str());
    // A fresh machine whose environment points at a closed port.
    ok(&run("m2", Some("http://127.0.0.1:1"), &["restore", &repo, "back"]));
    assert_same_tree(&env.src(), &env.path("back"));
    let verify = ok(&run("m2", None, &["verify", &repo, "--read-data"]));
    assert!(verify.contains("no damage found"), "{verify}");
    // Without the options that environment is what is used, and it fails.
    let dead = env
        .cmd()
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("ROBOVAULT_CACHE_DIR", env.path("m3"))
        .env("ROBOVAULT_S3_RETRIES", "0")
        .env("ROBOVAULT_S3_TIMEOUT", "10")
        .args(["history", &repo, "--s3-allow-http"])
        .output()
        .unwrap();
    assert_eq!(code(&dead), 16, "{}", text(&dead.stdout));
    assert!(text(&dead.stderr).contains(&repo), "{}", text(&dead.stderr));
}

//! Messages that give the right advice: a damaged index or a lost config
//! names `robovault repair index REPO` (never `init`, which refuses a
//! repository's directory), and that repair works; a disk that fills up
//! during the index commit says `No space left on device`, naming the
//! repository.

use super::hostile::Tmpfs;
use super::*;

fn backed_up() -> Env {
    let env = Env::new();
    write(&env.src().join("a.txt"), b"alpha\n");
    write(&env.src().join("d/b.bin"), &random_bytes(200_000, 3));
    env.backup_json();
    env
}

/// Every command that opens the repository fails (16) with `advice`, and
/// none says to create a repository.
fn each_command_says(env: &Env, advice: &[String], what: &str) {
    for args in [
        &["ls", "repo"][..],
        &["history", "repo"][..],
        &["backup", "src", "repo", "--series", "s"][..],
        &["restore", "repo", "out"][..],
    ] {
        let out = env.run(args);
        let err = text(&out.stderr);
        let cmd = args.join(" ");
        assert_eq!(code(&out), 16, "{what}, {cmd}: {}{err}", text(&out.stdout));
        for a in advice {
            assert!(err.contains(a.as_str()), "{what}, {cmd}: {err}");
        }
        assert!(!err.contains("robovault init"), "{what}, {cmd}: {err}");
    }
}

/// After `repair index`, the repository restores what was backed up.
fn repaired(env: &Env, what: &str) {
    let out = env.run(&["repair", "index", "repo"]);
    assert_eq!(code(&out), 0, "{what}: {}{}", text(&out.stdout), text(&out.stderr));
    let out = env.run(&["restore", "repo", "back"]);
    assert_eq!(code(&out), 1, "{what}: {}", text(&out.stderr));
    assert_same_tree(&env.src(), &env.path("back"));
}

#[test]
fn a_missing_empty_truncated_or_zeroed_index_names_repair_index_which_mends_it() {
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 4] = [
        ("missing", |p| fs::remove_file(p).unwrap()),
        ("empty", |p| fs::write(p, b"").unwrap()),
        ("truncated", |p| {
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(4096 + 1000)
                .unwrap()
        }),
        ("zero-filled", |p| {
            let len = fs::metadata(p).unwrap().len() as usize;
            fs::write(p, vec![0u8; len]).unwrap()
        }),
    ];
    for (what, damage) in cases {
        let env = backed_up();
        let index = env.repo().join("index.sqlite");
        assert!(
            !env.repo().join("index.sqlite-wal").exists(),
            "all in the database file"
        );
        damage(&index);
        let repo = fs::canonicalize(env.repo()).unwrap();
        let advice = [
            format!("the index of repository {}/ is damaged", repo.display()),
            format!("run: robovault repair index {}", repo.display()),
        ];
        each_command_says(&env, &advice, what);
        repaired(&env, what);
    }
}

#[test]
fn a_lost_config_names_repair_index_which_writes_it_again() {
    let env = backed_up();
    let config = env.repo().join("config");
    let original = fs::read(&config).unwrap();
    fs::remove_file(&config).unwrap();
    let repo = fs::canonicalize(env.repo()).unwrap();
    let advice = [
        format!("repository {}/ has lost its config file", repo.display()),
        format!("run: robovault repair index {}", repo.display()),
    ];
    each_command_says(&env, &advice, "no config");
    repaired(&env, "no config");
    assert_eq!(fs::read(&config).unwrap(), original, "the same config, id and all");

    // With the index gone as well, the snapshot objects still give the id.
    fs::remove_file(&config).unwrap();
    fs::write(env.repo().join("index.sqlite"), b"").unwrap();
    fs::remove_dir_all(env.path("back")).unwrap();
    repaired(&env, "no config, empty index");
    assert_eq!(fs::read(&config).unwrap(), original);
}

#[test]
fn a_disk_full_during_the_index_commit_says_no_space_left_naming_the_repository() {
    let env = Env::new();
    // Room for the new repository and its few tree packs, not for the
    // index rows of 20,000 empty files.
    let Some(_disk) = Tmpfs::mount(&env.repo(), "1M") else {
        return;
    };
    for d in 0..20 {
        for i in 0..1000 {
            write(&env.src().join(format!("d{d:02}/file-with-a-longish-name-{i:05}")), b"");
        }
    }
    let out = env.run(&["backup", "src", "repo", "--series", "s", "-r", "0", "-w", "0"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 16, "{err}");
    let repo = fs::canonicalize(env.repo()).unwrap();
    assert!(
        err.contains(&format!("repository {}/: No space left on device", repo.display())),
        "{err}"
    );
    assert!(err.contains("index.sqlite"), "the index is what did not fit: {err}");
    let hist = env.run(&["history", "repo"]);
    assert_eq!(code(&hist), 0, "{}", text(&hist.stderr));
    assert!(!text(&hist.stdout).contains("exit="), "nothing was committed");
}

//! The log (ROBOCOPY.md §6): the switches that shape its lines, log files,
//! whole logs compared line for line, and the progress line.

use super::*;

#[test]
fn log_switches_shape_the_lines() {
    let env = Env::new();
    baseline(&env);
    write(&env.src().join("d/big.bin"), &[1u8; 3000]);
    set_mtime(&env.src().join("d/big.bin"), 1_700_000_000, 0);
    let line = |extra: &[&str]| {
        let (_, lines) = log(&env, &args(B, &[&["/L"], extra].concat()));
        lines.into_iter().find(|l| l.contains("big.bin")).unwrap_or_default()
    };
    assert_eq!(line(&[]), "\t  New File  \t         2.9 k\tbig.bin");
    assert_eq!(line(&["/BYTES"]), "\t  New File  \t          3000\tbig.bin");
    assert_eq!(line(&["/NC"]), "\t            \t         2.9 k\tbig.bin");
    assert_eq!(line(&["/NS"]), "\t  New File  \t              \tbig.bin");
    assert_eq!(line(&["/FP"]), "\t  New File  \t         2.9 k\t<S>/d/big.bin");
    let local = chrono::Local
        .timestamp_opt(1_700_000_000, 0)
        .unwrap()
        .format("%Y/%m/%d %H:%M:%S")
        .to_string();
    assert_eq!(
        line(&["/TS"]),
        format!("\t  New File  \t         2.9 k\t{local}\tbig.bin")
    );
    let eta = line(&["/ETA"]);
    assert!(eta.starts_with("\t  New File  \t         2.9 k\tbig.bin\t"), "{eta}");
    assert!(eta.contains(" -> "), "{eta}");
    assert_eq!(line(&["/NFL"]), "");
    let (_, lines) = log(&env, &args(B, &["/L", "/NDL"]));
    assert!(lines.iter().all(|l| !l.contains("<S>")), "{lines:?}");
    let out = env.run(&args(B, &["/L", "/NJH"]));
    assert!(!text(&out.stdout).contains("ROBOVAULT"));
    assert!(text(&out.stdout).contains("   Ended : "));
    let out = env.run(&args(B, &["/L", "/NJS"]));
    assert!(text(&out.stdout).contains("  Options : "));
    assert!(!text(&out.stdout).contains("Total    Copied"));
}

#[test]
fn report_all_extras_lists_files_outside_the_filespecs() {
    let env = Env::new();
    baseline(&env);
    let (c, lines) = log(&env, &args(B, &["*.none", "/X"]));
    assert_eq!(c, 0, "listed, not counted");
    assert!(
        lines.contains(&"\t*EXTRA File \t             5\t<S>/a.txt".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn log_file_truncates_appends_and_tees() {
    let env = Env::new();
    small_tree(&env);
    let out = env.run(&args(B, &["/LOG:run.log"]));
    assert!(text(&out.stdout).is_empty(), "the log goes to the file only");
    let first = fs::read_to_string(env.path("run.log")).unwrap();
    assert_eq!(first.matches("ROBOVAULT    ::").count(), 1);
    let logged = format!(" Log File : {}", env.path("run.log").display());
    assert!(first.contains(&logged), "{first}");
    env.run(&args(B, &["/LOG+:run.log"]));
    let second = fs::read_to_string(env.path("run.log")).unwrap();
    assert_eq!(second.matches("ROBOVAULT    ::").count(), 2, "appended");
    env.run(&args(B, &["/LOG:run.log"]));
    assert_eq!(
        fs::read_to_string(env.path("run.log"))
            .unwrap()
            .matches("ROBOVAULT    ::")
            .count(),
        1
    );
    let out = env.run(&args(B, &["/LOG:run.log", "/TEE"]));
    assert_eq!(
        text(&out.stdout),
        fs::read_to_string(env.path("run.log")).unwrap(),
        "/TEE: the same lines"
    );
    let out = env.run(&args(B, &["/LOG:run.log", "--json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["command"], "backup");
    assert!(fs::read_to_string(env.path("run.log"))
        .unwrap()
        .contains("Total    Copied"));
    let bad = env.run(&args(B, &["/LOG:nodir/x.log"]));
    assert_eq!(code(&bad), 16);
    assert!(text(&bad.stderr).contains("Opening Log File"), "{}", text(&bad.stderr));
}

/// Replaces the variable parts of a log: times, ids, the temp root.
fn normalise(log: &str, env: &Env) -> String {
    let root = env.dir.path().display().to_string();
    let mut out = Vec::new();
    for line in log.replace(&root, "<R>").lines() {
        let l = if let Some(i) = line.find(" ERROR ") {
            if i == 19 {
                format!("<DATE>{}", &line[i..])
            } else {
                line.to_owned()
            }
        } else if let Some(opts) = line.strip_prefix("  Options : ") {
            // The order of the switches is the implementation's (§6.2).
            let mut t: Vec<&str> = opts.split(' ').collect();
            t.sort_unstable();
            format!("  Options : {}", t.join(" "))
        } else if line.starts_with("  Started : ") {
            "  Started : <TIME>".into()
        } else if line.starts_with("   Ended : ") {
            "   Ended : <TIME>".into()
        } else if line.starts_with("   Times : ") {
            "   Times : <TIMES>".into()
        } else if line.starts_with("   Speed : ") {
            "   Speed : <SPEED>".into()
        } else if line.starts_with("Snapshot : ") && line.len() == 75 {
            "Snapshot : <ID>".into()
        } else if line.starts_with("  Parent : ") && line.len() == 75 {
            "  Parent : <ID>".into()
        } else if line.starts_with("     Dest : ") && line.contains(" baseline ") && !line.ends_with("none]") {
            let i = line.find(" baseline ").unwrap();
            format!("{} baseline <ID>]", &line[..i])
        } else {
            line.to_owned()
        };
        out.push(l);
    }
    out.join("\n") + "\n"
}

#[test]
fn full_log_of_a_first_backup() {
    let env = Env::new();
    small_tree(&env);
    let out = env.run(&[
        "backup", "src", "repo", "--series", "s", "/R:0", "/W:0", "/MT:1", "/XD", "e",
    ]);
    assert_eq!(code(&out), 1);
    // Written by hand from ROBOCOPY.md §6.1–§6.4.
    let expected = "\
-------------------------------------------------------------------------------
   ROBOVAULT    ::     Robust Versioned Backup   v0.1.0
-------------------------------------------------------------------------------

  Started : <TIME>
   Source : <R>/src/
     Dest : <R>/repo/ [series s, baseline none]
 New Repo : <R>/repo/ (created)

    Files : *.*
 Exc Dirs : e

  Options : *.* /S /E /DCOPY:DAT /COPY:DAT /MT:1 /R:0 /W:0

------------------------------------------------------------------------------

\t  New Dir          1\t<R>/src/
\t  New File  \t             5\ta.txt
\t  New Dir          1\t<R>/src/d/
\t  New File  \t             3\tb.txt

------------------------------------------------------------------------------

               Total    Copied   Skipped  Mismatch    FAILED    Extras
    Dirs :         3         2         1         0         0         0
   Files :         2         2         0         0         0         0
   Bytes :         8         8         0         0         0         0
   Times : <TIMES>

   Speed : <SPEED>
   Speed : <SPEED>
Snapshot : <ID>
  Parent : none
New Data :         8
   Ended : <TIME>
";
    assert_eq!(normalise(&text(&out.stdout), &env), normalise(expected, &env));
}

#[test]
fn full_log_of_an_incremental_backup_with_an_extra_and_a_failure() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    chmod(env.dir.path(), 0o755);
    small_tree(&env);
    let first = env.run(&["backup", "src", "repo", "--series", "s"]);
    assert_eq!(code(&first), 1);
    chown_tree(&env.repo(), 65534);
    chown_tree(&env.src(), 65534);
    fs::remove_file(env.src().join("a.txt")).unwrap();
    write(&env.src().join("secret.key"), &[b'k'; 64]);
    chmod(&env.src().join("secret.key"), 0o600);
    write(&env.src().join("d/b.txt"), b"beetle");
    set_mtime(&env.src().join("d/b.txt"), 1_700_000_100, 0);
    std::os::unix::fs::lchown(env.src().join("d/b.txt"), Some(65534), Some(65534)).unwrap();
    let out = setpriv_nobody(
        &env,
        &[
            "backup", "src", "repo", "--series", "s", "/R:1", "/W:0", "/MT:1", "/XD", "e",
        ],
    );
    assert_eq!(code(&out), 11, "1 copied + 2 extra + 8 failed: {}", text(&out.stderr));
    // Written by hand from ROBOCOPY.md §6.1–§6.4 and §7.1: one retry gives
    // two attempts, two ERROR lines, one Waiting line.
    let expected = "\
-------------------------------------------------------------------------------
   ROBOVAULT    ::     Robust Versioned Backup   v0.1.0
-------------------------------------------------------------------------------

  Started : <TIME>
   Source : <R>/src/
     Dest : <R>/repo/ [series s, baseline <ID>]

    Files : *.*
 Exc Dirs : e

  Options : *.* /S /E /DCOPY:DAT /COPY:DAT /MT:1 /R:1 /W:0

------------------------------------------------------------------------------

\t                   1\t<R>/src/
\t*EXTRA File \t             5\t<R>/src/a.txt
\t  New File  \t            64\tsecret.key
<DATE> ERROR 13 (0x0000000D) Copying File <R>/src/secret.key
Permission denied
Waiting 0 seconds... Retrying...
\t  New File  \t            64\tsecret.key
<DATE> ERROR 13 (0x0000000D) Copying File <R>/src/secret.key
Permission denied
ERROR: RETRY LIMIT EXCEEDED.
\t                   1\t<R>/src/d/
\t  Newer     \t             6\tb.txt

------------------------------------------------------------------------------

               Total    Copied   Skipped  Mismatch    FAILED    Extras
    Dirs :         3         0         3         0         0         0
   Files :         2         1         0         0         1         1
   Bytes :        70         6         0         0        64         5
   Times : <TIMES>

   Speed : <SPEED>
   Speed : <SPEED>
Snapshot : <ID>
  Parent : <ID>
New Data :         6
   Ended : <TIME>
";
    assert_eq!(normalise(&text(&out.stdout), &env), normalise(expected, &env));
}

#[test]
fn full_log_of_a_mirror_restore_dry_run() {
    let env = Env::new();
    baseline(&env);
    let out_dir = restore_target(&env);
    write(&out_dir.join("stale.txt"), b"stale");
    write(&out_dir.join("a.txt"), b"alpha");
    set_mtime(&out_dir.join("a.txt"), 1_700_000_000, 0);
    let out = env.run(&[
        "restore", "repo", "out", "--series", "s", "/MIR", "/L", "/MT:1", "/R:0", "/W:0",
    ]);
    assert_eq!(code(&out), 3, "1 copied + 2 extra");
    let id = &history_ids(&env)[0];
    let expected = format!(
        "\
-------------------------------------------------------------------------------
   ROBOVAULT    ::     Robust Versioned Backup   v0.1.0
-------------------------------------------------------------------------------

  Started : <TIME>
   Source : <R>/repo/ [series s, snapshot {id}]
     Dest : <R>/out/

    Files : *.*

  Options : *.* /S /E /PURGE /MIR /L /DCOPY:DAT /COPY:DAT /MT:1 /R:0 /W:0

------------------------------------------------------------------------------

\t                   1\t<R>/out/
\t*EXTRA File \t             5\t<R>/out/stale.txt
\t  New Dir          1\t<R>/out/d/
\t  New File  \t             3\tb.txt
\t  New Dir          0\t<R>/out/e/

------------------------------------------------------------------------------

               Total    Copied   Skipped  Mismatch    FAILED    Extras
    Dirs :         3         2         1         0         0         0
   Files :         2         1         1         0         0         1
   Bytes :         8         3         5         0         0         5
   Times : <TIMES>

   Speed : <SPEED>
   Speed : <SPEED>
Snapshot : <ID>
   Ended : <TIME>
"
    );
    assert_eq!(normalise(&text(&out.stdout), &env), normalise(&expected, &env));
    let left: Vec<_> = walk(&out_dir);
    assert_eq!(left.len(), 2, "/L changes nothing: {left:?}");
}

#[test]
fn a_progress_line_only_on_a_terminal_and_never_under_np() {
    let env = Env::new();
    small_tree(&env);
    let Some(tty) = on_a_terminal(&env, &args(B, &["/L"])) else {
        return;
    };
    assert!(tty.contains(" of 2 files, "), "a status line on a terminal: {tty}");
    assert!(tty.contains("ETA "), "{tty}");
    let Some(np) = on_a_terminal(&env, &args(B, &["/L", "/NP"])) else {
        return;
    };
    assert!(!np.contains(" files, "), "none under /NP: {np}");
    let piped = text(&env.run(&args(B, &["/L"])).stdout);
    assert!(!piped.contains(" files, "), "none in a pipe: {piped}");
    env.run(&args(B, &["/L", "/LOG:l.log"]));
    assert!(
        !fs::read_to_string(env.path("l.log")).unwrap().contains(" files, "),
        "none in a log file"
    );
}

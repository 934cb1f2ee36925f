//! The log of a run with more than one thread: entries of directories
//! interleave (ROBOCOPY.md §6.2 Order), so file lines carry the full path,
//! and a reader can tell which of two files of one name failed.
//! Expectations are written from ROBOCOPY.md §6.1–§6.3.

use super::*;

/// The lines of a log between header and summary, `<S>` for the source,
/// `<DATE>` for the time of an ERROR line, sorted: threads decide the order.
fn sorted_lines(env: &Env, log: &str) -> Vec<String> {
    let src = env.src().display().to_string();
    let mut lines: Vec<String> = log
        .replace(&src, "<S>")
        .lines()
        .map(|l| match l.find(" ERROR ") {
            Some(i) if l.as_bytes().first().is_some_and(u8::is_ascii_digit) => format!("<DATE>{}", &l[i..]),
            _ => l.to_owned(),
        })
        .collect();
    lines.sort();
    lines
}

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    v.sort();
    v
}

#[test]
fn with_two_threads_the_failing_file_line_names_its_directory() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    chmod(env.dir.path(), 0o755);
    write(&env.src().join("d1/f0"), b"ok");
    write(&env.src().join("d2/f0"), b"no");
    chown_tree(&env.src(), 65534);
    // d2/f0 stays root's, mode 000: nobody cannot read it.
    std::os::unix::fs::lchown(env.src().join("d2/f0"), Some(0), Some(0)).unwrap();
    chmod(&env.src().join("d2/f0"), 0o000);
    fs::create_dir(env.repo()).unwrap();
    chown_tree(&env.repo(), 65534);
    fs::create_dir(env.path("logs")).unwrap();
    chown_tree(&env.path("logs"), 65534);

    let two_threads = [
        "backup",
        "src",
        "repo",
        "--series",
        "s",
        "-r",
        "1",
        "-w",
        "0",
        "--threads",
        "2",
        "--njh",
        "--njs",
        "--log",
        "logs/run.log",
    ];
    let out = setpriv_nobody(&env, &two_threads);
    assert_eq!(
        code(&out),
        9,
        "1 copied + 8 failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let log = fs::read_to_string(env.path("logs/run.log")).unwrap();
    let expected = sorted(&[
        "\t  New Dir          0\t<S>/",
        "\t  New Dir          1\t<S>/d1/",
        "\t  New File  \t             2\t<S>/d1/f0",
        "\t  New Dir          1\t<S>/d2/",
        "\t  New File  \t             2\t<S>/d2/f0",
        "<DATE> ERROR 13 (0x0000000D) Copying File <S>/d2/f0",
        "Permission denied",
        "Waiting 0 seconds... Retrying...",
        "\t  New File  \t             2\t<S>/d2/f0",
        "<DATE> ERROR 13 (0x0000000D) Copying File <S>/d2/f0",
        "Permission denied",
        "ERROR: RETRY LIMIT EXCEEDED.",
    ]);
    assert_eq!(sorted_lines(&env, &log), expected, "{log}");

    // One thread keeps the layout of §6.2: base names under their
    // directory's line. As root, d2/f0 is read now (Lonely: the failed
    // run recorded no version of it).
    write(&env.src().join("d1/f1"), b"one");
    let out = env.run(&args(B, &["--njh", "--njs"]));
    assert_eq!(code(&out), 1, "{}{}", text(&out.stdout), text(&out.stderr));
    let src = env.src().display().to_string();
    assert_eq!(
        text(&out.stdout).replace(&src, "<S>"),
        "\t                   0\t<S>/\n\
         \t                   2\t<S>/d1/\n\
         \t  New File  \t             3\tf1\n\
         \t                   1\t<S>/d2/\n\
         \t  New File  \t             2\tf0\n",
    );
}

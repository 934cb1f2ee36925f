//! Where an encrypted repository's password comes from. The first of these
//! that is given decides:
//!
//! 1. `--password-file FILE`
//! 2. `--password-command CMD`
//! 3. `ROBOVAULT_PASSWORD_FILE`
//! 4. `ROBOVAULT_PASSWORD_COMMAND`
//! 5. `ROBOVAULT_PASSWORD`
//! 6. a prompt, when stdin is a terminal
//!
//! The choice is made at start-up; the password itself is read only when
//! the engine asks, that is when it opens or creates an encrypted
//! repository. It lives in `Zeroizing` buffers only and is never printed.

use std::io::{IsTerminal, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use robovault::{NoPassword, PasswordPurpose, PasswordSource};
use zeroize::Zeroizing;

/// Who gave a source: an option on the command line or the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--password-file` or `--password-command`.
    Option,
    /// A `ROBOVAULT_PASSWORD*` variable.
    Environment,
}

/// The `ROBOVAULT_PASSWORD*` variables, as `env` reads them.
#[derive(Default)]
pub struct Vars {
    /// `ROBOVAULT_PASSWORD_FILE`.
    pub file: Option<PathBuf>,
    /// `ROBOVAULT_PASSWORD_COMMAND`.
    pub command: Option<String>,
    /// `ROBOVAULT_PASSWORD`.
    pub password: Option<Zeroizing<String>>,
}

/// The source chosen by the precedence of the module doc.
#[derive(Clone)]
pub enum Choice {
    /// The first line of a file.
    File(PathBuf, Origin),
    /// The first line a `sh -c` command prints.
    Command(String, Origin),
    /// `ROBOVAULT_PASSWORD`'s value.
    Variable(Zeroizing<String>),
    /// Asked on the terminal.
    Prompt,
    /// No source: asking fails, naming every source.
    None,
}

impl std::fmt::Debug for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Choice::File(p, o) => write!(f, "File({}, {o:?})", p.display()),
            Choice::Command(c, o) => write!(f, "Command({c:?}, {o:?})"),
            Choice::Variable(_) => f.write_str("Variable(withheld)"),
            Choice::Prompt => f.write_str("Prompt"),
            Choice::None => f.write_str("None"),
        }
    }
}

/// The source of the options, else of the variables, else the terminal
/// when `terminal`, else none.
pub fn choose(file: Option<&Path>, command: Option<&str>, vars: Vars, terminal: bool) -> Choice {
    if let Some(f) = file {
        Choice::File(f.to_path_buf(), Origin::Option)
    } else if let Some(c) = command {
        Choice::Command(c.to_owned(), Origin::Option)
    } else if let Some(f) = vars.file {
        Choice::File(f, Origin::Environment)
    } else if let Some(c) = vars.command {
        Choice::Command(c, Origin::Environment)
    } else if let Some(p) = vars.password {
        Choice::Variable(p)
    } else if terminal {
        Choice::Prompt
    } else {
        Choice::None
    }
}

/// Whether a prompt can be shown: stdin is a terminal.
pub fn on_a_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The engine's password source for a [`Choice`].
#[derive(Debug, Clone)]
pub struct CliPassword(pub Choice);

impl PasswordSource for CliPassword {
    fn password(&self, purpose: PasswordPurpose) -> std::result::Result<Zeroizing<String>, String> {
        let got = match &self.0 {
            Choice::File(path, _) => from_file(path),
            Choice::Command(cmd, _) => from_command(cmd),
            Choice::Variable(p) => nonempty(p.clone(), "ROBOVAULT_PASSWORD"),
            Choice::Prompt => prompt(purpose),
            Choice::None => return NoPassword.password(purpose),
        };
        got.map_err(|e| format!("{e:#}"))
    }
}

/// The first line of `text`, without its `\n` or `\r\n`.
fn first_line(text: &str) -> Zeroizing<String> {
    let line = text.split('\n').next().unwrap_or_default();
    Zeroizing::new(line.strip_suffix('\r').unwrap_or(line).to_owned())
}

fn nonempty(p: Zeroizing<String>, what: &str) -> Result<Zeroizing<String>> {
    if p.is_empty() {
        bail!("{what} gives an empty password");
    }
    Ok(p)
}

/// The password in the first line of the file at `path`, with a warning
/// on stderr when group or others have any access to it.
///
/// # Errors
/// As [`read_file`].
pub fn from_file(path: &Path) -> Result<Zeroizing<String>> {
    read_file(path, |w| eprintln!("WARNING : {w}"))
}

/// The password in the first line of the file at `path`; `warn` hears of
/// a file that group or others have any access to.
///
/// # Errors
/// An unreadable file, one that is not UTF-8 text, or an empty first line.
pub fn read_file(path: &Path, mut warn: impl FnMut(&str)) -> Result<Zeroizing<String>> {
    let what = || format!("reading password file {}", path.display());
    let mut file = std::fs::File::open(path).with_context(what)?;
    let meta = file.metadata().with_context(what)?;
    if meta.permissions().mode() & 0o077 != 0 {
        warn(&format!(
            "password file {p} is open to group or others (mode {mode:03o}); chmod 600 {p}",
            p = path.display(),
            mode = meta.permissions().mode() & 0o777,
        ));
    }
    // Room for the whole file up front, so that no reallocation leaves a
    // copy of the password behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.read_to_end(&mut bytes).with_context(what)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("password file {} is not UTF-8 text", path.display()))?;
    nonempty(first_line(text), &format!("password file {}", path.display()))
}

/// The first line that `sh -c cmd` prints. Its stdin and stderr are
/// robovault's own, so that it can ask on the terminal (gpg's pinentry);
/// it does not see the `ROBOVAULT_PASSWORD*` variables.
///
/// # Errors
/// A command that cannot start, exits non-zero, prints no password or
/// prints something other than UTF-8 text; the error names the command,
/// never what it printed.
pub fn from_command(cmd: &str) -> Result<Zeroizing<String>> {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd).stdin(Stdio::inherit()).stderr(Stdio::inherit());
    crate::env::without_password_vars(&mut c);
    let out = c
        .output()
        .with_context(|| format!("running password command \"{cmd}\""))?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        let how = out
            .status
            .code()
            .map_or_else(|| "was killed by a signal".to_owned(), |n| format!("exited with {n}"));
        bail!("password command \"{cmd}\" {how}");
    }
    let text = std::str::from_utf8(&stdout)
        .map_err(|_| anyhow::anyhow!("password command \"{cmd}\" printed something other than UTF-8 text"))?;
    nonempty(first_line(text), &format!("password command \"{cmd}\""))
}

/// Asks on the terminal; twice, compared, for a new password.
fn prompt(purpose: PasswordPurpose) -> Result<Zeroizing<String>> {
    let ask = |text: &str| {
        rpassword::prompt_password(text)
            .map(Zeroizing::new)
            .context("reading the password from the terminal")
    };
    match purpose {
        PasswordPurpose::Unlock => nonempty(ask("Password for the repository: ")?, "the prompt"),
        PasswordPurpose::New => {
            let first = nonempty(ask("New password for the repository: ")?, "the prompt")?;
            let again = ask("The same password again: ")?;
            if *first != *again {
                bail!("the two passwords differ; nothing was changed");
            }
            Ok(first)
        }
    }
}

/// What `schedule add` saves for a choice: the global options that give
/// the same source at two in the morning, with an absolute path.
///
/// # Errors
/// `ROBOVAULT_PASSWORD` alone, which cannot be saved; a password file that
/// does not exist.
pub fn saved_options(choice: &Choice) -> Result<Vec<String>> {
    match choice {
        Choice::File(p, _) => {
            let abs = robovault::absolute(p)?;
            let meta = std::fs::metadata(&abs).with_context(|| format!("checking password file {}", abs.display()))?;
            if !meta.is_file() {
                bail!("password file {} is not a file", abs.display());
            }
            // It goes into a unit file's line and a JSON string.
            let text = abs
                .to_str()
                .filter(|t| !t.chars().any(char::is_control))
                .with_context(|| format!("password file {}: use a path of printable text", abs.display()))?;
            Ok(vec!["--password-file".into(), text.to_owned()])
        }
        Choice::Command(c, _) => Ok(vec!["--password-command".into(), c.clone()]),
        Choice::Variable(_) => bail!(
            "the password is given only by ROBOVAULT_PASSWORD, which a scheduled run does not have: \
             put it in a password file (chmod 600) and pass --password-file FILE, or use --password-command CMD"
        ),
        Choice::Prompt | Choice::None => Ok(Vec::new()),
    }
}

/// The options that gave `choice` on this command line (not the
/// environment), with an absolute path: what `schedule run` hands on to
/// the run it starts in another directory.
///
/// # Errors
/// A path that cannot be made absolute.
pub fn given_options(choice: &Choice) -> Result<Vec<String>> {
    Ok(match choice {
        Choice::File(p, Origin::Option) => {
            vec!["--password-file".into(), robovault::absolute(p)?.display().to_string()]
        }
        Choice::Command(c, Origin::Option) => vec!["--password-command".into(), c.clone()],
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(file: Option<&Path>, command: Option<&str>, password: Option<&str>) -> Vars {
        Vars {
            file: file.map(Path::to_path_buf),
            command: command.map(str::to_owned),
            password: password.map(|p| Zeroizing::new(p.to_owned())),
        }
    }

    fn secret_file(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn ask(choice: Choice) -> std::result::Result<String, String> {
        CliPassword(choice)
            .password(PasswordPurpose::Unlock)
            .map(|p| p.as_str().to_owned())
    }

    #[test]
    fn precedence_runs_from_options_to_variables_to_the_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let opt_file = secret_file(dir.path(), "opt", "from-option-file\n", 0o600);
        let env_file = secret_file(dir.path(), "env", "from-env-file\r\nsecond line\n", 0o600);
        let all = || {
            vars(
                Some(&env_file),
                Some("printf 'from-env-command\\n'"),
                Some("from-variable"),
            )
        };
        let got = |file: Option<&Path>, command: Option<&str>, v: Vars| ask(choose(file, command, v, true)).unwrap();
        assert_eq!(
            got(Some(&opt_file), Some("echo from-option-command"), all()),
            "from-option-file"
        );
        assert_eq!(
            got(None, Some("echo from-option-command"), all()),
            "from-option-command"
        );
        assert_eq!(got(None, None, all()), "from-env-file");
        let no_file = || vars(None, Some("printf 'from-env-command\\nrest'"), Some("from-variable"));
        assert_eq!(got(None, None, no_file()), "from-env-command");
        assert_eq!(
            got(None, None, vars(None, None, Some("from-variable"))),
            "from-variable"
        );
        assert!(matches!(choose(None, None, Vars::default(), true), Choice::Prompt));
        assert!(matches!(choose(None, None, Vars::default(), false), Choice::None));
        assert!(matches!(
            choose(None, None, vars(Some(&env_file), None, None), false),
            Choice::File(_, Origin::Environment)
        ));
        assert!(matches!(
            choose(Some(&opt_file), None, Vars::default(), false),
            Choice::File(_, Origin::Option)
        ));
    }

    #[test]
    fn no_source_and_no_terminal_names_every_source() {
        let e = ask(choose(None, None, Vars::default(), false)).unwrap_err();
        for source in [
            "--password-file",
            "--password-command",
            "ROBOVAULT_PASSWORD_FILE",
            "ROBOVAULT_PASSWORD_COMMAND",
            "ROBOVAULT_PASSWORD",
        ] {
            assert!(e.contains(source), "{source} in {e}");
        }
    }

    #[test]
    fn a_password_file_gives_its_first_line_and_refuses_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let crlf = secret_file(dir.path(), "crlf", "pass word\r\nnext\n", 0o600);
        assert_eq!(from_file(&crlf).unwrap().as_str(), "pass word");
        let bare = secret_file(dir.path(), "bare", "no-newline", 0o400);
        assert_eq!(from_file(&bare).unwrap().as_str(), "no-newline");
        let spaces = secret_file(dir.path(), "spaces", " x \n", 0o600);
        assert_eq!(
            from_file(&spaces).unwrap().as_str(),
            " x ",
            "only the line end is stripped"
        );
        for (name, body) in [
            ("empty", ""),
            ("blank", "\nsecret on line two\n"),
            ("crlf-only", "\r\n"),
        ] {
            let p = secret_file(dir.path(), name, body, 0o600);
            let e = format!("{:#}", from_file(&p).unwrap_err());
            assert!(
                e.contains("empty password") && e.contains(&p.display().to_string()),
                "{e}"
            );
            assert!(!e.contains("secret on line two"), "{e}");
        }
        let missing = dir.path().join("missing");
        let e = format!("{:#}", from_file(&missing).unwrap_err());
        assert!(e.contains(&missing.display().to_string()), "{e}");
    }

    #[test]
    fn a_group_readable_password_file_is_warned_about_and_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let read = |p: &Path| {
            let mut warned = Vec::new();
            let got = read_file(p, |w| warned.push(w.to_owned())).map(|p| p.as_str().to_owned());
            (got.unwrap(), warned)
        };
        let open = secret_file(dir.path(), "open", "s3cret\n", 0o640);
        let (got, warned) = read(&open);
        assert_eq!(got, "s3cret");
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].contains(&format!("chmod 600 {}", open.display())),
            "{warned:?}"
        );
        assert!(!warned[0].contains("s3cret"));
        let others = secret_file(dir.path(), "others", "s3cret\n", 0o604);
        assert_eq!(read(&others).1.len(), 1);
        let closed = secret_file(dir.path(), "closed", "s3cret\n", 0o600);
        assert!(read(&closed).1.is_empty());
        let owner_only = secret_file(dir.path(), "ro", "s3cret\n", 0o400);
        assert!(read(&owner_only).1.is_empty());
    }

    #[test]
    fn a_password_command_gives_its_first_line_and_its_failures_name_it() {
        assert_eq!(
            from_command("printf 'pw one\\r\\nnoise\\n'").unwrap().as_str(),
            "pw one"
        );
        let fails = "printf 'half-%s' printed; exit 3";
        let e = format!("{:#}", from_command(fails).unwrap_err());
        assert!(e.contains(fails) && e.contains("exited with 3"), "{e}");
        assert!(!e.contains("half-printed"), "not its output: {e}");
        let silent = "true";
        let e = format!("{:#}", from_command(silent).unwrap_err());
        assert!(e.contains("\"true\"") && e.contains("empty password"), "{e}");
        let e = format!("{:#}", from_command("echo").unwrap_err());
        assert!(e.contains("empty password"), "{e}");
    }

    #[test]
    fn an_empty_variable_is_no_password() {
        let e = ask(Choice::Variable(Zeroizing::new(String::new()))).unwrap_err();
        assert!(e.contains("ROBOVAULT_PASSWORD"), "{e}");
    }

    #[test]
    fn schedules_save_options_with_absolute_paths_and_refuse_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let p = secret_file(dir.path(), "pw", "x\n", 0o600);
        let saved = saved_options(&Choice::File(p.clone(), Origin::Environment)).unwrap();
        assert_eq!(saved, ["--password-file".to_owned(), p.display().to_string()]);
        let saved = saved_options(&Choice::Command("pass show rv".into(), Origin::Environment)).unwrap();
        assert_eq!(saved, ["--password-command", "pass show rv"]);
        let e = saved_options(&Choice::Variable(Zeroizing::new("x".into()))).unwrap_err();
        assert!(format!("{e:#}").contains("password file"), "{e:#}");
        assert!(saved_options(&Choice::None).unwrap().is_empty());
        assert!(saved_options(&Choice::File(dir.path().join("nope"), Origin::Option)).is_err());
    }
}

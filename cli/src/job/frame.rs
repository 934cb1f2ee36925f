//! The frame every job runs in, backup or restore alike: the log header
//! and its destinations, the run, fatal errors on the log and stderr
//! (ROBOCOPY.md §7.2), the JSON object or summary table, the exit code, and
//! the hooks after it all. What differs is a [`JobKind`].

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::Result;
use robovault::EXIT_FATAL;

use super::options::log_flags;
use super::switches::Effective;
use crate::args::JobArgs;
use crate::console::{error_lines, open_log, Console, Header, Job};
use crate::output::Times;

pub(crate) fn header(j: &JobArgs, filespecs: &[String], eff: &Effective, job_file: Option<PathBuf>) -> Header {
    let files: Vec<String> = filespecs.iter().chain(&j.include_files).cloned().collect();
    Header {
        files: if files.is_empty() {
            "*.*".into()
        } else {
            files.join(" ")
        },
        exc_files: j.exclude_file.join(" "),
        exc_dirs: j.exclude_dir.join(" "),
        options: eff.line.join(" "),
        log_file: j
            .log
            .clone()
            .or_else(|| j.log_append.clone())
            .map(|p| robovault::absolute(&p).unwrap_or(p)),
        job_file,
        list_only: j.list_only,
    }
}

/// Opens the log destinations: stdout unless `--json` or a log file without
/// `--tee`.
pub(crate) fn console(j: &JobArgs, job: Job, root: &Path, header: Header) -> Result<Console> {
    let file = match (&j.log, &j.log_append) {
        (Some(p), _) => Some((p, false)),
        (None, Some(p)) => Some((p, true)),
        _ => None,
    };
    let file = match file {
        Some((p, append)) => Some(open_log(p, append).map_err(|e| {
            let err = robovault::RunError::from_io(b"", "Opening Log File", &e, 1);
            anyhow::Error::new(Shown(error_lines(&p.display().to_string(), &err)))
        })?),
        None => None,
    };
    let to_stdout = !j.json && (file.is_none() || j.tee);
    Ok(Console::new(job, root, header, log_flags(j), to_stdout, file))
}

/// A fatal error already formatted as robocopy error lines.
#[derive(Debug)]
pub struct Shown(pub String);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.trim_end())
    }
}

impl std::error::Error for Shown {}

/// What a hook learns about a run, in `ROBOVAULT_*` environment variables.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) command: &'static str,
    /// The repository's location (a directory or a URL), for the hooks.
    pub(crate) repository: Option<String>,
    pub(crate) series: Option<String>,
    pub(crate) snapshot: Option<String>,
    /// The source (backup) or target (restore).
    pub(crate) root: Option<PathBuf>,
    pub(crate) counts: Option<robovault::Counts>,
    pub(crate) new_data: Option<u64>,
}

/// `--on-success`, `--on-failure` and `--on-finish`: each runs with `sh -c`,
/// its stdout sent to stderr so that the log or JSON on stdout stays clean.
/// A failing hook is reported and changes no exit code.
fn run_hooks(j: &JobArgs, o: &Outcome, r: &Result<u32>) {
    let code = match r {
        Ok(c) => *c,
        Err(_) => EXIT_FATAL,
    };
    let hooks = [
        ("--on-success", j.on_success.as_ref().filter(|_| code < 8)),
        ("--on-failure", j.on_failure.as_ref().filter(|_| code >= 8)),
        ("--on-finish", j.on_finish.as_ref()),
    ];
    for (flag, cmd) in hooks {
        let Some(cmd) = cmd else { continue };
        let mut c = std::process::Command::new("sh");
        c.arg("-c").arg(cmd);
        crate::env::without_password_vars(&mut c);
        for (k, v) in hook_env(j, o, code, r) {
            c.env(k, v);
        }
        if let Ok(err) = std::io::stderr().as_fd().try_clone_to_owned() {
            c.stdout(std::process::Stdio::from(err));
        }
        let status = c.status();
        let problem = match status {
            Ok(s) if s.success() => None,
            Ok(s) => Some(format!(
                "exited with {}",
                s.code().map_or("a signal".into(), |n| n.to_string())
            )),
            Err(e) => Some(format!("could not start: {e}")),
        };
        if let Some(p) = problem {
            let _ = writeln!(std::io::stderr(), "ERROR : hook {flag} \"{cmd}\" {p}");
        }
    }
}

fn hook_env(j: &JobArgs, o: &Outcome, code: u32, r: &Result<u32>) -> Vec<(String, String)> {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let mut env: Vec<(String, String)> = [
        ("ROBOVAULT_COMMAND", o.command.to_owned()),
        ("ROBOVAULT_EXIT_CODE", code.to_string()),
        (
            "ROBOVAULT_STATUS",
            if code < 8 { "success" } else { "failure" }.to_owned(),
        ),
        ("ROBOVAULT_REPOSITORY", o.repository.clone().unwrap_or_default()),
        ("ROBOVAULT_SERIES", o.series.clone().unwrap_or_default()),
        ("ROBOVAULT_SNAPSHOT", o.snapshot.clone().unwrap_or_default()),
        (
            if o.command == "backup" {
                "ROBOVAULT_SOURCE"
            } else {
                "ROBOVAULT_TARGET"
            },
            path(&o.root),
        ),
        (
            "ROBOVAULT_LOG",
            path(
                &j.log
                    .clone()
                    .or_else(|| j.log_append.clone())
                    .map(|p| robovault::absolute(&p).unwrap_or(p)),
            ),
        ),
        (
            "ROBOVAULT_NEW_DATA",
            o.new_data.map(|n| n.to_string()).unwrap_or_default(),
        ),
        (
            "ROBOVAULT_ERROR",
            r.as_ref().err().map(|e| format!("{e:#}")).unwrap_or_default(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(c) = &o.counts {
        for (row, r) in [("DIRS", c.dirs), ("FILES", c.files), ("BYTES", c.bytes)] {
            for (col, v) in ["TOTAL", "COPIED", "SKIPPED", "MISMATCH", "FAILED", "EXTRAS"]
                .iter()
                .zip(r.columns())
            {
                env.push((format!("ROBOVAULT_{row}_{col}"), v.to_string()));
            }
        }
    }
    env
}

/// A fatal error: its lines go to the log as well as stderr (§7.2).
fn fatal(e: robovault::Error, console: &Console) -> anyhow::Error {
    let text = match &e {
        robovault::Error::Source { path, error } => {
            let err = robovault::RunError::from_io(b"", "Accessing Source Directory", error, 1);
            error_lines(&path.display().to_string(), &err)
        }
        other => format!("ERROR : {other}\n"),
    };
    console.write(&text);
    anyhow::Error::new(Shown(text))
}

/// What a backup and a restore do differently inside the frame.
pub(crate) trait JobKind {
    /// The engine's summary of a finished run.
    type Summary;

    /// The run itself, reporting to the log.
    ///
    /// # Errors
    /// What makes the run meaningless (§7.2).
    fn run(&self, console: &Console) -> robovault::Result<Self::Summary>;

    /// The JSON object of a run that failed with `error` (§6.6).
    fn failure_json(&self, error: &str) -> serde_json::Value;

    /// What the hooks learn from the summary.
    fn record(&self, s: &Self::Summary, o: &mut Outcome);

    /// The JSON object of a finished run.
    fn json(&self, s: &Self::Summary) -> serde_json::Value;

    /// The summary table (§6.4), in bytes when `bytes`.
    fn table(&self, s: &Self::Summary, bytes: bool) -> String;

    /// The run's exit code (§4.7).
    fn exit_code(&self, s: &Self::Summary) -> u32;
}

/// Runs a job whose log is `console`: the run, then its JSON object and
/// summary table; a fatal error goes to the log and, under `--json`, as
/// the JSON object.
///
/// # Errors
/// The fatal error, already written as robocopy error lines.
pub(crate) fn execute<K: JobKind>(kind: &K, j: &JobArgs, console: &Console, o: &mut Outcome) -> Result<u32> {
    let s = match kind.run(console) {
        Ok(s) => s,
        Err(e) => {
            let e = fatal(e, console);
            if j.json {
                crate::stdout::print_flush(&format!("{}\n", kind.failure_json(&format!("{e:#}"))));
            }
            return Err(e);
        }
    };
    kind.record(&s, o);
    if j.json {
        crate::stdout::print_flush(&format!("{}\n", kind.json(&s)));
    }
    console.summary(&format!("\n{}", kind.table(&s, j.bytes)));
    Ok(kind.exit_code(&s))
}

/// Runs `job` (`"backup"` or `"restore"`), then its hooks, which learn
/// what `job` recorded in the [`Outcome`].
pub(crate) fn with_hooks(
    command: &'static str,
    j: &JobArgs,
    job: impl FnOnce(&mut Outcome) -> Result<u32>,
) -> Result<u32> {
    let mut o = Outcome {
        command,
        ..Outcome::default()
    };
    let r = job(&mut o);
    run_hooks(j, &o, &r);
    r
}

/// The Times row of a run that went from `started` to `ended` (§6.4).
pub(crate) fn times(
    started: chrono::DateTime<chrono::Utc>,
    ended: chrono::DateTime<chrono::Utc>,
    copy_time: std::time::Duration,
    wait_time: std::time::Duration,
) -> Times {
    Times {
        total: (ended - started).num_milliseconds() as f64 / 1000.0,
        copied: copy_time.as_secs_f64(),
        failed: wait_time.as_secs_f64(),
    }
}

/// What a backup and a restore both tell of a finished run in its JSON
/// object (ROBOCOPY.md §6.6), with the command's own fields in `own`.
/// Printed through a `serde_json::Value`, whose keys come out sorted.
pub(crate) struct RunJson<'a> {
    pub(crate) command: &'static str,
    pub(crate) repository: &'a Path,
    pub(crate) series: &'a str,
    pub(crate) started: chrono::DateTime<chrono::Utc>,
    pub(crate) ended: chrono::DateTime<chrono::Utc>,
    pub(crate) exit_code: u32,
    pub(crate) list_only: bool,
    pub(crate) counts: &'a robovault::Counts,
    pub(crate) errors: &'a [robovault::RunError],
}

/// The serialized form of [`RunJson`].
#[derive(serde::Serialize)]
struct RunObject<'a, T: serde::Serialize> {
    command: &'static str,
    repository: String,
    series: &'a str,
    started: String,
    ended: String,
    exit_code: u32,
    partial: bool,
    list_only: bool,
    dirs: &'a robovault::Row,
    files: &'a robovault::Row,
    bytes: &'a robovault::Row,
    errors: Vec<ErrorJson<'a>>,
    #[serde(flatten)]
    own: T,
}

/// A failure in a run's JSON object: `code` null for a failure that is no
/// system error (0 inside; no errno is 0).
#[derive(serde::Serialize)]
struct ErrorJson<'a> {
    path: String,
    action: &'a str,
    code: Option<i32>,
    message: &'a str,
    attempts: u32,
}

impl RunJson<'_> {
    /// The object, with the command's own fields.
    pub(crate) fn value(&self, own: impl serde::Serialize) -> serde_json::Value {
        use chrono::Local;
        let errors = self
            .errors
            .iter()
            .map(|e| ErrorJson {
                path: robovault::display_bytes(&e.path),
                action: &e.action,
                code: (e.code != 0).then_some(e.code),
                message: &e.message,
                attempts: e.attempts,
            })
            .collect();
        let object = RunObject {
            command: self.command,
            repository: self.repository.display().to_string(),
            series: self.series,
            started: self.started.with_timezone(&Local).to_rfc3339(),
            ended: self.ended.with_timezone(&Local).to_rfc3339(),
            exit_code: self.exit_code,
            partial: self.counts.files.failed + self.counts.dirs.failed > 0,
            list_only: self.list_only,
            dirs: &self.counts.dirs,
            files: &self.counts.files,
            bytes: &self.counts.bytes,
            errors,
            own,
        };
        // Plain data: serializing it cannot fail.
        serde_json::to_value(object).unwrap_or(serde_json::Value::Null)
    }
}

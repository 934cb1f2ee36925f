//! Job files in robocopy's `.RCJ` grammar (ROBOCOPY.md §8): reading them
//! into switches, and writing the effective options of a run as one.

use std::path::{Path, PathBuf};

use super::alias::{Switches, UsageError};

/// A parsed job file: its source and destination, and its other switches in
/// slash spelling, list values following their switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// `/SD:`.
    pub source: Option<String>,
    /// `/DD:`.
    pub dest: Option<String>,
    /// Every other line, with its number (from 1).
    pub args: Vec<(usize, JobArg)>,
}

/// One meaningful line of a job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobArg {
    /// A switch line, as written.
    Switch(String),
    /// A value of the list opened by `/IF`, `/XD` or `/XF` (its GNU name).
    Value(&'static str, String),
}

impl JobArg {
    /// The argument clap parses: a switch as written (the caller translates
    /// it), a value as `--LIST=VALUE` so that a value starting with `-`
    /// stays a value.
    pub fn arg(&self) -> String {
        match self {
            JobArg::Switch(s) => s.clone(),
            JobArg::Value(list, v) => format!("--{list}={v}"),
        }
    }
}

/// `NAME`, with `.rcj` appended when it has no extension; an existing file
/// whose extension differs only in case (`JOB.RCJ`) is found too.
pub fn job_path(name: &str) -> PathBuf {
    let p = PathBuf::from(name);
    if p.extension().is_some() {
        return p;
    }
    let lower = PathBuf::from(format!("{name}.rcj"));
    if lower.exists() {
        return lower;
    }
    let upper = PathBuf::from(format!("{name}.RCJ"));
    if upper.exists() {
        return upper;
    }
    lower
}

/// Decodes a job file: a BOM decides (UTF-8, UTF-16 LE or BE); without one,
/// `encoding` (utf-8, cp850, cp1252).
fn decode(bytes: &[u8], encoding: &str, path: &Path) -> Result<String, UsageError> {
    use yore::code_pages::{CP1252, CP850};
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return utf8(rest, path);
    }
    let utf16 = |rest: &[u8], le: bool| {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units)
            .map_err(|_| UsageError(format!("Invalid Job File : {} is not valid UTF-16", path.display())))
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    match encoding.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => utf8(bytes, path),
        "cp850" => Ok(CP850.decode(bytes).into_owned()),
        // Bytes cp1252 leaves undefined decode to U+FFFD.
        "cp1252" => Ok(CP1252.decode(bytes).into_owned()),
        other => Err(UsageError(format!(
            "Invalid Parameter : --job-encoding \"{other}\": use utf-8, cp850 or cp1252"
        ))),
    }
}

fn utf8(bytes: &[u8], path: &Path) -> Result<String, UsageError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        UsageError(format!(
            "Invalid Job File : {} is not UTF-8; give --job-encoding cp850 or cp1252 for a file written by robocopy",
            path.display()
        ))
    })
}

/// Strips a `::` comment: at the start of the line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with("::") {
        return "";
    }
    let bytes = line.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i] == b':' && bytes.get(i + 1) == Some(&b':') && bytes[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

/// Reads and parses a job file.
///
/// # Errors
/// `Opening Job File` when it cannot be read (the caller prints the system
/// error line); `Invalid Job File, Line #n` for a line it cannot take.
pub fn read(name: &str, encoding: &str, switches: &Switches) -> Result<JobFile, ReadError> {
    let path = job_path(name);
    let bytes = std::fs::read(&path).map_err(|e| ReadError::Open(path.clone(), e))?;
    parse_bytes(&bytes, encoding, path, switches)
}

/// Decodes and parses the bytes of the job file at `path`.
///
/// # Errors
/// As [`read`], less the opening.
pub fn parse_bytes(bytes: &[u8], encoding: &str, path: PathBuf, switches: &Switches) -> Result<JobFile, ReadError> {
    let text = decode(bytes, encoding, &path).map_err(ReadError::Parse)?;
    parse(&text, path, switches).map_err(ReadError::Parse)
}

/// Why a job file could not be used.
#[derive(Debug)]
pub enum ReadError {
    /// It could not be read.
    Open(PathBuf, std::io::Error),
    /// It could not be parsed.
    Parse(UsageError),
}

/// Parses job-file text (§8).
///
/// # Errors
/// `Invalid Job File, Line #n :"<line>"` for an unknown switch, a value
/// line outside `/IF`, `/XD` or `/XF`, or a `/JOB:` inside a job file.
pub fn parse(text: &str, path: PathBuf, switches: &Switches) -> Result<JobFile, UsageError> {
    let mut job = JobFile {
        path,
        ..JobFile::default()
    };
    let mut in_list: Option<&'static str> = None;
    for (n, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let invalid = || UsageError(format!("Invalid Job File, Line #{} :\"{}\"", n + 1, raw));
        let upper = line.to_uppercase();
        if let Some(v) = strip_prefix_ci(line, &upper, "/SD:") {
            job.source = Some(v.trim().to_owned());
            in_list = None;
            continue;
        }
        if let Some(v) = strip_prefix_ci(line, &upper, "/DD:") {
            job.dest = Some(v.trim().to_owned());
            in_list = None;
            continue;
        }
        if upper.starts_with("/JOB:") || upper == "/JOB" {
            return Err(invalid());
        }
        if switches.is_switch(line) {
            in_list = match upper.as_str() {
                "/IF" => Some("include-files"),
                "/XD" => Some("exclude-dir"),
                "/XF" => Some("exclude-file"),
                _ => None,
            };
            // A list switch stands alone; any other switch must translate.
            let lone_list = upper
                .split(':')
                .next()
                .is_some_and(|n| ["/IF", "/XD", "/XF"].contains(&n));
            if (lone_list && in_list.is_none()) || super::alias::translate(&[line.into()], switches).is_err() {
                return Err(invalid());
            }
            job.args.push((n + 1, JobArg::Switch(line.to_owned())));
            continue;
        }
        let Some(list) = in_list else {
            return Err(invalid());
        };
        job.args.push((n + 1, JobArg::Value(list, line.to_owned())));
    }
    Ok(job)
}

fn strip_prefix_ci<'a>(line: &'a str, upper: &str, prefix: &str) -> Option<&'a str> {
    upper.starts_with(prefix).then(|| &line[prefix.len()..])
}

/// One section of a saved job: its robocopy comment and lines.
pub struct Section {
    /// The section title, as robocopy writes it.
    pub title: &'static str,
    /// Switch lines (with values on their own lines for lists).
    pub lines: Vec<String>,
}

/// Robocopy's comment for a switch line of a saved job.
fn comment(line: &str) -> Option<&'static str> {
    let name = line.split(':').next().unwrap_or(line).to_uppercase();
    Some(match name.as_str() {
        "/SD" => "Source Directory.",
        "/DD" => "Destination Directory.",
        "/IF" => "Include Files matching these names",
        "/XD" => "eXclude Directories matching these names",
        "/XF" => "eXclude Files matching these names",
        "/S" => "copy Subdirectories, but not empty ones.",
        "/E" => "copy subdirectories, including Empty ones.",
        "/LEV" => "only copy the top n LEVels of the source directory tree.",
        "/DCOPY" => "what to COPY for directories (default is /DCOPY:DA).",
        "/COPY" => "what to COPY for files (default is /COPY:DAT).",
        "/PURGE" => "delete dest files/dirs that no longer exist in source.",
        "/MIR" => "MIRror a directory tree (equivalent to /E plus /PURGE).",
        "/R" => "number of Retries on failed copies: default 1 million.",
        "/W" => "Wait time between retries: default is 30 seconds.",
        "/MT" => "Do multi-threaded copies with n threads (default 8).",
        "/LOG" => "output status to LOG file (overwrite existing log).",
        "/LOG+" => "output status to LOG file (append to existing log).",
        "/NP" => "No Progress - don't display percentage copied.",
        "/V" => "produce Verbose output, showing skipped files.",
        _ => return None,
    })
}

/// Writes a job file in robocopy's layout: a header comment, then each
/// non-empty section under its title (§8 `--save-job`).
///
/// # Errors
/// The I/O error writing it.
pub fn write(path: &Path, sections: &[Section]) -> std::io::Result<()> {
    let mut text = format!(
        ":: Robocopy Job {}\n:: Created by robovault {}\n",
        path.file_stem()
            .map(|s| s.to_string_lossy().to_uppercase())
            .unwrap_or_default(),
        env!("CARGO_PKG_VERSION")
    );
    for s in sections.iter().filter(|s| !s.lines.is_empty()) {
        text.push_str(&format!("\n::\n:: {} :\n::\n", s.title));
        for l in &s.lines {
            text.push('\t');
            text.push_str(l);
            if let Some(c) = comment(l) {
                text.push_str("\t\t:: ");
                text.push_str(c);
            }
            text.push('\n');
        }
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn switches() -> Switches {
        let cmd = crate::args::Cli::command();
        Switches::of(cmd.find_subcommand("backup").expect("backup"))
    }

    #[test]
    fn the_sample_of_section_8() {
        let text = ":: robovault job /etc/robovault/finance.rcj\r\n\t/SD:/srv/shares/finance/\t:: Source Directory.\r\n\t/DD:/srv/vault/\t:: Destination Directory.\r\n\t/SERIES:finance\r\n\t/XD\t\t:: eXclude Directories matching these names\r\n\t\tnode_modules\r\n\t/XF\t\t:: eXclude Files matching these names\r\n\t\t*.tmp\t:: temp files\r\n\t\tmy file.txt\r\n";
        let job = parse(text, PathBuf::from("finance.rcj"), &switches()).unwrap();
        assert_eq!(job.source.as_deref(), Some("/srv/shares/finance/"));
        assert_eq!(job.dest.as_deref(), Some("/srv/vault/"));
        let args: Vec<String> = job.args.iter().map(|(_, a)| a.arg()).collect();
        assert_eq!(
            args,
            [
                "/SERIES:finance",
                "/XD",
                "--exclude-dir=node_modules",
                "/XF",
                "--exclude-file=*.tmp",
                "--exclude-file=my file.txt"
            ]
        );
        assert_eq!(job.args[0].0, 4, "line numbers count from 1");
    }

    #[test]
    fn bad_lines_name_their_number() {
        let e = parse("/NP\n\n/FOO\n", PathBuf::from("x.rcj"), &switches()).unwrap_err();
        assert_eq!(e.0, "Invalid Job File, Line #3 :\"/FOO\"");
        let e = parse("stray\n", PathBuf::from("x.rcj"), &switches()).unwrap_err();
        assert_eq!(e.0, "Invalid Job File, Line #1 :\"stray\"");
        let e = parse("/JOB:other\n", PathBuf::from("x.rcj"), &switches()).unwrap_err();
        assert_eq!(e.0, "Invalid Job File, Line #1 :\"/JOB:other\"");
        let e = parse("/NP\n/XD:foo\n", PathBuf::from("x.rcj"), &switches()).unwrap_err();
        assert_eq!(e.0, "Invalid Job File, Line #2 :\"/XD:foo\"");
        let e = parse("/R:\n", PathBuf::from("x.rcj"), &switches()).unwrap_err();
        assert_eq!(e.0, "Invalid Job File, Line #1 :\"/R:\"");
    }

    proptest::proptest! {
        /// Any text parses or fails with a line-numbered error; never a panic.
        #[test]
        fn any_text_parses_or_names_a_line(text in "(\\PC|\r|\n|\t|::|/[A-Z+:]{0,6})*") {
            match parse(&text, PathBuf::from("x.rcj"), &switches()) {
                Ok(_) => {}
                Err(e) => proptest::prop_assert!(e.0.starts_with("Invalid Job File, Line #"), "{}", e.0),
            }
        }

        /// Any bytes decode or fail cleanly, in every encoding.
        #[test]
        fn any_bytes_decode_or_fail(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for enc in ["utf-8", "cp850", "cp1252"] {
                let _ = decode(&bytes, enc, Path::new("x.rcj"));
            }
        }
    }

    #[test]
    fn encodings() {
        let p = Path::new("x.rcj");
        assert_eq!(decode(&[0xEF, 0xBB, 0xBF, b'a'], "utf-8", p).unwrap(), "a");
        assert_eq!(decode(&[0xFF, 0xFE, b'a', 0], "utf-8", p).unwrap(), "a");
        assert_eq!(decode(&[0xE9], "cp1252", p).unwrap(), "é");
        assert_eq!(decode(&[0x82], "cp850", p).unwrap(), "é");
        assert!(decode(&[0xE9], "utf-8", p).is_err());
    }
}

//! What a run reports: the classes of ROBOCOPY.md §4.1, the Dirs/Files/Bytes
//! rows of §4.6, per-item failures, and the exit-code bitmask of §4.7.

/// The class of an entry against the destination side (baseline or TARGET).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Only in the source.
    Lonely,
    /// Source mtime later.
    Newer,
    /// Source mtime earlier.
    Older,
    /// Same mtime, sizes (or link targets) differ.
    Changed,
    /// Same mtime and size, recorded attributes differ.
    Tweaked,
    /// As Same, but change time or inode differ (backup only).
    Modified,
    /// All equal.
    Same,
    /// Only in the destination.
    Extra,
    /// Kinds differ.
    Mismatched,
    /// As Same, but the baseline content lies in a pack the repository lost
    /// (backup only): read and stored again.
    Lost,
}

impl Class {
    /// The 12-character tag: capitalised when copied, lower-case when skipped.
    pub fn tag(self, kind_is_dir: bool, copied: bool) -> &'static str {
        match (self, copied) {
            (Class::Lonely, true) if kind_is_dir => "  New Dir   ",
            (Class::Lonely, true) => "  New File  ",
            (Class::Lonely, false) => "      lonely",
            (Class::Newer, true) => "  Newer     ",
            (Class::Newer, false) => "       newer",
            (Class::Older, true) => "  Older     ",
            (Class::Older, false) => "       older",
            (Class::Changed, true) => "  Changed   ",
            (Class::Changed, false) => "     changed",
            (Class::Tweaked, true) => "  Tweaked   ",
            (Class::Tweaked, false) => "     tweaked",
            (Class::Modified, true) => "  Modified  ",
            (Class::Modified, false) => "    modified",
            (Class::Same, true) => "  Same      ",
            (Class::Same, false) => "        same",
            (Class::Extra, _) if kind_is_dir => "*EXTRA Dir  ",
            (Class::Extra, _) => "*EXTRA File ",
            (Class::Mismatched, _) => "*MISMATCH   ",
            (Class::Lost, true) => "  Lost Pack ",
            (Class::Lost, false) => "   lost pack",
        }
    }
}

/// One summary row: Dirs, Files or Bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// Total.
    pub total: u64,
    /// Copied.
    pub copied: u64,
    /// Skipped.
    pub skipped: u64,
    /// Mismatch.
    pub mismatch: u64,
    /// FAILED.
    pub failed: u64,
    /// Extras.
    pub extras: u64,
}

impl Row {
    /// Adds another row, column by column.
    pub fn add(&mut self, o: &Row) {
        self.total += o.total;
        self.copied += o.copied;
        self.skipped += o.skipped;
        self.mismatch += o.mismatch;
        self.failed += o.failed;
        self.extras += o.extras;
    }

    /// The six columns in table order.
    pub fn columns(&self) -> [u64; 6] {
        [
            self.total,
            self.copied,
            self.skipped,
            self.mismatch,
            self.failed,
            self.extras,
        ]
    }

    /// A row from the six columns in table order.
    pub fn from_columns(c: [u64; 6]) -> Row {
        Row {
            total: c[0],
            copied: c[1],
            skipped: c[2],
            mismatch: c[3],
            failed: c[4],
            extras: c[5],
        }
    }
}

/// The Dirs, Files and Bytes rows of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Dirs.
    pub dirs: Row,
    /// Files.
    pub files: Row,
    /// Bytes.
    pub bytes: Row,
}

impl Counts {
    /// Adds another run's counts.
    pub fn add(&mut self, o: &Counts) {
        self.dirs.add(&o.dirs);
        self.files.add(&o.files);
        self.bytes.add(&o.bytes);
    }

    /// The exit code of ROBOCOPY.md §4.7 for these counts (bit 16 is for
    /// fatal errors and never comes from counts).
    pub fn exit_code(&self) -> u32 {
        let rows = [self.dirs, self.files, self.bytes];
        let mut code = 0;
        if self.files.copied > 0 {
            code |= 1;
        }
        if rows.iter().any(|r| r.extras > 0) {
            code |= 2;
        }
        if rows.iter().any(|r| r.mismatch > 0) {
            code |= 4;
        }
        if rows.iter().any(|r| r.failed > 0) {
            code |= 8;
        }
        code
    }
}

/// The exit code of a fatal error.
pub const EXIT_FATAL: u32 = 16;

/// One failure of a run: it is counted, reported and the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunError {
    /// Path relative to the job root, as bytes (printed with `\xNN` escapes).
    #[serde(serialize_with = "ser_path")]
    pub path: Vec<u8>,
    /// The robocopy action (`Copying File`, `Scanning Source Directory`, …).
    pub action: String,
    /// The OS error number (0 when the failure is not a system error).
    pub code: i32,
    /// The message.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
}

fn ser_path<S: serde::Serializer>(p: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::display_bytes(p))
}

impl RunError {
    /// A failure from an I/O error.
    pub fn from_io(path: &[u8], action: &str, e: &std::io::Error, attempts: u32) -> RunError {
        RunError {
            path: path.to_vec(),
            action: action.into(),
            code: e.raw_os_error().unwrap_or(0),
            message: io_message(e),
            attempts,
        }
    }
}

/// The system message of an I/O error without Rust's " (os error N)" suffix.
pub fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_bits_follow_the_counts() {
        let mut c = Counts::default();
        assert_eq!(c.exit_code(), 0);
        c.dirs.copied = 1;
        assert_eq!(c.exit_code(), 0, "directories alone do not set bit 1");
        c.files.copied = 1;
        c.bytes.extras = 5;
        assert_eq!(c.exit_code(), 3);
        c.dirs.failed = 1;
        c.files.mismatch = 1;
        assert_eq!(c.exit_code(), 15);
    }

    #[test]
    fn tags_are_twelve_characters() {
        use Class::*;
        for class in [
            Lonely, Newer, Older, Changed, Tweaked, Modified, Same, Extra, Mismatched, Lost,
        ] {
            for dir in [false, true] {
                for copied in [false, true] {
                    assert_eq!(class.tag(dir, copied).len(), 12);
                }
            }
        }
    }
}

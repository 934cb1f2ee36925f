//! The repository's writer lock: an OS file lock on `REPO/lock`, so it vanishes
//! with the process that held it, never stale. The holder writes who it is into
//! the file, so that a waiting writer can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The most bytes of the lock file that name its holder in a message.
const HOLDER_MAX: usize = 1024;

/// Who holds a lock, from the bytes of its lock file: the holder's own text,
/// trimmed, with bytes that are not UTF-8 or not printable replaced, or
/// "another process" when it wrote nothing.
pub fn lock_holder(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(HOLDER_MAX)];
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match text.trim() {
        "" => "another process".into(),
        holder => holder.to_owned(),
    }
}

/// An exclusive writer lock, held until dropped.
#[derive(Debug)]
pub struct WriterLock {
    file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the writer lock of the repository in `repo`, waiting up to `wait`
    /// for another writer to finish. `holder` describes this process
    /// ("pid 4242 on host fs01 since 2025-01-07 02:00:00 +01:00").
    ///
    /// # Errors
    /// [`Error::Locked`] naming the holder when the lock stays taken;
    /// [`Error::Io`] when the lock file cannot be opened.
    pub fn acquire(repo: &Path, holder: &str, wait: Duration) -> Result<WriterLock> {
        let path = repo.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("opening lock file", &path, e))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        let mut bytes = Vec::new();
                        // A holder writes one short line; read no more than
                        // a message can use, whatever the file has become.
                        let _ = (&mut file).take(HOLDER_MAX as u64).read_to_end(&mut bytes);
                        return Err(Error::Locked {
                            holder: lock_holder(&bytes),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("locking", &path, e)),
            }
        }
        // Best effort: the lock itself is what excludes; the text only names us.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = file.write_all(holder.as_bytes());
        Ok(WriterLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriterLock::acquire(dir.path(), "pid 1 on host a", Duration::ZERO).unwrap();
        let err = WriterLock::acquire(dir.path(), "pid 2", Duration::from_millis(120)).unwrap_err();
        assert!(err.to_string().contains("pid 1 on host a"), "{err}");
        drop(first);
        WriterLock::acquire(dir.path(), "pid 2", Duration::ZERO).unwrap();
    }
}

/// The readers' lock on `REPO/readers.lock`: every reader holds it shared
/// while it may read packs; `gc` takes it exclusively, after its index commit
/// and before deleting packs, so no reader loses a pack it still needs.
#[derive(Debug)]
pub struct ReaderLock {
    file: Option<File>,
}

impl ReaderLock {
    fn open(repo: &Path) -> Result<File> {
        let path = repo.join("readers.lock");
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            // A repository we may only read: a read-only descriptor locks too.
            .or_else(|_| File::open(&path))
            .map_err(|e| Error::io("opening lock file", &path, e))
    }

    /// A shared hold, taken at once (only an exclusive holder, `gc` deleting
    /// packs, makes it wait).
    ///
    /// # Errors
    /// [`Error::Io`] when the lock file cannot be opened or locked.
    pub fn shared(repo: &Path) -> Result<ReaderLock> {
        let file = match ReaderLock::open(repo) {
            Ok(f) => f,
            // No lock file, and we may not create one: no gc has ever run
            // here, and none can make one without a writer's rights, which
            // would have created it.
            Err(Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ReaderLock { file: None })
            }
            Err(e) => return Err(e),
        };
        file.lock_shared()
            .map_err(|e| Error::io("locking", repo.join("readers.lock"), e))?;
        Ok(ReaderLock { file: Some(file) })
    }

    /// The exclusive hold `gc` takes before deleting packs; waits for every
    /// reader to finish.
    ///
    /// # Errors
    /// [`Error::Io`] when the lock file cannot be opened or locked.
    pub fn exclusive(repo: &Path) -> Result<ReaderLock> {
        let file = ReaderLock::open(repo)?;
        file.lock()
            .map_err(|e| Error::io("locking", repo.join("readers.lock"), e))?;
        Ok(ReaderLock { file: Some(file) })
    }
}

impl Drop for ReaderLock {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            let _ = f.unlock();
        }
    }
}

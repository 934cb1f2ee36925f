//! Test-only hooks for crash tests. They compile to nothing without the
//! `testing` feature, and do nothing unless a test sets their variables.
//!
//! - Named crash points: a process whose `ROBOVAULT_CRASH_AT` names a point
//!   kills itself with SIGKILL when it reaches it.
//! - Pause points: `ROBOVAULT_PAUSE_AT` stops the process there for a few
//!   seconds, so a test can act at a known moment.
//! - Numbered storage operations: every durable step of the repository (an
//!   object created, committed or deleted through [`CrashBackend`], and each
//!   step of an index commit and checkpoint) gets a number in program order.
//!   `ROBOVAULT_TRACE_OPS=1` prints each one on stderr, and
//!   `ROBOVAULT_CRASH_AT_OP=N` simulates a power loss just before step N:
//!   what was not yet durable is dropped, then the process is killed.
//!
//! Every hook says on stderr that it fired, so a test can check that the
//! crash landed where it was aimed.

use std::sync::Arc;

use crate::{Backend, ObjectKind, ObjectWriter, Result};

/// Kills the process here if the crash tests asked for it.
#[inline]
pub fn crash_point(name: &str) {
    #[cfg(feature = "testing")]
    {
        if std::env::var_os("ROBOVAULT_CRASH_AT").is_some_and(|v| v == name) {
            enabled::die(&format!("crash point {name} reached"));
        }
    }
    #[cfg(not(feature = "testing"))]
    let _ = name;
}

/// Pauses here for a few seconds if the tests asked for it (with the
/// `testing` feature), after saying so on stderr, so a test can signal the
/// process at a known moment.
#[inline]
pub fn pause_point(name: &str) {
    #[cfg(feature = "testing")]
    {
        if std::env::var_os("ROBOVAULT_PAUSE_AT").is_some_and(|v| v == name) {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "robovault: paused at {name}");
            std::thread::sleep(std::time::Duration::from_secs(3));
        }
    }
    #[cfg(not(feature = "testing"))]
    let _ = name;
}

/// Counts one durable step (see the module docs); `what` names it in traces.
/// A `fn` pointer, so the index crate can be handed it without depending on
/// this one.
#[inline]
pub fn storage_op(what: &str) {
    #[cfg(feature = "testing")]
    enabled::storage_op(what);
    #[cfg(not(feature = "testing"))]
    let _ = what;
}

/// `backend` wrapped in a [`CrashBackend`] when a test traces or crashes
/// storage operations; `backend` itself otherwise, and always without the
/// `testing` feature.
pub fn crash_model(backend: Arc<dyn Backend>, deletes_durable: bool) -> Arc<dyn Backend> {
    #[cfg(feature = "testing")]
    {
        if enabled::active() {
            return Arc::new(CrashBackend {
                inner: backend,
                deletes_durable,
            });
        }
    }
    let _ = deletes_durable;
    backend
}

/// A backend wrapper that numbers every durable step and models what a power
/// loss keeps, as the storage contract of [`Backend`] promises it:
///
/// - an object is durable once `write_new` or `commit` returned (the local
///   backend syncs the file, renames it and syncs the directory first);
///   bytes of a writer not yet committed are never visible, so a crash
///   leaves at most a temporary file;
/// - a delete on a local filesystem is not synced: it becomes durable only
///   when a later object is (a journal commit carries both). A crash before
///   then brings the deleted object back. Object stores (`deletes_durable`)
///   make a delete durable when it returns.
pub struct CrashBackend {
    inner: Arc<dyn Backend>,
    deletes_durable: bool,
}

impl CrashBackend {
    fn step(&self, verb: &str, kind: ObjectKind, name: &str) {
        storage_op(&format!("{verb} {} {name}", kind.noun()));
    }

    fn made_durable(&self) {
        #[cfg(feature = "testing")]
        enabled::deletes_durable();
    }
}

impl Backend for CrashBackend {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn deletes(&self) -> crate::Deletes {
        self.inner.deletes()
    }
    fn reads(&self) -> crate::Reads {
        self.inner.reads()
    }
    fn list(&self, kind: ObjectKind) -> Result<Vec<String>> {
        self.inner.list(kind)
    }
    fn list_modified(&self, kind: ObjectKind) -> Result<Vec<(String, Option<std::time::SystemTime>)>> {
        self.inner.list_modified(kind)
    }
    fn read(&self, kind: ObjectKind, name: &str) -> Result<Vec<u8>> {
        self.inner.read(kind, name)
    }
    fn read_range(&self, kind: ObjectKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.inner.read_range(kind, name, offset, len)
    }
    fn size(&self, kind: ObjectKind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }
    fn exists(&self, kind: ObjectKind, name: &str) -> Result<bool> {
        self.inner.exists(kind, name)
    }
    fn write_new(&self, kind: ObjectKind, name: &str, data: &[u8]) -> Result<()> {
        self.step("write", kind, name);
        self.inner.write_new(kind, name, data)?;
        self.made_durable();
        self.step("wrote", kind, name);
        Ok(())
    }
    fn delete(&self, kind: ObjectKind, name: &str) -> Result<()> {
        self.step("delete", kind, name);
        // Keep the bytes so a simulated power loss can bring them back.
        let kept = match self.deletes_durable {
            true => None,
            false => self.inner.read(kind, name).ok(),
        };
        self.inner.delete(kind, name)?;
        #[cfg(feature = "testing")]
        if let Some(bytes) = kept {
            enabled::pending_delete(self.inner.clone(), kind, name, bytes);
        }
        #[cfg(not(feature = "testing"))]
        let _ = kept;
        self.step("deleted", kind, name);
        Ok(())
    }
    fn remove_temporaries(&self) -> Result<u64> {
        self.inner.remove_temporaries()
    }
    fn create(&self, kind: ObjectKind) -> Result<Box<dyn ObjectWriter>> {
        self.step("create", kind, "(new)");
        Ok(Box::new(CrashWriter {
            inner: self.inner.create(kind)?,
            kind,
        }))
    }
}

struct CrashWriter {
    inner: Box<dyn ObjectWriter>,
    kind: ObjectKind,
}

impl ObjectWriter for CrashWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.inner.write(data)
    }
    fn commit(self: Box<Self>, name: &str) -> Result<()> {
        storage_op(&format!("commit {} {name}", self.kind.noun()));
        let kind = self.kind;
        self.inner.commit(name)?;
        #[cfg(feature = "testing")]
        enabled::deletes_durable();
        storage_op(&format!("committed {} {name}", kind.noun()));
        Ok(())
    }
}

#[cfg(feature = "testing")]
mod enabled {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use crate::{Backend, ObjectKind};

    struct Settings {
        trace: bool,
        crash_at: Option<u64>,
    }

    fn settings() -> &'static Settings {
        static S: OnceLock<Settings> = OnceLock::new();
        S.get_or_init(|| Settings {
            trace: std::env::var_os("ROBOVAULT_TRACE_OPS").is_some(),
            crash_at: std::env::var("ROBOVAULT_CRASH_AT_OP").ok().and_then(|v| v.parse().ok()),
        })
    }

    pub(super) fn active() -> bool {
        let s = settings();
        s.trace || s.crash_at.is_some()
    }

    type Pending = (Arc<dyn Backend>, ObjectKind, String, Vec<u8>);

    fn pending() -> &'static Mutex<Vec<Pending>> {
        static P: OnceLock<Mutex<Vec<Pending>>> = OnceLock::new();
        P.get_or_init(|| Mutex::new(Vec::new()))
    }

    pub(super) fn pending_delete(backend: Arc<dyn Backend>, kind: ObjectKind, name: &str, bytes: Vec<u8>) {
        let mut p = pending().lock().unwrap_or_else(|e| e.into_inner());
        p.push((backend, kind, name.to_owned(), bytes));
    }

    pub(super) fn deletes_durable() {
        pending().lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub(super) fn storage_op(what: &str) {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let s = settings();
        if !s.trace && s.crash_at.is_none() {
            return;
        }
        let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        if s.trace {
            let _ = writeln!(std::io::stderr(), "robovault: storage op {n}: {what}");
        }
        if s.crash_at == Some(n) {
            // The power loss: deletes not yet carried by a sync come back.
            let lost = std::mem::take(&mut *pending().lock().unwrap_or_else(|e| e.into_inner()));
            for (backend, kind, name, bytes) in lost {
                let _ = backend.write_new(kind, &name, &bytes);
            }
            die(&format!("crash at storage op {n}: {what}"));
        }
    }

    pub(super) fn die(message: &str) -> ! {
        let _ = writeln!(std::io::stderr(), "robovault: {message}");
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; this is never reached.
        std::process::abort();
    }
}

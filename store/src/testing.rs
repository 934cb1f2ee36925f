//! Named crash points for crash tests. With the `testing` feature, a process
//! whose `ROBOVAULT_CRASH_AT` names a point kills itself with SIGKILL when it
//! reaches it, after saying so on stderr (so the test can check that the kill
//! landed where it was aimed). Without the feature this compiles to nothing.

/// Kills the process here if the crash tests asked for it.
#[inline]
pub fn crash_point(name: &str) {
    #[cfg(feature = "testing")]
    {
        if std::env::var_os("ROBOVAULT_CRASH_AT").is_some_and(|v| v == name) {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "robovault: crash point {name} reached");
            let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
            // SIGKILL cannot be caught; this is never reached.
            std::process::abort();
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

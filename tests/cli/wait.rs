//! `/TBD` (`--wait-for-share`): the wait for a missing source root stops
//! on Ctrl-C like any other wait of a run.

use super::*;

#[test]
fn ctrl_c_during_a_wait_for_share_stops_the_run() {
    let env = Env::new();
    fs::remove_dir_all(env.src()).ok();
    let mut child = env
        .cmd()
        .args(["backup", "src", "repo", "/R:5", "/W:600", "/TBD"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    use std::io::Read;
    while !text(&seen).contains("Waiting 600 seconds... Retrying...") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the backup ended before waiting: {}", text(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::INT).unwrap();
    // Far less than the 600 seconds the wait would take.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the wait went on after Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(16));
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("ERROR : interrupted; nothing was committed"), "{err}");
    assert!(!env.repo().exists(), "an interrupted run leaves no trace");
}

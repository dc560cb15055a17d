//! Running an operator's script (a payload script, a revocation action):
//! output logged line by line, a bounded run time, a clear outcome. Blocking;
//! call it off the async threads.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a script may run before it is killed.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `command` (stdin closed) for at most `timeout`, logging its output
/// lines prefixed with `label`.
///
/// # Errors
///
/// A message naming `label` when it cannot start, exits non-zero, is killed
/// by a signal or runs past `timeout` (it is then killed).
pub fn run(mut command: Command, label: &str, timeout: Duration) -> Result<(), String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {label}: {e}"))?;
    // Drain both pipes on their own threads so a chatty script cannot block.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            text
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "{label} ran longer than {} s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("cannot wait for {label}: {e}")),
        }
    };
    for line in String::from_utf8_lossy(&out.join().unwrap_or_default()).lines() {
        log::info!("{label}: {line}");
    }
    for line in String::from_utf8_lossy(&err.join().unwrap_or_default()).lines() {
        log::warn!("{label}: {line}");
    }
    match status?.code() {
        Some(0) => Ok(()),
        Some(code) => Err(format!("{label} exited with status {code}")),
        None => Err(format!("{label} was killed by a signal")),
    }
}

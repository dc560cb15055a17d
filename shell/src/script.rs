//! Running an operator's script (a payload script, a revocation action):
//! output logged line by line, a bounded run time, a clear outcome. Blocking;
//! call it off the async threads.

use std::io::Read;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a script may run before it is killed.
pub(crate) const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The command that runs the file at `path`: the file itself when it is
/// executable; else the interpreter its `#!` line names (with at most one
/// argument, as the kernel reads it), because a zip entry's mode may be lost
/// on the way (the tenant's `--include` does not keep it); else `sh`.
#[must_use]
pub(crate) fn command_for(path: &Path) -> Command {
    let executable = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
    if executable {
        return Command::new(path);
    }
    let (interpreter, arg) = shebang(path).unwrap_or_else(|| ("sh".into(), None));
    let mut command = Command::new(interpreter);
    command.args(arg).arg(path);
    command
}

/// The interpreter and its optional argument from the `#!` first line.
fn shebang(path: &Path) -> Option<(String, Option<String>)> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let line = head.get(..n)?.strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let (interpreter, arg) = match line.split_once([' ', '\t']) {
        Some((i, a)) => (i, Some(a.trim().to_string()).filter(|a| !a.is_empty())),
        None => (line, None),
    };
    (!interpreter.is_empty()).then(|| (interpreter.to_string(), arg))
}

/// Runs `command` (stdin closed) for at most [`SCRIPT_TIMEOUT`], logging its
/// output lines prefixed with `label`.
///
/// Errors: A message naming `label` when it cannot start, exits non-zero, is killed
/// by a signal or runs past [`SCRIPT_TIMEOUT`] (it is then killed).
pub(crate) fn run(mut command: Command, label: &str) -> Result<(), String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {label}: {e}"))?;
    // Drain both pipes on their own threads so a chatty script cannot block.
    fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            text
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= SCRIPT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "{label} ran longer than {} s and was killed",
                    SCRIPT_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("cannot wait for {label}: {e}")),
        }
    };
    for (pipe, level) in [(out, log::Level::Info), (err, log::Level::Warn)] {
        for line in String::from_utf8_lossy(&pipe.join().unwrap_or_default()).lines() {
            log::log!(level, "{label}: {line}");
        }
    }
    match status?.code() {
        Some(0) => Ok(()),
        Some(code) => Err(format!("{label} exited with status {code}")),
        None => Err(format!("{label} was killed by a signal")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_file_that_lost_its_mode_runs_with_its_shebang_interpreter() {
        // With sh this file exits 3; its interpreter (cat) only prints it.
        let dir = tempfile::tempdir().unwrap();
        let action = write(dir.path(), "action", "#!/bin/cat\nexit 3\n");
        run(command_for(&action), "action").unwrap();
        // With an argument, as the kernel passes it.
        let action = write(dir.path(), "action2", "#!/bin/sh -e\nfalse\nexit 0\n");
        let e = run(command_for(&action), "action2").unwrap_err();
        assert!(e.contains("exited with status 1"), "{e}");
        // Without a shebang: sh.
        let action = write(dir.path(), "action3", "exit 4\n");
        let e = run(command_for(&action), "action3").unwrap_err();
        assert!(e.contains("exited with status 4"), "{e}");
    }
}

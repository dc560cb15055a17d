//! The command line's inputs that std would panic on, which the release binaries
//! turn into a SIGILL: output into a pipe whose reader is gone (`keylet --help | true`,
//! `keylet doctor | head -1`), an argument or an environment value that is not UTF-8.
//! Each gets the command's own exit status.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::process::{Command, ExitStatus, Stdio};

/// Runs keylet with `args`, its stdout and stderr a pipe with no reader.
fn run_into_closed_pipe(args: &[&str]) -> ExitStatus {
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    drop(read);
    let stderr = write.try_clone().unwrap();
    Command::new(env!("CARGO_BIN_EXE_keylet"))
        .args(args)
        .env(
            "KEYLIME_AGENT_CONFIG",
            "/nonexistent/keylet-closed-output.conf",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(stderr))
        .status()
        .unwrap()
}

#[test]
fn help_and_version_into_a_closed_pipe_exit_0() {
    for args in [&["--help"][..], &["--version"]] {
        let status = run_into_closed_pipe(args);
        assert_eq!(status.code(), Some(0), "keylet {args:?}: {status}");
    }
}

#[test]
fn an_error_into_a_closed_pipe_keeps_its_exit_status() {
    let status = run_into_closed_pipe(&["no-such-command"]);
    assert_eq!(status.code(), Some(2), "{status}");
    // the configuration file does not exist: exit 2, message lost with the pipe
    let status = run_into_closed_pipe(&["identity"]);
    assert_eq!(status.code(), Some(2), "{status}");
}

#[test]
fn an_argument_that_is_not_utf8_is_an_unknown_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_keylet"))
        .arg(OsStr::from_bytes(b"do\xffctor"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown command"), "{stderr}");
}

#[test]
fn an_environment_value_that_is_not_utf8_is_read_not_a_panic() {
    // an unrelated variable, and the configuration file's own
    for (name, value) in [
        ("KEYLET_TEST_NOT_UTF8", &b"\xff"[..]),
        ("KEYLIME_AGENT_CONFIG", b"/nonexistent/keylet-\xff.conf"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_keylet"))
            .arg("identity")
            .env("KEYLIME_AGENT_CONFIG", "/nonexistent/keylet-env.conf")
            .env(name, OsStr::from_bytes(value))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {:?}", out.status);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("KEYLIME_AGENT_CONFIG"), "{name}: {stderr}");
    }
}

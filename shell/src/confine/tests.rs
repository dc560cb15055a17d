#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;

use super::paths::SCRIPT_SYSTEM_DIRS;
use super::*;

/// The configuration of the `[agent]` lines `conf`.
fn config(conf: &str) -> AgentConfig {
    crate::config::tests::load(conf, &[]).unwrap().config
}

fn has(rules: &[Rule], path: &str, access: Access) -> bool {
    rules
        .iter()
        .any(|r| r.path == Path::new(path) && r.access == access)
}

#[test]
fn confine_is_on_by_default_and_can_be_turned_off() {
    assert_eq!(config("").confine, Confine::UnlessScripts);
    assert_eq!(
        config("confine = \"auto\"\n").confine,
        Confine::UnlessScripts
    );
    assert_eq!(config("confine = true\n").confine, Confine::On);
    assert_eq!(config("confine = false\n").confine, Confine::Off);
}

/// Operator scripts may write anywhere (keylime-tests' payload script writes
/// /var/tmp): unless `confine = true`, keylet stays unconfined for them.
// the option is refused in a build without the payload feature
#[cfg(feature = "payload")]
#[test]
fn operator_scripts_leave_keylet_unconfined_unless_confine_is_set() {
    for scripts in [
        "enable_revocation_actions = true\n",
        "enable_payload_script = true\npayload_script = \"autorun.sh\"\n",
    ] {
        let c = config(scripts);
        assert_eq!(unconfined(&c), Some(Outcome::ForScripts), "{scripts}");
        let c = config(&format!("{scripts}confine = true\n"));
        assert_eq!(unconfined(&c), None, "{scripts} with confine = true");
    }
    assert_eq!(unconfined(&config("")), None);
    assert_eq!(unconfined(&config("confine = false\n")), Some(Outcome::Off));
}

#[test]
fn the_rules_name_what_the_configuration_names() {
    let c = config(
        "keylime_dir = \"/srv/kl\"\nima_ml_path = \"/srv/ima.log\"\n\
         trusted_client_ca = \"/srv/ca1.pem,/etc/kl/ca2.pem\"\n",
    );
    let r = rules(&c, &TpmDevice::Path("/dev/tpmrm0".into()));
    assert!(has(&r, "/srv/kl", Access::Full));
    assert!(has(&r, "/dev/tpmrm0", Access::Full));
    assert!(has(&r, "/srv/ima.log", Access::Read));
    // a CA file renewed by rename is a new inode: its directory is the rule
    assert!(has(&r, "/srv", Access::Read));
    assert!(has(&r, "/etc/kl", Access::Read));
    // no script runs: nothing is executable, no system directory is open
    let odd = |r: &Rule| matches!(r.access, Access::RemoveFile | Access::ReadExec);
    assert!(!r.iter().any(odd), "{r:?}");
    assert!(
        !r.iter()
            .any(|r| r.path == Path::new("/usr") || r.path == Path::new("/tmp"))
    );
}

// the option is refused in a build without the payload feature
#[cfg(feature = "payload")]
#[test]
fn operator_scripts_get_the_system_directories_read_and_executed() {
    let c = config(
        "keylime_dir = \"/srv/kl\"\nenable_revocation_actions = true\n\
         revocation_actions_dir = \"/srv/actions\"\n",
    );
    let tcp = TpmDevice::Tcp {
        host: "127.0.0.1".into(),
        port: 2321,
    };
    let r = rules(&c, &tcp);
    assert!(has(&r, "/srv/actions", Access::ReadExec));
    for d in SCRIPT_SYSTEM_DIRS {
        assert!(has(&r, d, Access::ReadExec), "{d}");
    }
    assert!(has(&r, "/tmp", Access::Full));
}

#[test]
fn turned_off_it_restricts_nothing() {
    let c = config("confine = false\n");
    let device = TpmDevice::Path("/dev/tpmrm0".into());
    assert_eq!(apply(&c, &device).unwrap(), Outcome::Off);
    // this process still opens what it likes
    std::fs::metadata("/").unwrap();
}

/// Run in a child process of its own (the restriction cannot be undone):
/// the kernel refuses a file outside the rules with EACCES.
#[test]
fn confined_child() {
    let Ok(dir) = std::env::var("KEYLET_CONFINE_CHILD") else {
        return; // only meaningful when run by the_kernel_refuses_paths_outside_the_rules
    };
    let dir = Path::new(&dir);
    let allowed = dir.join("allowed");
    let outside = dir.join("outside/secret");
    let outcome = restrict(&[Rule {
        path: allowed.clone(),
        access: Access::Read,
        why: "test",
    }])
    .unwrap();
    assert!(
        matches!(outcome, Outcome::Active { others: 0, .. }),
        "{outcome:?}"
    );
    std::fs::read(allowed.join("file")).unwrap();
    let e = std::fs::read(&outside).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    println!("KEYLET-CONFINED-CHILD-OK");
}

#[test]
fn the_kernel_refuses_paths_outside_the_rules() {
    assert!(
        kernel_supports(),
        "this kernel has no Landlock: the confinement cannot be tested here"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("allowed")).unwrap();
    std::fs::create_dir_all(dir.path().join("outside")).unwrap();
    std::fs::write(dir.path().join("allowed/file"), b"ok").unwrap();
    std::fs::write(dir.path().join("outside/secret"), b"no").unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "confine::tests::confined_child",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("KEYLET_CONFINE_CHILD", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("KEYLET-CONFINED-CHILD-OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // this process itself is not confined
    std::fs::read(dir.path().join("outside/secret")).unwrap();
}

// the option is refused in a build without the identity feature
#[cfg(feature = "identity")]
#[test]
fn the_identity_sockets_directory_allows_removing_the_socket_at_stop() {
    let c = config("keylime_dir = \"/srv/kl\"\nidentity_socket = \"/run/keylet/identity.sock\"\n");
    let r = rules(&c, &TpmDevice::Path("/dev/tpmrm0".into()));
    assert!(has(&r, "/run/keylet", Access::RemoveFile), "{r:?}");
}

/// The seccomp filter, on the architectures keylet has one for.
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
mod seccomp {
    use super::*;

    /// keylet's own filter, installed on a thread of its own (a filter without
    /// TSYNC binds that thread alone): keylet's work goes through, and the kernel
    /// refuses what keylet never does after start-up, starting a program or
    /// opening a new listener.
    #[test]
    fn the_kernel_refuses_what_keylets_own_filter_leaves_out() {
        let (program, _) = syscalls::program(false).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = listener.local_addr().unwrap();
        let (state, connect, listen, exec) = std::thread::spawn(move || {
            seccompiler::apply_filter(&program).unwrap();
            let state = std::fs::write(&file, b"quote")
                .and_then(|()| std::fs::rename(&file, file.with_extension("new")))
                .and_then(|()| std::fs::read(file.with_extension("new")));
            let connect = std::net::TcpStream::connect(peer).map(drop);
            let listen = std::net::TcpListener::bind("127.0.0.1:0").map(drop);
            let exec = Command::new("/bin/sh").args(["-c", "true"]).status();
            (state, connect, listen, exec)
        })
        .join()
        .unwrap();
        assert_eq!(state.unwrap(), b"quote");
        connect.unwrap();
        assert_eq!(listen.unwrap_err().raw_os_error(), Some(nix::libc::EPERM));
        assert_eq!(exec.unwrap_err().raw_os_error(), Some(nix::libc::EPERM));
    }

    /// With operator scripts confined too, scripts run, and the kernel refuses
    /// the calls that change the system under them (here unshare(2), which any
    /// user may call otherwise).
    #[test]
    fn the_scripts_filter_runs_scripts_and_refuses_what_changes_the_system() {
        let (program, _) = syscalls::program(true).unwrap();
        let (script, unshare) = std::thread::spawn(move || {
            seccompiler::apply_filter(&program).unwrap();
            let script = Command::new("/bin/sh").args(["-c", "exit 3"]).status();
            let unshare = nix::sched::unshare(nix::sched::CloneFlags::empty());
            (script, unshare)
        })
        .join()
        .unwrap();
        assert_eq!(script.unwrap().code(), Some(3));
        assert_eq!(unshare, Err(nix::errno::Errno::EPERM));
        // unfiltered, the same call succeeds
        nix::sched::unshare(nix::sched::CloneFlags::empty()).unwrap();
    }

    /// `keylet doctor`'s probe learns that the kernel takes the filter without
    /// filtering its caller.
    #[test]
    fn the_probe_leaves_its_caller_unfiltered() {
        assert_eq!(
            filter_syscalls(false, true),
            Ok(syscalls::program(false).unwrap().1)
        );
        assert!(
            Command::new("/bin/sh")
                .args(["-c", "true"])
                .status()
                .unwrap()
                .success()
        );
    }
}

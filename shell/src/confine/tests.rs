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
    let off = config("confine = false\n");
    assert_eq!(off.confine, Confine::Off);
    // turned off, it restricts nothing: this process still opens what it likes
    let device = TpmDevice::Path("/dev/tpmrm0".into());
    assert_eq!(apply(&off, &device).unwrap(), Outcome::Off);
    std::fs::metadata("/").unwrap();
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
    // confined with keylet, they get the system directories read and executed
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
    let named = |p: &str| r.iter().any(|r| r.path == Path::new(p));
    assert!(!named("/usr") && !named("/tmp"));
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
    let rule = Rule {
        path: allowed.clone(),
        access: Access::Read,
        why: "test",
    };
    let outcome = restrict(&[rule]).unwrap();
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
    let args = "--exact confine::tests::confined_child --test-threads=1 --nocapture";
    let out = Command::new(std::env::current_exe().unwrap())
        .args(args.split(' '))
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

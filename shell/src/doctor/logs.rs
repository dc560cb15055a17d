//! Checks: the IMA measurement list and the measured-boot log can be read.

use std::io::{ErrorKind, Read as _};
use std::path::Path;

use super::report::Check;
use crate::config::AgentConfig;

fn readable(name: &'static str, option: &str, path: &Path, missing_means: &str) -> Check {
    let opened = std::fs::File::open(path).and_then(|mut f| {
        let mut first = [0u8; 1];
        f.read(&mut first)
    });
    match opened {
        Ok(_) => Check::ok(name, format!("{option} {} is readable", path.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => Check::warn(
            name,
            format!(
                "{option} {} does not exist: {missing_means}",
                path.display()
            ),
            format!(
                "mount securityfs (mount -t securityfs none /sys/kernel/security) and enable it \
                 in the kernel, or set {option}"
            ),
        ),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Check::fail(
            name,
            format!("{option} {} cannot be read: {e}", path.display()),
            "keylet opens the logs before it drops privileges: start it as root with run_as, \
             or grant its user read access (an ACL, or CAP_DAC_READ_SEARCH)",
        ),
        Err(e) => Check::fail(
            name,
            format!("{option} {} cannot be read: {e}", path.display()),
            format!("correct {option}"),
        ),
    }
}

/// Both log checks.
#[must_use]
pub(crate) fn check(c: &AgentConfig) -> Vec<Check> {
    vec![
        readable(
            "logs.ima",
            "ima_ml_path",
            &c.ima_ml_path,
            "quotes carry no IMA log, and a verifier with a runtime policy will fail them",
        ),
        readable(
            "logs.measured_boot",
            "measuredboot_ml_path",
            &c.measuredboot_ml_path,
            "quotes carry no boot log, and a verifier with a measured-boot policy will fail them",
        ),
    ]
}

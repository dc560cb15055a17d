//! Checks: the IMA measurement list and the measured-boot log can be read.

use std::io::{ErrorKind, Read as _};

use super::report::{Report, fail, warn};
use crate::config::AgentConfig;

/// Both log checks.
pub(crate) fn check(report: &mut Report, c: &AgentConfig) {
    let logs = [
        (
            "logs.ima",
            "ima_ml_path",
            &c.ima_ml_path,
            "quotes carry no IMA log, and a verifier with a runtime policy will fail them",
        ),
        (
            "logs.measured_boot",
            "measuredboot_ml_path",
            &c.measuredboot_ml_path,
            "quotes carry no boot log, and a verifier with a measured-boot policy will fail them",
        ),
    ];
    for (name, option, path, missing_means) in logs {
        let opened = std::fs::File::open(path).and_then(|mut f| f.read(&mut [0u8; 1]));
        let path = path.display();
        let outcome = match opened {
            Ok(_) => Ok(format!("{option} {path} is readable")),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(warn(
                format!("{option} {path} does not exist: {missing_means}"),
                format!(
                    "mount securityfs (mount -t securityfs none /sys/kernel/security) and \
                     enable it in the kernel, or set {option}"
                ),
            )),
            Err(e) => Err(fail(
                format!("{option} {path} cannot be read: {e}"),
                if e.kind() == ErrorKind::PermissionDenied {
                    "keylet opens the logs before it drops privileges: start it as root with \
                     run_as, or grant its user read access (an ACL, or CAP_DAC_READ_SEARCH)"
                        .into()
                } else {
                    format!("correct {option}")
                },
            )),
        };
        report.add(name, outcome);
    }
}

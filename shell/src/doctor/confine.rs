//! Checks: whether `keylet run` confines itself with Landlock and filters its
//! system calls, and why not.

use super::report::{Outcome, warn};
use crate::config::AgentConfig;
use crate::confine::{self, Outcome as Confined};

/// `confine`: Landlock.
pub(crate) fn check(c: &AgentConfig) -> Outcome {
    match confine::unconfined(c) {
        Some(Confined::ForScripts) => Err(warn(
            "operator scripts are enabled and confine = auto: keylet will run without \
             Landlock confinement so that they can write where they need",
            "set confine = true if the payload script and the revocation actions write only \
             under /tmp (keylet and its scripts are then confined)",
        )),
        Some(_) => Err(warn(
            "confine = false: keylet runs without Landlock confinement after start-up",
            "remove confine = false (or set it true) unless an operator script needs files \
             outside the system directories and /tmp",
        )),
        None if !confine::kernel_supports() => Err(warn(
            "this kernel has no Landlock (not built in, or not in the lsm= boot list): keylet \
             would run unconfined",
            "boot a kernel with CONFIG_SECURITY_LANDLOCK=y and landlock in its lsm= list \
             (Linux 5.13 or later)",
        )),
        None => Ok(format!(
            "keylet confines itself with Landlock after start-up: file access limited to \
             keylime_dir, the TPM device, the logs and the trust stores{}",
            if confine::runs_scripts(c) {
                "; operator scripts may also read and execute the system directories and write /tmp"
            } else {
                ""
            }
        )),
    }
}

/// `confine.seccomp`: learnt by installing the filter on a thread that ends at once.
pub(crate) fn seccomp(c: &AgentConfig) -> Outcome {
    if confine::unconfined(c).is_some() {
        return Err(warn(
            "keylet will run without a seccomp filter (as without Landlock: see the confine check)",
            "confine as the confine check says: the filter comes with it",
        ));
    }
    let scripts = confine::runs_scripts(c);
    let calls = confine::filter_syscalls(scripts, true).map_err(|why| {
        warn(
            format!("{why}: keylet would run without a seccomp filter"),
            "boot a kernel with CONFIG_SECCOMP_FILTER=y (under an emulator such as qemu-user no \
             filter can be installed); without one, run keylet under a service manager that \
             filters system calls (systemd's SystemCallFilter)",
        )
    })?;
    let text = confine::filter_text(scripts, calls);
    let found = format!("keylet installs a seccomp filter after start-up: {text}");
    Ok(found)
}

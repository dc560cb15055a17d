//! Check: whether `keylet run` confines itself with Landlock, and why not.

use super::report::{Outcome, warn};
use crate::config::{AgentConfig, Confine};
use crate::confine::{self, SyscallFilter};

pub(crate) fn check(c: &AgentConfig) -> Outcome {
    let scripts = confine::runs_scripts(c);
    if c.confine == Confine::UnlessScripts && scripts {
        return Err(warn(
            "operator scripts are enabled and confine = auto: keylet will run without \
             Landlock confinement so that they can write where they need",
            "set confine = true if the payload script and the revocation actions write only \
             under /tmp (keylet and its scripts are then confined)",
        ));
    }
    if c.confine == Confine::Off {
        return Err(warn(
            "confine = false: keylet runs without Landlock confinement after start-up",
            "remove confine = false (or set it true) unless an operator script needs files \
             outside the system directories and /tmp",
        ));
    }
    if !confine::kernel_supports() {
        return Err(warn(
            "this kernel has no Landlock (not built in, or not in the lsm= boot list): keylet \
             would run unconfined",
            "boot a kernel with CONFIG_SECURITY_LANDLOCK=y and landlock in its lsm= list \
             (Linux 5.13 or later)",
        ));
    }
    let scripts = if scripts {
        "; operator scripts may also read and execute the system directories and write /tmp"
    } else {
        ""
    };
    Ok(format!(
        "keylet confines itself with Landlock after start-up: file access limited to \
         keylime_dir, the TPM device, the logs and the trust stores{scripts}"
    ))
}

/// Check: whether `keylet run` filters its system calls, learnt by installing
/// the filter on a thread that ends at once.
pub(crate) fn seccomp(c: &AgentConfig) -> Outcome {
    let scripts = confine::runs_scripts(c);
    if c.confine == Confine::Off || (c.confine == Confine::UnlessScripts && scripts) {
        return Err(warn(
            "keylet will run without a seccomp filter (as without Landlock: see the confine check)",
            "confine as the confine check says: the filter comes with it",
        ));
    }
    match confine::filter_syscalls(scripts, true) {
        SyscallFilter::Active {
            scripts: false,
            calls,
        } => Ok(format!(
            "keylet filters its system calls after start-up: {calls} allowed, any other fails \
             with EPERM"
        )),
        SyscallFilter::Active {
            scripts: true,
            calls,
        } => Ok(format!(
            "keylet and its operator scripts are filtered after start-up: {calls} system calls \
             that change the system fail with EPERM"
        )),
        #[cfg(not(any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "riscv64"
        )))]
        SyscallFilter::NoArch => Err(warn(
            format!(
                "keylet has no seccomp filter for {}: it is confined by Landlock only",
                std::env::consts::ARCH
            ),
            "run keylet under a service manager that filters system calls (systemd's \
             SystemCallFilter) where one is available",
        )),
        SyscallFilter::Refused(why) => Err(warn(
            format!(
                "the kernel refuses keylet's seccomp filter ({why}): keylet would run without it"
            ),
            "boot a kernel with CONFIG_SECCOMP_FILTER=y; under an emulator (qemu-user) no filter \
             can be installed",
        )),
    }
}

//! Check: whether `keylet run` confines itself with Landlock, and why not.

use super::report::Check;
use crate::config::{AgentConfig, Confine};
use crate::confine;

/// The check's name.
const NAME: &str = "confine";

pub(crate) fn check(c: &AgentConfig) -> Check {
    if c.confine == Confine::UnlessScripts && confine::runs_scripts(c) {
        return Check::warn(
            NAME,
            "operator scripts are enabled and confine = auto: keylet will run without \
             Landlock confinement so that they can write where they need",
            "set confine = true if the payload script and the revocation actions write only \
             under /tmp (keylet and its scripts are then confined)",
        );
    }
    if c.confine == Confine::Off {
        return Check::warn(
            NAME,
            "confine = false: keylet runs without Landlock confinement after start-up",
            "remove confine = false (or set it true) unless an operator script needs files \
             outside the system directories and /tmp",
        );
    }
    if !confine::kernel_supports() {
        return Check::warn(
            NAME,
            "this kernel has no Landlock (not built in, or not in the lsm= boot list): keylet \
             would run unconfined",
            "boot a kernel with CONFIG_SECURITY_LANDLOCK=y and landlock in its lsm= list \
             (Linux 5.13 or later)",
        );
    }
    let scripts = if confine::runs_scripts(c) {
        "; operator scripts may also read and execute the system directories and write /tmp"
    } else {
        ""
    };
    Check::ok(
        NAME,
        format!(
            "keylet confines itself with Landlock after start-up: file access limited to \
             keylime_dir, the TPM device, the logs and the trust stores{scripts}"
        ),
    )
}

//! What the operator of this host can do about a TPM error: device paths,
//! swtpm flags and tpm2-tools commands. keylet-core's errors say what the
//! TPM reported; the shell, which knows the host, adds the remedy.

use std::fmt;

use keylet_core::agent::AgentError;
use keylet_core::tpm::pcr_read::PcrReadError;
use keylet_core::tpm::rc::RcClass;

/// The host-side remedy for `e`, if there is an obvious one.
fn host_hint<E>(e: &AgentError<E>) -> Option<&'static str> {
    if let Some(rc) = e.rc() {
        return match rc.class()? {
            RcClass::OutOfSlots => Some(
                "use the kernel resource manager (tpm_device = \"/dev/tpmrm0\") so that objects \
                 other processes leave loaded do not fill the TPM",
            ),
            RcClass::NotStarted => Some("for swtpm, start it with --flags startup-clear"),
            RcClass::Lockout => Some(
                "keylet doctor shows how long the lockout lasts, whether the AK lacks noDA, and the fix",
            ),
            RcClass::BadAuth => Some(
                "a hierarchy password is wrong or unset: tpm_ownerpassword is the endorsement \
                 hierarchy's password (for the EK) and the owner hierarchy's (for clock repair); \
                 \"hex:...\" for binary; each wrong try counts towards the dictionary-attack lockout",
            ),
            _ => None,
        };
    }
    match e {
        AgentError::PcrRead(PcrReadError::NoProgress { .. }) => {
            Some("list the allocated PCR banks with tpm2_getcap pcrs")
        }
        AgentError::ClockStillUnsafe { .. } => {
            Some("with tpm2-tools, tpm2_shutdown -c shuts the TPM down orderly")
        }
        _ => None,
    }
}

/// Writes ` (remedy)` after a TPM sequence's error, if there is one.
#[derive(Debug)]
pub(crate) struct HintSuffix<'a, E>(pub &'a AgentError<E>);

impl<E> fmt::Display for HintSuffix<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        host_hint(self.0).map_or(Ok(()), |hint| write!(f, " ({hint})"))
    }
}

#[cfg(test)]
mod tests {
    use keylet_core::tpm::rc::ResponseCode;
    use keylet_core::tpm::response::ResponseError;

    use super::*;

    fn tpm(rc: u32) -> AgentError<String> {
        AgentError::Response(ResponseError::Tpm {
            cc: 0x158,
            rc: ResponseCode(rc),
        })
    }

    #[test]
    fn remedies_name_what_to_change_on_the_host() {
        // TPM_RC_BAD_AUTH and TPM_RC_AUTH_FAIL on session 1 (PolicySecret)
        let password: &[&str] = &["password", "tpm_ownerpassword"];
        for (rc, needles) in [
            (0x902, &["TPM_RC_OBJECT_MEMORY", "/dev/tpmrm0"][..]),
            (0x100, &["startup-clear"]),
            (0x9A2, password),
            (0x98E, password),
        ] {
            let e = tpm(rc);
            let text = format!("{e}{}", HintSuffix(&e));
            for needle in needles {
                assert!(text.contains(needle), "{rc:#x}: {text}");
            }
        }
        assert_eq!(host_hint(&tpm(0x18B)), None);
    }
}

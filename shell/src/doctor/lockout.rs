//! Checks: the TPM's dictionary-attack lockout state, and whether the saved
//! AK is exempt from it (`noDA`).
//!
//! Each TPM start after an unclean shutdown in which a DA-protected object
//! was used counts as an authorization failure; after `max_tries` the TPM
//! refuses DA-protected objects. keylet's AKs carry `noDA` (its EK is used
//! through a policy without a password, also exempt), so only an AK made by
//! an older keylet can be locked out.

use keylet_core::public;
use keylet_core::tpm::lockout::Lockout;

use super::report::{Outcome, fail, warn};
use crate::config::AgentConfig;
use crate::state::AgentState;

/// The saved AK when it is DA-protected; `None` without a readable state or when it has `noDA`.
fn da_protected_ak(state: Option<&AgentState>) -> Option<&AgentState> {
    state.filter(|s| public::read_tpm2b_public(&s.ak_public).is_ok_and(|a| a.da_protected()))
}

/// How an operator gives keylet a new AK (with `noDA`).
fn new_ak_fix(c: &AgentConfig, state: &AgentState) -> String {
    let (id, path) = (&state.agent_id, c.agent_data_path.display());
    format!(
        "give keylet a new AK with noDA: delete the agent at the registrar (keylime_tenant -c \
         regdelete -u {id}; the registrar refuses a new AK for a known id), move {path} away, \
         restart keylet, then add the agent at the verifier again"
    )
}

/// `tpm.ak_da`: the saved AK has `noDA`, or how to get one that has; `None`
/// without a readable state.
pub(crate) fn ak(c: &AgentConfig, state: Option<&AgentState>) -> Option<Outcome> {
    let s = state?;
    if !public::read_tpm2b_public(&s.ak_public).ok()?.da_protected() {
        return Some(Ok("the saved AK has noDA: unclean TPM shutdowns and a \
                        dictionary-attack lockout do not affect it"
            .into()));
    }
    let path = c.agent_data_path.display();
    Some(Err(warn(
        format!(
            "the saved AK in {path} is DA-protected (made by a keylet before noDA AKs): every TPM \
             start after an unclean shutdown (power loss) counts as an authorization failure, \
             and once the TPM is locked out it refuses this AK: no quote, no registration"
        ),
        new_ak_fix(c, s),
    )))
}

/// `tpm.lockout`: the counter, its maximum and the recovery time. A lockout
/// FAILs only when the saved AK in `state` is DA-protected.
pub(crate) fn lockout(
    read: Result<Lockout, String>,
    c: &AgentConfig,
    state: Option<&AgentState>,
) -> Outcome {
    let l = read.map_err(|e| {
        warn(
            format!("cannot read the dictionary-attack state: {e}"),
            "check that the TPM answers TPM2_GetCapability(TPM_PT_LOCKOUT_COUNTER); tpm2_getcap \
             properties-variable shows it",
        )
    })?;
    let counts = format!(
        "{} of {} authorization failures counted, one forgotten every {} s, lockout \
         authorization recovery {} s",
        l.counter, l.max_tries, l.interval, l.recovery
    );
    if !l.in_lockout {
        return Ok(format!("not locked out: {counts}"));
    }
    let waiting = match l.seconds_until_usable() {
        Some(s) => format!("usable again in about {s} s without the lockout authorization"),
        None => "the TPM does not leave this lockout by itself".into(),
    };
    let clear = "or whoever holds the TPM's lockout authorization clears it \
                 (tpm2_dictionarylockout -c -p <lockout password>)";
    Err(match da_protected_ak(state) {
        Some(s) => fail(
            format!(
                "in dictionary-attack lockout ({counts}); {waiting}: the saved AK is \
                 DA-protected, so keylet can neither quote nor register"
            ),
            format!(
                "wait, {clear}; then, so that it does not happen again, {}",
                new_ak_fix(c, s)
            ),
        ),
        None => warn(
            format!(
                "in dictionary-attack lockout ({counts}); {waiting}: keylet's AK (noDA) and EK \
                 are exempt and keep working, other DA-protected keys on this TPM are refused"
            ),
            format!(
                "nothing for keylet; for other users of the TPM wait, {clear}. Unclean shutdowns \
                 (power loss) after a DA-protected key was used cause this: shut down orderly"
            ),
        ),
    })
}

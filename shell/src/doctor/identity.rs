//! Check: the agent id: where it comes from, not the placeholder, and the
//! same as the one persisted (and registered) earlier.

use super::report::Check;
use super::tpm::TpmFacts;
use crate::agent::{IdentityError, resolve_identity};
use crate::config::{AgentConfig, UuidSetting};
use crate::state::AgentState;

const NAME: &str = "identity.uuid";

/// The identity check from the setting, the TPM's EK and the saved state.
#[must_use]
pub(crate) fn check(c: &AgentConfig, facts: &TpmFacts, state: Option<&AgentState>) -> Vec<Check> {
    let source = match &c.uuid {
        UuidSetting::HashEk => "hash_ek (SHA-256 of the EK public key)",
        UuidSetting::Generate => "generate (random, made once and kept in the agent state)",
        UuidSetting::Explicit(_) => "explicit (option uuid)",
        UuidSetting::Dmidecode => "dmidecode (the SMBIOS system UUID)",
        UuidSetting::Hostname => "hostname (the host name)",
    };
    let from_state = facts.ek_public.is_none() && state.is_some();
    let ek_public = facts
        .ek_public
        .as_deref()
        .or_else(|| state.map(|s| s.ek_public.as_slice()));
    let ek = match (&c.uuid, ek_public) {
        (UuidSetting::HashEk, None) => {
            return vec![Check::warn(
                NAME,
                format!("uuid = {source}: not computed, the EK could not be read"),
                "fix the TPM checks above",
            )];
        }
        (_, Some(ek)) => ek,
        (_, None) => &[],
    };
    let id = match resolve_identity(&c.uuid, ek, state) {
        Ok(id) => id,
        Err(IdentityError::Configured(e)) => {
            return vec![Check::fail(
                NAME,
                format!("uuid = {source}: {e}"),
                "set uuid = \"hash_ek\" (an id derived from this TPM, unique per host) or a \
                 UUID of this host's own",
            )];
        }
        Err(IdentityError::Host(e)) => {
            return vec![Check::fail(
                NAME,
                format!("uuid = {source}: {e}"),
                "set uuid = \"hash_ek\" or a UUID of this host's own",
            )];
        }
        Err(e) => return vec![Check::fail(NAME, e.to_string(), "fix the TPM checks above")],
    };
    let Some(saved) = state else {
        let note = if matches!(c.uuid, UuidSetting::Generate) {
            "a random id is made at the first start and kept".to_string()
        } else {
            format!("not registered yet; keylet will register as {}", id.id)
        };
        return vec![Check::ok(NAME, format!("uuid = {source}: {note}"))];
    };
    let mut checks = Vec::new();
    if let Some(ek_public) = &facts.ek_public
        && *ek_public != saved.ek_public
    {
        checks.push(Check::fail(
            "identity.state",
            format!(
                "the agent state {} was made with another TPM's EK (a copied disk image?)",
                c.agent_data_path.display()
            ),
            format!(
                "keylet will set it aside and register a new AK; delete the old record first if \
                 this host owns it (keylime_tenant -c regdelete -u {})",
                saved.agent_id
            ),
        ));
    }
    let note = if from_state {
        " (EK taken from the agent state: the TPM was not read)"
    } else {
        ""
    };
    if saved.agent_id == id.id.as_str() {
        checks.push(Check::ok(
            NAME,
            format!("uuid = {source}: {} (matches the agent state){note}", id.id),
        ));
    } else {
        checks.push(Check::warn(
            NAME,
            format!(
                "uuid = {source} gives {}, but the agent state holds {} (registered and known \
                 to the verifier under that id)",
                id.id, saved.agent_id
            ),
            format!(
                "keylet will register as {} at the next start: add that id at the verifier \
                 (keylime_tenant -c add -u {}) and delete the old one, or set uuid back",
                id.id, id.id
            ),
        ));
    }
    checks
}

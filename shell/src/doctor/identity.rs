//! Check: the agent id: where it comes from, not the placeholder, and the
//! same as the one persisted (and registered) earlier.

use super::report::{Outcome, Report, fail, warn};
use crate::agent::{IdentityError, resolve_identity};
use crate::config::{AgentConfig, UuidSetting};
use crate::state::AgentState;

/// `identity.uuid`, from the setting, the TPM's EK (when it was read) and the
/// saved state; a state made with another EK is reported first, as `identity.state`.
pub(crate) fn check(
    report: &mut Report,
    c: &AgentConfig,
    tpm_ek: Option<&[u8]>,
    state: Option<&AgentState>,
) -> Outcome {
    let source = match &c.uuid {
        UuidSetting::HashEk => "hash_ek (SHA-256 of the EK public key)",
        UuidSetting::Generate => "generate (random, made once and kept in the agent state)",
        UuidSetting::Explicit(_) => "explicit (option uuid)",
        UuidSetting::Dmidecode => "dmidecode (the SMBIOS system UUID)",
        UuidSetting::Hostname => "hostname (the host name)",
    };
    let ek = tpm_ek.or_else(|| state.map(|s| s.ek_public.as_slice()));
    if ek.is_none() && c.uuid == UuidSetting::HashEk {
        return Err(warn(
            format!("uuid = {source}: not computed, the EK could not be read"),
            "fix the TPM checks above",
        ));
    }
    let id = resolve_identity(&c.uuid, ek.unwrap_or_default(), state).map_err(|e| match e {
        IdentityError::Configured(e) => fail(
            format!("uuid = {source}: {e}"),
            "set uuid = \"hash_ek\" (an id derived from this TPM, unique per host) or a UUID of \
             this host's own",
        ),
        IdentityError::Host(e) => fail(
            format!("uuid = {source}: {e}"),
            "set uuid = \"hash_ek\" or a UUID of this host's own",
        ),
        e => fail(e.to_string(), "fix the TPM checks above"),
    })?;
    let id = &id.id;
    let Some(saved) = state else {
        return Ok(if c.uuid == UuidSetting::Generate {
            format!("uuid = {source}: a random id is made at the first start and kept")
        } else {
            format!("uuid = {source}: not registered yet; keylet will register as {id}")
        });
    };
    let (old, path) = (&saved.agent_id, c.agent_data_path.display());
    if tpm_ek.is_some_and(|ek| ek != saved.ek_public) {
        let problem = fail(
            format!("the agent state {path} was made with another TPM's EK (a copied disk image?)"),
            format!(
                "keylet will set it aside and register a new AK; delete the old record first if \
                 this host owns it (keylime_tenant -c regdelete -u {old})"
            ),
        );
        report.add("identity.state", Err(problem));
    }
    let note = if tpm_ek.is_none() {
        " (EK taken from the agent state: the TPM was not read)"
    } else {
        ""
    };
    if old == id.as_str() {
        let found = format!("uuid = {source}: {id} (matches the agent state){note}");
        return Ok(found);
    }
    Err(warn(
        format!(
            "uuid = {source} gives {id}, but the agent state holds {old} (registered and known to \
             the verifier under that id)"
        ),
        format!(
            "keylet will register as {id} at the next start: add that id at the verifier \
             (keylime_tenant -c add -u {id}) and delete the old one, or set uuid back"
        ),
    ))
}

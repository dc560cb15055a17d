//! The TPM side of startup: the EK, its certificate, and the AK (reloaded
//! from the agent state, or created once and saved).

use keylet_core::agent::{AtTcgHandle, EkHandle, EkOrigin};
use keylet_core::alg::KeyAlg;
use keylet_core::pcr::HashAlg;
use keylet_core::tpm::Handle;
use keylet_core::tpm::transport::BlockOn as _;
use log::Level;
use rsa::pkcs8::LineEnding;
use rsa::pkcs8::der::pem;

use super::StartError;
use super::identity::Identity;
use super::tpm_box::TpmBox;
use crate::state::{self, AgentState};

const MAX_EK_CERT: usize = 4096;

/// The TPM objects the agent runs with.
#[derive(Debug, Clone)]
pub struct TpmObjects {
    /// The EK handle (flushed after activation if transient) and its authorization.
    pub ek: EkHandle,
    /// Whether keylet created the EK (and must flush it).
    pub ek_transient: bool,
    /// TPM2B_PUBLIC
    pub ek_public: Vec<u8>,
    /// PEM, if the TPM has one.
    pub(crate) ek_cert_pem: Option<String>,
}

/// Creates (or reads the persistent) EK and reads its certificate; a
/// transient EK is owned by `tpm`.
pub fn endorsement(
    tpm: &mut TpmBox,
    alg: KeyAlg,
    persistent: Option<u32>,
) -> Result<TpmObjects, StartError> {
    let mut public = vec![0u8; 1024];
    let ek = tpm
        .tpm()
        .create_ek(alg, persistent, &mut public)
        .block_on()
        .map_err(StartError::tpm("create the EK"))?;
    if ek.transient {
        tpm.own(ek.handle);
    }
    public.truncate(ek.public_len);
    let (said, unused) = ek_origin(alg, ek.handle, ek.origin);
    let level = if unused { Level::Warn } else { Level::Info };
    log::log!(level, "{said}");
    let mut cert = vec![0u8; MAX_EK_CERT];
    let index = alg.ek_cert_index();
    let ek_cert_pem = match tpm.tpm().read_ek_cert(index, &mut cert).block_on() {
        Ok(n) => cert
            .get(..n)
            .and_then(|der| pem::encode_string("CERTIFICATE", LineEnding::LF, der).ok()),
        Err(e) => {
            log::warn!(
                "no EK certificate read from NV index {index:#010x} ({e}); registering without one \
                 (the tenant then needs require_ek_cert = False)"
            );
            None
        }
    };
    Ok(TpmObjects {
        ek: ek.key(),
        ek_transient: ek.transient,
        ek_public: public,
        ek_cert_pem,
    })
}

/// Where the EK at `handle` comes from, in words, and whether a key at the
/// TCG handle was passed over (a warning: the operator may want to persist
/// the right EK there to start without key generation).
pub fn ek_origin(alg: KeyAlg, handle: Handle, origin: EkOrigin) -> (String, bool) {
    let tcg = alg.ek_persistent_handle();
    let passed_over = matches!(origin, EkOrigin::Created(AtTcgHandle::Other(_)));
    let said = match origin {
        EkOrigin::Configured => {
            format!("{alg} EK at the persistent handle {handle:#010x} (option ek_handle)")
        }
        EkOrigin::Persisted => format!(
            "{alg} EK persisted at the TCG handle {handle:#010x}, verified against the TCG \
             template: no key generation"
        ),
        EkOrigin::Created(AtTcgHandle::Nothing(rc)) => format!(
            "{alg} EK created from the TCG template (TPM2_CreatePrimary): nothing is persisted \
             at the TCG handle {tcg:#010x} (rc {rc:#x})"
        ),
        EkOrigin::Created(AtTcgHandle::Other(why)) => format!(
            "{alg} EK created from the TCG template (TPM2_CreatePrimary): the key persisted at \
             the TCG handle {tcg:#010x} is not used, {why}"
        ),
    };
    (said, passed_over)
}

/// Loads the AK from `state` if it belongs to this EK and these algorithms,
/// else creates one; with the state and whether it is new (to be saved). A
/// state of other algorithms is [`StartError::StateMismatch`]: a silent new
/// AK would be refused by the registrar.
pub fn attestation_key(
    tpm: &mut TpmBox,
    objects: &TpmObjects,
    state: Option<AgentState>,
    identity: &Identity,
    key_alg: KeyAlg,
    hash_alg: HashAlg,
    state_path: &std::path::Path,
) -> Result<(Handle, AgentState, bool), StartError> {
    let key_name = key_alg.keylime_name(2, 6);
    if let Some(mut state) = state {
        if state.ek_public != objects.ek_public {
            let backup = state_path.with_extension("other-tpm");
            log::warn!(
                "the agent state {} was made with another TPM's EK (a copied disk image?); \
                 keeping it as {} and creating a new AK for this TPM",
                state_path.display(),
                backup.display()
            );
            std::fs::rename(state_path, &backup)
                .map_err(StartError::io("move the other TPM's agent state aside"))?;
        } else if state.key_alg != key_name || state.hash_alg != hash_alg.name() {
            return Err(StartError::StateMismatch {
                path: state_path.to_path_buf(),
                detail: format!(
                    "it holds an {}/{} AK but the configuration asks for {key_name}/{}",
                    state.key_alg,
                    state.hash_alg,
                    hash_alg.name()
                ),
            });
        } else {
            let ak = tpm
                .tpm()
                .load_ak(objects.ek, &state.ak_public, &state.ak_private)
                .block_on()
                .map_err(StartError::tpm("load the saved AK"))?;
            let changed = state.agent_id != identity.id.as_str();
            if changed {
                log::warn!(
                    "agent id changes from {} to {} (option uuid)",
                    state.agent_id,
                    identity.id
                );
                state.agent_id = identity.id.as_str().to_string();
                state.id_source = identity.source.to_string();
            }
            return Ok((ak, state, changed));
        }
    }
    log::info!("creating the AK ({key_name}, {})", hash_alg.name());
    let mut public = vec![0u8; 1024];
    let mut private = vec![0u8; 2048];
    let created = tpm
        .tpm()
        .create_ak(objects.ek, key_alg, hash_alg, &mut public, &mut private)
        .block_on()
        .map_err(StartError::tpm("create the AK"))?;
    public.truncate(created.public_len);
    private.truncate(created.private_len);
    let ak = tpm
        .tpm()
        .load_ak(objects.ek, &public, &private)
        .block_on()
        .map_err(StartError::tpm("load the new AK"))?;
    let state = AgentState {
        format: state::FORMAT,
        agent_id: identity.id.as_str().to_string(),
        id_source: identity.source.to_string(),
        ek_public: objects.ek_public.clone(),
        key_alg: key_name.to_string(),
        hash_alg: hash_alg.name().to_string(),
        ak_public: public,
        ak_private: private,
    };
    Ok((ak, state, true))
}

//! Choosing the agent id.

use std::path::Path;

use keylet_core::keylime::agent_id::{AgentId, AgentIdError};
use keylet_core::public;

use super::host_id::{HostIdError, host_name, smbios_uuid};

use crate::config::UuidSetting;
use crate::state::AgentState;

/// The chosen id and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The id.
    pub(crate) id: AgentId,
    /// `hash_ek`, `generate`, `explicit`, `dmidecode` or `hostname`.
    pub(crate) source: &'static str,
}

/// Why no id could be chosen.
#[derive(Debug)]
#[non_exhaustive]
pub enum IdentityError {
    /// The configured `uuid` is not usable.
    Configured(AgentIdError),
    /// The EK public area could not be read.
    Ek(public::PublicError),
    /// No randomness for `generate`.
    Random(String),
    /// `dmidecode` or `hostname`: the host gives no usable id.
    Host(HostIdError),
}

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Configured(e) => write!(f, "option uuid: {e}"),
            Self::Ek(e) => write!(f, "cannot read the EK public area for hash_ek: {e}"),
            Self::Random(e) => write!(f, "cannot generate a uuid: {e}"),
            Self::Host(e) => write!(f, "option uuid: {e}"),
        }
    }
}

impl std::error::Error for IdentityError {}

/// Resolves the id from the setting, the EK and the persisted state.
///
/// # Errors
///
/// [`IdentityError`]: a bad explicit id (including the placeholder).
pub fn resolve(
    setting: &UuidSetting,
    ek_public: &[u8],
    state: Option<&AgentState>,
) -> Result<Identity, IdentityError> {
    let root = Path::new("/");
    let (id, source) = match setting {
        UuidSetting::Dmidecode => (smbios_uuid(root).map_err(IdentityError::Host)?, "dmidecode"),
        UuidSetting::Hostname => (host_name(root).map_err(IdentityError::Host)?, "hostname"),
        UuidSetting::Explicit(text) => (
            AgentId::from_uuid(text).map_err(IdentityError::Configured)?,
            "explicit",
        ),
        UuidSetting::HashEk => {
            let area = public::read_tpm2b_public(ek_public).map_err(IdentityError::Ek)?;
            let id = AgentId::hash_ek(&area.key).map_err(IdentityError::Configured)?;
            (id, "hash_ek")
        }
        UuidSetting::Generate => {
            let kept = state
                .filter(|s| s.id_source == "generate")
                .and_then(|s| AgentId::from_uuid(&s.agent_id).ok());
            let id = match kept {
                Some(id) => id,
                None => {
                    let mut b = [0u8; 16];
                    getrandom::fill(&mut b).map_err(|e| IdentityError::Random(e.to_string()))?;
                    AgentId::from_random_bytes(b)
                }
            };
            (id, "generate")
        }
    };
    Ok(Identity { id, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_is_refused_with_the_reason() {
        let err = resolve(
            &UuidSetting::Explicit("D432FBB3-D2F1-4A97-9EF7-75BD81C00000".into()),
            &[],
            None,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("placeholder"), "{text}");
        assert!(text.contains("403"), "{text}");
    }

    #[test]
    fn explicit_ids_must_be_uuids_and_are_lowercased() {
        let ok = resolve(
            &UuidSetting::Explicit("0123ABCD-0000-4000-8000-000000000001".into()),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(ok.id.as_str(), "0123abcd-0000-4000-8000-000000000001");
        assert!(resolve(&UuidSetting::Explicit("0123abcd-0000".into()), &[], None).is_err());
    }

    #[test]
    fn generate_is_made_once_then_kept() {
        let first = resolve(&UuidSetting::Generate, &[], None).unwrap();
        let state = AgentState::new(
            first.id.as_str().into(),
            "generate",
            vec![],
            "rsa2048",
            "sha256",
            vec![],
            vec![],
        );
        let again = resolve(&UuidSetting::Generate, &[], Some(&state)).unwrap();
        assert_eq!(first, again);
        let other = resolve(&UuidSetting::Generate, &[], None).unwrap();
        assert_ne!(first.id, other.id);
    }
}

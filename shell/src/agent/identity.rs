//! Choosing the agent id; for `uuid = dmidecode` and `uuid = hostname` the
//! ids Keylime takes from the host: the SMBIOS system UUID (what `dmidecode
//! -s system-uuid` prints, read from sysfs: no dmidecode binary needed) and
//! the host name. Values that cannot tell hosts apart are refused.

use std::io::ErrorKind;
use std::path::Path;

use keylet_core::keylime::agent_id::{AgentId, AgentIdError};
use keylet_core::public;

use crate::config::UuidSetting;
use crate::state::AgentState;

/// The chosen id and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub(crate) id: AgentId,
    /// `hash_ek`, `generate`, `explicit`, `dmidecode` or `hostname`.
    pub(crate) source: &'static str,
}

/// Why no id could be chosen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("option uuid: {0}")]
    Configured(AgentIdError),
    /// For `hash_ek`: the EK public area is unreadable.
    #[error("cannot read the EK public area for hash_ek: {0}")]
    Ek(public::PublicError),
    /// For `generate`: no randomness.
    #[error("cannot generate a uuid: {0}")]
    Random(String),
    /// For `dmidecode` or `hostname`: what was wrong and what to set.
    #[error("option uuid: {0}")]
    Host(String),
}

/// The SMBIOS system UUID under the root (readable by root only).
const PRODUCT_UUID: &str = "sys/class/dmi/id/product_uuid";
/// The host name under the root (`uname -n`).
const HOST_NAME: &str = "proc/sys/kernel/hostname";

/// SMBIOS values that name no system: all zeros ("not set"), all ones ("not
/// present", SMBIOS 3.x 7.2.1) and the UUID of firmware never filled in by the
/// vendor ("To be filled by O.E.M."), shared by many boards.
const UNSET_SMBIOS_UUIDS: [&str; 3] = [
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "03000200-0400-0500-0006-000700080009",
];

/// Host names every unconfigured host has.
const UNSET_HOST_NAMES: [&str; 4] = [
    "localhost",
    "localhost.localdomain",
    "localhost6",
    "localhost6.localdomain6",
];

const FIX: &str = "set uuid = \"hash_ek\" (derived from this TPM) or this host's UUID";

fn read_trimmed(root: &Path, file: &str) -> Result<String, String> {
    let path = root.join(file);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| {
            let hint = match e.kind() {
                ErrorKind::NotFound => {
                    "this system has no SMBIOS/DMI tables (some VMs, containers, non-x86 boards)"
                }
                ErrorKind::PermissionDenied => {
                    "it is readable by root only: start keylet as root (it drops to run_as after \
                     reading it)"
                }
                _ => "check the file",
            };
            format!("cannot read {}: {e}; {hint}, or {FIX}", path.display())
        })
}

/// `uuid = dmidecode`: the SMBIOS system UUID under `root`, lower-cased;
/// refused if unreadable, not a UUID, the Keylime placeholder or a value
/// that names no system.
fn smbios_uuid(root: &Path) -> Result<AgentId, String> {
    let value = read_trimmed(root, PRODUCT_UUID)?;
    let id = AgentId::from_uuid(&value)
        .map_err(|why| format!("the SMBIOS system UUID {value:?} is not usable: {why}; {FIX}"))?;
    if UNSET_SMBIOS_UUIDS.contains(&id.as_str()) {
        return Err(format!(
            "the SMBIOS system UUID {value} is the firmware's \"not set\" value, shared by other \
             hosts: the registrar would refuse all but the first of them (403); {FIX}"
        ));
    }
    Ok(id)
}

/// `uuid = hostname`: the host name under `root` as the kernel holds it (no
/// DNS lookup); refused if unreadable, not an agent id, or `localhost`.
fn host_name(root: &Path) -> Result<AgentId, String> {
    let value = read_trimmed(root, HOST_NAME)?;
    if UNSET_HOST_NAMES.contains(&value.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "the host name {value:?} is not this host's own (every unconfigured host has it): set \
             the host name (hostnamectl set-hostname), or {FIX}"
        ));
    }
    AgentId::new(&value).map_err(|why| {
        format!(
            "the host name {value:?} is not a Keylime agent id ({why}); set a host name of \
             letters, digits, '.', '-', '_' (at most 80), or {FIX}"
        )
    })
}

/// Resolves the id from the setting, the EK and the persisted state.
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

    fn root_with(file: &str, text: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        root
    }

    #[test]
    fn host_ids_are_read_from_sysfs_and_proc() {
        let root = root_with(PRODUCT_UUID, "4C4C4544-0042-3510-8052-B4C04F4B4D32\n");
        let id = smbios_uuid(root.path()).unwrap();
        assert_eq!(id.as_str(), "4c4c4544-0042-3510-8052-b4c04f4b4d32");
        let root = root_with(HOST_NAME, "node-7.example.org\n");
        let id = host_name(root.path()).unwrap();
        assert_eq!(id.as_str(), "node-7.example.org");
    }

    #[test]
    fn host_ids_naming_no_host_are_refused_with_the_fix() {
        const NOT_SET: &[&str] = &["not set", "hash_ek"];
        // (value, what the message says)
        let smbios: [(&str, &[&str]); 5] = [
            ("00000000-0000-0000-0000-000000000000", NOT_SET),
            ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", NOT_SET),
            ("03000200-0400-0500-0006-000700080009", NOT_SET),
            ("d432fbb3-d2f1-4a97-9ef7-75bd81c00000", &["placeholder"]),
            ("Not Settable", &["\"Not Settable\"", "not of the form"]),
        ];
        let long = "a".repeat(81);
        let hosts: [(&str, &[&str]); 4] = [
            ("localhost", &["hostnamectl"]),
            ("LOCALHOST.localdomain", &["hostnamectl"]),
            ("(none)", &["\"(none)\"", "byte 0"]),
            (&long, &["at most 80"]),
        ];
        for (value, says) in smbios {
            let e = smbios_uuid(root_with(PRODUCT_UUID, value).path()).unwrap_err();
            assert!(says.iter().all(|s| e.contains(s)), "{value}: {e}");
        }
        for (value, says) in hosts {
            let e = host_name(root_with(HOST_NAME, value).path()).unwrap_err();
            assert!(says.iter().all(|s| e.contains(s)), "{value}: {e}");
        }
        // no file: no SMBIOS table
        let e = smbios_uuid(tempfile::tempdir().unwrap().path()).unwrap_err();
        for says in ["product_uuid", "no SMBIOS", "hash_ek"] {
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn explicit_ids_must_be_uuids_not_the_placeholder_and_are_lowercased() {
        let explicit = |id: &str| resolve(&UuidSetting::Explicit(id.into()), &[], None);
        let ok = explicit("0123ABCD-0000-4000-8000-000000000001").unwrap();
        assert_eq!(ok.id.as_str(), "0123abcd-0000-4000-8000-000000000001");
        assert!(explicit("0123abcd-0000").is_err());
        let text = explicit("D432FBB3-D2F1-4A97-9EF7-75BD81C00000")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("placeholder") && text.contains("403"),
            "{text}"
        );
    }

    #[test]
    fn generate_is_made_once_then_kept() {
        let first = resolve(&UuidSetting::Generate, &[], None).unwrap();
        let state = AgentState {
            format: crate::state::FORMAT,
            agent_id: first.id.as_str().into(),
            id_source: "generate".into(),
            ek_public: vec![],
            key_alg: "rsa2048".into(),
            hash_alg: "sha256".into(),
            ak_public: vec![],
            ak_private: vec![],
        };
        let again = resolve(&UuidSetting::Generate, &[], Some(&state)).unwrap();
        assert_eq!(first, again);
        let other = resolve(&UuidSetting::Generate, &[], None).unwrap();
        assert_ne!(first.id, other.id);
    }
}

//! Agent ids taken from the host, as Keylime documents `uuid`:
//! `dmidecode`, the SMBIOS system UUID (what `dmidecode -s system-uuid`
//! prints, read from sysfs: no dmidecode binary needed), and `hostname`, the
//! host name. Values that cannot tell hosts apart are refused.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use keylet_core::keylime::agent_id::{AgentId, AgentIdError};

/// The SMBIOS system UUID under the root (readable by root only).
pub(crate) const PRODUCT_UUID: &str = "sys/class/dmi/id/product_uuid";
/// The host name under the root (`uname -n`).
pub(crate) const HOST_NAME: &str = "proc/sys/kernel/hostname";

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

/// Why the host gives no usable id.
#[derive(Debug)]
#[non_exhaustive]
pub enum HostIdError {
    /// The file could not be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error kind.
        kind: ErrorKind,
        /// The error text.
        detail: String,
    },
    /// The SMBIOS value is not a UUID.
    MalformedUuid {
        /// The value read.
        value: String,
        /// Why.
        why: AgentIdError,
    },
    /// The SMBIOS value is one that names no system.
    UnsetUuid(String),
    /// The host name is not a Keylime agent id.
    MalformedHostName {
        /// The value read.
        value: String,
        /// Why.
        why: AgentIdError,
    },
    /// The host name is one every unconfigured host has.
    UnsetHostName(String),
}

const FIX: &str = "set uuid = \"hash_ek\" (derived from this TPM) or this host's UUID";

impl std::fmt::Display for HostIdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable { path, kind, detail } => {
                let hint = match kind {
                    ErrorKind::NotFound => {
                        "this system has no SMBIOS/DMI tables (some VMs, containers, non-x86 boards)"
                    }
                    ErrorKind::PermissionDenied => {
                        "it is readable by root only: start keylet as root (it drops to run_as \
                         after reading it)"
                    }
                    _ => "check the file",
                };
                write!(
                    f,
                    "cannot read {}: {detail}; {hint}, or {FIX}",
                    path.display()
                )
            }
            Self::MalformedUuid { value, why } => write!(
                f,
                "the SMBIOS system UUID {value:?} is not usable: {why}; {FIX}"
            ),
            Self::UnsetUuid(value) => write!(
                f,
                "the SMBIOS system UUID {value} is the firmware's \"not set\" value, shared by \
                 other hosts: the registrar would refuse all but the first of them (403); {FIX}"
            ),
            Self::MalformedHostName { value, why } => write!(
                f,
                "the host name {value:?} is not a Keylime agent id ({why}); set a host name of \
                 letters, digits, '.', '-', '_' (at most 80), or {FIX}"
            ),
            Self::UnsetHostName(value) => write!(
                f,
                "the host name {value:?} is not this host's own (every unconfigured host has it): \
                 set the host name (hostnamectl set-hostname), or {FIX}"
            ),
        }
    }
}

impl std::error::Error for HostIdError {}

fn read_trimmed(root: &Path, file: &str) -> Result<String, HostIdError> {
    let path = root.join(file);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| HostIdError::Unreadable {
            kind: e.kind(),
            detail: e.to_string(),
            path,
        })
}

/// `uuid = dmidecode`: the SMBIOS system UUID under `root`, lower-cased.
///
/// # Errors
///
/// [`HostIdError`]: unreadable, not a UUID, the Keylime placeholder or a
/// value that names no system.
pub(crate) fn smbios_uuid(root: &Path) -> Result<AgentId, HostIdError> {
    let value = read_trimmed(root, PRODUCT_UUID)?;
    let id = AgentId::from_uuid(&value).map_err(|why| HostIdError::MalformedUuid {
        value: value.clone(),
        why,
    })?;
    if UNSET_SMBIOS_UUIDS.contains(&id.as_str()) {
        return Err(HostIdError::UnsetUuid(value));
    }
    Ok(id)
}

/// `uuid = hostname`: the host name under `root` as the kernel holds it (no
/// DNS lookup).
///
/// # Errors
///
/// [`HostIdError`]: unreadable, not an agent id, or `localhost`.
pub(crate) fn host_name(root: &Path) -> Result<AgentId, HostIdError> {
    let value = read_trimmed(root, HOST_NAME)?;
    if UNSET_HOST_NAMES.contains(&value.to_ascii_lowercase().as_str()) {
        return Err(HostIdError::UnsetHostName(value));
    }
    AgentId::new(&value).map_err(|why| HostIdError::MalformedHostName { value, why })
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
    fn smbios_uuid_is_read_from_sysfs_and_lower_cased() {
        let root = root_with(PRODUCT_UUID, "4C4C4544-0042-3510-8052-B4C04F4B4D32\n");
        let id = smbios_uuid(root.path()).unwrap();
        assert_eq!(id.as_str(), "4c4c4544-0042-3510-8052-b4c04f4b4d32");
    }

    #[test]
    fn smbios_values_naming_no_system_are_refused() {
        for unset in [
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "03000200-0400-0500-0006-000700080009",
        ] {
            let root = root_with(PRODUCT_UUID, unset);
            let e = smbios_uuid(root.path()).unwrap_err().to_string();
            assert!(e.contains("not set") && e.contains("hash_ek"), "{e}");
        }
        let root = root_with(PRODUCT_UUID, "d432fbb3-d2f1-4a97-9ef7-75bd81c00000");
        let e = smbios_uuid(root.path()).unwrap_err().to_string();
        assert!(e.contains("placeholder"), "{e}");
        let root = root_with(PRODUCT_UUID, "Not Settable");
        let e = smbios_uuid(root.path()).unwrap_err().to_string();
        assert!(
            e.contains("\"Not Settable\"") && e.contains("not of the form"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_smbios_table_names_the_file_and_the_fix() {
        let root = tempfile::tempdir().unwrap();
        let e = smbios_uuid(root.path()).unwrap_err().to_string();
        assert!(e.contains("product_uuid") && e.contains("no SMBIOS"), "{e}");
        assert!(e.contains("hash_ek"), "{e}");
    }

    #[test]
    fn host_name_is_the_kernel_host_name() {
        let root = root_with(HOST_NAME, "node-7.example.org\n");
        assert_eq!(
            host_name(root.path()).unwrap().as_str(),
            "node-7.example.org"
        );
    }

    #[test]
    fn unset_and_malformed_host_names_are_refused() {
        for unset in ["localhost", "LOCALHOST.localdomain"] {
            let root = root_with(HOST_NAME, unset);
            let e = host_name(root.path()).unwrap_err().to_string();
            assert!(e.contains("hostnamectl"), "{e}");
        }
        let root = root_with(HOST_NAME, "(none)");
        let e = host_name(root.path()).unwrap_err().to_string();
        assert!(e.contains("\"(none)\"") && e.contains("byte 0"), "{e}");
        let root = root_with(HOST_NAME, &"a".repeat(81));
        let e = host_name(root.path()).unwrap_err().to_string();
        assert!(e.contains("at most 80"), "{e}");
    }
}

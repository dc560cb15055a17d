//! What keylet may open once it runs confined: the paths its configuration
//! names, each with the access keylet needs there. Pure: reads no file.

use std::path::{Path, PathBuf};

use crate::config::{AgentConfig, RevocationCert};
use crate::tpm::TpmDevice;

/// The access a rule grants beneath its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read files and list directories.
    Read,
    /// Read and execute (operator scripts, the libraries they load).
    ReadExec,
    /// Everything: create, write, rename, remove, execute.
    Full,
    /// Removing a file beneath it, nothing else (the identity socket at stop).
    RemoveFile,
}

/// One rule: `access` beneath `path` (a file or a directory; a missing one is
/// skipped when applied), and `why` keylet needs it (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) path: PathBuf,
    pub(crate) access: Access,
    pub(crate) why: &'static str,
}

/// System directories an operator script needs to start and run (its
/// interpreter, libraries, configuration), read and executed only.
pub(crate) const SCRIPT_SYSTEM_DIRS: &[&str] = &[
    "/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/etc", "/opt",
];

/// Files name resolution reads (a registrar or verifier given by name).
const RESOLVER_FILES: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/services",
    "/etc/localtime",
];

/// Whether this configuration runs operator scripts (a payload script or
/// revocation actions), which inherit keylet's confinement.
pub(crate) fn runs_scripts(c: &AgentConfig) -> bool {
    let payload_script = c.payload.enable_payload_script && !c.payload.payload_script.is_empty();
    payload_script || c.revocation.enable_actions
}

/// The rules for `c`, with `tpm` the device keylet opened.
pub(crate) fn rules(c: &AgentConfig, tpm: &TpmDevice) -> Vec<Rule> {
    use Access::{Full, Read, ReadExec, RemoveFile};
    let mut out = Vec::new();
    let mut add = |path: &Path, access, why| {
        let path = path.to_path_buf();
        out.push(Rule { path, access, why });
    };
    let keylime_dir = "keylime_dir: state, keys, secure payload directory";
    add(&c.keylime_dir, Full, keylime_dir);
    // Atomic writes create a temporary beside the file.
    if let Some(dir) = c.agent_data_path.parent() {
        add(dir, Full, "agent_data_path's directory");
    }
    if let TpmDevice::Path(p) = tpm {
        add(p, Full, "the TPM device (reopened after a TPM loss)");
    }
    add(Path::new("/dev/null"), Full, "/dev/null");
    add(&c.ima_ml_path, Read, "ima_ml_path");
    add(&c.measuredboot_ml_path, Read, "measuredboot_ml_path");
    // Certificates and trust stores are renewed by replacing the file (a rename
    // gives it a new inode, and a Landlock rule on a file holds the old one):
    // their directories are readable, so a reload reads the new file.
    let revocation_cert = match &c.revocation.cert {
        RevocationCert::File(p) => Some(p),
        _ => None,
    };
    let certs = [&c.server_cert, &c.server_key, &c.registrar_tls_ca_cert];
    let certs = certs
        .into_iter()
        .chain([&c.push.verifier_tls_ca_cert])
        .chain(&c.trusted_client_ca)
        .chain(revocation_cert);
    for file in certs {
        let why = "a certificate's or trust store's directory (read again when renewed)";
        add(crate::store::dir_of(file), Read, why);
    }
    for f in RESOLVER_FILES {
        add(Path::new(f), Read, "name resolution");
    }
    add(Path::new("/proc/self"), Read, "keylet's own /proc");
    if let Some(dir) = c.identity.socket.as_deref().and_then(Path::parent) {
        let why = "identity_socket's directory (the socket is removed at stop)";
        add(dir, RemoveFile, why);
    }
    if runs_scripts(c) {
        add(
            &c.revocation.actions_dir,
            ReadExec,
            "revocation_actions_dir",
        );
        for d in SCRIPT_SYSTEM_DIRS {
            add(Path::new(d), ReadExec, "operator scripts");
        }
        add(Path::new("/tmp"), Full, "operator scripts");
    }
    out
}

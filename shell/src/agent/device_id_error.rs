//! Why the IAK and IDevID cannot be used (in every build: the registrar's
//! refusal is reported with it).

use std::path::PathBuf;

use keylet_core::tpm::Handle;

/// Why the device identity cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceIdError {
    /// A certificate file is unreadable or holds no X.509 certificate.
    Cert {
        /// `iak_cert` or `idevid_cert`.
        option: &'static str,
        /// What was wrong (names the file).
        detail: String,
    },
    /// The key at the handle cannot serve (type, curve, scheme).
    Key {
        /// `iak_handle` or `idevid_handle`.
        option: &'static str,
        /// The handle.
        handle: Handle,
        /// What was wrong.
        detail: String,
    },
    /// The certificate is for another key than the one in the TPM.
    Mismatch {
        /// `iak_cert` or `idevid_cert`.
        cert_option: &'static str,
        /// The certificate file.
        path: PathBuf,
        /// `iak_handle` or `idevid_handle`.
        handle_option: &'static str,
        /// The handle.
        handle: Handle,
    },
    /// The registrar refused a registration that carried the device identity.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The registrar's message.
        message: String,
    },
}

impl std::fmt::Display for DeviceIdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cert { option, detail } => write!(f, "option {option}: {detail}"),
            Self::Key {
                option,
                handle,
                detail,
            } => write!(f, "option {option}: the key at {handle:#010x} {detail}"),
            Self::Mismatch {
                cert_option,
                path,
                handle_option,
                handle,
            } if handle >> 24 == 0x80 => write!(
                f,
                "the certificate {} ({cert_option}) is not for the key keylet re-created from \
                 its TCG template: their public keys differ. Set iak_idevid_template to the \
                 template the key was made from, or {handle_option} to the persistent key the \
                 certificate is for",
                path.display()
            ),
            Self::Mismatch {
                cert_option,
                path,
                handle_option,
                handle,
            } => write!(
                f,
                "the certificate {} ({cert_option}) is not for the key at {handle:#010x} \
                 ({handle_option}): their public keys differ. Point {cert_option} at the \
                 certificate issued for that key, or {handle_option} at the key it certifies",
                path.display()
            ),
            Self::Refused { status, message } => write!(
                f,
                "the registrar refused the registration with the IAK and IDevID ({status}: \
                 {message}). Check on the registrar: that the CA that issued iak_cert and \
                 idevid_cert is in its trust store (the tpm_cert_store directory of the \
                 [tenant] section of its configuration; the CA must be the certificates' direct \
                 issuer), and its log, which names the field it refused (iak_cert, idevid_cert, \
                 or aik_tpm when the IAK's certification of the AK does not verify)"
            ),
        }
    }
}

impl std::error::Error for DeviceIdError {}

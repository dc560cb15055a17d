//! Why a revocation notification was refused.

use std::fmt;
use std::path::PathBuf;

/// Why a revocation notification was refused or its actions failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RevocationError {
    /// The body is not `{"msg": "...", "signature": "..."}`.
    Malformed(String),
    /// The notification carries no signature.
    Unsigned,
    /// No certificate to check the signature with.
    NoCertificate {
        /// Where keylet looked.
        path: PathBuf,
    },
    /// The certificate file cannot be used.
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// The reason.
        reason: String,
    },
    /// The signature does not verify with the certificate.
    BadSignature {
        /// The certificate used.
        path: PathBuf,
    },
    /// An action could not be found or failed.
    Action(String),
}

impl fmt::Display for RevocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed revocation notification: {why}"),
            Self::Unsigned => f.write_str(
                "the revocation notification is not signed; keylet acts only on notifications \
                 signed with the revocation key (add agents with keylime_tenant --cert)",
            ),
            Self::NoCertificate { path } => write!(
                f,
                "no revocation certificate at {} to check the notification with (deliver a \
                 payload with keylime_tenant --cert, or set revocation_cert)",
                path.display()
            ),
            Self::BadCertificate { path, reason } => write!(
                f,
                "the revocation certificate {} cannot be used: {reason}",
                path.display()
            ),
            Self::BadSignature { path } => write!(
                f,
                "the revocation notification's signature does not verify with {}; refused (a \
                 forged notification, or a certificate from another CA)",
                path.display()
            ),
            Self::Action(why) => write!(f, "revocation action: {why}"),
        }
    }
}

impl std::error::Error for RevocationError {}

impl From<crate::keylime::JsonError> for RevocationError {
    fn from(e: crate::keylime::JsonError) -> Self {
        Self::Malformed(e.to_string())
    }
}

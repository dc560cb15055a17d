//! Registrar client errors.

use crate::net::HttpError;

/// Why talking to the registrar failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistrarError {
    /// No usable HTTP answer: unreachable (worth retrying), a TLS failure,
    /// or an answer that could not be read.
    Http(HttpError),
    /// The registrar refused agent `id` with these keys (403), saying `message`.
    IdentityConflict { id: String, message: String },
    /// Any other non-200 answer to what keylet asked for (`action`).
    Status {
        action: &'static str,
        status: u16,
        message: String,
    },
    /// The answer was not what the protocol says.
    BadResponse { detail: String },
    /// The registrar supports none of keylet's API versions, only these.
    NoCommonVersion { registrar: Vec<(u8, u8)> },
}

impl RegistrarError {
    /// Whether waiting and trying again may help (unreachable, or a 5xx).
    #[must_use]
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Http(HttpError::Unreachable { .. }) => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

impl std::fmt::Display for RegistrarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(HttpError::Unreachable { address, detail }) => write!(
                f,
                "registrar {address} is unreachable ({detail}); check registrar_ip/registrar_port and that the registrar runs"
            ),
            Self::Http(HttpError::Tls { detail }) => {
                write!(f, "TLS to the registrar failed: {detail}")
            }
            Self::IdentityConflict { id, message } => write!(
                f,
                "the registrar refused agent {id} (403: {message}): this id is already registered \
                 with a different EK, AK or EK certificate. If this host's TPM or agent state was \
                 replaced on purpose, delete the old record (keylime_tenant -c regdelete -u {id}) \
                 and restart keylet; if another host uses this id (a cloned image or a copied \
                 uuid), give each host its own id (uuid = \"hash_ek\")"
            ),
            Self::Status {
                action,
                status,
                message,
            } => write!(
                f,
                "the registrar answered {action} with {status}: {message}"
            ),
            Self::BadResponse { detail } | Self::Http(HttpError::BadResponse { detail }) => {
                write!(f, "the registrar's answer is not valid: {detail}")
            }
            Self::NoCommonVersion { registrar } => {
                let theirs: Vec<String> =
                    registrar.iter().map(|(a, b)| format!("{a}.{b}")).collect();
                write!(
                    f,
                    "the registrar supports API versions {} and keylet none of them; keylet speaks 2.1 to 2.6",
                    theirs.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for RegistrarError {}

impl From<HttpError> for RegistrarError {
    fn from(e: HttpError) -> Self {
        Self::Http(e)
    }
}

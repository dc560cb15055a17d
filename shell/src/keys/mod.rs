//! The agent's software keys: the payload key (NK) and the mTLS server key
//! and certificate. Both are generated once, kept in `keylime_dir` (0600,
//! written atomically) and reused: the verifier pins the certificate and the
//! NK public key when the agent is added.

mod cert_file;
mod mtls;
mod mtls_install;
mod payload;

pub(crate) use cert_file::{CertFileError, load_certs, parse_certs, read_certs};
pub(crate) use mtls::{load_or_create_mtls, new_mtls_pem};
pub(crate) use mtls_install::{complete_pending, files as mtls_files, install as install_mtls};
pub use payload::{PayloadKey, load_or_create_payload_key};

use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// Why a key or certificate could not be loaded or created.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing the file failed.
    Store(StoreError),
    /// The file does not hold what keylet expects: what is wrong and what to do.
    Invalid(PathBuf, String),
    /// A password-protected key was configured in this option.
    PasswordUnsupported(&'static str),
    /// Generating what is named failed, with the error.
    Generate(&'static str, String),
}

impl KeyError {
    /// [`KeyError::Invalid`]: `path` does not hold what keylet expects.
    pub(crate) fn invalid(path: &Path, detail: impl Into<String>) -> Self {
        Self::Invalid(path.to_path_buf(), detail.into())
    }

    /// [`KeyError::Generate`] from the error of making `what`.
    pub(crate) fn generate<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Self {
        move |e| Self::Generate(what, e.to_string())
    }
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => e.fmt(f),
            Self::Invalid(path, detail) => write!(f, "{}: {detail}", path.display()),
            Self::PasswordUnsupported(option) => write!(
                f,
                "option {option} is set, but keylet does not read password-protected keys; \
                 leave it empty and protect the key file with its 0600 mode and the state directory"
            ),
            Self::Generate(what, detail) => write!(f, "cannot generate the {what}: {detail}"),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

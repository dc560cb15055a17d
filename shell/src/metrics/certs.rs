//! Certificate expiry dates for the metrics.

use std::fmt;
use std::path::{Path, PathBuf};

use x509_cert::Certificate;
use x509_cert::der::Decode as _;

use crate::keys::{CertFileError, load_certs};

/// Why a certificate file's expiry could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum CertExpiryError {
    /// The file cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The file holds no certificate that parses.
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for CertExpiryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => write!(
                f,
                "cannot read certificate file {}: {source} (check the path and that keylet's \
                 user may read it)",
                path.display()
            ),
            Self::NoCertificate { path } => write!(
                f,
                "{} holds no X.509 certificate that parses (expected PEM or DER)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CertExpiryError {}

/// The earliest `notAfter` (unix seconds) among the certificates in `path`
/// (PEM with any number of certificates, or one DER certificate).
///
/// # Errors
///
/// [`CertExpiryError`] naming the file.
pub(crate) fn not_after(path: &Path) -> Result<i64, CertExpiryError> {
    let earliest = match load_certs(path) {
        Ok(certs) => certs.iter().filter_map(|der| expiry(der.as_ref())).min(),
        Err(CertFileError::Read { path, source }) => {
            return Err(CertExpiryError::Read { path, source });
        }
        Err(_) => None,
    };
    earliest.ok_or_else(|| CertExpiryError::NoCertificate {
        path: path.to_path_buf(),
    })
}

fn expiry(der: &[u8]) -> Option<i64> {
    let cert = Certificate::from_der(der).ok()?;
    let secs = cert
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration()
        .as_secs();
    i64::try_from(secs).ok()
}

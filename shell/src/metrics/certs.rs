//! Certificate expiry dates for the metrics.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use x509_cert::Certificate;
use x509_cert::der::Decode as _;

/// Why a certificate file's expiry could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum CertExpiryError {
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
pub fn not_after(path: &Path) -> Result<i64, CertExpiryError> {
    let bytes = std::fs::read(path).map_err(|source| CertExpiryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let earliest = if bytes.first() == Some(&0x30) {
        expiry(&bytes)
    } else {
        CertificateDer::pem_slice_iter(&bytes)
            .filter_map(Result::ok)
            .filter_map(|der| expiry(der.as_ref()))
            .min()
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

//! Certificate files: PEM (any number of certificates) or one DER certificate.
//! keylet's one certificate reader: the mTLS server, its clients, the
//! metrics, `doctor`, the device identity and the revocation check all read
//! their files here.

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{self, PemObject};

/// Why a certificate file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CertFileError {
    /// The file could not be read.
    #[error("cannot read {}: {error}", .path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file is not valid PEM: the parser's reason.
    #[error("{} is not valid PEM: {detail}", .path.display())]
    Pem { path: PathBuf, detail: String },
    /// The file holds no certificate.
    #[error("{} holds no certificate", .path.display())]
    Empty { path: PathBuf },
}

/// The certificates in `bytes`: one DER certificate, or every certificate of
/// a PEM text (none if it holds none).
///
/// Errors: The PEM parser's error.
pub(crate) fn parse_certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, pem::Error> {
    if bytes.first() == Some(&0x30) {
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    CertificateDer::pem_slice_iter(bytes).collect()
}

/// Reads every certificate in `path`: PEM (any number) or one DER certificate.
///
/// Errors: A [`CertFileError`] naming the file: unreadable, not PEM/DER, or no certificate.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertFileError> {
    let bytes = std::fs::read(path).map_err(|error| CertFileError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let certs = parse_certs(&bytes).map_err(|e| CertFileError::Pem {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(CertFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// [`load_certs`] with the error as a message.
///
/// Errors: A message naming the file: unreadable, not PEM/DER, or no certificate.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    load_certs(path).map_err(|e| e.to_string())
}

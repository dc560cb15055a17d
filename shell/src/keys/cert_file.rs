//! Certificate files: PEM (any number of certificates) or one DER certificate.
//! keylet's one certificate reader: the mTLS server, its clients, the
//! metrics, `doctor`, the device identity and the revocation check all read
//! their files here.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{self, PemObject};

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
/// Messages name the file as `the {role} file {path}` when `role` is given
/// (the mTLS server's files), else by its path.
///
/// Errors: A message naming the file: unreadable, not PEM/DER, or no certificate.
pub(crate) fn read_certs(
    path: &Path,
    role: Option<&str>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let file = match role {
        Some(role) => format!("the {role} file {}", path.display()),
        None => path.display().to_string(),
    };
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {file}: {e}"))?;
    let certs = parse_certs(&bytes).map_err(|e| format!("{file} is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{file} holds no usable PEM certificate"));
    }
    Ok(certs)
}

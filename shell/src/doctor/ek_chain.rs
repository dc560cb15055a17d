//! Check: the EK certificate from NV chains to a CA in the given store
//! (`--ek-ca DIR|FILE`, or `<keylime_dir>/tpm_cert_store`, Keylime's default).
//!
//! Verified with webpki, the verifier rustls uses. Every certificate in the
//! store is both a trust anchor and a candidate intermediate, as Keylime treats
//! its `tpm_cert_store`. EK certificates carry the TCG EKU
//! (2.23.133.8.1) or none, so any EKU is accepted; their critical
//! subjectAltName (a directoryName with the TPM manufacturer, model and
//! version; the subject is empty) is understood by webpki and does not stop
//! the chain check.

use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};

use super::report::{Outcome, fail, warn};
use crate::keys::read_certs;
use crate::tls;

/// Accepts any EKU: an EK certificate is not used for TLS.
struct AnyUsage;

impl ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, mut iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        iter.try_for_each(|id| id.map(drop))
    }
}

/// The certificates of a store: every file of a directory (PEM or DER), or one file.
fn load_store(store: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    if !store.is_dir() {
        return read_certs(store, None);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(store)
        .map_err(|e| format!("cannot list {}: {e}", store.display()))?
        .filter_map(|e| Some(e.ok()?.path()).filter(|p| p.is_file()))
        .collect();
    files.sort();
    // Non-certificate files (README, CRLs) are skipped, as Keylime does.
    let certs: Vec<_> = files
        .iter()
        .filter_map(|f| read_certs(f, None).ok())
        .flatten()
        .collect();
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", store.display()));
    }
    Ok(certs)
}

/// `tpm.ek_cert_chain`, the chain check for `ek_cert` (DER) against `store`;
/// `None` store: not checked.
pub(crate) fn check(ek_cert: &[u8], store: Option<&Path>) -> Outcome {
    let fix = "run keylet doctor --ek-ca DIR|FILE with the TPM manufacturer's CA certificates \
               (the tenant's tpm_cert_store)";
    let store = store.ok_or_else(|| warn("not checked: no EK CA store given", fix))?;
    let fix = "point --ek-ca at a directory or file of PEM/DER CA certificates";
    let cas = load_store(store).map_err(|e| fail(e, fix))?;
    let der = CertificateDer::from(ek_cert);
    let ee = EndEntityCert::try_from(&der).map_err(|e| {
        fail(
            format!("the EK certificate does not parse for chain checking: {e:?}"),
            "read it with tpm2_nvread and openssl x509 -inform DER -text; report it",
        )
    })?;
    let anchors: Vec<_> = cas
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    let algs = tls::provider().signature_verification_algorithms.all;
    let store = store.display();
    ee.verify_for_usage(algs, &anchors, &cas, UnixTime::now(), AnyUsage, None, None)
        .map_err(|e| {
            fail(
                format!("the EK certificate does not chain to a CA in {store}: {e:?}"),
                "add the TPM manufacturer's root and intermediate CA certificates to the store \
                 (the tenant's tpm_cert_store), or use a TPM whose EK certificate they issued",
            )
        })?;
    let n = cas.len();
    let found = format!("the EK certificate chains to a CA in {store} ({n} certificates)");
    Ok(found)
}

//! The one test PKI builder: CAs and leaf certificates made with rcgen.
#![allow(dead_code, clippy::unwrap_used)]

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// The parameters of a CA certificate with common name `name` (tests that
/// need other dates or a chain start here).
pub fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
}

/// A self-signed CA named `name`.
pub fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    CertifiedIssuer::self_signed(ca_params(name), KeyPair::generate().unwrap()).unwrap()
}

/// The parameters of a leaf certificate for `name` and `localhost`.
pub fn leaf_params(name: &str) -> CertificateParams {
    CertificateParams::new(vec![name.to_owned(), "localhost".to_owned()]).unwrap()
}

/// A leaf certificate for `name` and `localhost` signed by `issuer`:
/// (certificate PEM, key PEM).
pub fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(name).signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

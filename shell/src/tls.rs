//! The one place keylet's rustls configurations start: the ring provider and
//! TLS 1.3 and 1.2, for the mTLS server and every client (registrar, push
//! verifier, `doctor`'s probe). Certificate verification is always on.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{
    CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms,
};
use rustls::sign::SigningKey;
use rustls::{ClientConfig, ConfigBuilder, RootCertStore, ServerConfig, WantsVerifier};
use rustls_pki_types::PrivateKeyDer;

use crate::keys::read_certs;

/// The protocol versions keylet speaks (the Keylime 7.14 services use TLS
/// 1.3; older ones and tenants may still use 1.2).
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// keylet's provider: ring's AES-GCM suites only, as the peers (Python's
/// OpenSSL, Go's crypto/tls) offer them. rustls' `default_provider` lists
/// ChaCha20-Poly1305 too, which links ring's code for it (about 50 KiB) even
/// when the list is replaced, so keylet assembles ring's parts itself.
#[must_use]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::{ALL_KX_GROUPS, cipher_suite as suite};
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_AES_128_GCM_SHA256,
            suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        kx_groups: ALL_KX_GROUPS.to_vec(),
        signature_verification_algorithms: SIGNATURES,
        secure_random: &Ring,
        key_provider: &Ring,
    })
}

/// ring's signature algorithms and the TLS schemes each verifies, as rustls'
/// own ring provider maps them (that table is private to rustls).
const SIGNATURES: WebPkiSupportedAlgorithms = {
    use rustls::SignatureScheme as S;
    use webpki::ring as alg;
    WebPkiSupportedAlgorithms {
        all: webpki::ALL_VERIFICATION_ALGS,
        mapping: &[
            (
                S::ECDSA_NISTP384_SHA384,
                &[alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384],
            ),
            (
                S::ECDSA_NISTP256_SHA256,
                &[alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256],
            ),
            (S::ED25519, &[alg::ED25519]),
            (
                S::RSA_PSS_SHA512,
                &[alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
            ),
            (
                S::RSA_PSS_SHA384,
                &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
            ),
            (
                S::RSA_PSS_SHA256,
                &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
            ),
            (S::RSA_PKCS1_SHA512, &[alg::RSA_PKCS1_2048_8192_SHA512]),
            (S::RSA_PKCS1_SHA384, &[alg::RSA_PKCS1_2048_8192_SHA384]),
            (S::RSA_PKCS1_SHA256, &[alg::RSA_PKCS1_2048_8192_SHA256]),
        ],
    }
};

/// The provider's randomness (the system's) and private-key loading (ring's,
/// the key's bytes zeroized after).
#[derive(Debug)]
struct Ring;

impl SecureRandom for Ring {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        getrandom::fill(buf).map_err(|_| GetRandomFailed)
    }
}

impl KeyProvider for Ring {
    fn load_private_key(
        &self,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        rustls::crypto::ring::sign::any_supported_type(&zeroize::Zeroizing::new(key))
    }
}

/// A server configuration builder with `provider` and keylet's versions.
///
/// Errors: rustls' error if the provider lacks the versions.
pub(crate) fn server_builder(
    provider: Arc<CryptoProvider>,
) -> Result<ConfigBuilder<ServerConfig, WantsVerifier>, rustls::Error> {
    ServerConfig::builder_with_provider(provider).with_protocol_versions(VERSIONS)
}

/// A client configuration (no client certificate) that trusts the usable
/// certificates in `file` (PEM or DER).
///
/// Errors: A message naming the file: unreadable, or no certificate in it usable as
/// a trust anchor; or rustls' error.
pub(crate) fn client_config(file: &Path) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    if roots.add_parsable_certificates(read_certs(file, None)?).0 == 0 {
        let file = file.display();
        return Err(format!(
            "{file} holds no certificate usable as a trust anchor"
        ));
    }
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| e.to_string())
}

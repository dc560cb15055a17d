//! The one place keylet's rustls configurations start: the ring provider and
//! TLS 1.3 and 1.2, for the mTLS server and every client (registrar, push
//! verifier, `doctor`'s probe). Certificate verification is always on.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ConfigBuilder, RootCertStore, ServerConfig, WantsVerifier};

/// The protocol versions keylet speaks (the Keylime 7.14 services use TLS
/// 1.3; older ones and tenants may still use 1.2).
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider of every configuration.
#[must_use]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration builder with `provider` and keylet's versions,
/// waiting for its client verifier.
///
/// # Errors
///
/// rustls' error if the provider lacks the versions.
pub(crate) fn server_builder(
    provider: Arc<CryptoProvider>,
) -> Result<ConfigBuilder<ServerConfig, WantsVerifier>, rustls::Error> {
    ServerConfig::builder_with_provider(provider).with_protocol_versions(VERSIONS)
}

/// Why a client configuration could not be built.
#[derive(Debug)]
pub(crate) enum ClientTlsError {
    /// None of the certificates is usable as a trust anchor.
    NoUsableCert,
    /// rustls refused the protocol versions.
    Protocol(rustls::Error),
}

/// A client configuration (no client certificate) that trusts the usable
/// certificates among `trusted`.
///
/// # Errors
///
/// [`ClientTlsError::NoUsableCert`] if none is usable, or rustls' error.
pub(crate) fn client_config(
    trusted: Vec<CertificateDer<'static>>,
) -> Result<ClientConfig, ClientTlsError> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(trusted);
    if added == 0 {
        return Err(ClientTlsError::NoUsableCert);
    }
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(ClientTlsError::Protocol)
}

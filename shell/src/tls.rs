//! The one place keylet's rustls configurations start: the ring provider and
//! TLS 1.3 and 1.2, for the mTLS server and every client (registrar, push
//! verifier, `doctor`'s probe). Certificate verification is always on.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ConfigBuilder, RootCertStore, ServerConfig, WantsVerifier};

use crate::keys::read_certs;

/// The protocol versions keylet speaks (the Keylime 7.14 services use TLS
/// 1.3; older ones and tenants may still use 1.2).
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[must_use]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
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

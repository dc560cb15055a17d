//! The mTLS server configuration: keylet's certificate and key, and the CAs
//! whose client certificates (the verifier's and the tenant's) it accepts.
//! TLS 1.2 and 1.3 (ring), ALPN `http/1.1`, a client certificate required, no
//! TLS 1.3 session tickets (the verifier opens a new connection for every
//! poll, so tickets would only cost two extra records per request).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{WantsServerCert, WebPkiClientVerifier};
use rustls::{ConfigBuilder, RootCertStore, ServerConfig};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::keys::read_certs;
use crate::tls;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// keylet's certificate chain (leaf first).
    pub server_cert: PathBuf,
    /// PKCS#8, SEC1 (EC) or PKCS#1 (RSA), unencrypted.
    pub server_key: PathBuf,
    /// The CAs that sign accepted client certificates, several per file.
    pub trusted_client_ca: Vec<PathBuf>,
}

// What the files are called in messages.
const SERVER_CERT: &str = "server certificate (server_cert)";
const SERVER_KEY: &str = "server key (server_key)";
const CLIENT_CA: &str = "trusted client CA (trusted_client_ca)";

/// Why the mTLS configuration could not be built: the file and what is wrong
/// with it (unreadable, not PEM, no usable item, an encrypted key, refused by
/// rustls), or that no client CA is configured, with what to do.
pub type TlsError = String;

/// Builds the server configuration from `files` (to reload, install the
/// result with [`ServerTls::replace`]).
///
/// # Errors
///
/// Which file is missing, unreadable, empty, not PEM or unusable.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(&files.server_cert, Some(SERVER_CERT))?;
    let key_path = files.server_key.display();
    let pem = std::fs::read(&files.server_key)
        .map_err(|e| format!("cannot read the {SERVER_KEY} file {key_path}: {e}"))?;
    let key = parse_key(&files.server_key, &pem)?;
    let config = verifying_clients(&files.trusted_client_ca)?
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "the server certificate {} and key {key_path} cannot be used together: {e}",
                files.server_cert.display(),
            )
        })?;
    Ok(finish(config))
}

/// `current` trusting the CAs in `trusted_client_ca` (read anew): how the client
/// CAs are reloaded without touching the pinned server certificate.
///
/// Errors: Which CA file is missing, unreadable, empty, not PEM or unusable.
pub(crate) fn with_client_cas(
    current: &ServerConfig,
    trusted_client_ca: &[PathBuf],
) -> Result<Arc<ServerConfig>, TlsError> {
    let config = verifying_clients(trusted_client_ca)?
        .with_cert_resolver(Arc::clone(&current.cert_resolver));
    Ok(finish(config))
}

/// A builder (TLS 1.2 and 1.3) requiring client certificates from `ca_files`.
fn verifying_clients(
    ca_files: &[PathBuf],
) -> Result<ConfigBuilder<ServerConfig, WantsServerCert>, TlsError> {
    if ca_files.is_empty() {
        return Err(
            "mTLS is enabled but trusted_client_ca lists no CA file; add the verifier's CA \
                    (cv_ca/cacert.crt)"
                .into(),
        );
    }
    let mut roots = RootCertStore::empty();
    for path in ca_files {
        for ca in read_certs(path, Some(CLIENT_CA))? {
            roots.add(ca).map_err(|e| {
                format!(
                    "a certificate in the trusted client CA file {} is unusable: {e}",
                    path.display()
                )
            })?;
        }
    }
    let provider = tls::provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| format!("cannot build the client certificate verifier: {e}"))?;
    let builder =
        tls::server_builder(provider).map_err(|e| format!("cannot enable TLS 1.2 and 1.3: {e}"))?;
    Ok(builder.with_client_cert_verifier(verifier))
}

/// ALPN `http/1.1` and no session tickets.
fn finish(mut config: ServerConfig) -> Arc<ServerConfig> {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

/// The server key in `pem`, read from `path`: the one PEM key reader of the
/// server and `keylet doctor`.
///
/// Errors: The key is encrypted, missing or not PEM.
pub(crate) fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    use rustls_pki_types::pem::Error::NoItemsFound;
    let path = path.display();
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        NoItemsFound if pem.windows(9).any(|w| w == b"ENCRYPTED") => format!(
            "the server key {path} is encrypted; keylet needs an unencrypted PKCS#8, SEC1 or \
             PKCS#1 key"
        ),
        NoItemsFound => format!("the {SERVER_KEY} file {path} holds no usable PEM private key"),
        e => format!("the {SERVER_KEY} file {path} is not valid PEM: {e}"),
    })
}

/// The server's TLS configuration, replaceable while it runs: each new
/// connection uses the one current at its accept. Clones share the slot.
#[derive(Debug, Clone)]
pub struct ServerTls {
    current: Arc<RwLock<Arc<ServerConfig>>>,
    pub(crate) files: TlsFiles,
}

impl ServerTls {
    /// # Errors
    ///
    /// As [`server_config`].
    pub fn from_files(files: &TlsFiles) -> Result<Self, TlsError> {
        let current = Arc::new(RwLock::new(server_config(files)?));
        let files = files.clone();
        Ok(Self { current, files })
    }

    /// Installs `config` for connections accepted from now on.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

//! The mTLS server configuration: keylet's certificate and key, and the CAs
//! whose client certificates (the verifier's and the tenant's) it accepts.
//!
//! TLS 1.2 and 1.3 (ring), ALPN `http/1.1`, a client certificate required, and
//! no TLS 1.3 session tickets (the verifier opens a new connection for every
//! poll, so tickets would only cost two extra records per request).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::keys::{CertFileError, load_certs};
use crate::tls;

/// The files the mTLS configuration is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// keylet's certificate chain, PEM (leaf first).
    pub server_cert: PathBuf,
    /// keylet's private key, PEM: PKCS#8, SEC1 (EC) or PKCS#1 (RSA), unencrypted.
    pub server_key: PathBuf,
    /// PEM files of the CAs that sign accepted client certificates; each may
    /// hold several certificates.
    pub trusted_client_ca: Vec<PathBuf>,
}

/// What a TLS file is used for, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFileRole {
    /// `server_cert`.
    ServerCert,
    /// `server_key`.
    ServerKey,
    /// One of `trusted_client_ca`.
    ClientCa,
}

impl fmt::Display for TlsFileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ServerCert => "server certificate (server_cert)",
            Self::ServerKey => "server key (server_key)",
            Self::ClientCa => "trusted client CA (trusted_client_ca)",
        })
    }
}

/// Why the mTLS configuration could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// What the file is for.
        role: TlsFileRole,
        /// The path.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file has no usable PEM item of the kind needed.
    Empty {
        /// What the file is for.
        role: TlsFileRole,
        /// The path.
        path: PathBuf,
    },
    /// A file is not valid PEM.
    Pem {
        /// What the file is for.
        role: TlsFileRole,
        /// The path.
        path: PathBuf,
        /// The parser's reason.
        detail: String,
    },
    /// The key file holds an encrypted key.
    EncryptedKey(PathBuf),
    /// `trusted_client_ca` is empty although mTLS is enabled.
    NoClientCa,
    /// rustls refused a CA certificate as a trust anchor, could not build the
    /// client verifier, or refused the protocol versions (a build without
    /// TLS 1.2/1.3): what and why.
    Rustls(String),
    /// rustls rejected the certificate and key (unsupported key type, or the
    /// key does not match the certificate).
    CertKey {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { role, path, source } => {
                write!(f, "cannot read the {role} file {}: {source}", path.display())
            }
            Self::Empty { role, path } => write!(
                f,
                "the {role} file {} holds no usable PEM {}",
                path.display(),
                match role {
                    TlsFileRole::ServerKey => "private key",
                    TlsFileRole::ServerCert | TlsFileRole::ClientCa => "certificate",
                }
            ),
            Self::Pem { role, path, detail } => {
                write!(f, "the {role} file {} is not valid PEM: {detail}", path.display())
            }
            Self::EncryptedKey(path) => write!(
                f,
                "the server key {} is encrypted; keylet needs an unencrypted PKCS#8, SEC1 or PKCS#1 key",
                path.display()
            ),
            Self::NoClientCa => f.write_str(
                "mTLS is enabled but trusted_client_ca lists no CA file; add the verifier's CA (cv_ca/cacert.crt)",
            ),
            Self::Rustls(message) => f.write_str(message),
            Self::CertKey { cert, key, source } => write!(
                f,
                "the server certificate {} and key {} cannot be used together: {source}",
                cert.display(),
                key.display()
            ),
        }
    }
}

impl std::error::Error for TlsError {}

/// Builds the server configuration from `files`. Call it again to reload
/// certificates, and install the result with [`ServerTls::replace`].
///
/// # Errors
///
/// A [`TlsError`] naming the file that is missing, unreadable, empty, not PEM
/// or unusable.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = tls::provider();
    let certs = read_certs(&files.server_cert, TlsFileRole::ServerCert)?;
    let key = read_key(&files.server_key)?;
    let verifier = client_verifier(&files.trusted_client_ca, &provider)?;
    let cert_key_error = |source| TlsError::CertKey {
        cert: files.server_cert.clone(),
        key: files.server_key.clone(),
        source,
    };
    let config = tls::server_builder(provider)
        .map_err(cert_key_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(cert_key_error)?;
    Ok(finish(config))
}

/// Builds a server configuration that trusts the CAs in `trusted_client_ca`
/// (read anew) and keeps serving `current`'s certificate and key: how the
/// client CAs are reloaded without touching the pinned server certificate.
///
/// # Errors
///
/// A [`TlsError`] naming the CA file that is missing, unreadable, empty, not
/// PEM or unusable.
pub(crate) fn with_client_cas(
    current: &ServerConfig,
    trusted_client_ca: &[PathBuf],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = tls::provider();
    let verifier = client_verifier(trusted_client_ca, &provider)?;
    let config = tls::server_builder(provider)
        .map_err(|e| TlsError::Rustls(format!("cannot enable TLS 1.2 and 1.3: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::clone(&current.cert_resolver));
    Ok(finish(config))
}

/// The client certificate verifier over every CA in `ca_files`.
fn client_verifier(
    ca_files: &[PathBuf],
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    if ca_files.is_empty() {
        return Err(TlsError::NoClientCa);
    }
    let mut roots = RootCertStore::empty();
    for path in ca_files {
        for ca in read_certs(path, TlsFileRole::ClientCa)? {
            roots.add(ca).map_err(|e| {
                TlsError::Rustls(format!(
                    "a certificate in the trusted client CA file {} is unusable: {e}",
                    path.display()
                ))
            })?;
        }
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| TlsError::Rustls(format!("cannot build the client certificate verifier: {e}")))
}

/// ALPN `http/1.1` and no session tickets.
fn finish(mut config: ServerConfig) -> Arc<ServerConfig> {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

fn read_certs(path: &Path, role: TlsFileRole) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    load_certs(path).map_err(|e| match e {
        CertFileError::Read { path, source } => TlsError::Read { role, path, source },
        CertFileError::Pem { path, detail } => TlsError::Pem { role, path, detail },
        CertFileError::Empty { path } => TlsError::Empty { role, path },
    })
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        role: TlsFileRole::ServerKey,
        path: path.to_path_buf(),
        source,
    })?;
    parse_key(path, &pem)
}

/// The server key in `pem`, read from `path`: the one PEM key reader of the
/// server and `keylet doctor`.
///
/// # Errors
///
/// [`TlsError::EncryptedKey`], [`TlsError::Empty`] or [`TlsError::Pem`].
pub(crate) fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    let role = TlsFileRole::ServerKey;
    let path = path.to_path_buf();
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound if pem.windows(9).any(|w| w == b"ENCRYPTED") => {
            TlsError::EncryptedKey(path)
        }
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Empty { role, path },
        e => TlsError::Pem {
            role,
            path,
            detail: e.to_string(),
        },
    })
}

/// The server's current TLS configuration, replaceable while it runs: each
/// new connection uses the configuration current at its accept; connections
/// already open keep theirs. Clones share the same slot.
#[derive(Debug, Clone)]
pub struct ServerTls {
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl ServerTls {
    /// A slot holding `config`.
    #[must_use]
    pub(crate) fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            current: Arc::new(RwLock::new(config)),
        }
    }

    /// Builds the configuration from `files` into a new slot.
    ///
    /// # Errors
    ///
    /// As [`server_config`].
    pub fn from_files(files: &TlsFiles) -> Result<Self, TlsError> {
        server_config(files).map(Self::new)
    }

    /// Installs `config` for connections accepted from now on.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// The configuration new connections use.
    #[must_use]
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

//! The registrar's end of the shared HTTP(S) client ([`crate::net`]):
//! one request per connection, JSON bodies, errors as [`RegistrarError`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::RegistrarError;
use crate::net::{self, HttpError};

/// Where the registrar is and how to reach it.
#[derive(Clone)]
pub(crate) struct Endpoint(net::Endpoint);

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<HttpError> for RegistrarError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Unreachable { address, detail } => Self::Unreachable { address, detail },
            HttpError::Tls { detail } => Self::Tls { detail },
            HttpError::BadResponse { detail } => Self::BadResponse { detail },
        }
    }
}

/// A client TLS configuration trusting the certificates in `ca_file`.
///
/// # Errors
///
/// [`RegistrarError::Tls`] naming the file.
pub(crate) fn client_tls_config(ca_file: &Path) -> Result<rustls::ClientConfig, RegistrarError> {
    Ok(net::client_tls_config(ca_file, "registrar_tls_ca_cert")?)
}

impl Endpoint {
    pub(crate) fn new(host: &str, port: u16, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        Self(net::Endpoint::new(
            host,
            port,
            tls,
            ("registrar_tls_ca_cert", "registrar_ip"),
        ))
    }

    /// Sends one request (a JSON body, if any) and returns the status and body.
    ///
    /// # Errors
    ///
    /// [`RegistrarError::Unreachable`] for connection failures and timeouts,
    /// [`RegistrarError::Tls`] for certificate problems.
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), RegistrarError> {
        let reply = self
            .0
            .send(net::Request {
                method,
                path,
                body: body.map(|b| ("application/json", b)),
                ..net::Request::default()
            })
            .await?;
        Ok((reply.status, reply.body))
    }
}

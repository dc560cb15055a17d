//! One HTTP/1.1 request per connection to the registrar, over TCP or TLS.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;

use super::RegistrarError;

/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read (a registration answer is about 500 bytes).
const MAX_BODY: usize = 1 << 20;

/// Where the registrar is and how to reach it.
#[derive(Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// A client TLS configuration trusting the certificates in `ca_file`.
///
/// # Errors
///
/// [`RegistrarError::Tls`] naming the file.
pub fn client_tls_config(ca_file: &Path) -> Result<rustls::ClientConfig, RegistrarError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .and_then(Iterator::collect)
        .map_err(|e| RegistrarError::Tls {
            detail: format!(
                "cannot read CA certificates from {} (registrar_tls_ca_cert): {e}",
                ca_file.display()
            ),
        })?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(RegistrarError::Tls {
            detail: format!(
                "{} (registrar_tls_ca_cert) holds no usable CA certificate",
                ca_file.display()
            ),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| RegistrarError::Tls {
            detail: e.to_string(),
        })
}

impl Endpoint {
    pub fn new(host: &str, port: u16, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            tls,
        }
    }

    fn unreachable(&self, detail: impl fmt::Display) -> RegistrarError {
        RegistrarError::Unreachable {
            address: self.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Sends one request and returns the status and body.
    ///
    /// # Errors
    ///
    /// [`RegistrarError::Unreachable`] for connection failures and timeouts,
    /// [`RegistrarError::Tls`] for certificate problems.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), RegistrarError> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.request_inner(method, path, body))
            .await
            .map_err(|_| {
                self.unreachable(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))
            })?
    }

    async fn request_inner(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), RegistrarError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.unreachable(e))?;
        let _ = tcp.set_nodelay(true);
        let host_header = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host_header);
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| RegistrarError::BadResponse {
                detail: e.to_string(),
            })?;
        match &self.tls {
            None => self.exchange(TokioIo::new(tcp), req).await,
            Some(config) => {
                let name =
                    ServerName::try_from(self.host.clone()).map_err(|e| RegistrarError::Tls {
                        detail: format!("registrar_ip {} is not a valid TLS name: {e}", self.host),
                    })?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        if e.kind() == std::io::ErrorKind::InvalidData {
                            RegistrarError::Tls {
                                detail: format!(
                                    "{e}; check that registrar_tls_ca_cert holds the CA that signed \
                                     the registrar's certificate and that the certificate names {}",
                                    self.host
                                ),
                            }
                        } else {
                            self.unreachable(e)
                        }
                    })?;
                self.exchange(TokioIo::new(tls), req).await
            }
        }
    }

    async fn exchange<S>(
        &self,
        io: TokioIo<S>,
        req: hyper::Request<Full<Bytes>>,
    ) -> Result<(u16, Vec<u8>), RegistrarError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| self.unreachable(e))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let result = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| self.unreachable(e))?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| RegistrarError::BadResponse {
                    detail: format!("reading the answer: {e}"),
                })?
                .to_bytes();
            Ok((status, body.to_vec()))
        }
        .await;
        driver.abort();
        result
    }
}

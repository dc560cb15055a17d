//! One HTTP/1.1 request per connection, over TCP or TLS: the client of the
//! registrar and of the push-model verifier. TLS always verifies the peer's
//! certificate against the configured CA file and its name against the host
//! keylet was told to reach; there is no way to skip either.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::HostPort;
use super::stream::boxed;

use crate::tls;

/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read unless a request says otherwise.
pub(crate) const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No connection to `address` (`scheme://host:port`): refused, timed
    /// out, reset. Worth retrying.
    #[error("{address} unreachable: {detail}")]
    Unreachable { address: String, detail: String },
    /// The TLS setup or handshake failed (a certificate or name problem):
    /// what happened and what to check.
    #[error("TLS: {0}")]
    Tls(String),
    /// The answer could not be read (too large, cut off, not HTTP).
    #[error("bad answer: {0}")]
    BadResponse(String),
}

/// A client TLS configuration trusting the certificates in `ca_file`;
/// `option` names the setting the file came from, for messages.
///
/// Errors: [`HttpError::Tls`] naming the file and the option.
pub(crate) fn client_tls_config(
    ca_file: &Path,
    option: &str,
) -> Result<rustls::ClientConfig, HttpError> {
    tls::client_config(ca_file)
        .map_err(|e| HttpError::Tls(format!("CA certificates ({option}): {e}")))
}

/// One request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    /// The path (and query).
    pub(crate) path: &'a str,
    /// The media type and the body.
    pub(crate) body: Option<(&'a str, Vec<u8>)>,
    pub(crate) accept: Option<&'a str>,
    /// The token sent as `Authorization: Bearer ...`.
    pub(crate) bearer: Option<&'a str>,
    /// The largest answer body accepted (0: [`DEFAULT_MAX_BODY`]).
    pub(crate) max_body: usize,
}

/// An answer: its status, the headers keylet reads (each if present and
/// valid text), and its body.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// Where a server is and how to reach it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    options: (&'static str, &'static str),
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        write!(f, "{scheme}://{}", HostPort(&self.host, self.port))
    }
}

impl Endpoint {
    /// `host:port`, over TLS with `tls`. `options` are the names of the
    /// options holding the CA file and the host (used in TLS hints).
    #[must_use]
    pub(crate) fn new(
        host: &str,
        port: u16,
        tls: Option<Arc<rustls::ClientConfig>>,
        options: (&'static str, &'static str),
    ) -> Self {
        Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            tls,
            options,
        }
    }

    fn unreachable(&self, detail: impl fmt::Display) -> HttpError {
        HttpError::Unreachable {
            address: self.to_string(),
            detail: detail.to_string(),
        }
    }

    /// `work`, or [`HttpError::Unreachable`] ("no `what` within 30s") if it
    /// takes longer than a request may.
    async fn within<T>(
        &self,
        what: &str,
        work: impl Future<Output = Result<T, HttpError>>,
    ) -> Result<T, HttpError> {
        let late = |_| self.unreachable(format!("no {what} within {}s", REQUEST_TIMEOUT.as_secs()));
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .map_err(late)?
    }

    /// Opens a connection (TCP, then TLS with the certificate and name
    /// checked) for one or more requests in a row (HTTP/1.1 keep-alive).
    ///
    /// Errors: [`HttpError::Unreachable`] for connection failures and timeouts,
    /// [`HttpError::Tls`] for certificate problems.
    pub(crate) async fn connect(&self) -> Result<Connection, HttpError> {
        let connect = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| self.unreachable(e))?;
            let _ = tcp.set_nodelay(true);
            let io = match &self.tls {
                None => boxed(tcp),
                Some(config) => boxed(self.tls_handshake(config, tcp).await?),
            };
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                .await
                .map_err(|e| self.unreachable(e))?;
            Ok(Connection {
                endpoint: self.clone(),
                sender,
                driver: tokio::spawn(conn),
            })
        };
        self.within("connection", connect).await
    }

    async fn tls_handshake(
        &self,
        config: &Arc<rustls::ClientConfig>,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, HttpError> {
        let ((ca_option, host_option), host) = (self.options, &self.host);
        let name = ServerName::try_from(host.clone()).map_err(|e| {
            HttpError::Tls(format!("{host_option} {host} is not a valid TLS name: {e}"))
        })?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => HttpError::Tls(format!(
                    "{e}; check that {ca_option} holds the CA that signed the server's \
                     certificate and that the certificate names {host} (from {host_option})"
                )),
                _ => self.unreachable(e),
            })
    }

    fn build(&self, r: Request<'_>) -> Result<hyper::Request<Full<Bytes>>, HttpError> {
        let mut req = hyper::Request::builder()
            .method(r.method)
            .uri(r.path)
            .header(header::HOST, HostPort(&self.host, self.port).to_string());
        if let Some(accept) = r.accept {
            req = req.header(header::ACCEPT, accept);
        }
        if let Some(token) = r.bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some((media, _)) = r.body {
            req = req.header(header::CONTENT_TYPE, media);
        }
        let body = r.body.map(|(_, body)| body).unwrap_or_default();
        req.body(Full::new(Bytes::from(body)))
            .map_err(|e| HttpError::BadResponse(format!("cannot build the request: {e}")))
    }
}

/// An open connection to an [`Endpoint`] for requests one after another;
/// closed when dropped.
#[derive(Debug)]
pub(crate) struct Connection {
    endpoint: Endpoint,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<Result<(), hyper::Error>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    /// Whether the server (or an error) closed the connection.
    #[must_use]
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends one request on this connection and returns the answer.
    ///
    /// Errors: [`HttpError::Unreachable`] if the connection fails or no answer comes
    /// within the request timeout; [`HttpError::BadResponse`] for an answer
    /// that cannot be read (or is larger than allowed).
    pub(crate) async fn send(&mut self, r: Request<'_>) -> Result<Reply, HttpError> {
        let max_body = Some(r.max_body)
            .filter(|&m| m > 0)
            .unwrap_or(DEFAULT_MAX_BODY);
        let req = self.endpoint.build(r)?;
        let endpoint = self.endpoint.clone();
        let answer = async {
            let unreachable = |e| endpoint.unreachable(e);
            self.sender.ready().await.map_err(unreachable)?;
            let resp = self.sender.send_request(req).await.map_err(unreachable)?;
            let text = |name| Some(resp.headers().get(name)?.to_str().ok()?.to_owned());
            let mut reply = Reply {
                status: resp.status().as_u16(),
                content_type: text(header::CONTENT_TYPE),
                location: text(header::LOCATION),
                retry_after: text(header::RETRY_AFTER),
                body: Vec::new(),
            };
            let body = Limited::new(resp.into_body(), max_body).collect().await;
            let body = body.map_err(|e| {
                HttpError::BadResponse(format!(
                    "reading the answer (status {}, at most {max_body} bytes accepted): {e}",
                    reply.status
                ))
            })?;
            reply.body = body.to_bytes().to_vec();
            Ok(reply)
        };
        endpoint.within("answer", answer).await
    }
}

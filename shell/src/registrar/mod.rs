//! The registrar client: version discovery, registration and activation,
//! and its errors.
//!
//! Plain HTTP to `registrar_port`, as the registrar expects from pull agents,
//! or HTTPS to `registrar_tls_port` (`registrar_tls_enabled`), the
//! certificate verified against `registrar_tls_ca_cert` and its name against
//! `registrar_ip` (never without verification).

use std::sync::Arc;

pub(crate) use crate::keylime::registrar::Versions;
use crate::keylime::registrar::{self as messages, Activation};
pub(crate) use crate::keylime::registrar::{DeviceIdFields, Registration}; // keylet doctor

use crate::net::{self, Endpoint, HttpError};

/// The options holding the registrar's CA file and host, for TLS hints.
const OPTIONS: (&str, &str) = ("registrar_tls_ca_cert", "registrar_ip");

/// A registrar reached over HTTP or HTTPS.
#[derive(Debug, Clone)]
pub(crate) struct Registrar {
    endpoint: Endpoint,
}

impl Registrar {
    /// A registrar at `host:port` over plain HTTP.
    #[must_use]
    pub(crate) fn plain(host: &str, port: u16) -> Self {
        Self {
            endpoint: Endpoint::new(host, port, None, OPTIONS),
        }
    }

    /// The registrar `c` names, over HTTPS when `registrar_tls_enabled`.
    ///
    /// Errors: [`net::HttpError::Tls`] if the CA file is unreadable or holds no certificate.
    pub(crate) fn configured(c: &crate::config::AgentConfig) -> Result<Self, RegistrarError> {
        if !c.registrar_tls_enabled {
            return Ok(Self::plain(&c.registrar_ip, c.registrar_port));
        }
        let config = net::client_tls_config(&c.registrar_tls_ca_cert, OPTIONS.0)?;
        let tls = Some(Arc::new(config));
        Ok(Self {
            endpoint: Endpoint::new(&c.registrar_ip, c.registrar_tls_port, tls, OPTIONS),
        })
    }

    /// Sends one request (with `body` as JSON, if any) on a new connection
    /// and returns the status and body.
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<(u16, Vec<u8>), RegistrarError> {
        let body = body.map(serde_json::to_vec).transpose().map_err(|e| {
            RegistrarError::BadResponse(format!("cannot write the request to {path}: {e}"))
        })?;
        let request = net::Request {
            method,
            path,
            body: body.map(|b| ("application/json", b)),
            ..net::Request::default()
        };
        let reply = self.endpoint.connect().await?.send(request).await?;
        Ok((reply.status, reply.body))
    }

    /// `host:port` and the scheme, for messages.
    #[must_use]
    pub(crate) fn address(&self) -> String {
        self.endpoint.to_string()
    }

    /// Picks the API version to register with: the registrar's current version if
    /// keylet supports it, else the newest both support. A registrar whose
    /// `/version` answers other than 200 is asked with keylet's newest version.
    ///
    /// Errors: [`net::HttpError::Unreachable`] if it cannot be reached at all;
    /// [`RegistrarError::NoCommonVersion`] if it supports none of `ours`.
    pub(crate) async fn negotiate(&self, ours: &[(u8, u8)]) -> Result<(u8, u8), RegistrarError> {
        let newest = ours.iter().max().copied().unwrap_or((2, 1));
        let theirs = match self.versions().await {
            Err(RegistrarError::Status { status, .. }) => {
                log::warn!(
                    "registrar {} answered GET /version with {status}; trying API {}.{}",
                    self.address(),
                    newest.0,
                    newest.1
                );
                return Ok(newest);
            }
            other => other?,
        };
        messages::pick_version(ours, &theirs).ok_or(RegistrarError::NoCommonVersion {
            registrar: theirs.supported,
        })
    }

    /// `POST /v{api}/agents/{id}`: returns the credential blob (base64).
    ///
    /// Errors: [`RegistrarError`]; a 403 is [`RegistrarError::IdentityConflict`].
    pub(crate) async fn register(
        &self,
        api: (u8, u8),
        id: &str,
        registration: &Registration<'_>,
    ) -> Result<String, RegistrarError> {
        let path = format!("/v{}.{}/agents/{id}", api.0, api.1);
        let (status, answer) = self.request("POST", &path, Some(registration)).await?;
        messages::check_status(status, &answer, "register", id)?;
        messages::parse_blob(&answer)
    }

    /// `PUT /v{api}/agents/{id}` with the `auth_tag`: marks the agent active.
    ///
    /// Errors: [`RegistrarError`]; a 400 here means the registrar deleted the record.
    pub(crate) async fn activate(
        &self,
        api: (u8, u8),
        id: &str,
        auth_tag: &str,
    ) -> Result<(), RegistrarError> {
        let path = format!("/v{}.{}/agents/{id}", api.0, api.1);
        let activation = Activation { auth_tag };
        let (status, answer) = self.request("PUT", &path, Some(&activation)).await?;
        messages::check_status(status, &answer, "activate", id)
    }

    /// `GET /version`: the registrar's API versions (used by `keylet doctor`).
    ///
    /// Errors: [`RegistrarError`]: unreachable, TLS failure, a non-200 answer
    /// ([`RegistrarError::Status`]) or a body that is not a version document.
    pub(crate) async fn versions(&self) -> Result<Versions, RegistrarError> {
        let (status, body) = self.request("GET", "/version", None::<&()>).await?;
        if status != 200 {
            return Err(RegistrarError::Status {
                action: "GET /version",
                status,
                message: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        }
        messages::parse_version(&body)
    }
}

/// Why talking to the registrar failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrarError {
    /// No usable HTTP answer: unreachable (worth retrying), a TLS failure,
    /// or an answer that could not be read.
    #[error("{}", http_message(.0))]
    Http(HttpError),
    /// The registrar refused agent `id` with these keys (403), saying `message`.
    #[error(
        "the registrar refused agent {id} (403: {message}): this id is already registered \
         with a different EK, AK or EK certificate. If this host's TPM or agent state was \
         replaced on purpose, delete the old record (keylime_tenant -c regdelete -u {id}) \
         and restart keylet; if another host uses this id (a cloned image or a copied \
         uuid), give each host its own id (uuid = \"hash_ek\")"
    )]
    IdentityConflict { id: String, message: String },
    /// Any other non-200 answer to what keylet asked for (`action`).
    #[error("the registrar answered {action} with {status}: {message}")]
    Status {
        action: &'static str,
        status: u16,
        message: String,
    },
    /// The answer was not what the protocol says.
    #[error("the registrar's answer is not valid: {0}")]
    BadResponse(String),
    /// The registrar supports none of keylet's API versions, only these.
    #[error(
        "the registrar supports API versions {} and keylet none of them; keylet speaks 2.1 to 2.6",
        versions(.registrar)
    )]
    NoCommonVersion { registrar: Vec<(u8, u8)> },
}

impl RegistrarError {
    /// Whether waiting and trying again may help (unreachable, or a 5xx).
    #[must_use]
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Http(HttpError::Unreachable { .. }) => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// The text of [`RegistrarError::Http`]: the HTTP failure said for the registrar
/// (an unreadable answer reads like [`RegistrarError::BadResponse`]).
fn http_message(e: &HttpError) -> String {
    match e {
        HttpError::Unreachable { address, detail } => format!(
            "registrar {address} is unreachable ({detail}); check registrar_ip/registrar_port and that the registrar runs"
        ),
        HttpError::Tls(detail) => format!("TLS to the registrar failed: {detail}"),
        HttpError::BadResponse(detail) => format!("the registrar's answer is not valid: {detail}"),
    }
}

/// `1.0, 3.2`: the API versions a registrar offers.
fn versions(list: &[(u8, u8)]) -> String {
    let each: Vec<String> = list.iter().map(|(a, b)| format!("{a}.{b}")).collect();
    each.join(", ")
}

/// Hand-written rather than `#[from]`: that would also make the HTTP error
/// the `source()`, which `RegistrarError` does not report.
impl From<HttpError> for RegistrarError {
    fn from(e: HttpError) -> Self {
        Self::Http(e)
    }
}

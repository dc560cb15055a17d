//! Checks: the registrar answers `GET /version` (over TLS with hostname
//! verification when `registrar_tls_enabled`), and the listen port is free or
//! held by this keylet.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::report::{Finding, Outcome, fail};
use crate::config::AgentConfig;
use crate::keylime::registrar::pick_version;
use crate::net::HttpError;
use crate::registrar::{Registrar, RegistrarError};
use crate::server::{ApiVersion, ApiVersions};
use crate::tls;

/// How long the listen-port probe waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

fn registrar_problem(detail: String, e: &RegistrarError, c: &AgentConfig) -> Finding {
    let (ip, ca) = (&c.registrar_ip, c.registrar_tls_ca_cert.display());
    let fix = match e {
        RegistrarError::Http(HttpError::Unreachable { .. }) => {
            let port = if c.registrar_tls_enabled {
                "registrar_tls_port"
            } else {
                "registrar_port"
            };
            format!("start the registrar or correct registrar_ip ({ip}) and {port}")
        }
        RegistrarError::Http(HttpError::Tls { .. }) => format!(
            "registrar_tls_ca_cert ({ca}) must hold the CA that signed the registrar's \
             certificate, and that certificate must name registrar_ip ({ip})"
        ),
        RegistrarError::NoCommonVersion { .. } => {
            "upgrade the registrar or keylet, or widen api_versions".into()
        }
        _ => "check that registrar_ip/port point at a Keylime registrar".into(),
    };
    fail(detail, fix)
}

/// `registrar`: `GET /version` at the registrar keylet would register with.
pub(crate) async fn registrar(c: &AgentConfig) -> Outcome {
    let registrar =
        Registrar::configured(c).map_err(|e| registrar_problem(e.to_string(), &e, c))?;
    let address = registrar.address();
    let v = registrar.versions().await;
    let v = v.map_err(|e| registrar_problem(format!("{address}: {e}"), &e, c))?;
    let Some((a, b)) = pick_version(&c.api_versions, &v) else {
        let e = RegistrarError::NoCommonVersion {
            registrar: v.supported,
        };
        return Err(registrar_problem(e.to_string(), &e, c));
    };
    let api = match v.current {
        Some((ca, cb)) => format!("current API {ca}.{cb}, keylet uses {a}.{b}"),
        None => format!("keylet uses API {a}.{b}"),
    };
    let tls = if c.registrar_tls_enabled {
        ", TLS verified for the name registrar_ip"
    } else {
        ""
    };
    // What keylet will offer the tenant and verifier after registering with a.b.
    let (_, offer) = ApiVersions::from_config(&c.api_versions)
        .offer(c.api_versions_pinned, ApiVersion::new(a, b));
    let found = format!("{address} answers GET /version ({api}){tls}; {offer}");
    Ok(found)
}

/// Whether the TLS server at the listen address presents this agent's
/// `server_cert`: the certificate is the only trust anchor, so a handshake
/// that gets past certificate verification proves it.
async fn presents_our_cert(c: &AgentConfig, addr: SocketAddr) -> Result<(), String> {
    let config = tls::client_config(&c.server_cert)?;
    let tcp = tokio::net::TcpStream::connect(addr).await;
    let tcp = tcp.map_err(|e| e.to_string())?;
    let name = ServerName::IpAddress(addr.ip().into());
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp);
    match tokio::time::timeout(PROBE_TIMEOUT, handshake).await {
        Err(_) => Err(format!("no TLS answer within {}s", PROBE_TIMEOUT.as_secs())),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
            match inner {
                // It asked for our (absent) client certificate after we
                // accepted its certificate: mTLS, with our certificate.
                Some(rustls::Error::AlertReceived(_)) => Ok(()),
                // Signed by the pinned certificate, only the name differs.
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. },
                )) => Ok(()),
                _ => Err(e.to_string()),
            }
        }
    }
}

/// `listen`: the listen address is free, or held by keylet; `true` when a
/// running keylet holds it.
pub(crate) async fn listen(c: &AgentConfig) -> (Outcome, bool) {
    let addr = SocketAddr::new(c.ip, c.port);
    let in_use = match TcpListener::bind(addr) {
        Ok(_) => return (Ok(format!("{addr} is free")), false),
        Err(e) if e.kind() == ErrorKind::AddrInUse => e,
        Err(e) => {
            let fix = "set ip to an address of this host (or 0.0.0.0) and port to a free port; \
                       ports below 1024 need CAP_NET_BIND_SERVICE";
            let problem = fail(format!("cannot listen on {addr}: {e}"), fix);
            return (Err(problem), false);
        }
    };
    // Where to reach the listen address from this host.
    let ip = match c.ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ip => ip,
    };
    let target = SocketAddr::new(ip, c.port);
    let held = if c.enable_agent_mtls {
        let cert = c.server_cert.display();
        let ours = format!(
            "{addr} is held by a running keylet (it presents this agent's server_cert {cert})"
        );
        presents_our_cert(c, target).await.map(|()| ours)
    } else {
        let probe = Registrar::plain(&target.ip().to_string(), target.port());
        match tokio::time::timeout(PROBE_TIMEOUT, probe.versions()).await {
            Ok(Ok(_)) => Ok(format!(
                "{addr} is held by a running Keylime agent answering GET /version"
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
        }
    };
    let running = held.is_ok();
    let held = held.map_err(|why| {
        fail(
            format!("{addr} is in use ({in_use}) by a program that is not this keylet: {why}"),
            format!(
                "find it with ss -ltnp 'sport = :{}' and stop it, or set port to a free port \
                 (and contact_port to match)",
                c.port
            ),
        )
    });
    (held, running)
}

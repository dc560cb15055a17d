//! Checks: the registrar answers `GET /version` (over TLS with hostname
//! verification when `registrar_tls_enabled`), and the listen port is free or
//! held by this keylet.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::certs::read_certs;
use super::report::Check;
use crate::config::AgentConfig;
use crate::keylime::registrar::pick_version;
use crate::registrar::{Registrar, RegistrarError};
use crate::server::{ApiVersion, ApiVersions};
use crate::tls::{self, ClientTlsError};

/// How long the listen-port probe waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

fn registrar_fix(e: &RegistrarError, c: &AgentConfig) -> String {
    match e {
        RegistrarError::Unreachable { .. } => format!(
            "start the registrar or correct registrar_ip ({}) and {}",
            c.registrar_ip,
            if c.registrar_tls_enabled {
                "registrar_tls_port"
            } else {
                "registrar_port"
            }
        ),
        RegistrarError::Tls { .. } => format!(
            "registrar_tls_ca_cert ({}) must hold the CA that signed the registrar's certificate, \
             and that certificate must name registrar_ip ({})",
            c.registrar_tls_ca_cert.display(),
            c.registrar_ip
        ),
        RegistrarError::NoCommonVersion { .. } => {
            "upgrade the registrar or keylet, or widen api_versions".into()
        }
        _ => "check that registrar_ip/port point at a Keylime registrar".into(),
    }
}

/// `GET /version` at the registrar keylet would register with.
pub(crate) async fn registrar(c: &AgentConfig) -> Check {
    const NAME: &str = "registrar";
    let registrar = match Registrar::configured(c) {
        Ok(r) => r,
        Err(e) => return Check::fail(NAME, e.to_string(), registrar_fix(&e, c)),
    };
    let address = registrar.address();
    match registrar.versions().await {
        Ok(v) => {
            let common = pick_version(&c.api_versions, &v);
            let tls = if c.registrar_tls_enabled {
                ", TLS verified for the name registrar_ip"
            } else {
                ""
            };
            match common {
                Some((a, b)) => {
                    let api = match v.current {
                        Some((ca, cb)) => format!("current API {ca}.{cb}, keylet uses {a}.{b}"),
                        None => format!("keylet uses API {a}.{b}"),
                    };
                    let offer = offered(c, (a, b));
                    Check::ok(
                        NAME,
                        format!("{address} answers GET /version ({api}){tls}; {offer}"),
                    )
                }
                None => {
                    let e = RegistrarError::NoCommonVersion {
                        registrar: v
                            .supported
                            .iter()
                            .map(|(a, b)| format!("{a}.{b}"))
                            .collect(),
                    };
                    Check::fail(NAME, e.to_string(), registrar_fix(&e, c))
                }
            }
        }
        Err(e) => Check::fail(NAME, format!("{address}: {e}"), registrar_fix(&e, c)),
    }
}

/// What keylet will offer the tenant and verifier after registering with `registered`.
fn offered(c: &AgentConfig, registered: (u8, u8)) -> String {
    ApiVersions::from_config(&c.api_versions)
        .offer(
            c.api_versions_pinned,
            ApiVersion::new(registered.0, registered.1),
        )
        .1
}

/// Where to reach the listen address from this host.
fn probe_target(c: &AgentConfig) -> SocketAddr {
    let ip = match c.ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ip => ip,
    };
    SocketAddr::new(ip, c.port)
}

/// Whether the TLS server at the listen address presents this agent's
/// `server_cert`: the certificate is the only trust anchor, so a handshake
/// that gets past certificate verification proves it.
async fn presents_our_cert(c: &AgentConfig, addr: SocketAddr) -> Result<(), String> {
    let certs = read_certs(&c.server_cert)?;
    let config = tls::client_config(certs).map_err(|e| match e {
        ClientTlsError::NoUsableCert => {
            format!("{} is not a usable certificate", c.server_cert.display())
        }
        ClientTlsError::Protocol(e) => e.to_string(),
    })?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
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

/// The listen address is free, or held by keylet; `true` when a running
/// keylet holds it.
pub(crate) async fn listen(c: &AgentConfig) -> (Check, bool) {
    const NAME: &str = "listen";
    let addr = SocketAddr::new(c.ip, c.port);
    let in_use = match TcpListener::bind(addr) {
        Ok(l) => {
            drop(l);
            return (Check::ok(NAME, format!("{addr} is free")), false);
        }
        Err(e) if e.kind() == ErrorKind::AddrInUse => e,
        Err(e) => {
            let check = Check::fail(
                NAME,
                format!("cannot listen on {addr}: {e}"),
                "set ip to an address of this host (or 0.0.0.0) and port to a free port; ports \
                 below 1024 need CAP_NET_BIND_SERVICE",
            );
            return (check, false);
        }
    };
    let target = probe_target(c);
    let other = |why: String| {
        Check::fail(
            NAME,
            format!("{addr} is in use ({in_use}) by a program that is not this keylet: {why}"),
            format!(
                "find it with ss -ltnp 'sport = :{}' and stop it, or set port to a free port \
                 (and contact_port to match)",
                c.port
            ),
        )
    };
    if c.enable_agent_mtls {
        match presents_our_cert(c, target).await {
            Ok(()) => (
                Check::ok(
                    NAME,
                    format!(
                        "{addr} is held by a running keylet (it presents this agent's server_cert {})",
                        c.server_cert.display()
                    ),
                ),
                true,
            ),
            Err(why) => (other(why), false),
        }
    } else {
        let probe = Registrar::plain(&target.ip().to_string(), target.port());
        match tokio::time::timeout(PROBE_TIMEOUT, probe.versions()).await {
            Ok(Ok(_)) => (
                Check::ok(
                    NAME,
                    format!("{addr} is held by a running Keylime agent answering GET /version"),
                ),
                true,
            ),
            Ok(Err(e)) => (other(e.to_string()), false),
            Err(_) => (
                other(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
                false,
            ),
        }
    }
}

//! `keylet run` in pull mode: the shared start-up, the mTLS and payload
//! keys, registration with the mTLS certificate, then the agent API served
//! until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;

use super::StartError;
use super::serve::{serve, server_settings};
use super::service::attestation;
use super::startup::{blocking, open_common, register_or_stop, shutdown_signal};
use crate::config::AgentConfig;
use crate::keys::{PayloadKey, load_or_create_mtls, load_or_create_payload_key};
use crate::payload::{KeyBootstrap, secure_dir};
use crate::server::{ApiVersion, ServerTls, TlsFiles};

/// Runs the pull model: listen, TPM, keys, register, serve.
pub(super) async fn run_pull(c: &AgentConfig, listen: SocketAddr) -> Result<(), StartError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| StartError::Io {
            what: "listen",
            detail: format!("{listen}: {e} (is another agent running? set ip/port)"),
        })?;
    let mut o = open_common(c).await?;
    let (config, id) = (c.clone(), o.state.agent_id.clone());
    let (tls, payload) = blocking("prepare the keys", move || software_keys(&config, &id)).await?;
    let mtls_cert = tls.as_ref().map(|(_, pem)| pem.as_str());
    let Some(registered_api) = register_or_stop(c, &mut o, mtls_cert, false).await? else {
        return Ok(());
    };
    let payload_pem = payload.public_pem().to_string();
    let service = Arc::new(attestation(c, o.tpm, o.ak, &o.state, payload_pem));
    let mut settings = server_settings(c, tls.map(|(tls, _)| tls), o.metrics);
    let (versions, why) = std::mem::take(&mut settings.versions).offer(
        c.api_versions_pinned,
        ApiVersion::new(registered_api.0, registered_api.1),
    );
    log::info!("{why}");
    settings.versions = versions;
    settings.ima_log = o.ima_log;
    settings.mb_log = o.mb_log;
    // payload keys and delivery: the secure tmpfs is mounted before privileges are dropped
    let secure = payload_delivery(c)?;
    settings.revocations = crate::revocation::Revocations::new(
        c.revocation.clone(),
        secure.as_ref().map(|s| s.join("unzipped")),
        c.keylime_dir.clone(),
    );
    settings.payload_keys = Some(Arc::new(KeyBootstrap::new(
        payload,
        o.state.agent_id.clone(),
        c.payload.clone(),
        secure,
    )));
    super::lock_down(c)?;
    let scheme = settings.tls.as_ref().map_or("http", |_| "https");
    log::info!(
        "serving the Keylime agent API on {scheme}://{listen} as agent {}",
        o.state.agent_id
    );
    let (api, identity) = (Some(listener), o.identity_listeners);
    serve(api, identity, settings, service, shutdown_signal()).await;
    Ok(())
}

/// The mTLS key and certificate (none with mTLS off) and the payload key
/// for the agent `id`, made off the async thread (`blocking`).
fn software_keys(
    c: &AgentConfig,
    id: &str,
) -> Result<(Option<(ServerTls, String)>, PayloadKey), StartError> {
    let payload = load_or_create_payload_key(&c.payload_key, &c.payload_key_password)
        .map_err(StartError::Store)?;
    if !c.enable_agent_mtls {
        log::warn!(
            "enable_agent_mtls is off: serving plain HTTP (the verifier must have enable_agent_mtls = False)"
        );
        return Ok((None, payload));
    }
    let cert_pem = load_or_create_mtls(
        &c.server_key,
        &c.server_cert,
        &c.server_key_password,
        id,
        &c.contact_ip,
    )
    .map_err(StartError::Store)?;
    let files = TlsFiles {
        server_cert: c.server_cert.clone(),
        server_key: c.server_key.clone(),
        trusted_client_ca: c.trusted_client_ca.clone(),
    };
    let tls = ServerTls::from_files(&files).map_err(StartError::Tls)?;
    Ok((Some((tls, cert_pem)), payload))
}

/// Where payloads go: the secure directory when payloads are accepted (mTLS
/// on, or `enable_insecure_payload`), else (or without the payload feature)
/// nowhere.
fn payload_delivery(c: &AgentConfig) -> Result<Option<std::path::PathBuf>, StartError> {
    let accepted = c.enable_agent_mtls || c.payload.enable_insecure_payload;
    Ok(if !cfg!(feature = "payload") {
        log::info!("this keylet was built without the payload feature: payloads are refused");
        None
    } else if accepted {
        let dir = secure_dir::prepare(&c.keylime_dir, &c.payload.secure_size, c.run_as.as_ref())
            .map_err(StartError::io("prepare the secure directory for payloads"))?;
        Some(dir)
    } else {
        log::warn!(
            "mTLS is off: payloads from the tenant are refused (set enable_insecure_payload = \
             true to accept them over plain HTTP)"
        );
        None
    })
}

//! `keylet run` in pull mode: the shared start-up, the mTLS and payload
//! keys, registration with the mTLS certificate, then the agent API served
//! until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;

use keylet_core::tpm::Handle;

use super::keys::TpmObjects;
use super::serve::{Serving, attestation, serve, server_settings};
use super::startup::{Opened, blocking, open_common, prepare_ak, register, shutdown_signal};
use super::{StartError, TpmBox};
use crate::config::AgentConfig;
use crate::keys::{PayloadKey, load_or_create_mtls, load_or_create_payload_key};
use crate::payload::{Delivery, KeyBootstrap, SecureDir};
use crate::server::{ApiVersion, ServerTls, TlsFiles};
use crate::state::AgentState;

/// Runs the pull model: listen, TPM, keys, register, serve.
pub(super) async fn run_pull(c: &AgentConfig, listen: SocketAddr) -> Result<(), StartError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| StartError::Io {
            what: "listen",
            detail: format!("{listen}: {e} (is another agent running? set ip/port)"),
        })?;
    let Opened {
        identity_listeners,
        metrics,
        _metrics_server,
        tpm,
        ima_log,
        mb_log,
        objects,
    } = open_common(c).await?;
    let (mut tpm, (ak, state, settings_tls, payload)) = prepare(c, tpm, &objects).await?;
    let registered = tokio::select! {
        r = register(c, &mut tpm, &objects, &state, ak, settings_tls.as_ref().map(|(_, pem)| pem.as_str())) => r,
        () = shutdown_signal() => return Ok(()),
    };
    if objects.ek_transient {
        tpm.release(objects.ek.handle);
    }
    let registered_api = registered?;
    if let Some(m) = &metrics {
        m.set_registered(true); // metrics: registration state
    }

    let service = Arc::new(attestation(
        c,
        tpm,
        ak,
        &state,
        payload.public_pem().to_string(),
    ));
    let mut settings = server_settings(c, settings_tls.map(|(tls, _)| tls), metrics);
    let configured = std::mem::take(&mut settings.versions);
    let (versions, why) = configured.offer(
        c.api_versions_pinned,
        ApiVersion::new(registered_api.0, registered_api.1),
    );
    log::info!("{why}");
    settings.versions = versions;
    settings.ima_log = ima_log;
    settings.mb_log = mb_log;
    // payload keys and delivery: the secure tmpfs is
    // mounted before privileges are dropped
    let delivery = payload_delivery(c)?;
    settings.revocations = crate::revocation::handling(
        c.revocation.clone(),
        delivery.secure.as_ref().map(|s| s.path().join("unzipped")),
        c.keylime_dir.clone(),
    );
    settings.payload_keys = Some(Arc::new(KeyBootstrap::new(
        payload,
        state.agent_id.clone(),
        delivery,
    )));
    super::lock_down(c)?;
    log::info!(
        "serving the Keylime agent API on {}://{listen} as agent {}",
        if settings.tls.is_some() {
            "https"
        } else {
            "http"
        },
        state.agent_id
    );
    let tls_files = TlsFiles {
        server_cert: c.server_cert.clone(),
        server_key: c.server_key.clone(),
        trusted_client_ca: c.trusted_client_ca.clone(),
    };
    let serving = Serving {
        listener,
        identity: identity_listeners,
        settings,
        service,
        tls_files: Some(tls_files),
    };
    serve(serving, shutdown_signal()).await;
    Ok(())
}

type Prepared = (Handle, AgentState, Option<(ServerTls, String)>, PayloadKey);

/// The identity, the AK and the software keys, made off the async thread
/// (an RSA AK takes seconds on a discrete TPM); `tpm` comes back with the AK
/// loaded and owned.
async fn prepare(
    c: &AgentConfig,
    tpm: TpmBox,
    objects: &TpmObjects,
) -> Result<(TpmBox, Prepared), StartError> {
    let (c, objects) = (c.clone(), objects.clone());
    blocking("prepare the keys", move || {
        let mut tpm = tpm;
        let (ak, state, identity) = prepare_ak(&c, &mut tpm, &objects)?;
        let payload = load_or_create_payload_key(&c.payload_key, &c.payload_key_password)
            .map_err(StartError::Keys)?;
        let tls = if c.enable_agent_mtls {
            let cert_pem = load_or_create_mtls(
                &c.server_key,
                &c.server_cert,
                &c.server_key_password,
                identity.id.as_str(),
                &c.contact_ip,
            )
            .map_err(StartError::Keys)?;
            let files = TlsFiles {
                server_cert: c.server_cert.clone(),
                server_key: c.server_key.clone(),
                trusted_client_ca: c.trusted_client_ca.clone(),
            };
            Some((
                ServerTls::from_files(&files).map_err(StartError::Tls)?,
                cert_pem,
            ))
        } else {
            log::warn!(
                "enable_agent_mtls is off: serving plain HTTP (the verifier must have enable_agent_mtls = False)"
            );
            None
        };
        // On an error the AK is flushed with the box that owns it, here.
        Ok((tpm, (ak, state, tls, payload)))
    })
    .await
}

/// Where payloads go: the secure directory when payloads
/// are accepted (mTLS on, or `enable_insecure_payload`), else nowhere (and
/// always nowhere in a build without the payload feature).
fn payload_delivery(c: &AgentConfig) -> Result<Delivery, StartError> {
    let accepted = c.enable_agent_mtls || c.payload.enable_insecure_payload;
    let secure = if !cfg!(feature = "payload") {
        log::info!("this keylet was built without the payload feature: payloads are refused");
        None
    } else if accepted {
        let dir = SecureDir::prepare(&c.keylime_dir, &c.payload.secure_size, c.run_as.as_ref())
            .map_err(|e| StartError::Io {
                what: "prepare the secure directory for payloads",
                detail: e.to_string(),
            })?;
        Some(dir)
    } else {
        log::warn!(
            "mTLS is off: payloads from the tenant are refused (set enable_insecure_payload = \
             true to accept them over plain HTTP)"
        );
        None
    };
    Ok(Delivery {
        config: c.payload.clone(),
        secure,
    })
}

//! `keylet run`: start-up in order, then serve until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet_core::tpm::Handle;

use super::clock_lease::{self, ClockLease};
use super::keys::{self, TpmObjects};
use super::register::{RegisterInput, register_and_activate};
use super::serve::{Serving, attestation, serve, server_settings};
use super::{StartError, TpmBox, choose_device, identity};
use crate::config::{AgentConfig, Loaded};
use crate::keys::{PayloadKey, load_or_create_mtls, load_or_create_payload_key};
use crate::logs::{ImaLog, MeasuredBootLog};
use crate::metrics::Metrics;
use crate::payload::{Delivery, KeyBootstrap, SecureDir};
use crate::registrar::{Registrar, Registration};
use crate::server::{self, ApiVersion, ServerTls, TlsFiles};
use crate::state::AgentState;

/// Resolves when SIGTERM or SIGINT arrives.
pub(super) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("cannot install signal handlers; stop keylet with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => log::info!("SIGTERM: stopping"),
        _ = int.recv() => log::info!("SIGINT: stopping"),
    }
}

pub(super) fn open_logs(c: &AgentConfig) -> (Option<Arc<ImaLog>>, Option<Arc<MeasuredBootLog>>) {
    let ima = match ImaLog::open(&c.ima_ml_path) {
        Ok(log) => Some(Arc::new(log)),
        Err(e) => {
            log::warn!("no IMA measurement list ({e}); quotes of PCR 10 will carry no log");
            None
        }
    };
    let mb = match MeasuredBootLog::open(&c.measuredboot_ml_path) {
        Ok(log) => Some(Arc::new(log)),
        Err(e) => {
            log::info!("no measured-boot log ({e})");
            None
        }
    };
    (ima, mb)
}

/// Opens the configured TPM, timed by `metrics`, flushes what an earlier
/// process left and makes an unsafe clock safe if configured to.
pub(super) fn open_tpm(
    c: &AgentConfig,
    metrics: Option<&Arc<Metrics>>,
) -> Result<TpmBox, StartError> {
    let device = choose_device(c.tpm_device.as_ref().map(|(s, _)| s.as_str()))
        .map_err(StartError::Device)?;
    let mut tpm = TpmBox::open(device).map_err(StartError::Open)?;
    if let Some(m) = metrics {
        tpm.set_metrics(Arc::clone(m)); // metrics: TPM command latency
    }
    log::info!("TPM: {}", tpm.device());
    tpm.set_clock_lease(ClockLease::load(c.keylime_dir.join(clock_lease::FILE_NAME)));
    match tpm.tpm().flush_leftovers() {
        Ok(0) => {}
        Ok(n) => log::warn!("flushed {n} TPM objects or sessions left by an earlier process"),
        Err(e) => log::warn!("could not look for leftover TPM objects: {e}"),
    }
    super::clock::ensure_safe(
        &mut tpm,
        c.tpm_clock_repair.then_some(c.tpm_ownerpassword.as_slice()),
    );
    Ok(tpm)
}

/// Runs the agent until a stop signal.
///
/// # Errors
///
/// [`StartError`] naming the step that failed. The TPM objects keylet
/// created are flushed on every path: the [`TpmBox`] owning them flushes
/// them when dropped.
pub async fn run(loaded: Loaded) -> Result<(), StartError> {
    for w in &loaded.warnings {
        log::warn!("{w}");
    }
    let c = &loaded.config;
    check_keylime_dir(c)?;
    // (a build without the push feature refuses attestation_mode = "push")
    #[cfg(feature = "push")]
    if c.push.mode == crate::config::AttestationMode::Push {
        return super::push::run_push(c).await;
    }
    run_pull(c, SocketAddr::new(c.ip, c.port)).await
}

/// keylime_dir must exist: state and keys go there.
fn check_keylime_dir(c: &AgentConfig) -> Result<(), StartError> {
    if !c.keylime_dir.is_dir() {
        return Err(StartError::Io {
            what: "use keylime_dir",
            detail: format!(
                "{} does not exist or is not a directory; create it (mode 0700, owned by the user \
                 keylet runs as) or set keylime_dir",
                c.keylime_dir.display()
            ),
        });
    }
    Ok(())
}

/// What both attestation models open the same way, in this order.
pub(super) struct Opened {
    /// The identity listener for SPIRE, bound before privileges are dropped.
    pub(super) identity_listeners: server::IdentityListeners,
    pub(super) metrics: Option<Arc<Metrics>>,
    /// Serves metrics until it is dropped.
    pub(super) _metrics_server: Option<crate::metrics::MetricsServer>,
    pub(super) tpm: TpmBox,
    pub(super) ima_log: Option<Arc<ImaLog>>,
    pub(super) mb_log: Option<Arc<MeasuredBootLog>>,
    /// The EK (owned by `tpm` when transient).
    pub(super) objects: TpmObjects,
}

/// Binds the identity listener, starts metrics, opens the TPM and the logs and
/// loads the EK: the start-up both models share.
pub(super) async fn open_common(c: &AgentConfig) -> Result<Opened, StartError> {
    let identity_listeners = server::IdentityListeners::bind(&c.identity)
        .await
        .map_err(|e| StartError::Io {
            what: "start the identity listener",
            detail: e.to_string(),
        })?;
    let (metrics, _metrics_server) =
        crate::metrics::start(c).await.map_err(|e| StartError::Io {
            what: "serve metrics",
            detail: e.to_string(),
        })?;
    let mut tpm = open_tpm(c, metrics.as_ref())?;
    let (ima_log, mb_log) = open_logs(c);
    let objects = keys::endorsement(&mut tpm, c.tpm_encryption_alg, c.ek_handle)?;
    if objects.ek_transient {
        tpm.own(objects.ek);
    }
    Ok(Opened {
        identity_listeners,
        metrics,
        _metrics_server,
        tpm,
        ima_log,
        mb_log,
        objects,
    })
}

/// Runs the pull model: listen, TPM, keys, register, serve.
async fn run_pull(c: &AgentConfig, listen: SocketAddr) -> Result<(), StartError> {
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
        mut tpm,
        ima_log,
        mb_log,
        objects,
    } = open_common(c).await?;
    let (ak, state, settings_tls, payload) = prepare(c, &mut tpm, &objects).await?;
    let registered = tokio::select! {
        r = register(c, &mut tpm, &objects, &state, ak, settings_tls.as_ref().map(|(_, pem)| pem.as_str())) => r,
        () = shutdown_signal() => return Ok(()),
    };
    if objects.ek_transient {
        tpm.release(objects.ek);
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
    let mut settings = server_settings(c, listen, settings_tls.map(|(tls, _)| tls), metrics);
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
    serve(serving, shutdown_signal()).await
}

type Prepared = (Handle, AgentState, Option<(ServerTls, String)>, PayloadKey);

/// The agent id and the AK (loaded, owned by `tpm`, saved in the state).
pub(super) fn prepare_ak(
    c: &AgentConfig,
    tpm: &mut TpmBox,
    objects: &TpmObjects,
) -> Result<(Handle, AgentState, identity::Identity), StartError> {
    crate::state::remove_stale_temporaries(c);
    let state = AgentState::load(&c.agent_data_path).map_err(StartError::State)?;
    let identity = identity::resolve(&c.uuid, &objects.ek_public, state.as_ref())
        .map_err(StartError::Identity)?;
    let (ak, state, changed) = keys::attestation_key(
        tpm,
        objects,
        state,
        &identity,
        c.tpm_encryption_alg,
        c.tpm_hash_alg,
        &c.agent_data_path,
    )?;
    tpm.own(ak);
    if changed {
        // On an error the AK is flushed with the box that owns it.
        state.save(&c.agent_data_path).map_err(StartError::State)?;
    }
    Ok((ak, state, identity))
}

/// The identity, the AK and the software keys.
async fn prepare(
    c: &AgentConfig,
    tpm: &mut TpmBox,
    objects: &TpmObjects,
) -> Result<Prepared, StartError> {
    let (ak, state, identity) = prepare_ak(c, tpm, objects)?;
    let finish = (|| {
        let payload = load_or_create_payload_key(&c.payload_key, &c.payload_key_password)
            .map_err(StartError::Keys)?;
        let tls = if c.enable_agent_mtls {
            let mtls = load_or_create_mtls(
                &c.server_key,
                &c.server_cert,
                &c.server_key_password,
                identity.id.as_str(),
                &c.contact_ip,
            )
            .map_err(StartError::Keys)?;
            let files = TlsFiles {
                server_cert: mtls.cert_path.clone(),
                server_key: mtls.key_path.clone(),
                trusted_client_ca: c.trusted_client_ca.clone(),
            };
            Some((
                ServerTls::from_files(&files).map_err(StartError::Tls)?,
                mtls.cert_pem,
            ))
        } else {
            log::warn!(
                "enable_agent_mtls is off: serving plain HTTP (the verifier must have enable_agent_mtls = False)"
            );
            None
        };
        Ok((tls, payload))
    })();
    // On an error the AK is flushed with the box that owns it.
    finish.map(|(tls, payload)| (ak, state, tls, payload))
}

/// Registers and activates `state`'s AK under `objects`' EK with `mtls_cert`
/// (`None`: mTLS disabled); returns the API version registered with (the
/// registrar's own, when keylet has it).
pub(crate) async fn register(
    c: &AgentConfig,
    tpm: &mut TpmBox,
    objects: &TpmObjects,
    state: &AgentState,
    ak: Handle,
    mtls_cert: Option<&str>,
) -> Result<(u8, u8), StartError> {
    let registrar = if c.registrar_tls_enabled {
        Registrar::tls(
            &c.registrar_ip,
            c.registrar_tls_port,
            &c.registrar_tls_ca_cert,
        )
        .map_err(StartError::Registrar)?
    } else {
        Registrar::plain(&c.registrar_ip, c.registrar_port)
    };
    // The IAK and IDevID are checked against their certificates before the
    // registrar is contacted.
    let device = match &c.device_id {
        Some(settings) => Some(super::device_id::load(tpm, settings)?),
        None => None,
    };
    let aik = STANDARD.encode(&state.ak_public);
    let ek = STANDARD.encode(&objects.ek_public);
    let input = RegisterInput {
        id: &state.agent_id,
        versions: &c.api_versions,
        registration: Registration {
            aik_tpm: &aik,
            ek_tpm: &ek,
            ekcert: objects.ek_cert_pem.as_deref(),
            mtls_cert: mtls_cert.unwrap_or("disabled"),
            ip: &c.contact_ip,
            port: c.contact_port,
            device_id: None,
        },
        ak,
        ek: objects.ek,
        ak_public: &state.ak_public,
        device: device.as_ref(),
    };
    register_and_activate(&registrar, c.backoff, tpm, &input).await
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

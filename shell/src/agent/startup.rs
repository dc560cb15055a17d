//! The start-up that pull and push mode share, in order: the keylime_dir,
//! the identity listener, metrics, the TPM (leftovers flushed, the clock made
//! safe), the logs, the EK, the agent id and the AK, and the registration;
//! and the stop signal both wait for.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet_core::tpm::Handle;

use super::clock_lease::{self, ClockLease};
use super::keys::{self, TpmObjects};
use super::register::{RegisterInput, register_and_activate};
use super::{StartError, TpmBox, choose_device, identity};
use crate::config::AgentConfig;
use crate::logs::{ImaLog, MeasuredBootLog};
use crate::metrics::Metrics;
use crate::registrar::{Registrar, Registration};
use crate::server;
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

fn open_logs(c: &AgentConfig) -> (Option<Arc<ImaLog>>, Option<Arc<MeasuredBootLog>>) {
    let ima = ImaLog::open(&c.ima_ml_path)
        .inspect_err(|e| {
            log::warn!("no IMA measurement list ({e}); quotes of PCR 10 will carry no log");
        })
        .ok()
        .map(Arc::new);
    let mb = MeasuredBootLog::open(&c.measuredboot_ml_path)
        .inspect_err(|e| log::info!("no measured-boot log ({e})"))
        .ok()
        .map(Arc::new);
    (ima, mb)
}

/// Opens the configured TPM, timed by `metrics`, flushes what an earlier
/// process left and makes an unsafe clock safe if configured to.
fn open_tpm(c: &AgentConfig, metrics: Option<&Arc<Metrics>>) -> Result<TpmBox, StartError> {
    let device = choose_device(c.tpm_device.as_ref().map(|(s, _)| s.as_str()))
        .map_err(StartError::Device)?;
    let mut tpm = TpmBox::open(device).map_err(StartError::Open)?;
    tpm.set_endorsement_password(&c.tpm_ownerpassword);
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

/// Runs a blocking start-up step (TPM commands, which take seconds on a
/// discrete TPM; software key generation) on tokio's blocking thread, so
/// that the async thread goes on serving metrics meanwhile.
pub(super) async fn blocking<R: Send + 'static>(
    what: &'static str,
    step: impl FnOnce() -> Result<R, StartError> + Send + 'static,
) -> Result<R, StartError> {
    tokio::task::spawn_blocking(step)
        .await
        .map_err(|e| StartError::Io {
            what,
            detail: e.to_string(),
        })?
}

/// keylime_dir must exist: state and keys go there.
pub(super) fn check_keylime_dir(c: &AgentConfig) -> Result<(), StartError> {
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
    let (config, timed) = (c.clone(), metrics.clone());
    let (tpm, objects) = blocking("open the TPM", move || {
        let mut tpm = open_tpm(&config, timed.as_ref())?;
        let objects = keys::endorsement(&mut tpm, config.tpm_encryption_alg, config.ek_handle)?;
        if objects.ek_transient {
            tpm.own(objects.ek.handle);
        }
        Ok((tpm, objects))
    })
    .await?;
    let (ima_log, mb_log) = open_logs(c);
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
    let registrar = Registrar::configured(c).map_err(StartError::Registrar)?;
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

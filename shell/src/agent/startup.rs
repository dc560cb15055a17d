//! `keylet run`, the composition root: the configuration's warnings, the
//! keylime_dir, then pull mode (`pull.rs`) or push mode (`push.rs`), two
//! siblings built on the start-up they share here, in order: the identity
//! listener, metrics, the TPM (leftovers flushed, the clock made safe), the
//! logs, the EK, the agent id and the AK; and the stop signal both wait for.

use keylet_core::tpm::transport::BlockOn as _;
use std::sync::Arc;

use keylet_core::tpm::Handle;

use super::clock::{self, ClockLease};
use super::identity;
use super::keys::{self, TpmObjects};
use super::register::register;
use super::{StartError, TpmBox};
use crate::config::{AgentConfig, Loaded};
use crate::logs::{ImaLog, MeasuredBootLog};
use crate::metrics::Metrics;
use crate::server;
use crate::state::AgentState;

/// Runs the agent until a stop signal. The TPM objects keylet created are
/// flushed on every path: the [`TpmBox`] owning them flushes them when dropped.
pub(crate) async fn run(loaded: Loaded) -> Result<(), StartError> {
    for w in &loaded.warnings {
        log::warn!("{w}");
    }
    let c = &loaded.config;
    // keylime_dir must exist: state and keys go there.
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
    // (a build without the push feature refuses attestation_mode = "push")
    #[cfg(feature = "push")]
    if c.push.mode == crate::config::AttestationMode::Push {
        return super::push::run_push(c).await;
    }
    super::pull::run_pull(c, std::net::SocketAddr::new(c.ip, c.port)).await
}

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

/// Runs a blocking start-up step (TPM commands, which take seconds on a
/// discrete TPM; software key generation) on tokio's blocking thread, so
/// that the async thread goes on serving metrics meanwhile.
pub(super) async fn blocking<R: Send + 'static>(
    what: &'static str,
    step: impl FnOnce() -> Result<R, StartError> + Send + 'static,
) -> Result<R, StartError> {
    tokio::task::spawn_blocking(step)
        .await
        .map_err(StartError::io(what))?
}

/// What both attestation models open the same way, in this order.
pub(super) struct Opened {
    /// The identity listener for SPIRE, bound before privileges are dropped.
    pub(super) identity_listeners: server::IdentityListeners,
    pub(super) metrics: Option<Arc<Metrics>>,
    /// Serves metrics until it is dropped.
    pub(super) _metrics_server: Option<crate::metrics::MetricsServer>,
    /// Owns the AK and (when transient) the EK.
    pub(super) tpm: TpmBox,
    pub(super) ima_log: Option<Arc<ImaLog>>,
    pub(super) mb_log: Option<Arc<MeasuredBootLog>>,
    pub(super) objects: TpmObjects,
    pub(super) ak: Handle,
    /// Saved with the AK.
    pub(super) state: AgentState,
}

/// Binds the identity listener, starts metrics, opens the TPM and the logs,
/// loads the EK, chooses the agent id and loads or creates the AK: the
/// start-up both models share. The TPM steps run off the async thread (an
/// RSA AK takes seconds on a discrete TPM).
pub(super) async fn open_common(c: &AgentConfig) -> Result<Opened, StartError> {
    let identity_listeners = server::IdentityListeners::bind(&c.identity)
        .await
        .map_err(StartError::io("start the identity listener"))?;
    let (metrics, _metrics_server) = crate::metrics::start(c)
        .await
        .map_err(StartError::io("serve metrics"))?;
    let (config, timed) = (c.clone(), metrics.clone());
    let (tpm, objects, ak, state) = blocking("open the TPM and prepare the AK", move || {
        let c = &config;
        let mut tpm = TpmBox::configured(c)?;
        if let Some(m) = timed {
            tpm.set_metrics(m); // metrics: TPM command latency
        }
        log::info!("TPM: {}", tpm.device());
        tpm.clock_lease = Some(ClockLease::load(
            c.keylime_dir.join(clock::FILE_NAME),
            c.tpm_clock_repair.then(|| c.tpm_ownerpassword.clone()),
        ));
        // what an earlier process left; then an unsafe clock is made safe if configured to
        match tpm.tpm().flush_leftovers().block_on() {
            Ok(0) => {}
            Ok(n) => log::warn!("flushed {n} TPM objects or sessions left by an earlier process"),
            Err(e) => log::warn!("could not look for leftover TPM objects: {e}"),
        }
        clock::ensure_safe(&mut tpm).block_on();
        let objects = keys::endorsement(&mut tpm, c.tpm_encryption_alg, c.ek_handle)?;
        crate::state::remove_stale_temporaries(c);
        let state = AgentState::load(&c.agent_data_path).map_err(StartError::Store)?;
        let identity = identity::resolve(&c.uuid, &objects.ek_public, state.as_ref())
            .map_err(StartError::Identity)?;
        let (ak, state, changed) = keys::attestation_key(
            &mut tpm,
            &objects,
            state,
            &identity,
            c.tpm_encryption_alg,
            c.tpm_hash_alg,
            &c.agent_data_path,
        )?;
        tpm.own(ak);
        if changed {
            // On an error the AK is flushed with the box that owns it.
            state.save(&c.agent_data_path).map_err(StartError::Store)?;
        }
        Ok((tpm, objects, ak, state))
    })
    .await?;
    Ok(Opened {
        identity_listeners,
        metrics,
        _metrics_server,
        tpm,
        ima_log: ImaLog::open(&c.ima_ml_path)
            .inspect_err(|e| {
                log::warn!("no IMA measurement list ({e}); quotes of PCR 10 will carry no log");
            })
            .ok()
            .map(Arc::new),
        mb_log: MeasuredBootLog::open(&c.measuredboot_ml_path)
            .inspect_err(|e| log::info!("no measured-boot log ({e})"))
            .ok()
            .map(Arc::new),
        objects,
        ak,
        state,
    })
}

/// Registers `o`'s AK (see [`register`]) with `mtls_cert`, then flushes a
/// transient EK; `Ok(None)` when a stop signal comes first. With `keep_trying`
/// (push mode) a registrar that cannot be reached is tried again after a
/// pause, however long it stays away.
pub(super) async fn register_or_stop(
    c: &AgentConfig,
    o: &mut Opened,
    mtls_cert: Option<&str>,
    keep_trying: bool,
) -> Result<Option<(u8, u8)>, StartError> {
    let rounds = async {
        loop {
            match register(c, &mut o.tpm, &o.objects, &o.state, o.ak, mtls_cert).await {
                Err(StartError::Registrar(e)) if keep_trying && e.is_transient() => {
                    let pause = c.backoff.initial.max(std::time::Duration::from_secs(1));
                    log::warn!(
                        "registration failed: {e}; push mode keeps trying, next round in {:.1}s",
                        pause.as_secs_f32()
                    );
                    tokio::time::sleep(pause).await;
                }
                other => break other,
            }
        }
    };
    let registered = tokio::select! {
        r = rounds => r,
        () = shutdown_signal() => return Ok(None),
    };
    if o.objects.ek_transient {
        o.tpm.release(o.objects.ek.handle).block_on();
    }
    let api = registered?;
    if let Some(m) = &o.metrics {
        m.set_registered(true); // metrics: registration state
    }
    Ok(Some(api))
}

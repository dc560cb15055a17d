//! After registration: the quote service and the server settings built from
//! the configuration, and serving until a stop signal (pull mode) or the
//! push loop's end (push mode). Stopping is bounded even while a TPM command
//! hangs: a short grace for open requests, the AK flushed with a bounded
//! wait, then out.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::TpmAttestation;
use crate::config::AgentConfig;
use crate::logs::read_boottime;
use crate::metrics::Metrics;
use crate::server::{self, ApiVersions, IdentityListeners, ServerSettings, ServerTls};

/// How long the stop waits for the TPM to flush the AK.
pub const FLUSH_WAIT: Duration = Duration::from_millis(300);

/// The server settings for `c` with `tls` (`None`: plain HTTP) and
/// `metrics`; logs and payload keys are the caller's.
#[must_use]
pub fn server_settings(
    c: &AgentConfig,
    tls: Option<ServerTls>,
    metrics: Option<Arc<Metrics>>,
) -> ServerSettings {
    ServerSettings {
        tls,
        versions: ApiVersions::from_config(&c.api_versions),
        boottime: read_boottime().ok(),
        metrics, // metrics: quotes by endpoint and result
        ..ServerSettings::default()
    }
}

/// Serves the agent API on `listener` (none in push mode) and the SPIRE
/// `identity` listeners (may be none), reloading the TLS files, with the TPM's
/// commands waiting on this runtime where the link allows it, until `stop`
/// completes (push mode: the push loop, which ends at a stop signal); then
/// drops the TPM jobs still queued (a queue of quotes on a slow chip would
/// outlast the grace), lets open requests run on for at most the settings'
/// `shutdown_grace` (the TPM job running then finishes) and flushes the AK
/// as the last TPM job, waiting at most [`FLUSH_WAIT`].
pub async fn serve(
    listener: Option<TcpListener>,
    identity: IdentityListeners,
    settings: ServerSettings,
    service: Arc<TpmAttestation>,
    stop: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = settings.tpm_worker.clone();
    if service.watch() {
        worker.as_tasks(); // the TPM's commands wait on this runtime
    }
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopping| *stopping).await;
    };
    // Certificates without downtime: watch the TLS files, reload on SIGHUP.
    let reloader = settings.tls.clone().map(|tls| {
        tokio::spawn(server::reload::TlsReloader::new(tls).run(server::reload::DEFAULT_POLL))
    });
    // The identity listener for SPIRE: same service, so quotes queue on one TPM.
    let mut identity = (!identity.is_empty()).then(|| {
        tokio::spawn(server::serve_identity(
            identity,
            settings.clone(),
            Arc::clone(&service) as Arc<dyn server::Attestation>,
            Box::pin(stopped(stop_rx.clone())),
        ))
    });
    let main = async {
        match listener {
            Some(listener) => {
                let service = Arc::clone(&service) as Arc<dyn server::Attestation>;
                server::serve_on(listener, settings, service, stopped(stop_rx)).await;
            }
            None => stopped(stop_rx).await,
        }
    };
    tokio::pin!(main);
    tokio::select! {
        () = &mut main => {}
        () = stop => {
            worker.stop();
            // Ignore the error: it only means every server has ended.
            let _ = stop_tx.send(true);
            // Each server lets its open requests run on for its
            // `Limits::shutdown_grace` (1 s) at most.
            (&mut main).await;
            if let Some(task) = identity.as_mut() {
                let _ = task.await;
            }
        }
    }
    for task in [reloader, identity].into_iter().flatten() {
        task.abort();
    }
    worker.stop(); // when the servers ended by themselves
    TpmAttestation::shutdown(&service, &worker, FLUSH_WAIT).await;
}

//! `keylet run` in push mode (`attestation_mode = "push"`): the same TPM,
//! keys and registration as pull mode, then the push loop instead of the
//! agent API. No port is opened for the verifier; only the metrics and the
//! SPIRE identity listener, when configured, listen.

use std::sync::Arc;

use keylet_core::alg::KeyAlg;
use keylet_core::pcr::HashAlg;

use super::serve::{FLUSH_WAIT, attestation, server_settings};
use super::startup::{Opened, blocking, open_common, prepare_ak, register, shutdown_signal};
use super::{StartError, TpmAttestation};
use crate::config::AgentConfig;
use crate::keys::load_or_create_payload_key;
use crate::push::client::Verifier;
use crate::push::evidence::{self, Sources};
use crate::push::{self, PushAgent};
use crate::server;

/// Where the boot time used in push mode is kept (with the boot id).
pub(crate) const BOOT_TIME_FILE: &str = "keylet-push-boot-time";

fn push_error(what: &'static str) -> impl Fn(push::PushError) -> StartError {
    move |e| StartError::Io {
        what,
        detail: e.to_string(),
    }
}

/// Runs the agent in push mode until a stop signal.
///
/// # Errors
///
/// [`StartError`] naming the start-up step that failed; once attesting,
/// keylet keeps trying whatever the verifier answers.
pub(crate) async fn run_push(c: &AgentConfig) -> Result<(), StartError> {
    if c.tpm_encryption_alg.ak_alg() != KeyAlg::Rsa2048 || c.tpm_hash_alg != HashAlg::Sha256 {
        log::warn!(
            "push mode with tpm_encryption_alg = {} and tpm_hash_alg = {}: the Keylime 7.14 \
             verifier checks the proof of possession with SHA-256 and RSASSA only, so \
             authentication will fail; use rsa and sha256",
            c.tpm_encryption_alg,
            c.tpm_hash_alg
        );
    }
    // Fail early on an unusable CA file (the agent id comes later).
    Verifier::new(&c.push, "-").map_err(push_error("use verifier_tls_ca_cert"))?;
    let Opened {
        identity_listeners,
        metrics,
        _metrics_server,
        tpm,
        ima_log: ima,
        mb_log: uefi,
        objects,
    } = open_common(c).await?;
    // Off the async thread: an RSA AK takes seconds on a discrete TPM.
    let (config, ek) = (c.clone(), objects.clone());
    let (mut tpm, ak, state) = blocking("prepare the AK", move || {
        let mut tpm = tpm;
        let (ak, state, _) = prepare_ak(&config, &mut tpm, &ek)?;
        Ok((tpm, ak, state))
    })
    .await?;
    // No mTLS certificate: nobody connects to keylet in push mode. A push
    // agent keeps trying to register, as the reference push agent does: a
    // registrar down for longer than the backoff's retries (hosts booting
    // before their services, a maintenance window) delays attestation
    // without ending it. A refusal (4xx) still ends it.
    let registered = loop {
        let attempt = tokio::select! {
            r = register(c, &mut tpm, &objects, &state, ak, None) => r,
            () = shutdown_signal() => return Ok(()),
        };
        match attempt {
            Err(StartError::Registrar(e)) if e.is_transient() => {
                let pause = c.backoff.initial.max(std::time::Duration::from_secs(1));
                log::warn!(
                    "registration failed: {e}; push mode keeps trying, next round in {:.1}s",
                    pause.as_secs_f32()
                );
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown_signal() => return Ok(()),
                }
            }
            other => break other,
        }
    };
    if objects.ek_transient {
        tpm.release(objects.ek.handle);
    }
    registered?;
    if let Some(m) = &metrics {
        m.set_registered(true);
    }
    // PCR 16 is bound to the payload key only in identity quotes for SPIRE.
    let payload_pem = if identity_listeners.is_empty() {
        String::new()
    } else {
        load_or_create_payload_key(&c.payload_key, &c.payload_key_password)
            .map_err(StartError::Keys)?
            .public_pem()
            .to_string()
    };
    let service = Arc::new(attestation(c, tpm, ak, &state, payload_pem));
    let sources = Sources {
        ima,
        uefi,
        boot_time: evidence::boot_time(&c.keylime_dir.join(BOOT_TIME_FILE))
            .map_err(push_error("read the boot time"))?,
        uefi_version: c.push.uefi_logs_evidence_version.clone(),
        server_identifier: c.push.server_identifier.clone(),
    };
    // One TPM worker for the push loop and the identity listener.
    let settings = server_settings(c, None, metrics.clone());
    let worker = settings.tpm_worker.clone();
    let agent = PushAgent {
        verifier: Verifier::new(&c.push, &state.agent_id)
            .map_err(push_error("use verifier_tls_ca_cert"))?,
        tpm: Arc::clone(&service) as Arc<dyn server::Attestation>,
        worker: worker.clone(),
        sources,
        fallback: c.push.attestation_interval,
        metrics: metrics.clone(),
    };
    super::lock_down(c)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let identity = (!identity_listeners.is_empty()).then(|| {
        let mut rx = stop_rx.clone();
        tokio::spawn(server::serve_identity(
            identity_listeners,
            settings,
            Arc::clone(&service) as Arc<dyn server::Attestation>,
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        ))
    });
    agent.run(shutdown_signal()).await;
    let _ = stop_tx.send(true);
    if let Some(task) = identity {
        task.abort();
    }
    worker.stop();
    TpmAttestation::shutdown(&service, FLUSH_WAIT);
    Ok(())
}

//! `keylet run` in push mode (`attestation_mode = "push"`): the same TPM,
//! keys and registration as pull mode, then the push loop instead of the
//! agent API. No port is opened for the verifier; only the metrics and the
//! SPIRE identity listener, when configured, listen.

use std::sync::Arc;

use keylet_core::alg::KeyAlg;
use keylet_core::pcr::HashAlg;

use super::StartError;
use super::serve::{serve, server_settings};
use super::service::attestation;
use super::startup::{open_common, register_or_stop, shutdown_signal};
use crate::config::AgentConfig;
use crate::keys::load_or_create_payload_key;
use crate::push::PushAgent;
use crate::push::client::Verifier;
use crate::push::evidence::{self, Sources};
use crate::server;

/// Where the boot time used in push mode is kept (with the boot id).
pub(crate) const BOOT_TIME_FILE: &str = "keylet-push-boot-time";

/// Runs the agent in push mode until a stop signal: errors are of start-up;
/// once attesting, keylet keeps trying whatever the verifier answers.
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
    let mut verifier =
        Verifier::new(&c.push, "-").map_err(StartError::io("use verifier_tls_ca_cert"))?;
    let mut o = open_common(c).await?;
    // No mTLS certificate: nobody connects to keylet in push mode. A push
    // agent keeps trying to register, as the reference push agent does: a
    // registrar down for longer than the backoff's retries (hosts booting
    // before their services, a maintenance window) delays attestation
    // without ending it. A refusal (4xx) still ends it.
    if register_or_stop(c, &mut o, None, true).await?.is_none() {
        return Ok(());
    }
    // PCR 16 is bound to the payload key only in identity quotes for SPIRE.
    let payload_pem = if o.identity_listeners.is_empty() {
        String::new()
    } else {
        load_or_create_payload_key(&c.payload_key, &c.payload_key_password)
            .map_err(StartError::Store)?
            .public_pem()
            .to_string()
    };
    let service = Arc::new(attestation(c, o.tpm, o.ak, &o.state, payload_pem));
    let sources = Sources {
        ima: o.ima_log,
        uefi: o.mb_log,
        boot_time: evidence::boot_time(&c.keylime_dir.join(BOOT_TIME_FILE))
            .map_err(StartError::io("read the boot time"))?,
        uefi_version: c.push.uefi_logs_evidence_version.clone(),
        server_identifier: c.push.server_identifier.clone(),
    };
    // One TPM worker for the push loop and the identity listener.
    let settings = server_settings(c, None, o.metrics.clone());
    verifier.agent_id.clone_from(&o.state.agent_id);
    let agent = PushAgent {
        verifier,
        tpm: Arc::clone(&service) as Arc<dyn server::Attestation>,
        worker: settings.tpm_worker.clone(),
        sources,
        fallback: c.push.attestation_interval,
        metrics: o.metrics,
    };
    super::lock_down(c)?;
    // No agent API: the identity listener, if any, runs until the push loop ends.
    let pushing = agent.run(shutdown_signal());
    serve(None, o.identity_listeners, settings, service, pushing).await;
    Ok(())
}

//! Registration and activation at the registrar, with capped exponential
//! backoff while it is unreachable.

use keylet_core::tpm::transport::BlockOn as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet_core::keylime::{auth_tag, credential};
use keylet_core::tpm::Handle;
use zeroize::Zeroizing;

use super::StartError;
use super::keys::TpmObjects;
use super::tpm_box::TpmBox;
use crate::backoff;
use crate::config::{AgentConfig, Backoff};
use crate::registrar::{Registrar, RegistrarError, Registration};
use crate::state::AgentState;

/// Retries `op` with capped exponential backoff while it fails transiently.
async fn with_backoff<T>(
    backoff: Backoff,
    what: &str,
    mut op: impl AsyncFnMut() -> Result<T, RegistrarError>,
) -> Result<T, RegistrarError> {
    let floor = Duration::from_millis(100);
    let mut pauses =
        backoff::Backoff::exact(backoff.initial.max(floor), backoff.max_delay.max(floor));
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && pauses.failures() < backoff.max_retries => {
                let delay = pauses.pause();
                log::warn!(
                    "{what}: {e}; retry {} of {} in {:.1}s",
                    pauses.failures(),
                    backoff.max_retries,
                    delay.as_secs_f32()
                );
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Registers `state`'s AK (loaded as `ak`) under `objects`' EK with
/// `mtls_cert` (`None`: mTLS disabled), activates the credential with the TPM
/// and activates at the registrar; returns the API version registered with
/// (the registrar's own, when keylet has it). The IAK and IDevID are checked
/// against their certificates before the registrar is contacted.
pub(crate) async fn register(
    c: &AgentConfig,
    tpm: &mut TpmBox,
    objects: &TpmObjects,
    state: &AgentState,
    ak: Handle,
    mtls_cert: Option<&str>,
) -> Result<(u8, u8), StartError> {
    let registrar = Registrar::configured(c).map_err(StartError::Registrar)?;
    // (a build without the iak feature refuses enable_iak_idevid)
    #[cfg(feature = "iak")]
    let mut device = match &c.device_id {
        Some(settings) => Some(super::device_id::load(tpm, settings)?),
        None => None,
    };
    let (id, backoff) = (state.agent_id.as_str(), c.backoff);
    #[cfg_attr(not(feature = "iak"), allow(unused_mut))]
    let mut registration = Registration {
        aik_tpm: &STANDARD.encode(&state.ak_public),
        ek_tpm: &STANDARD.encode(&objects.ek_public),
        ekcert: objects.ek_cert_pem.as_deref(),
        mtls_cert: mtls_cert.unwrap_or("disabled"),
        ip: &c.contact_ip,
        port: c.contact_port,
        device_id: None,
    };
    let api = with_backoff(backoff, "asking the registrar for its version", || {
        registrar.negotiate(&c.api_versions)
    })
    .await;
    // A registrar that cannot be reached: a re-created IAK is flushed now,
    // not left loaded while push mode tries another round (which re-creates it).
    #[cfg(feature = "iak")]
    if let (Some(device), Err(_)) = (&mut device, &api) {
        device.release_iak(tpm);
    }
    let api = api.map_err(StartError::Registrar)?;
    let (major, minor) = api;
    log::info!(
        "registering agent {id} at {} (API {major}.{minor})",
        registrar.address()
    );
    #[cfg(feature = "iak")]
    if let Some(device) = &mut device {
        registration.device_id = Some(device.certify_ak(tpm, ak, &state.ak_public, id, api)?);
    }
    let device_certified = registration.device_id.is_some();
    let blob_b64 = with_backoff(backoff, "registering", || {
        registrar.register(api, id, &registration)
    })
    .await
    .map_err(|e| match e {
        RegistrarError::Status {
            status: 400,
            message,
            ..
        } if device_certified => StartError::DeviceId(format!(
            "the registrar refused the registration with the IAK and IDevID (400: {message}). \
             Check on the registrar: that the CA that issued iak_cert and idevid_cert is in its \
             trust store (the tpm_cert_store directory of the [tenant] section of its \
             configuration; the CA must be the certificates' direct issuer), and its log, which \
             names the field it refused (iak_cert, idevid_cert, or aik_tpm when the IAK's \
             certification of the AK does not verify)"
        )),
        e => StartError::Registrar(e),
    })?;
    // Operators moving from the reference agent watch for these two lines
    // (keylime-tests greps them too): its words, kept.
    log::info!("SUCCESS: Agent {id} registered");
    let blob = STANDARD
        .decode(blob_b64.trim())
        .map_err(|e| StartError::Credential(format!("the blob is not base64: {e}")))?;
    let parts = credential::decode(&blob).map_err(|e| StartError::Credential(e.to_string()))?;
    let mut secret = Zeroizing::new([0u8; 128]);
    let n = tpm
        .tpm()
        .activate_credential(
            ak,
            objects.ek,
            parts.id_object,
            parts.encrypted_secret,
            secret.as_mut_slice(),
        )
        .block_on()
        .map_err(StartError::tpm("activate the registrar's credential"))?;
    let tag = auth_tag::auth_tag(secret.get(..n).unwrap_or(&[]), id)
        .map_err(|e| StartError::Credential(e.to_string()))?;
    with_backoff(backoff, "activating", || {
        registrar.activate(api, id, tag.as_str())
    })
    .await
    .map_err(StartError::Registrar)?;
    log::info!("SUCCESS: Agent {id} activated: it is registered and active");
    Ok(api)
}

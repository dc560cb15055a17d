//! `keylet rotate-cert`: a new mTLS server key and certificate, registered
//! with the registrar under the same agent id, EK and AK, and written
//! atomically (0600 key) over `server_key` / `server_cert`, the previous pair
//! kept as `*.old`. The verifier pins the certificate it got when the agent was
//! added, so this never happens silently: the command prints what the
//! operator must do next (SIGHUP keylet, then update the agent at the verifier).
//!
//! Nothing on disk changes unless the registrar accepted the new certificate.
//! The command opens the TPM (to prove the AK again: the registrar asks for a
//! new activation on every registration); with a TPM that serves one client at
//! a time (swtpm over TCP, `/dev/tpm0`) stop keylet first, with `/dev/tpmrm0`
//! it can run beside it.

use keylet_core::tpm::transport::BlockOn as _;
use std::path::{Path, PathBuf};

use keylet_core::keylime::hex;
use sha2::{Digest, Sha256};

use crate::agent::{self, StartError, TpmBox};
use crate::config::AgentConfig;
use crate::keys::{complete_pending, install_mtls, mtls_files, new_mtls_pem, parse_certs};
use crate::state::AgentState;
use crate::store::{self, StoreError};

/// Makes, registers and installs a new mTLS key and certificate; returns
/// what the operator must do next, as the command prints it.
///
/// Errors: What went wrong; on any error before the files are written they are left
/// as they were.
pub(crate) async fn rotate(c: &AgentConfig) -> Result<String, String> {
    if !c.enable_agent_mtls {
        return Err(
            "enable_agent_mtls is false: keylet serves plain HTTP and has no certificate \
             to rotate"
                .into(),
        );
    }
    let keys = |e: StoreError| e.to_string();
    // A rotation or first start that was interrupted is finished first, so
    // that the pair kept as *.old below is a matching one.
    complete_pending(&c.server_key, &c.server_cert).map_err(keys)?;
    let files = mtls_files(&c.server_key, &c.server_cert);
    store::remove_stale_temporaries(&files.each_ref().map(PathBuf::as_path));
    let path = c.agent_data_path.display();
    let state = AgentState::load(&c.agent_data_path)
        .map_err(|e| unchanged(StartError::Store(e)))?
        .ok_or_else(|| {
            format!(
                "no agent state at {path}: run keylet once (it registers and makes the \
                 certificate) first"
            )
        })?;
    let (key_pem, cert_pem) = new_mtls_pem(&state.agent_id, &c.contact_ip).map_err(keys)?;
    reregister(c, &state, &cert_pem).await?;
    let previous =
        install_mtls(&c.server_key, &c.server_cert, &key_pem, &cert_pem).map_err(keys)?;
    Ok(next_steps(
        &state.agent_id,
        &fingerprint(&cert_pem),
        &c.server_cert,
        previous,
    ))
}

/// A TPM, state or registrar step failed: nothing was written.
fn unchanged(e: StartError) -> String {
    format!("{e}; the certificate files were not changed")
}

/// Registers `state`'s AK with `cert_pem` and activates it again.
async fn reregister(c: &AgentConfig, state: &AgentState, cert_pem: &str) -> Result<(), String> {
    let mut tpm = TpmBox::configured(c).map_err(unchanged)?;
    let objects =
        agent::endorsement(&mut tpm, c.tpm_encryption_alg, c.ek_handle).map_err(unchanged)?;
    // The box owns a transient EK and flushes it when dropped, on every path.
    if objects.ek_public != state.ek_public {
        return Err(format!(
            "the agent state {} was made with another TPM's EK; start keylet once on this host \
             first",
            c.agent_data_path.display()
        ));
    }
    let ak = tpm
        .tpm()
        .load_ak(objects.ek, &state.ak_public, &state.ak_private)
        .block_on()
        .map_err(|e| unchanged(StartError::tpm("load the saved AK")(e)))?;
    tpm.own(ak);
    agent::register(c, &mut tpm, &objects, state, ak, Some(cert_pem))
        .await
        .map(|_| ())
        .map_err(unchanged)
}

fn fingerprint(cert_pem: &str) -> String {
    match parse_certs(cert_pem.as_bytes()).as_deref() {
        Ok([der, ..]) => hex::Lower(&Sha256::digest(der.as_ref())).to_string(),
        _ => "unknown".into(),
    }
}

/// What the operator must do after a rotation: the certificate of agent `id`
/// with fingerprint `fp` is at `cert`, the previous one kept as `previous`.
fn next_steps(id: &str, fp: &str, cert: &Path, previous: Option<PathBuf>) -> String {
    let previous = previous.map_or_else(String::new, |p| {
        format!(
            "The previous certificate and key are kept as {} (and the key's .old).\n",
            p.display()
        )
    });
    format!(
        "keylet: new mTLS certificate for agent {id} registered with the registrar and written to {cert}\n\
         SHA-256 fingerprint: {fp}\n\
         {previous}\
         The verifier still trusts the previous certificate (it pinned it when the agent was added).\n\
         Next:\n\
         \x20 1. make the running keylet serve the new certificate: send it SIGHUP\n\
         \x20    (systemctl reload keylet, or kill -HUP <pid>), or start it if it is stopped;\n\
         \x20 2. give the verifier the new certificate, with the options the agent was added with:\n\
         \x20    keylime_tenant -c update -u {id} [--runtime-policy ... --mb-policy ...]\n\
         \x20    (or keylime_tenant -c delete -u {id}, then -c add).\n\
         Between 1 and 2 the verifier's polls of this agent fail the TLS handshake.\n",
        cert = cert.display(),
    )
}

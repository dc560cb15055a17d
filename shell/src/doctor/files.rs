//! Checks: the key files (agent state with the AK, payload key, mTLS key and
//! certificate): present, mode 0600, usable, and the mTLS key matching its
//! certificate. Nothing is generated: missing files are reported.

use rustls::sign::CertifiedKey;

use super::report::{Finding, Outcome, fail, warn};
use crate::config::AgentConfig;
use crate::keys::{parse_certs, read_mtls, read_payload_key};
use crate::server::tls::parse_key;
use crate::state::AgentState;
use crate::store::StoreError;
use crate::tls;

/// A key file keylet cannot use; `invalid_fix` is what to do when it does not
/// hold what it should.
fn store_problem(e: &StoreError, invalid_fix: &str) -> Finding {
    let fix = match e {
        StoreError::TooOpen { path, .. } => format!(
            "chmod 600 {} (and chown it to the user keylet runs as)",
            path.display()
        ),
        StoreError::Invalid(..) => invalid_fix.into(),
        _ => "make the file readable by the user keylet runs as, or move it away".into(),
    };
    fail(e.to_string(), fix)
}

/// `keys.ak`, the agent state file (it holds the AK): loads it for the other checks.
pub(crate) fn agent_state(c: &AgentConfig) -> (Outcome, Option<AgentState>) {
    let path = c.agent_data_path.display();
    let fix = "move the file away, delete the agent at the registrar, and restart keylet";
    let state = match AgentState::load(&c.agent_data_path) {
        Ok(state) => state,
        Err(e) => return (Err(store_problem(&e, fix)), None),
    };
    let found = match &state {
        Some(s) => format!(
            "agent state {path}: mode 0600, {} AK of {}",
            s.key_alg, s.agent_id
        ),
        None => format!("no agent state at {path} yet: the AK is created at the first start"),
    };
    (Ok(found), state)
}

/// `keys.nk`, the payload key (NK): 0600, RSA-2048 PKCS#8, read as keylet reads it.
pub(crate) fn payload_key(c: &AgentConfig, registered: bool) -> Outcome {
    let path = c.payload_key.display();
    let fix = "restore the file, or move it away so keylet makes a new one";
    let key = read_payload_key(&c.payload_key).map_err(|e| store_problem(&e, fix))?;
    if key.is_some() {
        return Ok(format!("payload key {path}: mode 0600, RSA-2048"));
    }
    if !registered {
        return Ok(format!(
            "no payload key at {path} yet: made at the first start"
        ));
    }
    let fix = "keylet makes a new one at the next start; the verifier caches the old public key, \
               so re-add the agent (keylime_tenant -c update) afterwards, or restore the file";
    Err(warn(format!("payload key {path} is missing"), fix))
}

/// `keys.mtls`, the mTLS server key and certificate, read as keylet reads them: both or
/// neither, key 0600, matching.
pub(crate) fn mtls(c: &AgentConfig) -> Outcome {
    if !c.enable_agent_mtls {
        return Err(warn(
            "enable_agent_mtls is off: the agent API is served over plain HTTP",
            "turn enable_agent_mtls on unless the verifier is configured without agent mTLS",
        ));
    }
    let (key_path, cert_path) = (&c.server_key, &c.server_cert);
    let (key, cert) = (key_path.display(), cert_path.display());
    let fix = "restore the file, or move the key and certificate away so keylet makes both anew \
               (then keylime_tenant -c update for this agent: the verifier pins the certificate)";
    let Some((key_pem, cert_pem)) =
        read_mtls(key_path, cert_path).map_err(|e| store_problem(&e, fix))?
    else {
        let found = format!("no server key/certificate at {cert} yet: made at the first start");
        return Ok(found);
    };
    let certs = parse_certs(cert_pem.as_bytes()).map_err(|e| {
        fail(
            format!("{cert}: {e}"),
            "restore the server certificate (PEM)",
        )
    })?;
    let restore = "restore the unencrypted PKCS#8/SEC1/PKCS#1 key";
    let parsed = parse_key(key_path, &key_pem).map_err(|e| fail(e.to_string(), restore))?;
    CertifiedKey::from_der(certs, parsed, &tls::provider()).map_err(|e| {
        fail(
            format!("server key {key} and certificate {cert} do not belong together: {e}"),
            "restore the matching pair; a new pair needs keylime_tenant -c update afterwards",
        )
    })?;
    let found = format!("server key {key} (mode 0600) matches the certificate {cert}");
    Ok(found)
}

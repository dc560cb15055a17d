//! Checks: the key files (agent state with the AK, payload key, mTLS key and
//! certificate): present, mode 0600, usable, and the mTLS key matching its
//! certificate. Nothing is generated: missing files are reported.

use rsa::pkcs8::DecodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rustls::sign::CertifiedKey;

use super::report::{Finding, Outcome, fail, warn};
use crate::config::AgentConfig;
use crate::keys::read_certs;
use crate::server::tls::parse_key;
use crate::state::AgentState;
use crate::store::{self, StoreError};
use crate::tls;

fn store_problem(e: &StoreError) -> Finding {
    let fix = match e {
        StoreError::TooOpen { path, .. } => format!(
            "chmod 600 {} (and chown it to the user keylet runs as)",
            path.display()
        ),
        _ => "make the file readable by the user keylet runs as, or move it away".into(),
    };
    fail(e.to_string(), fix)
}

/// `keys.ak`, the agent state file (it holds the AK): loads it for the other checks.
pub(crate) fn agent_state(c: &AgentConfig) -> (Outcome, Option<AgentState>) {
    let path = c.agent_data_path.display();
    let state = match AgentState::load(&c.agent_data_path) {
        Ok(state) => state,
        Err(e @ StoreError::Invalid(..)) => {
            let fix = "move the file away, delete the agent at the registrar, and restart keylet";
            return (Err(fail(e.to_string(), fix)), None);
        }
        Err(e) => return (Err(store_problem(&e)), None),
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

/// `keys.nk`, the payload key (NK): 0600, RSA-2048 PKCS#8.
pub(crate) fn payload_key(c: &AgentConfig, registered: bool) -> Outcome {
    let path = c.payload_key.display();
    let Some(bytes) = store::read_private(&c.payload_key).map_err(|e| store_problem(&e))? else {
        if !registered {
            let found = format!("no payload key at {path} yet: made at the first start");
            return Ok(found);
        }
        let fix = "keylet makes a new one at the next start; the verifier caches the old public \
                   key, so re-add the agent (keylime_tenant -c update) afterwards, or restore \
                   the file";
        return Err(warn(format!("payload key {path} is missing"), fix));
    };
    let key = std::str::from_utf8(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|t| rsa::PrivateKey::from_pkcs8_pem(t).map_err(|e| e.to_string()))
        .map_err(|e| {
            fail(
                format!("payload key {path} is not a PKCS#8 RSA key: {e}"),
                "restore the file, or move it away so keylet makes a new one",
            )
        })?;
    let bits = key.size() * 8;
    if bits != 2048 {
        return Err(fail(
            format!("payload key {path} is RSA-{bits}, Keylime needs RSA-2048"),
            "move the file away; keylet makes a new RSA-2048 key at the next start",
        ));
    }
    Ok(format!("payload key {path}: mode 0600, RSA-2048"))
}

/// `keys.mtls`, the mTLS server key and certificate: both or neither, key 0600, matching.
pub(crate) fn mtls(c: &AgentConfig) -> Outcome {
    if !c.enable_agent_mtls {
        return Err(warn(
            "enable_agent_mtls is off: the agent API is served over plain HTTP",
            "turn enable_agent_mtls on unless the verifier is configured without agent mTLS",
        ));
    }
    let (key_path, cert_path) = (&c.server_key, &c.server_cert);
    let (key, cert) = (key_path.display(), cert_path.display());
    let key_pem = store::read_private(key_path).map_err(|e| store_problem(&e))?;
    let key_pem = match (key_pem, cert_path.exists()) {
        (Some(k), true) => k,
        (None, false) => {
            let found = format!("no server key/certificate at {cert} yet: made at the first start");
            return Ok(found);
        }
        (k, _) => {
            let (missing, present) = if k.is_none() {
                (&key, &cert)
            } else {
                (&cert, &key)
            };
            return Err(fail(
                format!("{missing} is missing while {present} exists"),
                "restore the missing file, or move the other away so keylet makes both anew \
                 (then keylime_tenant -c update for this agent: the verifier pins the certificate)",
            ));
        }
    };
    let certs =
        read_certs(cert_path).map_err(|e| fail(e, "restore the server certificate (PEM)"))?;
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

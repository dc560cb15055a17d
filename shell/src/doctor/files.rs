//! Checks: the key files (agent state with the AK, payload key, mTLS key and
//! certificate): present, mode 0600, usable, and the mTLS key matching its
//! certificate. Nothing is generated: missing files are reported.

use rsa::pkcs8::DecodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rustls::sign::CertifiedKey;

use super::certs::read_certs;
use super::report::Check;
use crate::config::AgentConfig;
use crate::server::tls::parse_key;
use crate::state::{AgentState, StateError};
use crate::store::{self, StoreError};
use crate::tls;

fn store_fix(e: &StoreError) -> String {
    match e {
        StoreError::TooOpen { path, .. } => format!(
            "chmod 600 {} (and chown it to the user keylet runs as)",
            path.display()
        ),
        _ => "make the file readable by the user keylet runs as, or move it away".into(),
    }
}

/// The agent state file (it holds the AK): loads it for the other checks.
pub(crate) fn agent_state(c: &AgentConfig) -> (Check, Option<AgentState>) {
    const NAME: &str = "keys.ak";
    let path = c.agent_data_path.display();
    let state = AgentState::load(&c.agent_data_path);
    let check = match &state {
        Ok(Some(s)) => Check::ok(
            NAME,
            format!(
                "agent state {path}: mode 0600, {} AK of {}",
                s.key_alg, s.agent_id
            ),
        ),
        Ok(None) => Check::ok(
            NAME,
            format!("no agent state at {path} yet: the AK is created at the first start"),
        ),
        Err(StateError::Store(e)) => Check::fail(NAME, e.to_string(), store_fix(e)),
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            "move the file away, delete the agent at the registrar, and restart keylet",
        ),
    };
    (check, state.ok().flatten())
}

/// The payload key (NK): 0600, RSA-2048 PKCS#8.
#[must_use]
pub(crate) fn payload_key(c: &AgentConfig, registered: bool) -> Check {
    const NAME: &str = "keys.nk";
    let path = &c.payload_key;
    let bytes = match store::read_private(path) {
        Ok(Some(b)) => b,
        Ok(None) if registered => {
            return Check::warn(
                NAME,
                format!("payload key {} is missing", path.display()),
                "keylet makes a new one at the next start; the verifier caches the old public \
                 key, so re-add the agent (keylime_tenant -c update) afterwards, or restore the file",
            );
        }
        Ok(None) => {
            return Check::ok(
                NAME,
                format!(
                    "no payload key at {} yet: made at the first start",
                    path.display()
                ),
            );
        }
        Err(e) => return Check::fail(NAME, e.to_string(), store_fix(&e)),
    };
    let parsed = std::str::from_utf8(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|t| rsa::PrivateKey::from_pkcs8_pem(t).map_err(|e| e.to_string()));
    match parsed {
        Ok(k) if k.size() == 256 => Check::ok(
            NAME,
            format!("payload key {}: mode 0600, RSA-2048", path.display()),
        ),
        Ok(k) => Check::fail(
            NAME,
            format!(
                "payload key {} is RSA-{}, Keylime needs RSA-2048",
                path.display(),
                k.size() * 8
            ),
            "move the file away; keylet makes a new RSA-2048 key at the next start",
        ),
        Err(e) => Check::fail(
            NAME,
            format!(
                "payload key {} is not a PKCS#8 RSA key: {e}",
                path.display()
            ),
            "restore the file, or move it away so keylet makes a new one",
        ),
    }
}

/// The mTLS server key and certificate: both or neither, key 0600, matching.
#[must_use]
pub(crate) fn mtls(c: &AgentConfig) -> Check {
    const NAME: &str = "keys.mtls";
    if !c.enable_agent_mtls {
        return Check::warn(
            NAME,
            "enable_agent_mtls is off: the agent API is served over plain HTTP",
            "turn enable_agent_mtls on unless the verifier is configured without agent mTLS",
        );
    }
    let (key_path, cert_path) = (&c.server_key, &c.server_cert);
    let key = match store::read_private(key_path) {
        Ok(k) => k,
        Err(e) => return Check::fail(NAME, e.to_string(), store_fix(&e)),
    };
    let cert_exists = cert_path.exists();
    let key = match (key, cert_exists) {
        (None, false) => {
            return Check::ok(
                NAME,
                format!(
                    "no server key/certificate at {} yet: made at the first start",
                    cert_path.display()
                ),
            );
        }
        (Some(_), false) | (None, true) => {
            let (missing, present) = if cert_exists {
                (key_path, cert_path)
            } else {
                (cert_path, key_path)
            };
            return Check::fail(
                NAME,
                format!(
                    "{} is missing while {} exists",
                    missing.display(),
                    present.display()
                ),
                "restore the missing file, or move the other away so keylet makes both anew \
                 (then keylime_tenant -c update for this agent: the verifier pins the certificate)",
            );
        }
        (Some(k), true) => k,
    };
    let certs = match read_certs(cert_path) {
        Ok(c) => c,
        Err(e) => return Check::fail(NAME, e, "restore the server certificate (PEM)"),
    };
    let key = match parse_key(key_path, &key) {
        Ok(k) => k,
        Err(e) => {
            return Check::fail(
                NAME,
                e.to_string(),
                "restore the unencrypted PKCS#8/SEC1/PKCS#1 key",
            );
        }
    };
    match CertifiedKey::from_der(certs, key, &tls::provider()) {
        Ok(_) => Check::ok(
            NAME,
            format!(
                "server key {} (mode 0600) matches the certificate {}",
                key_path.display(),
                cert_path.display()
            ),
        ),
        Err(e) => Check::fail(
            NAME,
            format!(
                "server key {} and certificate {} do not belong together: {e}",
                key_path.display(),
                cert_path.display()
            ),
            "restore the matching pair; a new pair needs keylime_tenant -c update afterwards",
        ),
    }
}

//! Push mode checks: the verifier at `verifier_url` is reached over TLS
//! (its certificate chains to `verifier_tls_ca_cert` and names the URL's
//! host), speaks the push model (API v3.0 sessions), and knows this agent.
//!
//! Whether the agent is enrolled is asked without the TPM: a session is
//! opened and answered with an empty proof. The verifier answers an unknown
//! agent with `evaluation: fail` (200) and an enrolled one with 401 (it
//! rejects the empty proof and logs that); nothing changes at the verifier.

use super::report::Check;
use crate::config::AgentConfig;
use crate::net::HttpError;
use crate::push::PushError;
use crate::push::client::Verifier;
use crate::push::messages::{self, SessionOutcome};
use crate::state::AgentState;

fn fix_for(e: &PushError, c: &AgentConfig) -> String {
    let url = &c.push.verifier_url;
    match e {
        PushError::Setup(_) => format!(
            "make verifier_tls_ca_cert ({}) a readable PEM file holding the CA that signed the \
             verifier's certificate",
            c.push.verifier_tls_ca_cert.display()
        ),
        PushError::Http(HttpError::Tls { .. }) => format!(
            "verifier_tls_ca_cert ({}) must hold the CA that signed the verifier's certificate, \
             and that certificate must name {} (the host of verifier_url)",
            c.push.verifier_tls_ca_cert.display(),
            url.host
        ),
        PushError::Http(_) => format!(
            "start the push-mode verifier or correct verifier_url ({url}); from this host, \
             outbound HTTPS to it must be allowed"
        ),
        PushError::Status {
            status: 404 | 405, ..
        } => format!(
            "{url} has no push API: the verifier needs [verifier] mode = push (Keylime 7.14 or \
             later), or verifier_url points at something else"
        ),
        _ => format!("check that verifier_url ({url}) points at a Keylime verifier in push mode"),
    }
}

/// The `verifier` and `verifier.enrolled` checks (push mode only).
pub(crate) async fn check(c: &AgentConfig, state: Option<&AgentState>) -> Vec<Check> {
    const NAME: &str = "verifier";
    let id = state.map_or("-", |s| s.agent_id.as_str());
    let verifier = match Verifier::new(&c.push, id) {
        Ok(v) => v,
        Err(e) => return vec![Check::fail(NAME, e.to_string(), fix_for(&e, c))],
    };
    let address = verifier.address();
    let opened = verifier
        .call(
            "POST /v3.0/sessions",
            "POST",
            &verifier.path("sessions"),
            Some(messages::session_request(id)),
            None,
        )
        .await
        .and_then(|a| a.read(messages::parse_session_challenge));
    let session = match opened {
        Ok(s) => s,
        Err(e) => return vec![Check::fail(NAME, e.to_string(), fix_for(&e, c))],
    };
    let mut checks = vec![Check::ok(
        NAME,
        format!(
            "{address} answers the push API (a session challenge), over TLS verified against \
             verifier_tls_ca_cert with the name {}",
            c.push.verifier_url.host
        ),
    )];
    let Some(state) = state else {
        checks.push(Check::warn(
            "verifier.enrolled",
            "no agent id yet (keylet has not started once), so enrollment cannot be asked",
            "start keylet, then add it with keylime_tenant -c add --push-model -u <agent id>",
        ));
        return checks;
    };
    let proof = messages::session_proof(id, &session.id, &[], &[]);
    let answer = verifier
        .call(
            "PATCH /v3.0/sessions",
            "PATCH",
            &verifier.path(&format!("sessions/{}", session.id)),
            Some(proof),
            None,
        )
        .await;
    let enrolled = match answer {
        Err(PushError::Status { status: 401, .. }) => Check::ok(
            "verifier.enrolled",
            format!("agent {} is enrolled at the verifier", state.agent_id),
        ),
        Ok(a)
            if matches!(
                messages::parse_session_outcome(&a.body),
                Ok(SessionOutcome::Fail)
            ) =>
        {
            Check::fail(
                "verifier.enrolled",
                format!("the verifier does not know agent {}", state.agent_id),
                format!(
                    "add it: keylime_tenant -c add --push-model -u {} (with its policies)",
                    state.agent_id
                ),
            )
        }
        Ok(_) => Check::warn(
            "verifier.enrolled",
            "the verifier's answer to an empty proof says neither enrolled nor unknown",
            "check the verifier's log; keylet run will report what it answers",
        ),
        Err(e) => Check::warn("verifier.enrolled", e.to_string(), fix_for(&e, c)),
    };
    checks.push(enrolled);
    checks
}

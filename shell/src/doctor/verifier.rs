//! Push mode checks: the verifier at `verifier_url` is reached over TLS
//! (its certificate chains to `verifier_tls_ca_cert` and names the URL's
//! host), speaks the push model (API v3.0 sessions), and knows this agent.
//!
//! Whether the agent is enrolled is asked without the TPM: a session is
//! opened and answered with an empty proof. The verifier answers an unknown
//! agent with `evaluation: fail` (200) and an enrolled one with 401 (it
//! rejects the empty proof and logs that); nothing changes at the verifier.

use super::report::{Finding, Report, fail, warn};
use crate::config::AgentConfig;
use crate::net::HttpError;
use crate::push::PushError;
use crate::push::client::Verifier;
use crate::push::messages::{self, SessionOutcome};
use crate::state::AgentState;

fn problem(e: &PushError, c: &AgentConfig) -> Finding {
    let (url, ca) = (&c.push.verifier_url, c.push.verifier_tls_ca_cert.display());
    let fix = match e {
        PushError::Setup(_) => format!(
            "make verifier_tls_ca_cert ({ca}) a readable PEM file holding the CA that signed the \
             verifier's certificate"
        ),
        PushError::Http(HttpError::Tls { .. }) => format!(
            "verifier_tls_ca_cert ({ca}) must hold the CA that signed the verifier's certificate, \
             and that certificate must name {} (the host of verifier_url)",
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
    };
    fail(e.to_string(), fix)
}

/// The `verifier` and `verifier.enrolled` checks (push mode only).
pub(crate) async fn check(report: &mut Report, c: &AgentConfig, state: Option<&AgentState>) {
    let id = state.map_or("-", |s| s.agent_id.as_str());
    let opened = async {
        let verifier = Verifier::new(&c.push, id)?;
        let (request, path) = (messages::session_request(id), verifier.path("sessions"));
        let answer = verifier.call("POST /v3.0/sessions", "POST", &path, Some(request), None);
        let session = answer.await?.read(messages::parse_session_challenge)?;
        Ok((verifier, session))
    };
    let (verifier, session) = match opened.await {
        Ok(opened) => opened,
        Err(e) => return report.add("verifier", Err(problem(&e, c))),
    };
    let (address, host) = (verifier.address(), &c.push.verifier_url.host);
    let reached = format!(
        "{address} answers the push API (a session challenge), over TLS verified against \
         verifier_tls_ca_cert with the name {host}"
    );
    report.add("verifier", Ok(reached));
    let Some(state) = state else {
        let problem = warn(
            "no agent id yet (keylet has not started once), so enrollment cannot be asked",
            "start keylet, then add it with keylime_tenant -c add --push-model -u <agent id>",
        );
        return report.add("verifier.enrolled", Err(problem));
    };
    let proof = messages::session_proof(id, &session.id, &[], &[]);
    let path = verifier.path(&format!("sessions/{}", session.id));
    let answer = verifier.call("PATCH /v3.0/sessions", "PATCH", &path, Some(proof), None);
    let id = &state.agent_id;
    let enrolled = match answer
        .await
        .map(|a| messages::parse_session_outcome(&a.body))
    {
        Err(PushError::Status { status: 401, .. }) => {
            Ok(format!("agent {id} is enrolled at the verifier"))
        }
        Ok(Ok(SessionOutcome::Fail)) => Err(fail(
            format!("the verifier does not know agent {id}"),
            format!("add it: keylime_tenant -c add --push-model -u {id} (with its policies)"),
        )),
        Ok(_) => Err(warn(
            "the verifier's answer to an empty proof says neither enrolled nor unknown",
            "check the verifier's log; keylet run will report what it answers",
        )),
        Err(e) => {
            let (_, detail, fix) = problem(&e, c);
            Err(warn(detail, fix))
        }
    };
    report.add("verifier.enrolled", enrolled);
}

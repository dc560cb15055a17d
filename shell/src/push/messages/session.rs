//! The authentication documents: the session request, the challenge, the
//! TPM2_Certify proof and the verdict with the bearer token.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{AnswerError, at, bad, challenge, parse, text};

/// `POST /v3.0/sessions`: keylet offers TPM proof of possession.
#[must_use]
pub fn session_request(agent_id: &str) -> Value {
    json!({"data": {"type": "session", "attributes": {
        "agent_id": agent_id,
        "authentication_supported": [
            {"authentication_class": "pop", "authentication_type": "tpm_pop"}
        ]
    }}})
}

/// The verifier's answer to [`session_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChallenge {
    /// The session id, for `PATCH /v3.0/sessions/{id}`.
    pub id: String,
    /// The decoded challenge: TPM2_Certify's qualifyingData.
    pub challenge: Vec<u8>,
}

/// Reads the answer to `POST /v3.0/sessions`.
///
/// # Errors
///
/// [`AnswerError`] naming the missing or malformed field.
pub fn parse_session_challenge(body: &[u8]) -> Result<SessionChallenge, AnswerError> {
    let v = parse(body)?;
    let id = text(&v, "/data/id")?;
    if id.is_empty()
        || id.len() > 128
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad(
            "/data/id in the answer is not a session id (letters, digits, '-')",
        ));
    }
    let methods = at(&v, "/data/attributes/authentication_requested")?
        .as_array()
        .ok_or_else(|| bad("/data/attributes/authentication_requested is not an array"))?;
    let pop = methods
        .iter()
        .position(|m| m.get("authentication_type").and_then(Value::as_str) == Some("tpm_pop"))
        .ok_or_else(|| bad("the verifier requested no tpm_pop authentication"))?;
    let challenge = challenge(
        &v,
        &format!("/data/attributes/authentication_requested/{pop}/chosen_parameters/challenge"),
    )?;
    Ok(SessionChallenge {
        id: id.to_string(),
        challenge,
    })
}

/// `PATCH /v3.0/sessions/{id}`: the TPM2_Certify proof.
#[must_use]
pub fn session_proof(agent_id: &str, session_id: &str, attest: &[u8], signature: &[u8]) -> Value {
    json!({"data": {"type": "session", "id": session_id, "attributes": {
        "agent_id": agent_id,
        "authentication_provided": [{
            "authentication_class": "pop",
            "authentication_type": "tpm_pop",
            "data": {"message": STANDARD.encode(attest), "signature": STANDARD.encode(signature)}
        }]
    }}})
}

/// The verifier's verdict on the proof.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionOutcome {
    /// Authenticated: the bearer token for later requests.
    Pass {
        /// The token (secret).
        token: Zeroizing<String>,
        /// When it expires, as the verifier wrote it (ISO 8601), if it did.
        expires_at: Option<String>,
    },
    /// Not authenticated (the verifier answers 200 with `evaluation: fail`
    /// when the agent is not enrolled or the challenge expired).
    Fail,
}

/// Reads the answer to the proof `PATCH`.
///
/// # Errors
///
/// [`AnswerError`] naming the missing or malformed field.
pub fn parse_session_outcome(body: &[u8]) -> Result<SessionOutcome, AnswerError> {
    let v = parse(body)?;
    match text(&v, "/data/attributes/evaluation")? {
        "pass" => {
            let token = text(&v, "/data/attributes/token")?;
            if token.is_empty()
                || token.len() > 1024
                || !token.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(bad("/data/attributes/token is not a usable bearer token"));
            }
            let expires_at = v
                .pointer("/data/attributes/token_expires_at")
                .and_then(Value::as_str)
                .map(|s| s.chars().take(64).collect());
            Ok(SessionOutcome::Pass {
                token: Zeroizing::new(token.to_string()),
                expires_at,
            })
        }
        "fail" => Ok(SessionOutcome::Fail),
        other => Err(bad(format!(
            "/data/attributes/evaluation is {:?}, not \"pass\" or \"fail\"",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

//! The authentication documents: the session request, the challenge, the
//! TPM2_Certify proof and the verdict with the bearer token.

use crate::secret::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::requested::Parameters;
use super::{Read, Single, challenge, document};
use crate::keylime::{JsonError, decode};

/// The one authentication keylet offers: TPM proof of possession.
#[derive(Debug, Serialize)]
struct Method<D> {
    authentication_class: &'static str,
    authentication_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<D>,
}

const fn tpm_pop<D>(data: Option<D>) -> Method<D> {
    Method {
        authentication_class: "pop",
        authentication_type: "tpm_pop",
        data,
    }
}

#[derive(Debug, Serialize)]
struct Offer<'a> {
    agent_id: &'a str,
    authentication_supported: [Method<()>; 1],
}

/// `POST /v3.0/sessions`: keylet offers TPM proof of possession.
#[must_use]
pub fn session_request(agent_id: &str) -> Vec<u8> {
    let offer = Offer {
        agent_id,
        authentication_supported: [tpm_pop(None)],
    };
    document("session", None, offer)
}

/// The verifier's answer to [`session_request`]: the session id (for
/// `PATCH /v3.0/sessions/{id}`) and the decoded challenge, TPM2_Certify's
/// qualifyingData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChallenge {
    pub id: String,
    pub challenge: Vec<u8>,
}

#[derive(Debug, Deserialize)]
struct ChallengeResource {
    id: String,
    attributes: ChallengeAttributes,
}

#[derive(Debug, Deserialize)]
struct ChallengeAttributes {
    authentication_requested: Vec<Requested>,
}

#[derive(Debug, Deserialize)]
struct Requested {
    authentication_type: Option<String>,
    chosen_parameters: Option<Parameters>,
}

/// Reads the answer to `POST /v3.0/sessions`.
///
/// # Errors
///
/// [`JsonError`] naming the missing or malformed field.
pub fn parse_session_challenge(body: &[u8]) -> Result<SessionChallenge, JsonError> {
    let Single { data } = decode::<Single<ChallengeResource>>(body)?;
    let id = data.id;
    if id.is_empty()
        || id.len() > 128
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(JsonError::at(
            "/data/id",
            "not a session id (letters, digits, '-')",
        ));
    }
    let methods = data.attributes.authentication_requested;
    let (i, pop) = methods
        .iter()
        .enumerate()
        .find(|(_, m)| m.authentication_type.as_deref() == Some("tpm_pop"))
        .ok_or_else(|| {
            JsonError::at(
                "/data/attributes/authentication_requested",
                "the verifier requested no tpm_pop authentication",
            )
        })?;
    let path = format!("/data/attributes/authentication_requested/{i}/chosen_parameters/challenge");
    let b64 = pop.chosen_parameters.as_ref();
    Ok(SessionChallenge {
        challenge: challenge(b64.and_then(|p| p.challenge.as_deref()), &path)?,
        id,
    })
}

#[derive(Debug, Serialize)]
struct ProofData {
    message: String,
    signature: String,
}

#[derive(Debug, Serialize)]
struct Proof<'a> {
    agent_id: &'a str,
    authentication_provided: [Method<ProofData>; 1],
}

/// `PATCH /v3.0/sessions/{id}`: the TPM2_Certify proof.
#[must_use]
pub fn session_proof(agent_id: &str, session_id: &str, attest: &[u8], signature: &[u8]) -> Vec<u8> {
    let data = ProofData {
        message: STANDARD.encode(attest),
        signature: STANDARD.encode(signature),
    };
    let proof = Proof {
        agent_id,
        authentication_provided: [tpm_pop(Some(data))],
    };
    document("session", Some(session_id), proof)
}

/// The verifier's verdict on the proof.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionOutcome {
    /// Authenticated: the bearer token for later requests (secret), and when
    /// it expires as the verifier wrote it (ISO 8601), if it did.
    Pass {
        token: Secret<String>,
        expires_at: Option<String>,
    },
    /// Not authenticated (the verifier answers 200 with `evaluation: fail`
    /// when the agent is not enrolled or the challenge expired).
    Fail,
}

#[derive(Deserialize)]
struct Verdict {
    evaluation: String,
    token: Option<String>,
    token_expires_at: Option<String>,
}

/// Reads the answer to the proof `PATCH`.
///
/// # Errors
///
/// [`JsonError`] naming the missing or malformed field.
pub fn parse_session_outcome(body: &[u8]) -> Result<SessionOutcome, JsonError> {
    let Single { data } = decode::<Single<Read<Verdict>>>(body)?;
    let verdict = data.attributes;
    match verdict.evaluation.as_str() {
        "pass" => {
            let token = verdict
                .token
                .map(Secret::new)
                .filter(|t| {
                    !t.is_empty() && t.len() <= 1024 && t.bytes().all(|b| b.is_ascii_graphic())
                })
                .ok_or_else(|| {
                    JsonError::at("/data/attributes/token", "not a usable bearer token")
                })?;
            let expires_at = verdict
                .token_expires_at
                .map(|s| s.chars().take(64).collect());
            Ok(SessionOutcome::Pass { token, expires_at })
        }
        "fail" => Ok(SessionOutcome::Fail),
        other => {
            let shown: String = other.chars().take(40).collect();
            let why = format!("{shown:?}, not \"pass\" or \"fail\"");
            Err(JsonError::at("/data/attributes/evaluation", why))
        }
    }
}

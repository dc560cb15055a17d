//! Authentication: the TPM proof of possession that earns the bearer token.
//!
//! `POST /v3.0/sessions` offers `tpm_pop`; the verifier answers with a
//! challenge; the TPM certifies the AK with itself over the decoded
//! challenge (TPM2_Certify); `PATCH /v3.0/sessions/{id}` sends the
//! attestation and signature; the answer holds the token (or
//! `evaluation: fail`). The token is sent on every later request until the
//! verifier answers 401, which means: authenticate again.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::client::Verifier;
use super::messages::{self, SessionOutcome};
use super::{PushError, on_tpm};
use crate::executor::TpmWorker;
use crate::server::Attestation;

/// The bearer token of an authenticated session.
pub(crate) struct Token {
    value: Zeroizing<String>,
    expires_at: Option<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// The token, for `Authorization: Bearer`.
    #[must_use]
    pub(crate) fn as_str(&self) -> &str {
        &self.value
    }

    /// When the verifier said it expires (each passing attestation extends it).
    #[must_use]
    pub(crate) fn expires_at(&self) -> Option<&str> {
        self.expires_at.as_deref()
    }
}

/// Runs TPM2_Certify of the AK by itself over `challenge` on the TPM worker.
async fn certify(
    tpm: &Arc<dyn Attestation>,
    worker: &TpmWorker,
    challenge: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>), PushError> {
    let tpm = Arc::clone(tpm);
    on_tpm(worker, move || {
        tpm.certify_ak(&challenge)
            .map_err(|e| PushError::Tpm(format!("TPM2_Certify of the AK failed: {e}")))
    })
    .await
}

/// Authenticates this agent at `verifier` with the TPM's proof of
/// possession of the AK.
///
/// # Errors
///
/// [`PushError::NotAuthenticated`] if the verifier refuses the proof (not
/// enrolled, challenge expired, wrong key); any other [`PushError`] for
/// transport, answer or TPM failures.
pub(crate) async fn authenticate(
    verifier: &Verifier,
    tpm: &Arc<dyn Attestation>,
    worker: &TpmWorker,
) -> Result<Token, PushError> {
    let id = verifier.agent_id();
    let step = "authentication (POST /sessions)";
    let answer = verifier
        .call(
            step,
            "POST",
            &verifier.path("sessions"),
            Some(&messages::session_request(id)),
            None,
        )
        .await?;
    let challenge =
        messages::parse_session_challenge(&answer.body).map_err(|e| PushError::Answer {
            step,
            detail: e.to_string(),
        })?;
    let (attest, signature) = certify(tpm, worker, challenge.challenge).await?;
    let step = "authentication (PATCH /sessions)";
    let proof = messages::session_proof(id, &challenge.id, &attest, &signature);
    let answer = verifier
        .call(
            step,
            "PATCH",
            &verifier.path(&format!("sessions/{}", challenge.id)),
            Some(&proof),
            None,
        )
        .await
        .map_err(|e| match e {
            PushError::Status {
                status: 401,
                detail,
                ..
            } => PushError::NotAuthenticated {
                detail: format!(
                    "the verifier rejected the TPM2_Certify proof ({detail}); it checks it against \
                     the AK the registrar holds for this agent, with SHA-256 and RSASSA (Keylime \
                     7.14): an ECC AK or tpm_hash_alg other than sha256 cannot authenticate"
                ),
            },
            other => other,
        })?;
    match messages::parse_session_outcome(&answer.body) {
        Ok(SessionOutcome::Pass { token, expires_at }) => Ok(Token {
            value: token,
            expires_at,
        }),
        Ok(SessionOutcome::Fail) => Err(PushError::NotAuthenticated {
            detail: format!(
                "the verifier answered evaluation \"fail\": agent {id} is not enrolled there (add \
                 it with keylime_tenant -c add --push-model -u {id}), or the challenge expired"
            ),
        }),
        Err(e) => Err(PushError::Answer {
            step,
            detail: e.to_string(),
        }),
    }
}

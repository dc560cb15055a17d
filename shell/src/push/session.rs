//! Authentication: the TPM proof of possession that earns the bearer token.
//!
//! `POST /v3.0/sessions` offers `tpm_pop`; the verifier answers with a
//! challenge; the TPM certifies the AK with itself over the decoded
//! challenge (TPM2_Certify); `PATCH /v3.0/sessions/{id}` sends the
//! attestation and signature; the answer holds the token (or
//! `evaluation: fail`). The token is sent on every later request until the
//! verifier answers 401, which means: authenticate again.

use std::sync::Arc;

use crate::secret::Secret;

use super::messages::{self, SessionOutcome};
use super::{PushAgent, PushError, on_tpm};

impl PushAgent {
    /// Authenticates with the proof of possession; returns the bearer token.
    ///
    /// Errors: [`PushError::NotAuthenticated`] if the verifier refuses the proof (not
    /// enrolled, challenge expired, wrong key); any other [`PushError`] for
    /// transport, answer or TPM failures.
    pub(super) async fn authenticate(&self) -> Result<Secret<String>, PushError> {
        let verifier = &self.verifier;
        let id = &verifier.agent_id;
        let challenge = verifier
            .call(
                "authentication (POST /sessions)",
                "POST",
                &verifier.path("sessions"),
                Some(messages::session_request(id)),
                None,
            )
            .await?
            .read(messages::parse_session_challenge)?;
        let (tpm, qualifying) = (Arc::clone(&self.tpm), challenge.challenge);
        let (attest, signature) = on_tpm(&self.worker, async move {
            tpm.certify_ak(&qualifying)
                .await
                .map_err(|e| PushError::Tpm(format!("TPM2_Certify of the AK failed: {e}")))
        })
        .await?;
        let proof = messages::session_proof(id, &challenge.id, &attest, &signature);
        let path = verifier.path(&format!("sessions/{}", challenge.id));
        let answer = verifier
            .call(
                "authentication (PATCH /sessions)",
                "PATCH",
                &path,
                Some(proof),
                None,
            )
            .await
            .map_err(|e| match e {
                PushError::Status {
                    status: 401,
                    detail,
                    ..
                } => PushError::NotAuthenticated(format!(
                    "the verifier rejected the TPM2_Certify proof ({detail}); it checks it against \
                 the AK the registrar holds for this agent, with SHA-256 and RSASSA (Keylime \
                 7.14): an ECC AK or tpm_hash_alg other than sha256 cannot authenticate"
                )),
                other => other,
            })?;
        match answer.read(messages::parse_session_outcome)? {
            SessionOutcome::Pass { token, expires_at } => {
                log::info!(
                    "authenticated at the verifier with the TPM's proof of possession (token \
                 expires {})",
                    expires_at.as_deref().unwrap_or("when the verifier says")
                );
                Ok(token)
            }
            SessionOutcome::Fail => Err(PushError::NotAuthenticated(format!(
                "the verifier answered evaluation \"fail\": agent {id} is not enrolled there (add it \
             with keylime_tenant -c add --push-model -u {id}), or the challenge expired"
            ))),
        }
    }
}

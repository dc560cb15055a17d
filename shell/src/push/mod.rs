//! Push mode: keylet attests itself to a Keylime verifier in push mode
//! (`[verifier] mode = push`, REST API v3.0) instead of being polled.
//!
//! keylet registers at the registrar as in pull mode, then, with no port
//! open for it: authenticates with a TPM proof of possession (TPM2_Certify
//! of the AK by itself over the verifier's challenge, [`session`]), tells the
//! verifier which evidence it can give ([`evidence`]), sends the quote, the
//! IMA lines from the offset the verifier asks for and the UEFI log, and
//! waits as long as the verifier says ([`timing`]). [`run`] is the loop and
//! its answer to every status the verifier gives; [`client`] the HTTPS
//! connection (the certificate verified against `verifier_tls_ca_cert`, the
//! name against `verifier_url`); its JSON:API documents are in
//! [`crate::keylime::push`].

pub mod client;
pub mod evidence;
pub use crate::keylime::push as messages;
pub mod run;
pub mod session;
pub mod timing;

use std::time::Duration;

use crate::executor::TpmWorker;
use crate::net::HttpError;

pub use run::PushAgent;

/// Why one exchange with the verifier did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The push settings cannot be used (unreadable CA file, ...).
    #[error("push mode cannot start: {0}")]
    Setup(String),
    /// No answer: unreachable, TLS failure, or an unreadable answer.
    #[error("verifier: {0}")]
    Http(HttpError),
    /// An answer with an unexpected status: what keylet was doing, the
    /// status, the verifier's error detail and `Retry-After` (if sent).
    #[error(
        "{step}: the verifier answered {status}{}",
        if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) }
    )]
    Status {
        step: &'static str,
        status: u16,
        detail: String,
        retry_after: Option<String>,
    },
    /// A success status with a body that is not what the protocol says.
    #[error("{step}: unusable answer: {detail}")]
    Answer { step: &'static str, detail: String },
    /// The verifier did not accept the proof of possession (why, as far as
    /// keylet can tell).
    #[error("not authenticated: {0}")]
    NotAuthenticated(String),
    /// The TPM could not certify or quote.
    #[error("TPM: {0}")]
    Tpm(String),
    /// A log could not be read.
    #[error("log: {0}")]
    Log(String),
}

/// Hand-written rather than `#[from]`: that would also make the HTTP error
/// the `source()`, which `PushError` does not report.
impl From<HttpError> for PushError {
    fn from(e: HttpError) -> Self {
        Self::Http(e)
    }
}

/// What an answer status means for keylet and what the operator can do,
/// for the statuses keylet does not simply follow (403, 404, 409, 410, 422).
#[must_use]
pub(crate) fn meaning(step: &str, status: u16) -> &'static str {
    match (step, status) {
        (_, 401) => "the bearer token is unknown or expired; keylet authenticates again",
        ("capabilities", 403) => {
            "the verifier stopped accepting attestations from this agent (an earlier one \
             failed); an operator re-adds it (keylime_tenant -c delete, then -c add --push-model)"
        }
        ("evidence", 403) => {
            "this attestation can no longer take evidence (its challenge expired, or it is not \
             the latest); keylet starts a new one"
        }
        ("capabilities", 404) => {
            "the verifier does not know this agent: add it with keylime_tenant -c add \
             --push-model -u <agent id>; keylet keeps trying"
        }
        ("evidence", 404) => {
            "the attestation named by the verifier's Location does not exist; keylet starts a \
             new one"
        }
        (_, 409) => {
            "another attestation for this agent is being created; keylet tries again shortly"
        }
        (_, 410) => "the attestation is gone from the verifier; keylet starts a new one",
        (_, 422) => {
            "the verifier's policy for this agent cannot be met with what keylet offers (PCR \
             bank tpm_hash_alg, the AK's signing scheme, the logs); compare the agent's \
             accept_tpm_hash_algs / accept_tpm_signing_algs and policies with keylet's \
             configuration"
        }
        (_, 400) => {
            "the verifier refused keylet's request as malformed; this is a keylet bug, please report it with this line"
        }
        _ if status >= 500 => "the verifier failed; keylet tries again with backoff",
        _ => "unexpected answer; keylet tries again with backoff",
    }
}

pub(crate) fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f32())
}

/// Runs `work` (TPM commands: a proof or a quote) on the TPM worker within
/// the deadline of a verifier's quote in pull mode, its wait behind other TPM
/// jobs included.
async fn on_tpm<R: Send + 'static>(
    worker: &TpmWorker,
    work: impl Future<Output = Result<R, PushError>> + Send + 'static,
) -> Result<R, PushError> {
    worker
        .run(crate::server::QUOTE_DEADLINE, work)
        .await
        .map_err(|e| PushError::Tpm(e.to_string()))?
}

/// Runs `work` (log reads) on tokio's blocking thread, never the TPM worker.
async fn on_files<R: Send + 'static>(
    work: impl FnOnce() -> Result<R, PushError> + Send + 'static,
) -> Result<R, PushError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PushError::Log(format!("the log task stopped: {e}")))?
}

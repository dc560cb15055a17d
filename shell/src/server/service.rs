//! The contract between the HTTP server and the TPM side of keylet, which
//! runs the TPM and owns the keys. The server runs [`Attestation::quote`] as
//! a job of the TPM worker ([`crate::executor::TpmWorker`]) and answers 500
//! when no quote came within [`super::Limits::quote_deadline`]. The methods
//! that do not give a [`TpmAnswer`] never wait for the TPM.

use std::fmt;
use std::pin::Pin;

use keylet_core::alg::{KeyAlg, SignAlg};
use keylet_core::pcr::{HashAlg, PcrMask};

use super::query::Nonce;

/// A TPM job's answer: TPM commands, run as a job of the TPM worker.
pub type TpmAnswer<'a, T> = Pin<Box<dyn Future<Output = Result<T, AttestError>> + Send + 'a>>;

/// What the server needs from the TPM side.
pub trait Attestation: Send + Sync + 'static {
    /// Keylime's quote string (`r<b64 TPMS_ATTEST>:<b64
    /// TPMT_SIGNATURE>:<b64 PCR blob>`) over `mask` (which always holds PCR
    /// 16) with `nonce` as qualifying data and the algorithms of
    /// [`agent_info`](Self::agent_info), after resetting PCR 16 and extending
    /// it with the hash of [`payload_public_pem`](Self::payload_public_pem).
    /// The implementation serialises TPM use: requests may call it at once.
    ///
    /// Errors: The TPM cannot produce a quote: answered 500 "Unable to retrieve
    /// quote", which the verifier retries.
    fn quote<'a>(&'a self, nonce: &'a Nonce, mask: PcrMask) -> TpmAnswer<'a, String>;

    /// The payload key (NK) as a SubjectPublicKeyInfo PEM: exactly the bytes
    /// whose hash is extended into PCR 16, trailing newline included.
    fn payload_public_pem(&self) -> &str;

    /// The agent's identity and algorithms, for `/agent/info`.
    fn agent_info(&self) -> AgentInfo;

    /// Push mode's proof of possession, TPM2_Certify of the AK by
    /// itself with `qualifying` (the verifier's decoded challenge); the
    /// TPMS_ATTEST and the TPMT_SIGNATURE.
    ///
    /// Errors: The TPM fails or its answer is not the attestation asked for.
    fn certify_ak<'a>(&'a self, qualifying: &'a [u8]) -> TpmAnswer<'a, (Vec<u8>, Vec<u8>)>;

    /// A push-mode quote of `mask` of the agent's bank with `nonce`
    /// (the verifier's decoded challenge) as qualifying data, without PCR 16.
    ///
    /// Errors: The TPM fails or the quote fails its self-check.
    fn quote_unbound<'a>(&'a self, nonce: &'a [u8], mask: PcrMask) -> TpmAnswer<'a, String>;

    /// The AK's TPM2B_PUBLIC, as registered.
    fn ak_public(&self) -> &[u8];

    /// The AK's Name (nameAlg and digest), as TPM2_Certify names it.
    fn ak_name(&self) -> &[u8];
}

impl fmt::Debug for dyn Attestation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Attestation")
    }
}

/// The agent's identity, for `GET /v2.2+/agent/info` (the field names in
/// parentheses), and the algorithms every quote is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// `agent_uuid`.
    pub uuid: String,
    /// The PCR bank (`tpm_hash_alg`).
    pub hash_alg: HashAlg,
    /// `tpm_enc_alg`.
    pub key_alg: KeyAlg,
    /// `tpm_sign_alg`.
    pub sign_alg: SignAlg,
    /// The AK's TPM handle (`ak_handle`, sent as a JSON number).
    pub ak_handle: u32,
}

/// Why no quote could be produced. Every variant is answered with 500, which
/// the verifier retries; the detail goes to the log only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// A TPM command failed (transport error or TPM response code).
    #[error("TPM quote failed: {0}")]
    Tpm(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The PCRs kept changing between reading them and quoting them, in all
    /// these rounds.
    #[error("PCR values changed between read and quote in all {attempts} attempts")]
    PcrsUnstable { attempts: u32 },
    /// The quote task stopped before finishing (it panicked or was cancelled).
    #[error("the quote task stopped before finishing")]
    Interrupted,
    /// The TPM did not answer within the quote deadline (it hangs, or a
    /// reconnect is slow); the TPM work finishes by itself.
    #[error(
        "no TPM answer within the quote deadline of {} s (is the TPM hung?)",
        .0.as_secs_f32()
    )]
    Deadline(std::time::Duration),
}

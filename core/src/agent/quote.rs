//! The quote path: read the PCRs, bind PCR 16 to the payload key unless it
//! already holds the binding, quote, self-check, and encode Keylime's quote
//! string.
//!
//! PCR 16 and the verifier. The Keylime verifier (`_check_data_pcr`) accepts
//! a quote when the *quoted* PCR 16 equals `H(0^n || H(payload key PEM))`:
//! it checks a value, not the history of the PCR. When the PCR_Read of this
//! quote shows that value, resetting and extending again writes the same
//! value, so keylet skips both commands and quotes at the floor (PCR_Read +
//! Quote). The binding is exactly as strong: the value the verifier sees is
//! the TPM's at the moment of the Quote, covered by the AK's signature over
//! the pcrDigest; anyone who could have set PCR 16 beforehand could equally
//! have done it between keylet's extend and its quote (PCR 16 is resettable
//! at locality 0). Should PCR 16 change between the read and the quote, the
//! self-check against the signed pcrDigest fails and the quote is repeated,
//! binding again: a quote never leaves with values the TPM did not sign.

use super::{AgentError, Tpm, read_err};
use crate::keylime::quote_string;
use crate::pcr::{DATA_PCR, Digest, HashAlg, PcrMask, PcrValues, extended_once};
use crate::tpm::Handle;
use crate::tpm::command::{self, CommandError};
use crate::tpm::pcr_read::{MAX_RESTARTS, PcrReadError, PcrReadLoop};
use crate::tpm::reader;
use crate::tpm::transport::Transport;
use crate::verify::{self, QuoteError};

/// How often the PCR read and the quote are repeated when the quote's
/// pcrDigest does not match the values read (a PCR such as 10 moved).
pub const MAX_QUOTE_ATTEMPTS: u32 = 5;

/// One quote the verifier or tenant asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteRequest<'a> {
    /// The loaded AK.
    pub ak: Handle,
    /// The nonce exactly as received (its ASCII bytes become qualifyingData).
    pub nonce: &'a [u8],
    /// The PCR bank (`tpm_hash_alg`).
    pub bank: HashAlg,
    /// The PCRs asked for; PCR 16 is always added.
    pub mask: PcrMask,
    /// `H_bank(payload key PEM bytes)`: what PCR 16 is extended with after
    /// its reset.
    pub data_digest: &'a [u8],
}

impl<T: Transport> Tpm<'_, T> {
    /// Reads every PCR in `mask` of `bank`, in as many PCR_Read rounds as
    /// needed, restarting if pcrUpdateCounter moves.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if a PCR_Read fails, the bank is not allocated, or the
    /// PCRs keep changing.
    pub async fn read_pcrs(
        &mut self,
        bank: HashAlg,
        mask: PcrMask,
    ) -> Result<PcrValues, AgentError<T::Error>> {
        let mut read = PcrReadLoop::new(bank, mask);
        // 3 rounds read all 24 PCRs; each restart costs at most 3 more.
        let max_rounds = MAX_RESTARTS.saturating_add(1).saturating_mul(3);
        for _ in 0..max_rounds {
            if read.is_complete() {
                break;
            }
            let r = self
                .execute(|b| {
                    read.next_command(b)?.ok_or(CommandError::Invalid {
                        cc: tpm2_protocol::data::TpmCc::PcrRead,
                        what: "nothing left to read",
                    })
                })
                .await?;
            read.accept(r.parameters)?;
        }
        if !read.is_complete() {
            return Err(crate::tpm::pcr_read::PcrReadError::Unstable.into());
        }
        Ok(read.into_values())
    }

    /// Resets PCR 16 and extends it with `data_digest` in `bank`.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if either command fails (for example, the digest is not
    /// the bank's size, or the TPM does not allow PCR 16 to be reset).
    pub async fn bind_data_pcr(
        &mut self,
        bank: HashAlg,
        data_digest: &[u8],
    ) -> Result<(), AgentError<T::Error>> {
        self.execute(|b| command::pcr_reset(b, DATA_PCR)).await?;
        self.execute(|b| command::pcr_extend(b, DATA_PCR, bank, data_digest))
            .await?;
        Ok(())
    }

    /// The whole quote path: PCR read of `mask ∪ {16}`; PCR 16 reset and
    /// extended with `data_digest` only when it does not already hold
    /// `H(0^n || data_digest)` (see the module documentation); TPM2_Quote,
    /// the self-check of the attestation against the values (the read ones,
    /// PCR 16 as bound) retried up to [`MAX_QUOTE_ATTEMPTS`] times on a
    /// pcrDigest mismatch, then the Keylime quote string
    /// `r<attest>:<sig>:<pcrs>` written to `out`. Returns the string's
    /// length. Allocates nothing. Two TPM commands when PCR 16 is bound (and
    /// the selection fits one PCR_Read), four when it is not.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if a command fails, the quote fails its self-check, or
    /// `out` is too small.
    pub async fn quote(
        &mut self,
        req: &QuoteRequest<'_>,
        out: &mut [u8],
    ) -> Result<usize, AgentError<T::Error>> {
        let bound = extended_once(req.bank, req.data_digest);
        let bind = Bind {
            data_digest: req.data_digest,
            bound: &bound,
        };
        let mask = req.mask.with(DATA_PCR);
        self.quote_loop(req.ak, req.nonce, req.bank, mask, Some(bind), out)
            .await
    }

    /// The quote path without PCR 16: PCR read of `mask`, TPM2_Quote with
    /// `nonce` as qualifyingData, the self-check (retried up to
    /// [`MAX_QUOTE_ATTEMPTS`] times on a pcrDigest mismatch) and the Keylime
    /// quote string written to `out`; returns its length. The push model
    /// uses it: its verifier binds no data to PCR 16. Allocates nothing.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if a command fails, the quote fails its self-check, or
    /// `out` is too small.
    pub async fn quote_pcrs(
        &mut self,
        ak: Handle,
        nonce: &[u8],
        bank: HashAlg,
        mask: PcrMask,
        out: &mut [u8],
    ) -> Result<usize, AgentError<T::Error>> {
        self.quote_loop(ak, nonce, bank, mask, None, out).await
    }

    /// Read (and bind PCR 16 if `bind` says so and it is not bound), quote,
    /// self-check; repeated on a pcrDigest mismatch.
    async fn quote_loop(
        &mut self,
        ak: Handle,
        nonce: &[u8],
        bank: HashAlg,
        mask: PcrMask,
        bind: Option<Bind<'_>>,
        out: &mut [u8],
    ) -> Result<usize, AgentError<T::Error>> {
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let mut values = self.read_pcrs(bank, mask).await?;
            if let Some(b) = &bind
                && values.get(DATA_PCR) != Some(b.bound)
            {
                self.bind_data_pcr(bank, b.data_digest).await?;
                values
                    .replace(DATA_PCR, b.bound)
                    .map_err(|e| AgentError::PcrRead(PcrReadError::Values(e)))?;
            }
            let r = self
                .execute(|b| command::quote(b, ak, nonce, bank, mask))
                .await?;
            let parts = reader::quote(r.parameters).map_err(read_err(r.cc))?;
            match verify::check_attest(parts.attest, nonce, &values) {
                Ok(_) => {
                    return quote_string::encode(parts.attest, parts.signature, &values, out)
                        .map_err(AgentError::QuoteString);
                }
                Err(QuoteError::DigestMismatch) if attempt < MAX_QUOTE_ATTEMPTS => {}
                Err(e) => return Err(AgentError::QuoteSelfCheck(e)),
            }
        }
    }
}

/// PCR 16's binding to the payload key: what it is extended with, and the
/// value it then holds.
struct Bind<'a> {
    data_digest: &'a [u8],
    bound: &'a Digest,
}

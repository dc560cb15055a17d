//! Quote checking, as the Keylime 7.14 verifier does it (keylime-protocol §5.4).
//!
//! * [`check_attest`]: everything except the signature: the attestation is a
//!   TPM-made quote, it answers the nonce, covers exactly the PCR values' bank
//!   and selection, its pcrDigest is the hash of those values, and the TPM
//!   clock is safe. The agent runs this on its own quotes before answering.
//! * [`verify_quote`]: the same plus the AK signature (ECDSA P-256 always;
//!   RSASSA with the `alloc` feature).

mod attest;
mod certify;
mod crypto;
mod error;
mod signature;

pub use attest::{
    Attest, AttestInfo, ClockInfo, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, read_attest,
};
pub use certify::{CertifyInfo, TPM_ST_ATTEST_CERTIFY, check_certify, read_certify};
pub use crypto::{verify_ecdsa_p256, verify_rsassa};
pub use error::{QuoteError, QuotePart};
pub use signature::{Signature, read_signature};

use crate::pcr::{PcrMask, PcrValues};
use crate::public::{PublicKey, alg, read_tpm2b_public};

/// Checks a quote's TPMS_ATTEST against the nonce and the PCR values read
/// alongside it; does not check the signature.
///
/// # Errors
///
/// The first [`QuoteError`] found, in this order: malformed or non-quote
/// attestation, [`QuoteError::NonceMismatch`], [`QuoteError::BankMismatch`],
/// [`QuoteError::SelectionMismatch`], [`QuoteError::IncompleteValues`],
/// [`QuoteError::DigestMismatch`], [`QuoteError::ClockNotSafe`].
pub fn check_attest(
    attest: &[u8],
    nonce: &[u8],
    values: &PcrValues,
) -> Result<AttestInfo, QuoteError> {
    let a = read_attest(attest)?;
    if a.extra_data != nonce {
        return Err(QuoteError::NonceMismatch);
    }
    let info = a.info;
    if info.bank != values.bank() {
        return Err(QuoteError::BankMismatch {
            quoted: info.bank,
            values: values.bank(),
        });
    }
    if info.selection != values.mask() {
        return Err(QuoteError::SelectionMismatch {
            quoted: info.selection,
            expected: values.mask(),
        });
    }
    if !values.is_complete() {
        return Err(QuoteError::IncompleteValues {
            missing: values.missing(),
        });
    }
    if values.composite_digest() != info.pcr_digest {
        return Err(QuoteError::DigestMismatch);
    }
    if !info.clock.safe {
        return Err(QuoteError::ClockNotSafe);
    }
    Ok(info)
}

/// Verifies a whole quote: [`check_attest`], that it covers `selection`, and
/// the signature under the AK (`ak_public` is its TPM2B_PUBLIC).
///
/// # Errors
///
/// [`QuoteError::AkPublic`] for an unreadable AK; a malformed or unsupported
/// signature; [`QuoteError::SignatureKeyMismatch`]; [`QuoteError::HashMismatch`]
/// when the signature hash is not the bank; [`QuoteError::SelectionMismatch`]
/// when the values are not for `selection`; anything [`check_attest`] returns;
/// then [`QuoteError::ScalarOutOfRange`], [`QuoteError::InvalidKey`],
/// [`QuoteError::BadSignature`] or [`QuoteError::RsaUnavailable`] from the
/// signature check itself.
pub fn verify_quote(
    attest: &[u8],
    signature: &[u8],
    values: &PcrValues,
    ak_public: &[u8],
    nonce: &[u8],
    selection: PcrMask,
) -> Result<AttestInfo, QuoteError> {
    let ak = read_tpm2b_public(ak_public)?;
    let sig = read_signature(signature)?;
    let fits = matches!(
        (&ak.key, &sig),
        (PublicKey::Rsa { .. }, Signature::RsaSsa { .. })
            | (PublicKey::EccP256 { .. }, Signature::Ecdsa { .. })
    );
    if !fits {
        return Err(QuoteError::SignatureKeyMismatch {
            sig_alg: sig.sig_alg(),
            key_type: ak.object_type,
        });
    }
    if sig.hash() != values.bank() {
        return Err(QuoteError::HashMismatch {
            signature: sig.hash(),
            bank: values.bank(),
        });
    }
    if values.mask() != selection {
        return Err(QuoteError::SelectionMismatch {
            quoted: values.mask(),
            expected: selection,
        });
    }
    let info = check_attest(attest, nonce, values)?;
    let digest = sig.hash().hash(attest);
    match (ak.key, sig) {
        (PublicKey::EccP256 { x, y }, Signature::Ecdsa { r, s, .. }) => {
            verify_ecdsa_p256(x, y, &digest, r, s)?;
        }
        (PublicKey::Rsa { modulus, exponent }, Signature::RsaSsa { hash, sig }) => {
            verify_rsassa(modulus, exponent, hash, &digest, sig)?;
        }
        _ => {
            return Err(QuoteError::SignatureKeyMismatch {
                sig_alg: alg::NULL,
                key_type: ak.object_type,
            });
        }
    }
    Ok(info)
}

//! Every way a quote can fail verification.

use core::fmt;

use crate::pcr::{HashAlg, PcrMask};
use crate::public::PublicError;
use crate::tpm::cursor::{ReadError, ReadErrorKind};

/// Which input a malformation was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotePart {
    /// The TPMS_ATTEST.
    Attest,
    /// The TPMT_SIGNATURE.
    Signature,
}

impl fmt::Display for QuotePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Attest => "TPMS_ATTEST",
            Self::Signature => "TPMT_SIGNATURE",
        })
    }
}

/// Why a quote was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuoteError {
    /// The bytes of `part` are not well formed at `offset`.
    Malformed {
        /// The input at fault.
        part: QuotePart,
        /// The byte offset inside that input.
        offset: usize,
        /// What is wrong there.
        what: &'static str,
    },
    /// The TPMS_ATTEST does not start with TPM_GENERATED_VALUE.
    BadMagic {
        /// The magic found.
        found: u32,
    },
    /// The TPMS_ATTEST is not a quote (TPM_ST_ATTEST_QUOTE, 0x8018).
    WrongType {
        /// The type found.
        found: u16,
    },
    /// extraData is not the nonce.
    NonceMismatch,
    /// The TPMS_ATTEST is not a TPM2_Certify attestation (TPM_ST_ATTEST_CERTIFY, 0x8017).
    NotCertify {
        /// The type found.
        found: u16,
    },
    /// The certified object's Name is not the Name of the key expected.
    NameMismatch,
    /// The quote does not cover exactly one PCR bank.
    NotOneBank {
        /// The number of TPMS_PCR_SELECTIONs found.
        count: u32,
    },
    /// A hash algorithm (bank or signature hash) keylet does not know.
    UnsupportedHash {
        /// The TPM_ALG_ID found.
        alg: u16,
    },
    /// The quoted bank is not the bank of the PCR values.
    BankMismatch {
        /// The bank in the quote.
        quoted: HashAlg,
        /// The bank of the PCR values.
        values: HashAlg,
    },
    /// The quoted PCRs are not the PCRs expected.
    SelectionMismatch {
        /// The PCRs in the quote.
        quoted: PcrMask,
        /// The PCRs expected.
        expected: PcrMask,
    },
    /// Not every selected PCR has a value.
    IncompleteValues {
        /// The PCRs without a value.
        missing: PcrMask,
    },
    /// pcrDigest is not the hash of the PCR values.
    DigestMismatch,
    /// clockInfo.safe is not 1; the Keylime verifier rejects such quotes.
    ClockNotSafe,
    /// The signature algorithm does not suit the key (RSA needs RSASSA, ECC needs ECDSA).
    SignatureKeyMismatch {
        /// The TPMT_SIGNATURE sigAlg.
        sig_alg: u16,
        /// The key's object type.
        key_type: u16,
    },
    /// The signature algorithm is neither RSASSA nor ECDSA.
    UnsupportedSignature {
        /// The sigAlg found.
        sig_alg: u16,
    },
    /// The signature hash is not the PCR bank.
    HashMismatch {
        /// The signature's hash.
        signature: HashAlg,
        /// The bank of the PCR values.
        bank: HashAlg,
    },
    /// An ECDSA r or s is zero, longer than 32 bytes or not below the group order.
    ScalarOutOfRange,
    /// The AK cannot be used (not a valid point or an unusable RSA key).
    InvalidKey,
    /// The signature does not verify under the AK.
    BadSignature,
    /// RSA verification needs the `alloc` feature of keylet-core.
    RsaUnavailable,
    /// The AK TPM2B_PUBLIC could not be read.
    AkPublic(PublicError),
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { part, offset, what } => {
                write!(f, "malformed {part} at byte {offset}: {what}")
            }
            Self::BadMagic { found } => write!(
                f,
                "quote magic is {found:#010x}, not 0xff544347: the attestation was not made by a TPM"
            ),
            Self::WrongType { found } => {
                write!(f, "attestation type is {found:#06x}, not a quote (0x8018)")
            }
            Self::NotCertify { found } => write!(
                f,
                "attestation type is {found:#06x}, not a TPM2_Certify attestation (0x8017)"
            ),
            Self::NameMismatch => f.write_str(
                "the certified object's Name is not the Name of the key that was to be certified",
            ),
            Self::NonceMismatch => {
                f.write_str("the quote's extraData is not the nonce: it answers another request")
            }
            Self::NotOneBank { count } => {
                write!(f, "quote covers {count} PCR banks; Keylime needs exactly one")
            }
            Self::UnsupportedHash { alg } => write!(f, "unsupported hash algorithm {alg:#06x}"),
            Self::BankMismatch { quoted, values } => {
                write!(f, "quote covers the {quoted} bank but the PCR values are {values}")
            }
            Self::SelectionMismatch { quoted, expected } => write!(
                f,
                "quote covers PCR mask {:#08x}, expected {:#08x}",
                quoted.bits(),
                expected.bits()
            ),
            Self::IncompleteValues { missing } => {
                write!(f, "PCR values are missing for mask {:#08x}", missing.bits())
            }
            Self::DigestMismatch => f.write_str(
                "pcrDigest is not the hash of the PCR values: a PCR changed between read and quote",
            ),
            Self::ClockNotSafe => f.write_str(
                "TPM clock is not marked safe (unclean shutdown?); the verifier will reject this quote",
            ),
            Self::SignatureKeyMismatch { sig_alg, key_type } => write!(
                f,
                "signature algorithm {sig_alg:#06x} does not fit key type {key_type:#06x}"
            ),
            Self::UnsupportedSignature { sig_alg } => write!(
                f,
                "signature algorithm {sig_alg:#06x} is not supported; use RSASSA or ECDSA"
            ),
            Self::HashMismatch { signature, bank } => write!(
                f,
                "signature hash {signature} differs from the PCR bank {bank}; Keylime requires them equal"
            ),
            Self::ScalarOutOfRange => f.write_str("ECDSA r or s is out of range"),
            Self::InvalidKey => f.write_str("the attestation key is not a usable public key"),
            Self::BadSignature => f.write_str("the quote signature does not verify under the AK"),
            Self::RsaUnavailable => f.write_str(
                "RSA signature checking needs keylet-core's `alloc` feature",
            ),
            Self::AkPublic(e) => write!(f, "AK public area: {e}"),
        }
    }
}

impl core::error::Error for QuoteError {}

impl From<PublicError> for QuoteError {
    fn from(e: PublicError) -> Self {
        Self::AkPublic(e)
    }
}

/// Maps a read failure inside `part` to [`QuoteError::Malformed`]: a
/// truncation at the byte where the input ended.
pub(crate) fn malformed(part: QuotePart) -> impl Fn(ReadError) -> QuoteError {
    move |e| QuoteError::Malformed {
        part,
        offset: e.end(),
        what: match e.kind {
            ReadErrorKind::Truncated { .. } => "input ends early",
            ReadErrorKind::Trailing => "unexpected trailing bytes",
            ReadErrorKind::Invalid
            | ReadErrorKind::TooLarge { .. }
            | ReadErrorKind::Unknown { .. } => e.what,
        },
    }
}

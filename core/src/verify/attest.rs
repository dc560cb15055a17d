//! Reading a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE.

use crate::pcr::{Digest, HashAlg, PcrMask};
use crate::verify::cursor::Cursor;
use crate::verify::error::{QuoteError, QuotePart, malformed};

/// TPM_GENERATED_VALUE, the magic of every TPM-made attestation.
pub const TPM_GENERATED_VALUE: u32 = 0xFF54_4347;
/// TPM_ST_ATTEST_QUOTE.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// TPMS_CLOCK_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was made.
    pub clock: u64,
    /// TPM resets (power cycles) so far.
    pub reset_count: u32,
    /// TPM restarts (resumes) since the last reset.
    pub restart_count: u32,
    /// Whether `clock` is known never to have run backwards.
    pub safe: bool,
}

/// What a quote attests, as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttestInfo {
    /// The TPM clock when the quote was made.
    pub clock: ClockInfo,
    /// The TPM firmware version.
    pub firmware_version: u64,
    /// The quoted PCR bank.
    pub bank: HashAlg,
    /// The quoted PCRs.
    pub selection: PcrMask,
    /// The hash of the quoted PCR values.
    pub pcr_digest: Digest,
}

/// A parsed quote attestation, borrowing its variable-length fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attest<'a> {
    /// The plain data.
    pub info: AttestInfo,
    /// qualifiedSigner: the Name of the signing key.
    pub qualified_signer: &'a [u8],
    /// extraData: the caller's qualifying data (Keylime's nonce).
    pub extra_data: &'a [u8],
}

/// Reads a TPMS_ATTEST that must be a quote filling `attest` exactly.
///
/// # Errors
///
/// [`QuoteError::BadMagic`], [`QuoteError::WrongType`], [`QuoteError::NotOneBank`],
/// [`QuoteError::UnsupportedHash`], or [`QuoteError::Malformed`] with the byte offset.
pub fn read_attest(attest: &[u8]) -> Result<Attest<'_>, QuoteError> {
    let bad = malformed(QuotePart::Attest);
    let mut c = Cursor::new(attest);
    let magic = c.u32().map_err(&bad)?;
    if magic != TPM_GENERATED_VALUE {
        return Err(QuoteError::BadMagic { found: magic });
    }
    let kind = c.u16().map_err(&bad)?;
    if kind != TPM_ST_ATTEST_QUOTE {
        return Err(QuoteError::WrongType { found: kind });
    }
    let qualified_signer = c.tpm2b().map_err(&bad)?;
    let extra_data = c.tpm2b().map_err(&bad)?;
    let clock = c.u64().map_err(&bad)?;
    let reset_count = c.u32().map_err(&bad)?;
    let restart_count = c.u32().map_err(&bad)?;
    let safe_at = c.offset();
    let safe = match c.u8().map_err(&bad)? {
        0 => false,
        1 => true,
        _ => return Err(at(safe_at, "clockInfo.safe is neither 0 nor 1")),
    };
    let firmware_version = c.u64().map_err(&bad)?;

    let count = c.u32().map_err(&bad)?;
    if count != 1 {
        return Err(QuoteError::NotOneBank { count });
    }
    let hash = c.u16().map_err(&bad)?;
    let bank = HashAlg::from_alg_id(hash).ok_or(QuoteError::UnsupportedHash { alg: hash })?;
    let size_at = c.offset();
    let size = c.u8().map_err(&bad)?;
    if size > 4 {
        return Err(at(size_at, "sizeofSelect is above 4"));
    }
    let select = c.take(usize::from(size)).map_err(&bad)?;
    let selection = PcrMask::from_select_bytes(select)
        .map_err(|_| at(size_at, "the selection names a PCR above 23"))?;
    let digest_at = c.offset();
    let digest = c.tpm2b().map_err(&bad)?;
    if digest.len() != bank.digest_size() {
        return Err(at(
            digest_at,
            "pcrDigest size is not the bank's digest size",
        ));
    }
    let pcr_digest = Digest::from_slice(digest).ok_or(at(digest_at, "pcrDigest too long"))?;
    c.finish().map_err(&bad)?;

    Ok(Attest {
        info: AttestInfo {
            clock: ClockInfo {
                clock,
                reset_count,
                restart_count,
                safe,
            },
            firmware_version,
            bank,
            selection,
            pcr_digest,
        },
        qualified_signer,
        extra_data,
    })
}

const fn at(offset: usize, what: &'static str) -> QuoteError {
    QuoteError::Malformed {
        part: QuotePart::Attest,
        offset,
        what,
    }
}

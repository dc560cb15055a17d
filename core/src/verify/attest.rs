//! Reading a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE.

use crate::pcr::{Digest, HashAlg, PcrMask};
use crate::tpm::cursor::{Cursor, ReadError};
use crate::verify::error::{QuoteError, QuotePart, malformed};

/// TPM_GENERATED_VALUE, the magic of every TPM-made attestation.
pub const TPM_GENERATED_VALUE: u32 = tpm2_protocol::constant::TPM_GENERATED_VALUE;
/// TPM_ST_ATTEST_QUOTE.
pub const TPM_ST_ATTEST_QUOTE: u16 = tpm2_protocol::data::TpmSt::AttestQuote.value();

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

impl ClockInfo {
    /// Reads a TPMS_CLOCK_INFO (in TPMS_ATTEST and TPMS_TIME_INFO alike).
    pub(crate) fn read(c: &mut Cursor<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            clock: c.u64("clockInfo.clock")?,
            reset_count: c.u32("clockInfo.resetCount")?,
            restart_count: c.u32("clockInfo.restartCount")?,
            safe: c.yes_no("clockInfo.safe", "clockInfo.safe is neither 0 nor 1")?,
        })
    }
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

/// The fields every TPMS_ATTEST starts with, whatever its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttestHeader<'a> {
    pub(crate) qualified_signer: &'a [u8],
    pub(crate) extra_data: &'a [u8],
    pub(crate) clock: ClockInfo,
    pub(crate) firmware_version: u64,
}

/// Reads the common TPMS_ATTEST header: the TPM's magic, the type (which must
/// be `want`, else `wrong_type(found)`), qualifiedSigner, extraData, the clock
/// and the firmware version. The one place both attestation readers share.
pub(crate) fn read_header<'a>(
    c: &mut Cursor<'a>,
    want: u16,
    wrong_type: fn(u16) -> QuoteError,
) -> Result<AttestHeader<'a>, QuoteError> {
    let bad = malformed(QuotePart::Attest);
    let magic = c.u32("magic").map_err(&bad)?;
    if magic != TPM_GENERATED_VALUE {
        return Err(QuoteError::BadMagic { found: magic });
    }
    let kind = c.u16("type").map_err(&bad)?;
    if kind != want {
        return Err(wrong_type(kind));
    }
    Ok(AttestHeader {
        qualified_signer: c.tpm2b("qualifiedSigner").map_err(&bad)?,
        extra_data: c.tpm2b("extraData").map_err(&bad)?,
        clock: ClockInfo::read(c).map_err(&bad)?,
        firmware_version: c.u64("firmwareVersion").map_err(&bad)?,
    })
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
/// Read here rather than through tpm2-protocol's `TpmsAttest` view: the view
/// parses the body the tag selects before keylet can refuse a non-quote,
/// reports an unknown hash id as a failed cast at offset 0 of the nested
/// field (keylet names the id: [`QuoteError::UnsupportedHash`]), and its
/// errors count offsets from the nested field, where keylet's count from
/// the start of the TPMS_ATTEST.
///
/// # Errors
///
/// [`QuoteError::BadMagic`], [`QuoteError::WrongType`], [`QuoteError::NotOneBank`],
/// [`QuoteError::UnsupportedHash`], or [`QuoteError::Malformed`] with the byte offset.
pub fn read_attest(attest: &[u8]) -> Result<Attest<'_>, QuoteError> {
    let bad = malformed(QuotePart::Attest);
    let mut c = Cursor::new(attest);
    let header = read_header(&mut c, TPM_ST_ATTEST_QUOTE, |found| QuoteError::WrongType {
        found,
    })?;
    let AttestHeader {
        qualified_signer,
        extra_data,
        clock,
        firmware_version,
    } = header;

    let count = c.u32("pcrSelect.count").map_err(&bad)?;
    if count != 1 {
        return Err(QuoteError::NotOneBank { count });
    }
    let hash = c.u16("pcrSelect.hash").map_err(&bad)?;
    let bank = HashAlg::from_alg_id(hash).ok_or(QuoteError::UnsupportedHash { alg: hash })?;
    let size_at = c.offset();
    let size = c.u8("sizeofSelect").map_err(&bad)?;
    if size > 4 {
        return Err(bad(ReadError::invalid("sizeofSelect is above 4", size_at)));
    }
    let select = c.take(usize::from(size), "pcrSelect").map_err(&bad)?;
    let selection = PcrMask::from_select_bytes(select).map_err(|_| {
        bad(ReadError::invalid(
            "the selection names a PCR above 23",
            size_at,
        ))
    })?;
    let digest_at = c.offset();
    let digest = c.tpm2b("pcrDigest").map_err(&bad)?;
    if digest.len() != bank.digest_size() {
        return Err(bad(ReadError::invalid(
            "pcrDigest size is not the bank's digest size",
            digest_at,
        )));
    }
    let pcr_digest = Digest::from_slice(digest)
        .ok_or_else(|| bad(ReadError::invalid("pcrDigest too long", digest_at)))?;
    c.finish("TPMS_ATTEST").map_err(&bad)?;

    Ok(Attest {
        info: AttestInfo {
            clock,
            firmware_version,
            bank,
            selection,
            pcr_digest,
        },
        qualified_signer,
        extra_data,
    })
}

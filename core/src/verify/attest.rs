//! Reading a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE.
//!
//! Read field by field with tpm2-protocol's views ([`Fields`]) rather than
//! in one `TpmsAttestView` cast: the view parses the body the tag selects
//! before keylet can refuse a non-quote, and its errors count offsets from
//! the nested field that failed, where keylet names the field and counts
//! from the start of the TPMS_ATTEST.

use tpm2_protocol::basic::{TpmUint16, TpmUint32, TpmUint64};
use tpm2_protocol::data::{Tpm2bData, Tpm2bDigest, Tpm2bName, TpmiYesNo, TpmsPcrSelect};

use crate::pcr::{Digest, HashAlg, PcrMask};
use crate::tpm::cursor::ReadError;
use crate::tpm::fields::Fields;
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
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            clock: f.field::<TpmUint64>("clockInfo.clock")?.value(),
            reset_count: f.field::<TpmUint32>("clockInfo.resetCount")?.value(),
            restart_count: f.field::<TpmUint32>("clockInfo.restartCount")?.value(),
            safe: f.field::<TpmiYesNo>("clockInfo.safe")?.0,
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
    f: &mut Fields<'a>,
    want: u16,
    wrong_type: fn(u16) -> QuoteError,
) -> Result<AttestHeader<'a>, QuoteError> {
    let bad = malformed(QuotePart::Attest);
    let magic = f.field::<TpmUint32>("magic").map_err(&bad)?.value();
    if magic != TPM_GENERATED_VALUE {
        return Err(QuoteError::BadMagic { found: magic });
    }
    // Read as a number: a type tpm2-protocol does not know is still named.
    let kind = f.field::<TpmUint16>("type").map_err(&bad)?.value();
    if kind != want {
        return Err(wrong_type(kind));
    }
    Ok(AttestHeader {
        qualified_signer: f
            .field::<Tpm2bName>("qualifiedSigner")
            .map_err(&bad)?
            .data(),
        extra_data: f.field::<Tpm2bData>("extraData").map_err(&bad)?.data(),
        clock: ClockInfo::read(f).map_err(&bad)?,
        firmware_version: f
            .field::<TpmUint64>("firmwareVersion")
            .map_err(&bad)?
            .value(),
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
/// # Errors
///
/// [`QuoteError::BadMagic`], [`QuoteError::WrongType`], [`QuoteError::NotOneBank`],
/// [`QuoteError::UnsupportedHash`], or [`QuoteError::Malformed`] with the byte offset.
pub fn read_attest(attest: &[u8]) -> Result<Attest<'_>, QuoteError> {
    let bad = malformed(QuotePart::Attest);
    let mut f = Fields::new(attest);
    let header = read_header(&mut f, TPM_ST_ATTEST_QUOTE, |found| QuoteError::WrongType {
        found,
    })?;
    let AttestHeader {
        qualified_signer,
        extra_data,
        clock,
        firmware_version,
    } = header;

    // TPMS_QUOTE_INFO: a TPML_PCR_SELECTION of exactly one bank, then pcrDigest.
    let count = f
        .field::<TpmUint32>("pcrSelect.count")
        .map_err(&bad)?
        .value();
    if count != 1 {
        return Err(QuoteError::NotOneBank { count });
    }
    // The bank as a number: keylet names a hash it does not support.
    let hash = f
        .field::<TpmUint16>("pcrSelect.hash")
        .map_err(&bad)?
        .value();
    let bank = HashAlg::from_alg_id(hash).ok_or(QuoteError::UnsupportedHash { alg: hash })?;
    let size_at = f.offset();
    let select = f.field::<TpmsPcrSelect>("pcrSelect").map_err(&bad)?;
    let selection = PcrMask::from_select_bytes(select).map_err(|_| {
        bad(ReadError::invalid(
            "the selection names a PCR above 23",
            size_at,
        ))
    })?;
    let digest_at = f.offset();
    let digest = f.field::<Tpm2bDigest>("pcrDigest").map_err(&bad)?.data();
    if digest.len() != bank.digest_size() {
        return Err(bad(ReadError::invalid(
            "pcrDigest size is not the bank's digest size",
            digest_at,
        )));
    }
    let pcr_digest = Digest::from_slice(digest)
        .ok_or_else(|| bad(ReadError::invalid("pcrDigest too long", digest_at)))?;
    f.finish("TPMS_ATTEST").map_err(&bad)?;

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

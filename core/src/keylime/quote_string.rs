//! The Keylime quote string: `r<b64 TPMS_ATTEST>:<b64 TPMT_SIGNATURE>:<b64 PCR blob>`
//! (keylime-protocol §5.1), in standard base64 with padding.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::keylime::pcr_blob::{self, MAX_PCR_BLOB_LEN, PcrBlobError};
use crate::pcr::{PcrMask, PcrValues};

/// The three decoded parts of a quote string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteParts<'a> {
    /// TPMS_ATTEST.
    pub attest: &'a [u8],
    /// TPMT_SIGNATURE.
    pub signature: &'a [u8],
    /// The tpm2-tools PCR blob.
    pub pcr_blob: &'a [u8],
}

/// Which of the three parts an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The first part (TPMS_ATTEST).
    Attest,
    /// The second part (TPMT_SIGNATURE).
    Signature,
    /// The third part (PCR blob).
    PcrBlob,
}

/// Why a quote string could not be written or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuoteStringError {
    /// The output buffer is too small.
    BufferTooSmall {
        /// The bytes needed (0 if unknown).
        needed: usize,
    },
    /// The PCR values could not be encoded.
    PcrBlob(PcrBlobError),
    /// The string does not start with `r`.
    NotRawQuote,
    /// Fewer than three colon-separated parts.
    MissingParts {
        /// The number of parts found.
        found: usize,
    },
    /// A part is not valid standard base64.
    Base64 {
        /// The part.
        part: Part,
        /// The byte offset inside that part's text.
        offset: usize,
    },
}

impl fmt::Display for QuoteStringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => {
                write!(f, "quote string buffer too small (needs {needed} bytes)")
            }
            Self::PcrBlob(e) => write!(f, "quote PCR blob: {e}"),
            Self::NotRawQuote => {
                f.write_str("quote string must start with 'r' (uncompressed quote)")
            }
            Self::MissingParts { found } => {
                write!(f, "quote string has {found} ':'-separated parts, needs 3")
            }
            Self::Base64 { part, offset } => {
                write!(
                    f,
                    "quote string {part:?} part is not base64 at byte {offset}"
                )
            }
        }
    }
}

impl core::error::Error for QuoteStringError {}

impl From<PcrBlobError> for QuoteStringError {
    fn from(e: PcrBlobError) -> Self {
        Self::PcrBlob(e)
    }
}

const fn b64_len(n: usize) -> usize {
    n.div_ceil(3).saturating_mul(4)
}

/// The length of the quote string for the given part sizes and selection.
#[must_use]
pub const fn encoded_len(attest_len: usize, sig_len: usize, mask: PcrMask) -> usize {
    3usize
        .saturating_add(b64_len(attest_len))
        .saturating_add(b64_len(sig_len))
        .saturating_add(b64_len(pcr_blob::encoded_len(mask)))
}

/// Writes the quote string into the front of `out`; returns its length. The
/// output is ASCII. No allocation: the PCR blob goes through a stack buffer.
///
/// # Errors
///
/// [`QuoteStringError::PcrBlob`] if `values` lack a PCR;
/// [`QuoteStringError::BufferTooSmall`] if `out` is shorter than [`encoded_len`].
pub fn encode(
    attest: &[u8],
    signature: &[u8],
    values: &PcrValues,
    out: &mut [u8],
) -> Result<usize, QuoteStringError> {
    let needed = encoded_len(attest.len(), signature.len(), values.mask());
    if out.len() < needed {
        return Err(QuoteStringError::BufferTooSmall { needed });
    }
    let mut scratch = [0u8; MAX_PCR_BLOB_LEN];
    let blob_len = pcr_blob::encode(values, &mut scratch)?;
    let blob = scratch.get(..blob_len).unwrap_or(&[]);
    let mut pos = 0usize;
    for (prefix, part) in [(b'r', attest), (b':', signature), (b':', blob)] {
        let slot = out
            .get_mut(pos..)
            .and_then(|s| s.split_first_mut())
            .ok_or(QuoteStringError::BufferTooSmall { needed })?;
        *slot.0 = prefix;
        let n = STANDARD
            .encode_slice(part, slot.1)
            .map_err(|_| QuoteStringError::BufferTooSmall { needed })?;
        pos = pos.saturating_add(1).saturating_add(n);
    }
    Ok(pos)
}

/// Splits a quote string into its three base64 texts (TPMS_ATTEST,
/// TPMT_SIGNATURE, PCR blob) without decoding them: the push model sends
/// them as the `message`, `signature` and `subject_data` of its evidence.
/// Only the first three `:`-separated parts are used, as Keylime does.
///
/// # Errors
///
/// [`QuoteStringError::NotRawQuote`] or [`QuoteStringError::MissingParts`].
pub fn split(quote: &str) -> Result<[&str; 3], QuoteStringError> {
    let body = quote
        .strip_prefix('r')
        .ok_or(QuoteStringError::NotRawQuote)?;
    let mut texts = body.split(':');
    match (texts.next(), texts.next(), texts.next()) {
        (Some(a), Some(s), Some(p)) => Ok([a, s, p]),
        _ => Err(QuoteStringError::MissingParts {
            found: body.split(':').count(),
        }),
    }
}

/// Splits and base64-decodes a quote string into `buf`; the parts borrow `buf`.
/// Only the first three `:`-separated parts are used, as Keylime does.
///
/// # Errors
///
/// [`QuoteStringError::NotRawQuote`], [`QuoteStringError::MissingParts`],
/// [`QuoteStringError::Base64`], or [`QuoteStringError::BufferTooSmall`] if the
/// decoded parts do not fit in `buf`.
pub fn decode<'a>(quote: &str, buf: &'a mut [u8]) -> Result<QuoteParts<'a>, QuoteStringError> {
    let [a, s, p] = split(quote)?;
    let (attest, rest) = decode_part(a, Part::Attest, buf)?;
    let (signature, rest) = decode_part(s, Part::Signature, rest)?;
    let (pcr_blob, _) = decode_part(p, Part::PcrBlob, rest)?;
    Ok(QuoteParts {
        attest,
        signature,
        pcr_blob,
    })
}

fn decode_part<'a>(
    text: &str,
    part: Part,
    buf: &'a mut [u8],
) -> Result<(&'a [u8], &'a mut [u8]), QuoteStringError> {
    use base64::{DecodeError, DecodeSliceError};
    let n = STANDARD
        .decode_slice(text, &mut *buf)
        .map_err(|e| match e {
            DecodeSliceError::OutputSliceTooSmall => QuoteStringError::BufferTooSmall { needed: 0 },
            DecodeSliceError::DecodeError(
                DecodeError::InvalidByte(offset, _) | DecodeError::InvalidLastSymbol { offset, .. },
            ) => QuoteStringError::Base64 { part, offset },
            DecodeSliceError::DecodeError(_) => QuoteStringError::Base64 {
                part,
                offset: text.len(),
            },
        })?;
    let (done, rest) = buf
        .split_at_mut_checked(n)
        .ok_or(QuoteStringError::BufferTooSmall { needed: 0 })?;
    Ok((done, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_the_base64_texts() {
        assert_eq!(split("rAQI=:AwQ=:BQ==:x"), Ok(["AQI=", "AwQ=", "BQ=="]));
        assert_eq!(split("AQI=:AwQ=:BQ=="), Err(QuoteStringError::NotRawQuote));
        assert_eq!(
            split("rAQI="),
            Err(QuoteStringError::MissingParts { found: 1 })
        );
    }

    #[test]
    fn decode_errors_name_the_problem() {
        let mut buf = [0u8; 64];
        assert_eq!(
            decode("cAAAA:AAAA:AAAA", &mut buf),
            Err(QuoteStringError::NotRawQuote)
        );
        assert_eq!(
            decode("rAAAA:AAAA", &mut buf),
            Err(QuoteStringError::MissingParts { found: 2 })
        );
        assert_eq!(
            decode("rAAAA:AA*A:AAAA", &mut buf),
            Err(QuoteStringError::Base64 {
                part: Part::Signature,
                offset: 2
            })
        );
        // Extra parts are ignored, as Keylime ignores them.
        let parts = decode("rAQI=:AwQ=:BQ==:extra", &mut buf);
        assert_eq!(
            parts,
            Ok(QuoteParts {
                attest: &[1, 2],
                signature: &[3, 4],
                pcr_blob: &[5]
            })
        );
        let mut tiny = [0u8; 4];
        assert!(matches!(
            decode("rAQI=:AwQ=:BQ==", &mut tiny),
            Err(QuoteStringError::BufferTooSmall { .. })
        ));
    }
}

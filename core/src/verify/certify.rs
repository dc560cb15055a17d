//! Reading and checking a TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY, the
//! answer of TPM2_Certify.
//!
//! The Keylime verifier's push-model session check (`Tpm.verify_tpm_object`)
//! wants: the TPM's magic, the certify type, extraData equal to the decoded
//! challenge, and the certified Name equal to the Name of the AK it has from
//! the registrar. [`check_certify`] is that check minus the signature, which
//! the agent runs on its own proof before sending it.

use tpm2_protocol::data::Tpm2bName;

use crate::tpm::fields::Fields;
use crate::verify::attest::{AttestHeader, ClockInfo, read_header};
use crate::verify::error::{QuoteError, QuotePart, malformed};

/// TPM_ST_ATTEST_CERTIFY.
pub const TPM_ST_ATTEST_CERTIFY: u16 = tpm2_protocol::data::TpmSt::AttestCertify.value();

/// What a TPM2_Certify attestation says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertifyInfo<'a> {
    /// The Name of the signing key's parent chain (qualifiedSigner).
    pub qualified_signer: &'a [u8],
    /// The qualifyingData the caller gave.
    pub extra_data: &'a [u8],
    /// The TPM clock when the attestation was made.
    pub clock: ClockInfo,
    /// The TPM firmware version.
    pub firmware_version: u64,
    /// The Name of the certified object (nameAlg and digest).
    pub name: &'a [u8],
    /// The qualified Name of the certified object.
    pub qualified_name: &'a [u8],
}

/// Reads a TPMS_ATTEST that must be a TPM2_Certify attestation filling
/// `attest` exactly. Offsets in errors count from the start of `attest`.
///
/// # Errors
///
/// [`QuoteError::BadMagic`], [`QuoteError::NotCertify`], or
/// [`QuoteError::Malformed`] with the byte offset.
pub fn read_certify(attest: &[u8]) -> Result<CertifyInfo<'_>, QuoteError> {
    let bad = malformed(QuotePart::Attest);
    let mut f = Fields::new(attest);
    let AttestHeader {
        qualified_signer,
        extra_data,
        clock,
        firmware_version,
    } = read_header(&mut f, TPM_ST_ATTEST_CERTIFY, |found| {
        QuoteError::NotCertify { found }
    })?;
    let name = f
        .field::<Tpm2bName>("certifyInfo.name")
        .map_err(&bad)?
        .data();
    let qualified_name = f
        .field::<Tpm2bName>("certifyInfo.qualifiedName")
        .map_err(&bad)?
        .data();
    f.finish("TPMS_ATTEST").map_err(&bad)?;
    Ok(CertifyInfo {
        qualified_signer,
        extra_data,
        clock,
        firmware_version,
        name,
        qualified_name,
    })
}

/// Checks a TPM2_Certify attestation: it was made by a TPM, it answers
/// `qualifying` (extraData) and it certifies the object named `name` (the
/// Name without its TPM2B size, as [`crate::tpm::name`] computes it). Does
/// not check the signature.
///
/// # Errors
///
/// What [`read_certify`] returns, then [`QuoteError::NonceMismatch`] and
/// [`QuoteError::NameMismatch`].
pub fn check_certify<'a>(
    attest: &'a [u8],
    qualifying: &[u8],
    name: &[u8],
) -> Result<CertifyInfo<'a>, QuoteError> {
    let info = read_certify(attest)?;
    if info.extra_data != qualifying {
        return Err(QuoteError::NonceMismatch);
    }
    if info.name != name {
        return Err(QuoteError::NameMismatch);
    }
    Ok(info)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::verify::attest::TPM_GENERATED_VALUE;

    /// A certify attestation with a 2-byte signer, the given extraData and a
    /// 3-byte name.
    fn attest(extra: &[u8]) -> ([u8; 64], usize) {
        let mut b = [0u8; 64];
        let mut n = 0;
        let mut put = |bytes: &[u8]| {
            b[n..n + bytes.len()].copy_from_slice(bytes);
            n += bytes.len();
        };
        put(&TPM_GENERATED_VALUE.to_be_bytes());
        put(&TPM_ST_ATTEST_CERTIFY.to_be_bytes());
        put(&[0, 2, 0xAA, 0xBB]);
        put(&u16::try_from(extra.len()).unwrap().to_be_bytes());
        put(extra);
        put(&[0, 0, 0, 0, 0, 0, 0x10, 0]); // clock
        put(&[0, 0, 0, 1, 0, 0, 0, 0, 1]); // resetCount, restartCount, safe
        put(&[0, 0, 0, 0, 0, 0, 0, 7]); // firmwareVersion
        put(&[0, 3, 0, 0x0B, 0x11]); // name
        put(&[0, 0]); // qualifiedName
        (b, n)
    }

    #[test]
    fn reads_and_checks_a_certify_attestation() {
        let (b, n) = attest(b"nonce");
        let info = check_certify(&b[..n], b"nonce", &[0, 0x0B, 0x11]).unwrap();
        assert_eq!(info.qualified_signer, &[0xAA, 0xBB]);
        assert_eq!(info.firmware_version, 7);
        assert!(info.clock.safe);
        assert_eq!(info.qualified_name, &[] as &[u8]);
        assert_eq!(
            check_certify(&b[..n], b"other", &[0, 0x0B, 0x11]),
            Err(QuoteError::NonceMismatch)
        );
        assert_eq!(
            check_certify(&b[..n], b"nonce", &[0, 0x0B, 0x12]),
            Err(QuoteError::NameMismatch)
        );
    }

    #[test]
    fn refuses_quotes_truncation_and_trailing_bytes() {
        let (mut b, n) = attest(b"x");
        assert!(matches!(
            read_certify(&b[..n - 1]),
            Err(QuoteError::Malformed { .. })
        ));
        assert!(matches!(
            read_certify(&b[..n + 1]),
            Err(QuoteError::Malformed {
                what: "unexpected trailing bytes",
                ..
            })
        ));
        b[5] = 0x18; // TPM_ST_ATTEST_QUOTE
        assert_eq!(
            read_certify(&b[..n]),
            Err(QuoteError::NotCertify { found: 0x8018 })
        );
        b[0] = 0;
        assert!(matches!(
            read_certify(&b[..n]),
            Err(QuoteError::BadMagic { .. })
        ));
    }
}

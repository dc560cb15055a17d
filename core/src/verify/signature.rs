//! Reading a TPMT_SIGNATURE.

use tpm2_protocol::basic::TpmUint16;
use tpm2_protocol::data::{Tpm2bEccParameter, Tpm2bPublicKeyRsa};

use crate::pcr::HashAlg;
use crate::public::alg;
use crate::tpm::fields::Fields;
use crate::verify::error::{QuoteError, QuotePart, malformed};

/// A quote signature, borrowing its big-endian values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature<'a> {
    /// RSASSA-PKCS1-v1_5.
    RsaSsa {
        /// The hash that was signed.
        hash: HashAlg,
        /// The signature, as long as the modulus.
        sig: &'a [u8],
    },
    /// ECDSA.
    Ecdsa {
        /// The hash that was signed.
        hash: HashAlg,
        /// The r value.
        r: &'a [u8],
        /// The s value.
        s: &'a [u8],
    },
}

impl Signature<'_> {
    /// The hash that was signed.
    #[must_use]
    pub const fn hash(&self) -> HashAlg {
        match self {
            Self::RsaSsa { hash, .. } | Self::Ecdsa { hash, .. } => *hash,
        }
    }

    /// The TPM sigAlg.
    #[must_use]
    pub const fn sig_alg(&self) -> u16 {
        match self {
            Self::RsaSsa { .. } => alg::RSASSA,
            Self::Ecdsa { .. } => alg::ECDSA,
        }
    }
}

/// Reads a TPMT_SIGNATURE that fills `signature` exactly.
///
/// # Errors
///
/// [`QuoteError::UnsupportedSignature`] for algorithms other than RSASSA and ECDSA,
/// [`QuoteError::UnsupportedHash`], or [`QuoteError::Malformed`] with the byte offset.
pub fn read_signature(signature: &[u8]) -> Result<Signature<'_>, QuoteError> {
    let bad = malformed(QuotePart::Signature);
    let mut f = Fields::new(signature);
    // Numbers first: an algorithm keylet does not support is named.
    let sig_alg = f.field::<TpmUint16>("sigAlg").map_err(&bad)?.value();
    if sig_alg != alg::RSASSA && sig_alg != alg::ECDSA {
        return Err(QuoteError::UnsupportedSignature { sig_alg });
    }
    let hash_id = f.field::<TpmUint16>("hash").map_err(&bad)?.value();
    let hash = HashAlg::from_alg_id(hash_id).ok_or(QuoteError::UnsupportedHash { alg: hash_id })?;
    let out = if sig_alg == alg::RSASSA {
        Signature::RsaSsa {
            hash,
            sig: f
                .field::<Tpm2bPublicKeyRsa>("signature")
                .map_err(&bad)?
                .data(),
        }
    } else {
        Signature::Ecdsa {
            hash,
            r: f.field::<Tpm2bEccParameter>("signatureR")
                .map_err(&bad)?
                .data(),
            s: f.field::<Tpm2bEccParameter>("signatureS")
                .map_err(&bad)?
                .data(),
        }
    };
    f.finish("TPMT_SIGNATURE").map_err(&bad)?;
    Ok(out)
}

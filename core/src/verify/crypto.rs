//! Signature checks over H(TPMS_ATTEST): ECDSA P-256 without allocation, and
//! RSASSA-PKCS1-v1_5 through the `rsa` crate when the `alloc` feature is on.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature as EcdsaSignature, VerifyingKey};

use crate::pcr::{Digest, HashAlg};
use crate::verify::error::QuoteError;

/// Checks an ECDSA P-256 signature (r, s) over the prehash `digest`.
///
/// # Errors
///
/// [`QuoteError::ScalarOutOfRange`] for r or s of zero, above 32 bytes or not
/// below the group order; [`QuoteError::InvalidKey`] for a point off the curve;
/// [`QuoteError::BadSignature`] if the signature does not verify.
pub fn verify_ecdsa_p256(
    x: &[u8],
    y: &[u8],
    digest: &Digest,
    r: &[u8],
    s: &[u8],
) -> Result<(), QuoteError> {
    let mut point = [0u8; 65];
    point[0] = 0x04;
    point
        .get_mut(1..33)
        .ok_or(QuoteError::InvalidKey)?
        .copy_from_slice(fixed32(x).ok_or(QuoteError::InvalidKey)?.as_slice());
    point
        .get_mut(33..65)
        .ok_or(QuoteError::InvalidKey)?
        .copy_from_slice(fixed32(y).ok_or(QuoteError::InvalidKey)?.as_slice());
    let key = VerifyingKey::from_sec1_bytes(&point).map_err(|_| QuoteError::InvalidKey)?;
    let r = fixed32(r).ok_or(QuoteError::ScalarOutOfRange)?;
    let s = fixed32(s).ok_or(QuoteError::ScalarOutOfRange)?;
    let sig = EcdsaSignature::from_scalars(r, s).map_err(|_| QuoteError::ScalarOutOfRange)?;
    key.verify_prehash(digest.as_bytes(), &sig)
        .map_err(|_| QuoteError::BadSignature)
}

/// Left-pads a big-endian value of at most 32 bytes to exactly 32.
fn fixed32(v: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let start = 32usize.checked_sub(v.len())?;
    out.get_mut(start..)?.copy_from_slice(v);
    Some(out)
}

/// Checks an RSASSA-PKCS1-v1_5 signature over `digest` (made with `hash`).
///
/// # Errors
///
/// [`QuoteError::InvalidKey`] for a modulus/exponent the `rsa` crate refuses,
/// [`QuoteError::BadSignature`] if the signature does not verify.
#[cfg(feature = "alloc")]
pub fn verify_rsassa(
    modulus: &[u8],
    exponent: u32,
    hash: HashAlg,
    digest: &Digest,
    sig: &[u8],
) -> Result<(), QuoteError> {
    use rsa::{BoxedUint, Pkcs1v15Sign, PublicKey as RsaPublicKey};
    let e = if exponent == 0 { 65_537 } else { exponent };
    let n = BoxedUint::from_be_slice_vartime(modulus);
    let key =
        RsaPublicKey::new(n, BoxedUint::from(u64::from(e))).map_err(|_| QuoteError::InvalidKey)?;
    let scheme = match hash {
        // A quote of the SHA-1 bank, which the verifier wants signed with SHA-1.
        HashAlg::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
        HashAlg::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
        HashAlg::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
        HashAlg::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
    };
    key.verify(scheme, digest.as_bytes(), sig)
        .map_err(|_| QuoteError::BadSignature)
}

/// Without the `alloc` feature RSA signatures cannot be checked.
///
/// # Errors
///
/// Always [`QuoteError::RsaUnavailable`].
#[cfg(not(feature = "alloc"))]
pub fn verify_rsassa(
    _modulus: &[u8],
    _exponent: u32,
    _hash: HashAlg,
    _digest: &Digest,
    _sig: &[u8],
) -> Result<(), QuoteError> {
    Err(QuoteError::RsaUnavailable)
}

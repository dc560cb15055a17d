//! Reading a marshalled TPM2B_PUBLIC / TPMT_PUBLIC into the key it carries.
//!
//! The reader borrows from the input and copies nothing; each field is read
//! with tpm2-protocol's view of it ([`Fields`]). It understands the
//! key types keylet uses (RSA; ECC on NIST P-256 for its EK and AK, and on
//! P-384 and P-521 for TCG device identity keys), walks every field in order (TPM 2.0 Part 2, §12.2), and rejects anything
//! it cannot account for, including trailing bytes after the TPM2B.

use core::fmt;

use tpm2_protocol::basic::{TpmUint16, TpmUint32};
use tpm2_protocol::data::{
    Tpm2bDigest, Tpm2bEccParameter, Tpm2bPublicKeyRsa, TpmaObject, TpmtKdfScheme, TpmtSymDefObject,
};

use crate::pcr::HashAlg;
use crate::tpm::cursor::{ReadError, ReadErrorKind};
use crate::tpm::fields::Fields;

/// TPM algorithm identifiers used by public areas and signatures, as
/// tpm2-protocol numbers them.
pub mod alg {
    use tpm2_protocol::data::{TpmAlgId, TpmEccCurve};

    /// TPM_ALG_RSA.
    pub const RSA: u16 = TpmAlgId::Rsa.value();
    /// TPM_ALG_KEYEDHASH.
    pub const KEYEDHASH: u16 = TpmAlgId::KeyedHash.value();
    /// TPM_ALG_NULL.
    pub const NULL: u16 = TpmAlgId::Null.value();
    /// TPM_ALG_RSASSA.
    pub const RSASSA: u16 = TpmAlgId::Rsassa.value();
    /// TPM_ALG_RSAES.
    pub const RSAES: u16 = TpmAlgId::Rsaes.value();
    /// TPM_ALG_RSAPSS.
    pub const RSAPSS: u16 = TpmAlgId::Rsapss.value();
    /// TPM_ALG_OAEP.
    pub const OAEP: u16 = TpmAlgId::Oaep.value();
    /// TPM_ALG_ECDSA.
    pub const ECDSA: u16 = TpmAlgId::Ecdsa.value();
    /// TPM_ALG_ECDH.
    pub const ECDH: u16 = TpmAlgId::Ecdh.value();
    /// TPM_ALG_ECDAA.
    pub const ECDAA: u16 = TpmAlgId::Ecdaa.value();
    /// TPM_ALG_SM2.
    pub const SM2: u16 = TpmAlgId::Sm2.value();
    /// TPM_ALG_ECSCHNORR.
    pub const ECSCHNORR: u16 = TpmAlgId::Ecschnorr.value();
    /// TPM_ALG_ECC.
    pub const ECC: u16 = TpmAlgId::Ecc.value();
    /// TPM_ALG_SYMCIPHER.
    pub const SYMCIPHER: u16 = TpmAlgId::SymCipher.value();
    /// TPM_ECC_NIST_P256.
    pub const CURVE_NIST_P256: u16 = TpmEccCurve::NistP256.value();
    /// TPM_ECC_NIST_P384.
    pub const CURVE_NIST_P384: u16 = TpmEccCurve::NistP384.value();
    /// TPM_ECC_NIST_P521.
    pub const CURVE_NIST_P521: u16 = TpmEccCurve::NistP521.value();
}

/// The key a public area carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKey<'a> {
    /// An RSA key.
    Rsa {
        /// The big-endian modulus (the TPM `unique` field).
        modulus: &'a [u8],
        /// The public exponent; 0 means the default, 65537.
        exponent: u32,
    },
    /// An ECC key on NIST P-256; each coordinate is 32 big-endian bytes.
    EccP256 {
        /// The X coordinate.
        x: &'a [u8],
        /// The Y coordinate.
        y: &'a [u8],
    },
    /// An ECC key on NIST P-384; each coordinate is 48 big-endian bytes.
    EccP384 {
        /// The X coordinate.
        x: &'a [u8],
        /// The Y coordinate.
        y: &'a [u8],
    },
    /// An ECC key on NIST P-521; each coordinate is 66 big-endian bytes.
    EccP521 {
        /// The X coordinate.
        x: &'a [u8],
        /// The Y coordinate.
        y: &'a [u8],
    },
}

/// The length of each coordinate of a key on `curve` (a TPM_ECC_CURVE), for
/// the curves keylet reads: NIST P-256, P-384 and P-521.
#[must_use]
pub const fn ecc_coordinate_len(curve: u16) -> Option<usize> {
    match curve {
        alg::CURVE_NIST_P256 => Some(32),
        alg::CURVE_NIST_P384 => Some(48),
        alg::CURVE_NIST_P521 => Some(66),
        _ => None,
    }
}

/// The signing (or encryption) scheme recorded in the public area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// The scheme's algorithm identifier ([`alg::NULL`] when the key has none).
    pub alg: u16,
    /// The scheme's hash, if it names one.
    pub hash: Option<HashAlg>,
}

/// A borrowed view of a TPMT_PUBLIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicArea<'a> {
    /// The object type ([`alg::RSA`] or [`alg::ECC`]).
    pub object_type: u16,
    /// The name algorithm.
    pub name_alg: HashAlg,
    /// TPMA_OBJECT bits.
    pub object_attributes: u32,
    /// The authorization policy digest (empty if none).
    pub auth_policy: &'a [u8],
    /// The key's scheme.
    pub scheme: Scheme,
    /// The key.
    pub key: PublicKey<'a>,
}

impl PublicArea<'_> {
    /// Whether dictionary-attack protection covers the object (no `noDA`).
    #[must_use]
    pub const fn da_protected(&self) -> bool {
        self.object_attributes & crate::tpm::template::OBJECT_NO_DA == 0
    }
}

/// Why a public area could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicError {
    /// The input ended at `offset` while `needed` more bytes were expected.
    Truncated {
        /// Where the input ended.
        offset: usize,
        /// How many bytes the field needed.
        needed: usize,
    },
    /// Bytes were left over after the structure, from `offset` on.
    TrailingBytes {
        /// The first unexpected byte.
        offset: usize,
    },
    /// The object is neither RSA nor ECC.
    UnsupportedType {
        /// The TPM_ALG_ID found.
        object_type: u16,
    },
    /// The name algorithm is not SHA-1/256/384/512.
    UnsupportedNameAlg {
        /// The TPM_ALG_ID found.
        alg: u16,
    },
    /// A scheme or KDF names a hash keylet does not know.
    UnsupportedHash {
        /// Where the hash identifier sits.
        offset: usize,
        /// The TPM_ALG_ID found.
        alg: u16,
    },
    /// A scheme keylet does not know how to skip.
    UnsupportedScheme {
        /// Where the scheme identifier sits.
        offset: usize,
        /// The TPM_ALG_ID found.
        alg: u16,
    },
    /// The ECC key is not on NIST P-256, P-384 or P-521.
    UnsupportedCurve {
        /// The TPM_ECC_CURVE found.
        curve: u16,
    },
    /// An ECC coordinate is not as long as its curve's.
    BadCoordinate {
        /// Where the coordinate's size field sits.
        offset: usize,
        /// Its length.
        len: usize,
        /// The curve's coordinate length.
        expected: usize,
    },
    /// The RSA modulus is empty.
    EmptyModulus,
    /// A field holds a value keylet cannot use (an unknown symmetric or KDF
    /// algorithm, a size above the TPM's limits).
    Unusable {
        /// Where the field starts.
        offset: usize,
        /// The field.
        what: &'static str,
    },
}

impl fmt::Display for PublicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset, needed } => write!(
                f,
                "public area ends at byte {offset} where {needed} more bytes were expected; \
                 the key blob is cut short"
            ),
            Self::TrailingBytes { offset } => write!(
                f,
                "public area has unexpected bytes from byte {offset} on; pass exactly one TPM2B_PUBLIC"
            ),
            Self::UnsupportedType { object_type } => write!(
                f,
                "public area has object type {object_type:#06x}; only RSA and ECC keys are supported"
            ),
            Self::UnsupportedNameAlg { alg } => write!(
                f,
                "public area has name algorithm {alg:#06x}; only SHA-1/256/384/512 are supported"
            ),
            Self::UnsupportedHash { offset, alg } => write!(
                f,
                "public area names hash {alg:#06x} at byte {offset}; only SHA-1/256/384/512 are supported"
            ),
            Self::UnsupportedScheme { offset, alg } => write!(
                f,
                "public area names scheme {alg:#06x} at byte {offset}, which keylet cannot read"
            ),
            Self::UnsupportedCurve { curve } => write!(
                f,
                "unsupported curve {curve:#06x}: only NIST P-256 (0x0003), P-384 (0x0004) and \
                 P-521 (0x0005) ECC keys are supported"
            ),
            Self::BadCoordinate {
                offset,
                len,
                expected,
            } => write!(
                f,
                "ECC coordinate at byte {offset} is {len} bytes; the curve's coordinates are \
                 {expected}"
            ),
            Self::EmptyModulus => f.write_str("RSA public area has an empty modulus"),
            Self::Unusable { offset, what } => write!(
                f,
                "public area has an unusable {what} at byte {offset}; the key blob is damaged or \
                 not a TPM2B_PUBLIC"
            ),
        }
    }
}

impl core::error::Error for PublicError {}

impl From<ReadError> for PublicError {
    fn from(e: ReadError) -> Self {
        match e.kind {
            ReadErrorKind::Truncated { needed, .. } => Self::Truncated {
                offset: e.end(),
                needed,
            },
            ReadErrorKind::Trailing => Self::TrailingBytes { offset: e.offset },
            ReadErrorKind::Invalid
            | ReadErrorKind::TooLarge { .. }
            | ReadErrorKind::Unknown { .. } => Self::Unusable {
                offset: e.offset,
                what: e.what,
            },
        }
    }
}

/// Reads a TPM2B_PUBLIC (u16 size, then a TPMT_PUBLIC of exactly that size).
///
/// # Errors
///
/// [`PublicError`] if the bytes are not exactly one well-formed TPM2B_PUBLIC
/// holding an RSA or NIST P-256/P-384/P-521 key; offsets count from the start of `bytes`.
pub fn read_tpm2b_public(bytes: &[u8]) -> Result<PublicArea<'_>, PublicError> {
    let mut outer = Fields::new(bytes);
    let size = usize::from(outer.field::<TpmUint16>("size")?.value());
    let inner = outer.rest();
    let body = inner.get(..size).ok_or(PublicError::Truncated {
        offset: bytes.len(),
        needed: size.saturating_sub(inner.len()),
    })?;
    if inner.len() > size {
        return Err(PublicError::TrailingBytes {
            offset: size.saturating_add(2),
        });
    }
    read_body(&mut Fields::at(body, 2))
}

/// Reads a bare TPMT_PUBLIC that fills `bytes` exactly.
///
/// # Errors
///
/// As [`read_tpm2b_public`].
pub fn read_tpmt_public(bytes: &[u8]) -> Result<PublicArea<'_>, PublicError> {
    read_body(&mut Fields::new(bytes))
}

fn read_body<'a>(f: &mut Fields<'a>) -> Result<PublicArea<'a>, PublicError> {
    let object_type = f.field::<TpmUint16>("type")?.value();
    let name_alg_id = f.field::<TpmUint16>("nameAlg")?.value();
    let name_alg = HashAlg::from_alg_id(name_alg_id)
        .ok_or(PublicError::UnsupportedNameAlg { alg: name_alg_id })?;
    let object_attributes = f.field::<TpmaObject>("objectAttributes")?.bits();
    let auth_policy = f.field::<Tpm2bDigest>("authPolicy")?.data();
    let (scheme, key) = match object_type {
        alg::RSA => {
            f.field::<TpmtSymDefObject>("symmetric")?;
            let scheme = read_scheme(f)?;
            let _key_bits = f.field::<TpmUint16>("keyBits")?;
            let exponent = f.field::<TpmUint32>("exponent")?.value();
            let modulus = f.field::<Tpm2bPublicKeyRsa>("unique.rsa")?.data();
            if modulus.is_empty() {
                return Err(PublicError::EmptyModulus);
            }
            (scheme, PublicKey::Rsa { modulus, exponent })
        }
        alg::ECC => {
            f.field::<TpmtSymDefObject>("symmetric")?;
            let scheme = read_scheme(f)?;
            let curve = f.field::<TpmUint16>("curveID")?.value();
            f.field::<TpmtKdfScheme>("kdf")?;
            let len = ecc_coordinate_len(curve).ok_or(PublicError::UnsupportedCurve { curve })?;
            let x = read_coordinate(f, len)?;
            let y = read_coordinate(f, len)?;
            let key = match curve {
                alg::CURVE_NIST_P384 => PublicKey::EccP384 { x, y },
                alg::CURVE_NIST_P521 => PublicKey::EccP521 { x, y },
                _ => PublicKey::EccP256 { x, y },
            };
            (scheme, key)
        }
        other => return Err(PublicError::UnsupportedType { object_type: other }),
    };
    f.finish("TPMT_PUBLIC")?;
    Ok(PublicArea {
        object_type,
        name_alg,
        object_attributes,
        auth_policy,
        scheme,
        key,
    })
}

/// TPMT_RSA_SCHEME / TPMT_ECC_SCHEME: the scheme, then its hash (and for
/// ECDAA the commit count, which tpm2-protocol 1.2.3's TPMU_ASYM_SCHEME
/// lacks, so the details are read here field by field).
fn read_scheme(f: &mut Fields<'_>) -> Result<Scheme, PublicError> {
    let offset = f.offset();
    let scheme = f.field::<TpmUint16>("scheme")?.value();
    let hash = match scheme {
        alg::NULL | alg::RSAES => None,
        alg::ECDAA => {
            let h = read_hash(f)?;
            f.field::<TpmUint16>("scheme.count")?;
            Some(h)
        }
        // Every other signing, encryption or key-exchange scheme is a TPMS_SCHEME_HASH.
        alg::RSASSA
        | alg::RSAPSS
        | alg::OAEP
        | alg::ECDSA
        | alg::ECDH
        | alg::SM2
        | alg::ECSCHNORR => Some(read_hash(f)?),
        other => return Err(PublicError::UnsupportedScheme { offset, alg: other }),
    };
    Ok(Scheme { alg: scheme, hash })
}

fn read_hash(f: &mut Fields<'_>) -> Result<HashAlg, PublicError> {
    let offset = f.offset();
    let id = f.field::<TpmUint16>("hashAlg")?.value();
    HashAlg::from_alg_id(id).ok_or(PublicError::UnsupportedHash { offset, alg: id })
}

fn read_coordinate<'a>(f: &mut Fields<'a>, expected: usize) -> Result<&'a [u8], PublicError> {
    let offset = f.offset();
    let v = f.field::<Tpm2bEccParameter>("unique.ecc")?.data();
    if v.len() == expected {
        Ok(v)
    } else {
        Err(PublicError::BadCoordinate {
            offset,
            len: v.len(),
            expected,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// An ECDSA-P256-SHA256 AK template with a made-up point.
    fn ecc_public() -> [u8; 90] {
        let mut b = [0u8; 90];
        let head: [u8; 24] = [
            0x00, 0x58, // size 88
            0x00, 0x23, 0x00, 0x0b, 0x00, 0x05, 0x00, 0x72, 0x00,
            0x00, // ecc, sha256, attrs, no policy
            0x00, 0x10, // symmetric NULL
            0x00, 0x18, 0x00, 0x0b, // ECDSA / SHA-256
            0x00, 0x03, // P-256
            0x00, 0x10, // kdf NULL
            0x00, 0x20, // x size
        ];
        b[..24].copy_from_slice(&head);
        b[24..56].fill(0x11);
        b[56..58].copy_from_slice(&[0x00, 0x20]);
        b[58..90].fill(0x22);
        b
    }

    #[test]
    fn reads_ecc_key_and_scheme() -> Result<(), PublicError> {
        let b = ecc_public();
        let p = read_tpm2b_public(&b)?;
        assert_eq!(p.object_type, alg::ECC);
        assert_eq!(p.name_alg, HashAlg::Sha256);
        assert_eq!(p.object_attributes, 0x0005_0072);
        assert!(p.da_protected(), "an AK made without noDA");
        assert_eq!(
            p.scheme,
            Scheme {
                alg: alg::ECDSA,
                hash: Some(HashAlg::Sha256)
            }
        );
        assert_eq!(
            p.key,
            PublicKey::EccP256 {
                x: &[0x11; 32],
                y: &[0x22; 32]
            }
        );
        assert_eq!(read_tpmt_public(&b[2..])?, p);
        Ok(())
    }

    #[test]
    fn rejects_other_curves_trailing_and_short_input() {
        let mut b = ecc_public();
        b[18..20].copy_from_slice(&[0x00, 0x10]); // BN P-256
        assert_eq!(
            read_tpm2b_public(&b),
            Err(PublicError::UnsupportedCurve { curve: 0x10 })
        );
        b[18..20].copy_from_slice(&[0x00, 0x04]); // P-384 with P-256 coordinates
        assert_eq!(
            read_tpm2b_public(&b),
            Err(PublicError::BadCoordinate {
                offset: 22,
                len: 32,
                expected: 48
            })
        );
        let mut long = [0u8; 91];
        long[..90].copy_from_slice(&ecc_public());
        assert_eq!(
            read_tpm2b_public(&long),
            Err(PublicError::TrailingBytes { offset: 90 })
        );
        for cut in 0..90 {
            assert!(
                read_tpm2b_public(&ecc_public()[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }
}

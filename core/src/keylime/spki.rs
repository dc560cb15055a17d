//! SubjectPublicKeyInfo DER and PEM of TPM public keys, byte for byte as
//! OpenSSL (and Python's `cryptography`) write them (keylime-protocol §2.1).

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::public::PublicKey;

/// The longest RSA modulus accepted (4096 bits).
pub const MAX_MODULUS_LEN: usize = 512;
/// A DER buffer this long fits any supported key.
pub const MAX_DER_LEN: usize = 600;
/// A PEM buffer this long fits any supported key.
pub const MAX_PEM_LEN: usize = 880;

const PEM_BEGIN: &[u8] = b"-----BEGIN PUBLIC KEY-----\n";
const PEM_END: &[u8] = b"-----END PUBLIC KEY-----\n";
/// AlgorithmIdentifier { rsaEncryption, NULL }.
const RSA_ALG_ID: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// SEQUENCE { AlgorithmIdentifier { id-ecPublicKey, prime256v1 }, BIT STRING 0x00 0x04 ... }.
const P256_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
];
/// SEQUENCE { AlgorithmIdentifier { id-ecPublicKey, secp384r1 }, BIT STRING 0x00 0x04 ... }.
const P384_PREFIX: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04,
];
/// SEQUENCE { AlgorithmIdentifier { id-ecPublicKey, secp521r1 }, BIT STRING 0x00 0x04 ... }.
const P521_PREFIX: &[u8] = &[
    0x30, 0x81, 0x9b, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05,
    0x2b, 0x81, 0x04, 0x00, 0x23, 0x03, 0x81, 0x86, 0x00, 0x04,
];

/// Why a key could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpkiError {
    /// The output buffer is too small.
    BufferTooSmall,
    /// The RSA modulus is empty, all zero, or longer than [`MAX_MODULUS_LEN`].
    BadModulus {
        /// Its length in bytes.
        len: usize,
    },
    /// An ECC coordinate is not as long as its curve's.
    BadCoordinate {
        /// Its length in bytes.
        len: usize,
        /// The curve's coordinate length.
        expected: usize,
    },
}

impl fmt::Display for SpkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall => f.write_str("public key encoding buffer too small"),
            Self::BadModulus { len } => write!(
                f,
                "RSA modulus of {len} bytes cannot be encoded (1..={MAX_MODULUS_LEN}, not zero)"
            ),
            Self::BadCoordinate { len, expected } => {
                write!(
                    f,
                    "ECC coordinate is {len} bytes, not the curve's {expected}"
                )
            }
        }
    }
}

impl core::error::Error for SpkiError {}

struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SpkiError> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(SpkiError::BufferTooSmall)?;
        self.out
            .get_mut(self.pos..end)
            .ok_or(SpkiError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    /// A DER tag and definite length (short form, or 0x81/0x82 long form).
    fn header(&mut self, tag: u8, len: usize) -> Result<(), SpkiError> {
        let [_, _, hi, lo] = u32::try_from(len)
            .map_err(|_| SpkiError::BufferTooSmall)?
            .to_be_bytes();
        if len < 0x80 {
            self.put(&[tag, lo])
        } else if len < 0x100 {
            self.put(&[tag, 0x81, lo])
        } else {
            self.put(&[tag, 0x82, hi, lo])
        }
    }
}

/// The encoded length of a DER element with `content` bytes.
const fn tlv_len(content: usize) -> usize {
    let head = if content < 0x80 {
        2
    } else if content < 0x100 {
        3
    } else {
        4
    };
    content.saturating_add(head)
}

/// Writes the SPKI DER of `key` into the front of `out`; returns its length.
///
/// # Errors
///
/// [`SpkiError`] for an unusable modulus or coordinate, or a short buffer.
pub fn der(key: &PublicKey<'_>, out: &mut [u8]) -> Result<usize, SpkiError> {
    let mut w = Writer { out, pos: 0 };
    match *key {
        PublicKey::EccP256 { x, y } => ecc(&mut w, P256_PREFIX, 32, x, y)?,
        PublicKey::EccP384 { x, y } => ecc(&mut w, P384_PREFIX, 48, x, y)?,
        PublicKey::EccP521 { x, y } => ecc(&mut w, P521_PREFIX, 66, x, y)?,
        PublicKey::Rsa { modulus, exponent } => {
            let first = modulus.iter().position(|b| *b != 0);
            let m = first.and_then(|i| modulus.get(i..)).unwrap_or(&[]);
            if m.is_empty() || m.len() > MAX_MODULUS_LEN {
                return Err(SpkiError::BadModulus { len: modulus.len() });
            }
            let pad = m.first().is_some_and(|b| b & 0x80 != 0);
            let m_content = m.len().saturating_add(usize::from(pad));
            let e = if exponent == 0 { 65_537 } else { exponent };
            let e_bytes = e.to_be_bytes();
            let e_first = e_bytes.iter().position(|b| *b != 0).unwrap_or(3);
            let e_min = e_bytes.get(e_first..).unwrap_or(&[]);
            let e_pad = e_min.first().is_some_and(|b| b & 0x80 != 0);
            let e_content = e_min.len().saturating_add(usize::from(e_pad));
            let rsa_key = tlv_len(m_content).saturating_add(tlv_len(e_content));
            let bit_string = tlv_len(rsa_key).saturating_add(1);
            let spki = RSA_ALG_ID.len().saturating_add(tlv_len(bit_string));
            w.header(0x30, spki)?;
            w.put(RSA_ALG_ID)?;
            w.header(0x03, bit_string)?;
            w.put(&[0x00])?;
            w.header(0x30, rsa_key)?;
            w.header(0x02, m_content)?;
            if pad {
                w.put(&[0x00])?;
            }
            w.put(m)?;
            w.header(0x02, e_content)?;
            if e_pad {
                w.put(&[0x00])?;
            }
            w.put(e_min)?;
        }
    }
    Ok(w.pos)
}

/// An uncompressed point after its curve's SPKI header.
fn ecc(w: &mut Writer<'_>, prefix: &[u8], len: usize, x: &[u8], y: &[u8]) -> Result<(), SpkiError> {
    for c in [x, y] {
        if c.len() != len {
            return Err(SpkiError::BadCoordinate {
                len: c.len(),
                expected: len,
            });
        }
    }
    w.put(prefix)?;
    w.put(x)?;
    w.put(y)
}

/// Writes the PEM of a DER SPKI: `-----BEGIN PUBLIC KEY-----\n`, base64 in
/// 64-character lines each ending in `\n`, `-----END PUBLIC KEY-----\n`.
///
/// # Errors
///
/// [`SpkiError::BufferTooSmall`] if `out` is too short.
pub fn pem_from_der(der: &[u8], out: &mut [u8]) -> Result<usize, SpkiError> {
    let mut w = Writer { out, pos: 0 };
    w.put(PEM_BEGIN)?;
    for line in der.chunks(48) {
        let rest = w.out.get_mut(w.pos..).ok_or(SpkiError::BufferTooSmall)?;
        let n = STANDARD
            .encode_slice(line, rest)
            .map_err(|_| SpkiError::BufferTooSmall)?;
        w.pos = w.pos.saturating_add(n);
        w.put(b"\n")?;
    }
    w.put(PEM_END)?;
    Ok(w.pos)
}

/// Writes the SPKI PEM of `key` into the front of `out`; returns its length.
///
/// # Errors
///
/// As [`der`] and [`pem_from_der`].
pub fn pem(key: &PublicKey<'_>, out: &mut [u8]) -> Result<usize, SpkiError> {
    let mut buf = [0u8; MAX_DER_LEN];
    let n = der(key, &mut buf)?;
    pem_from_der(buf.get(..n).unwrap_or(&[]), out)
}

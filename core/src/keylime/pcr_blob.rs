//! The tpm2-tools PCR blob: the third part of a Keylime quote (keylime-protocol §5.3).
//!
//! A little-endian host-memory image of a TPML_PCR_SELECTION (4 + 16·8 bytes),
//! a u32 count `D`, then `D` TPML_DIGESTs of 532 bytes (a u32 count and eight
//! 66-byte TPM2B_DIGEST slots). One bank only, values in ascending PCR order,
//! eight per TPML_DIGEST.

use core::fmt;

use crate::pcr::{HashAlg, MAX_DIGEST_SIZE, PCR_COUNT, PcrMask, PcrValues};
use crate::tpm::cursor::{Cursor, ReadError};

/// Bytes before the first TPML_DIGEST.
const HEADER_LEN: usize = 136;
/// Bytes of one TPML_DIGEST.
const CHUNK_LEN: usize = 532;
/// TPM2B_DIGEST slots per TPML_DIGEST.
const SLOTS: usize = 8;
/// TPMS_PCR_SELECTION slots in the TPML_PCR_SELECTION.
const SELECTION_SLOTS: usize = 16;

/// The longest blob: all 24 PCRs, three TPML_DIGESTs.
pub const MAX_PCR_BLOB_LEN: usize = HEADER_LEN + CHUNK_LEN * PCR_COUNT.div_ceil(SLOTS);

/// Why a PCR blob could not be written or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PcrBlobError {
    /// The output buffer is too small.
    BufferTooSmall {
        /// The bytes needed.
        needed: usize,
    },
    /// The PCR values to encode lack some selected PCRs.
    Incomplete {
        /// The PCRs without a value.
        missing: PcrMask,
    },
    /// The blob is not 136 + 532·D bytes for the D it declares (or ends early).
    WrongLength {
        /// The blob's length.
        len: usize,
        /// The length its header implies.
        expected: usize,
    },
    /// The TPML_PCR_SELECTION count is not 1.
    BankCount {
        /// The count found.
        count: u32,
    },
    /// Slot 0 names a hash keylet does not know.
    UnsupportedHash {
        /// The TPM_ALG_ID found.
        alg: u16,
    },
    /// A selection slot has the wrong sizeofSelect (3 in slot 0, 0 elsewhere).
    SelectSize {
        /// The slot index.
        slot: usize,
        /// The sizeofSelect found.
        size: u8,
    },
    /// The selection names a PCR above 23.
    PcrOutOfRange,
    /// D is not ceil(selected PCRs / 8).
    DigestListCount {
        /// D as found.
        found: u32,
        /// D for the selection.
        expected: usize,
    },
    /// A digest's size is not the bank's digest size.
    DigestSize {
        /// The offset of its size field.
        offset: usize,
        /// The size found.
        size: u16,
    },
    /// More digests than selected PCRs.
    ExtraDigest {
        /// The offset of the extra digest's size field.
        offset: usize,
    },
    /// Fewer digests than selected PCRs.
    MissingDigests {
        /// The PCRs without a digest.
        missing: PcrMask,
    },
}

impl fmt::Display for PcrBlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => {
                write!(f, "PCR blob needs a {needed}-byte buffer")
            }
            Self::Incomplete { missing } => write!(
                f,
                "cannot encode PCR blob: no value for PCR mask {:#08x}; read every selected PCR first",
                missing.bits()
            ),
            Self::WrongLength { len, expected } => {
                write!(f, "PCR blob is {len} bytes, its header implies {expected}")
            }
            Self::BankCount { count } => {
                write!(f, "PCR blob selects {count} banks; Keylime needs exactly 1")
            }
            Self::UnsupportedHash { alg } => {
                write!(f, "PCR blob bank {alg:#06x} is not SHA-1/256/384/512")
            }
            Self::SelectSize { slot, size } => write!(
                f,
                "PCR blob selection slot {slot} has sizeofSelect {size} (3 in slot 0, 0 elsewhere)"
            ),
            Self::PcrOutOfRange => f.write_str("PCR blob selects a PCR above 23"),
            Self::DigestListCount { found, expected } => {
                write!(
                    f,
                    "PCR blob has {found} digest lists, the selection needs {expected}"
                )
            }
            Self::DigestSize { offset, size } => write!(
                f,
                "PCR blob digest at byte {offset} is {size} bytes, not the bank's digest size"
            ),
            Self::ExtraDigest { offset } => {
                write!(
                    f,
                    "PCR blob has more digests than selected PCRs (byte {offset})"
                )
            }
            Self::MissingDigests { missing } => write!(
                f,
                "PCR blob lacks digests for PCR mask {:#08x}",
                missing.bits()
            ),
        }
    }
}

impl core::error::Error for PcrBlobError {}

/// The blob length for `mask`: 136 + 532·ceil(n/8).
#[must_use]
pub const fn encoded_len(mask: PcrMask) -> usize {
    HEADER_LEN.saturating_add(CHUNK_LEN.saturating_mul(mask.count().div_ceil(SLOTS)))
}

/// Writes the blob for `values` into the front of `out`; returns its length.
///
/// # Errors
///
/// [`PcrBlobError::Incomplete`] if a selected PCR has no value;
/// [`PcrBlobError::BufferTooSmall`] if `out` is shorter than [`encoded_len`].
pub fn encode(values: &PcrValues, out: &mut [u8]) -> Result<usize, PcrBlobError> {
    if !values.is_complete() {
        return Err(PcrBlobError::Incomplete {
            missing: values.missing(),
        });
    }
    let mask = values.mask();
    let len = encoded_len(mask);
    let out = out
        .get_mut(..len)
        .ok_or(PcrBlobError::BufferTooSmall { needed: len })?;
    out.fill(0);
    let short = PcrBlobError::BufferTooSmall { needed: len };
    let chunks = mask.count().div_ceil(SLOTS);
    let sel = mask.select_bytes();
    let (header, body) = out.split_at_mut_checked(HEADER_LEN).ok_or(short)?;
    put(header, 0, &1u32.to_le_bytes())?;
    put(header, 4, &values.bank().alg_id().to_le_bytes())?;
    put(header, 6, &[3, sel[0], sel[1], sel[2]])?;
    put(
        header,
        132,
        &u32::try_from(chunks).unwrap_or(0).to_le_bytes(),
    )?;
    let mut digests = values.iter().map(|(_, d)| d);
    for chunk in body.chunks_exact_mut(CHUNK_LEN) {
        let (count, slots) = chunk.split_at_mut_checked(4).ok_or(short)?;
        let mut used: u32 = 0;
        for slot in slots.chunks_exact_mut(2 + MAX_DIGEST_SIZE) {
            let Some(d) = digests.next() else { break };
            let size = u16::try_from(d.as_bytes().len()).unwrap_or(0);
            put(slot, 0, &size.to_le_bytes())?;
            put(slot, 2, d.as_bytes())?;
            used = used.saturating_add(1);
        }
        put(count, 0, &used.to_le_bytes())?;
    }
    Ok(len)
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), PcrBlobError> {
    let end = at.checked_add(bytes.len());
    end.and_then(|end| out.get_mut(at..end))
        .ok_or(PcrBlobError::BufferTooSmall {
            needed: end.unwrap_or(usize::MAX),
        })?
        .copy_from_slice(bytes);
    Ok(())
}

/// Reads a blob strictly: one bank, sizeofSelect 3 in slot 0 and 0 elsewhere,
/// every selected PCR exactly one digest of the bank's size, nothing left over.
///
/// # Errors
///
/// The [`PcrBlobError`] naming the first rule broken.
pub fn decode(blob: &[u8]) -> Result<PcrValues, PcrBlobError> {
    let short = |_: ReadError| PcrBlobError::WrongLength {
        len: blob.len(),
        expected: HEADER_LEN,
    };
    let mut c = Cursor::new(blob);
    let count = c.u32_le("selection count").map_err(short)?;
    if count != 1 {
        return Err(PcrBlobError::BankCount { count });
    }
    let hash = c.u16_le("hash").map_err(short)?;
    let size = c.u8("sizeofSelect").map_err(short)?;
    let select: [u8; 4] = c.array("pcrSelect").map_err(short)?;
    c.u8("padding").map_err(short)?;
    if size != 3 {
        return Err(PcrBlobError::SelectSize { slot: 0, size });
    }
    for slot in 1..SELECTION_SLOTS {
        let entry: [u8; 8] = c.array("selection slot").map_err(short)?;
        if let Some(&size) = entry.get(2).filter(|s| **s != 0) {
            return Err(PcrBlobError::SelectSize { slot, size });
        }
    }
    let bank = HashAlg::from_alg_id(hash).ok_or(PcrBlobError::UnsupportedHash { alg: hash })?;
    let mask = PcrMask::from_select_bytes(&select).map_err(|_| PcrBlobError::PcrOutOfRange)?;
    let found = c.u32_le("digest list count").map_err(short)?;
    let expected = mask.count().div_ceil(SLOTS);
    if usize::try_from(found).ok() != Some(expected) {
        return Err(PcrBlobError::DigestListCount { found, expected });
    }
    if blob.len() != encoded_len(mask) {
        return Err(PcrBlobError::WrongLength {
            len: blob.len(),
            expected: encoded_len(mask),
        });
    }
    let mut values = PcrValues::new(bank, mask);
    let mut pcrs = mask.iter();
    for _ in 0..expected {
        c.u32_le("digest count").map_err(short)?; // not trusted
        for _ in 0..SLOTS {
            let offset = c.offset();
            let size = c.u16_le("digest size").map_err(short)?;
            let buffer = c.take(MAX_DIGEST_SIZE, "digest").map_err(short)?;
            if size == 0 {
                continue;
            }
            if usize::from(size) != bank.digest_size() {
                return Err(PcrBlobError::DigestSize { offset, size });
            }
            let pcr = pcrs.next().ok_or(PcrBlobError::ExtraDigest { offset })?;
            let digest = buffer
                .get(..usize::from(size))
                .ok_or(PcrBlobError::DigestSize { offset, size })?;
            values
                .push(pcr, digest)
                .map_err(|_| PcrBlobError::DigestSize { offset, size })?;
        }
    }
    if !values.is_complete() {
        return Err(PcrBlobError::MissingDigests {
            missing: values.missing(),
        });
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Result<PcrValues, crate::pcr::PcrValuesError> {
        let mask = PcrMask::EMPTY.with(0).with(16).with(23);
        let mut v = PcrValues::new(HashAlg::Sha1, mask);
        for (i, pcr) in mask.iter().enumerate() {
            v.push(pcr, &[u8::try_from(i).unwrap_or(0); 20])?;
        }
        Ok(v)
    }

    #[test]
    fn layout_and_strict_rules() -> Result<(), PcrBlobError> {
        let v = values().map_err(|_| PcrBlobError::PcrOutOfRange)?;
        let mut blob = [0u8; MAX_PCR_BLOB_LEN];
        let n = encode(&v, &mut blob)?;
        assert_eq!(n, 668);
        assert_eq!(
            blob.get(..11),
            Some(&[1, 0, 0, 0, 4, 0, 3, 1, 0, 0x81, 0][..])
        );
        assert_eq!(
            blob.get(132..142),
            Some(&[1, 0, 0, 0, 3, 0, 0, 0, 20, 0][..])
        );
        let blob = blob.get(..n).unwrap_or(&[]);
        assert_eq!(decode(blob), Ok(v.clone()));

        let mut bad = [0u8; 668];
        bad.copy_from_slice(blob);
        bad[0] = 2;
        assert_eq!(decode(&bad), Err(PcrBlobError::BankCount { count: 2 }));
        bad.copy_from_slice(blob);
        bad[6] = 4;
        assert_eq!(
            decode(&bad),
            Err(PcrBlobError::SelectSize { slot: 0, size: 4 })
        );
        bad.copy_from_slice(blob);
        bad[14] = 3; // slot 1 sizeofSelect
        assert_eq!(
            decode(&bad),
            Err(PcrBlobError::SelectSize { slot: 1, size: 3 })
        );
        bad.copy_from_slice(blob);
        bad[140] = 32; // first digest claims SHA-256 size in a SHA-1 bank
        assert_eq!(
            decode(&bad),
            Err(PcrBlobError::DigestSize {
                offset: 140,
                size: 32
            })
        );
        bad.copy_from_slice(blob);
        bad[140 + 3 * 66] = 20; // a fourth digest for three PCRs
        assert_eq!(decode(&bad), Err(PcrBlobError::ExtraDigest { offset: 338 }));
        bad.copy_from_slice(blob);
        bad[140 + 2 * 66] = 0; // the third digest is missing
        assert!(matches!(
            decode(&bad),
            Err(PcrBlobError::MissingDigests { .. })
        ));
        Ok(())
    }

    #[test]
    fn incomplete_values_and_small_buffers_are_refused() {
        let v = PcrValues::new(HashAlg::Sha256, PcrMask::EMPTY.with(16));
        let mut out = [0u8; MAX_PCR_BLOB_LEN];
        assert!(matches!(
            encode(&v, &mut out),
            Err(PcrBlobError::Incomplete { .. })
        ));
        let Ok(v) = values() else { return };
        assert_eq!(
            encode(&v, &mut out[..667]),
            Err(PcrBlobError::BufferTooSmall { needed: 668 })
        );
        assert_eq!(
            encoded_len(PcrMask::new(0x00ff_ffff).unwrap_or_default()),
            MAX_PCR_BLOB_LEN
        );
    }
}

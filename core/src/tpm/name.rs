//! Object Names: `nameAlg (u16 BE) || H_nameAlg(marshalled TPMT_PUBLIC)`.

use core::fmt;

use crate::pcr::{HashAlg, MAX_DIGEST_SIZE};

/// The largest Name keylet computes (SHA-512 nameAlg).
pub const MAX_NAME_SIZE: usize = 2 + MAX_DIGEST_SIZE;

/// A public area whose Name cannot be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The area is shorter than its type and nameAlg fields, or its TPM2B size
    /// does not match.
    Malformed,
    /// The nameAlg is not a hash keylet supports.
    UnsupportedNameAlg(u16),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("public area is malformed; cannot compute its Name"),
            Self::UnsupportedNameAlg(alg) => {
                write!(f, "public area has unsupported nameAlg {alg:#06x}")
            }
        }
    }
}

impl core::error::Error for NameError {}

/// A TPM object Name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    len: u8,
    bytes: [u8; MAX_NAME_SIZE],
}

impl Name {
    /// The Name bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The Name of a marshalled TPMT_PUBLIC (no TPM2B size).
///
/// # Errors
///
/// [`NameError`] if the area is too short or its nameAlg is unsupported.
pub fn of_public_area(area: &[u8]) -> Result<Name, NameError> {
    let alg_bytes = area.get(2..4).ok_or(NameError::Malformed)?;
    let alg_id = u16::from_be_bytes([
        alg_bytes.first().copied().unwrap_or(0),
        alg_bytes.get(1).copied().unwrap_or(0),
    ]);
    let alg = HashAlg::from_alg_id(alg_id).ok_or(NameError::UnsupportedNameAlg(alg_id))?;
    let digest = alg.hash(area);
    let mut name = Name {
        len: 0,
        bytes: [0; MAX_NAME_SIZE],
    };
    let d = digest.as_bytes();
    let total = d.len().checked_add(2).ok_or(NameError::Malformed)?;
    let out = name.bytes.get_mut(..total).ok_or(NameError::Malformed)?;
    let (head, tail) = out.split_at_mut(2);
    head.copy_from_slice(&alg_id.to_be_bytes());
    tail.copy_from_slice(d);
    name.len = u8::try_from(total).map_err(|_| NameError::Malformed)?;
    Ok(name)
}

/// The Name of a TPM2B_PUBLIC (with its 2-byte size).
///
/// # Errors
///
/// [`NameError::Malformed`] if the size does not match the bytes.
pub fn of_tpm2b_public(public: &[u8]) -> Result<Name, NameError> {
    let size = public.get(..2).ok_or(NameError::Malformed)?;
    let size = usize::from(u16::from_be_bytes([
        size.first().copied().unwrap_or(0),
        size.get(1).copied().unwrap_or(0),
    ]));
    let area = public.get(2..).ok_or(NameError::Malformed)?;
    if area.len() != size {
        return Err(NameError::Malformed);
    }
    of_public_area(area)
}

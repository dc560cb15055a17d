//! The registrar's credential blob, the tpm2-tools makecredential file format
//! (keylime-protocol §3.4): magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT,
//! TPM2B_ENCRYPTED_SECRET, all big-endian.

use core::fmt;

use tpm2_protocol::basic::TpmUint32;
use tpm2_protocol::data::{Tpm2bEncryptedSecret, Tpm2bIdObject};

use crate::tpm::cursor::{ReadError, ReadErrorKind};
use crate::tpm::fields::Fields;

/// The blob's magic.
pub const MAGIC: u32 = 0xBADC_C0DE;
/// The only blob version.
pub const VERSION: u32 = 1;

/// A credential blob, borrowing the two TPM2B contents for ActivateCredential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialBlob<'a> {
    /// The TPM2B_ID_OBJECT content (integrityHMAC and encIdentity).
    pub id_object: &'a [u8],
    /// The TPM2B_ENCRYPTED_SECRET content (the wrapped seed).
    pub encrypted_secret: &'a [u8],
}

/// Why a credential blob could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialError {
    /// The blob does not start with 0xBADCC0DE.
    BadMagic {
        /// The magic found.
        found: u32,
    },
    /// The version is not 1.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// The blob ends at `offset` before a field is complete.
    Truncated {
        /// Where the blob ended.
        offset: usize,
    },
    /// Bytes follow the encrypted secret, from `offset` on.
    TrailingBytes {
        /// The first extra byte.
        offset: usize,
    },
    /// A TPM2B is larger than the TPM accepts for it.
    TooLarge {
        /// The field.
        what: &'static str,
        /// Where its size sits.
        offset: usize,
        /// Its size.
        size: usize,
        /// The largest the TPM accepts.
        limit: usize,
    },
}

impl fmt::Display for CredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic { found } => write!(
                f,
                "credential blob magic is {found:#010x}, not 0xbadc0de: not a makecredential blob"
            ),
            Self::UnsupportedVersion { found } => {
                write!(
                    f,
                    "credential blob version {found} is not supported (only 1)"
                )
            }
            Self::Truncated { offset } => {
                write!(f, "credential blob is cut short at byte {offset}")
            }
            Self::TrailingBytes { offset } => {
                write!(
                    f,
                    "credential blob has unexpected bytes from byte {offset} on"
                )
            }
            Self::TooLarge {
                what,
                offset,
                size,
                limit,
            } => write!(
                f,
                "credential blob's {what} at byte {offset} is {size} bytes; a TPM takes at most \
                 {limit}"
            ),
        }
    }
}

impl core::error::Error for CredentialError {}

impl From<ReadError> for CredentialError {
    fn from(e: ReadError) -> Self {
        match e.kind {
            ReadErrorKind::Trailing => Self::TrailingBytes { offset: e.offset },
            ReadErrorKind::TooLarge { limit, actual } => Self::TooLarge {
                what: e.what,
                offset: e.offset,
                size: actual,
                limit,
            },
            ReadErrorKind::Truncated { .. }
            | ReadErrorKind::Invalid
            | ReadErrorKind::Unknown { .. } => Self::Truncated { offset: e.end() },
        }
    }
}

/// Reads a credential blob (already base64-decoded).
///
/// # Errors
///
/// [`CredentialError`] naming the first problem.
pub fn decode(blob: &[u8]) -> Result<CredentialBlob<'_>, CredentialError> {
    let mut f = Fields::new(blob);
    let magic = f.field::<TpmUint32>("magic")?.value();
    if magic != MAGIC {
        return Err(CredentialError::BadMagic { found: magic });
    }
    let version = f.field::<TpmUint32>("version")?.value();
    if version != VERSION {
        return Err(CredentialError::UnsupportedVersion { found: version });
    }
    let id_object = f.field::<Tpm2bIdObject>("TPM2B_ID_OBJECT")?.data();
    let encrypted_secret = f
        .field::<Tpm2bEncryptedSecret>("TPM2B_ENCRYPTED_SECRET")?
        .data();
    f.finish("credential blob")?;
    Ok(CredentialBlob {
        id_object,
        encrypted_secret,
    })
}

//! What can go wrong with payload keys and payloads.

use std::fmt;
use std::path::PathBuf;

/// A rejected key share or payload, or a delivery that failed.
///
/// The variants raised by `POST /keys/ukey` and `/keys/vkey` are answered
/// with 400 and their text as `status`.
#[derive(Debug)]
#[non_exhaustive]
pub enum PayloadError {
    /// `encrypted_key` does not decrypt with the NK (RSA-OAEP, SHA-1).
    Unwrap(String),
    /// The decrypted share is not an AES-128 or AES-256 key.
    KeyLength(usize),
    /// The payload is too short to hold Keylime's IV and tag.
    PayloadTooShort(usize),
    /// The payload would not fit the secure directory.
    PayloadTooLarge {
        /// Its size (ciphertext).
        len: usize,
        /// The `secure_size` limit in bytes.
        limit: u64,
    },
    /// A payload arrived but payloads are not accepted (mTLS is off).
    PayloadRefused(&'static str),
    /// The payload does not decrypt with K (wrong key or tampered).
    Decrypt,
    /// The secure directory cannot be prepared or used.
    SecureDir {
        /// The path.
        path: PathBuf,
        /// What is wrong and what to do.
        detail: String,
    },
    /// Writing a delivered file failed.
    Write {
        /// The path.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Writing K or the payload file failed.
    Store(crate::store::StoreError),
    /// The zip payload cannot be unpacked.
    Zip(String),
    /// The payload script could not be run or failed.
    Script(String),
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unwrap(e) => write!(
                f,
                "Failed to decrypt encrypted_key: {e} (it must be RSA-OAEP with SHA-1, made with \
                 the payload key this agent serves as pubkey)"
            ),
            Self::KeyLength(n) => write!(
                f,
                "Invalid decrypted key: {n} bytes; a key share must be 16 or 32 bytes (AES-128 or AES-256)"
            ),
            Self::PayloadTooShort(n) => write!(
                f,
                "Invalid payload: {n} bytes cannot hold the 16-byte IV and 16-byte tag of an AES-GCM payload"
            ),
            Self::PayloadTooLarge { len, limit } => write!(
                f,
                "payload of {len} bytes does not fit secure_size ({limit} bytes); raise secure_size \
                 in the agent's configuration or send a smaller payload"
            ),
            Self::PayloadRefused(why) => write!(f, "payload refused: {why}"),
            Self::Decrypt => f.write_str(
                "the payload does not decrypt with the derived key (AES-GCM tag mismatch)",
            ),
            Self::SecureDir { path, detail } => {
                write!(f, "secure directory {}: {detail}", path.display())
            }
            Self::Write { path, source } => write!(f, "cannot write {}: {source}", path.display()),
            Self::Store(e) => write!(f, "{e}"),
            Self::Zip(e) => write!(f, "cannot unpack the zip payload: {e}"),
            Self::Script(e) => write!(f, "payload script: {e}"),
        }
    }
}

impl std::error::Error for PayloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Write { source, .. } => Some(source),
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

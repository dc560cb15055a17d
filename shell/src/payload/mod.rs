//! Payload keys and payload delivery (keylime-protocol §4.5–§4.7, §6).
//!
//! The tenant sends the key share U (`POST /keys/ukey`, with an auth tag and
//! an optional encrypted payload), the verifier sends V (`POST /keys/vkey`)
//! after the first good quote; both are RSA-OAEP(SHA-1) wrapped with the
//! agent's payload key NK. `K = U xor V` is accepted once
//! `HMAC-SHA384(K, agent id)` equals the auth tag; then `GET /keys/verify`
//! proves K to the tenant and the payload is decrypted (AES-GCM) into the
//! secure directory.
//!
//! Without the `payload` feature (on in the default build) keylet still
//! takes the shares and proves K on `/keys/verify` (the tenant's `add` needs
//! that), but refuses payloads and writes nothing: no secure directory, no
//! decryption, no zip, no payload script.

mod bootstrap;
#[cfg(feature = "payload")]
pub mod cipher;
#[cfg(feature = "payload")]
pub mod deliver;
pub mod secure_dir;
#[cfg(feature = "payload")]
mod unzip;

use std::path::PathBuf;

pub use bootstrap::{Delivered, KeyBootstrap, SymmetricKey};

/// IV length of Keylime's AES-GCM payloads (not GCM's usual 12).
pub(crate) const IV_LEN: usize = 16;
/// GCM tag length of Keylime's payloads.
pub(crate) const TAG_LEN: usize = 16;

/// Why a build without the payload feature refuses payloads.
const NOT_BUILT: &str = "this keylet was built without the payload feature, so it accepts no \
    payloads (K is still derived and proven on /keys/verify); use a default build to deliver payloads";

/// A build without the `payload` feature prepares no secure directory
/// ([`secure_dir::prepare`] refuses), so [`KeyBootstrap`] refuses payloads
/// and never calls this.
#[cfg(not(feature = "payload"))]
mod deliver {
    pub(crate) fn deliver(
        _secure: &std::path::Path,
        _config: &crate::config::PayloadConfig,
        _k: &super::SymmetricKey,
        _payload: Option<&[u8]>,
    ) -> Result<super::Delivered, super::PayloadError> {
        Err(super::PayloadError::PayloadRefused(super::NOT_BUILT))
    }
}

/// A rejected key share or payload, or a delivery that failed. Those of
/// `POST /keys/ukey` and `/keys/vkey` are answered with 400 and their text
/// as `status`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    #[error(
        "Failed to decrypt encrypted_key: {0} (it must be RSA-OAEP with SHA-1, made with \
         the payload key this agent serves as pubkey)"
    )]
    Unwrap(String),
    /// The decrypted share's length: not an AES-128 or AES-256 key.
    #[error(
        "Invalid decrypted key: {0} bytes; a key share must be 16 or 32 bytes (AES-128 or AES-256)"
    )]
    KeyLength(usize),
    /// The payload's length: too short for Keylime's IV and tag.
    #[error(
        "Invalid payload: {0} bytes cannot hold the 16-byte IV and 16-byte tag of an AES-GCM payload"
    )]
    PayloadTooShort(usize),
    /// The payload's length and the `secure_size` limit in bytes that its
    /// ciphertext would not fit.
    #[error(
        "payload of {0} bytes does not fit secure_size ({1} bytes); raise secure_size \
         in the agent's configuration or send a smaller payload"
    )]
    PayloadTooLarge(usize, u64),
    /// Why payloads are not accepted (mTLS is off, or not built).
    #[error("payload refused: {0}")]
    PayloadRefused(&'static str),
    /// The payload does not decrypt with K (wrong key or tampered).
    #[error("the payload does not decrypt with the derived key (AES-GCM tag mismatch)")]
    Decrypt,
    /// What is wrong with the secure directory and what to do.
    #[error("secure directory {path}: {1}", path = .0.display())]
    SecureDir(PathBuf, String),
    /// Writing K, the payload or an unpacked file failed.
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot unpack the zip payload: {0}")]
    Zip(String),
    /// The payload script could not be run or failed.
    #[error("payload script: {0}")]
    Script(String),
}

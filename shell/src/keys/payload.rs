//! The payload key ("NK"): RSA-2048, generated in software, persisted.
//!
//! Its public key PEM is what the agent serves as `pubkey` and what PCR 16 is
//! extended with before every quote; the verifier caches it, so it must stay
//! the same across restarts.

use std::path::Path;

use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use crate::store::{self, StoreError};

pub struct PayloadKey {
    key: rsa::PrivateKey,
    public_pem: String,
}

impl std::fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadKey")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

impl PayloadKey {
    /// The SubjectPublicKeyInfo PEM (OpenSSL layout, trailing newline): the
    /// exact bytes served as `pubkey` and hashed into PCR 16.
    #[must_use]
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The private key, for decrypting the U and V key shares.
    #[must_use]
    pub fn private(&self) -> &rsa::PrivateKey {
        &self.key
    }

    fn from_key(key: rsa::PrivateKey, path: &Path) -> Result<Self, StoreError> {
        if key.size() != 256 {
            return Err(StoreError::invalid(
                path,
                format!(
                    "the payload key is RSA-{} but Keylime needs RSA-2048; move the file away to \
                     generate a new one (and re-add the agent at the verifier)",
                    key.size() * 8
                ),
            ));
        }
        let public_pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| {
                StoreError::invalid(path, format!("cannot encode the payload public key: {e}"))
            })?;
        Ok(Self { key, public_pem })
    }
}

/// Loads the payload key from `path`, or generates and saves one if absent.
///
/// # Errors
///
/// [`StoreError`] if the file is unreadable, too open, not an RSA-2048 PKCS#8
/// key, or cannot be written; or a password is configured.
pub fn load_or_create_payload_key(path: &Path, password: &str) -> Result<PayloadKey, StoreError> {
    if !password.is_empty() {
        return Err(StoreError::PasswordUnsupported("payload_key_password"));
    }
    if let Some(key) = read_payload_key(path)? {
        return Ok(key);
    }
    log::info!(
        "generating the payload key (RSA-2048) at {}",
        path.display()
    );
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048)
        .map_err(StoreError::generate("payload key"))?;
    let pem: Zeroizing<String> = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(StoreError::generate("payload key PEM"))?;
    store::write_private(path, pem.as_bytes())?;
    PayloadKey::from_key(key, path)
}

/// The payload key at `path`, `None` if there is none yet; `keylet doctor`
/// checks it with this too.
///
/// Errors: [`StoreError`] if the file is unreadable, too open, or not an RSA-2048
/// PKCS#8 key.
pub(crate) fn read_payload_key(path: &Path) -> Result<Option<PayloadKey>, StoreError> {
    let Some(bytes) = store::read_private(path)? else {
        return Ok(None);
    };
    let text =
        std::str::from_utf8(&bytes).map_err(|_| StoreError::invalid(path, "not a PEM file"))?;
    let key = rsa::PrivateKey::from_pkcs8_pem(text).map_err(|e| {
        StoreError::invalid(
            path,
            format!("not an unencrypted PKCS#8 RSA private key ({e})"),
        )
    })?;
    PayloadKey::from_key(key, path).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_with_an_openssl_style_pem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("payload-private.pem");
        let a = load_or_create_payload_key(&p, "").unwrap();
        let b = load_or_create_payload_key(&p, "").unwrap();
        assert_eq!(a.public_pem(), b.public_pem());
        let pem = a.public_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        // The rsa crate's own SubjectPublicKeyInfo encoding.
        let theirs = a
            .private()
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        assert_eq!(pem, theirs);
    }

    #[test]
    fn a_password_is_refused_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        assert!(matches!(
            load_or_create_payload_key(&p, "pw"),
            Err(StoreError::PasswordUnsupported { .. })
        ));
        store::write_private(
            &p,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = load_or_create_payload_key(&p, "").unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    }
}

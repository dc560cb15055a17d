//! The U and V key shares and K: unwrapping a share with the NK, combining
//! two, checking the tenant's auth tag.

use keylet_core::keylime::auth_tag::verify_hmac_sha384;
use rsa::Oaep;
use sha1::Sha1;
use zeroize::Zeroizing;

use super::PayloadError;

/// An AES-128 or AES-256 key (a share, or K), wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SymmetricKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SymmetricKey({} bytes)", self.0.len())
    }
}

impl SymmetricKey {
    /// A key of 16 or 32 bytes.
    ///
    /// # Errors
    ///
    /// [`PayloadError::KeyLength`] for any other length.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Result<Self, PayloadError> {
        match bytes.len() {
            16 | 32 => Ok(Self(bytes)),
            n => Err(PayloadError::KeyLength(n)),
        }
    }

    /// Decrypts a share wrapped as Keylime wraps it: RSA-OAEP with SHA-1 for
    /// the label hash and MGF1, no label (`keylime.crypto.rsa_encrypt`).
    ///
    /// # Errors
    ///
    /// [`PayloadError::Unwrap`] or [`PayloadError::KeyLength`].
    pub fn unwrap(nk: &rsa::PrivateKey, encrypted: &[u8]) -> Result<Self, PayloadError> {
        let plain = nk
            .decrypt_blinded(&mut getrandom::SysRng, Oaep::<Sha1>::new(), encrypted)
            .map_err(|e| PayloadError::Unwrap(e.to_string()))?;
        Self::new(Zeroizing::new(plain))
    }

    /// The key bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `self xor other`, if both have the same length.
    #[must_use]
    pub fn xor(&self, other: &Self) -> Option<Self> {
        (self.0.len() == other.0.len()).then(|| {
            Self(Zeroizing::new(
                self.0
                    .iter()
                    .zip(other.0.iter())
                    .map(|(a, b)| a ^ b)
                    .collect(),
            ))
        })
    }

    /// Whether `tag` (48 bytes) is HMAC-SHA384 of `agent_id` under this key,
    /// compared in constant time by the MAC crate.
    #[must_use]
    pub fn matches_tag(&self, agent_id: &str, tag: &[u8; 48]) -> bool {
        verify_hmac_sha384(&self.0, agent_id.as_bytes(), tag)
    }
}

//! HMAC-SHA384 tags in lowercase hex (keylime-protocol §3.5, §4.7).
//!
//! * Activation: `auth_tag = hex(HMAC-SHA384(key = ASCII of base64(secret),
//!   msg = agent_id))`; the key is the base64 *text* of the decrypted challenge.
//! * `/keys/verify`: `hex(HMAC-SHA384(K, challenge))`.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest as _, Sha384};

use crate::keylime::hex;

/// SHA-384's block size: HMAC keys up to this length are used as they are.
const BLOCK: usize = 128;

/// The longest activation secret accepted (a TPM2B_DIGEST holds at most 64 bytes).
pub const MAX_SECRET_LEN: usize = 64;

/// The base64 length of a [`MAX_SECRET_LEN`]-byte secret.
const B64_SECRET_LEN: usize = 88;

/// A 96-character lowercase hex HMAC-SHA384 tag.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexTag([u8; 96]);

impl HexTag {
    /// The tag as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The tag as ASCII bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 96] {
        &self.0
    }
}

impl fmt::Debug for HexTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for HexTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an auth tag could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthTagError {
    /// The activation secret is longer than [`MAX_SECRET_LEN`].
    SecretTooLong {
        /// Its length.
        len: usize,
    },
}

impl fmt::Display for AuthTagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecretTooLong { len } => write!(
                f,
                "activation secret is {len} bytes; ActivateCredential returns at most {MAX_SECRET_LEN}"
            ),
        }
    }
}

impl core::error::Error for AuthTagError {}

/// HMAC-SHA384 keyed with `key`, any length.
fn keyed(key: &[u8]) -> Hmac<Sha384> {
    // HMAC (RFC 2104) hashes keys longer than the block and zero-pads the
    // rest; doing that here lets the fixed-size (infallible) constructor
    // take any key.
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        let h = Sha384::digest(key);
        if let Some(dst) = block.get_mut(..h.len()) {
            dst.copy_from_slice(&h);
        }
    } else if let Some(dst) = block.get_mut(..key.len()) {
        dst.copy_from_slice(key);
    }
    <Hmac<Sha384> as KeyInit>::new(&block.into())
}

/// `hex(HMAC-SHA384(key, msg))`.
#[must_use]
pub fn hmac_sha384_hex(key: &[u8], msg: &[u8]) -> HexTag {
    let mut mac = keyed(key);
    mac.update(msg);
    let out = mac.finalize().into_bytes();
    let mut tag = [0u8; 96];
    let _ = hex::encode_lower(&out, &mut tag);
    HexTag(tag)
}

/// Whether `tag` (48 raw bytes) is `HMAC-SHA384(key, msg)`, compared in
/// constant time by the MAC crate.
#[must_use]
pub fn verify_hmac_sha384(key: &[u8], msg: &[u8], tag: &[u8]) -> bool {
    let mut mac = keyed(key);
    mac.update(msg);
    mac.verify_slice(tag).is_ok()
}

/// The activation `auth_tag` for `secret` (ActivateCredential's certInfo)
/// and `agent_id`.
///
/// # Errors
///
/// [`AuthTagError::SecretTooLong`] if `secret` exceeds [`MAX_SECRET_LEN`].
pub fn auth_tag(secret: &[u8], agent_id: &str) -> Result<HexTag, AuthTagError> {
    if secret.len() > MAX_SECRET_LEN {
        return Err(AuthTagError::SecretTooLong { len: secret.len() });
    }
    let mut key = [0u8; B64_SECRET_LEN];
    let n = STANDARD
        .encode_slice(secret, &mut key)
        .map_err(|_| AuthTagError::SecretTooLong { len: secret.len() })?;
    let key = key.get(..n).unwrap_or(&[]);
    Ok(hmac_sha384_hex(key, agent_id.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2_and_long_key_case_6() {
        assert_eq!(
            hmac_sha384_hex(b"Jefe", b"what do ya want for nothing?").as_str(),
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
             8e2240ca5e69e2c78b3239ecfab21649"
        );
        assert_eq!(
            hmac_sha384_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )
            .as_str(),
            "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6\
             0c2ef6ab4030fe8296248df163f44952"
        );
    }

    #[test]
    fn verify_takes_the_raw_tag_and_refuses_any_other() {
        let mut tag = [0u8; 48];
        let hex_tag = hmac_sha384_hex(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::decode(hex_tag.as_bytes(), &mut tag).map(<[u8]>::len),
            Ok(48)
        );
        assert!(verify_hmac_sha384(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag
        ));
        assert!(!verify_hmac_sha384(
            b"Jefe",
            b"what do ya want for nothing!",
            &tag
        ));
        assert!(!verify_hmac_sha384(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag[..47]
        ));
        tag[47] ^= 1;
        assert!(!verify_hmac_sha384(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag
        ));
    }

    #[test]
    fn secret_longer_than_a_digest_is_refused() {
        assert_eq!(
            auth_tag(&[0u8; 65], "a"),
            Err(AuthTagError::SecretTooLong { len: 65 })
        );
    }
}

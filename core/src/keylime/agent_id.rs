//! Agent ids (keylime-protocol §2.1): Keylime's `[\w.-]+` of at most 80
//! characters, UUID text, the shipped placeholder UUID, and `hash_ek`.

use core::fmt;

use sha2::{Digest as _, Sha256};

use crate::keylime::hex;
use crate::keylime::spki::{self, MAX_PEM_LEN, SpkiError};
use crate::public::PublicKey;

/// The registrar stores agent ids as `String(80)`.
pub const MAX_AGENT_ID_LEN: usize = 80;

/// The UUID shipped in Keylime's sample configurations.
pub const PLACEHOLDER_UUID: &str = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";

/// A validated agent id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AgentId(heapless::String<MAX_AGENT_ID_LEN>);

/// Why a text is not a usable agent id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentIdError {
    /// The id is empty.
    Empty,
    /// The id is longer than 80 characters.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character outside ASCII letters, digits, `_`, `.` and `-`.
    BadCharacter {
        /// Its byte offset.
        offset: usize,
    },
    /// Not a `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` hex UUID.
    NotUuid {
        /// The byte offset of the first wrong character (or the length if the length is wrong).
        offset: usize,
    },
    /// The placeholder UUID from the sample configuration.
    Placeholder,
    /// The EK could not be turned into a PEM for `hash_ek`.
    EkEncoding(SpkiError),
}

impl fmt::Display for AgentIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("agent id is empty"),
            Self::TooLong { len } => write!(
                f,
                "agent id is {len} characters; the registrar stores at most {MAX_AGENT_ID_LEN}"
            ),
            Self::BadCharacter { offset } => write!(
                f,
                "agent id has a character other than ASCII letters, digits, '_', '.', '-' at byte {offset}"
            ),
            Self::NotUuid { offset } => write!(
                f,
                "uuid is not of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex) at byte {offset}"
            ),
            Self::Placeholder => write!(
                f,
                "uuid {PLACEHOLDER_UUID} is the sample configuration's placeholder: every host that \
                 keeps it registers under the same id and the registrar refuses all but the first \
                 (403); set uuid to \"hash_ek\", \"generate\" or a UUID of this host"
            ),
            Self::EkEncoding(e) => write!(f, "cannot derive agent id from the EK: {e}"),
        }
    }
}

impl core::error::Error for AgentIdError {}

impl AgentId {
    /// Validates an agent id against Keylime's `[\w.-]+` (ASCII) of 1..=80 characters.
    ///
    /// # Errors
    ///
    /// [`AgentIdError::Empty`], [`AgentIdError::TooLong`] or [`AgentIdError::BadCharacter`].
    pub fn new(id: &str) -> Result<Self, AgentIdError> {
        if id.is_empty() {
            return Err(AgentIdError::Empty);
        }
        if let Some(offset) = id
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-'))
        {
            return Err(AgentIdError::BadCharacter { offset });
        }
        heapless::String::try_from(id)
            .map(Self)
            .map_err(|_| AgentIdError::TooLong { len: id.len() })
    }

    /// Validates a UUID, lowercases it, and refuses the placeholder.
    ///
    /// # Errors
    ///
    /// [`AgentIdError::NotUuid`] or [`AgentIdError::Placeholder`].
    pub fn from_uuid(uuid: &str) -> Result<Self, AgentIdError> {
        let bytes = uuid.as_bytes();
        if bytes.len() != 36 {
            return Err(AgentIdError::NotUuid {
                offset: bytes.len().min(36),
            });
        }
        let mut lower = [0u8; 36];
        for (i, (b, out)) in bytes.iter().zip(lower.iter_mut()).enumerate() {
            let dash = matches!(i, 8 | 13 | 18 | 23);
            let ok = if dash {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit()
            };
            if !ok {
                return Err(AgentIdError::NotUuid { offset: i });
            }
            *out = b.to_ascii_lowercase();
        }
        let text = core::str::from_utf8(&lower).map_err(|_| AgentIdError::NotUuid { offset: 0 })?;
        if text == PLACEHOLDER_UUID {
            return Err(AgentIdError::Placeholder);
        }
        Self::new(text)
    }

    /// `generate`: a random (version 4) UUID made from 16 random bytes,
    /// in lowercase text.
    #[must_use]
    pub fn from_random_bytes(mut bytes: [u8; 16]) -> Self {
        // RFC 9562 §5.4: version 4 in the high nibble of byte 6, variant
        // 0b10 in the top bits of byte 8.
        if let Some(b) = bytes.get_mut(6) {
            *b = (*b & 0x0f) | 0x40;
        }
        if let Some(b) = bytes.get_mut(8) {
            *b = (*b & 0x3f) | 0x80;
        }
        let mut text = [b'-'; 36];
        // The groups of 4, 2, 2, 2 and 6 bytes, each followed by a dash.
        let mut at = 0usize;
        let mut from = 0usize;
        for len in [4usize, 2, 2, 2, 6] {
            let group = bytes.get(from..from.saturating_add(len)).unwrap_or(&[]);
            let out = text.get_mut(at..).unwrap_or(&mut []);
            let _ = hex::encode_lower(group, out);
            from = from.saturating_add(len);
            at = at.saturating_add(len.saturating_mul(2)).saturating_add(1);
        }
        let s = core::str::from_utf8(&text).unwrap_or("");
        Self(heapless::String::try_from(s).unwrap_or_default())
    }

    /// `hash_ek`: lowercase hex SHA-256 of the EK's SubjectPublicKeyInfo PEM.
    ///
    /// # Errors
    ///
    /// [`AgentIdError::EkEncoding`] if the key cannot be PEM-encoded.
    pub fn hash_ek(ek: &PublicKey<'_>) -> Result<Self, AgentIdError> {
        let mut pem = [0u8; MAX_PEM_LEN];
        let n = spki::pem(ek, &mut pem).map_err(AgentIdError::EkEncoding)?;
        Ok(Self::hash_ek_pem(pem.get(..n).unwrap_or(&[])))
    }

    /// `hash_ek` over an already encoded EK PEM.
    #[must_use]
    pub fn hash_ek_pem(pem: &[u8]) -> Self {
        let digest = Sha256::digest(pem);
        let mut text = [0u8; 64];
        let s = hex::encode_lower(&digest, &mut text).unwrap_or("");
        Self(heapless::String::try_from(s).unwrap_or_default())
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keylime_charset_and_length() -> Result<(), AgentIdError> {
        assert_eq!(
            AgentId::new("agent_1.example-a")?.as_str(),
            "agent_1.example-a"
        );
        assert_eq!(AgentId::new(""), Err(AgentIdError::Empty));
        assert_eq!(
            AgentId::new("a b"),
            Err(AgentIdError::BadCharacter { offset: 1 })
        );
        assert_eq!(
            AgentId::new("é"),
            Err(AgentIdError::BadCharacter { offset: 0 })
        );
        assert!(AgentId::new(&"a".repeat(80)).is_ok());
        assert_eq!(
            AgentId::new(&"a".repeat(81)),
            Err(AgentIdError::TooLong { len: 81 })
        );
        Ok(())
    }

    #[test]
    fn random_bytes_make_a_version_4_uuid() -> Result<(), AgentIdError> {
        let id = AgentId::from_random_bytes([0xff; 16]);
        assert_eq!(id.as_str(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(AgentId::from_uuid(id.as_str())?, id);
        let id = AgentId::from_random_bytes([0; 16]);
        assert_eq!(id.as_str(), "00000000-0000-4000-8000-000000000000");
        Ok(())
    }

    #[test]
    fn uuid_is_lowercased_and_placeholder_refused() -> Result<(), AgentIdError> {
        assert_eq!(
            AgentId::from_uuid("D432FBB3-D2F1-4A97-9EF7-75BD81C00001")?.as_str(),
            "d432fbb3-d2f1-4a97-9ef7-75bd81c00001"
        );
        assert_eq!(
            AgentId::from_uuid("D432FBB3-D2F1-4A97-9EF7-75BD81C00000"),
            Err(AgentIdError::Placeholder)
        );
        assert_eq!(
            AgentId::from_uuid("d432fbb3_d2f1-4a97-9ef7-75bd81c00000"),
            Err(AgentIdError::NotUuid { offset: 8 })
        );
        assert_eq!(
            AgentId::from_uuid("d432fbb3-d2f1-4a97-9ef7-75bd81c0000g"),
            Err(AgentIdError::NotUuid { offset: 35 })
        );
        assert_eq!(
            AgentId::from_uuid("abc"),
            Err(AgentIdError::NotUuid { offset: 3 })
        );
        Ok(())
    }
}

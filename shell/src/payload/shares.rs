//! The U and V key shares: unwrapping them with the NK and combining them
//! into K once the tenant's auth tag confirms the pair.

use keylet_core::keylime::auth_tag::verify_hmac_sha384;
use rsa::Oaep;
use sha1::Sha1;
use zeroize::Zeroizing;

use super::PayloadError;

/// Shares kept while waiting for a matching partner. A re-added agent sends
/// new shares; old ones that never matched are dropped oldest first.
const MAX_PENDING: usize = 8;

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

/// The tenant's half: U, the auth tag and the encrypted payload, if any.
#[derive(Debug, Clone)]
pub(crate) struct UShare {
    /// The key share U.
    pub(crate) u: SymmetricKey,
    /// HMAC-SHA384(K, agent id), raw.
    pub(crate) auth_tag: [u8; 48],
    /// The payload, `IV(16) ‖ ciphertext ‖ tag(16)`.
    pub(crate) payload: Option<Vec<u8>>,
}

/// K together with the payload that came with its U.
#[derive(Debug, Clone)]
pub(crate) struct Derived {
    /// K = U xor V.
    pub(crate) k: SymmetricKey,
    /// The payload sent with U.
    pub(crate) payload: Option<Vec<u8>>,
}

/// Received shares waiting for partners.
#[derive(Debug, Default)]
pub(crate) struct KeyShares {
    us: Vec<UShare>,
    vs: Vec<SymmetricKey>,
}

impl KeyShares {
    /// Adds U and tries it with every V held, newest first.
    pub(crate) fn add_u(&mut self, share: UShare, agent_id: &str) -> Option<Derived> {
        push_bounded(&mut self.us, share);
        self.combine(agent_id)
    }

    /// Adds V (a repeat of a held V is not stored twice) and tries it with
    /// every U held, newest first.
    pub(crate) fn add_v(&mut self, v: SymmetricKey, agent_id: &str) -> Option<Derived> {
        if !self.vs.contains(&v) {
            push_bounded(&mut self.vs, v);
        }
        self.combine(agent_id)
    }

    /// The first (newest) U/V pair whose K matches U's auth tag. The shares
    /// are cleared once a pair matched: that delivery is complete.
    fn combine(&mut self, agent_id: &str) -> Option<Derived> {
        let found = self.us.iter().rev().find_map(|u| {
            self.vs.iter().rev().find_map(|v| {
                u.u.xor(v)
                    .filter(|k| k.matches_tag(agent_id, &u.auth_tag))
                    .map(|k| Derived {
                        k,
                        payload: u.payload.clone(),
                    })
            })
        });
        if found.is_some() {
            self.us.clear();
            self.vs.clear();
        }
        found
    }
}

fn push_bounded<T>(list: &mut Vec<T>, item: T) {
    if list.len() >= MAX_PENDING {
        list.remove(0);
    }
    list.push(item);
}

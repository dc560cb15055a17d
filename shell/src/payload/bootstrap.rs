//! [`KeyBootstrap`]: the state behind `/keys/ukey`, `/keys/vkey` and
//! `/keys/verify`: the shares ([`SymmetricKey`]s unwrapped with the NK) held
//! until a U and a V combine into K that the tenant's auth tag confirms, and
//! the hand-off of K and the payload to delivery.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, MutexGuard, PoisonError};

use keylet_core::keylime::auth_tag::{HexTag, hmac_sha384_hex, verify_hmac_sha384};
use rsa::Oaep;
use sha1::Sha1;
use zeroize::Zeroizing;

use super::deliver::deliver;
use super::{IV_LEN, PayloadError, TAG_LEN};
use crate::config::PayloadConfig;
use crate::keys::PayloadKey;

/// Why payloads are refused when mTLS is off.
const INSECURE: &str = "the agent serves plain HTTP (enable_agent_mtls = false), so a payload \
    could have been read or changed on the way; enable mTLS, or set enable_insecure_payload = true \
    in the agent's configuration to accept payloads anyway";

/// Room in a request body for everything but the payload.
const BODY_OVERHEAD: usize = 16 * 1024;

/// Shares of each kind kept while waiting for a partner: a re-added agent
/// sends new ones; old ones that never matched are dropped oldest first.
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

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `self xor other`, if both have the same length.
    #[must_use]
    pub fn xor(&self, other: &Self) -> Option<Self> {
        let k = self.0.iter().zip(other.0.iter()).map(|(a, b)| a ^ b);
        (self.0.len() == other.0.len()).then(|| Self(Zeroizing::new(k.collect())))
    }

    /// Whether `tag` (48 bytes) is HMAC-SHA384 of `agent_id` under this key,
    /// compared in constant time by the MAC crate.
    #[must_use]
    pub fn matches_tag(&self, agent_id: &str, tag: &[u8; 48]) -> bool {
        verify_hmac_sha384(&self.0, agent_id.as_bytes(), tag)
    }
}

/// What a delivery wrote (to `<secure>/unzipped`: how many files, K
/// included) and the payload script's exit code, if it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub dir: PathBuf,
    pub(crate) files: usize,
    pub script_exit: Option<i32>,
}

/// The tenant's half: U, the auth tag (HMAC-SHA384(K, agent id), raw) and
/// the payload (`IV(16) ‖ ciphertext ‖ tag(16)`), if any.
struct UShare {
    u: SymmetricKey,
    auth_tag: [u8; 48],
    payload: Option<Vec<u8>>,
}

/// The shares waiting for partners, and K once a pair matched.
#[derive(Default)]
struct Shares {
    us: Vec<UShare>,
    vs: Vec<SymmetricKey>,
    k: Option<SymmetricKey>,
}

/// Received shares, the derived K and payload delivery.
pub struct KeyBootstrap {
    nk: PayloadKey,
    agent_id: String,
    config: PayloadConfig,
    /// The secure directory ([`super::secure_dir::prepare`]); `None`
    /// refuses payloads (mTLS off and `enable_insecure_payload` not set).
    secure: Option<PathBuf>,
    shares: Mutex<Shares>,
    /// The latest delivery's outcome, to come from the operator's executor
    /// (which runs deliveries one at a time).
    last: Mutex<Option<Receiver<Result<Delivered, PayloadError>>>>,
}

impl std::fmt::Debug for KeyBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBootstrap")
            .field("agent_id", &self.agent_id)
            .field("config", &self.config)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn push_bounded<T>(list: &mut Vec<T>, item: T) {
    if list.len() >= MAX_PENDING {
        list.remove(0);
    }
    list.push(item);
}

impl KeyBootstrap {
    /// Shares for `agent_id` are unwrapped with `nk`; payloads go to
    /// `secure` as `config` says, or are refused when it is `None`.
    #[must_use]
    pub fn new(
        nk: PayloadKey,
        agent_id: String,
        config: PayloadConfig,
        secure: Option<PathBuf>,
    ) -> Self {
        Self {
            nk,
            agent_id,
            config,
            secure,
            shares: Mutex::default(),
            last: Mutex::default(),
        }
    }

    /// The largest `/keys/ukey` body accepted: a payload filling
    /// `secure_size`, base64-encoded, plus the keys and JSON around it.
    #[must_use]
    pub fn max_request_bytes(&self) -> usize {
        let limit = self.config.secure_size.bytes;
        let payload = limit.saturating_add((IV_LEN + TAG_LEN) as u64);
        usize::try_from(payload.div_ceil(3).saturating_mul(4))
            .unwrap_or(usize::MAX)
            .saturating_add(BODY_OVERHEAD)
    }

    /// Takes the tenant's U (`encrypted_key`), auth tag and payload.
    ///
    /// # Errors
    ///
    /// A [`PayloadError`] for a share that does not unwrap, a payload that
    /// is refused, too short or too large.
    pub fn add_u(
        &self,
        encrypted_key: &[u8],
        auth_tag: [u8; 48],
        payload: Option<Vec<u8>>,
    ) -> Result<(), PayloadError> {
        if let Some(p) = &payload {
            self.check_payload(p)?;
        }
        let u = SymmetricKey::unwrap(self.nk.private(), encrypted_key)?;
        let mut shares = lock(&self.shares);
        let share = UShare {
            u,
            auth_tag,
            payload,
        };
        push_bounded(&mut shares.us, share);
        self.combine(shares, "U");
        Ok(())
    }

    /// Takes the verifier's V (`encrypted_key`). Repeats are accepted (and
    /// not held twice).
    ///
    /// # Errors
    ///
    /// A [`PayloadError`] for a share that does not unwrap.
    pub fn add_v(&self, encrypted_key: &[u8]) -> Result<(), PayloadError> {
        let v = SymmetricKey::unwrap(self.nk.private(), encrypted_key)?;
        let mut shares = lock(&self.shares);
        if !shares.vs.contains(&v) {
            push_bounded(&mut shares.vs, v);
        }
        self.combine(shares, "V");
        Ok(())
    }

    /// `hex(HMAC-SHA384(K, challenge))`, or `None` before K is known.
    #[must_use]
    pub fn verify(&self, challenge: &str) -> Option<HexTag> {
        lock(&self.shares)
            .k
            .as_ref()
            .map(|k| hmac_sha384_hex(k.as_bytes(), challenge.as_bytes()))
    }

    /// Waits for the latest delivery and returns its outcome (`None` if
    /// there was none since the last call).
    pub fn wait_for_delivery(&self) -> Option<Result<Delivered, PayloadError>> {
        let outcome = lock(&self.last).take()?;
        Some(outcome.recv().unwrap_or_else(|_| {
            Err(PayloadError::Script(
                "the delivery stopped before finishing".into(),
            ))
        }))
    }

    fn check_payload(&self, payload: &[u8]) -> Result<(), PayloadError> {
        if self.secure.is_none() {
            return Err(PayloadError::PayloadRefused(if cfg!(feature = "payload") {
                INSECURE
            } else {
                super::NOT_BUILT
            }));
        }
        let Some(plain) = payload.len().checked_sub(IV_LEN + TAG_LEN) else {
            return Err(PayloadError::PayloadTooShort(payload.len()));
        };
        let limit = self.config.secure_size.bytes;
        if plain as u64 > limit {
            return Err(PayloadError::PayloadTooLarge(payload.len(), limit));
        }
        Ok(())
    }

    /// With the new `share` held in `s`, tries every U held with every V
    /// held, newest first: the first pair whose K matches U's auth tag gives
    /// K and its payload goes to delivery (after the lock is released); the
    /// shares are cleared, that delivery is complete.
    fn combine(&self, mut s: MutexGuard<'_, Shares>, share: &str) {
        let found = s.us.iter().rev().find_map(|u| {
            s.vs.iter().rev().find_map(|v| {
                u.u.xor(v)
                    .filter(|k| k.matches_tag(&self.agent_id, &u.auth_tag))
                    .map(|k| (k, u.payload.clone()))
            })
        });
        let Some((k, payload)) = found else {
            log::debug!("key share {share} received; waiting for a matching partner share");
            return;
        };
        s.us.clear();
        s.vs.clear();
        s.k = Some(k.clone());
        drop(s);
        log::info!(
            "payload key K derived: U and V combine to a key that matches the tenant's auth tag"
        );
        let Some(secure) = self.secure.clone() else {
            log::warn!("K is not written to disk: payloads are refused while mTLS is off");
            return;
        };
        let config = self.config.clone();
        let queued = crate::executor::operator::submit(move || {
            let result = deliver(&secure, &config, &k, payload.as_deref());
            match &result {
                Ok(d) => log::info!(
                    "payload delivered to {} ({} files)",
                    d.dir.display(),
                    d.files
                ),
                Err(e) => log::error!("payload delivery failed: {e}"),
            }
            result
        });
        match queued {
            Ok(outcome) => *lock(&self.last) = Some(outcome),
            Err(e) => log::error!("the payload is not delivered: {e}"),
        }
    }
}

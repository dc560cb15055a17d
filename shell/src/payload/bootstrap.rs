//! [`KeyBootstrap`]: the state behind `/keys/ukey`, `/keys/vkey` and
//! `/keys/verify`, and the hand-off of K and the payload to delivery.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, MutexGuard, PoisonError};

use keylet_core::keylime::auth_tag::{HexTag, hmac_sha384_hex};

use super::deliver::deliver;
use super::shares::{Derived, KeyShares, UShare};
use super::{IV_LEN, PayloadError, SecureDir, SymmetricKey, TAG_LEN};
use crate::config::PayloadConfig;
use crate::keys::PayloadKey;

/// Why payloads are refused when mTLS is off.
const INSECURE: &str = "the agent serves plain HTTP (enable_agent_mtls = false), so a payload \
    could have been read or changed on the way; enable mTLS, or set enable_insecure_payload = true \
    in the agent's configuration to accept payloads anyway";

/// Room in a request body for everything but the payload.
const BODY_OVERHEAD: usize = 16 * 1024;

/// What a delivery wrote and ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// `<secure>/unzipped`.
    pub dir: PathBuf,
    /// Files written, K first.
    pub(crate) files: Vec<PathBuf>,
    /// The payload script's exit code, if it ran.
    pub script_exit: Option<i32>,
}

/// Where payloads go, or `secure: None` when they are refused.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// File names, zip, script and size settings.
    pub config: PayloadConfig,
    /// The secure directory; `None` refuses payloads (mTLS off and
    /// `enable_insecure_payload` not set).
    pub secure: Option<SecureDir>,
}

/// Received shares, the derived K and payload delivery.
pub struct KeyBootstrap {
    nk: PayloadKey,
    agent_id: String,
    delivery: Delivery,
    shares: Mutex<KeyShares>,
    k: Mutex<Option<SymmetricKey>>,
    /// The latest delivery's outcome, to come from the operator's executor
    /// (which runs deliveries one at a time).
    last: Mutex<Option<Receiver<Result<Delivered, PayloadError>>>>,
}

impl std::fmt::Debug for KeyBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBootstrap")
            .field("agent_id", &self.agent_id)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KeyBootstrap {
    /// Shares for `agent_id` are unwrapped with `nk`; payloads go to `delivery`.
    #[must_use]
    pub fn new(nk: PayloadKey, agent_id: String, delivery: Delivery) -> Self {
        Self {
            nk,
            agent_id,
            delivery,
            shares: Mutex::default(),
            k: Mutex::default(),
            last: Mutex::default(),
        }
    }

    /// The largest `/keys/ukey` body accepted: a payload filling
    /// `secure_size`, base64-encoded, plus the keys and JSON around it.
    #[must_use]
    pub fn max_request_bytes(&self) -> usize {
        let payload = self
            .delivery
            .config
            .secure_size
            .bytes
            .saturating_add((IV_LEN + TAG_LEN) as u64);
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
        let share = UShare {
            u,
            auth_tag,
            payload,
        };
        let derived = lock(&self.shares).add_u(share, &self.agent_id);
        self.derived(derived, "U");
        Ok(())
    }

    /// Takes the verifier's V (`encrypted_key`). Repeats are accepted.
    ///
    /// # Errors
    ///
    /// A [`PayloadError`] for a share that does not unwrap.
    pub fn add_v(&self, encrypted_key: &[u8]) -> Result<(), PayloadError> {
        let v = SymmetricKey::unwrap(self.nk.private(), encrypted_key)?;
        let derived = lock(&self.shares).add_v(v, &self.agent_id);
        self.derived(derived, "V");
        Ok(())
    }

    /// `hex(HMAC-SHA384(K, challenge))`, or `None` before K is known.
    #[must_use]
    pub fn verify(&self, challenge: &str) -> Option<HexTag> {
        lock(&self.k)
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
        if self.delivery.secure.is_none() {
            return Err(PayloadError::PayloadRefused(if cfg!(feature = "payload") {
                INSECURE
            } else {
                super::NOT_BUILT
            }));
        }
        let overhead = IV_LEN + TAG_LEN;
        let Some(plain) = payload.len().checked_sub(overhead) else {
            return Err(PayloadError::PayloadTooShort(payload.len()));
        };
        let limit = self.delivery.config.secure_size.bytes;
        if plain as u64 > limit {
            return Err(PayloadError::PayloadTooLarge {
                len: payload.len(),
                limit,
            });
        }
        Ok(())
    }

    fn derived(&self, derived: Option<Derived>, last: &str) {
        let Some(Derived { k, payload }) = derived else {
            log::debug!("key share {last} received; waiting for a matching partner share");
            return;
        };
        log::info!(
            "payload key K derived: U and V combine to a key that matches the tenant's auth tag"
        );
        *lock(&self.k) = Some(k.clone());
        let Some(secure) = self.delivery.secure.clone() else {
            log::warn!("K is not written to disk: payloads are refused while mTLS is off");
            return;
        };
        let config = self.delivery.config.clone();
        let queued = crate::executor::operator::submit(move || {
            let result = deliver(secure.path(), &config, &k, payload.as_deref());
            match &result {
                Ok(d) => log::info!(
                    "payload delivered to {} ({} files)",
                    d.dir.display(),
                    d.files.len()
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

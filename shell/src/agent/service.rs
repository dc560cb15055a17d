//! The TPM behind the pull API: one quote at a time (PCR 16 is global state),
//! with recovery when the TPM connection was lost. Nothing but a quote waits
//! for the TPM: `/agent/info` reads the AK handle from an atomic.

use keylet_core::tpm::transport::BlockOn as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use keylet_core::agent::{AgentError, CertifyRequest, QuoteRequest};
use keylet_core::alg::KeyAlg;
use keylet_core::pcr::{Digest, PcrMask};
use keylet_core::tpm::Handle;
use keylet_core::tpm::command::Auth;
use keylet_core::verify::QuoteError;

use super::tpm_box::TpmBox;
use crate::config::AgentConfig;
use crate::server::{AgentInfo, AttestError, Attestation, Nonce};
use crate::state::AgentState;
use crate::tpm::{HintSuffix, TransportError};

/// Room for the longest quote string (24 PCRs, RSA-4096 signature).
const QUOTE_BUFFER: usize = 8192;

struct Inner {
    tpm: TpmBox,
    ak: Handle,
    out: Box<[u8]>,
    /// To load the AK again after the TPM restarted: the EK's key type and
    /// persistent handle (`ek_handle`), the AK's TPM2B_PRIVATE.
    key_alg: KeyAlg,
    persistent_ek: Option<u32>,
    ak_private: Vec<u8>,
}

/// The agent's [`Attestation`]: quotes with the loaded AK.
pub struct TpmAttestation {
    inner: Mutex<Inner>,
    /// The AK handle as last loaded, for `/agent/info` without the lock.
    ak: AtomicU32,
    payload_pem: String,
    data_digest: Digest,
    info: AgentInfo,
    ak_public: Vec<u8>,
    ak_name: Vec<u8>,
}

/// The quote service for `c`: `tpm` with the AK `ak` loaded from `state`,
/// binding `payload_pem` into PCR 16. It owns the AK: flushed when the
/// service is dropped or [`shut down`](TpmAttestation::shutdown).
#[must_use]
pub fn attestation(
    c: &AgentConfig,
    mut tpm: TpmBox,
    ak: Handle,
    state: &AgentState,
    payload_pem: String,
) -> TpmAttestation {
    let info = AgentInfo {
        uuid: state.agent_id.clone(),
        hash_alg: c.tpm_hash_alg,
        key_alg: c.tpm_encryption_alg,
        sign_alg: c.tpm_signing_alg,
        ak_handle: ak,
    };
    // The state's AK public was loaded into this TPM, so its Name is well formed.
    let ak_name = keylet_core::tpm::name::of_tpm2b_public(&state.ak_public)
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    tpm.own(ak);
    TpmAttestation {
        ak: AtomicU32::new(ak),
        inner: Mutex::new(Inner {
            tpm,
            ak,
            out: vec![0; QUOTE_BUFFER].into_boxed_slice(),
            key_alg: c.tpm_encryption_alg,
            persistent_ek: c.ek_handle,
            ak_private: state.ak_private.clone(),
        }),
        data_digest: info.hash_alg.hash(payload_pem.as_bytes()),
        payload_pem,
        info,
        ak_public: state.ak_public.clone(),
        ak_name,
    }
}

impl std::fmt::Debug for TpmAttestation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpmAttestation")
            .field("ak", &self.ak)
            .finish_non_exhaustive()
    }
}

impl TpmAttestation {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the TPM state half-done
        // in a way a next quote cannot cope with: each quote resets PCR 16.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Flushes the AK on a thread of its own and waits for it at most
    /// `wait`: a TPM that hangs (a quote holds the lock until the transport
    /// times out) cannot hold up the exit. Whether the AK was flushed; if
    /// not, closing the device lets the kernel's resource manager flush it
    /// (swtpm over TCP: the next start flushes leftovers).
    pub fn shutdown(this: &Arc<Self>, wait: Duration) -> bool {
        let service = Arc::clone(this);
        let (done_tx, done_rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("keylet-flush".into())
            .spawn(move || {
                service.lock().tpm.flush_owned();
                let _ = done_tx.send(());
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the thread that flushes the AK: {e}");
            return false;
        }
        let flushed = done_rx.recv_timeout(wait).is_ok();
        if flushed {
            log::info!("flushed the AK ({:#010x})", this.ak.load(Ordering::Relaxed));
        } else {
            log::warn!(
                "the TPM did not answer within {wait:?}; leaving the AK to be flushed when the \
                 device is closed (or at the next start)"
            );
        }
        flushed
    }

    /// Runs `work` with the TPM lock held, with the recovery a quote gets:
    /// after a TPM I/O failure keylet reconnects, reloads the AK and runs
    /// `work` once more; an unsafe clock is repaired and `work` retried.
    fn with_tpm<R>(
        &self,
        mut work: impl FnMut(&mut Inner) -> Result<R, AgentError<TransportError>>,
    ) -> Result<R, AttestError> {
        let mut inner = self.lock();
        super::clock::renew_lease(&mut inner.tpm, false);
        match work(&mut inner) {
            Ok(r) => Ok(r),
            Err(AgentError::Transport { error, .. }) => {
                log::warn!("TPM I/O failed: {error}");
                let ak = inner.recover(&self.ak_public).map_err(|e| {
                    log::error!("TPM recovery failed: {e}");
                    AttestError::Tpm(e.into())
                })?;
                self.ak.store(ak, Ordering::Relaxed);
                work(&mut inner).map_err(to_attest_error)
            }
            // The clock is still unsafe (an earlier repair failed, for example
            // while the TPM was busy): repair it now, then try once more.
            Err(AgentError::QuoteSelfCheck(QuoteError::ClockNotSafe))
                if super::clock::ensure_safe(&mut inner.tpm) =>
            {
                work(&mut inner).map_err(to_attest_error)
            }
            Err(e) => Err(to_attest_error(e)),
        }
    }
}

impl Inner {
    /// Reconnects, clears what a restarted TPM may hold, recreates the EK
    /// and reloads the AK (`ak_public`); the new AK handle.
    fn recover(&mut self, ak_public: &[u8]) -> Result<Handle, String> {
        let tpm = &mut self.tpm;
        log::warn!("reconnecting to the TPM at {}", tpm.device());
        tpm.reopen().map_err(|e| e.to_string())?;
        super::clock::ensure_safe(tpm);
        let _ = tpm.tpm().flush_leftovers().block_on();
        let mut public = [0u8; 1024];
        let ek = tpm
            .tpm()
            .create_ek(self.key_alg, self.persistent_ek, &mut public)
            .block_on()
            .map_err(|e| e.to_string())?;
        if ek.transient {
            tpm.own(ek.handle);
        }
        let loaded = tpm
            .tpm()
            .load_ak(ek.key(), ak_public, &self.ak_private)
            .block_on();
        if ek.transient {
            tpm.release(ek.handle);
        }
        self.ak = loaded.map_err(|e| e.to_string())?;
        tpm.own(self.ak);
        log::info!("TPM reconnected; AK reloaded as {:#010x}", self.ak);
        Ok(self.ak)
    }
}

/// The quote string keylet-core wrote (in ASCII) in `out[..n]`.
fn ascii(out: &[u8], n: usize) -> String {
    String::from_utf8_lossy(out.get(..n).unwrap_or(&[])).into_owned()
}

fn to_attest_error(e: AgentError<TransportError>) -> AttestError {
    match e {
        AgentError::QuoteSelfCheck(QuoteError::DigestMismatch) => AttestError::PcrsUnstable {
            attempts: keylet_core::agent::MAX_QUOTE_ATTEMPTS,
        },
        other => AttestError::Tpm(format!("{other}{}", HintSuffix(&other)).into()),
    }
}

impl Attestation for TpmAttestation {
    fn quote(&self, nonce: &Nonce, mask: PcrMask) -> Result<String, AttestError> {
        let nonce = nonce.as_str().as_bytes();
        self.with_tpm(|inner| {
            let req = QuoteRequest {
                ak: inner.ak,
                nonce,
                bank: self.info.hash_alg,
                mask,
                data_digest: self.data_digest.as_bytes(),
            };
            let Inner { tpm, out, .. } = inner;
            let n = tpm.tpm().quote(&req, out).block_on()?;
            Ok(ascii(out, n))
        })
    }

    fn payload_public_pem(&self) -> &str {
        &self.payload_pem
    }

    fn agent_info(&self) -> AgentInfo {
        AgentInfo {
            ak_handle: self.ak.load(Ordering::Relaxed),
            ..self.info.clone()
        }
    }

    fn certify_ak(&self, qualifying: &[u8]) -> Result<(Vec<u8>, Vec<u8>), AttestError> {
        self.with_tpm(|inner| {
            let req = CertifyRequest {
                object: inner.ak,
                object_auth: Auth::EMPTY,
                sign: inner.ak,
                sign_auth: Auth::EMPTY,
                qualifying,
                object_name: &self.ak_name,
            };
            let Inner { tpm, out, .. } = inner;
            let lens = tpm.tpm().certify(&req, out).block_on()?;
            let attest = out.get(..lens.attest).unwrap_or(&[]).to_vec();
            let end = lens.attest.saturating_add(lens.signature);
            let signature = out.get(lens.attest..end).unwrap_or(&[]).to_vec();
            Ok((attest, signature))
        })
    }

    fn quote_unbound(&self, nonce: &[u8], mask: PcrMask) -> Result<String, AttestError> {
        self.with_tpm(|inner| {
            let Inner { tpm, out, ak, .. } = inner;
            let n = tpm
                .tpm()
                .quote_pcrs(*ak, nonce, self.info.hash_alg, mask, out)
                .block_on()?;
            Ok(ascii(out, n))
        })
    }

    fn ak_public(&self) -> &[u8] {
        &self.ak_public
    }

    fn ak_name(&self) -> &[u8] {
        &self.ak_name
    }
}

//! The TPM behind the pull API: one quote at a time (PCR 16 is global state),
//! with recovery when the TPM connection was lost. Nothing but a quote waits
//! for the TPM: `/agent/info` reads the AK handle from an atomic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

use keylet_core::agent::{AgentError, CertifyRequest, QuoteRequest};
use keylet_core::alg::KeyAlg;
use keylet_core::pcr::{Digest, HashAlg, PcrMask};
use keylet_core::tpm::Handle;
use keylet_core::tpm::command::Auth;
use keylet_core::verify::QuoteError;

use super::tpm_box::TpmBox;
use crate::config::AgentConfig;
use crate::executor::TpmWorker;
use crate::server::{AgentInfo, AttestError, Attestation, Nonce, TpmAnswer};
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
    /// Lets the TPM commands wait on the runtime, within it, before the first
    /// TPM job ([`TpmBox::watch`]); whether they do.
    pub fn watch(&self) -> bool {
        self.inner
            .try_lock()
            .is_ok_and(|mut inner| inner.tpm.watch())
    }

    /// Flushes the AK as `worker`'s last job and waits for it at most `wait`:
    /// a TPM that hangs cannot hold up the exit. Whether the AK was flushed;
    /// if not, closing the device lets the kernel's resource manager flush it
    /// (swtpm over TCP: the next start flushes leftovers).
    pub async fn shutdown(this: &Arc<Self>, worker: &TpmWorker, wait: Duration) -> bool {
        let service = Arc::clone(this);
        let flush = async move { service.inner.lock().await.tpm.flush_owned().await };
        let flushed = worker.finish(wait, flush).await.is_ok();
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

    /// The TPM, locked for one job, with the clock lease renewed when due.
    async fn locked(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().await;
        super::clock::renew_lease(&mut inner.tpm, false).await;
        inner
    }

    /// The recovery a TPM job gets after it failed with `e`, before it runs
    /// once more: after a TPM I/O failure keylet reconnects and reloads the
    /// AK; an unsafe clock is repaired. Otherwise the error to answer.
    async fn recover(
        &self,
        inner: &mut Inner,
        e: AgentError<TransportError>,
    ) -> Result<(), AttestError> {
        match e {
            AgentError::Transport { error, .. } => {
                log::warn!("TPM I/O failed: {error}");
                let ak = inner.recover(&self.ak_public).await.map_err(|e| {
                    log::error!("TPM recovery failed: {e}");
                    AttestError::Tpm(e.into())
                })?;
                self.ak.store(ak, Ordering::Relaxed);
                Ok(())
            }
            // The clock is still unsafe (an earlier repair failed, for example
            // while the TPM was busy): repair it now, then try once more.
            AgentError::QuoteSelfCheck(QuoteError::ClockNotSafe)
                if super::clock::ensure_safe(&mut inner.tpm).await =>
            {
                Ok(())
            }
            e => Err(to_attest_error(e)),
        }
    }
}

impl Inner {
    /// Reconnects, clears what a restarted TPM may hold, recreates the EK
    /// and reloads the AK (`ak_public`); the new AK handle.
    async fn recover(&mut self, ak_public: &[u8]) -> Result<Handle, String> {
        let tpm = &mut self.tpm;
        log::warn!("reconnecting to the TPM at {}", tpm.device());
        tpm.reopen().await.map_err(|e| e.to_string())?;
        super::clock::ensure_safe(tpm).await;
        let _ = tpm.tpm().flush_leftovers().await;
        let mut public = [0u8; 1024];
        let ek = tpm
            .tpm()
            .create_ek(self.key_alg, self.persistent_ek, &mut public)
            .await
            .map_err(|e| e.to_string())?;
        if ek.transient {
            tpm.own(ek.handle);
        }
        let loaded = tpm
            .tpm()
            .load_ak(ek.key(), ak_public, &self.ak_private)
            .await;
        if ek.transient {
            tpm.release(ek.handle).await;
        }
        self.ak = loaded.map_err(|e| e.to_string())?;
        tpm.own(self.ak);
        log::info!("TPM reconnected; AK reloaded as {:#010x}", self.ak);
        Ok(self.ak)
    }

    async fn quote(&mut self, req: QuoteRequest<'_>) -> Result<String, AgentError<TransportError>> {
        let req = QuoteRequest { ak: self.ak, ..req };
        let n = self.tpm.tpm().quote(&req, &mut self.out).await?;
        Ok(ascii(&self.out, n))
    }

    async fn certify(
        &mut self,
        qualifying: &[u8],
        name: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), AgentError<TransportError>> {
        let req = CertifyRequest {
            object: self.ak,
            object_auth: Auth::EMPTY,
            sign: self.ak,
            sign_auth: Auth::EMPTY,
            qualifying,
            object_name: name,
        };
        let Inner { tpm, out, .. } = self;
        let lens = tpm.tpm().certify(&req, out).await?;
        let attest = out.get(..lens.attest).unwrap_or(&[]).to_vec();
        let end = lens.attest.saturating_add(lens.signature);
        let signature = out.get(lens.attest..end).unwrap_or(&[]).to_vec();
        Ok((attest, signature))
    }

    async fn quote_pcrs(
        &mut self,
        nonce: &[u8],
        bank: HashAlg,
        mask: PcrMask,
    ) -> Result<String, AgentError<TransportError>> {
        let Inner { tpm, out, ak, .. } = self;
        let n = tpm.tpm().quote_pcrs(*ak, nonce, bank, mask, out).await?;
        Ok(ascii(out, n))
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
    fn quote<'a>(&'a self, nonce: &'a Nonce, mask: PcrMask) -> TpmAnswer<'a, String> {
        let req = QuoteRequest {
            ak: 0, // the AK as loaded when the quote runs
            nonce: nonce.as_str().as_bytes(),
            bank: self.info.hash_alg,
            mask,
            data_digest: self.data_digest.as_bytes(),
        };
        Box::pin(async move {
            let mut inner = self.locked().await;
            match inner.quote(req).await {
                Err(e) => self.recover(&mut inner, e).await?,
                done => return done.map_err(to_attest_error),
            }
            inner.quote(req).await.map_err(to_attest_error)
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

    fn certify_ak<'a>(&'a self, qualifying: &'a [u8]) -> TpmAnswer<'a, (Vec<u8>, Vec<u8>)> {
        Box::pin(async move {
            let mut inner = self.locked().await;
            match inner.certify(qualifying, &self.ak_name).await {
                Err(e) => self.recover(&mut inner, e).await?,
                done => return done.map_err(to_attest_error),
            }
            inner
                .certify(qualifying, &self.ak_name)
                .await
                .map_err(to_attest_error)
        })
    }

    fn quote_unbound<'a>(&'a self, nonce: &'a [u8], mask: PcrMask) -> TpmAnswer<'a, String> {
        let bank = self.info.hash_alg;
        Box::pin(async move {
            let mut inner = self.locked().await;
            match inner.quote_pcrs(nonce, bank, mask).await {
                Err(e) => self.recover(&mut inner, e).await?,
                done => return done.map_err(to_attest_error),
            }
            inner
                .quote_pcrs(nonce, bank, mask)
                .await
                .map_err(to_attest_error)
        })
    }

    fn ak_public(&self) -> &[u8] {
        &self.ak_public
    }

    fn ak_name(&self) -> &[u8] {
        &self.ak_name
    }
}

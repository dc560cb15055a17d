//! The push loop: authenticate, offer capabilities, send the evidence asked
//! for, wait as long as the verifier says; and what each answer means.
//!
//! * 401: the token is unknown or expired: authenticate again.
//! * 429, 503: wait `Retry-After`, then try again (not a failure).
//! * 403, 404, 410 to the evidence: start a new attestation.
//! * 403, 404, 409, 422 to the capabilities, refused proofs, 400, 5xx,
//!   an unreachable verifier, unusable answers, TPM and log failures: log
//!   what it means and what to do, then wait with capped exponential
//!   backoff with jitter. Nothing is retried in a tight loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::secret::Secret;

use super::client::Verifier;
use super::evidence::{self, Sources};
use super::messages;
use super::timing;
use super::{PushError, meaning, on_files, on_tpm, secs};
use crate::backoff::Backoff;
use crate::executor::TpmWorker;
use crate::metrics::Metrics;
use crate::server::Attestation;

/// The first pause after a failure, and the longest.
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The pause before trying again after a 409, or before a new attestation
/// after the last one was refused.
const SHORT_PAUSE: Duration = Duration::from_millis(500);

/// Everything the push loop needs: the TPM with the loaded AK (in keylet,
/// `agent::TpmAttestation`) and the worker its commands run on (shared with
/// the identity listener); `fallback` is `attestation_interval_seconds`, the
/// pause when the verifier gives none.
#[derive(Debug)]
pub struct PushAgent {
    pub verifier: Verifier,
    pub tpm: Arc<dyn Attestation>,
    pub worker: TpmWorker,
    pub sources: Sources,
    pub fallback: Duration,
    pub metrics: Option<Arc<Metrics>>,
}

/// The loop's state between steps.
struct State {
    token: Option<Secret<String>>,
    backoff: Backoff,
    /// Whether the next accepted evidence is logged at info: the first one,
    /// and the first after a failure.
    tell: bool,
}

impl PushAgent {
    fn metric(&self, record: impl FnOnce(&Metrics)) {
        if let Some(m) = &self.metrics {
            record(m);
        }
    }

    /// One attestation: capabilities, evidence; the pause before the next.
    async fn round(&self, token: &str, state: &mut State) -> Result<Duration, PushError> {
        let (tpm, sources) = (Arc::clone(&self.tpm), self.sources.clone());
        let body = on_files(move || evidence::capabilities(&*tpm, &sources)).await?;
        let path = self.verifier.attestations_path();
        let answer = (self.verifier)
            .call("capabilities", "POST", &path, Some(body), Some(token))
            .await?;
        self.metric(|m| m.verifier_answer(answer.status));
        let info = self.tpm.agent_info();
        let (bank, scheme) = (info.hash_alg, info.sign_alg.name());
        let requested = answer.read(|b| messages::parse_requested(b, bank, scheme))?;
        if requested.is_empty() {
            log::warn!(
                "the verifier asked for no evidence: its policy for agent {} needs no PCR \
                 and no log (add a tpm_policy, runtime or measured-boot policy); next try in {}",
                self.verifier.agent_id,
                secs(self.fallback)
            );
            return Ok(self.fallback);
        }
        let (path, why) = self.verifier.evidence_path(answer.location.as_deref());
        if let Some(why) = why {
            log::warn!("{why}; sending the evidence to {path}");
        }
        // The quote on the TPM worker, then the logs (read after the quote,
        // so the IMA lines cover every measurement in the quoted PCR 10).
        let tpm = Arc::clone(&self.tpm);
        let (quote, requested) = on_tpm(&self.worker, async move {
            Ok((evidence::quote(&*tpm, &requested).await?, requested))
        })
        .await?;
        let sources = self.sources.clone();
        let (collected, ima) =
            on_files(move || evidence::collect(quote, &sources, &requested)).await?;
        let body = messages::evidence(&collected);
        let answer = (self.verifier)
            .call("evidence", "PATCH", &path, Some(body), Some(token))
            .await?;
        self.metric(|m| m.verifier_answer(answer.status));
        let next = messages::parse_next_attestation(&answer.body).unwrap_or_else(|e| {
            log::warn!("evidence accepted, but the answer's timing is unusable: {e}");
            None
        });
        self.record_last_pass(token).await;
        self.metric(|m| m.push_attestation(true));
        let (wait, warning) = timing::next_attestation(next, self.fallback);
        if let Some(w) = warning {
            log::warn!("{w}");
        }
        let ima = ima
            .map(|r| format!(", IMA lines {r:?}"))
            .unwrap_or_default();
        let level = match std::mem::take(&mut state.tell) {
            true => log::Level::Info,
            false => log::Level::Debug,
        };
        log::log!(
            level,
            "evidence accepted by the verifier{ima}; next attestation in {}",
            secs(wait)
        );
        state.backoff.reset();
        Ok(wait)
    }

    /// With metrics on: asks the verifier for this agent's status (its token
    /// allows that) and records the time of the last PASS. Verification is
    /// asynchronous, so this reports the verdicts up to the previous round.
    async fn record_last_pass(&self, token: &str) {
        let Some(m) = &self.metrics else { return };
        let path = self.verifier.status_path();
        let got = (self.verifier)
            .call("status", "GET", &path, None, Some(token))
            .await
            .and_then(|answer| answer.read(messages::parse_agent_status));
        match got {
            Ok(s) if s.attestation_status == "PASS" && s.last_successful_attestation > 0 => {
                m.set_last_pass(s.last_successful_attestation);
            }
            Ok(s) => log::debug!(
                "the verifier reports this agent as {}",
                s.attestation_status
            ),
            Err(e) => log::debug!("no status from the verifier for the last-PASS metric: {e}"),
        }
    }

    /// After `e`: logs what it means, drops the token when it must be earned
    /// again, and returns the pause.
    fn failed(&self, e: &PushError, state: &mut State) -> Duration {
        state.tell = true;
        let backoff = &mut state.backoff;
        let PushError::Status {
            step,
            status,
            retry_after,
            ..
        } = e
        else {
            match e {
                PushError::Http(_) => self.metric(|m| m.verifier_answer(0)),
                // A refused proof: a new session.
                PushError::NotAuthenticated(_) => state.token = None,
                _ => {}
            }
            let wait = backoff.pause();
            log::warn!("{e}; next try in {}", secs(wait));
            return wait;
        };
        let (step, status) = (*step, *status);
        self.metric(|m| m.verifier_answer(status));
        match status {
            401 => {
                // An expired token: a new session.
                state.token = None;
                log::info!("{e}: {}", meaning(step, 401));
                SHORT_PAUSE
            }
            429 | 503 => {
                let wait = timing::retry_after(retry_after.as_deref(), Duration::from_secs(2));
                log::info!(
                    "{step}: the verifier answered {status}: waiting {} (Retry-After)",
                    secs(wait)
                );
                wait
            }
            409 => {
                log::warn!("{e}: {}", meaning(step, 409));
                SHORT_PAUSE
            }
            403 | 404 | 410 if step == "evidence" && backoff.failures() < 3 => {
                log::warn!("{e}: {}", meaning(step, status));
                backoff.pause();
                SHORT_PAUSE
            }
            _ => {
                let wait = backoff.pause();
                log::warn!("{e}: {}; next try in {}", meaning(step, status), secs(wait));
                wait
            }
        }
    }

    /// One step: authenticate if there is no token, else one attestation
    /// round; the pause before the next step.
    async fn step(&self, state: &mut State) -> Duration {
        let Some(token) = state.token.clone() else {
            return match self.authenticate().await {
                Ok(token) => {
                    state.token = Some(token);
                    Duration::ZERO
                }
                Err(e) => self.failed(&e, state),
            };
        };
        match self.round(&token, state).await {
            Ok(wait) => wait,
            Err(e) => {
                self.metric(|m| m.push_attestation(false));
                self.failed(&e, state)
            }
        }
    }

    /// Attests until `stop` completes (also in the middle of a request).
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let mut state = State {
            token: None,
            backoff: Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX),
            tell: true,
        };
        log::info!(
            "push mode: attesting agent {} to {} (no port is opened for it)",
            self.verifier.agent_id,
            self.verifier.address()
        );
        let attest = async {
            loop {
                let wait = self.step(&mut state).await;
                tokio::time::sleep(wait).await;
            }
        };
        tokio::select! {
            _ = attest => {}
            () = stop => {}
        }
    }
}

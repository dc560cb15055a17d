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

use super::client::Verifier;
use super::evidence::{self, Sent, Sources};
use super::messages;
use super::session::{Token, authenticate};
use super::timing::{self, Backoff};
use super::{PushError, meaning, on_files, on_tpm, secs};
use crate::executor::TpmWorker;
use crate::metrics::Metrics;
use crate::server::Attestation;

/// The first pause after a failure, and the longest.
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The pause before trying again after a 409, or before a new attestation
/// after the last one was refused.
const SHORT_PAUSE: Duration = Duration::from_millis(500);

/// Everything the push loop needs.
#[derive(Debug)]
pub struct PushAgent {
    /// The verifier.
    pub verifier: Verifier,
    /// The TPM with the loaded AK (in keylet, `agent::TpmAttestation`).
    pub tpm: Arc<dyn Attestation>,
    /// The TPM worker its commands run on (shared with the identity listener).
    pub worker: TpmWorker,
    /// The logs and the boot time.
    pub sources: Sources,
    /// `attestation_interval_seconds`: the pause when the verifier gives none.
    pub fallback: Duration,
    /// Metrics, if on.
    pub metrics: Option<Arc<Metrics>>,
}

/// What one attestation round came to.
enum Round {
    /// Evidence accepted (202); the verifier's hint for the next one.
    Accepted { next: Option<i64>, sent: Sent },
    /// The verifier asked for nothing (no policy needs a quote or a log).
    NothingRequested,
}

impl PushAgent {
    fn answer_seen(&self, status: u16) {
        if let Some(m) = &self.metrics {
            m.verifier_answer(status);
        }
    }

    fn error_seen(&self, e: &PushError) {
        match e {
            PushError::Status { status, .. } => self.answer_seen(*status),
            PushError::Http(_) => self.answer_seen(0),
            _ => {}
        }
    }

    /// One attestation: capabilities, evidence.
    async fn round(&self, token: &Token) -> Result<Round, PushError> {
        let (tpm, sources) = (Arc::clone(&self.tpm), self.sources.clone());
        let body = on_files(move || evidence::capabilities(&*tpm, &sources)).await?;
        let step = "capabilities";
        let answer = self
            .verifier
            .call(
                step,
                "POST",
                &self.verifier.attestations_path(),
                Some(&body),
                Some(token.as_str()),
            )
            .await?;
        self.answer_seen(answer.status);
        let info = self.tpm.agent_info();
        let requested =
            messages::parse_requested(&answer.body, info.hash_alg, info.sign_alg.name()).map_err(
                |e| PushError::Answer {
                    step,
                    detail: e.to_string(),
                },
            )?;
        if requested.is_empty() {
            return Ok(Round::NothingRequested);
        }
        let (path, why) = self.verifier.evidence_path(answer.location.as_deref());
        if let Some(why) = why {
            log::warn!("{why}; sending the evidence to {path}");
        }
        // The quote on the TPM worker, then the logs (read after the quote,
        // so the IMA lines cover every measurement in the quoted PCR 10).
        let tpm = Arc::clone(&self.tpm);
        let (quote, requested) = on_tpm(&self.worker, move || {
            Ok((evidence::quote(&*tpm, &requested)?, requested))
        })
        .await?;
        let sources = self.sources.clone();
        let (collected, sent) =
            on_files(move || evidence::collect(quote, &sources, &requested)).await?;
        let step = "evidence";
        let answer = self
            .verifier
            .call(
                step,
                "PATCH",
                &path,
                Some(&messages::evidence(&collected)),
                Some(token.as_str()),
            )
            .await?;
        self.answer_seen(answer.status);
        let next = match messages::parse_next_attestation(&answer.body) {
            Ok(next) => next,
            Err(e) => {
                log::warn!("evidence accepted, but the answer's timing is unusable: {e}");
                None
            }
        };
        Ok(Round::Accepted { next, sent })
    }

    /// With metrics on: asks the verifier for this agent's status (its token
    /// allows that) and records the time of the last PASS. Verification is
    /// asynchronous, so this reports the verdicts up to the previous round.
    async fn record_last_pass(&self, token: &Token) {
        let Some(m) = &self.metrics else { return };
        let got = self
            .verifier
            .call(
                "status",
                "GET",
                &self.verifier.status_path(),
                None,
                Some(token.as_str()),
            )
            .await
            .and_then(|a| {
                messages::parse_agent_status(&a.body).map_err(|e| PushError::Answer {
                    step: "status",
                    detail: e.to_string(),
                })
            });
        match got {
            Ok(s) if s.status == "PASS" && s.last_success > 0 => m.set_last_pass(s.last_success),
            Ok(s) => log::debug!("the verifier reports this agent as {}", s.status),
            Err(e) => log::debug!("no status from the verifier for the last-PASS metric: {e}"),
        }
    }

    /// What to do after `e`: the pause, and whether the token is dropped.
    fn after_error(&self, e: &PushError, backoff: &mut Backoff) -> (Duration, bool) {
        match e {
            PushError::Status { status: 401, .. } => {
                log::info!("{e}: {}", meaning("", 401));
                (SHORT_PAUSE, true)
            }
            PushError::Status {
                status: status @ (429 | 503),
                retry_after,
                step,
                ..
            } => {
                let wait = timing::retry_after(retry_after.as_deref(), Duration::from_secs(2));
                log::info!(
                    "{step}: the verifier answered {status}: waiting {} (Retry-After)",
                    secs(wait)
                );
                (wait, false)
            }
            PushError::Status {
                status: 409, step, ..
            } => {
                log::warn!("{e}: {}", meaning(step, 409));
                (SHORT_PAUSE, false)
            }
            PushError::Status {
                status: status @ (403 | 404 | 410),
                step: "evidence",
                ..
            } if backoff.failures() < 3 => {
                log::warn!("{e}: {}", meaning("evidence", *status));
                backoff.pause();
                (SHORT_PAUSE, false)
            }
            PushError::Status { status, step, .. } => {
                let wait = backoff.pause();
                log::warn!(
                    "{e}: {}; next try in {}",
                    meaning(step, *status),
                    secs(wait)
                );
                (wait, false)
            }
            PushError::NotAuthenticated { .. }
            | PushError::Http(_)
            | PushError::Answer { .. }
            | PushError::Tpm(_)
            | PushError::Log(_) => {
                let wait = backoff.pause();
                log::warn!("{e}; next try in {}", secs(wait));
                // A refused proof is made again with a new session.
                (wait, matches!(e, PushError::NotAuthenticated { .. }))
            }
            PushError::Setup(_) => (BACKOFF_MAX, false),
        }
    }

    /// One step: authenticate if there is no token, else one attestation
    /// round; the pause before the next step.
    async fn step(
        &self,
        token: &mut Option<Token>,
        backoff: &mut Backoff,
        progress: &mut Progress,
    ) -> Duration {
        let Some(t) = token.as_ref() else {
            return match authenticate(&self.verifier, &self.tpm, &self.worker).await {
                Ok(t) => {
                    log::info!(
                        "authenticated at the verifier with the TPM's proof of possession \
                         (token expires {})",
                        t.expires_at().unwrap_or("when the verifier says")
                    );
                    *token = Some(t);
                    Duration::ZERO
                }
                Err(e) => {
                    self.error_seen(&e);
                    progress.failing = true;
                    self.after_error(&e, backoff).0
                }
            };
        };
        match self.round(t).await {
            Ok(Round::Accepted { next, sent }) => {
                self.record_last_pass(t).await;
                progress.accepted = progress.accepted.saturating_add(1);
                if let Some(m) = &self.metrics {
                    m.push_attestation(true);
                }
                let (wait, warning) = timing::next_attestation(next, self.fallback);
                if let Some(w) = warning {
                    log::warn!("{w}");
                }
                let ima = sent
                    .ima_lines
                    .map(|n| format!(", IMA lines {}..{}", sent.ima_from, sent.ima_from + n))
                    .unwrap_or_default();
                if progress.accepted == 1 || progress.failing {
                    log::info!(
                        "evidence accepted by the verifier{ima}; next attestation in {}",
                        secs(wait)
                    );
                } else {
                    log::debug!("evidence accepted{ima}; next in {}", secs(wait));
                }
                progress.failing = false;
                backoff.reset();
                wait
            }
            Ok(Round::NothingRequested) => {
                log::warn!(
                    "the verifier asked for no evidence: its policy for agent {} needs no PCR \
                     and no log (add a tpm_policy, runtime or measured-boot policy); next try in {}",
                    self.verifier.agent_id(),
                    secs(self.fallback)
                );
                self.fallback
            }
            Err(e) => {
                self.error_seen(&e);
                if let Some(m) = &self.metrics {
                    m.push_attestation(false);
                }
                progress.failing = true;
                let (wait, drop_token) = self.after_error(&e, backoff);
                if drop_token {
                    *token = None;
                }
                wait
            }
        }
    }

    /// Attests until `stop` completes (also in the middle of a request).
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut token: Option<Token> = None;
        let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
        let mut progress = Progress::default();
        log::info!(
            "push mode: attesting agent {} to {} (no port is opened for it)",
            self.verifier.agent_id(),
            self.verifier.address()
        );
        loop {
            let wait = tokio::select! {
                wait = self.step(&mut token, &mut backoff, &mut progress) => wait,
                () = &mut stop => return,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut stop => return,
            }
        }
    }
}

/// How the loop is doing, for the logs.
#[derive(Debug, Default)]
struct Progress {
    accepted: u64,
    failing: bool,
}

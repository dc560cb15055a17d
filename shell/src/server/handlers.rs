//! Request handling: route, validate, call the [`Attestation`] service and
//! format the answer.

use std::sync::Arc;

use hyper::{Request, StatusCode};
use keylet_core::pcr::{DATA_PCR, PcrMask};

use super::ServerSettings;
use super::keys;
use super::query::{IdentityQuery, IntegrityQuery, Nonce};
use super::response::{self, QuoteLogs, Reply};
use super::revocation;
use super::router::{Route, route};
use super::service::{AttestError, Attestation, QuoteReply};
use super::version::ApiVersion;
use crate::executor::TpmJobError;
use crate::keylime::agent_api::{AgentInfoResults, PubKeyResults, VersionResults};
use crate::metrics::{Endpoint, TpmErrorKind};

/// The IMA log PCR.
const IMA_PCR: u8 = 10;
/// The first measured-boot PCR; the boot log is sent when it is quoted.
const BOOT_PCR: u8 = 0;

/// Everything a request handler needs, shared by all connections of one
/// listener.
pub(crate) struct Handler {
    pub(crate) service: Arc<dyn Attestation>,
    pub(crate) settings: ServerSettings,
    /// Serve only `/version`, `/v2.x/agent/info` and `/v2.x/quotes/identity`
    /// (the identity listener for SPIRE); everything else is a 404.
    pub(crate) identity_only: bool,
}

impl Handler {
    /// Answers one request. Never fails: every problem is an HTTP error.
    pub(crate) async fn handle<B>(self: Arc<Self>, request: Request<B>) -> Reply
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let path = uri.path();
        let query = uri.query().unwrap_or("");
        let s = &self.settings;
        let response = match route(&method, path, &s.versions) {
            r if self.identity_only
                && !matches!(r, Route::Version | Route::Identity(_) | Route::AgentInfo(_)) =>
            {
                response::error(StatusCode::NOT_FOUND, "Not Found")
            }
            Route::Version => self.version(),
            // An identity quote: PCR 16 alone, with the payload key.
            Route::Identity(v) => match IdentityQuery::parse(query) {
                Ok(IdentityQuery { nonce }) => {
                    let q = IntegrityQuery {
                        nonce,
                        mask: PcrMask::EMPTY,
                        include_pubkey: true,
                        ima_ml_entry: 0,
                    };
                    self.quote(v, Endpoint::Identity, q).await
                }
                Err(e) => response::error(StatusCode::BAD_REQUEST, &e.to_string()),
            },
            Route::Integrity(v) => match IntegrityQuery::parse(query) {
                Ok(q) => self.quote(v, Endpoint::Integrity, q).await,
                Err(e) => response::error(StatusCode::BAD_REQUEST, &e.to_string()),
            },
            Route::PubKey(_) => response::success(&PubKeyResults {
                pubkey: self.service.payload_public_pem(),
            }),
            Route::AgentInfo(v) => self.agent_info(v),
            Route::KeysVerify => keys::verify(s.payload_keys.as_deref(), query),
            Route::UKey => {
                keys::post(
                    s.payload_keys.as_deref(),
                    request.into_body(),
                    "ukey",
                    keys::take_u,
                )
                .await
            }
            Route::VKey => {
                keys::post(
                    s.payload_keys.as_deref(),
                    request.into_body(),
                    "vkey",
                    keys::take_v,
                )
                .await
            }
            Route::Revocation => {
                revocation::post(s.revocations.as_ref(), request.into_body()).await
            }
            Route::BadRequest(message) => response::error(StatusCode::BAD_REQUEST, &message),
            Route::MethodNotAllowed(allow) => response::method_not_allowed(allow),
        };
        log::debug!("{method} {path} -> {}", response.status());
        response
    }

    fn version(&self) -> Reply {
        let offered = self.settings.versions.offered();
        let supported_versions: Vec<String> = offered.iter().map(ToString::to_string).collect();
        response::success(&VersionResults {
            supported_version: supported_versions.last().cloned().unwrap_or_default(),
            supported_versions,
        })
    }

    fn agent_info(&self, v: ApiVersion) -> Reply {
        let info = self.service.agent_info();
        response::success(&AgentInfoResults {
            agent_uuid: &info.uuid,
            tpm_hash_alg: info.hash_alg.name(),
            tpm_enc_alg: info.key_alg.keylime_name(v.major, v.minor),
            tpm_sign_alg: info.sign_alg.name(),
            ak_handle: info.ak_handle,
        })
    }

    /// A quote over the query's PCRs and PCR 16, with the logs they call
    /// for, counted in the metrics as `endpoint`.
    async fn quote(&self, v: ApiVersion, endpoint: Endpoint, q: IntegrityQuery) -> Reply {
        let answer = self.quote_with_logs(v, q).await;
        if let Some(m) = &self.settings.metrics {
            m.quote_served(endpoint, answer.is_ok());
        }
        answer.unwrap_or_else(|failed| failed)
    }

    async fn quote_with_logs(&self, v: ApiVersion, q: IntegrityQuery) -> Result<Reply, Reply> {
        let ima = self.settings.ima_log.clone();
        let ima = ima.filter(|_| q.mask.contains(IMA_PCR));
        let reply = self.run_quote(q.nonce, q.mask.with(DATA_PCR)).await;
        let reply = reply.map_err(|e| {
            log::error!("quote failed: {e}");
            response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to retrieve quote",
            )
        })?;
        let mut logs = QuoteLogs::default();
        if let Some(ima) = ima {
            // After the quote, so the slice holds every line that went into
            // the quoted PCR 10 (later lines are fine for the verifier); on
            // tokio's blocking thread, not the TPM worker: the next quote
            // does not wait for this log read.
            let entry = q.ima_ml_entry;
            let sliced = tokio::task::spawn_blocking(move || {
                ima.slice_from(entry).map(|slice| (ima, slice))
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
            logs.ima = Some(sliced.map_err(|e| {
                log::error!("reading the IMA log failed: {e}");
                let message = "Unable to read the IMA measurement list";
                response::error(StatusCode::INTERNAL_SERVER_ERROR, message)
            })?);
        }
        if q.mask.contains(BOOT_PCR) {
            logs.measured_boot.clone_from(&self.settings.mb_log);
        }
        let pubkey = q.include_pubkey.then(|| self.service.payload_public_pem());
        Ok(response::quote(
            v,
            &reply,
            pubkey,
            self.settings.boottime,
            logs,
        ))
    }

    /// Runs the blocking quote on the TPM worker and waits for it at most
    /// the quote deadline, its turn behind other TPM jobs included. A quote
    /// still queued at its deadline is dropped; one already running finishes
    /// by itself (its result is dropped).
    async fn run_quote(&self, nonce: Nonce, mask: PcrMask) -> Result<QuoteReply, AttestError> {
        let service = Arc::clone(&self.service);
        let done = self
            .settings
            .tpm_worker
            .run(self.settings.limits.quote_deadline, move || {
                service.quote(&nonce, mask)
            })
            .await;
        match done {
            Ok(reply) => reply,
            Err(TpmJobError::Stopped) => Err(AttestError::Interrupted),
            Err(TpmJobError::Deadline(d)) => {
                if let Some(m) = &self.settings.metrics {
                    m.tpm_error(TpmErrorKind::Deadline);
                }
                Err(AttestError::Deadline(d))
            }
        }
    }
}

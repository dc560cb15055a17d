//! Request handling: route a method and path to an endpoint (or to the error
//! keylime's reference agent gives for it; one router for every enabled API
//! version), validate, call the [`Attestation`] service and format the answer.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use keylet_core::pcr::DATA_PCR;

use super::ServerSettings;
use super::keys;
use super::query::IntegrityQuery;
use super::response::{self, Reply};
use super::revocation;
use super::service::{AttestError, Attestation};
use super::version::{ApiVersion, ApiVersions};
use crate::executor::TpmJobError;
use crate::keylime::agent_api::{AgentInfoResults, PubKeyResults, VersionResults};
use crate::logs::{ImaLog, ImaSlice};
use crate::metrics::{Endpoint, TpmErrorKind};

/// The IMA log is sent when its PCR is quoted, the boot log when the first
/// measured-boot PCR is.
const IMA_PCR: u8 = 10;
const BOOT_PCR: u8 = 0;

/// Shared by all connections of one listener.
pub(crate) struct Handler {
    pub(crate) service: Arc<dyn Attestation>,
    pub(crate) settings: ServerSettings,
    /// Serve only `/version`, `/v2.x/agent/info` and `/v2.x/quotes/identity`
    /// (the identity listener for SPIRE); everything else is a 404.
    pub(crate) identity_only: bool,
}

impl Handler {
    /// Answers one request. Never fails: every problem is an HTTP error.
    pub(crate) async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Reply {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let path = uri.path();
        let query = uri.query().unwrap_or("");
        let s = &self.settings;
        let response = match route(&method, path, &s.versions) {
            r if self.identity_only
                && !matches!(
                    r,
                    Route::Version | Route::Quote(_, Endpoint::Identity) | Route::AgentInfo(_)
                ) =>
            {
                response::error(StatusCode::NOT_FOUND, "Not Found")
            }
            Route::Version => {
                let offered = s.versions.offered().iter().map(ToString::to_string);
                let supported_versions: Vec<String> = offered.collect();
                response::success(&VersionResults {
                    supported_version: supported_versions.last().cloned().unwrap_or_default(),
                    supported_versions,
                })
            }
            Route::Quote(v, endpoint) => {
                let parsed = match endpoint {
                    Endpoint::Identity => IntegrityQuery::identity(query),
                    Endpoint::Integrity => IntegrityQuery::parse(query),
                };
                match parsed {
                    Ok(q) => {
                        let answer = self.quote(v, q).await;
                        if let Some(m) = &s.metrics {
                            m.quote_served(endpoint, answer.is_ok());
                        }
                        answer.unwrap_or_else(|failed| failed)
                    }
                    Err(e) => response::error(StatusCode::BAD_REQUEST, &e),
                }
            }
            Route::PubKey => response::success(&PubKeyResults {
                pubkey: self.service.payload_public_pem(),
            }),
            Route::AgentInfo(v) => {
                let info = self.service.agent_info();
                response::success(&AgentInfoResults {
                    agent_uuid: &info.uuid,
                    tpm_hash_alg: info.hash_alg.name(),
                    tpm_enc_alg: info.key_alg.keylime_name(v.major, v.minor),
                    tpm_sign_alg: info.sign_alg.name(),
                    ak_handle: info.ak_handle,
                })
            }
            Route::KeysVerify => keys::verify(s.payload_keys.as_deref(), query),
            Route::PostKey(name, take) => {
                keys::post(s.payload_keys.as_deref(), request.into_body(), name, take).await
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

    /// A quote over the query's PCRs and PCR 16, with the logs they call for;
    /// `Err` is a failure (counted as such in the metrics).
    async fn quote(&self, v: ApiVersion, q: IntegrityQuery) -> Result<Reply, Reply> {
        let s = &self.settings;
        let failed = |message| response::error(StatusCode::INTERNAL_SERVER_ERROR, message);
        // On the TPM worker, waited for at most the quote deadline, its turn
        // behind other TPM jobs included. A quote still queued at its
        // deadline is dropped; one already running finishes by itself (its
        // result is dropped).
        let service = Arc::clone(&self.service);
        let (nonce, mask) = (q.nonce, q.mask.with(DATA_PCR));
        let done = s.tpm_worker.run(s.limits.quote_deadline, async move {
            service.quote(&nonce, mask).await
        });
        let quote = match done.await {
            Ok(quote) => quote,
            Err(TpmJobError::Stopped) => Err(AttestError::Interrupted),
            Err(TpmJobError::Deadline(d)) => {
                if let Some(m) = &s.metrics {
                    m.tpm_error(TpmErrorKind::Deadline);
                }
                Err(AttestError::Deadline(d))
            }
        };
        let quote = quote.map_err(|e| {
            log::error!("quote failed: {e}");
            failed("Unable to retrieve quote")
        })?;
        // After the quote, so the slice holds every line in the quoted PCR 10.
        let ima = match s.ima_log.clone().filter(|_| q.mask.contains(IMA_PCR)) {
            Some(ima) => Some(slice_ima(ima, q.ima_ml_entry).await.map_err(|e| {
                log::error!("reading the IMA log failed: {e}");
                failed("Unable to read the IMA measurement list")
            })?),
            None => None,
        };
        let mb = s.mb_log.clone().filter(|_| q.mask.contains(BOOT_PCR));
        let pubkey = q.include_pubkey.then(|| self.service.payload_public_pem());
        let info = self.service.agent_info();
        Ok(response::quote(
            v, &quote, &info, pubkey, s.boottime, ima, mb,
        ))
    }
}

/// The IMA list from line `entry`: here if one short read will do, else on
/// tokio's blocking thread (not the TPM worker: the next quote does not wait
/// for a log read).
async fn slice_ima(
    ima: Arc<ImaLog>,
    entry: u64,
) -> Result<(Arc<ImaLog>, ImaSlice), Box<dyn std::error::Error + Send + Sync>> {
    if let Some(slice) = ima.try_slice_from(entry)? {
        return Ok((ima, slice));
    }
    let read = move || ima.slice_from(entry).map(|slice| (ima, slice));
    Ok(tokio::task::spawn_blocking(read).await??)
}

/// Where a request goes (see [`route_versioned`] for the paths).
#[derive(Debug)]
enum Route {
    Version,
    Quote(ApiVersion, Endpoint),
    PubKey,
    AgentInfo(ApiVersion),
    /// `GET /keys/verify`: proof of the payload key K.
    KeysVerify,
    /// `POST /keys/ukey` (the tenant's key share U and payload) or
    /// `/keys/vkey` (the verifier's key share V): its name and what takes it.
    PostKey(&'static str, keys::Take),
    Revocation,
    /// A 400 with this `status`.
    BadRequest(String),
    /// A 405 with this `Allow` header.
    MethodNotAllowed(&'static str),
}

const GET: &str = "GET";
const POST: &str = "POST";
const GET_POST: &str = "GET, POST";

/// Routes `method` and `path` (without the query string), ignoring a trailing
/// slash.
fn route(method: &Method, path: &str, versions: &ApiVersions) -> Route {
    let path = path.strip_prefix('/').unwrap_or(path);
    let segments: Vec<&str> = path.strip_suffix('/').unwrap_or(path).split('/').collect();
    let get = method == Method::GET;
    match segments.as_slice() {
        ["version"] if get => Route::Version,
        ["version"] => Route::MethodNotAllowed(GET),
        [first, rest @ ..] if looks_like_version(first) => {
            match ApiVersion::from_path_segment(first).filter(|v| versions.contains(*v)) {
                Some(v) => route_versioned(method, v, rest),
                None => Route::BadRequest(format!("API version not supported: {first}")),
            }
        }
        _ if get || method == Method::POST => {
            let all = versions.as_slice().iter().map(|v| format!("/v{v}"));
            let all = all.collect::<Vec<_>>().join(", ");
            Route::BadRequest(format!("Not Implemented: Use {all} or /version interfaces"))
        }
        _ => Route::MethodNotAllowed(GET_POST),
    }
}

/// `v` followed by digits and dots, with at least one dot (`v3.0`, `v2.06`).
fn looks_like_version(segment: &str) -> bool {
    segment.strip_prefix('v').is_some_and(|rest| {
        rest.contains('.') && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    })
}

fn route_versioned(method: &Method, v: ApiVersion, rest: &[&str]) -> Route {
    let bad = |message: &str| Route::BadRequest(message.into());
    let agent = v.has_agent_info();
    match (rest, method == Method::GET, method == Method::POST) {
        (["quotes", "identity"], true, _) => Route::Quote(v, Endpoint::Identity),
        (["quotes", "integrity"], true, _) => Route::Quote(v, Endpoint::Integrity),
        (["quotes", _], true, _) => bad(
            "URI not supported, only /identity and /integrity are supported for GET in /quotes/ interface",
        ),
        (["quotes", _], false, _) => Route::MethodNotAllowed(GET),
        (["keys", "pubkey"], true, _) => Route::PubKey,
        (["keys", "verify"], true, _) => Route::KeysVerify,
        (["keys", _], true, _) => bad(
            "URI not supported, only /pubkey and /verify are supported for GET in /keys interface",
        ),
        (["keys", "ukey"], _, true) => Route::PostKey("ukey", keys::take_u),
        (["keys", "vkey"], _, true) => Route::PostKey("vkey", keys::take_v),
        (["keys", _], _, true) => {
            bad("URI not supported, only /ukey and /vkey are supported for POST in /keys interface")
        }
        (["keys", _], ..) => Route::MethodNotAllowed(GET_POST),
        (["agent", "info"], true, _) if agent => Route::AgentInfo(v),
        (["agent", _], true, _) if agent => {
            bad("URI not supported, only /info is supported for GET in /agent interface")
        }
        (["agent", _], false, _) if agent => Route::MethodNotAllowed(GET),
        (["notifications", "revocation"], _, true) => Route::Revocation,
        (["notifications", _], _, true) => bad(
            "URI not supported, only /revocation is supported for POST in /notifications/ interface",
        ),
        (["notifications", _], _, false) => Route::MethodNotAllowed(POST),
        (_, true, _) => {
            let agent = if agent { "/agent, " } else { "" };
            Route::BadRequest(format!(
                "Not Implemented: Use {agent}/keys, or /quotes interfaces"
            ))
        }
        (_, _, true) => bad("Not Implemented: Use /keys or /notifications interfaces"),
        _ => Route::MethodNotAllowed(GET_POST),
    }
}

//! One router for every enabled API version: maps a method and path to an
//! endpoint, or to the error keylime's reference agent gives for it.

use hyper::Method;

use super::version::{ApiVersion, ApiVersions};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /version`.
    Version,
    /// `GET /v2.x/quotes/identity`.
    Identity(ApiVersion),
    /// `GET /v2.x/quotes/integrity`.
    Integrity(ApiVersion),
    /// `GET /v2.x/keys/pubkey`.
    PubKey(ApiVersion),
    /// `GET /v2.2+/agent/info`.
    AgentInfo(ApiVersion),
    /// `GET /v2.x/keys/verify`: proof of the payload key K.
    KeysVerify,
    /// `POST /v2.x/keys/ukey`: the tenant's key share U (and payload).
    UKey,
    /// `POST /v2.x/keys/vkey`: the verifier's key share V.
    VKey,
    /// `POST /v2.x/notifications/revocation`: a signed revocation notification.
    Revocation,
    /// A 400 with this `status`.
    BadRequest(String),
    /// A 405 with this `Allow` header.
    MethodNotAllowed(&'static str),
}

const GET: &str = "GET";
const POST: &str = "POST";
const GET_POST: &str = "GET, POST";

/// Routes `method` and `path` (without the query string). A trailing slash is
/// ignored.
#[must_use]
pub(crate) fn route(method: &Method, path: &str, versions: &ApiVersions) -> Route {
    let path = match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    };
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    match segments.as_slice() {
        ["version"] if get => Route::Version,
        ["version"] => Route::MethodNotAllowed(GET),
        [first, rest @ ..] if looks_like_version(first) => {
            match ApiVersion::from_path_segment(first).filter(|v| versions.contains(*v)) {
                Some(v) => route_versioned(method, v, rest),
                None => Route::BadRequest(format!("API version not supported: {first}")),
            }
        }
        _ if get || post => Route::BadRequest(format!(
            "Not Implemented: Use {} or /version interfaces",
            versions
                .as_slice()
                .iter()
                .map(|v| format!("/v{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
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
    let get = method == Method::GET;
    let post = method == Method::POST;
    match rest {
        ["quotes", op] => match (get, *op) {
            (true, "identity") => Route::Identity(v),
            (true, "integrity") => Route::Integrity(v),
            (true, _) => Route::BadRequest(
                "URI not supported, only /identity and /integrity are supported for GET in /quotes/ interface"
                    .into(),
            ),
            (false, _) => Route::MethodNotAllowed(GET),
        },
        ["keys", op] => match (get, post, *op) {
            (true, _, "pubkey") => Route::PubKey(v),
            (true, _, "verify") => Route::KeysVerify,
            (true, _, _) => Route::BadRequest(
                "URI not supported, only /pubkey and /verify are supported for GET in /keys interface"
                    .into(),
            ),
            (_, true, "ukey") => Route::UKey,
            (_, true, "vkey") => Route::VKey,
            (_, true, _) => Route::BadRequest(
                "URI not supported, only /ukey and /vkey are supported for POST in /keys interface"
                    .into(),
            ),
            _ => Route::MethodNotAllowed(GET_POST),
        },
        ["agent", op] if v.has_agent_info() => match (get, *op) {
            (true, "info") => Route::AgentInfo(v),
            (true, _) => Route::BadRequest(
                "URI not supported, only /info is supported for GET in /agent interface".into(),
            ),
            (false, _) => Route::MethodNotAllowed(GET),
        },
        ["notifications", op] => match (post, *op) {
            (true, "revocation") => Route::Revocation,
            (true, _) => Route::BadRequest(
                "URI not supported, only /revocation is supported for POST in /notifications/ interface"
                    .into(),
            ),
            (false, _) => Route::MethodNotAllowed(POST),
        },
        _ if get => {
            let agent = if v.has_agent_info() { "/agent, " } else { "" };
            Route::BadRequest(format!(
                "Not Implemented: Use {agent}/keys, or /quotes interfaces"
            ))
        }
        _ if post => {
            Route::BadRequest("Not Implemented: Use /keys or /notifications interfaces".into())
        }
        _ => Route::MethodNotAllowed(GET_POST),
    }
}

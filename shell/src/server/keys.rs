//! `POST /keys/ukey`, `POST /keys/vkey` and `GET /keys/verify`
//! (keylime-protocol §4.5–§4.7): request parsing and answers; the keys
//! themselves are handled by [`KeyBootstrap`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::StatusCode;
use hyper::body::{Body, Incoming};
use keylet_core::keylime::hex::{self, HexError};
use serde::Deserialize;

use super::query;
use super::response::{self, Empty, Reply};
use crate::keylime::agent_api::{UKeyRequest, VKeyRequest, VerifyResults};
use crate::keylime::decode;
use crate::payload::KeyBootstrap;

/// The longest `/keys/verify` challenge accepted (the tenant sends 20).
const MAX_CHALLENGE_LEN: usize = 1024;
/// How long a client may take to send a request body: a request being
/// served holds one of the few serving slots, so a slow body must not keep
/// it for long.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

const NO_KEYS: &str =
    "keylet does not accept payload keys (U/V) here; add this agent without a payload";

fn bad_request(message: &str) -> Reply {
    response::error(StatusCode::BAD_REQUEST, message)
}

/// What takes a key share from a request body: [`take_u`] or [`take_v`].
pub(crate) type Take = fn(&KeyBootstrap, &[u8]) -> Result<(), String>;

/// `POST /keys/ukey` (U, its auth tag and the encrypted payload) and
/// `POST /keys/vkey` (V), named `endpoint`.
pub(crate) async fn post(
    keys: Option<&KeyBootstrap>,
    body: Incoming,
    endpoint: &str,
    take: Take,
) -> Reply {
    let Some(keys) = keys else {
        return bad_request(NO_KEYS);
    };
    let limit = keys.max_request_bytes();
    let too_large = format!(
        "request body larger than {limit} bytes; the payload must fit the agent's secure_size"
    );
    let what = format!("POST /keys/{endpoint}");
    take_body(body, limit, &too_large, &what, |bytes| take(keys, bytes)).await
}

pub(crate) fn take_u(keys: &KeyBootstrap, body: &[u8]) -> Result<(), String> {
    let request: UKeyRequest = decode_json(body)?;
    let encrypted_key = decode_b64("encrypted_key", &request.encrypted_key)?;
    let auth_tag = decode_tag(&request.auth_tag)?;
    let payload = request
        .payload
        .as_deref()
        .map(|p| decode_b64("payload", p))
        .transpose()?;
    keys.add_u(&encrypted_key, auth_tag, payload)
        .map_err(|e| e.to_string())
}

pub(crate) fn take_v(keys: &KeyBootstrap, body: &[u8]) -> Result<(), String> {
    let request: VKeyRequest = decode_json(body)?;
    let encrypted_key = decode_b64("encrypted_key", &request.encrypted_key)?;
    keys.add_v(&encrypted_key).map_err(|e| e.to_string())
}

pub(crate) fn verify(keys: Option<&KeyBootstrap>, query_string: &str) -> Reply {
    let challenge = query::find(query_string, "challenge").unwrap_or_default();
    if challenge.is_empty() {
        return bad_request("No challenge provided.");
    }
    if challenge.len() > MAX_CHALLENGE_LEN {
        return bad_request(&format!(
            "challenge is {} characters; at most {MAX_CHALLENGE_LEN} are accepted",
            challenge.len()
        ));
    }
    if !challenge.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return bad_request("Parameters should be strictly alphanumeric: challenge");
    }
    match keys.and_then(|k| k.verify(&challenge)) {
        Some(tag) => response::success(&VerifyResults { hmac: tag.as_str() }),
        None => bad_request("Bootstrap key not yet available."),
    }
}

/// Reads the request body (at most `limit` bytes) and hands it to `take`: 200
/// if it takes it; 413 (with `too_large`), or 408 if the body did not arrive
/// within [`BODY_READ_TIMEOUT`]; 400 if it cannot be read or `take` refuses
/// it, logged as why the request `what` was refused.
pub(super) async fn take_body<B>(
    body: B,
    limit: usize,
    too_large: &str,
    what: &str,
    take: impl FnOnce(&[u8]) -> Result<(), String>,
) -> Reply
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A declared Content-Length over the limit is refused before reading, so
    // a client waiting on "Expect: 100-continue" gets the 413, not a reset.
    let too_large = || response::error(StatusCode::PAYLOAD_TOO_LARGE, too_large);
    if body.size_hint().lower() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return too_large();
    }
    let collected = tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect());
    let taken = match collected.await {
        Ok(Ok(collected)) => take(&collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Ok(Err(e)) => Err(format!("cannot read the request body: {e}")),
        Err(_) => {
            let secs = BODY_READ_TIMEOUT.as_secs();
            let message = format!("the request body did not arrive within {secs} s");
            return response::error(StatusCode::REQUEST_TIMEOUT, &message);
        }
    };
    match taken {
        Ok(()) => response::success(&Empty {}),
        Err(message) => {
            log::warn!("{what} refused: {message}");
            bad_request(&message)
        }
    }
}

pub(super) fn decode_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    decode(body).map_err(|e| format!("Invalid JSON body: {e}"))
}

fn decode_b64(field: &str, text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text.trim())
        .map_err(|e| format!("Invalid base64 encoding in {field}: {e}"))
}

fn decode_tag(text: &str) -> Result<[u8; 48], String> {
    let mut tag = [0u8; 48];
    let bad_length =
        |len| format!("auth tag length {len} does not correspond to valid SHA-384 HMAC");
    match hex::decode(text.trim().as_bytes(), &mut tag).map(<[u8]>::len) {
        Ok(48) => Ok(tag),
        Ok(len) => Err(bad_length(len)),
        Err(HexError::BufferTooSmall { needed, .. }) => Err(bad_length(needed)),
        Err(e) => Err(format!("Invalid hex encoding in auth_tag: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use hyper::body::{Bytes, Frame};

    use super::*;

    /// A body whose bytes never come.
    struct Stalled;

    impl Body for Stalled {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_does_not_arrive_is_refused_with_408_at_the_deadline() {
        let t0 = tokio::time::Instant::now();
        let reply = take_body(Stalled, 1024, "", "a stalled request", |_| Ok(())).await;
        assert_eq!(t0.elapsed(), BODY_READ_TIMEOUT);
        assert_eq!(reply.status(), StatusCode::REQUEST_TIMEOUT);
    }
}

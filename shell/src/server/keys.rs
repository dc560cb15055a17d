//! `POST /keys/ukey`, `POST /keys/vkey` and `GET /keys/verify`
//! (keylime-protocol §4.5–§4.7): request parsing and answers; the keys
//! themselves are handled by [`KeyBootstrap`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Bytes};
use hyper::{Response, StatusCode};
use keylet_core::keylime::hex::{self, HexError};
use serde::Deserialize;

use super::body::ResponseBody;
use super::query;
use super::response::{self, Empty};
use crate::keylime::agent_api::{UKeyRequest, VKeyRequest, VerifyResults};
use crate::keylime::decode;
use crate::payload::KeyBootstrap;

/// The longest `/keys/verify` challenge accepted (the tenant sends 20).
const MAX_CHALLENGE_LEN: usize = 1024;
/// How long a client may take to send a request body: a request being
/// served holds one of the few serving slots, so a slow body must not keep
/// it for long.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Answer when keylet was started without payload-key support.
const NO_KEYS: &str =
    "keylet does not accept payload keys (U/V) here; add this agent without a payload";

type Reply = Response<ResponseBody>;

/// Why a request with a JSON body was not taken.
#[derive(Debug)]
pub(super) enum Rejected {
    /// 400 with this `status`.
    BadRequest(String),
    /// 413: the body exceeded this many bytes.
    TooLarge(usize),
    /// 408: the body did not arrive within [`BODY_READ_TIMEOUT`].
    TooSlow,
}

impl Rejected {
    pub(super) fn into_reply(self) -> Reply {
        match self {
            Self::BadRequest(message) => bad_request(&message),
            Self::TooLarge(limit) => response::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "request body larger than {limit} bytes; the payload must fit the agent's \
                     secure_size"
                ),
            ),
            Self::TooSlow => response::error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the request body did not arrive within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            ),
        }
    }
}

fn bad_request(message: &str) -> Reply {
    response::error(StatusCode::BAD_REQUEST, message)
}

/// Which half of the payload key a POST carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyHalf {
    /// `POST /keys/ukey`: U, its auth tag and the encrypted payload.
    U,
    /// `POST /keys/vkey`: V.
    V,
}

/// `POST /keys/ukey` and `POST /keys/vkey`.
pub(crate) async fn post<B>(half: KeyHalf, keys: Option<&KeyBootstrap>, body: B) -> Reply
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(keys) = keys else {
        return bad_request(NO_KEYS);
    };
    let limit = keys.max_request_bytes();
    let (endpoint, result) = match half {
        KeyHalf::U => (
            "ukey",
            read_json(body, limit).await.and_then(|r| take_u(keys, r)),
        ),
        KeyHalf::V => (
            "vkey",
            read_json(body, limit).await.and_then(|r| take_v(keys, r)),
        ),
    };
    match result {
        Ok(()) => response::success(&Empty {}),
        Err(r) => {
            if let Rejected::BadRequest(message) = &r {
                log::warn!("POST /keys/{endpoint} refused: {message}");
            }
            r.into_reply()
        }
    }
}

fn take_u(keys: &KeyBootstrap, request: UKeyRequest) -> Result<(), Rejected> {
    let encrypted_key = decode_b64("encrypted_key", &request.encrypted_key)?;
    let auth_tag = decode_tag(&request.auth_tag)?;
    let payload = request
        .payload
        .as_deref()
        .map(|p| decode_b64("payload", p))
        .transpose()?;
    keys.add_u(&encrypted_key, auth_tag, payload)
        .map_err(|e| Rejected::BadRequest(e.to_string()))
}

fn take_v(keys: &KeyBootstrap, request: VKeyRequest) -> Result<(), Rejected> {
    let encrypted_key = decode_b64("encrypted_key", &request.encrypted_key)?;
    keys.add_v(&encrypted_key)
        .map_err(|e| Rejected::BadRequest(e.to_string()))
}

/// `GET /keys/verify?challenge=`.
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

pub(super) async fn read_json<T, B>(body: B, limit: usize) -> Result<T, Rejected>
where
    T: for<'de> Deserialize<'de>,
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A declared Content-Length over the limit is refused before reading, so
    // a client waiting on "Expect: 100-continue" gets the 413, not a reset.
    if body.size_hint().lower() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(Rejected::TooLarge(limit));
    }
    let collected = tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect());
    let bytes: Bytes = match collected.await.map_err(|_| Rejected::TooSlow)? {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(Rejected::TooLarge(limit));
        }
        Err(e) => {
            return Err(Rejected::BadRequest(format!(
                "cannot read the request body: {e}"
            )));
        }
    };
    decode(&bytes).map_err(|e| Rejected::BadRequest(format!("Invalid JSON body: {e}")))
}

fn decode_b64(field: &str, text: &str) -> Result<Vec<u8>, Rejected> {
    STANDARD
        .decode(text.trim())
        .map_err(|e| Rejected::BadRequest(format!("Invalid base64 encoding in {field}: {e}")))
}

fn decode_tag(text: &str) -> Result<[u8; 48], Rejected> {
    let mut tag = [0u8; 48];
    let bad_length = |len| {
        Rejected::BadRequest(format!(
            "auth tag length {len} does not correspond to valid SHA-384 HMAC"
        ))
    };
    match hex::decode(text.trim().as_bytes(), &mut tag).map(<[u8]>::len) {
        Ok(48) => Ok(tag),
        Ok(len) => Err(bad_length(len)),
        Err(HexError::BufferTooSmall { needed, .. }) => Err(bad_length(needed)),
        Err(e) => Err(Rejected::BadRequest(format!(
            "Invalid hex encoding in auth_tag: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use hyper::body::Frame;

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
        let read = read_json::<serde_json::Value, _>(Stalled, 1024).await;
        assert!(matches!(read, Err(Rejected::TooSlow)));
        assert_eq!(t0.elapsed(), BODY_READ_TIMEOUT);
        let reply = Rejected::TooSlow.into_reply();
        assert_eq!(reply.status(), StatusCode::REQUEST_TIMEOUT);
    }
}

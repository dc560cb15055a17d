//! Responses carrying Keylime's JSON envelope ([`Envelope`]), compact, with
//! `Content-Type: application/json`.

use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::body::ResponseBody;
pub(crate) use crate::keylime::Empty;
use crate::keylime::{Envelope, SUCCESS};

/// Sent if an envelope cannot be serialized (it always can; this keeps the
/// server from ever panicking on it).
const FALLBACK_500: &str = r#"{"code":500,"status":"Internal error","results":{}}"#;

/// The envelope bytes for `status` / `results`.
pub(crate) fn envelope_bytes<T: Serialize>(code: StatusCode, status: &str, results: &T) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        code: code.as_u16(),
        status,
        results,
    })
    .unwrap_or_else(|e| {
        log::error!("cannot serialize a response: {e}");
        FALLBACK_500.as_bytes().to_vec()
    })
}

/// A response with `body` as a JSON document.
pub(crate) fn with_body(code: StatusCode, body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// 200 with `results`.
pub(crate) fn success<T: Serialize>(results: &T) -> Response<ResponseBody> {
    let bytes = envelope_bytes(StatusCode::OK, SUCCESS, results);
    with_body(StatusCode::OK, ResponseBody::fixed(bytes))
}

/// An error response: `status` is the message, `results` is `{}`.
pub(crate) fn error(code: StatusCode, message: &str) -> Response<ResponseBody> {
    let bytes = envelope_bytes(code, message, &Empty {});
    with_body(code, ResponseBody::fixed(bytes))
}

/// 405 with an `Allow` header.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<ResponseBody> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "Method is not supported");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

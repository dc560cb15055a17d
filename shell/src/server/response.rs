//! Responses carrying Keylime's JSON envelope ([`Envelope`]), compact, with
//! `Content-Type: application/json`; quote responses with the logs streamed
//! in place: [`QuoteResults`] written by serde with each log's field cut out
//! ([`Splicer`]) and the log read from its file into the cut, chunk by chunk.

use std::sync::Arc;

use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::body::{ResponseBody, Segment};
use super::service::AgentInfo;
use super::version::ApiVersion;
pub(crate) use crate::keylime::Empty;
use crate::keylime::agent_api::QuoteResults;
use crate::keylime::streamed::Splicer;
use crate::keylime::{Envelope, SUCCESS};
use crate::logs::{ImaLog, ImaSlice, MeasuredBootLog};

/// Sent if an envelope cannot be serialized (it always can; this keeps the
/// server from ever panicking on it).
const FALLBACK_500: &str = r#"{"code":500,"status":"Internal error","results":{}}"#;

pub(crate) type Reply = Response<ResponseBody>;

fn with_body(code: StatusCode, segments: Vec<Segment>) -> Reply {
    let mut response = Response::new(ResponseBody(segments.into()));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn envelope<T: Serialize>(code: StatusCode, status: &str, results: &T) -> Reply {
    let bytes = serde_json::to_vec(&Envelope {
        code: code.as_u16(),
        status,
        results,
    })
    .unwrap_or_else(|e| {
        log::error!("cannot serialize a response: {e}");
        FALLBACK_500.as_bytes().to_vec()
    });
    with_body(code, vec![Segment::Fixed(bytes.into())])
}

pub(crate) fn success<T: Serialize>(results: &T) -> Reply {
    envelope(StatusCode::OK, SUCCESS, results)
}

/// An error response: `status` is the message, `results` is `{}`.
pub(crate) fn error(code: StatusCode, message: &str) -> Reply {
    envelope(code, message, &Empty {})
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Reply {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "Method is not supported");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// A 200 quote response of `quote`, made with `info`'s algorithms; `pubkey`
/// is included when given, and the logs are streamed in: the IMA log's lines
/// of its slice, the measured-boot log whole.
pub(crate) fn quote(
    version: ApiVersion,
    quote: &str,
    info: &AgentInfo,
    pubkey: Option<&str>,
    boottime: Option<u64>,
    ima: Option<(Arc<ImaLog>, ImaSlice)>,
    measured_boot: Option<Arc<MeasuredBootLog>>,
) -> Reply {
    let splicer = Splicer::default();
    // In the order QuoteResults writes its fields.
    let mut streams = Vec::with_capacity(2);
    let ima_entry = ima.as_ref().map(|(_, slice)| slice.entry);
    let ima = ima.map(|(log, slice)| {
        streams.push(Segment::ima(log, slice));
        splicer.slot()
    });
    let measured_boot = measured_boot.map(|log| {
        streams.push(Segment::measured_boot(log));
        splicer.slot()
    });
    let results = QuoteResults {
        quote,
        hash_alg: info.hash_alg.name(),
        enc_alg: info.key_alg.keylime_name(version.major, version.minor),
        sign_alg: info.sign_alg.name(),
        pubkey,
        boottime,
        ima_measurement_list: ima,
        ima_measurement_list_entry: ima_entry,
        mb_measurement_list: measured_boot,
    };
    let written = splicer.write(&Envelope::success(results));
    let Ok(pieces) = written.inspect_err(|e| log::error!("cannot serialize a quote: {e}")) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unable to retrieve quote",
        );
    };
    // The document's pieces with the logs between them.
    let mut pieces = pieces.into_iter().map(|p| Segment::Fixed(p.into()));
    let mut segments: Vec<Segment> = pieces.next().into_iter().collect();
    for stream in streams {
        segments.push(stream);
        segments.extend(pieces.next());
    }
    with_body(StatusCode::OK, segments)
}

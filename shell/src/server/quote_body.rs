//! The body of a quote response, with the logs streamed in place.
//!
//! ```text
//! {"code":200,"status":"Success","results":{"quote":"…","hash_alg":"sha256",
//!  "enc_alg":"rsa2048","sign_alg":"rsassa"[,"pubkey":"…"][,"boottime":N]
//!  [,"ima_measurement_list":"<streamed>","ima_measurement_list_entry":N]
//!  [,"mb_measurement_list":"<streamed base64>"]}}
//! ```

use std::sync::Arc;

use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::body::{ResponseBody, Segment};
use super::response::{SUCCESS, with_body};
use super::service::QuoteReply;
use super::version::ApiVersion;
use crate::logs::{ImaLog, ImaSlice, MeasuredBootLog};

/// The logs to stream into a quote response.
#[derive(Debug, Default)]
pub(crate) struct QuoteLogs {
    /// The IMA log and the lines to send.
    pub(crate) ima: Option<(Arc<ImaLog>, ImaSlice)>,
    /// The measured-boot log, sent whole.
    pub(crate) measured_boot: Option<Arc<MeasuredBootLog>>,
}

/// The fixed part of a quote's `results`, in wire order.
#[derive(Serialize)]
struct QuoteFields<'a> {
    quote: &'a str,
    hash_alg: &'static str,
    enc_alg: &'static str,
    sign_alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pubkey: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    boottime: Option<u64>,
}

/// A 200 quote response; `pubkey` is included when given.
pub(crate) fn quote_response(
    version: ApiVersion,
    reply: &QuoteReply,
    pubkey: Option<&str>,
    boottime: Option<u64>,
    logs: QuoteLogs,
) -> Response<ResponseBody> {
    let fields = QuoteFields {
        quote: &reply.quote,
        hash_alg: reply.hash_alg.name(),
        enc_alg: reply.key_alg.keylime_name(version.major, version.minor),
        sign_alg: reply.sign_alg.name(),
        pubkey,
        boottime,
    };
    let fields = match serde_json::to_vec(&fields) {
        Ok(f) => f,
        Err(e) => {
            log::error!("cannot serialize a quote: {e}");
            return super::response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to retrieve quote",
            );
        }
    };
    // `fields` is a JSON object; drop its closing brace to append the logs.
    let fields_open = fields.strip_suffix(b"}").unwrap_or(&fields);

    let mut head = Vec::with_capacity(fields.len().saturating_add(64));
    head.extend_from_slice(br#"{"code":200,"status":""#);
    head.extend_from_slice(SUCCESS.as_bytes());
    head.extend_from_slice(br#"","results":"#);
    head.extend_from_slice(fields_open);

    let mut segments = Vec::with_capacity(6);
    let mut tail: Vec<u8> = Vec::new();
    if let Some((log, slice)) = logs.ima {
        head.extend_from_slice(br#","ima_measurement_list":""#);
        segments.push(Segment::Fixed(Bytes::from(std::mem::take(&mut head))));
        segments.push(Segment::ima(log, slice));
        tail.extend_from_slice(br#"","ima_measurement_list_entry":"#);
        tail.extend_from_slice(slice.entry.to_string().as_bytes());
    }
    if let Some(log) = logs.measured_boot {
        let mut open = std::mem::take(&mut head);
        open.append(&mut tail);
        open.extend_from_slice(br#","mb_measurement_list":""#);
        segments.push(Segment::Fixed(Bytes::from(open)));
        segments.push(Segment::measured_boot(log));
        tail.push(b'"');
    }
    let mut close = head;
    close.append(&mut tail);
    close.extend_from_slice(b"}}");
    segments.push(Segment::Fixed(Bytes::from(close)));
    with_body(StatusCode::OK, ResponseBody::from_segments(segments))
}

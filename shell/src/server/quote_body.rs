//! The body of a quote response, with the logs streamed in place: the
//! document is [`QuoteResults`] in Keylime's envelope, written by serde with
//! each log's field cut out ([`Splicer`]) and the log read from its file
//! into the cut, chunk by chunk.

use std::sync::Arc;

use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use super::body::{ResponseBody, Segment};
use super::response::with_body;
use super::service::QuoteReply;
use super::version::ApiVersion;
use crate::keylime::Envelope;
use crate::keylime::agent_api::QuoteResults;
use crate::keylime::streamed::Splicer;
use crate::logs::{ImaLog, ImaSlice, MeasuredBootLog};

/// The logs to stream into a quote response.
#[derive(Debug, Default)]
pub(crate) struct QuoteLogs {
    /// The IMA log and the lines to send.
    pub(crate) ima: Option<(Arc<ImaLog>, ImaSlice)>,
    /// The measured-boot log, sent whole.
    pub(crate) measured_boot: Option<Arc<MeasuredBootLog>>,
}

/// A 200 quote response; `pubkey` is included when given.
pub(crate) fn quote_response(
    version: ApiVersion,
    reply: &QuoteReply,
    pubkey: Option<&str>,
    boottime: Option<u64>,
    logs: QuoteLogs,
) -> Response<ResponseBody> {
    let splicer = Splicer::default();
    // In the order QuoteResults writes its fields.
    let mut streams = Vec::with_capacity(2);
    let ima_entry = logs.ima.as_ref().map(|(_, slice)| slice.entry);
    let ima = logs.ima.map(|(log, slice)| {
        streams.push(Segment::ima(log, slice));
        splicer.slot()
    });
    let measured_boot = logs.measured_boot.map(|log| {
        streams.push(Segment::measured_boot(log));
        splicer.slot()
    });
    let results = QuoteResults {
        quote: &reply.quote,
        hash_alg: reply.hash_alg.name(),
        enc_alg: reply.key_alg.keylime_name(version.major, version.minor),
        sign_alg: reply.sign_alg.name(),
        pubkey,
        boottime,
        ima_measurement_list: ima,
        ima_measurement_list_entry: ima_entry,
        mb_measurement_list: measured_boot,
    };
    let pieces = match splicer.write(&Envelope::success(results)) {
        Ok(pieces) => pieces,
        Err(e) => {
            log::error!("cannot serialize a quote: {e}");
            return super::response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to retrieve quote",
            );
        }
    };
    let mut pieces = pieces.into_iter().map(|p| Segment::Fixed(Bytes::from(p)));
    let mut segments = Vec::with_capacity(streams.len().saturating_mul(2).saturating_add(1));
    segments.extend(pieces.next());
    for stream in streams {
        segments.push(stream);
        segments.extend(pieces.next());
    }
    with_body(StatusCode::OK, ResponseBody::from_segments(segments))
}

//! The response body: fixed bytes, or fixed bytes interleaved with logs read
//! from their files one chunk at a time, so a 20 MB IMA log costs one chunk
//! of memory, not 20 MB.
//!
//! Chunks are read with a plain (blocking) `pread` inside `poll_frame`. Each
//! read is at most [`CHUNK`] bytes from securityfs or the page cache, which
//! takes microseconds; handing each read to another thread would cost more
//! than the read.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, SizeHint};

use super::escape::{Base64Encoder, JsonTextEscaper};
use crate::logs::{ImaLog, ImaSlice, LogError, MeasuredBootLog};

/// Bytes read from a log per body frame (a multiple of 3 so base64 chunks
/// need no carry in the common case).
const CHUNK: usize = 48 * 1024;

/// One piece of a response body.
#[derive(Debug)]
pub(crate) enum Segment {
    /// Bytes sent as they are.
    Fixed(Bytes),
    /// An IMA log byte range, escaped as the contents of a JSON string.
    ImaText {
        log: Arc<ImaLog>,
        pos: u64,
        end: u64,
        escaper: JsonTextEscaper,
    },
    /// A whole measured-boot log, as base64.
    MeasuredBoot {
        log: Arc<MeasuredBootLog>,
        pos: u64,
        encoder: Base64Encoder,
    },
}

impl Segment {
    /// The IMA lines of `slice`, escaped for a JSON string.
    pub(crate) fn ima(log: Arc<ImaLog>, slice: ImaSlice) -> Self {
        Self::ImaText {
            log,
            pos: slice.start,
            end: slice.end,
            escaper: JsonTextEscaper::default(),
        }
    }

    /// The measured-boot log in base64.
    pub(crate) fn measured_boot(log: Arc<MeasuredBootLog>) -> Self {
        Self::MeasuredBoot {
            log,
            pos: 0,
            encoder: Base64Encoder::default(),
        }
    }

    /// The next chunk, or `None` when this segment is done.
    fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        match self {
            Self::Fixed(bytes) => Ok((!bytes.is_empty()).then(|| std::mem::take(bytes))),
            Self::ImaText {
                log,
                pos,
                end,
                escaper,
            } => {
                let want = usize::try_from(end.saturating_sub(*pos))
                    .unwrap_or(CHUNK)
                    .min(CHUNK);
                let mut out = Vec::new();
                if want == 0 {
                    escaper.finish(&mut out);
                    return Ok((!out.is_empty()).then(|| Bytes::from(out)));
                }
                let mut buf = vec![0u8; want];
                let n = log.read_at(&mut buf, *pos)?;
                let read = buf.get(..n).unwrap_or_default();
                if read.is_empty() {
                    return Err(BodyError::Truncated);
                }
                *pos = pos.saturating_add(n as u64);
                escaper.push(read, &mut out);
                Ok(Some(Bytes::from(out)))
            }
            Self::MeasuredBoot { log, pos, encoder } => {
                let mut buf = vec![0u8; CHUNK];
                let n = log.read_at(&mut buf, *pos)?;
                let mut out = Vec::new();
                match buf.get(..n).filter(|r| !r.is_empty()) {
                    Some(read) => {
                        *pos = pos.saturating_add(n as u64);
                        encoder.push(read, &mut out);
                        Ok(Some(Bytes::from(out)))
                    }
                    None => {
                        encoder.finish(&mut out);
                        Ok((!out.is_empty()).then(|| Bytes::from(out)))
                    }
                }
            }
        }
    }

    fn fixed_len(&self) -> Option<u64> {
        match self {
            Self::Fixed(b) => Some(b.len() as u64),
            Self::ImaText { .. } | Self::MeasuredBoot { .. } => None,
        }
    }
}

/// A response body made of [`Segment`]s, sent in order.
#[derive(Debug, Default)]
pub(crate) struct ResponseBody {
    segments: VecDeque<Segment>,
}

impl ResponseBody {
    /// A body of fixed bytes.
    #[must_use]
    pub(crate) fn fixed(bytes: impl Into<Bytes>) -> Self {
        Self {
            segments: VecDeque::from([Segment::Fixed(bytes.into())]),
        }
    }

    /// A body made of `segments`.
    pub(crate) fn from_segments(segments: impl IntoIterator<Item = Segment>) -> Self {
        Self {
            segments: segments.into_iter().collect(),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        while let Some(segment) = self.segments.front_mut() {
            match segment.next_chunk() {
                Ok(Some(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Ok(None) => {
                    self.segments.pop_front();
                }
                Err(e) => {
                    log::warn!("aborting a response body: {e}");
                    self.segments.clear();
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.segments.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        let fixed: Option<u64> = self.segments.iter().map(Segment::fixed_len).sum();
        fixed.map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// Why a streamed body stopped early. The connection is then closed, so the
/// client sees a failed request (and the verifier retries).
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum BodyError {
    /// Reading a log failed.
    Log(LogError),
    /// The IMA log became shorter while it was being sent.
    Truncated,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Log(e) => write!(f, "{e}"),
            Self::Truncated => f.write_str("the IMA log shrank while it was being sent"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Log(e) => Some(e),
            Self::Truncated => None,
        }
    }
}

impl From<LogError> for BodyError {
    fn from(e: LogError) -> Self {
        Self::Log(e)
    }
}

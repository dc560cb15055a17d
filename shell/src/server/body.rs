//! The response body: fixed bytes, interleaved with logs read from their
//! files one chunk at a time into a JSON string's contents (IMA lines escaped
//! as text, the measured-boot log as base64), so a 20 MB IMA log costs one
//! chunk of memory.
//!
//! Chunks are read with a plain (blocking) `pread` inside `poll_frame`: at
//! most [`CHUNK`] bytes from securityfs or the page cache take microseconds,
//! less than handing the read to another thread.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::body::{Body, Bytes, Frame, SizeHint};

use crate::logs::{ImaLog, ImaSlice, MeasuredBootLog};

/// Bytes read from a log per body frame (a multiple of 3 so base64 chunks
/// need no carry in the common case).
const CHUNK: usize = 48 * 1024;

/// Why a streamed body stopped early (a log read failed, or the IMA log
/// shrank): the connection is closed, and the verifier retries.
type BodyError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub(crate) enum Segment {
    Fixed(Bytes),
    /// A log, read chunk by chunk from `pos` into a JSON string's contents.
    Log {
        log: Log,
        pos: u64,
        encoder: Encoder,
    },
}

/// The log a [`Segment::Log`] reads: IMA lines up to the slice's end, or the
/// whole measured-boot log.
#[derive(Debug)]
pub(crate) enum Log {
    Ima(Arc<ImaLog>, u64),
    Boot(Arc<MeasuredBootLog>),
}

/// Encodes bytes fed in pieces cut at arbitrary boundaries into a JSON
/// string's contents: base64 (with padding) or UTF-8 text escaped as
/// serde_json escapes it.
#[derive(Debug)]
pub(crate) struct Encoder {
    base64: bool,
    /// What the previous piece left for the next one to complete: a UTF-8
    /// sequence cut by the boundary, or up to two bytes of a base64 group.
    carry: Vec<u8>,
}

impl Segment {
    /// The IMA lines of `slice`, escaped for a JSON string. A slice within one
    /// chunk (the lines since the verifier's last quote, usually) is read now,
    /// so that the answer has a length and leaves in one piece; a read error
    /// leaves it to stream, and fail, with the body.
    pub(crate) fn ima(log: Arc<ImaLog>, slice: ImaSlice) -> Self {
        let streamed = || Self::log(Log::Ima(Arc::clone(&log), slice.end), slice.start, false);
        let mut segment = streamed();
        if slice.end.saturating_sub(slice.start) > CHUNK as u64 {
            return segment;
        }
        let read: Result<Vec<Bytes>, _> =
            std::iter::from_fn(|| segment.next_chunk().transpose()).collect();
        read.map_or_else(|_| streamed(), |chunks| Self::Fixed(chunks.concat().into()))
    }

    /// The measured-boot log in base64.
    pub(crate) fn measured_boot(log: Arc<MeasuredBootLog>) -> Self {
        Self::log(Log::Boot(log), 0, true)
    }

    fn log(log: Log, pos: u64, base64: bool) -> Self {
        let carry = Vec::new();
        let encoder = Encoder { base64, carry };
        Self::Log { log, pos, encoder }
    }

    /// The next chunk, or `None` when this segment is done.
    fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        let (log, pos, encoder) = match self {
            Self::Fixed(bytes) => return Ok((!bytes.is_empty()).then(|| std::mem::take(bytes))),
            Self::Log { log, pos, encoder } => (log, pos, encoder),
        };
        // An IMA slice's size is known: no more buffer than it needs.
        let want = match log {
            Log::Ima(_, end) => {
                usize::try_from(end.saturating_sub(*pos)).map_or(CHUNK, |n| n.min(CHUNK))
            }
            Log::Boot(_) => CHUNK,
        };
        let mut buf = vec![0u8; want];
        let n = match log {
            Log::Ima(..) if want == 0 => 0,
            Log::Ima(ima, _) => match ima.read_at(&mut buf, *pos)? {
                // Short of the slice's end: the IMA log shrank.
                0 => return Err("the IMA log shrank while it was being sent".into()),
                n => n,
            },
            Log::Boot(boot) => boot.read_at(&mut buf, *pos)?,
        };
        buf.truncate(n);
        let mut out = Vec::new();
        if buf.is_empty() {
            encoder.finish(&mut out);
            return Ok((!out.is_empty()).then(|| Bytes::from(out)));
        }
        *pos = pos.saturating_add(n as u64);
        encoder.push(&buf, &mut out);
        Ok(Some(Bytes::from(out)))
    }
}

impl Encoder {
    /// Encodes `input` (following earlier pieces) and appends it to `out`,
    /// keeping back what the next piece completes.
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let joined;
        let input = if self.carry.is_empty() {
            input
        } else {
            joined = [std::mem::take(&mut self.carry).as_slice(), input].concat();
            &joined
        };
        let whole = if self.base64 {
            input.len() - input.len() % 3
        } else {
            utf8_cut(input)
        };
        let (now, later) = input.split_at(whole);
        self.carry = later.to_vec();
        self.encode(now, out);
    }

    /// Ends the string: base64 of the last bytes, with padding, or U+FFFD
    /// for a UTF-8 sequence still cut short.
    fn finish(&mut self, out: &mut Vec<u8>) {
        let carry = std::mem::take(&mut self.carry);
        match self.base64 {
            true => self.encode(&carry, out),
            false if carry.is_empty() => {}
            false => out.extend_from_slice("\u{FFFD}".as_bytes()),
        }
    }

    fn encode(&self, data: &[u8], out: &mut Vec<u8>) {
        if data.is_empty() {
            return;
        }
        if self.base64 {
            out.extend_from_slice(STANDARD.encode(data).as_bytes());
        } else {
            // serde_json's string without its quotes; invalid UTF-8 is U+FFFD.
            let quoted = serde_json::to_vec(&String::from_utf8_lossy(data)).unwrap_or_default();
            let inner = quoted.get(1..quoted.len().saturating_sub(1));
            out.extend_from_slice(inner.unwrap_or_default());
        }
    }
}

/// Where an incomplete UTF-8 sequence at the very end of `input` starts (the
/// next piece may complete it), or its length if there is none.
fn utf8_cut(input: &[u8]) -> usize {
    (1..=3)
        .filter_map(|k| input.len().checked_sub(k))
        .find(|&i| {
            let tail = std::str::from_utf8(input.get(i..).unwrap_or_default());
            matches!(tail, Err(e) if e.valid_up_to() == 0 && e.error_len().is_none())
        })
        .unwrap_or(input.len())
}

#[derive(Debug, Default)]
pub(crate) struct ResponseBody(pub(super) VecDeque<Segment>);

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        while let Some(segment) = self.0.front_mut() {
            match segment.next_chunk() {
                Ok(Some(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Ok(None) => {
                    self.0.pop_front();
                }
                Err(e) => {
                    log::warn!("aborting a response body: {e}");
                    self.0.clear();
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        let fixed = self.0.iter().map(|s| match s {
            Segment::Fixed(b) => Some(b.len() as u64),
            Segment::Log { .. } => None,
        });
        let fixed: Option<u64> = fixed.sum();
        fixed.map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `input` encoded in pieces of `piece` bytes.
    fn in_pieces(base64: bool, input: &[u8], piece: usize) -> Vec<u8> {
        let carry = Vec::new();
        let mut encoder = Encoder { base64, carry };
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            encoder.push(chunk, &mut out);
        }
        encoder.finish(&mut out);
        out
    }

    #[test]
    fn text_is_escaped_as_serde_json_and_invalid_utf8_replaced_for_any_split() {
        let text = "10 abc ima-ng sha256:00ff /usr/bin/\"q\"\\x\ttab\u{1}\u{7f} é € 😀\n";
        let escaped = serde_json::to_string(text).unwrap();
        let invalid: &[u8] = b"a\xffb\xe2\x82";
        let lossy = String::from_utf8_lossy(invalid);
        let cases = [
            (text.as_bytes(), &escaped[1..escaped.len() - 1]),
            (invalid, &*lossy),
        ];
        for (input, expected) in cases {
            for piece in 1..=input.len() {
                let out = in_pieces(false, input, piece);
                assert_eq!(String::from_utf8(out).unwrap(), expected, "piece {piece}");
            }
        }
    }

    #[test]
    fn base64_matches_one_shot_encoding_for_any_split() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for piece in 1..=10 {
            let out = in_pieces(true, &data, piece);
            assert_eq!(out, STANDARD.encode(&data).as_bytes(), "piece {piece}");
        }
    }
}

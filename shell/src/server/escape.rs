//! Incremental encoders for streamed JSON string contents: JSON string
//! escaping of UTF-8 text split at arbitrary byte boundaries, and base64 of
//! binary data split at arbitrary boundaries.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The replacement for bytes that are not UTF-8 (a JSON string must be text).
const REPLACEMENT: &str = "\u{FFFD}";

/// Escapes text for the inside of a JSON string, chunk by chunk. A UTF-8
/// sequence cut by a chunk boundary is held back until the next chunk.
#[derive(Debug, Default)]
pub(crate) struct JsonTextEscaper {
    /// The start of a UTF-8 sequence cut at the end of the previous chunk.
    carry: Vec<u8>,
}

impl JsonTextEscaper {
    /// Escapes `input` (following earlier chunks) and appends it to `out`.
    pub(crate) fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.carry.is_empty() {
            let rest = escape_valid_prefix(input, out);
            self.carry.extend_from_slice(rest);
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(input);
            let rest = escape_valid_prefix(&joined, out);
            self.carry = rest.to_vec();
        }
    }

    /// Ends the text: a sequence still cut short becomes U+FFFD.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.carry.is_empty() {
            self.carry.clear();
            out.extend_from_slice(REPLACEMENT.as_bytes());
        }
    }
}

/// Escapes all of `input` except an incomplete UTF-8 sequence at its very end,
/// which is returned. Invalid sequences become U+FFFD.
fn escape_valid_prefix<'a>(mut input: &'a [u8], out: &mut Vec<u8>) -> &'a [u8] {
    out.reserve(input.len());
    loop {
        match std::str::from_utf8(input) {
            Ok(text) => {
                escape_str(text, out);
                return &[];
            }
            Err(e) => {
                let (valid, rest) = input.split_at(e.valid_up_to());
                escape_str(std::str::from_utf8(valid).unwrap_or_default(), out);
                match e.error_len() {
                    None => return rest,
                    Some(bad) => {
                        out.extend_from_slice(REPLACEMENT.as_bytes());
                        input = rest.get(bad..).unwrap_or_default();
                    }
                }
            }
        }
    }
}

/// Appends `text` escaped as JSON string contents: serde_json's string
/// without its quotes.
fn escape_str(text: &str, out: &mut Vec<u8>) {
    let quoted = serde_json::to_vec(text).unwrap_or_default();
    out.extend_from_slice(
        quoted
            .get(1..quoted.len().saturating_sub(1))
            .unwrap_or_default(),
    );
}

/// Standard base64 (with padding) of binary data fed in pieces.
#[derive(Debug, Default)]
pub(crate) struct Base64Encoder {
    /// Up to two bytes left over from the previous piece.
    carry: Vec<u8>,
}

impl Base64Encoder {
    /// Encodes `input` (following earlier pieces), appending to `out`; up to
    /// two trailing bytes wait for the next piece.
    pub(crate) fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut joined = std::mem::take(&mut self.carry);
        joined.extend_from_slice(input);
        let whole = joined.len() - joined.len() % 3;
        let (now, later) = joined.split_at(whole);
        append_b64(now, out);
        self.carry = later.to_vec();
    }

    /// Encodes what is left, with padding.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        append_b64(&std::mem::take(&mut self.carry), out);
    }
}

fn append_b64(data: &[u8], out: &mut Vec<u8>) {
    if !data.is_empty() {
        out.extend_from_slice(STANDARD.encode(data).as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn escape_in_pieces(input: &[u8], piece: usize) -> String {
        let mut esc = JsonTextEscaper::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            esc.push(chunk, &mut out);
        }
        esc.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaping_matches_serde_json_for_any_split() {
        let text = "10 abc ima-ng sha256:00ff /usr/bin/\"q\"\\x\ttab\u{1}\u{7f} é € 😀\n";
        let expected = serde_json::to_string(text).unwrap();
        let inner = &expected[1..expected.len() - 1];
        for piece in 1..=text.len() {
            assert_eq!(
                escape_in_pieces(text.as_bytes(), piece),
                inner,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let input = b"a\xffb\xe2\x82";
        let expected = String::from_utf8_lossy(input);
        for piece in 1..=input.len() {
            assert_eq!(escape_in_pieces(input, piece), expected, "piece {piece}");
        }
    }

    #[test]
    fn base64_matches_one_shot_encoding_for_any_split() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for piece in 1..=10 {
            let mut enc = Base64Encoder::default();
            let mut out = Vec::new();
            for chunk in data.chunks(piece) {
                enc.push(chunk, &mut out);
            }
            enc.finish(&mut out);
            assert_eq!(out, STANDARD.encode(&data).as_bytes(), "piece {piece}");
        }
    }
}
